/**
 * HTTP access logs (pino-http) and request ids. Each request gets an id: the caller's
 * X-Request-Id when it has a request id's shape, else a new UUID; it is echoed in the
 * response's X-Request-Id. The access line lists what is safe by construction (method, path
 * without its query, status, duration, id, client address), never headers, query or body, so
 * no token, API secret, admin key or cookie can reach it whatever the caller sends.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../logger.js';

/** A caller's X-Request-Id we keep: a UUID, a trace id or the like. Longer (a JWT is) or other characters: replaced. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Probes and scrapes: logged only when they fail (status 400 or more), so they do not drown the log. */
const QUIET_PATHS = new Set(['/health', '/ready', '/metrics']);

/** Longer paths are cut (a path is not a place for data; this bounds a line). */
const MAX_PATH_LENGTH = 256;

/** Three base64url parts led by a JSON header: a JWT, wherever it sits in a path. */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

/** Assigns req.id (the caller's X-Request-Id if well-formed, else a UUID) and echoes it in the response. */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    next();
  };
}

/** The path a log line may show: no query or fragment, no JWT-shaped segment, bounded. */
export function loggablePath(url: string): string {
  // Redacted before the cut, which could leave a piece of a JWT no pattern recognizes.
  const path = (url.split(/[?#]/, 1)[0] ?? '').replace(JWT_LIKE, '[redacted]');
  return path.length > MAX_PATH_LENGTH ? `${path.slice(0, MAX_PATH_LENGTH)}...` : path;
}

/** One line per finished request at info (5xx: warn) on `logger` (module "access"); quiet paths only when they fail. */
export function accessLog(logger: Logger): RequestHandler {
  const pathOf = (req: IncomingMessage): string => loggablePath((req as Request).originalUrl ?? req.url ?? '');
  const handler = pinoHttp({
    logger: logger.child({ module: 'access' }),
    // requestId() runs first; this only covers a mount without it.
    genReqId: (req) => req.id ?? randomUUID(),
    // Our own serializers see the raw objects and copy an allow-list of fields.
    wrapSerializers: false,
    serializers: {
      req: (req: IncomingMessage) => ({ id: req.id, method: req.method, path: pathOf(req), ip: (req as Request).ip }),
      res: (res: ServerResponse) => ({ status: res.statusCode }),
    },
    customAttributeKeys: { responseTime: 'duration_ms' },
    customLogLevel: (req, res, error) => {
      if (error || res.statusCode >= 500) return 'warn';
      if (res.statusCode < 400 && QUIET_PATHS.has(pathOf(req))) return 'silent';
      return 'info';
    },
    customSuccessMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${pathOf(req)} ${res.statusCode}`,
    // The failure itself is logged by the app's error handler; the access line carries no error object.
    customErrorObject: (_req, _res, _error, value: Record<string, unknown>) => ({ res: value.res, duration_ms: value.duration_ms }),
  });
  return handler as unknown as RequestHandler;
}

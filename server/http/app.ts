import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Config } from '../../config/index.js';
import type { NodeInfo } from '../cluster/NodeRegistry.js';
import type { RateLimiterFactory } from '../cluster/rateLimiters.js';
import { AppError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import { accessLog, requestId } from './accessLog.js';
import { securityHeaders } from './csp.js';
import { mountFrontend, type FrontendOptions } from './frontend.js';
import { originChecker } from './origins.js';

export interface HttpAppOptions {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  frontend: FrontendOptions;
  /** Where the per-IP /api counters live (memory, or Redis in a cluster). */
  limiters: RateLimiterFactory;
  /**
   * In a cluster, the live nodes as the registry last listed them (read per response, no Redis
   * round trip): the demo page may connect to each of them (CSP connect-src). Absent on a single node.
   */
  liveNodes?: () => readonly NodeInfo[];
  /** Liveness of dependencies for /ready. */
  readiness: () => Promise<{ ready: boolean; checks: Record<string, boolean> }>;
  /** Routers mounted under /api/v1 and at the root, by later capabilities (API, SDK, demo). */
  mount?: (app: Express) => void;
}

/** Wraps an async handler so a rejection reaches the error handler. */
export const asyncHandler =
  (handler: (...args: Parameters<RequestHandler>) => Promise<unknown>): RequestHandler =>
  (req, res, next) => {
    handler(req, res, next).catch(next);
  };

/** Express app: request ids and access log, security headers, CORS allow-list, bounded JSON, health, JSON errors. */
export function createHttpApp(options: HttpAppOptions): Express {
  const { config, logger } = options;
  const log = logger.child({ module: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy);
  app.use(requestId());
  if (config.observability.accessLog) app.use(accessLog(logger));
  // In a cluster, the demo page's SDK follows a wrong_node redirect to the node serving its room: another origin
  // (that node's PUBLIC_URL), which connect-src 'self' (helmet's default-src) would block; only live nodes
  // and the operator's CSP_CONNECT_SRC are allowed.
  app.use(securityHeaders(options.liveNodes, config.http.cspConnectSrc));
  const originAllowed = originChecker(config.http.corsOrigins);
  app.use(cors({ origin: (origin, callback) => callback(null, originAllowed(origin)), maxAge: 600 }));

  const limiter = options.limiters({ keyPrefix: 'http', points: config.rateLimits.httpPerIpPerMinute, duration: 60 });
  app.use('/api', (req, res, next) => {
    limiter.consume(req.ip ?? 'unknown').then(
      () => next(),
      (rejection: { msBeforeNext?: number }) => {
        const error = new AppError('rate_limited', 'too many requests');
        error.retryAfterS = Math.max(1, Math.ceil((rejection.msBeforeNext ?? 1000) / 1000));
        next(error);
      },
    );
  });
  app.use(express.json({ limit: config.http.bodyLimitBytes, strict: true, type: 'application/json' }));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(
    '/ready',
    asyncHandler(async (_req, res) => {
      const { ready, checks } = await options.readiness();
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
    }),
  );

  // On its own listener (METRICS_PORT) by default: here only with METRICS_PORT=0, else 404 like any unknown route.
  if (config.observability.metricsPort === 0)
    app.get(
      '/metrics',
      asyncHandler(async (_req, res) => {
        const { contentType, body } = await options.metrics.render();
        res.setHeader('Content-Type', contentType).send(body);
      }),
    );

  options.mount?.(app);
  mountFrontend(app, options.frontend);

  app.use((_req, _res, next) => next(new AppError('not_found', 'no such route')));
  const errorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    let appError: AppError | undefined = error instanceof AppError ? error : undefined;
    // body-parser errors: bad JSON, too large, wrong charset.
    const type = (error as { type?: string } | null)?.type;
    if (!appError && typeof type === 'string' && type.startsWith('entity.'))
      appError = new AppError(
        'payload_invalid',
        type === 'entity.too.large' ? 'request body is too large' : 'request body is not valid JSON',
      );
    if (!appError) log.error({ err: error, method: req.method, path: req.path, request_id: req.id }, 'request failed');
    // A dependency's failure (e.g. Redis) reaches the caller as a message of its own; its error is logged here.
    else if (appError.cause !== undefined)
      log.warn(
        { err: appError.cause, code: appError.code, method: req.method, path: req.path, request_id: req.id },
        `request failed: ${appError.message}`,
      );
    const wire = appError ? appError.toWire() : toWireError(error);
    if (appError?.retryAfterS) res.setHeader('Retry-After', String(appError.retryAfterS));
    res.status(appError?.status ?? 500).json({ error: wire });
  };
  app.use(errorHandler);
  return app;
}

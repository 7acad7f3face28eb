import { randomUUID } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { anonymousAuth, describeIssues } from '../../protocol/schemas.js';
import { DEFAULT_ROLES, NO_GRANTS, type Config } from '../../config/index.js';
import type { TokenService, VerifiedToken } from '../auth/TokenService.js';
import { AppError, toWireError } from '../errors.js';
import type { Metrics } from '../Metrics.js';
import { Room } from '../rooms/Room.js';
import type { Store, TenantRecord } from '../store/Store.js';
import type { AppServer, AppSocket } from './types.js';

export interface HandshakeOptions {
  config: Readonly<Config>;
  tokens: TokenService;
  store: Store;
  metrics: Metrics;
  /** True once shutdown began: new handshakes are refused. */
  isShuttingDown: () => boolean;
}

type Middleware = Parameters<AppServer['use']>[0];

/** Query parameters that would carry a token in the URL (refused: URLs end up in logs). */
const TOKEN_QUERY_KEYS = ['token', 'access_token', 'jwt', 'auth', 'authorization'];
const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;

/** connect_error carries err.message = code and err.data = {code, message}. */
function connectError(error: unknown): Error & { data: unknown } {
  const wire = toWireError(error);
  return Object.assign(new Error(wire.code), { data: wire });
}

/**
 * The Socket.IO middleware every connection passes before it connects: a per-address rate
 * limit, no token in the URL, then the token (or an anonymous identity on demo rooms), its
 * revocation and its tenant. A connected socket's data holds its identity, tenant and room key.
 */
export function handshakeMiddleware(options: HandshakeOptions): Middleware {
  const limiter = new RateLimiterMemory({ keyPrefix: 'hs', points: options.config.rateLimits.handshakesPerIpPerMinute, duration: 60 });
  return (socket, next) => {
    authenticate(socket, options, limiter).then(
      () => {
        options.metrics.handshakes.inc({ result: 'ok' });
        next();
      },
      (error: unknown) => {
        const wireError = connectError(error);
        options.metrics.handshakes.inc({ result: wireError.message });
        next(wireError);
      },
    );
  };
}

async function authenticate(socket: AppSocket, options: HandshakeOptions, limiter: RateLimiterMemory): Promise<void> {
  const { config, store } = options;
  if (options.isShuttingDown()) throw new AppError('shutting_down', 'server is shutting down');
  try {
    await limiter.consume(socket.handshake.address);
  } catch (error) {
    if (error instanceof RateLimiterRes) {
      options.metrics.rateLimited.inc({ limiter: 'handshake' });
      throw new AppError('rate_limited', 'too many connection attempts');
    }
    throw error;
  }
  for (const [key, value] of Object.entries(socket.handshake.query)) {
    const looksLikeJwt = typeof value === 'string' && JWT_SHAPE.test(value);
    if (TOKEN_QUERY_KEYS.includes(key.toLowerCase()) || looksLikeJwt) {
      throw new AppError('token_invalid', 'send the token in the handshake auth payload, never in the URL');
    }
  }
  const auth: unknown = socket.handshake.auth;
  const fields = auth && typeof auth === 'object' ? (auth as Record<string, unknown>) : {};
  if (fields.token === undefined && fields.room !== undefined && config.auth.anonymousRooms) {
    const tenant = await store.tenants.get(config.auth.anonymousTenant);
    if (!tenant) throw new AppError('internal', 'ANONYMOUS_TENANT names an unknown tenant');
    authenticated(socket, anonymousIdentity(config, fields), tenant);
    return;
  }
  const identity = options.tokens.verify(fields.token);
  if (!identity.grants.roomJoin) throw new AppError('forbidden', 'token does not grant roomJoin');
  if (await store.tokens.isRevoked(identity.tenantId, identity.jti)) throw new AppError('token_revoked', 'token was revoked');
  const tenant = await store.tenants.get(identity.tenantId);
  if (!tenant) throw new AppError('token_invalid', 'token names an unknown tenant');
  authenticated(socket, identity, tenant);
}

function authenticated(socket: AppSocket, identity: VerifiedToken, tenant: TenantRecord): void {
  socket.data.identity = identity;
  socket.data.tenant = tenant;
  socket.data.roomKey = Room.keyOf(tenant.tenant_id, identity.roomId);
  socket.data.peer = null;
}

/** Anonymous/demo rooms: {room, name} in the handshake auth payload, the "guest" preset. */
function anonymousIdentity(config: Readonly<Config>, fields: Record<string, unknown>): VerifiedToken {
  const parsed = anonymousAuth.safeParse({ room: fields.room, name: fields.name });
  if (!parsed.success) throw new AppError('payload_invalid', `anonymous join: ${describeIssues(parsed.error)}`);
  const now = Date.now();
  const id = randomUUID();
  return {
    jti: `anonymous-${id}`,
    tenantId: config.auth.anonymousTenant,
    roomId: parsed.data.room,
    userId: `anonymous-${id.slice(0, 8)}`,
    name: parsed.data.name,
    grants: { ...NO_GRANTS, ...(config.roles.guest ?? DEFAULT_ROLES.guest) },
    metadata: {},
    issuedAt: new Date(now),
    expiresAt: new Date(now + config.auth.maxTokenLifetimeS * 1000),
    anonymous: true,
  };
}

import { randomUUID } from 'node:crypto';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { anonymousAuth, describeIssues } from '../../protocol/schemas.js';
import { DEFAULT_ROLES, NO_GRANTS, type Config } from '../../config/index.js';
import type { TokenService, VerifiedToken } from '../auth/TokenService.js';
import { redirectOf } from '../cluster/Cluster.js';
import type { RateLimiterFactory } from '../cluster/rateLimiters.js';
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
  /** True once shutdown began: new handshakes are refused (in a cluster, sent to another node). */
  isShuttingDown: () => boolean;
  /** Where the per-address handshake counters live (memory, or Redis in a cluster). */
  limiters: RateLimiterFactory;
  /** In a cluster: accepts a connection only where its room's lease is (see Cluster.admitConnection); null on a single node. */
  placement: RoomPlacement | null;
}

/** The cluster's side of a handshake. */
export interface RoomPlacement {
  /** Resolves once this node holds the room's lease; rejects with wrong_node (and a ws_url), unavailable or shutting_down. */
  admitConnection(tenantId: string, roomId: string, options: { draining: boolean }): Promise<void>;
}

type Middleware = Parameters<AppServer['use']>[0];

/** Query parameters that would carry a token in the URL (refused: URLs end up in logs). */
const TOKEN_QUERY_KEYS = ['token', 'access_token', 'jwt', 'auth', 'authorization'];
const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]*\.[\w-]*$/;

/** connect_error carries err.message = code and err.data = {code, message}; wrong_node adds the ws_url to connect to. */
function connectError(error: unknown): Error & { data: unknown } {
  const wire = toWireError(error);
  const wsUrl = redirectOf(error);
  return Object.assign(new Error(wire.code), { data: wsUrl === null ? wire : { ...wire, ws_url: wsUrl } });
}

/**
 * The Socket.IO middleware every connection passes before it connects: a per-address rate
 * limit, no token in the URL, then the token (or an anonymous identity on demo rooms), its
 * revocation and its tenant, and in a cluster the room's lease (last: only a connection that
 * would be accepted claims a room). A connected socket's data holds its identity, tenant and room key.
 */
export function handshakeMiddleware(options: HandshakeOptions): Middleware {
  const limiter = options.limiters({ keyPrefix: 'hs', points: options.config.rateLimits.handshakesPerIpPerMinute, duration: 60 });
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

async function authenticate(socket: AppSocket, options: HandshakeOptions, limiter: RateLimiterAbstract): Promise<void> {
  const { config, store, placement } = options;
  if (options.isShuttingDown() && !placement) throw new AppError('shutting_down', 'server is shutting down');
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
    const tenant = await fromStore(store.tenants.get(config.auth.anonymousTenant));
    if (!tenant) throw new AppError('internal', 'ANONYMOUS_TENANT names an unknown tenant');
    const identity = anonymousIdentity(config, fields);
    await placement?.admitConnection(tenant.tenant_id, identity.roomId, { draining: options.isShuttingDown() });
    authenticated(socket, identity, tenant);
    return;
  }
  const identity = options.tokens.verify(fields.token);
  if (!identity.grants.roomJoin) throw new AppError('forbidden', 'token does not grant roomJoin');
  if (await fromStore(store.tokens.isRevoked(identity.tenantId, identity.jti))) throw new AppError('token_revoked', 'token was revoked');
  const tenant = await fromStore(store.tenants.get(identity.tenantId));
  if (!tenant) throw new AppError('token_invalid', 'token names an unknown tenant');
  await placement?.admitConnection(tenant.tenant_id, identity.roomId, { draining: options.isShuttingDown() });
  authenticated(socket, identity, tenant);
}

/**
 * A store read of the handshake: a store that cannot answer (its database unreachable, as in a
 * Redis outage with the Redis store) refuses the connection with `unavailable` (try again
 * later), not `internal`.
 */
async function fromStore<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('unavailable', 'the store cannot answer now; try again');
  }
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

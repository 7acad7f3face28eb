/**
 * The Redis store's key layout. Every key starts with the store's prefix ("sb:" by default).
 * A tenant's records and indexes live under `<prefix>t:<tenant>:`, so no key of one tenant is
 * a key of another; the few global keys are lookups that arrive without a tenant (API key,
 * secret hash, session id, node id), and they hold ids, never records.
 *
 *   t:<T>:tenant                hash    the tenant record
 *   tenant-key:<api_key>        string  tenant id (api_key is unique)
 *   tenant-secret:<sha256>      string  tenant id (api_secret_sha256 is unique)
 *   t:<T>:room:<R>              hash    a room record
 *   t:<T>:rooms                 zset    room ids, all scored 0: lexical order is room_id order
 *   t:<T>:token:<jti>           hash    a token record; expires (PEXPIREAT) at exp + token grace
 *   t:<T>:session:<S>           hash    a session record
 *   t:<T>:sessions              zset    session members (below), all scored 0: lexical order is list order
 *   t:<T>:sessions:room:<R>     zset    the same, of one room
 *   t:<T>:sessions:open         zset    open sessions' members scored by last_seen_at
 *   t:<T>:sessions:closed       zset    closed sessions' members scored by disconnected_at
 *   session:<S>                 string  the session's locator (tenant, room, node, connected_at)
 *   sessions:open               zset    open session ids of every tenant, scored by last_seen_at
 *   node:<N>:sessions           set     open session ids recorded by node N
 *
 * Ids inside key names are percent-encoded (encodeURIComponent), so an id never contains the
 * ":" that separates the parts and two different ids never make the same key.
 */
import { AppError } from '../errors.js';
import type { SessionKey } from './paging.js';

/** The store's default key prefix. */
export const DEFAULT_KEY_PREFIX = 'sb:';

/** An id as it appears in a key name. */
function part(id: string): string {
  try {
    return encodeURIComponent(id);
  } catch {
    // A lone UTF-16 surrogate has no UTF-8 form.
    throw new AppError('payload_invalid', 'ids must be valid Unicode strings');
  }
}

/** The key names of one store, under its prefix. */
export class RedisKeys {
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {}

  /** Every key of this tenant starts with this. */
  tenantSpace(tenantId: string): string {
    return `${this.prefix}t:${part(tenantId)}:`;
  }

  tenant(tenantId: string): string {
    return `${this.tenantSpace(tenantId)}tenant`;
  }

  tenantByApiKey(apiKey: string): string {
    return `${this.prefix}tenant-key:${part(apiKey)}`;
  }

  tenantBySecretHash(secretSha256: string): string {
    return `${this.prefix}tenant-secret:${part(secretSha256)}`;
  }

  room(tenantId: string, roomId: string): string {
    return `${this.tenantSpace(tenantId)}room:${part(roomId)}`;
  }

  roomIds(tenantId: string): string {
    return `${this.tenantSpace(tenantId)}rooms`;
  }

  token(tenantId: string, jti: string): string {
    return `${this.tenantSpace(tenantId)}token:${part(jti)}`;
  }

  session(tenantId: string, sessionId: string): string {
    return `${this.tenantSpace(tenantId)}session:${part(sessionId)}`;
  }

  tenantSessions(tenantId: string): string {
    return `${this.tenantSpace(tenantId)}sessions`;
  }

  roomSessions(tenantId: string, roomId: string): string {
    return `${this.tenantSpace(tenantId)}sessions:room:${part(roomId)}`;
  }

  openSessions(tenantId: string): string {
    return `${this.tenantSpace(tenantId)}sessions:open`;
  }

  closedSessions(tenantId: string): string {
    return `${this.tenantSpace(tenantId)}sessions:closed`;
  }

  sessionLocator(sessionId: string): string {
    return `${this.prefix}session:${part(sessionId)}`;
  }

  allOpenSessions(): string {
    return `${this.prefix}sessions:open`;
  }

  nodeSessions(nodeId: string): string {
    return `${this.prefix}node:${part(nodeId)}:sessions`;
  }
}

// ---- session members: "<connected_at>:<session_id>", ordered as sessionOrder orders sessions ----

/** Shifts every Date's ms (|ms| <= 8.64e15) to a non-negative integer. */
const MS_OFFSET = 8_640_000_000_000_000n;
/** Digits of the largest shifted ms (1.728e16). */
const MS_DIGITS = 17;

/** connected_at as fixed-width digits: their lexical order is the time order. */
export function sortableMs(ms: number): string {
  return (BigInt(ms) + MS_OFFSET).toString().padStart(MS_DIGITS, '0');
}

/**
 * A session's member in the session sorted sets. Lexical order of members is connected_at
 * order, then session_id order (byte order, which is sessionOrder's for ASCII ids).
 */
export function sessionMember(key: SessionKey): string {
  return `${sortableMs(key.connectedAt.getTime())}:${key.sessionId}`;
}

export function sessionKeyOfMember(member: string): SessionKey {
  const ms = Number(BigInt(member.slice(0, MS_DIGITS)) - MS_OFFSET);
  return { connectedAt: new Date(ms), sessionId: member.slice(MS_DIGITS + 1) };
}

/** The order of members in a lexically sorted set (byte order of their UTF-8). */
export function compareMembers(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Ephemeral TURN credentials in the coturn "TURN REST API" form
 * (draft-uberti-behave-turn-rest): username = "<expiry unix time>:<user id>",
 * password = base64(HMAC-SHA1(shared secret, username)). Nothing is stored: any server that
 * knows the secret (this one, or coturn with use-auth-secret + static-auth-secret) can check
 * them, which is what lets operators swap the bundled relay for coturn by config alone.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IceServer } from '../protocol/events.js';
import type { Config } from '../config/index.js';

export type TurnSettings = Config['turn'];

/** A username/credential pair for RTCIceServer. */
export interface TurnCredentials {
  username: string;
  credential: string;
  /** Unix seconds after which servers refuse them. */
  expiresAt: number;
}

export type CredentialCheck = { ok: true; userId: string; expiresAt: number } | { ok: false; reason: 'malformed' | 'expired' | 'mismatch' };

/** Usernames longer than this are refused before any HMAC work (STUN allows 513 bytes). */
const MAX_USERNAME_BYTES = 512;

/** The password for a REST API username: base64(HMAC-SHA1(secret, username)). */
export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

/** Credentials for `userId`, valid for `ttlS` seconds from `nowMs`. */
export function createTurnCredentials(secret: string, userId: string, ttlS: number, nowMs: number = Date.now()): TurnCredentials {
  if (!userId) throw new TypeError('[createTurnCredentials] userId must not be empty');
  const expiresAt = Math.floor(nowMs / 1000) + ttlS;
  const username = `${expiresAt}:${userId}`;
  return { username, credential: turnPassword(secret, username), expiresAt };
}

/** Splits "<expiry>:<user id>"; null when the username is not in that form. */
export function parseTurnUsername(username: string): { expiresAt: number; userId: string } | null {
  if (Buffer.byteLength(username) > MAX_USERNAME_BYTES) return null;
  const colon = username.indexOf(':');
  if (colon <= 0 || colon === username.length - 1) return null;
  const stamp = username.slice(0, colon);
  if (!/^\d{1,12}$/.test(stamp)) return null;
  return { expiresAt: Number(stamp), userId: username.slice(colon + 1) };
}

/**
 * The password a server should expect for `username`, or the reason there is none
 * (malformed or expired username). Used where the password is needed as a key (STUN
 * long-term credentials) rather than compared.
 */
export function expectedTurnPassword(
  secret: string,
  username: string,
  nowMs: number = Date.now(),
): { ok: true; password: string; userId: string; expiresAt: number } | { ok: false; reason: 'malformed' | 'expired' } {
  const parsed = parseTurnUsername(username);
  if (!parsed) return { ok: false, reason: 'malformed' };
  if (parsed.expiresAt * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, password: turnPassword(secret, username), ...parsed };
}

/** Checks a username/password pair: well-formed, unexpired, and the HMAC matches (constant time). */
export function verifyTurnCredentials(secret: string, username: string, password: string, nowMs: number = Date.now()): CredentialCheck {
  const expected = expectedTurnPassword(secret, username, nowMs);
  if (!expected.ok) return expected;
  const a = Buffer.from(expected.password);
  const b = Buffer.from(password);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'mismatch' };
  return { ok: true, userId: expected.userId, expiresAt: expected.expiresAt };
}

/** Brackets IPv6 literals for use in a URL. */
function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** The ports the bundled relay really listens on (they differ from the settings when those are 0). */
export interface RelayPorts {
  /** UDP, and TCP with TURN_TCP. */
  port: number;
  /** TLS, when TURN over TLS is on. */
  tlsPort: number;
}

/**
 * The relay worker (0..workers-1) whose port a user's ice_servers name: FNV-1a of the user id,
 * so the same user always gets the same worker (its reconnects and its per-user quota stay
 * together) and users spread evenly over the workers.
 */
export function relayWorkerFor(userId: string, workers: number): number {
  if (workers <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % workers;
}

/**
 * The ice_servers handed to a client (join ack, token response): the bundled TURN server
 * when enabled (`turn:HOST:PORT?transport=udp`, `...?transport=tcp` with TURN_TCP, and
 * `turns:TLS_HOST:TLS_PORT?transport=tcp` with TLS on, in one entry), every TURN_EXTERNAL_URLS
 * entry (coturn sharing TURN_SECRET) with the same credentials, and STUN_URLS without
 * credentials. The UDP/TCP port is that of the user's relay worker (TURN_PORT + relayWorkerFor);
 * `ports` overrides the configured ports (those the bundled server really bound, when a
 * setting is 0).
 */
export function buildIceServers(
  turn: TurnSettings,
  userId: string,
  nowMs: number = Date.now(),
  ports: RelayPorts = { port: turn.port + relayWorkerFor(userId, turn.workers), tlsPort: turn.tlsPort },
): IceServer[] {
  const servers: IceServer[] = [];
  const wantsCredentials = turn.enabled || turn.externalUrls.length > 0;
  const creds = wantsCredentials ? createTurnCredentials(turn.secret, userId, turn.credentialTtlS, nowMs) : undefined;
  if (turn.enabled && creds) {
    const host = urlHost(turn.externalIp ?? turn.relayIp);
    const urls = [`turn:${host}:${ports.port}?transport=udp`];
    if (turn.tcp) urls.push(`turn:${host}:${ports.port}?transport=tcp`);
    if (turn.tlsEnabled) urls.push(`turns:${turn.tlsHost ? urlHost(turn.tlsHost) : host}:${ports.tlsPort}?transport=tcp`);
    servers.push({ urls, username: creds.username, credential: creds.credential });
  }
  if (turn.externalUrls.length > 0 && creds) {
    servers.push({ urls: [...turn.externalUrls], username: creds.username, credential: creds.credential });
  }
  if (turn.stunUrls.length > 0) servers.push({ urls: [...turn.stunUrls] });
  return servers;
}

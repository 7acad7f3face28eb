/**
 * Redis connections for the cluster, configured so that no caller ever hangs on Redis:
 * - connecting gives up after connectTimeoutMs, and every command (queued ones included)
 *   fails after commandTimeoutMs;
 * - a command waits for at most one reconnection attempt (maxRetriesPerRequest 1) and a command
 *   in flight when the connection drops fails rather than being sent again
 *   (autoResendUnfulfilledCommands false): a script is never run twice by the client;
 * - the client itself reconnects forever, with a capped delay, since Redis may come back.
 * One warn line is logged when the connection is lost (or cannot be made) and one info line
 * when it is ready again; neither contains the URL's credentials.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

export interface RedisConnectionOptions {
  /** What this connection is for; Redis' CLIENT LIST shows it as "switchboard:<name>". */
  name: string;
  /** Receives the loss and recovery lines. */
  logger?: Logger;
  /** How long a connection attempt may take (ms, default 3000). */
  connectTimeoutMs?: number;
  /** How long a command may wait for its answer, including time queued while disconnected (ms, default 2000). */
  commandTimeoutMs?: number;
  /** Delay before the first reconnection attempt (ms, default 100); it grows linearly per attempt. */
  retryBaseDelayMs?: number;
  /** The longest delay between reconnection attempts (ms, default 2000). */
  maxRetryDelayMs?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
const DEFAULT_RETRY_BASE_DELAY_MS = 100;
const DEFAULT_MAX_RETRY_DELAY_MS = 2_000;

/**
 * Scheme, host and port of a Redis URL, for logs and messages: never its user, password,
 * database or query (which may carry a password too). Anything that does not parse as a
 * URL with a host is described without any of its text.
 */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if ((parsed.protocol === 'redis:' || parsed.protocol === 'rediss:') && parsed.hostname !== '')
      return `${parsed.protocol}//${parsed.host}`;
  } catch {
    // not a URL
  }
  return 'the configured Redis URL';
}

/** The reconnection delay: linear growth from the base, capped; never null, so reconnection never stops. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(Math.max(1, attempt) * baseMs, maxMs);
}

function connectionOptions(options: RedisConnectionOptions): RedisOptions {
  const baseMs = options.retryBaseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
  const maxMs = options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
  return {
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => retryDelay(attempt, baseMs, maxMs),
    // RESP2, as the Redis store uses: replies have one shape whatever the server's version.
    protocol: 2,
    connectionName: `switchboard:${options.name}`,
  };
}

/** Logs the first failure of an outage once (warn) and the recovery once (info). */
function watchConnection(redis: Redis, url: string, options: RedisConnectionOptions): void {
  const where = describeRedisUrl(url);
  const logger = options.logger?.child({ module: 'cluster', connection: options.name });
  let outage = false;
  const lost = (reason: string): void => {
    if (outage) return;
    outage = true;
    logger?.warn({ redis: where, err: reason }, 'redis connection lost; reconnecting');
  };
  // An 'error' listener is needed anyway: without one ioredis prints every failed attempt.
  redis.on('error', (error: Error) => lost(error.message));
  redis.on('close', () => {
    if (redis.status !== 'end') lost('connection closed');
  });
  redis.on('ready', () => {
    if (outage) logger?.info({ redis: where }, 'redis connection restored');
    outage = false;
  });
}

/**
 * A command connection (GET/SET, scripts, PUBLISH). It starts connecting at once; commands sent
 * before it is ready wait in the offline queue within the command timeout. The caller owns
 * it: quit() or disconnect() when done.
 */
export function createRedisConnection(url: string, options: RedisConnectionOptions): Redis {
  const redis = new Redis(url, connectionOptions(options));
  watchConnection(redis, url, options);
  return redis;
}

/**
 * A subscriber connection (SUBSCRIBE and its messages only, RESP2's subscriber mode). Channels
 * are subscribed again by the client after every reconnection (autoResubscribe); messages
 * published while it was disconnected are lost, as Redis pub/sub does not keep them.
 */
export function createSubscriberConnection(url: string, options: RedisConnectionOptions): Redis {
  const redis = new Redis(url, { ...connectionOptions(options), autoResubscribe: true });
  watchConnection(redis, url, options);
  return redis;
}

/** Quits a connection politely when it is up, else drops it; never throws and never waits longer than ~1 s. */
export async function closeRedisConnection(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([redis.quit(), new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))]);
    } catch {
      // dropped below
    } finally {
      clearTimeout(timer);
    }
  }
  // quit() may have ended it meanwhile.
  const status: string = redis.status;
  if (status !== 'end') redis.disconnect();
}

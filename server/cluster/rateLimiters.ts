/**
 * Where rate-limit counters live. One node: in memory. A cluster: in Redis (RateLimiterRedis),
 * so a limit holds across every node, with an in-memory insurance limiter of the same points
 * and duration that counts alone while Redis cannot answer (limits then hold per node).
 * Per-socket event limits are not built here: a socket lives on one node.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';

export interface LimiterSpec {
  /** Distinguishes the limiter's keys (e.g. "hs", "http", "api-tokens"). */
  keyPrefix: string;
  /** Requests allowed per duration. */
  points: number;
  /** Window (seconds). */
  duration: number;
}

/** Builds one limiter; every limiter of a server comes from the same factory. */
export type RateLimiterFactory = (spec: LimiterSpec) => RateLimiterAbstract;

/** Counters in this process: the single node's limiters. */
export const memoryLimiters: RateLimiterFactory = (spec) => new RateLimiterMemory(spec);

/**
 * Counters in Redis under `<prefix>rl:<keyPrefix>:`, shared by every node; the insurance
 * limiter takes over for each call Redis fails, at once while the connection is down.
 */
export function redisLimiters(redis: Redis, prefix: string): RateLimiterFactory {
  return (spec) =>
    new RateLimiterRedis({
      ...spec,
      storeClient: redis,
      keyPrefix: `${prefix}rl:${spec.keyPrefix}`,
      // A connection that is down answers from the insurance at once rather than after the command timeout.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(spec),
    });
}

/**
 * Rate limits of the token and tenant routes, stricter than the generic per-IP /api limit:
 * minting and revoking are limited per tenant (one tenant cannot starve the others, whatever
 * its IPs), the admin API per client IP (checked before the key, so guessing is slow too).
 */
import type { RequestHandler } from 'express';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { memoryLimiters, type RateLimiterFactory } from '../../cluster/rateLimiters.js';
import { AppError } from '../../errors.js';
import { tenantOf, type LimiterName, type RouteGuards } from './routes.js';

export interface ApiRateLimits {
  /** POST /api/v1/tokens and /tokens/revoke per tenant per minute. */
  tokensPerTenantPerMinute: number;
  /** Admin API calls per client IP per minute. */
  adminPerIpPerMinute: number;
  /** Where the counters live: memory on one node, Redis in a cluster (limits then hold across nodes). */
  counters: RateLimiterFactory;
}

export const DEFAULT_API_RATE_LIMITS: Readonly<ApiRateLimits> = {
  tokensPerTenantPerMinute: 300,
  adminPerIpPerMinute: 30,
  counters: memoryLimiters,
};

function limiterMiddleware(limiter: RateLimiterAbstract, keyOf: (...args: Parameters<RequestHandler>) => string): RequestHandler {
  return (req, res, next) => {
    limiter.consume(keyOf(req, res, next)).then(
      () => next(),
      (rejection: unknown) => {
        if (!(rejection instanceof RateLimiterRes)) {
          next(rejection);
          return;
        }
        const error = new AppError('rate_limited', 'too many requests');
        error.retryAfterS = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        next(error);
      },
    );
  };
}

/** The limiters the route table names. */
export function createApiLimiters(limits: Partial<ApiRateLimits> = {}): RouteGuards['limiters'] {
  const settings = { ...DEFAULT_API_RATE_LIMITS, ...limits };
  const tokens = settings.counters({ keyPrefix: 'api-tokens', points: settings.tokensPerTenantPerMinute, duration: 60 });
  const admin = settings.counters({ keyPrefix: 'api-admin', points: settings.adminPerIpPerMinute, duration: 60 });
  const limiters: Record<LimiterName, { keyedBy: 'ip' | 'tenant'; handler: RequestHandler }> = {
    tokens: { keyedBy: 'tenant', handler: limiterMiddleware(tokens, (_req, res) => tenantOf(res).tenant_id) },
    admin: { keyedBy: 'ip', handler: limiterMiddleware(admin, (req) => req.ip ?? 'unknown') },
  };
  return limiters;
}

/**
 * Credentials of the HTTP API. Tenant calls: `Authorization: Bearer <tenant API secret>`,
 * found by the secret's sha256 and confirmed with a constant-time comparison of the hashes.
 * Admin calls: `Authorization: Bearer <ADMIN_API_KEY>`, both sides hashed and compared in
 * constant time; with no admin key configured the admin API answers 403.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { sha256Hex } from '../../../config/index.js';
import { AppError } from '../../errors.js';
import type { Store } from '../../store/Store.js';

/** Longer credentials are refused before hashing. */
const MAX_CREDENTIAL_LENGTH = 512;

/** The Bearer credential of a request, or null. */
export function bearerCredential(req: Request): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || header.length > MAX_CREDENTIAL_LENGTH + 7) return null;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/** Constant-time equality of two sha256 hex digests. */
function sameDigest(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

function unauthorized(res: Parameters<RequestHandler>[1], message: string): AppError {
  res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
  return new AppError('unauthorized', message);
}

/** Resolves the calling tenant into res.locals.tenant, or answers 401 unauthorized. */
export function tenantAuth(store: Store): RequestHandler {
  return (req, res, next) => {
    const secret = bearerCredential(req);
    if (!secret) {
      next(unauthorized(res, 'send the tenant API secret as Authorization: Bearer <secret>'));
      return;
    }
    const digest = sha256Hex(secret);
    store.tenants.getBySecretHash(digest).then(
      (tenant) => {
        if (!tenant || !sameDigest(digest, tenant.api_secret_sha256)) {
          next(unauthorized(res, 'API secret is not valid'));
          return;
        }
        res.locals.tenant = tenant;
        next();
      },
      // A store that cannot answer (its database unreachable, e.g. the Redis store during a Redis
      // outage) is `unavailable` (503, try again), as at the handshake, not `internal`.
      (error: unknown) => next(error instanceof AppError ? error : new AppError('unavailable', 'the store cannot answer now; try again')),
    );
  };
}

/** Admits requests carrying the admin key; 403 when the server has none configured. */
export function adminAuth(adminApiKey: string | undefined): RequestHandler {
  const expected = adminApiKey ? sha256Hex(adminApiKey) : null;
  return (req, res, next) => {
    if (!expected) {
      next(new AppError('forbidden', 'the admin API is disabled (no ADMIN_API_KEY configured)'));
      return;
    }
    const given = bearerCredential(req);
    if (!given || !sameDigest(sha256Hex(given), expected)) {
      next(unauthorized(res, 'send the admin key as Authorization: Bearer <ADMIN_API_KEY>'));
      return;
    }
    next();
  };
}

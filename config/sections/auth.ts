/** Token signing and verification, the admin key, anonymous rooms. */
import { z } from 'zod';
import { bool, int, secret, setting } from '../setting.js';

export interface SigningKey {
  kid: string;
  secret: string;
}

const KID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * "kid:secret,kid:secret" with secrets of at least 32 bytes and distinct kids. Every bad entry
 * is its own problem, naming the kid and never the secret. An empty value reads as unset.
 */
const signingKeyRing = z.string().transform((raw, ctx): SigningKey[] | undefined => {
  if (!raw) return undefined;
  const problems: string[] = [];
  const keys: SigningKey[] = [];
  const seen = new Set<string>();
  for (const entry of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      problems.push('each entry must be "kid:secret"');
      continue;
    }
    const kid = entry.slice(0, colon);
    const keySecret = entry.slice(colon + 1);
    if (!KID.test(kid)) problems.push(`kid "${kid.slice(0, 64)}" must be 1-64 of A-Z a-z 0-9 _ . -`);
    else if (seen.has(kid)) problems.push(`kid "${kid}" appears twice`);
    if (Buffer.byteLength(keySecret) < 32) problems.push(`the secret of kid "${kid.slice(0, 64)}" must be at least 32 bytes`);
    seen.add(kid);
    keys.push({ kid, secret: keySecret });
  }
  if (keys.length === 0 && problems.length === 0) problems.push('no keys given');
  for (const message of problems) ctx.addIssue({ code: 'custom', message });
  return keys;
});

export const authSettings = {
  /** The first key signs, all verify. Generated per boot in development (bootstrapSecrets); production requires it. */
  signingKeys: setting('SIGNING_KEYS', signingKeyRing.optional()),
  /** Required iss claim. */
  issuer: setting('TOKEN_ISSUER', z.string().min(1).default('switchboard')),
  /** Required aud claim. */
  audience: setting('TOKEN_AUDIENCE', z.string().min(1).default('switchboard')),
  /** Tolerance for exp, nbf and iat. */
  clockToleranceS: setting('TOKEN_CLOCK_TOLERANCE_S', int(0, 300).default(30)),
  /** Longest exp - iat accepted (and minted). */
  maxTokenLifetimeS: setting('TOKEN_MAX_LIFETIME_S', int(60, 30 * 24 * 3600).default(24 * 3600)),
  /** Key of the admin API (POST /api/v1/tenants). Generated per boot in development (bootstrapSecrets). */
  adminApiKey: setting('ADMIN_API_KEY', secret.optional()),
  /** Anonymous/demo rooms: a join without a token uses the guest preset. */
  anonymousRooms: setting('ANONYMOUS_ROOMS', bool.default(false)),
  /** The tenant whose rooms and limits anonymous participants use. */
  anonymousTenant: setting(
    'ANONYMOUS_TENANT',
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a tenant id (letters, digits, _ and -)')
      .default('dev'),
  ),
  /** The demo page's token route; on by default in development, always off in production. */
  devTokenRoute: setting('DEV_TOKEN_ROUTE', bool.optional()),
};

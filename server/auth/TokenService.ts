import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { Grants, Metadata } from '../../protocol/events.js';
import { externalId, partialGrants, safeJsonObject } from '../../protocol/schemas.js';
import { NO_GRANTS, type Config, type SigningKey } from '../../config/index.js';
import { AppError } from '../errors.js';

/** What a verified token says about its holder. */
export interface VerifiedToken {
  jti: string;
  tenantId: string;
  roomId: string;
  userId: string;
  name: string;
  grants: Grants;
  metadata: Metadata;
  issuedAt: Date;
  expiresAt: Date;
  /** Joined without a token (ANONYMOUS_ROOMS): no jti in the store, guest grants. */
  anonymous?: boolean;
}

export interface MintRequest {
  tenantId: string;
  roomId: string;
  userId: string;
  name: string;
  grants: Grants;
  metadata?: Metadata;
  ttlS: number;
}

export interface MintedToken {
  token: string;
  jti: string;
  expiresAt: Date;
}

export interface TokenServiceOptions {
  keys: readonly SigningKey[];
  issuer: string;
  audience: string;
  clockToleranceS: number;
  maxLifetimeS: number;
}

/** Tokens longer than this are refused before any parsing (bounds work per handshake). */
const MAX_TOKEN_LENGTH = 8192;

/** Claims every token must carry; jsonwebtoken checks exp/iss/aud only when present or asked. */
const requiredClaims = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  sub: externalId,
  tid: z.string().min(1).max(64),
  room: externalId,
  name: z.string().max(256).optional(),
  grants: partialGrants,
  metadata: safeJsonObject().optional(),
  jti: z.string().min(8).max(128),
  iat: z.number().int(),
  exp: z.number().int(),
  nbf: z.number().int().optional(),
});

/**
 * Signs and verifies join tokens with an HS256 key ring: the first key signs, every key
 * verifies, and the token's `kid` header picks the key (an unknown kid is refused, never
 * tried against every key).
 */
export class TokenService {
  /**
   * Keys as KeyObjects: given a string, jsonwebtoken first tries to parse it as a PEM public
   * key on every call, a cost paid per handshake (bench/notes/join-history.md), which a
   * KeyObject skips.
   */
  private readonly secretsByKid: Map<string, KeyObject>;
  private readonly signingSecret: KeyObject;
  private readonly signingKey: SigningKey;

  /** The token service of a server's auth settings (key ring, issuer, audience, limits). */
  static fromConfig(auth: Config['auth']): TokenService {
    return new TokenService({
      keys: auth.signingKeys,
      issuer: auth.issuer,
      audience: auth.audience,
      clockToleranceS: auth.clockToleranceS,
      maxLifetimeS: auth.maxTokenLifetimeS,
    });
  }

  constructor(private readonly options: TokenServiceOptions) {
    const [first] = options.keys;
    if (!first) throw new Error('TokenService needs at least one signing key');
    this.signingKey = first;
    this.secretsByKid = new Map(options.keys.map((k) => [k.kid, createSecretKey(Buffer.from(k.secret, 'utf8'))]));
    this.signingSecret = this.secretsByKid.get(first.kid) as KeyObject;
  }

  /** Mints a token; ttlS is capped by the configured maximum lifetime. */
  mint(request: MintRequest): MintedToken {
    const ttlS = Math.min(request.ttlS, this.options.maxLifetimeS);
    const jti = randomUUID();
    const nowS = Math.floor(Date.now() / 1000);
    const claims = {
      sub: request.userId,
      tid: request.tenantId,
      room: request.roomId,
      name: request.name,
      grants: request.grants,
      metadata: request.metadata ?? {},
      jti,
      iat: nowS,
      exp: nowS + ttlS,
    };
    const token = jwt.sign(claims, this.signingSecret, {
      algorithm: 'HS256',
      keyid: this.signingKey.kid,
      issuer: this.options.issuer,
      audience: this.options.audience,
    });
    return { token, jti, expiresAt: new Date((nowS + ttlS) * 1000) };
  }

  /** Verifies a token; throws AppError token_invalid or token_expired. */
  verify(token: unknown): VerifiedToken {
    if (typeof token !== 'string' || token.length === 0) throw new AppError('token_missing', 'no token in the handshake auth payload');
    if (token.length > MAX_TOKEN_LENGTH) throw new AppError('token_invalid', 'token is too long');

    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload === 'string') throw new AppError('token_invalid', 'token is not a JWT');
    if (decoded.header.alg !== 'HS256') throw new AppError('token_invalid', 'token algorithm must be HS256');
    const kid = decoded.header.kid;
    const secret = typeof kid === 'string' ? this.secretsByKid.get(kid) : undefined;
    if (!secret) throw new AppError('token_invalid', 'token key id is unknown');

    let payload: jwt.JwtPayload;
    try {
      payload = jwt.verify(token, secret, {
        algorithms: ['HS256'],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceS,
      }) as jwt.JwtPayload;
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError) throw new AppError('token_expired', 'token has expired');
      if (error instanceof jwt.NotBeforeError) throw new AppError('token_invalid', 'token is not valid yet (nbf)');
      throw new AppError('token_invalid', `token rejected: ${(error as Error).message}`);
    }

    const parsed = requiredClaims.safeParse(payload);
    if (!parsed.success) {
      const missing = parsed.error.issues
        .map((i) => i.path.join('.') || 'claims')
        .slice(0, 5)
        .join(', ');
      throw new AppError('token_invalid', `token claims missing or invalid: ${missing}`);
    }
    const claims = parsed.data;
    const nowS = Date.now() / 1000;
    const tolerance = this.options.clockToleranceS;
    if (claims.iat > nowS + tolerance) throw new AppError('token_invalid', 'token is issued in the future');
    if (claims.exp - claims.iat > this.options.maxLifetimeS + tolerance)
      throw new AppError('token_invalid', 'token lifetime exceeds the maximum');

    return {
      jti: claims.jti,
      tenantId: claims.tid,
      roomId: claims.room,
      userId: claims.sub,
      name: claims.name ?? claims.sub,
      grants: { ...NO_GRANTS, ...claims.grants },
      metadata: (claims.metadata ?? {}) as Metadata,
      issuedAt: new Date(claims.iat * 1000),
      expiresAt: new Date(claims.exp * 1000),
    };
  }
}

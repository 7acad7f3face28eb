/** Tenant: mint and revoke join tokens. */
import { randomBytes } from 'node:crypto';
import type { Grants, Metadata } from '../../../protocol/events.js';
import { resolveGrants, sha256Hex } from '../../../config/index.js';
import { AppError } from '../../errors.js';
import type { ApiContext } from './context.js';
import { defineRoute, type ApiRoute } from './routes.js';
import { createTokenBody, revokeResponse, revokeTokenBody, tokenResponse } from './schemas.js';

const DEFAULT_DURATION_S = 3600;

/** Role preset (or guest) with explicit grants on top; explicit grants alone start from none. */
function grantsOf(ctx: ApiContext, role: string | undefined, grants: Partial<Grants> | undefined): Grants {
  const resolved = resolveGrants(ctx.config.roles, role, grants);
  if (!resolved) throw new AppError('payload_invalid', `body.role: unknown role "${role}"`);
  return resolved;
}

export function tokenRoutes(ctx: ApiContext): ApiRoute[] {
  return [
    defineRoute({
      operationId: 'createToken',
      method: 'post',
      path: '/api/v1/tokens',
      tag: 'tokens',
      summary: 'Mint a join token',
      description:
        'duration defaults to 3600 s and is capped by the tenant max_token_lifetime_s and the server TOKEN_MAX_LIFETIME_S. ' +
        'The token is recorded by jti and sha256 only. Response carries Cache-Control: no-store. ' +
        'user_id, jti and grants in the response are additions to the core contract. ' +
        "In a cluster, ws_url is the room's node: its live owner, else the least loaded serving node (nothing is claimed here).",
      auth: 'tenant',
      limiter: 'tokens',
      body: createTokenBody,
      responses: { 201: { description: 'minted', schema: tokenResponse } },
      async handle({ body, tenant }) {
        const grants = grantsOf(ctx, body.role, body.grants);
        const ttlS = Math.min(body.duration ?? DEFAULT_DURATION_S, tenant.limits.max_token_lifetime_s, ctx.config.auth.maxTokenLifetimeS);
        const userId = body.user_id ?? `u_${randomBytes(9).toString('base64url')}`;
        const minted = ctx.tokens.mint({
          tenantId: tenant.tenant_id,
          roomId: body.room_id,
          userId,
          name: body.user_name,
          grants,
          metadata: body.metadata as Metadata | undefined,
          ttlS,
        });
        await ctx.store.tokens.record({
          jti: minted.jti,
          tenant_id: tenant.tenant_id,
          room_id: body.room_id,
          user_id: userId,
          token_sha256: sha256Hex(minted.token),
          expires_at: minted.expiresAt,
          revoked_at: null,
          created_at: new Date(),
        });
        return {
          status: 201,
          body: {
            token: minted.token,
            expires_at: minted.expiresAt.toISOString(),
            room_id: body.room_id,
            user_id: userId,
            user_name: body.user_name,
            jti: minted.jti,
            grants,
            ws_url: await ctx.gateway.wsUrlFor(tenant.tenant_id, body.room_id),
            ice_servers: ctx.iceServers(userId),
          },
        };
      },
    }),
    defineRoute({
      operationId: 'revokeToken',
      method: 'post',
      path: '/api/v1/tokens/revoke',
      tag: 'tokens',
      summary: 'Revoke a token by jti',
      description:
        'Live sockets of the token are disconnected at once (error token_revoked) and it can never connect again. ' +
        'Revocation is scoped to the calling tenant: a jti this server never minted for it (e.g. from the CLI) is recorded as revoked ' +
        "for the calling tenant only, and another tenant's token with that jti is not affected. The answer is 200 either way, " +
        "so it tells nothing about other tenants' tokens.",
      auth: 'tenant',
      limiter: 'tokens',
      body: revokeTokenBody,
      responses: { 200: { description: 'revoked', schema: revokeResponse } },
      async handle({ body, tenant }) {
        const record = await ctx.store.tokens.get(tenant.tenant_id, body.jti);
        // Unknown jti: keep the revocation as long as any token could live.
        const expiresAt =
          record?.expires_at ?? new Date(Date.now() + (ctx.config.auth.maxTokenLifetimeS + ctx.config.auth.clockToleranceS) * 1000);
        await ctx.store.tokens.revoke(tenant.tenant_id, body.jti, expiresAt);
        ctx.gateway.disconnectToken(tenant.tenant_id, body.jti);
        return { status: 200, body: { jti: body.jti, revoked: true } };
      },
    }),
  ];
}

/** Admin: tenants. Tenant: its own webhook. */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../../config/index.js';
import { AppError } from '../../errors.js';
import type { WebhookConfig } from '../../store/Store.js';
import type { ApiContext } from './context.js';
import { defineRoute, type ApiRoute } from './routes.js';
import { createTenantBody, tenantCreatedResponse, webhookInput, webhookResponse, webhookStatusResponse } from './schemas.js';

const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** A checked webhook config; the secret is generated when not given. */
function webhookConfig(ctx: ApiContext, input: { url: string; secret?: string | undefined }): WebhookConfig {
  const problem = ctx.webhooks.policy.problem(input.url);
  if (problem) throw new AppError('payload_invalid', `webhook.url: ${problem}`);
  return { url: input.url, secret: input.secret ?? `whsec_${randomBytes(24).toString('base64url')}` };
}

export function tenantRoutes(ctx: ApiContext): ApiRoute[] {
  return [
    defineRoute({
      operationId: 'createTenant',
      method: 'post',
      path: '/api/v1/tenants',
      tag: 'tenants',
      summary: 'Create a tenant (admin)',
      description: 'Returns the API secret once; only its sha256 is stored. Limits default to the server configuration.',
      auth: 'admin',
      limiter: 'admin',
      body: createTenantBody,
      errors: ['conflict'],
      responses: { 201: { description: 'created', schema: tenantCreatedResponse } },
      async handle({ body }) {
        const webhook = body.webhook ? webhookConfig(ctx, body.webhook) : null;
        const apiSecret = `sk_${randomBytes(32).toString('base64url')}`;
        const record = {
          tenant_id: `tn_${randomHex(12)}`,
          name: body.name,
          api_key: `ak_${randomHex(12)}`,
          api_secret_sha256: sha256Hex(apiSecret),
          limits: { ...ctx.config.defaultTenantLimits, ...body.limits },
          webhook,
          created_at: new Date(),
        };
        await ctx.store.tenants.create(record);
        ctx.logger.info({ tenant: record.tenant_id }, 'tenant created');
        const { api_secret_sha256: _hash, ...visible } = record;
        return { status: 201, body: { ...visible, api_secret: apiSecret, created_at: record.created_at.toISOString() } };
      },
    }),
    defineRoute({
      operationId: 'getWebhook',
      method: 'get',
      path: '/api/v1/webhook',
      tag: 'webhooks',
      summary: "The tenant's webhook URL (never the secret)",
      auth: 'tenant',
      responses: { 200: { description: 'the webhook, or null', schema: webhookStatusResponse } },
      async handle({ tenant }) {
        return { status: 200, body: { webhook: tenant.webhook ? { url: tenant.webhook.url } : null } };
      },
    }),
    defineRoute({
      operationId: 'setWebhook',
      method: 'put',
      path: '/api/v1/webhook',
      tag: 'webhooks',
      summary: "Set the tenant's webhook URL and signing secret",
      description:
        'Addition to the core contract. Events: room_started, room_finished, participant_joined, participant_left, mode_changed. ' +
        'Each POST carries X-Switchboard-Timestamp and X-Switchboard-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>. ' +
        'The secret is generated when not given and returned only in this response.',
      auth: 'tenant',
      body: webhookInput,
      responses: { 200: { description: 'the webhook with its secret', schema: webhookResponse } },
      async handle({ body, tenant }) {
        const webhook = webhookConfig(ctx, body);
        await ctx.store.tenants.update(tenant.tenant_id, { webhook });
        return { status: 200, body: webhook };
      },
    }),
    defineRoute({
      operationId: 'deleteWebhook',
      method: 'delete',
      path: '/api/v1/webhook',
      tag: 'webhooks',
      summary: "Remove the tenant's webhook",
      auth: 'tenant',
      responses: { 204: { description: 'removed (or there was none)' } },
      async handle({ tenant }) {
        await ctx.store.tenants.update(tenant.tenant_id, { webhook: null });
        return { status: 204 };
      },
    }),
  ];
}

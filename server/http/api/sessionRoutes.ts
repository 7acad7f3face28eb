/** Tenant: session audit records and usage. */
import { DEFAULT_PAGE_SIZE } from '../../store/paging.js';
import type { ApiContext } from './context.js';
import { defineRoute, type ApiRoute } from './routes.js';
import { MAX_WINDOW_DAYS, sessionListResponse, sessionsQuery, usageQuery, usageResponse } from './schemas.js';
import { sessionView, usageView } from './views.js';

export function sessionRoutes(ctx: ApiContext): ApiRoute[] {
  return [
    defineRoute({
      operationId: 'listSessions',
      method: 'get',
      path: '/api/v1/sessions',
      tag: 'sessions',
      summary: 'Sessions (join -> leave), oldest first, optionally of one room and overlapping [from, to)',
      description:
        `from and to, when both given, at most ${MAX_WINDOW_DAYS} days apart (else 400 payload_invalid). ` +
        "A session whose server stopped heartbeating (crash) reads as ended at its last heartbeat with disconnect_reason 'lost'.",
      auth: 'tenant',
      query: sessionsQuery,
      responses: { 200: { description: 'a page of sessions', schema: sessionListResponse } },
      async handle({ query, tenant }) {
        const page = await ctx.store.sessions.list(tenant.tenant_id, {
          ...(query.room_id !== undefined ? { room_id: query.room_id } : {}),
          ...(query.from !== undefined ? { from: new Date(query.from) } : {}),
          ...(query.to !== undefined ? { to: new Date(query.to) } : {}),
          limit: query.limit ?? DEFAULT_PAGE_SIZE,
          cursor: query.cursor ?? null,
        });
        return { status: 200, body: { sessions: page.items.map(sessionView), next_cursor: page.next } };
      },
    }),
    defineRoute({
      operationId: 'getUsage',
      method: 'get',
      path: '/api/v1/usage',
      tag: 'sessions',
      summary: 'Participant-minutes over [from, to), in total, by mode and by room',
      description:
        `from and to at most ${MAX_WINDOW_DAYS} days apart (else 400 payload_invalid). Sessions still open count up to now; ` +
        'a session whose server stopped heartbeating (crash) counts up to its last heartbeat. Values are rounded to 0.001 minute.',
      auth: 'tenant',
      query: usageQuery,
      responses: { 200: { description: 'usage', schema: usageResponse } },
      async handle({ query, tenant }) {
        const from = new Date(query.from);
        const to = new Date(query.to);
        const rows = await ctx.store.sessions.usage(tenant.tenant_id, from, to);
        return { status: 200, body: usageView(rows, from, to) };
      },
    }),
  ];
}

/**
 * The tenant, token, room, session and admin HTTP API under /api/v1, mounted by createServer
 * through createHttpApp's mount hook. Every route comes from one table (routes.ts) that also
 * produces the OpenAPI document served at /api/v1/openapi.json.
 */
import type { Express } from 'express';
import { buildOpenApiDocument, OPENAPI_PATH } from '../openapi.js';
import { adminAuth, tenantAuth } from './auth.js';
import type { ApiContext } from './context.js';
import { createApiLimiters } from './rateLimits.js';
import { roomRoutes } from './roomRoutes.js';
import { defineRoute, registerRoutes, type ApiRoute } from './routes.js';
import { sessionRoutes } from './sessionRoutes.js';
import { tenantRoutes } from './tenantRoutes.js';
import { tokenRoutes } from './tokenRoutes.js';

export type { ApiContext } from './context.js';
export type { ApiRateLimits } from './rateLimits.js';

/** Registers the API on the app; returns the route table (for the OpenAPI document and tests). */
export function mountApi(app: Express, ctx: ApiContext): readonly ApiRoute[] {
  // Responses hold tenant data and secrets shown once: never cache them anywhere.
  app.use('/api/v1', (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  const routes: ApiRoute[] = [...tenantRoutes(ctx), ...tokenRoutes(ctx), ...roomRoutes(ctx), ...sessionRoutes(ctx)];
  let document: object | undefined;
  routes.push(
    defineRoute({
      operationId: 'getOpenApi',
      method: 'get',
      path: OPENAPI_PATH,
      tag: 'operations',
      summary: 'This OpenAPI 3.1 document',
      auth: 'public',
      responses: { 200: { description: 'the document' } },
      async handle() {
        document ??= buildOpenApiDocument(routes, ctx.config.http.publicUrl);
        return { status: 200, body: document };
      },
    }),
  );
  registerRoutes(app, routes, {
    tenantAuth: tenantAuth(ctx.store),
    adminAuth: adminAuth(ctx.config.auth.adminApiKey),
    limiters: createApiLimiters(ctx.rateLimits),
  });
  return routes;
}

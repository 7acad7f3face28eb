/**
 * The OpenAPI 3.1 document of the whole HTTP API, generated from the route table (the same
 * declarations express registers) plus the infrastructure routes of app.ts. JSON Schemas come
 * from the zod schemas the routes validate with, so the document cannot drift from the code.
 * Routes added outside the table must be described in INFRASTRUCTURE_ROUTES (a test checks
 * that every express route is documented).
 */
import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from '../../protocol/errors.js';
import { routeErrors, type ApiRoute } from './api/routes.js';
import { errorResponse } from './api/schemas.js';

export const OPENAPI_PATH = '/api/v1/openapi.json';

type JsonObject = Record<string, unknown>;

interface InfrastructureRoute {
  method: 'get' | 'post';
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  requestBody?: JsonObject;
  responses: JsonObject;
}

const text = (description: string): JsonObject => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
const json = (description: string, schema: JsonObject): JsonObject => ({ description, content: { 'application/json': { schema } } });
const readiness = {
  type: 'object',
  properties: { status: { enum: ['ready', 'not_ready'] }, checks: { type: 'object', additionalProperties: { type: 'boolean' } } },
};

/** Routes registered outside the route table: app.ts (health, readiness, metrics) and frontend.ts (demo). */
export const INFRASTRUCTURE_ROUTES: readonly InfrastructureRoute[] = [
  {
    method: 'get',
    path: '/health',
    operationId: 'health',
    summary: 'Liveness: the process answers',
    responses: { 200: json('alive', { type: 'object', properties: { status: { const: 'ok' } } }) },
  },
  {
    method: 'get',
    path: '/ready',
    operationId: 'ready',
    summary: 'Readiness: the store answers, SFU workers are alive and the server is not shutting down',
    responses: { 200: json('ready', readiness), 503: json('not ready', readiness) },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics (text exposition format); served here only with METRICS_PORT=0, else on METRICS_HOST:METRICS_PORT',
    responses: { 200: text('metrics') },
  },
  {
    method: 'get',
    path: '/',
    operationId: 'demoPage',
    summary: 'The demo page (HTML); its assets are under /demo/ and the browser SDK bundle under /sdk/',
    responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
  },
  {
    method: 'post',
    path: '/dev/token',
    operationId: 'devToken',
    summary:
      'Dev mode only (DEV_TOKEN_ROUTE, never in production): a demo token for the dev tenant, so the demo page works without a backend',
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { room: { type: 'string' }, name: { type: 'string', maxLength: 64 }, role: { type: 'string', default: 'guest' } },
            required: ['room', 'name'],
            additionalProperties: false,
          },
        },
      },
    },
    responses: {
      201: json('minted', {
        type: 'object',
        properties: { token: { type: 'string' }, expires_at: { type: 'string', format: 'date-time' } },
      }),
      400: { description: 'payload_invalid', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    },
  },
];

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonObject;
  delete out.$schema;
  return out;
}

/** /api/v1/rooms/:roomId -> /api/v1/rooms/{roomId} */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonObject[] {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input');
  const properties = (object.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, in: where, required: where === 'path' || required.has(name), ...(description ? { description } : {}), schema: rest };
  });
}

function errorResponses(codes: ErrorCode[]): JsonObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ErrorCodes[code], [...(byStatus.get(ErrorCodes[code]) ?? []), code]);
  const responses: JsonObject = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = {
      description: list.join(', '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      ...(status === 429 ? { headers: { 'Retry-After': { description: 'seconds to wait', schema: { type: 'integer' } } } } : {}),
    };
  }
  return responses;
}

function operation(route: ApiRoute): JsonObject {
  const responses: JsonObject = {};
  for (const [status, doc] of Object.entries(route.responses)) {
    responses[status] = doc.schema ? json(doc.description, jsonSchema(doc.schema, 'output')) : { description: doc.description };
  }
  Object.assign(responses, errorResponses(routeErrors(route)));
  const security = route.auth === 'tenant' ? [{ tenantSecret: [] }] : route.auth === 'admin' ? [{ adminKey: [] }] : [];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security,
    parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
    ...(route.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } }
      : {}),
    responses,
  };
}

/** Builds the document for the given route table. */
export function buildOpenApiDocument(routes: readonly ApiRoute[], serverUrl: string): JsonObject {
  const paths: Record<string, JsonObject> = {};
  const add = (path: string, method: string, op: JsonObject): void => {
    const key = openApiPath(path);
    paths[key] = { ...paths[key], [method]: op };
  };
  for (const { method, path, ...rest } of INFRASTRUCTURE_ROUTES) add(path, method, { ...rest, tags: ['operations'], security: [] });
  for (const route of routes) add(route.path, route.method, operation(route));
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Switchboard HTTP API',
      version: '1.0.0',
      description:
        'Tenant calls: Authorization: Bearer <tenant API secret>. Admin calls: Authorization: Bearer <ADMIN_API_KEY>. ' +
        'Errors are {"error":{"code","message"}} with the stable codes of the README. ' +
        'Signaling is Socket.IO on the same origin (path /socket.io/), with the token in the handshake auth payload.',
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      securitySchemes: {
        tenantSecret: { type: 'http', scheme: 'bearer', description: 'tenant API secret (sk_...)' },
        adminKey: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY' },
      },
      schemas: { Error: jsonSchema(errorResponse, 'output') },
    },
  };
}

/**
 * The route table: one declaration per HTTP API route (method, path, auth, schemas, rate
 * limit, documented responses, handler). registerRoutes() turns it into express routes and
 * openapi.ts turns the same table into the OpenAPI document, so the two cannot drift.
 * Every route validates its path parameters, query and body with strict schemas before its
 * handler runs (unknown keys, operator objects and wrong types -> 400 payload_invalid).
 */
import type { Express, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import type { ErrorCode } from '../../../protocol/errors.js';
import { AppError } from '../../errors.js';
import type { TenantRecord } from '../../store/Store.js';
import { asyncHandler } from '../app.js';
import { emptyQuery } from './schemas.js';

export type AuthKind = 'tenant' | 'admin' | 'public';
export type HttpMethod = 'get' | 'post' | 'put' | 'delete';
/** Rate limiters a route may name; keyed by client IP (before auth) or tenant (after auth). */
export type LimiterName = 'admin' | 'tokens';

export interface ResponseDoc {
  description: string;
  /** Documents the JSON body (not enforced at runtime). */
  schema?: z.ZodType;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteInput<B, Q, P, A extends AuthKind> {
  body: B;
  query: Q;
  params: P;
  /** The authenticated tenant (tenant routes only). */
  tenant: A extends 'tenant' ? TenantRecord : null;
  req: Request;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

interface RouteSpec<A extends AuthKind, BS, QS, PS> {
  operationId: string;
  method: HttpMethod;
  /** Express path, e.g. /api/v1/rooms/:roomId. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  auth: A;
  body?: BS;
  query?: QS;
  params?: PS;
  limiter?: LimiterName;
  /** Error codes this route answers besides those implied by auth, validation and limits. */
  errors?: ErrorCode[];
  responses: Record<number, ResponseDoc>;
  handle(input: RouteInput<Parsed<BS>, Parsed<QS>, Parsed<PS>, A>): Promise<RouteResult>;
}

/** A route with its types erased, as the table holds it. */
export interface ApiRoute {
  operationId: string;
  method: HttpMethod;
  path: string;
  summary: string;
  description?: string;
  tag: string;
  auth: AuthKind;
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  limiter?: LimiterName;
  errors?: ErrorCode[];
  responses: Record<number, ResponseDoc>;
  handle(input: RouteInput<unknown, unknown, unknown, AuthKind>): Promise<RouteResult>;
}

/** Declares a route; the handler's input is typed from the schemas. */
export function defineRoute<
  A extends AuthKind,
  BS extends z.ZodType | undefined = undefined,
  QS extends z.ZodType | undefined = undefined,
  PS extends z.ZodType | undefined = undefined,
>(spec: RouteSpec<A, BS, QS, PS>): ApiRoute {
  return spec as unknown as ApiRoute;
}

/** Error codes a route can answer, implied ones included (for the OpenAPI document). */
export function routeErrors(route: ApiRoute): ErrorCode[] {
  const codes = new Set<ErrorCode>(route.errors ?? []);
  codes.add('payload_invalid');
  codes.add('rate_limited');
  codes.add('internal');
  if (route.auth === 'tenant') {
    codes.add('unauthorized');
    // The tenant is read from the store, which may not answer (tenantAuth).
    codes.add('unavailable');
  }
  if (route.auth === 'admin') {
    codes.add('unauthorized');
    codes.add('forbidden');
  }
  return [...codes];
}

export interface RouteGuards {
  tenantAuth: RequestHandler;
  adminAuth: RequestHandler;
  limiters: Record<LimiterName, { keyedBy: 'ip' | 'tenant'; handler: RequestHandler }>;
}

/** The tenant set by the tenant auth middleware. */
export function tenantOf(res: Response): TenantRecord {
  const tenant = (res.locals as { tenant?: TenantRecord }).tenant;
  if (!tenant) throw new Error('[tenantOf] tenant auth did not run');
  return tenant;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((issue) => `${[where, ...issue.path.map(String)].join('.')}: ${issue.message}`)
    .join('; ');
  throw new AppError('payload_invalid', problems);
}

/** Registers every route on the app: IP limits, auth, tenant limits, validation, handler. */
export function registerRoutes(app: Express, routes: readonly ApiRoute[], guards: RouteGuards): void {
  for (const route of routes) {
    const chain: RequestHandler[] = [];
    const limiter = route.limiter ? guards.limiters[route.limiter] : undefined;
    if (limiter?.keyedBy === 'ip') chain.push(limiter.handler);
    if (route.auth === 'tenant') chain.push(guards.tenantAuth);
    if (route.auth === 'admin') chain.push(guards.adminAuth);
    if (limiter?.keyedBy === 'tenant') chain.push(limiter.handler);
    chain.push(
      asyncHandler(async (req, res) => {
        const params = route.params ? parse(route.params, { ...req.params }, 'params') : undefined;
        const query = parse(route.query ?? emptyQuery, { ...req.query }, 'query');
        const body = route.body ? parse(route.body, req.body, 'body') : undefined;
        const tenant = route.auth === 'tenant' ? tenantOf(res) : null;
        const result = await route.handle({ body, query, params, tenant, req });
        if (result.body === undefined) res.status(result.status).end();
        else res.status(result.status).json(result.body);
      }),
    );
    app[route.method](route.path, ...chain);
  }
}

/** Helpers for the HTTP API tests: real fetch against a real server on 127.0.0.1:0. */
import { expect } from 'chai';
import type { JoinResult } from '../../protocol/events.js';
import { emitAck, type TestClient, type TestServer } from '../helpers/server.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: T & Record<string, any>;
  headers: Headers;
}

export interface ApiTenant {
  tenant_id: string;
  api_key: string;
  api_secret: string;
}

export interface RequestOptions {
  /** Bearer credential. */
  secret?: string;
  body?: unknown;
  /** Sent as is (for malformed JSON). */
  rawBody?: string;
  headers?: Record<string, string>;
}

/** One HTTP call; JSON in, JSON (or nothing) out. */
export async function call(t: TestServer, method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.secret !== undefined) headers.authorization = `Bearer ${options.secret}`;
  let body: string | undefined;
  if (options.rawBody !== undefined || options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = options.rawBody ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${t.url}${path}`, { method, headers, body });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {}, headers: response.headers };
}

/** The admin key the test server generated (test mode generates one, like dev mode). */
export function adminKey(t: TestServer): string {
  const key = t.server.config.auth.adminApiKey;
  if (!key) throw new Error('no admin key configured');
  return key;
}

/** Creates a tenant through the admin API. */
export async function createTenant(t: TestServer, body: Record<string, unknown> = { name: 'acme' }): Promise<ApiTenant> {
  const response = await call(t, 'POST', '/api/v1/tenants', { secret: adminKey(t), body });
  expect(response.status, JSON.stringify(response.body)).to.equal(201);
  return response.body as unknown as ApiTenant;
}

export interface MintedToken {
  token: string;
  jti: string;
  user_id: string;
  expires_at: string;
}

/** Mints a token through POST /api/v1/tokens. */
export async function mintToken(t: TestServer, tenant: ApiTenant, body: Record<string, unknown>): Promise<MintedToken> {
  const response = await call(t, 'POST', '/api/v1/tokens', { secret: tenant.api_secret, body: { user_name: 'Tester', ...body } });
  expect(response.status, JSON.stringify(response.body)).to.equal(201);
  return response.body as unknown as MintedToken;
}

/** Mints over HTTP, connects and joins. */
export async function joinVia(
  t: TestServer,
  tenant: ApiTenant,
  body: Record<string, unknown>,
): Promise<{ client: TestClient; ack: JoinResult; minted: MintedToken }> {
  const minted = await mintToken(t, tenant, body);
  const client = await t.connect(minted.token);
  const ack = await emitAck(client, 'join', {});
  if (!ack.ok) throw new Error(`join failed: ${ack.error.code} ${ack.error.message}`);
  return { client, ack: ack as unknown as JoinResult, minted };
}

/** Joins and resolves with the ack (ok or not) without throwing. */
export async function tryJoin(t: TestServer, token: string): Promise<{ client: TestClient; code: string | null }> {
  const client = await t.connect(token);
  const ack = await emitAck(client, 'join', {});
  return { client, code: ack.ok ? null : ack.error.code };
}

/**
 * Everything the in-memory store holds, as one string: walks every Map/array/object reachable
 * from the store instance (records included), so a secret or token stored anywhere shows up.
 */
export function storeContents(store: object): string {
  const seen = new Set<unknown>();
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string') {
      parts.push(value);
      return;
    }
    if (typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (value instanceof Date) return;
    if (value instanceof Map) {
      for (const [key, item] of value) {
        walk(key);
        walk(item);
      }
      return;
    }
    if (value instanceof Set || Array.isArray(value)) {
      for (const item of value) walk(item);
      return;
    }
    for (const key of Object.keys(value)) {
      parts.push(key);
      walk((value as Record<string, unknown>)[key]);
    }
  };
  walk(store);
  return parts.join('\n');
}

/** All token records of the memory store (through its private map). */
export function tokenRecordCount(store: object): number {
  const map = (store as { tokensByKey?: Map<string, unknown> }).tokensByKey;
  if (!(map instanceof Map)) throw new Error('not a MemoryStore');
  return map.size;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Helpers for tests that run a real Switchboard on 127.0.0.1:0 with real Socket.IO clients. */
import { randomBytes } from 'node:crypto';
import { io as ioClient, type Socket as ClientSocket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import jwt from 'jsonwebtoken';
import type { AckResponse, ClientToServerEvents, Grants, JoinResult, ServerToClientEvents } from '../../protocol/events.js';
import { DEFAULT_ROLES, sha256Hex, testConfig } from '../../config/index.js';
import { createServer, type CreateServerOptions, type SwitchboardServer } from '../../server/index.js';
import type { TenantRecord } from '../../server/store/Store.js';
import { withFreeSfuPort } from './ports.js';

export type TestClient = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

export const TEST_KID = 'k1';
export const TEST_SECRET = 'test-secret-0123456789-0123456789-abcdef';

export interface TestServer {
  server: SwitchboardServer;
  url: string;
  /** Mints a token through the server's own TokenService. */
  mint(options: MintOptions): string;
  /** Connects a client and resolves once connected (rejects with the connect_error). */
  connect(token: string | undefined, options?: Partial<ManagerOptions & SocketOptions>): Promise<TestClient>;
  /** Connects and joins; returns the client and the join ack. */
  join(options: MintOptions): Promise<{ client: TestClient; ack: JoinAck }>;
  /** Adds a tenant directly in the store. */
  addTenant(tenantId: string, limits?: Partial<TenantRecord['limits']>): Promise<void>;
  close(): Promise<void>;
}

export interface MintOptions {
  room: string;
  user?: string;
  name?: string;
  tenant?: string;
  role?: keyof typeof DEFAULT_ROLES;
  grants?: Partial<Grants>;
  ttlS?: number;
}

export type JoinAck = JoinResult;

export async function startServer(env: Record<string, string> = {}, options: CreateServerOptions = {}): Promise<TestServer> {
  const config = testConfig(await withFreeSfuPort({ SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`, ROOM_EMPTY_TIMEOUT_MS: '100', ...env }));
  const server = await createServer(config, options);
  const clients = new Set<TestClient>();
  await server.store.tenants.create(tenantRecord('t1'));

  const api: TestServer = {
    server,
    url: server.url,
    mint(o) {
      const grants = { ...DEFAULT_ROLES[o.role ?? 'guest'], ...o.grants } as Grants;
      return server.tokens.mint({
        tenantId: o.tenant ?? 't1',
        roomId: o.room,
        userId: o.user ?? `u-${randomBytes(4).toString('hex')}`,
        name: o.name ?? o.user ?? 'tester',
        grants,
        ttlS: o.ttlS ?? 600,
      }).token;
    },
    connect(token, options = {}) {
      const client: TestClient = ioClient(server.url, {
        auth: token === undefined ? {} : { token },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        ...options,
      });
      clients.add(client);
      return new Promise((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('connect_error', (error) => {
          client.close();
          reject(error);
        });
      });
    },
    async join(o) {
      const client = await api.connect(api.mint(o));
      const ack = await emitAck(client, 'join', {});
      if (!ack.ok) throw new Error(`join failed: ${ack.error.code} ${ack.error.message}`);
      return { client, ack: ack as unknown as JoinAck };
    },
    async addTenant(tenantId, limits = {}) {
      await server.store.tenants.create(tenantRecord(tenantId, limits));
    },
    async close() {
      for (const client of clients) client.close();
      await server.close();
    },
  };
  return api;

  function tenantRecord(tenantId: string, limits: Partial<TenantRecord['limits']> = {}): TenantRecord {
    return {
      tenant_id: tenantId,
      name: tenantId,
      api_key: `key-${tenantId}`,
      api_secret_sha256: sha256Hex(`secret-${tenantId}`),
      limits: { ...config.defaultTenantLimits, ...limits },
      webhook: null,
      created_at: new Date(),
    };
  }
}

/** Emits with an ack and resolves with the response (or rejects after a timeout). */
export function emitAck(client: TestClient, event: string, ...args: unknown[]): Promise<AckResponse<Record<string, unknown>>> {
  return (
    client.timeout(5000) as unknown as { emitWithAck(event: string, ...args: unknown[]): Promise<AckResponse<Record<string, unknown>>> }
  ).emitWithAck(event, ...args);
}

/** Resolves with the next occurrence of an event (or rejects after a timeout). */
export function nextEvent<T = unknown>(client: TestClient, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
    (client as unknown as { once(event: string, listener: (value: T) => void): void }).once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Collects every occurrence of an event into an array. */
export function collect<T = unknown>(client: TestClient, event: string): T[] {
  const items: T[] = [];
  (client as unknown as { on(event: string, listener: (value: T) => void): void }).on(event, (value: T) => items.push(value));
  return items;
}

/** Every event a client receives from now on, by event name. */
export function recordEvents(client: TestClient): Map<string, unknown[]> {
  const seen = new Map<string, unknown[]>();
  client.onAny((event: string, payload: unknown) => seen.set(event, [...(seen.get(event) ?? []), payload]));
  return seen;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when the predicate holds, polling; rejects after the timeout. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Signs arbitrary claims/headers with the test key, for forging bad tokens. */
export function signRaw(claims: Record<string, unknown>, options: jwt.SignOptions & { secret?: string } = {}): string {
  const { secret = TEST_SECRET, ...signOptions } = options;
  const defined = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined));
  return jwt.sign(defined, secret, { algorithm: 'HS256', keyid: TEST_KID, ...signOptions });
}

/** The claims a valid token carries, for tests that tweak one of them. */
export function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'switchboard',
    aud: 'switchboard',
    sub: 'user-1',
    tid: 't1',
    room: 'room-a',
    name: 'User One',
    grants: { roomJoin: true, canPublish: true, canSubscribe: true, canPublishData: true },
    jti: randomBytes(12).toString('hex'),
    iat: now,
    exp: now + 600,
    ...overrides,
  };
}

/** Expects a promise to reject with a connect_error carrying the given code. */
export async function expectConnectError(
  promise: Promise<unknown>,
): Promise<{ message: string; data?: { code: string; message: string } }> {
  try {
    await promise;
  } catch (error) {
    return error as { message: string; data?: { code: string; message: string } };
  }
  throw new Error('expected the connection to be refused');
}

/** A stored room pinned to the SFU, so its first join puts it there. */
export async function storeSfuRoom(t: TestServer, roomId: string, tenantId = 't1'): Promise<void> {
  const now = new Date();
  await t.server.store.rooms.create({
    tenant_id: tenantId,
    room_id: roomId,
    name: roomId,
    description: '',
    max_participants: null,
    mesh_threshold: null,
    max_screen_shares: null,
    mode: 'sfu',
    locked: false,
    metadata: {},
    expires_at: null,
    created_at: now,
    updated_at: now,
  });
}

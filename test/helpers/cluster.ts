/**
 * Several Switchboard nodes in the test process, one cluster on one redis-server: each node is
 * a createServer with its own NODE_ID on 127.0.0.1:0, REDIS_URL (the Redis store and the
 * cluster), the same signing keys, and fast cluster timings. close() stops every node still
 * running and empties Redis for the next test.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { io as ioClient, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import type { Grants } from '../../protocol/events.js';
import { DEFAULT_ROLES, sha256Hex, testConfig } from '../../config/index.js';
import { createServer, type SwitchboardServer } from '../../server/index.js';
import { withFreeSfuPort } from './ports.js';
import { startRedisOrSkip, type RedisServer } from './redis.js';
import { TEST_KID, TEST_SECRET, type MintOptions, type TestClient } from './server.js';

/** Heartbeats and leases a few times faster than production's. */
export const FAST_CLUSTER_ENV: Record<string, string> = {
  CLUSTER_HEARTBEAT_MS: '100',
  ROOM_LEASE_MS: '1200',
};

export interface ClusterNode {
  id: string;
  server: SwitchboardServer;
  /** The node's listening URL (also its registered ws_url). */
  url: string;
  /** Whether close() has not been called on it. */
  running: boolean;
}

/** What connect() rejects with: the connect_error, its data included. */
export interface ConnectRefusal extends Error {
  data?: { code: string; message: string; ws_url?: string };
}

export interface TestCluster {
  readonly nodes: ClusterNode[];
  /** Mints a token (every node verifies it: one signing key). */
  mint(options: MintOptions): string;
  /** Connects a raw Socket.IO client to `url`; rejects with the connect_error. */
  connect(url: string, auth: Record<string, unknown>, options?: Partial<ManagerOptions & SocketOptions>): Promise<TestClient>;
  /** Stores a tenant (key-<id>, secret-<id>) through node 0's store, which every node shares. */
  addTenant(tenantId: string): Promise<void>;
  /** Stops one node (its close(): registry entry removed, leases released). */
  stopNode(index: number): Promise<void>;
  /** Closes every client, stops every running node, empties Redis. */
  close(): Promise<void>;
}

/**
 * Starts `count` nodes on the redis-server at redisUrl, one after the other (ids n0, n1, ...),
 * with the tenant t1 stored. `env` is added to every node's settings.
 */
export async function startCluster(redisUrl: string, count: number, env: Record<string, string> = {}): Promise<TestCluster> {
  const nodes: ClusterNode[] = [];
  const clients = new Set<TestClient>();
  const suffix = randomBytes(3).toString('hex');
  const settings = {
    SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`,
    ROOM_EMPTY_TIMEOUT_MS: '100',
    REDIS_URL: redisUrl,
    ADMIN_API_KEY: CLUSTER_ADMIN_KEY,
    ...FAST_CLUSTER_ENV,
    ...env,
  };
  try {
    for (let i = 0; i < count; i++) {
      const id = `n${i}-${suffix}`;
      const server = await createServer(testConfig(await withFreeSfuPort({ ...settings, NODE_ID: id })));
      nodes.push({ id, server, url: server.url, running: true });
    }
  } catch (error) {
    await Promise.all(nodes.map((node) => node.server.close()));
    throw error;
  }
  const first = nodes[0];
  if (!first) throw new Error('a cluster needs a node');

  const cluster: TestCluster = {
    nodes,
    mint(o) {
      const grants = { ...DEFAULT_ROLES[o.role ?? 'guest'], ...o.grants } as Grants;
      return first.server.tokens.mint({
        tenantId: o.tenant ?? 't1',
        roomId: o.room,
        userId: o.user ?? `u-${randomBytes(4).toString('hex')}`,
        name: o.name ?? o.user ?? 'tester',
        grants,
        ttlS: o.ttlS ?? 600,
      }).token;
    },
    connect(url, auth, options = {}) {
      const client: TestClient = ioClient(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true, ...options });
      clients.add(client);
      return new Promise((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('connect_error', (error) => {
          client.close();
          reject(error);
        });
      });
    },
    async addTenant(tenantId) {
      await first.server.store.tenants.create({
        tenant_id: tenantId,
        name: tenantId,
        api_key: `key-${tenantId}`,
        api_secret_sha256: sha256Hex(`secret-${tenantId}`),
        limits: { ...first.server.config.defaultTenantLimits },
        webhook: null,
        created_at: new Date(),
      });
    },
    async stopNode(index) {
      const node = nodes[index];
      if (!node?.running) return;
      node.running = false;
      await node.server.close();
    },
    async close() {
      for (const client of clients) client.close();
      await Promise.all(nodes.map((_, index) => cluster.stopNode(index)));
      const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        await redis.flushall();
      } finally {
        redis.disconnect();
      }
    },
  };
  await cluster.addTenant('t1');
  return cluster;
}

export interface ClusterFixture {
  /** The suite's redis-server (a test may kill or restart it). */
  readonly redis: RedisServer;
  /** Starts the current test's nodes on the suite's redis-server (startCluster); closed after the test. */
  start(count: number, env?: Record<string, string>): Promise<TestCluster>;
}

/**
 * Registers the hooks a suite of startCluster tests shares, in the calling describe(): one
 * redis-server for the suite (the suite is skipped when redis-server is missing), stopped after
 * it; after each test, the redis-server started again if the test killed it (close() empties
 * Redis, so it needs one), then the test's nodes closed. The returned values are valid inside
 * the suite's tests.
 */
export function useCluster(): ClusterFixture {
  let redis: RedisServer | undefined;
  let cluster: TestCluster | undefined;

  before(async function () {
    redis = await startRedisOrSkip(this);
  });

  after(async function () {
    await redis?.stop();
  });

  afterEach(async function () {
    if (redis && !redis.running) await redis.restart();
    await cluster?.close();
    cluster = undefined;
  });

  const server = (): RedisServer => {
    if (!redis) throw new Error("useCluster: no redis-server here (only inside the suite's tests)");
    return redis;
  };
  return {
    get redis() {
      return server();
    },
    async start(count, env = {}) {
      cluster = await startCluster(server().url, count, env);
      return cluster;
    },
  };
}

/** Connects, following one wrong_node redirect; returns the client and the URL it is connected to. */
export async function connectFollowing(
  cluster: TestCluster,
  url: string,
  auth: Record<string, unknown>,
): Promise<{ client: TestClient; url: string; redirected: boolean }> {
  try {
    return { client: await cluster.connect(url, auth), url, redirected: false };
  } catch (error) {
    const target = (error as ConnectRefusal).data?.ws_url;
    if ((error as ConnectRefusal).message !== 'wrong_node' || !target) throw error;
    return { client: await cluster.connect(target, auth), url: target, redirected: true };
  }
}

/** The admin key every node of startCluster shares. */
export const CLUSTER_ADMIN_KEY = 'cluster-admin-key-0123456789-0123456789';

export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON call to a node's HTTP API. */
export async function callNode(
  node: ClusterNode,
  method: string,
  path: string,
  options: { secret?: string; body?: unknown } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (options.secret !== undefined) headers.authorization = `Bearer ${options.secret}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

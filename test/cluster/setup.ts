/**
 * The hooks every cluster suite shares: one redis-server for the suite (the suite is skipped
 * when redis-server is missing), an inspection connection to it, a fresh key prefix for each
 * test, and the nodes and buses a test starts closed after it.
 */
import { Redis } from 'ioredis';
import { ClusterKeys } from '../../server/cluster/keys.js';
import type { RequestKinds } from '../../server/cluster/ClusterBus.js';
import { startRedisOrSkip, type RedisServer } from '../helpers/redis.js';
import { freshPrefix, startBus, startNode, type NodeOptions, type TestBus, type TestNode } from './nodes.js';

export interface ClusterSuiteOptions {
  /**
   * The inspection connection (`raw`): 'plain' (the default); 'tolerant' of a Redis that is
   * killed and restarted (reconnects quickly, never queues a command for long, its errors
   * ignored); or 'none'.
   */
  raw?: 'plain' | 'tolerant' | 'none';
}

export interface ClusterSuite {
  /** The suite's redis-server (a test may kill and restart it). */
  readonly server: RedisServer;
  /** A connection of the test's own, to inspect keys or publish as a stranger. */
  readonly raw: Redis;
  /** The current test's key prefix: a fresh one per test. */
  readonly prefix: string;
  /** The cluster keys under the current test's prefix. */
  readonly keys: ClusterKeys;
  /** A node on the suite's Redis under the test's prefix; closed after the test. */
  startNode(id: string, options?: Omit<NodeOptions, 'prefix'>): Promise<TestNode>;
  /** A bus on the suite's Redis under the test's prefix; closed after the test. */
  startBus<Kinds extends RequestKinds>(id: string, options?: Parameters<typeof startBus>[3]): Promise<TestBus<Kinds>>;
}

/** Registers the shared hooks in the calling describe(); the returned values are valid inside its tests. */
export function clusterSuite(options: ClusterSuiteOptions = {}): ClusterSuite {
  let server: RedisServer | undefined;
  let raw: Redis | undefined;
  let prefix: string | undefined;
  let open: { close(): Promise<void> }[] = [];

  before(async function () {
    server = await startRedisOrSkip(this);
    if (options.raw === 'tolerant') {
      raw = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1, commandTimeout: 500 });
      raw.on('error', () => undefined);
    } else if (options.raw !== 'none') {
      raw = new Redis(server.url);
    }
  });

  after(async function () {
    raw?.disconnect();
    await server?.stop();
  });

  beforeEach(function () {
    prefix = freshPrefix();
  });

  afterEach(async function () {
    await Promise.all(open.map((item) => item.close()));
    open = [];
  });

  const defined = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`clusterSuite: no ${what} here (only inside the suite's tests)`);
    return value;
  };

  return {
    get server() {
      return defined(server, 'redis-server');
    },
    get raw() {
      return defined(raw, 'inspection connection');
    },
    get prefix() {
      return defined(prefix, 'prefix');
    },
    get keys() {
      return new ClusterKeys(defined(prefix, 'prefix'));
    },
    async startNode(id, nodeOptions = {}) {
      const node = await startNode(defined(server, 'redis-server').url, id, { ...nodeOptions, prefix: defined(prefix, 'prefix') });
      open.push(node);
      return node;
    },
    async startBus<Kinds extends RequestKinds>(id: string, busOptions: Parameters<typeof startBus>[3] = {}) {
      const bus = await startBus<Kinds>(defined(server, 'redis-server').url, id, defined(prefix, 'prefix'), busOptions);
      open.push(bus);
      return bus;
    },
  };
}

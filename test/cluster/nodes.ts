/**
 * Several cluster "nodes" in one test process: each has its own Redis connections, registry,
 * leases and (optionally) bus, under a key prefix of the test's own, with fast timings.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ClusterBus, type RequestKinds } from '../../server/cluster/ClusterBus.js';
import {
  closeRedisConnection,
  createRedisConnection,
  createSubscriberConnection,
  type RedisConnectionOptions,
} from '../../server/cluster/connection.js';
import type { RoomKey } from '../../server/cluster/keys.js';
import { NodeRegistry } from '../../server/cluster/NodeRegistry.js';
import { RoomLeases } from '../../server/cluster/RoomLeases.js';
import { AppError } from '../../server/errors.js';
import type { Logger } from '../../server/logger.js';

/** Timings a few times faster than production's, still far above a loaded machine's scheduling delays. */
export const FAST = {
  heartbeatMs: 100,
  nodeTtlMs: 400,
  leaseTtlMs: 1_200,
  renewIntervalMs: 300,
} as const;

/** Connections that fail and reconnect quickly. */
export const FAST_CONNECTION: Omit<RedisConnectionOptions, 'name'> = {
  connectTimeoutMs: 500,
  commandTimeoutMs: 500,
  retryBaseDelayMs: 50,
  maxRetryDelayMs: 200,
};

/** A key prefix no other test of this run uses. */
export const freshPrefix = (): string => `sbtest-${randomBytes(4).toString('hex')}:`;

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The AppError `promise` rejects with; fails when it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected a rejection');
}

/** Polls until `condition` holds; fails with `what` after timeoutMs. Returns how long it took. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await delay(20);
  }
  return Date.now() - started;
}

/** `close` run once: later calls get the first call's promise. */
function once(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

export interface LeaseEvent {
  event: 'lost' | 'uncertain' | 'confirmed' | 'reasserted';
  roomKey: RoomKey;
  epoch: number;
  by?: string | null;
}

export interface TestNode {
  id: string;
  /** The leases' (and bus publisher's) connection. */
  redis: Redis;
  /** The registry's connection: a separate one, so a test can cut heartbeats alone (a node "killed" without cleanup). */
  registryRedis: Redis;
  registry: NodeRegistry;
  leases: RoomLeases;
  /** Every lease event, in order. */
  events: LeaseEvent[];
  load: number;
  /** Stops heartbeats and renewals, removes its registry entry when it can, closes its connections; idempotent. */
  close(): Promise<void>;
}

export interface NodeOptions {
  prefix: string;
  heartbeatMs?: number;
  nodeTtlMs?: number;
  leaseTtlMs?: number;
  renewIntervalMs?: number;
  load?: number;
  logger?: Logger;
}

export async function startNode(url: string, id: string, options: NodeOptions): Promise<TestNode> {
  const redis = createRedisConnection(url, { ...FAST_CONNECTION, name: `${id}-leases`, logger: options.logger });
  const registryRedis = createRedisConnection(url, { ...FAST_CONNECTION, name: `${id}-registry`, logger: options.logger });
  const registry = new NodeRegistry({
    nodeId: id,
    url: `http://${id}.test`,
    wsUrl: `ws://${id}.test`,
    load: () => node.load,
    redis: registryRedis,
    prefix: options.prefix,
    heartbeatMs: options.heartbeatMs ?? FAST.heartbeatMs,
    ttlMs: options.nodeTtlMs ?? FAST.nodeTtlMs,
    logger: options.logger,
  });
  const leases = new RoomLeases({
    registry,
    redis,
    leaseTtlMs: options.leaseTtlMs ?? FAST.leaseTtlMs,
    renewIntervalMs: options.renewIntervalMs ?? FAST.renewIntervalMs,
    logger: options.logger,
  });
  const events: LeaseEvent[] = [];
  leases.on('lost', (roomKey, { by, epoch }) => events.push({ event: 'lost', roomKey, epoch, by }));
  leases.on('uncertain', (roomKey, { epoch }) => events.push({ event: 'uncertain', roomKey, epoch }));
  leases.on('confirmed', (roomKey, { epoch }) => events.push({ event: 'confirmed', roomKey, epoch }));
  leases.on('reasserted', (roomKey, { epoch }) => events.push({ event: 'reasserted', roomKey, epoch }));
  const node: TestNode = {
    id,
    redis,
    registryRedis,
    registry,
    leases,
    events,
    load: options.load ?? 0,
    close: once(async () => {
      await leases.stop();
      await registry.stop();
      await closeRedisConnection(redis);
      await closeRedisConnection(registryRedis);
    }),
  };
  await registry.start();
  leases.start();
  return node;
}

export interface TestBus<Kinds extends RequestKinds> {
  bus: ClusterBus<Kinds>;
  /** Closes the bus and its connections; idempotent. */
  close(): Promise<void>;
}

/** A started bus for node `id` with its own publisher and subscriber connections. */
export async function startBus<Kinds extends RequestKinds>(
  url: string,
  id: string,
  prefix: string,
  options: { defaultTimeoutMs?: number; logger?: Logger } = {},
): Promise<TestBus<Kinds>> {
  const redis = createRedisConnection(url, { ...FAST_CONNECTION, name: `${id}-bus` });
  const subscriber = createSubscriberConnection(url, { ...FAST_CONNECTION, name: `${id}-bus-sub` });
  const bus = new ClusterBus<Kinds>({
    nodeId: id,
    redis,
    subscriber,
    prefix,
    defaultTimeoutMs: options.defaultTimeoutMs,
    logger: options.logger,
  });
  await bus.start();
  return {
    bus,
    close: once(async () => {
      await bus.close();
      await closeRedisConnection(redis);
      await closeRedisConnection(subscriber);
    }),
  };
}

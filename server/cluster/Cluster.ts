/**
 * This node's membership of the cluster (REDIS_URL set): the Redis connections, the node
 * registry, the room leases, the cross-node request bus and Socket.IO's Redis adapter, built
 * and wired in one place.
 *
 * Connections: one command connection shared by the registry, the leases and the bus's
 * publishing; one subscriber for the bus; a publisher and a subscriber of the adapter's own
 * (its traffic never queues behind a lease script, and its subscriptions are its own).
 *
 * Invariants:
 * - a connection is accepted for a room only while this node holds the room's lease
 *   (admitConnection); another live owner means a redirect (`wrong_node` with its ws_url);
 * - a lease is held while the room is live here or a socket of it is connected here, and
 *   released a grace period after neither is true (RoomOwnership);
 * - stop() removes this node's registry entry, releases every lease it still holds and
 *   closes its connections; it never throws and never waits on an unreachable Redis for
 *   longer than the connections' command timeout.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ClusterBus } from './ClusterBus.js';
import {
  closeRedisConnection,
  createRedisConnection,
  createSubscriberConnection,
  describeRedisUrl,
  type RedisConnectionOptions,
} from './connection.js';
import { DEFAULT_CLUSTER_PREFIX, roomKey, type RoomKey } from './keys.js';
import type { LiveRoomKinds } from './LiveRooms.js';
import type { RoomMoveKinds } from './RoomMoves.js';
import { NodeRegistry, type NodeInfo } from './NodeRegistry.js';
import { RoomLeases } from './RoomLeases.js';
import { RoomOwnership } from './RoomOwnership.js';

/** The request kinds nodes send each other through the bus. */
export type ClusterRequestKinds = LiveRoomKinds & RoomMoveKinds;

/** The factory Socket.IO's `adapter` option takes. */
export type SocketAdapterFactory = ReturnType<typeof createAdapter>;

export interface ClusterOptions {
  config: Pick<Readonly<Config>, 'nodeId' | 'cluster'>;
  /** This node's public URL: its registry entry's url and ws_url (where clients connect). */
  publicUrl: string;
  /** This node's load for placement (live peers); called on every heartbeat, so cheap. */
  load: () => number;
  logger: Logger;
  /** Key prefix of every cluster key and channel (default "sb:"; tests use their own). */
  prefix?: string;
  /** Connection tuning (tests fail faster); the defaults never hang a caller longer than ~2 s. */
  connection?: Omit<RedisConnectionOptions, 'name' | 'logger'>;
  /** How long a claimed lease with no room and no socket here is kept before it is released (ms, default 5000). */
  idleLeaseGraceMs?: number;
}

/** A room's lease was lost to another node (higher epoch): the room must stop here at once. */
export type LostRoomListener = (tenantId: string, roomId: string, by: string | null) => void;

/** The adapter's subscriber is subscribed again after a disconnection: what other nodes published meanwhile was lost. */
export type ResubscribedListener = () => void;

/** A refusal that sends the client to the node serving its room. */
export class WrongNodeError extends AppError {
  constructor(
    readonly wsUrl: string,
    readonly owner: string,
  ) {
    super('wrong_node', `this room is served by another node: connect to ${wsUrl}`);
  }
}

/** The ws_url a `wrong_node` error carries, or null for any other error. */
export function redirectOf(error: unknown): string | null {
  if (!(error instanceof AppError) || error.code !== 'wrong_node') return null;
  const wsUrl = (error as { wsUrl?: unknown }).wsUrl;
  return typeof wsUrl === 'string' ? wsUrl : null;
}

const DEFAULT_IDLE_LEASE_GRACE_MS = 5_000;

export class Cluster {
  readonly nodeId: string;
  readonly prefix: string;
  /** Scheme, host and port of REDIS_URL (never its credentials), for messages. */
  readonly redisAddress: string;
  /** The command connection (registry, leases, bus publishing); others may send commands on it, never close it. */
  readonly redis: Redis;
  readonly registry: NodeRegistry;
  readonly leases: RoomLeases;
  readonly bus: ClusterBus<ClusterRequestKinds>;
  /** Socket.IO's Redis adapter on the adapter's own connections (the `adapter` option of the Server). */
  readonly adapter: SocketAdapterFactory;
  /** Which leases this node keeps, by what holds them (rooms and sockets). */
  readonly ownership: RoomOwnership;
  private readonly busSubscriber: Redis;
  private readonly adapterPublisher: Redis;
  private readonly adapterSubscriber: Redis;
  private readonly logger: Logger;
  /** This node's public URL (its registry entry's ws_url). */
  readonly publicUrl: string;
  /**
   * Called after this node claimed a room it did not hold (a new room, or one whose owner died):
   * starts the room from what its previous owner left (RoomSnapshots). Connections of the room
   * are admitted once it finished.
   */
  takeOver: ((tenantId: string, roomId: string) => Promise<void>) | null = null;
  private readonly takingOver = new Map<RoomKey, Promise<void>>();
  private readonly resubscribedListeners = new Set<ResubscribedListener>();
  private releasing: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(options: ClusterOptions) {
    const { config } = options;
    const redisUrl = config.cluster.redisUrl;
    if (!redisUrl) throw new Error('the cluster needs REDIS_URL');
    this.nodeId = config.nodeId;
    this.prefix = options.prefix ?? DEFAULT_CLUSTER_PREFIX;
    this.publicUrl = options.publicUrl;
    this.redisAddress = describeRedisUrl(redisUrl);
    this.logger = options.logger.child({ module: 'cluster', node: this.nodeId });
    const connection = (name: string): RedisConnectionOptions => ({
      ...options.connection,
      name: `${this.nodeId}:${name}`,
      logger: this.logger,
    });
    this.redis = createRedisConnection(redisUrl, connection('commands'));
    this.busSubscriber = createSubscriberConnection(redisUrl, connection('bus'));
    this.adapterPublisher = guardUnawaited(createRedisConnection(redisUrl, connection('adapter-pub')), this.logger);
    this.adapterSubscriber = guardUnawaited(createSubscriberConnection(redisUrl, connection('adapter-sub')), this.logger);
    this.registry = new NodeRegistry({
      nodeId: this.nodeId,
      url: options.publicUrl,
      wsUrl: options.publicUrl,
      load: options.load,
      redis: this.redis,
      prefix: this.prefix,
      heartbeatMs: config.cluster.heartbeatMs,
      ttlMs: config.cluster.nodeTtlMs,
      logger: this.logger,
    });
    this.leases = new RoomLeases({
      registry: this.registry,
      redis: this.redis,
      leaseTtlMs: config.cluster.roomLeaseMs,
      logger: this.logger,
    });
    // Redis is back (a restart, a flap): held leases are renewed or written again at once, not at
    // the next renewal tick, so a lease taken meanwhile fires `lost` now and a missing one is back
    // before another node's client can claim the room.
    this.redis.on('ready', () => void this.leases.renewNow());
    this.bus = new ClusterBus<ClusterRequestKinds>({
      nodeId: this.nodeId,
      redis: this.redis,
      subscriber: this.busSubscriber,
      prefix: this.prefix,
      logger: this.logger,
    });
    this.adapter = createAdapter(this.adapterPublisher, this.adapterSubscriber, { key: `${this.prefix}socket.io` });
    // Pub/sub keeps nothing for a disconnected subscriber: what other nodes published meanwhile
    // (revocations) never arrives, so listeners look again at what it was about once it is back.
    let adapterDisconnected = false;
    this.adapterSubscriber.on('close', () => (adapterDisconnected = true));
    this.adapterSubscriber.on('ready', () => {
      if (!adapterDisconnected || this.stopping) return;
      adapterDisconnected = false;
      void this.adapterResubscribed();
    });
    this.ownership = new RoomOwnership({
      leases: this.leases,
      graceMs: options.idleLeaseGraceMs ?? DEFAULT_IDLE_LEASE_GRACE_MS,
      logger: this.logger,
    });
    this.logger.info({ redis: this.redisAddress, url: options.publicUrl }, 'joining the cluster');
  }

  /** Registers this node (first heartbeat), starts lease renewals and the bus. Rejects when Redis cannot be reached. */
  async start(): Promise<void> {
    await this.registry.start();
    this.leases.start();
    await this.bus.start();
  }

  /** Calls `listener` whenever a room's lease is lost to another node; returns its remover. */
  onRoomLost(listener: LostRoomListener): () => void {
    return this.ownership.onLost(listener);
  }

  /**
   * Calls `listener` each time the Socket.IO adapter's subscriber connection is subscribed again
   * after a disconnection (messages other nodes published meanwhile, e.g. revocations, were
   * lost); returns its remover. A listener that throws is logged.
   */
  onAdapterResubscribed(listener: ResubscribedListener): () => void {
    this.resubscribedListeners.add(listener);
    return () => this.resubscribedListeners.delete(listener);
  }

  /**
   * The subscriber is ready again; its client sent the subscriptions back before this runs. A
   * PING answered on that connection means Redis has applied them: anything published from
   * then on arrives, and whatever was written before (the store's revocation precedes its
   * publish) is visible to the listeners' reads.
   */
  private async adapterResubscribed(): Promise<void> {
    try {
      await this.adapterSubscriber.ping();
    } catch (error) {
      // Lost again: the next 'ready' runs this again.
      this.logger.debug({ err: reason(error) }, 'adapter subscriber lost again before its subscriptions were confirmed');
      return;
    }
    this.logger.info('adapter subscriber subscribed again; checking what it may have missed');
    for (const listener of this.resubscribedListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'adapter resubscribed listener failed');
      }
    }
  }

  /**
   * Where a client should connect for a room (the token response's ws_url), without claiming
   * it: its live owner's ws_url, else the least loaded serving node's, else this node's. When
   * Redis cannot answer, this node's: a connection there claims or is refused with a clear code.
   */
  async placement(tenantId: string, roomId: string): Promise<string> {
    const key = roomKey(tenantId, roomId);
    try {
      const owner = await this.leases.owner(key);
      if (owner?.node && owner.node.state === 'serving') return owner.node.ws_url;
      const least = await this.registry.leastLoaded();
      return least?.ws_url ?? this.publicUrl;
    } catch (error) {
      this.logger.warn({ err: reason(error), room: key }, 'placement lookup failed; answering this node');
      return this.publicUrl;
    }
  }

  /**
   * Decides whether a connection for the room may be accepted here; resolves once this node
   * holds the room's lease. A room this node holds already needs no Redis (it keeps working
   * through an outage). A draining node claims nothing: it redirects, except the clients of a
   * room it still holds while another node serves (they move with the room when the drain
   * releases its lease).
   * Rejects with WrongNodeError (another live owner, or this node drains and another serves),
   * `shutting_down` (draining, no other node), or `unavailable` when Redis cannot answer.
   */
  async admitConnection(tenantId: string, roomId: string, options: { draining: boolean }): Promise<void> {
    const key = roomKey(tenantId, roomId);
    if (options.draining || this.registry.currentState === 'draining') {
      const away = await this.redirectAway(key);
      // A room this node still holds is served here until the drain releases its lease (it then
      // moves with everyone in it): sent to another node, its clients would be sent back here.
      if (away instanceof WrongNodeError && this.leases.epochOf(key) !== null) {
        this.ownership.claimed(key);
        return;
      }
      throw away;
    }
    if (this.leases.epochOf(key) !== null) {
      this.ownership.claimed(key);
      await this.takingOver.get(key);
      return;
    }
    const claim = await this.leases.claim(key).catch((error: unknown) => {
      // The client is told what to do, not the Redis client's error text (it may name internal hosts): that is logged.
      this.logger.debug({ err: reason(error), room: key }, 'room claim failed');
      throw new AppError('unavailable', 'cluster: this room cannot be placed now (Redis does not answer); try again');
    });
    if (!claim.mine) throw new WrongNodeError(claim.ws_url, claim.owner);
    this.ownership.claimed(key);
    await this.startTakeOver(key, tenantId, roomId);
  }

  /** Runs takeOver once per claim; concurrent connections of the room wait for the same run. Never throws. */
  private startTakeOver(key: RoomKey, tenantId: string, roomId: string): Promise<void> {
    const hook = this.takeOver;
    if (!hook) return Promise.resolve();
    let running = this.takingOver.get(key);
    if (!running) {
      running = hook(tenantId, roomId)
        .catch((error: unknown) => this.logger.warn({ err: reason(error), room: key }, 'room take-over failed; the room starts afresh'))
        .finally(() => this.takingOver.delete(key));
      this.takingOver.set(key, running);
    }
    return running;
  }

  /** Marks this node draining in the registry (placement and claims then avoid it). */
  async drain(): Promise<void> {
    await this.registry.setState('draining');
  }

  /** Live serving nodes other than this one. Empty when Redis cannot answer. */
  async otherServingNodes(): Promise<NodeInfo[]> {
    try {
      return (await this.registry.liveNodes()).filter((node) => node.id !== this.nodeId && node.state === 'serving');
    } catch {
      return [];
    }
  }

  /**
   * Gives up every room this node holds (shutdown): no lease is kept or renewed from then on,
   * so other nodes claim the rooms at once. Idempotent; never throws.
   */
  releaseLeases(): Promise<void> {
    this.releasing ??= (async () => {
      this.ownership.close();
      const held = this.leases.held();
      const released = await Promise.allSettled(held.map(({ roomKey: key }) => this.leases.release(key)));
      const failed = released.filter((outcome) => outcome.status === 'rejected').length;
      if (failed > 0) this.logger.warn({ leases: failed }, 'could not release every lease; they expire by their TTL');
      await this.leases.stop();
      if (held.length > 0) this.logger.info({ released: held.length - failed }, 'room leases released');
    })();
    return this.releasing;
  }

  /**
   * Leaves the cluster: releases every lease this node still holds, removes its registry
   * entry, closes the bus and every connection. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.releaseLeases();
      await this.registry.stop();
      await this.bus.close();
      await Promise.all([this.redis, this.busSubscriber, this.adapterPublisher, this.adapterSubscriber].map(closeRedisConnection));
      this.logger.info('left the cluster');
    })();
    return this.stopping;
  }

  /** A draining node's answer to a room it does not hold: the owner's, else the least loaded serving node's ws_url. */
  private async redirectAway(key: RoomKey): Promise<AppError> {
    const owner = await this.leases.owner(key);
    if (owner?.node && owner.owner !== this.nodeId) return new WrongNodeError(owner.node.ws_url, owner.owner);
    const least = await this.registry.leastLoaded({ exclude: [this.nodeId] });
    if (least) return new WrongNodeError(least.ws_url, least.id);
    return new AppError('shutting_down', 'this node is shutting down and no other node serves');
  }
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The commands the Redis adapter sends without awaiting their answer. */
const UNAWAITED_BY_ADAPTER = ['publish', 'subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe'] as const;

/**
 * The adapter sends these commands without awaiting them: one that fails (Redis down at boot,
 * during an outage or at shutdown) must not become an unhandled rejection, which would end the
 * process. Failures are logged at debug level (the connection logs the outage itself once).
 */
function guardUnawaited(redis: Redis, logger: Logger): Redis {
  const methods = redis as unknown as Record<(typeof UNAWAITED_BY_ADAPTER)[number], (...args: unknown[]) => Promise<unknown>>;
  for (const name of UNAWAITED_BY_ADAPTER) {
    const original = methods[name].bind(redis);
    methods[name] = (...args) =>
      original(...args).catch((error: unknown) => {
        logger.debug({ err: reason(error), command: name }, 'adapter command failed');
        return undefined;
      });
  }
  return redis;
}

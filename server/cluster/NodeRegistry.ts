/**
 * The cluster's node registry: every node writes its own entry into Redis on a heartbeat, with
 * a TTL, so the entry disappears by itself when the node dies (kill -9 included). A node is
 * live exactly while its entry exists.
 *
 * Invariants:
 * - an entry is written only by its own node (heartbeats, and a lease renewal that re-asserts
 *   leases after Redis came back empty) and removed only by its own node (stop()) or by its TTL;
 * - the index of node ids (a sorted set scored by each entry's expiry, in Redis' clock) is
 *   written in the same script as the entry, and pruned of expired ids on every heartbeat and
 *   listing, so listing costs O(live nodes), never a scan of the key space.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';
import { assertNodeId, ClusterKeys, DEFAULT_CLUSTER_PREFIX, NODE_ID_PATTERN } from './keys.js';
import { defineClusterScripts } from './scripts.js';

export type NodeState = 'serving' | 'draining';

/** A node's registry entry, as every node reads it. */
export interface NodeInfo {
  id: string;
  /** The node's PUBLIC_URL (its HTTP API). */
  url: string;
  /** Where clients connect their Socket.IO signaling (the token response's ws_url). */
  ws_url: string;
  /** The node's load as its load callback measures it (e.g. peers or rooms); lower is less loaded. */
  load: number;
  state: NodeState;
  /** ISO 8601 time the registry was created (the node's boot). */
  started_at: string;
}

export interface NodeRegistryOptions {
  nodeId: string;
  url: string;
  wsUrl: string;
  /** The node's current load; called on every heartbeat, so it must be cheap. */
  load: () => number;
  /** Command connection (see createRedisConnection); the registry does not close it. */
  redis: Redis;
  /** Key prefix (default "sb:"). */
  prefix?: string;
  /** Interval between heartbeats (ms, default 1000). */
  heartbeatMs?: number;
  /** How long an entry outlives its last heartbeat (ms, default 3000); more than heartbeatMs. */
  ttlMs?: number;
  logger?: Logger;
  /** Monotonic clock (ms), default performance.now; RoomLeases reads time from the same clock. */
  now?: () => number;
}

export interface NodeRegistryEvents extends Record<string, unknown[]> {
  /** A heartbeat failed (Redis unreachable or slow); heartbeats go on. Logged once per outage. */
  heartbeatFailed: [error: Error];
  /** A heartbeat succeeded after failures. */
  heartbeatRestored: [];
}

export const DEFAULT_HEARTBEAT_MS = 1_000;
export const DEFAULT_NODE_TTL_MS = 3_000;

const ADVERTISED_PROTOCOLS = new Set(['http:', 'https:', 'ws:', 'wss:']);

/** An http(s) or ws(s) URL without credentials: what a node may advertise (clients are sent there with their tokens). */
function isAdvertisedUrl(value: unknown): value is string {
  if (typeof value !== 'string' || !URL.canParse(value)) return false;
  const url = new URL(value);
  return ADVERTISED_PROTOCOLS.has(url.protocol) && url.username === '' && url.password === '';
}

/**
 * Parses an entry read from Redis; null when it is not a well-formed NodeInfo (never trusted
 * blindly: its ws_url is where clients are redirected with their tokens, so it must be an
 * http(s) or ws(s) URL without credentials, and its id a node id).
 */
export function parseNodeInfo(json: string): NodeInfo | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const entry = value as Record<string, unknown>;
  if (
    typeof entry.id !== 'string' ||
    !NODE_ID_PATTERN.test(entry.id) ||
    !isAdvertisedUrl(entry.url) ||
    !isAdvertisedUrl(entry.ws_url) ||
    typeof entry.load !== 'number' ||
    !Number.isFinite(entry.load) ||
    (entry.state !== 'serving' && entry.state !== 'draining') ||
    typeof entry.started_at !== 'string'
  )
    return null;
  return { id: entry.id, url: entry.url, ws_url: entry.ws_url, load: entry.load, state: entry.state, started_at: entry.started_at };
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

export class NodeRegistry extends TypedEmitter<NodeRegistryEvents> {
  readonly nodeId: string;
  readonly keys: ClusterKeys;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  private readonly redis: Redis;
  private readonly url: string;
  private readonly wsUrl: string;
  private readonly load: () => number;
  private readonly startedAt = new Date().toISOString();
  private readonly logger: Logger | undefined;
  private state: NodeState = 'serving';
  private timer: NodeJS.Timeout | null = null;
  /** The heartbeat in flight, so beats never overlap and stop() can wait for it. */
  private beating: Promise<void> | null = null;
  private failing = false;
  /** Bumped by stop(), so a start() still writing its first heartbeat does not start the timer after it. */
  private generation = 0;
  /** The live nodes as last listed; replaced by every successful listing. */
  private listed: readonly NodeInfo[] = [];
  /** The listing the heartbeat timer started, so listings never pile up while Redis is slow. */
  private listing: Promise<unknown> | null = null;
  /** Monotonic time the last successful heartbeat's answer arrived; the entry lives until at most this + ttlMs. */
  private lastBeatAnsweredAt: number | null = null;
  readonly now: () => number;

  constructor(options: NodeRegistryOptions) {
    const logger = options.logger?.child({ module: 'cluster-registry' });
    super(logger);
    this.nodeId = assertNodeId(options.nodeId);
    this.keys = new ClusterKeys(options.prefix ?? DEFAULT_CLUSTER_PREFIX);
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.ttlMs = options.ttlMs ?? DEFAULT_NODE_TTL_MS;
    if (!(this.heartbeatMs > 0 && this.ttlMs > this.heartbeatMs))
      throw new Error('the node TTL must be longer than the heartbeat interval');
    this.redis = options.redis;
    this.url = options.url;
    this.wsUrl = options.wsUrl;
    this.load = options.load;
    this.logger = logger;
    this.now = options.now ?? (() => performance.now());
    defineClusterScripts(this.redis);
  }

  /** Whether start() ran and stop() has not. */
  get running(): boolean {
    return this.timer !== null;
  }

  get currentState(): NodeState {
    return this.state;
  }

  /**
   * The latest time (this registry's clock) by which this node's entry has certainly expired
   * unless a later heartbeat succeeds; null before the first success. Past it, other nodes may
   * take this node for dead and take its rooms over.
   */
  get entryExpiresBy(): number | null {
    return this.lastBeatAnsweredAt === null ? null : this.lastBeatAnsweredAt + this.ttlMs;
  }

  /**
   * Every live node as last listed (this one included, ordered by id), without a Redis round
   * trip: listed again on every heartbeat and by every liveNodes() call; while Redis cannot
   * answer, the last list is kept. Empty before the first listing.
   */
  get knownNodes(): readonly NodeInfo[] {
    return this.listed;
  }

  /** This node's entry as its next heartbeat writes it. */
  entry(): NodeInfo {
    let load = 0;
    try {
      load = this.load();
    } catch (error) {
      this.logger?.debug({ err: asError(error).message }, 'the load callback threw; 0 is reported');
    }
    return {
      id: this.nodeId,
      url: this.url,
      ws_url: this.wsUrl,
      load: Number.isFinite(load) ? load : 0,
      state: this.state,
      started_at: this.startedAt,
    };
  }

  /**
   * Writes the first heartbeat, then one every heartbeatMs, and lists the live nodes as often
   * (knownNodes). Rejects (and stays stopped) when the first heartbeat fails, so a node never
   * believes it is registered when it is not.
   */
  async start(): Promise<void> {
    if (this.timer) return;
    const generation = this.generation;
    await this.writeEntry();
    await this.liveNodes().catch(() => undefined);
    if (this.timer || generation !== this.generation) return;
    // A tick while a heartbeat or listing is still in flight (Redis slow or down) skips it: they never pile up.
    this.timer = setInterval(() => {
      if (this.beating === null) void this.beat();
      this.listing ??= this.liveNodes()
        .catch(() => undefined)
        .finally(() => (this.listing = null));
    }, this.heartbeatMs);
  }

  /** Stops the heartbeats and removes this node's entry (best effort: when Redis is unreachable the TTL removes it). */
  async stop(): Promise<void> {
    this.generation++;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([this.beating, this.listing]);
    this.lastBeatAnsweredAt = null;
    try {
      await this.redis.multi().del(this.keys.node(this.nodeId)).zrem(this.keys.nodes(), this.nodeId).exec();
    } catch (error) {
      this.logger?.warn({ err: asError(error).message }, 'could not remove this node from the registry; its entry expires by itself');
    }
  }

  /** Changes this node's state; the entry is rewritten at once while running (others see it within one command). */
  async setState(state: NodeState): Promise<void> {
    this.state = state;
    if (this.timer) await this.beat();
  }

  /**
   * One heartbeat now (it never overlaps another: a call during a beat waits for that one
   * and then writes again). Never throws: failures are reported by the heartbeatFailed event.
   */
  async beat(): Promise<void> {
    const previous = this.beating;
    const run = (async () => {
      await previous;
      try {
        await this.writeEntry();
        if (this.failing) {
          this.failing = false;
          this.logger?.info('registry heartbeats restored');
          this.emit('heartbeatRestored');
        }
      } catch (error) {
        if (!this.failing) this.logger?.warn({ err: asError(error).message }, 'registry heartbeat failed; retrying');
        this.failing = true;
        this.emit('heartbeatFailed', asError(error));
      }
    })();
    this.beating = run;
    await run;
    if (this.beating === run) this.beating = null;
  }

  /** Every live node's entry (this one included), ordered by id. Fails with `unavailable` when Redis cannot answer. */
  async liveNodes(): Promise<NodeInfo[]> {
    let entries: string[];
    try {
      entries = await this.redis.sbcLiveNodes(this.keys.nodes(), this.keys.nodePrefix);
    } catch (error) {
      this.logger?.debug({ err: asError(error).message }, 'nodes not listed');
      throw new AppError('unavailable', 'cluster: cannot list nodes now (Redis does not answer); try again', { cause: error });
    }
    const nodes = entries
      .map(parseNodeInfo)
      .filter((entry): entry is NodeInfo => entry !== null)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.listed = nodes;
    return [...nodes];
  }

  /** A node's entry, or null when it has none (never registered, stopped, or expired: dead). Fails with `unavailable` when Redis cannot answer. */
  async node(nodeId: string): Promise<NodeInfo | null> {
    const key = this.keys.node(nodeId);
    let json: string | null;
    try {
      json = await this.redis.get(key);
    } catch (error) {
      this.logger?.debug({ err: asError(error).message, node: nodeId }, 'node entry not read');
      throw new AppError('unavailable', `cluster: cannot read node ${nodeId} now (Redis does not answer); try again`, { cause: error });
    }
    return json === null ? null : parseNodeInfo(json);
  }

  /** The serving node with the lowest load (ties: the lowest id), or null when none is serving. */
  async leastLoaded(options: { exclude?: readonly string[] } = {}): Promise<NodeInfo | null> {
    const excluded = new Set(options.exclude ?? []);
    let best: NodeInfo | null = null;
    for (const node of await this.liveNodes()) {
      if (node.state !== 'serving' || excluded.has(node.id)) continue;
      if (best === null || node.load < best.load) best = node;
    }
    return best;
  }

  private async writeEntry(): Promise<void> {
    await this.redis.sbcBeat(this.keys.node(this.nodeId), this.keys.nodes(), this.nodeId, JSON.stringify(this.entry()), this.ttlMs);
    this.lastBeatAnsweredAt = this.now();
  }
}

/**
 * Room ownership: a live room has exactly one owner node, which holds the room's lease in
 * Redis: "<node>:<epoch>" with a TTL, where the epoch is a fencing number that grows every
 * time the room changes owner (claim of a free or dead owner's room, hand-over).
 *
 * Invariants:
 * - at any time Redis holds at most one lease per room, and every change of owner gives an
 *   epoch above every earlier one of that room (scripts.ts: the counter only grows, and starts
 *   above old epochs when Redis lost it);
 * - this node writes a lease naming itself only by claim (free room, or dead owner: no
 *   registry entry) or by re-asserting, during renewal, a lease it held that is missing while
 *   no higher epoch was handed out; so after a Redis restart leases come back within one
 *   renewal period and no room gets two owners;
 * - a renewal that finds another owner drops the room from the held set and fires `lost` at
 *   once: the caller must stop acting for the room immediately;
 * - while Redis is unreachable the held set is kept (rooms keep working locally); once the
 *   lease may have been taken (its TTL or this node's registry entry has certainly expired
 *   without a successful renewal or heartbeat) `uncertain` fires, but the room is not dropped
 *   here: that is the caller's decision.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';
import type { RoomKey } from './keys.js';
import { parseNodeInfo, type NodeInfo, type NodeRegistry } from './NodeRegistry.js';
import { defineClusterScripts, type ScriptReply } from './scripts.js';

export interface RoomLeasesOptions {
  /** This node's registry (node id, key prefix, clock); it must be started before claim(). */
  registry: NodeRegistry;
  /** Command connection; RoomLeases does not close it. */
  redis: Redis;
  /** How long a lease outlives its last renewal (ms, default 10000). */
  leaseTtlMs?: number;
  /** Interval between renewals of all held leases (ms, default leaseTtlMs / 3). */
  renewIntervalMs?: number;
  logger?: Logger;
}

export type ClaimResult =
  /** This node owns the room at `epoch`. */
  | { mine: true; owner: string; epoch: number }
  /** A live node owns it: send the client to its ws_url. */
  | { mine: false; owner: string; epoch: number; ws_url: string; node: NodeInfo };

export interface LeaseOwner {
  owner: string;
  epoch: number;
  /** The owner's registry entry; null when it has none (dead: the next claim takes the room over). */
  node: NodeInfo | null;
}

export interface HeldLease {
  roomKey: RoomKey;
  epoch: number;
}

export interface RoomLeasesEvents extends Record<string, unknown[]> {
  /** The room is no longer ours: stop acting for it at once. `by` is the new owner (null when unknown). */
  lost: [roomKey: RoomKey, info: { by: string | null; epoch: number }];
  /** Another node may own the room now: no renewal within the lease TTL, or this node's registry entry expired (dead to the others). */
  uncertain: [roomKey: RoomKey, info: { epoch: number }];
  /** A renewal succeeded again after `uncertain`. */
  confirmed: [roomKey: RoomKey, info: { epoch: number }];
  /** The lease was missing (Redis restarted empty, or it expired during an outage) and was written again. */
  reasserted: [roomKey: RoomKey, info: { epoch: number }];
}

export const DEFAULT_LEASE_TTL_MS = 10_000;
/** Leases renewed by one script call; more are sent as several calls in one pipeline. */
const RENEW_BATCH = 200;

/** A held lease. Replaced by a new object when its epoch changes by a claim, so a renewal answer for the old one is ignored. */
interface Held {
  epoch: number;
  /** Clock time the last successful claim or renewal answered; the lease lives until at most this + TTL. */
  answeredAt: number;
  uncertain: boolean;
  /** A hand-over is in flight: renewals leave it alone until it settles. */
  transferring: boolean;
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The error a caller sees when Redis failed under a lease operation: what failed and what to do.
 * The Redis client's text (it may name internal hosts and ports) stays out of the message: it is
 * the error's cause, and logged here.
 */
function unavailable(what: string, error: unknown, logger: Logger | undefined): AppError {
  if (error instanceof AppError) return error;
  logger?.debug({ err: reasonOf(error), what }, 'lease operation failed');
  return new AppError('unavailable', `cluster: room ${what} failed (Redis does not answer); try again`, { cause: error });
}

/** Reads element i of a script reply as a string (integers included). */
function text(reply: ScriptReply, i: number): string {
  const value = reply[i];
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw new Error(`unexpected script reply: ${JSON.stringify(reply)}`);
}

function epochOf(value: string): number {
  const epoch = Number(value);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`unexpected epoch ${JSON.stringify(value)}`);
  return epoch;
}

export class RoomLeases extends TypedEmitter<RoomLeasesEvents> {
  readonly nodeId: string;
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  private readonly registry: NodeRegistry;
  private readonly redis: Redis;
  private readonly logger: Logger | undefined;
  private readonly leases = new Map<RoomKey, Held>();
  /** Held leases whose `uncertain` is set (kept with every change of the held set, so reading it costs nothing). */
  private uncertainHeld = 0;
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;

  constructor(options: RoomLeasesOptions) {
    const logger = options.logger?.child({ module: 'cluster-leases' });
    super(logger);
    this.registry = options.registry;
    this.nodeId = options.registry.nodeId;
    this.redis = options.redis;
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.floor(this.leaseTtlMs / 3);
    if (!(this.renewIntervalMs > 0 && this.renewIntervalMs < this.leaseTtlMs))
      throw new Error('renewals must come more often than the lease TTL');
    this.logger = logger;
    defineClusterScripts(this.redis);
  }

  /** The fencing counter outlives its lease, so a claim right after an expiry still counts up from it. */
  private get counterTtlMs(): number {
    return this.leaseTtlMs * 2;
  }

  private get keys() {
    return this.registry.keys;
  }

  /** Starts the renewal timer (one timer for every held lease). */
  start(): void {
    this.timer ??= setInterval(() => void this.renewNow(), this.renewIntervalMs);
  }

  /**
   * Stops renewing and forgets the held set without releasing anything: the leases expire by
   * their TTL (release() first what should be free at once).
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing;
    this.leases.clear();
    this.uncertainHeld = 0;
  }

  /**
   * Claims the room, or says who owns it. Ours when the room has no lease, when its owner has
   * no registry entry (dead: taken over at once with a higher epoch), or when the lease is
   * already ours (same epoch). Fails with `unavailable` when Redis cannot answer or this node
   * is not registered.
   */
  async claim(key: RoomKey): Promise<ClaimResult> {
    if (!this.timer) throw new AppError('unavailable', 'cluster: room leases are not started');
    if (!this.registry.running) throw new AppError('unavailable', 'cluster: this node is not registered');
    let reply: ScriptReply;
    try {
      reply = await this.runClaim(key);
      // Our own entry is missing (Redis came back empty, or heartbeats failed): write it, try once more.
      if (reply[0] === -1) {
        await this.registry.beat();
        reply = await this.runClaim(key);
      }
    } catch (error) {
      throw unavailable('claim', error, this.logger);
    }
    if (reply[0] === -1) throw new AppError('unavailable', 'cluster: this node is not registered');
    const owner = text(reply, 1);
    const epoch = epochOf(text(reply, 2));
    if (reply[0] === 1) {
      const held = this.leases.get(key);
      if (held && held.epoch === epoch) {
        held.answeredAt = this.registry.now();
      } else {
        this.forget(key);
        this.leases.set(key, { epoch, answeredAt: this.registry.now(), uncertain: false, transferring: false });
      }
      return { mine: true, owner, epoch };
    }
    const node = parseNodeInfo(text(reply, 3));
    if (!node) throw new AppError('unavailable', `cluster: node ${owner} has a malformed registry entry`);
    this.drop(key, owner);
    return { mine: false, owner, epoch, ws_url: node.ws_url, node };
  }

  /** Gives up a room this node holds (deleted only while the lease is still ours). False when it was not ours. */
  async release(key: RoomKey): Promise<boolean> {
    const held = this.leases.get(key);
    if (!held) return false;
    this.forget(key);
    try {
      return (await this.redis.sbcRelease(this.keys.lease(key), `${this.nodeId}:${held.epoch}`)) === 1;
    } catch (error) {
      throw unavailable('release', error, this.logger);
    }
  }

  /**
   * Hands a room this node holds over to a live, serving node (drain): the lease names the
   * target with a higher epoch, and leaves this node's held set. The target then calls claim(),
   * which answers `mine` at that epoch. Fails with `conflict` when the room is not ours (then
   * `lost` fired) and `unavailable` when the target is not live and serving or Redis cannot
   * answer (then the room is still ours, unless Redis applied the hand-over but its answer
   * was lost: the next renewal finds out and fires `lost`).
   */
  async handOver(key: RoomKey, targetNodeId: string): Promise<{ owner: string; epoch: number }> {
    const held = this.leases.get(key);
    if (!held || held.transferring) throw new AppError('conflict', 'cluster: this node does not hold the room');
    if (targetNodeId === this.nodeId) throw new AppError('payload_invalid', 'cluster: cannot hand a room over to its own owner');
    held.transferring = true;
    let reply: ScriptReply;
    try {
      reply = await this.redis.sbcHandOver(
        this.keys.lease(key),
        this.keys.epoch(key),
        `${this.nodeId}:${held.epoch}`,
        held.epoch,
        targetNodeId,
        this.leaseTtlMs,
        this.keys.nodePrefix,
        this.counterTtlMs,
      );
    } catch (error) {
      held.transferring = false;
      throw unavailable('hand-over', error, this.logger);
    }
    held.transferring = false;
    switch (reply[0]) {
      case 1: {
        if (this.leases.get(key) === held) this.forget(key);
        return { owner: targetNodeId, epoch: epochOf(text(reply, 1)) };
      }
      case -1:
        throw new AppError('unavailable', `cluster: node ${targetNodeId} is not live`);
      case -2:
        throw new AppError('unavailable', `cluster: node ${targetNodeId} is not serving`);
      default:
        this.drop(key, null);
        throw new AppError('conflict', 'cluster: this node no longer holds the room');
    }
  }

  /** The room's current lease holder, or null when the room has no lease. */
  async owner(key: RoomKey): Promise<LeaseOwner | null> {
    let reply: ScriptReply;
    try {
      reply = await this.redis.sbcOwner(this.keys.lease(key), this.keys.nodePrefix);
    } catch (error) {
      throw unavailable('owner lookup', error, this.logger);
    }
    if (reply.length === 0) return null;
    const match = /^(.+):(\d+)$/.exec(text(reply, 0));
    if (!match?.[1] || !match[2]) return null;
    const entry = reply[1];
    return { owner: match[1], epoch: epochOf(match[2]), node: typeof entry === 'string' ? parseNodeInfo(entry) : null };
  }

  /** The rooms this node holds, with their epochs. */
  held(): HeldLease[] {
    return [...this.leases].map(([roomKey, held]) => ({ roomKey, epoch: held.epoch }));
  }

  /** How many held leases are uncertain now (see `uncertain`): may have been taken by another node. */
  get uncertainCount(): number {
    return this.uncertainHeld;
  }

  /** The epoch at which this node holds the room, or null. */
  epochOf(key: RoomKey): number | null {
    return this.leases.get(key)?.epoch ?? null;
  }

  /**
   * Renews every held lease now, in one script call per RENEW_BATCH leases sent as one
   * pipeline (the timer calls this; at most one renewal runs at a time). Never throws.
   */
  renewNow(): Promise<void> {
    this.renewing ??= this.renewAll().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private runClaim(key: RoomKey): Promise<ScriptReply> {
    return this.redis.sbcClaim(
      this.keys.lease(key),
      this.keys.epoch(key),
      this.nodeId,
      this.leaseTtlMs,
      this.keys.nodePrefix,
      this.counterTtlMs,
    );
  }

  /** Removes the room from the held set, uncertain or not; no event. */
  private forget(key: RoomKey): void {
    if (this.leases.get(key)?.uncertain) this.uncertainHeld--;
    this.leases.delete(key);
  }

  /** Removes the room from the held set and fires `lost`, if it was held. */
  private drop(key: RoomKey, by: string | null): void {
    const held = this.leases.get(key);
    if (!held) return;
    this.forget(key);
    this.logger?.warn({ room: key, epoch: held.epoch, by }, 'room lease lost');
    this.emit('lost', key, { by, epoch: held.epoch });
  }

  private async renewAll(): Promise<void> {
    const batch = [...this.leases].filter(([, held]) => !held.transferring);
    if (batch.length > 0) {
      const ownEntry = this.registry.running ? JSON.stringify(this.registry.entry()) : '';
      const pipeline = this.redis.pipeline();
      const chunks: [RoomKey, Held][][] = [];
      for (let i = 0; i < batch.length; i += RENEW_BATCH) {
        const chunk = batch.slice(i, i + RENEW_BATCH);
        chunks.push(chunk);
        const keys = [
          this.keys.node(this.nodeId),
          this.keys.nodes(),
          ...chunk.flatMap(([key]) => [this.keys.lease(key), this.keys.epoch(key)]),
        ];
        const epochs = chunk.map(([, held]) => held.epoch);
        pipeline.sbcRenew(keys.length, ...keys, this.nodeId, this.leaseTtlMs, this.counterTtlMs, ownEntry, this.registry.ttlMs, ...epochs);
      }
      let results: [Error | null, unknown][] | null = null;
      try {
        results = await pipeline.exec();
      } catch (error) {
        this.logger?.debug({ err: reasonOf(error) }, 'lease renewal failed');
      }
      chunks.forEach((chunk, i) => {
        const [error, reply] = results?.[i] ?? [new Error('no answer'), null];
        if (error || !Array.isArray(reply)) {
          this.logger?.debug({ err: error ? error.message : 'malformed answer', leases: chunk.length }, 'lease renewal failed');
          return;
        }
        try {
          this.applyRenewal(chunk, reply as ScriptReply);
        } catch (applyError) {
          // Only a script/code mismatch gets here; the timer must survive it.
          this.logger?.error({ err: reasonOf(applyError) }, 'lease renewal answer not understood');
        }
      });
    }
    this.checkCertainty();
  }

  private applyRenewal(chunk: [RoomKey, Held][], reply: ScriptReply): void {
    const answeredAt = this.registry.now();
    chunk.forEach(([key, held], i) => {
      // The room was released, handed over or claimed again at another epoch meanwhile: this answer is stale.
      if (this.leases.get(key) !== held || held.transferring) return;
      const status = reply[2 * i];
      const value = text(reply, 2 * i + 1);
      if (status === 0) {
        this.drop(key, value === '' ? null : value);
        return;
      }
      held.epoch = epochOf(value);
      held.answeredAt = answeredAt;
      if (status === 2) {
        this.logger?.info({ room: key, epoch: held.epoch }, 'room lease re-asserted');
        this.emit('reasserted', key, { epoch: held.epoch });
      }
    });
  }

  /**
   * Fires `uncertain` for each held lease that may have been taken by now: its TTL has passed
   * since its last successful renewal, or this node's registry entry has expired (others then
   * take this node for dead and may claim its rooms); `confirmed` when that is over.
   */
  private checkCertainty(): void {
    const now = this.registry.now();
    const entryExpiresBy = this.registry.entryExpiresBy;
    for (const [key, held] of [...this.leases]) {
      const mayBeTaken = now > held.answeredAt + this.leaseTtlMs || (entryExpiresBy !== null && now > entryExpiresBy);
      if (mayBeTaken && !held.uncertain) {
        held.uncertain = true;
        this.uncertainHeld++;
        this.logger?.warn({ room: key, epoch: held.epoch }, 'room lease uncertain: no renewal within its TTL');
        this.emit('uncertain', key, { epoch: held.epoch });
      } else if (!mayBeTaken && held.uncertain) {
        held.uncertain = false;
        this.uncertainHeld--;
        this.logger?.info({ room: key, epoch: held.epoch }, 'room lease confirmed again');
        this.emit('confirmed', key, { epoch: held.epoch });
      }
    }
  }
}

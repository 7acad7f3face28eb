/**
 * Which room leases this node keeps, by what holds them: a lease is kept while its room is
 * live here or a socket of it is connected here (each one a hold), and released `graceMs`
 * after the last hold went (a room that closed, or a claim whose join never came). A lease
 * lost to another node is forgotten at once and reported to onLost's listeners, who stop the
 * room here.
 *
 * Invariants: holds are counted per room (retain/unretain in pairs); a claim with no hold
 * arms the release timer, a hold cancels it; release() runs only with no hold, and never
 * throws (an unreachable Redis leaves the lease to its TTL).
 */
import type { Logger } from '../logger.js';
import { parseRoomKey, roomKey, type RoomKey } from './keys.js';
import type { RoomLeases } from './RoomLeases.js';

export interface RoomOwnershipOptions {
  leases: RoomLeases;
  graceMs: number;
  logger: Logger;
}

interface Holds {
  count: number;
  releaseTimer: NodeJS.Timeout | null;
}

export type RoomLostListener = (tenantId: string, roomId: string, by: string | null) => void;

export class RoomOwnership {
  private readonly holds = new Map<RoomKey, Holds>();
  private readonly lostListeners = new Set<RoomLostListener>();
  private readonly detachLeases: () => void;
  private closed = false;

  constructor(private readonly options: RoomOwnershipOptions) {
    this.detachLeases = options.leases.on('lost', (key, { by }) => this.lost(key, by));
  }

  /** A lease was just claimed (or found held) for a connection: kept for the grace period even if nothing holds it. */
  claimed(key: RoomKey): void {
    const holds = this.entry(key);
    if (holds.count === 0) this.armRelease(key, holds);
  }

  /** Something of the room (its live room, a connected socket) is on this node. */
  retain(tenantId: string, roomId: string): void {
    const key = roomKey(tenantId, roomId);
    const holds = this.entry(key);
    holds.count++;
    if (holds.releaseTimer) clearTimeout(holds.releaseTimer);
    holds.releaseTimer = null;
  }

  /** The counterpart of one retain(). */
  unretain(tenantId: string, roomId: string): void {
    const key = roomKey(tenantId, roomId);
    const holds = this.holds.get(key);
    if (!holds || holds.count === 0) return;
    holds.count--;
    if (holds.count === 0) this.armRelease(key, holds);
  }

  /** Calls `listener` when a room's lease is lost to another node; returns its remover. */
  onLost(listener: RoomLostListener): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Stops every timer and listener (the cluster releases what is still held). */
  close(): void {
    this.closed = true;
    this.detachLeases();
    for (const holds of this.holds.values()) if (holds.releaseTimer) clearTimeout(holds.releaseTimer);
    this.holds.clear();
    this.lostListeners.clear();
  }

  private entry(key: RoomKey): Holds {
    let holds = this.holds.get(key);
    if (!holds) this.holds.set(key, (holds = { count: 0, releaseTimer: null }));
    return holds;
  }

  private armRelease(key: RoomKey, holds: Holds): void {
    if (this.closed) return;
    if (holds.releaseTimer) clearTimeout(holds.releaseTimer);
    holds.releaseTimer = setTimeout(() => {
      holds.releaseTimer = null;
      if (holds.count > 0 || this.holds.get(key) !== holds) return;
      this.holds.delete(key);
      this.options.leases.release(key).catch((error: unknown) => {
        this.options.logger.warn(
          { room: key, err: error instanceof Error ? error.message : String(error) },
          'could not release an idle room lease; it expires by its TTL',
        );
      });
    }, this.options.graceMs);
    holds.releaseTimer.unref();
  }

  private lost(key: RoomKey, by: string | null): void {
    const holds = this.holds.get(key);
    if (holds?.releaseTimer) clearTimeout(holds.releaseTimer);
    // Holds are dropped with the room: the listeners disconnect its sockets, whose unretain() then finds nothing.
    this.holds.delete(key);
    const { tenantId, roomId } = parseRoomKey(key);
    for (const listener of [...this.lostListeners]) {
      try {
        listener(tenantId, roomId, by);
      } catch (error) {
        this.options.logger.error({ err: error, room: key }, 'a lost-room listener threw');
      }
    }
  }
}

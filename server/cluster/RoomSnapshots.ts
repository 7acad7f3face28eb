/**
 * What a node taking a room over after its owner died needs to go on with it. The owner keeps
 * a snapshot of each room it holds in Redis (cluster:room:<room key>: settings, mode,
 * participants with their peer ids), written shortly after every change and refreshed before
 * it expires; the node that claims the room next reads it and starts the room from it
 * (RoomMoves.adopt): the participants coming back take their places under their old ids, so
 * the others keep their mesh links, and a room that was on the SFU is on the SFU again.
 *
 * Invariants: only the lease holder writes a room's snapshot (a node that lost the lease stops
 * at once); a room that ends deletes its snapshot; a failed write is logged and retried by the
 * next change or refresh, never thrown; a snapshot read back is checked like any inbound
 * payload (a malformed one is ignored: the room starts fresh).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { TopologyController } from '../rooms/TopologyController.js';
import { ClusterKeys, roomKey, type RoomKey } from './keys.js';
import { moveInPayload, snapshot, type MoveInPayload } from './RoomMoves.js';

export interface RoomSnapshotsOptions {
  redis: Redis;
  prefix: string;
  rooms: RoomManager;
  topology: Pick<TopologyController, 'on'>;
  /** Whether this node holds the room's lease. */
  holds: (key: RoomKey) => boolean;
  /** How long a snapshot outlives its last write (ms); refreshed every third of it. */
  ttlMs: number;
  logger: Logger;
}

/** Changes within this many ms are written as one snapshot. */
const WRITE_DELAY_MS = 100;

export class RoomSnapshots {
  private readonly keys: ClusterKeys;
  private readonly logger: Logger;
  private readonly dirty = new Set<Room>();
  private writeTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly unsubscribers: Array<() => void> = [];

  constructor(private readonly options: RoomSnapshotsOptions) {
    this.keys = new ClusterKeys(options.prefix);
    this.logger = options.logger.child({ module: 'room-snapshots' });
  }

  start(): void {
    if (this.refreshTimer) return;
    const { rooms, topology } = this.options;
    const changed = (room: Room): void => this.changed(room);
    // A leave is written at once: a snapshot still naming someone who left would bring them back as a held place.
    const left = (room: Room): void => this.changed(room, 0);
    this.unsubscribers.push(
      rooms.on('room_started', changed),
      rooms.on('peer_joined', changed),
      rooms.on('peer_left', left),
      rooms.on('expected_left', left),
      rooms.on('peer_updated', changed),
      rooms.on('peer_muted', changed),
      rooms.on('room_updated', changed),
      topology.on('mode_changed', changed),
      rooms.on('room_finished', (room) => this.roomEnded(room)),
    );
    this.refreshTimer = setInterval(
      () => {
        for (const room of rooms.all()) this.changed(room);
      },
      Math.max(1_000, Math.floor(this.options.ttlMs / 3)),
    );
    this.refreshTimer.unref();
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.refreshTimer = null;
    this.writeTimer = null;
    this.dirty.clear();
  }

  /** The snapshot a previous owner left of the room, or null (none, unreadable, or Redis cannot answer). */
  async read(tenantId: string, roomId: string): Promise<MoveInPayload | null> {
    let text: string | null;
    try {
      text = await this.options.redis.get(this.keys.roomSnapshot(roomKey(tenantId, roomId)));
    } catch (error) {
      this.logger.warn({ err: reason(error), tenant: tenantId, room: roomId }, 'room snapshot could not be read; the room starts afresh');
      return null;
    }
    if (text === null) return null;
    try {
      const parsed = moveInPayload.parse(JSON.parse(text));
      return parsed.tenant_id === tenantId && parsed.room_id === roomId ? parsed : null;
    } catch {
      this.logger.warn({ tenant: tenantId, room: roomId }, 'room snapshot is malformed; the room starts afresh');
      return null;
    }
  }

  /** Deletes the room's snapshot (the room is gone from the store: nothing to take over). Never throws. */
  async forget(tenantId: string, roomId: string): Promise<void> {
    await this.options.redis.del(this.keys.roomSnapshot(roomKey(tenantId, roomId))).catch((error: unknown) => {
      this.logger.debug({ err: reason(error), tenant: tenantId, room: roomId }, 'room snapshot not deleted; it expires by its TTL');
    });
  }

  /** Writes every pending snapshot now (before this node gives its leases up). Never throws. */
  flush(): Promise<void> {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    return this.write();
  }

  private changed(room: Room, delayMs = WRITE_DELAY_MS): void {
    if (room.closed || room.movingOut) return;
    this.dirty.add(room);
    if (this.writeTimer && delayMs > 0) return;
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = setTimeout(() => void this.write(), delayMs);
  }

  private async write(): Promise<void> {
    this.writeTimer = null;
    const rooms = [...this.dirty];
    this.dirty.clear();
    const pipeline = this.options.redis.pipeline();
    let writes = 0;
    for (const room of rooms) {
      if (room.closed || room.movingOut) continue;
      const key = roomKey(room.tenantId, room.id);
      if (!this.options.holds(key)) continue;
      pipeline.set(this.keys.roomSnapshot(key), JSON.stringify(snapshot(room)), 'PX', this.options.ttlMs);
      writes++;
    }
    if (writes === 0) return;
    try {
      await pipeline.exec();
    } catch (error) {
      this.logger.debug({ err: reason(error), rooms: writes }, 'room snapshots not written; the next change or refresh writes them');
    }
  }

  private roomEnded(room: Room): void {
    this.dirty.delete(room);
    const key = roomKey(room.tenantId, room.id);
    if (!this.options.holds(key)) return;
    this.options.redis.del(this.keys.roomSnapshot(key)).catch((error: unknown) => {
      this.logger.debug({ err: reason(error), room: room.key }, 'room snapshot not deleted; it expires by its TTL');
    });
  }
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

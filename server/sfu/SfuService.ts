import type { Config } from '../../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';
import { MEDIA_CODECS, SfuRoom, TenantTransportBudget } from './SfuRoom.js';
import { WorkerPool, type PoolWorker } from './WorkerPool.js';

export { SfuRoom } from './SfuRoom.js';

export type SfuServiceEvents = {
  /** Routers lost with a dead worker: these room keys had one (current or retiring) on it. */
  rooms_lost: [roomKeys: string[]];
  /** A data message was dropped on its way to a consumer: that peer's SCTP send buffer was full. */
  data_dropped: [];
};

/**
 * The SFU: a worker pool and one router per SFU room, placed on the least loaded worker.
 * The only part of the server that touches mediasoup (with SfuRoom and WorkerPool).
 */
export class SfuService extends TypedEmitter<SfuServiceEvents> {
  readonly pool: WorkerPool;
  /** Every open router; a room key can have two while a demoted router waits to retire. */
  private readonly rooms = new Set<SfuRoom>();
  /** Transports per tenant across every router of this node. */
  readonly tenantTransports: TenantTransportBudget;
  private readonly logger: Logger;

  constructor(private readonly options: { config: Config['sfu']; logger: Logger }) {
    super(options.logger);
    this.logger = options.logger.child({ module: 'sfu' });
    this.pool = new WorkerPool(options);
    this.tenantTransports = new TenantTransportBudget(options.config.maxTransportsPerTenant);
    this.pool.on('workerdied', (worker) => this.onWorkerDied(worker));
  }

  async start(): Promise<void> {
    await this.pool.start();
  }

  /** Some worker lives, and no worker slot is down for want of its media port (/ready). */
  get alive(): boolean {
    return this.pool.aliveCount > 0 && this.pool.failedSlots.size === 0;
  }

  /** The newest open router of a room (diagnostics and tests). */
  get(roomKey: string): SfuRoom | undefined {
    let newest: SfuRoom | undefined;
    for (const room of this.rooms) if (room.key === roomKey && !room.closed) newest = room;
    return newest;
  }

  /**
   * Creates a router for a room. It is the caller's alone: two callers for one key (a promotion
   * of a room that closed meanwhile and one of the room reopened under its name, or a demoted
   * router still retiring) never share one, so closing one cannot take the other's.
   */
  async open(roomKey: string, tenantId: string): Promise<SfuRoom> {
    const worker = this.pool.leastLoaded();
    if (!worker) throw new AppError('sfu_unavailable', 'no live SFU worker');
    worker.routers++;
    let router;
    try {
      router = await worker.worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    } catch (error) {
      worker.routers--;
      throw error;
    }
    const room = new SfuRoom(roomKey, tenantId, router, worker, this.options.config, this.tenantTransports, this.options.logger);
    room.on('data_dropped', () => this.emit('data_dropped'));
    try {
      await room.observeSpeakers();
    } catch (error) {
      room.close();
      throw error;
    }
    this.rooms.add(room);
    this.logger.info({ room: roomKey, worker: worker.worker.pid }, 'SFU router opened');
    return room;
  }

  /** Closes a router. */
  close(room: SfuRoom): void {
    this.rooms.delete(room);
    room.close();
  }

  /** Live routers per worker pid (diagnostics and tests). */
  roomsByWorker(): Map<number, string[]> {
    const result = new Map<number, string[]>();
    for (const room of this.rooms) {
      if (room.closed) continue;
      const list = result.get(room.worker.worker.pid) ?? [];
      list.push(room.key);
      result.set(room.worker.worker.pid, list);
    }
    return result;
  }

  stop(): void {
    for (const room of this.rooms) room.close();
    this.rooms.clear();
    this.pool.close();
    this.removeAllListeners();
  }

  private onWorkerDied(worker: PoolWorker): void {
    const lost = new Set<string>();
    for (const room of this.rooms) {
      if (room.worker !== worker) continue;
      this.rooms.delete(room);
      room.close();
      lost.add(room.key);
    }
    worker.routers = 0;
    if (lost.size) {
      this.logger.warn({ rooms: lost.size }, 'rooms lost their SFU router with a dead worker');
      this.emit('rooms_lost', [...lost]);
    }
  }
}

import type { Config } from '../../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';
import { MEDIA_CODECS, SfuRoom, TenantTransportBudget } from './SfuRoom.js';
import { WorkerPool, type PoolWorker } from './WorkerPool.js';

export { SfuRoom } from './SfuRoom.js';

export type SfuServiceEvents = {
  /** Routers lost with a dead worker: these room keys need a new router. */
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
  private readonly rooms = new Map<string, SfuRoom>();
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

  get alive(): boolean {
    return this.pool.aliveCount > 0;
  }

  get(roomKey: string): SfuRoom | undefined {
    const room = this.rooms.get(roomKey);
    return room && !room.closed ? room : undefined;
  }

  /** Creates the room's router (or returns the live one). */
  async open(roomKey: string, tenantId: string): Promise<SfuRoom> {
    const existing = this.get(roomKey);
    if (existing) return existing;
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
    const raced = this.get(roomKey);
    if (raced) {
      router.close();
      worker.routers--;
      return raced;
    }
    const room = new SfuRoom(roomKey, tenantId, router, worker, this.options.config, this.tenantTransports, this.options.logger);
    room.on('data_dropped', () => this.emit('data_dropped'));
    this.rooms.set(roomKey, room);
    this.logger.info({ room: roomKey, worker: worker.worker.pid }, 'SFU router opened');
    return room;
  }

  /** Closes a room's router, if this is still the live one. */
  close(room: SfuRoom): void {
    if (this.rooms.get(room.key) === room) this.rooms.delete(room.key);
    room.close();
  }

  /** Live routers per worker pid (diagnostics and tests). */
  roomsByWorker(): Map<number, string[]> {
    const result = new Map<number, string[]>();
    for (const room of this.rooms.values()) {
      if (room.closed) continue;
      const list = result.get(room.worker.worker.pid) ?? [];
      list.push(room.key);
      result.set(room.worker.worker.pid, list);
    }
    return result;
  }

  stop(): void {
    for (const room of this.rooms.values()) room.close();
    this.rooms.clear();
    this.pool.close();
    this.removeAllListeners();
  }

  private onWorkerDied(worker: PoolWorker): void {
    const lost: string[] = [];
    for (const [key, room] of this.rooms) {
      if (room.worker !== worker) continue;
      this.rooms.delete(key);
      room.close();
      lost.push(key);
    }
    worker.routers = 0;
    if (lost.length) {
      this.logger.warn({ rooms: lost.length }, 'rooms lost their SFU router with a dead worker');
      this.emit('rooms_lost', lost);
    }
  }
}

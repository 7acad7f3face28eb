import type { types as ms } from 'mediasoup';
import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';

/** One mediasoup worker process and how many routers it hosts (its load). */
export interface PoolWorker {
  readonly index: number;
  readonly worker: ms.Worker;
  routers: number;
}

export type WorkerPoolEvents = {
  /** A worker died; its routers are gone. A replacement is being spawned. */
  workerdied: [worker: PoolWorker];
};

const RESPAWN_DELAY_MS = 500;

/**
 * The mediasoup worker processes (SFU_WORKERS, default one per core). Rooms go to the least
 * loaded worker; a worker that dies is replaced, and `workerdied` lets the SfuService rebuild
 * the rooms that lived on it.
 */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  private readonly workers: Array<PoolWorker | null>;
  private mediasoup: typeof import('mediasoup') | null = null;
  private closed = false;
  private readonly logger: Logger;

  constructor(private readonly options: { config: Config['sfu']; logger: Logger }) {
    super(options.logger);
    this.logger = options.logger.child({ module: 'sfu-workers' });
    this.workers = new Array<PoolWorker | null>(options.config.workers).fill(null);
  }

  async start(): Promise<void> {
    // Loaded only when the SFU is on, so a mesh-only deployment never needs the worker binary.
    this.mediasoup = await import('mediasoup');
    await Promise.all(this.workers.map((_, index) => this.spawn(index)));
  }

  get aliveCount(): number {
    return this.workers.filter((w) => w && !w.worker.died).length;
  }

  /** Process ids of live workers (for tests and diagnostics). */
  pids(): number[] {
    return this.workers.flatMap((w) => (w && !w.worker.died ? [w.worker.pid] : []));
  }

  /** The live worker with the fewest routers. */
  leastLoaded(): PoolWorker | null {
    let best: PoolWorker | null = null;
    for (const w of this.workers) if (w && !w.worker.died && (!best || w.routers < best.routers)) best = w;
    return best;
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers) w?.worker.close();
    this.workers.fill(null);
    this.removeAllListeners();
  }

  private async spawn(index: number): Promise<void> {
    if (this.closed || !this.mediasoup) return;
    const { config } = this.options;
    const worker = await this.mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: config.minPort, rtcMaxPort: config.maxPort });
    if (this.closed) {
      worker.close();
      return;
    }
    const entry: PoolWorker = { index, worker, routers: 0 };
    this.workers[index] = entry;
    this.logger.info({ pid: worker.pid, index }, 'mediasoup worker started');
    worker.on('died', (error) => {
      this.workers[index] = null;
      this.logger.error({ pid: worker.pid, index, err: error }, 'mediasoup worker died; replacing it');
      this.emit('workerdied', entry);
      setTimeout(() => {
        this.spawn(index).catch((spawnError: unknown) =>
          this.logger.error({ err: spawnError, index }, 'could not replace a mediasoup worker'),
        );
      }, RESPAWN_DELAY_MS).unref();
    });
  }
}

import type { types as ms } from 'mediasoup';
import type { Config } from '../../config/index.js';
import type { Logger } from '../logger.js';
import { TypedEmitter } from '../TypedEmitter.js';

/** One mediasoup worker process, its WebRtcServer (single-port media), and how many routers it hosts (its load). */
export interface PoolWorker {
  readonly index: number;
  readonly worker: ms.Worker;
  /** Every WebRTC transport of the worker on one UDP and one TCP port (SFU_PORT + index); null in range mode (SFU_PORT=0). */
  readonly webRtcServer: ms.WebRtcServer | null;
  routers: number;
}

export type WorkerPoolEvents = {
  /** A worker died; its routers are gone. A replacement is being spawned. */
  workerdied: [worker: PoolWorker];
};

const RESPAWN_DELAY_MS = 500;
/** A replacement that could not start (its port taken meanwhile) is tried again this often. */
const RESPAWN_RETRY_MS = 2000;

/** A worker could not listen on its media port (SFU_PORT + index). */
export class SfuPortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SfuPortError';
  }
}

/**
 * The mediasoup worker processes (SFU_WORKERS, default one per core). Rooms go to the least
 * loaded worker; a worker that dies is replaced (with its WebRtcServer on the same port), and
 * `workerdied` lets the SfuService rebuild the rooms that lived on it.
 */
export class WorkerPool extends TypedEmitter<WorkerPoolEvents> {
  private readonly workers: Array<PoolWorker | null>;
  /** Why a slot has no worker after its replacement failed, by index, until a retry succeeds. */
  private readonly failures = new Map<number, string>();
  private mediasoup: typeof import('mediasoup') | null = null;
  private closed = false;
  private readonly logger: Logger;

  constructor(private readonly options: { config: Config['sfu']; logger: Logger }) {
    super(options.logger);
    this.logger = options.logger.child({ module: 'sfu-workers' });
    this.workers = new Array<PoolWorker | null>(options.config.workers).fill(null);
  }

  /** Starts every worker; rejects (SfuPortError naming SFU_PORT) when one cannot listen on its port. */
  async start(): Promise<void> {
    // Loaded only when the SFU is on, so a mesh-only deployment never needs the worker binary.
    this.mediasoup = await import('mediasoup');
    const started = await Promise.allSettled(this.workers.map((_, index) => this.spawn(index)));
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      this.close();
      throw failed.reason;
    }
  }

  get aliveCount(): number {
    return this.workers.filter((w) => w && !w.worker.died).length;
  }

  /** Slots whose replacement worker could not start (its media port taken), with the reason; /ready is false while any is. */
  get failedSlots(): ReadonlyMap<number, string> {
    return this.failures;
  }

  /** The media port of worker `index` in single-port mode (SFU_PORT + index), else null. */
  portOf(index: number): number | null {
    return this.options.config.port === 0 ? null : this.options.config.port + index;
  }

  /** Process ids of live workers (for tests and diagnostics). */
  pids(): number[] {
    return this.workers.flatMap((w) => (w && !w.worker.died ? [w.worker.pid] : []));
  }

  /** The live worker of a slot (tests and diagnostics). */
  at(index: number): PoolWorker | null {
    const entry = this.workers[index];
    return entry && !entry.worker.died ? entry : null;
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
    let webRtcServer: ms.WebRtcServer | null = null;
    try {
      webRtcServer = await this.createWebRtcServer(worker, index);
    } catch (error) {
      worker.close();
      throw error;
    }
    if (this.closed) {
      worker.close();
      return;
    }
    const entry: PoolWorker = { index, worker, webRtcServer, routers: 0 };
    this.workers[index] = entry;
    this.failures.delete(index);
    this.logger.info({ pid: worker.pid, index, port: this.portOf(index) }, 'mediasoup worker started');
    worker.on('died', (error) => {
      this.workers[index] = null;
      this.logger.error({ pid: worker.pid, index, err: error }, 'mediasoup worker died; replacing it');
      this.emit('workerdied', entry);
      this.respawn(index, RESPAWN_DELAY_MS);
    });
  }

  /** Replaces a dead worker after `delayMs`; a replacement that cannot start is tried again until the pool closes. */
  private respawn(index: number, delayMs: number): void {
    setTimeout(() => {
      this.spawn(index).catch((error: unknown) => {
        if (this.closed) return;
        this.failures.set(index, error instanceof Error ? error.message : String(error));
        this.logger.error({ err: error, index }, `could not replace a mediasoup worker; trying again in ${RESPAWN_RETRY_MS} ms`);
        this.respawn(index, RESPAWN_RETRY_MS);
      });
    }, delayMs).unref();
  }

  /** Single-port mode: the worker's WebRtcServer on SFU_PORT + index, UDP and TCP, announcing SFU_ANNOUNCED_IP. */
  private async createWebRtcServer(worker: ms.Worker, index: number): Promise<ms.WebRtcServer | null> {
    const port = this.portOf(index);
    if (port === null) return null;
    const { listenIp, announcedIp } = this.options.config;
    const listen = { ip: listenIp, port, ...(announcedIp ? { announcedIp } : {}) };
    try {
      return await worker.createWebRtcServer({
        listenInfos: [
          { protocol: 'udp', ...listen },
          { protocol: 'tcp', ...listen },
        ],
        appData: { index },
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SfuPortError(
        `SFU_PORT: SFU worker ${index} cannot listen on ${listenIp}:${port} (UDP and TCP; worker i takes SFU_PORT + i): ${reason}. ` +
          'Is another process (or another Switchboard) using it? Choose a free SFU_PORT, or SFU_PORT=0 for the port range SFU_MIN_PORT..SFU_MAX_PORT',
      );
    }
  }
}

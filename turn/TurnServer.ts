/**
 * The bundled TURN server as the rest of Switchboard sees it: start, close, stats, and the
 * ice_servers that point at it. The relay itself (TurnRelay: node-turn plus credentials,
 * peer policy, quotas and ChannelData) runs in worker threads, TURN_WORKERS of them.
 *
 * Across cores: worker i owns its listening port (TURN_PORT + i, UDP and TCP), the relay
 * ports it binds and the allocations made through it; TLS is served by worker 0 alone (one
 * TLS port, often 443). Nothing is handed from thread to thread per packet: a user's
 * ice_servers name one worker's port (relayWorkerFor: a hash of the user id, so a user's
 * reconnects land on the same worker) and the kernel delivers its datagrams there. Node 20
 * cannot share one UDP port between threads (no SO_REUSEPORT in dgram), hence a port per
 * worker. The quotas are shared (RelayQuotas, in shared memory): any client may send to any
 * worker's port, and a quota counted per worker would be N times the setting.
 *
 * Why a worker thread rather than a child process: relaying is per-packet JavaScript, and
 * on the signaling thread a burst of media would queue behind (and delay) Socket.IO
 * traffic. A worker has its own V8 isolate, heap, GC and libuv loop, so relay work and its
 * garbage collection run in parallel with signaling, which is all a child process would add
 * for pure-JS code; but a worker also shares the process (nothing to orphan, supervise or
 * kill separately, no extra Node runtime in memory, start-up in milliseconds) and can share
 * memory: the counters live in a SharedArrayBuffer the worker writes and stats() reads
 * synchronously, so nothing crosses threads per packet. Messages cross only for start,
 * close and (rate-limited) log lines.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { IceServer } from '../protocol/events.js';
import type { Logger } from '../server/logger.js';
import { buildIceServers, relayWorkerFor, type RelayPorts, type TurnSettings } from './credentials.js';
import { RelayQuotas } from './RelayQuotas.js';
import { sumTurnStats, TurnCounters, type TurnStats } from './TurnCounters.js';
import type { RelayLogLevel } from './TurnRelay.js';
import { chooseUdpIo } from './udpEndpoint.js';

/** What the worker is started with. */
export interface TurnWorkerData {
  settings: TurnSettings;
  /** This worker's index, 0..TURN_WORKERS-1 (worker 0 also serves TLS). */
  index: number;
  /** RelayQuotas' buffer, shared by every worker. */
  quotas: SharedArrayBuffer;
  /** The ports to listen on (a restarted worker gets those its predecessor bound). */
  ports: RelayPorts;
  /** A restart after a crash: a TLS certificate that does not load then waits instead of failing the start. */
  restart: boolean;
  counters: SharedArrayBuffer;
  /** pino numeric level; lower log lines are not posted at all. */
  logLevel: number;
}

export type ToWorker = { type: 'close' } | { type: 'serverPorts'; ports: number[] };

export type FromWorker =
  | { type: 'listening'; ports: RelayPorts }
  | { type: 'failed'; message: string; code: string | undefined }
  | { type: 'log'; level: RelayLogLevel; fields: Record<string, unknown>; msg: string };

export interface TurnServerOptions {
  /** The TURN_* settings (Config['turn']). */
  config: TurnSettings;
  logger: Logger;
}

const CLOSE_TIMEOUT_MS = 5_000;
const RESTART_DELAY_MS = 1_000;
const RESTART_WINDOW_MS = 60_000;
const MAX_RESTARTS_PER_WINDOW = 5;

/**
 * Starts the worker. From the compiled dist/ the entry is turnWorker.js next to this file.
 * From source under tsx (tests, npm run dev), Node 20 does not pass tsx's loader hooks to
 * worker threads, so a small bootstrap registers tsx inside the worker before loading
 * turnWorker.ts.
 */
function startWorker(data: TurnWorkerData): Worker {
  const options = { workerData: data, name: 'switchboard-turn' };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./turnWorker.js', import.meta.url), options);
  // tsx's CommonJS API (resolved from here, so the worker's cwd does not matter) compiles
  // the worker's modules on require. createRequire, not import.meta.resolve: under mocha,
  // tsx may load this very file as CommonJS, where import.meta.resolve does not exist.
  const require = createRequire(import.meta.url);
  const tsx = require.resolve('tsx/cjs/api');
  const entry = fileURLToPath(new URL('./turnWorker.ts', import.meta.url));
  const boot = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`;
  return new Worker(boot, { ...options, eval: true });
}

/** One relay worker thread and what the server keeps of it. */
interface RelayWorker {
  readonly index: number;
  readonly counters: TurnCounters;
  thread: Worker | undefined;
  /** The ports it listens on (a restarted worker gets the same). */
  bound: RelayPorts;
  /** It listens now (not dead, restarting or given up on). */
  live: boolean;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** When it was restarted within the last RESTART_WINDOW_MS. */
  restarts: number[];
}

export class TurnServer {
  private settings: TurnSettings;
  private readonly logger: Logger;
  private readonly quotas: SharedArrayBuffer;
  /** The main thread's view on the quotas: it only clears a dead worker's counts. */
  private readonly quotaView: RelayQuotas;
  private readonly workers: RelayWorker[];
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: TurnServerOptions) {
    this.settings = options.config;
    this.logger = options.logger.child({ module: 'turn' });
    const { workers, maxAllocations } = this.settings;
    this.quotas = RelayQuotas.create(workers, maxAllocations);
    this.quotaView = new RelayQuotas(this.quotas, 0, workers, maxAllocations, {
      maxAllocations,
      maxAllocationsPerUser: this.settings.maxAllocationsPerUser,
      maxConnectionsPerIp: this.settings.maxConnectionsPerIp,
    });
    this.workers = Array.from({ length: workers }, (_, index) => ({
      index,
      counters: new TurnCounters(),
      thread: undefined,
      bound: { port: 0, tlsPort: 0 },
      live: false,
      restartTimer: undefined,
      restarts: [],
    }));
  }

  /** Worker 0's UDP (and TCP) port: TURN_PORT (the real one when TURN_PORT is 0); 0 before start(). */
  get port(): number {
    return this.ports[0] ?? 0;
  }

  /** Every relay worker's UDP (and TCP) port, by worker index (TURN_PORT + i, or what each bound when TURN_PORT is 0). */
  get ports(): number[] {
    return this.workers.map((worker) => worker.bound.port);
  }

  /** The TLS port the relay listens on (the real one when TURN_TLS_PORT is 0); 0 before start() or without TLS. */
  get tlsPort(): number {
    return this.workers[0]?.bound.tlsPort ?? 0;
  }

  /**
   * Resolves once every relay worker listens; rejects if one cannot (port taken, bad address),
   * having stopped those that started.
   */
  async start(): Promise<void> {
    if (!this.settings.enabled) throw new Error('[TurnServer:start] TURN_ENABLED is false');
    if (this.started || this.closed) throw new Error('[TurnServer:start] already started or closed');
    this.started = true;
    const { port, tlsPort } = this.settings;
    // Chosen once here, so every worker relays the same way and the log says why it is not native.
    const { io, notNative } = chooseUdpIo(this.settings.udpIo);
    this.settings = { ...this.settings, udpIo: io };
    if (notNative === undefined) this.logger.info({ udpIo: io }, 'turn relay UDP I/O: native (recvmmsg batches)');
    else this.logger.info({ udpIo: io, reason: notNative }, 'turn relay UDP I/O: dgram');
    const results = await Promise.allSettled(
      this.workers.map((worker) =>
        this.spawn(worker, { port: port === 0 ? 0 : port + worker.index, tlsPort: worker.index === 0 ? tlsPort : 0 }, false),
      ),
    );
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) {
      await this.close();
      throw failure.reason;
    }
    this.tellServerPorts();
  }

  /** Stops the relay and every allocation. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Counters since start, summed over the workers (read from shared memory, no round trip to a worker). */
  stats(): TurnStats {
    return sumTurnStats(this.workers.map((worker) => worker.counters.snapshot()));
  }

  /**
   * ice_servers for `userId` pointing at this relay's real ports: the UDP/TCP port of the
   * worker the user is given (relayWorkerFor), TLS on its one port (see buildIceServers).
   */
  iceServers(userId: string, nowMs: number = Date.now()): IceServer[] {
    return buildIceServers(this.settings, userId, nowMs, { port: this.portFor(userId), tlsPort: this.tlsPort || this.settings.tlsPort });
  }

  /**
   * The UDP/TCP port of the relay worker `userId` is given (relayWorkerFor); while that worker
   * is down (restarting, or given up on), the next one that listens.
   */
  portFor(userId: string): number {
    const count = this.workers.length;
    const first = relayWorkerFor(userId, count);
    let worker = this.workers[first] as RelayWorker;
    for (let i = 1; i < count && !worker.live; i++) {
      const next = this.workers[(first + i) % count] as RelayWorker;
      if (next.live) worker = next;
    }
    return worker.bound.port || this.settings.port + worker.index;
  }

  private spawn(worker: RelayWorker, ports: RelayPorts, restart: boolean): Promise<RelayPorts> {
    return new Promise<RelayPorts>((resolve, reject) => {
      const thread = startWorker({
        settings: this.settings,
        index: worker.index,
        quotas: this.quotas,
        ports,
        restart,
        counters: worker.counters.buffer,
        logLevel: this.logger.levelVal,
      });
      worker.thread = thread;
      let listening = false;
      thread.on('message', (message: FromWorker) => {
        if (message.type === 'log') this.logger[message.level]({ worker: worker.index, ...message.fields }, message.msg);
        else if (message.type === 'listening') {
          listening = true;
          // Kept at once: a worker that dies before the others listen restarts on these ports.
          worker.bound = message.ports;
          worker.live = true;
          resolve(message.ports);
        } else {
          void thread.terminate();
          // The relay names the setting and the listener: "TURN_TLS_PORT: cannot listen on tls 0.0.0.0:443: EACCES ...".
          reject(new Error(`[TurnServer:start] ${message.message}`));
        }
      });
      thread.on('error', (error) => {
        this.logger.error({ err: error, worker: worker.index }, 'turn worker failed');
        if (!listening) reject(error);
      });
      thread.on('exit', (code) => {
        if (worker.thread === thread) worker.thread = undefined;
        worker.live = false;
        if (!listening) reject(new Error(`[TurnServer:start] turn worker exited with code ${code} before listening`));
        else if (!this.closed) this.restartAfterCrash(worker, code);
      });
    });
  }

  /** Every worker learns every worker's listening port (the peer policy keeps relayed datagrams off them). */
  private tellServerPorts(): void {
    const message: ToWorker = { type: 'serverPorts', ports: this.ports };
    for (const worker of this.workers) worker.thread?.postMessage(message);
  }

  /** A relay worker died (a bug, not a shutdown): its allocations are gone; it listens again on the same port. */
  private restartAfterCrash(worker: RelayWorker, code: number): void {
    this.resetGauges(worker);
    this.quotaView.clearWorker(worker.index);
    const now = Date.now();
    worker.restarts = worker.restarts.filter((at) => now - at < RESTART_WINDOW_MS);
    if (worker.restarts.length >= MAX_RESTARTS_PER_WINDOW) {
      this.logger.error({ code, worker: worker.index }, 'turn worker keeps exiting; it stays down');
      return;
    }
    worker.restarts.push(now);
    this.logger.error({ code, worker: worker.index }, 'turn worker exited unexpectedly; restarting');
    worker.restartTimer = setTimeout(() => {
      worker.restartTimer = undefined;
      if (this.closed) return;
      this.spawn(worker, worker.bound, true).then(
        () => {
          this.tellServerPorts();
          this.logger.warn(
            { worker: worker.index, port: worker.bound.port, tlsPort: worker.bound.tlsPort || undefined },
            'turn relay worker restarted',
          );
        },
        (error: Error) => this.logger.error({ err: error, worker: worker.index }, 'turn relay worker restart failed'),
      );
    }, RESTART_DELAY_MS);
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.restartTimer) clearTimeout(worker.restartTimer);
        const thread = worker.thread;
        if (thread) {
          const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
          thread.postMessage({ type: 'close' } satisfies ToWorker);
          const timer = setTimeout(() => void thread.terminate(), CLOSE_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        this.resetGauges(worker);
      }),
    );
  }

  /** A relay worker that is gone holds no allocation and no connection. */
  private resetGauges(worker: RelayWorker): void {
    worker.counters.setActiveAllocations(0);
    worker.counters.setConnections('tcp', 0);
    worker.counters.setConnections('tls', 0);
  }
}

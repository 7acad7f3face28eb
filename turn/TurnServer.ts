/**
 * The bundled TURN server as the rest of Switchboard sees it: start, close, stats, and the
 * ice_servers that point at it. The relay itself (TurnRelay: node-turn plus credentials,
 * peer policy, quotas and ChannelData) runs in a worker thread.
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
import { buildIceServers, type RelayPorts, type TurnSettings } from './credentials.js';
import { TurnCounters, type TurnStats } from './TurnCounters.js';
import type { RelayLogLevel } from './TurnRelay.js';

/** What the worker is started with. */
export interface TurnWorkerData {
  settings: TurnSettings;
  /** The ports to listen on (a restarted worker gets those its predecessor bound). */
  ports: RelayPorts;
  /** A restart after a crash: a TLS certificate that does not load then waits instead of failing the start. */
  restart: boolean;
  counters: SharedArrayBuffer;
  /** pino numeric level; lower log lines are not posted at all. */
  logLevel: number;
}

export type ToWorker = { type: 'close' };

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

export class TurnServer {
  private readonly settings: TurnSettings;
  private readonly logger: Logger;
  private readonly counters = new TurnCounters();
  private worker: Worker | undefined;
  private bound: RelayPorts = { port: 0, tlsPort: 0 };
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private restarts: number[] = [];

  constructor(options: TurnServerOptions) {
    this.settings = options.config;
    this.logger = options.logger.child({ module: 'turn' });
  }

  /** The UDP (and TCP) port the relay listens on (the real one when TURN_PORT is 0); 0 before start(). */
  get port(): number {
    return this.bound.port;
  }

  /** The TLS port the relay listens on (the real one when TURN_TLS_PORT is 0); 0 before start() or without TLS. */
  get tlsPort(): number {
    return this.bound.tlsPort;
  }

  /** Resolves once the relay listens; rejects if it cannot (port taken, bad address). */
  async start(): Promise<void> {
    if (!this.settings.enabled) throw new Error('[TurnServer:start] TURN_ENABLED is false');
    if (this.started || this.closed) throw new Error('[TurnServer:start] already started or closed');
    this.started = true;
    this.bound = await this.spawn({ port: this.settings.port, tlsPort: this.settings.tlsPort }, false);
  }

  /** Stops the relay and every allocation. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Counters since start (read from shared memory, no round trip to the worker). */
  stats(): TurnStats {
    return this.counters.snapshot();
  }

  /** ice_servers for `userId` pointing at this relay's real ports (see buildIceServers). */
  iceServers(userId: string, nowMs: number = Date.now()): IceServer[] {
    return buildIceServers(this.settings, userId, nowMs, {
      port: this.bound.port || this.settings.port,
      tlsPort: this.bound.tlsPort || this.settings.tlsPort,
    });
  }

  private spawn(ports: RelayPorts, restart: boolean): Promise<RelayPorts> {
    return new Promise<RelayPorts>((resolve, reject) => {
      const worker = startWorker({
        settings: this.settings,
        ports,
        restart,
        counters: this.counters.buffer,
        logLevel: this.logger.levelVal,
      });
      this.worker = worker;
      let listening = false;
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'log') this.logger[message.level](message.fields, message.msg);
        else if (message.type === 'listening') {
          listening = true;
          resolve(message.ports);
        } else {
          void worker.terminate();
          // The relay names the setting and the listener: "TURN_TLS_PORT: cannot listen on tls 0.0.0.0:443: EACCES ...".
          reject(new Error(`[TurnServer:start] ${message.message}`));
        }
      });
      worker.on('error', (error) => {
        this.logger.error({ err: error }, 'turn worker failed');
        if (!listening) reject(error);
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        if (!listening) reject(new Error(`[TurnServer:start] turn worker exited with code ${code} before listening`));
        else if (!this.closed) this.restartAfterCrash(code);
      });
    });
  }

  /** The relay died (a bug, not a shutdown): allocations are gone; listen again on the same port. */
  private restartAfterCrash(code: number): void {
    this.resetGauges();
    const now = Date.now();
    this.restarts = this.restarts.filter((at) => now - at < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS_PER_WINDOW) {
      this.logger.error({ code }, 'turn worker keeps exiting; TURN relay stays down');
      return;
    }
    this.restarts.push(now);
    this.logger.error({ code }, 'turn worker exited unexpectedly; restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.spawn(this.bound, true).then(
        () => this.logger.warn({ port: this.bound.port, tlsPort: this.bound.tlsPort || undefined }, 'turn relay restarted'),
        (error: Error) => this.logger.error({ err: error }, 'turn relay restart failed'),
      );
    }, RESTART_DELAY_MS);
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.resetGauges();
  }

  /** A relay that is gone holds no allocation and no connection. */
  private resetGauges(): void {
    this.counters.setActiveAllocations(0);
    this.counters.setConnections('tcp', 0);
    this.counters.setConnections('tls', 0);
  }
}

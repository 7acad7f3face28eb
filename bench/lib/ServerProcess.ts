/**
 * A benchmark server in a child process (bench/servers/main.ts), optionally pinned to a core
 * with taskset, driven over IPC: CPU and memory usage, GC, CPU profiles, close. Load
 * generators that need a process of their own (a TURN stream, a share of the density
 * benchmark's idle clients) run and are driven the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds, procRssBytes, tasksetAvailable, trackChild, treeCpuSeconds } from './processes.js';

/**
 * Servers (bench/servers/main.ts), the TURN stream generator (bench/servers/turnStream.ts)
 * and the density benchmark's client generator (bench/servers/densityClients.ts).
 */
export type ServerKind = 'switchboard' | 'switchboard-inline-turn' | 'baseline' | 'turn-stream' | 'density-clients' | 'udp-forwarder';

export type ToServer = {
  id: number;
  cmd:
    | 'usage'
    | 'gc'
    | 'gcStats'
    | 'addresses'
    | 'profileStart'
    | 'profileStop'
    | 'streamStart'
    | 'streamStop'
    | 'loadClients'
    | 'connectClients'
    | 'closeClients'
    | 'close';
  args?: unknown;
};

export type FromServer =
  | { type: 'ready'; url: string; port: number; turnPort?: number; turnPorts?: number[]; devApiSecret?: string; pid: number }
  | { type: 'reply'; id: number; result?: unknown; error?: string };

export interface ServerUsage {
  /** User + system CPU seconds of the whole process (every thread), from process.cpuUsage(). */
  cpuS: number;
  rss: number;
  heapUsed: number;
}

/** GC pauses a server saw since the previous request. */
export interface GcStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

export interface StartOptions {
  kind: ServerKind;
  /** Switchboard env overrides (on top of bench/lib/benchConfig.ts); the stream's spec for turn-stream. */
  env?: Record<string, string> | Record<string, unknown>;
  /** taskset CPU list, or null for no pinning. */
  cpus?: string | null;
  /** Extra node flags. */
  nodeArgs?: string[];
  startTimeoutMs?: number;
}

const ENTRY = fileURLToPath(new URL('../servers/main.ts', import.meta.url));
/** Kinds that are not a server, and the script each runs. */
const GENERATOR_ENTRIES: Partial<Record<ServerKind, string>> = {
  'turn-stream': fileURLToPath(new URL('../servers/turnStream.ts', import.meta.url)),
  'density-clients': fileURLToPath(new URL('../servers/densityClients.ts', import.meta.url)),
  'udp-forwarder': fileURLToPath(new URL('../servers/udpForwarder.ts', import.meta.url)),
};
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export class ServerProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly kind: ServerKind,
    private readonly child: ChildProcess,
    readonly info: Extract<FromServer, { type: 'ready' }>,
    private readonly stderr: () => string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.on('message', (message: FromServer) => {
      if (message.type !== 'reply') return;
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter.reject(new Error(`[${kind}] ${message.error}`));
      else waiter.resolve(message.result);
    });
    child.once('exit', (code, signal) => {
      for (const [, waiter] of this.pending)
        waiter.reject(new Error(`[${kind}] server exited (${code ?? signal}): ${stderr().slice(-500)}`));
      this.pending.clear();
    });
  }

  /** Starts a server and resolves once it listens. */
  static async start(options: StartOptions): Promise<ServerProcess> {
    const nodeArgs = [
      '--import',
      'tsx',
      '--expose-gc',
      ...(options.nodeArgs ?? []),
      GENERATOR_ENTRIES[options.kind] ?? ENTRY,
      options.kind,
      JSON.stringify(options.env ?? {}),
    ];
    const pin = options.cpus && tasksetAvailable() ? ['-c', options.cpus] : null;
    const child = pin
      ? spawn('taskset', [...pin, process.execPath, ...nodeArgs], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
      : spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    trackChild(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000);
    });
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    const info = await new Promise<Extract<FromServer, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`[${options.kind}] did not start within ${timeoutMs} ms: ${stderr.slice(-1000)}`));
      }, timeoutMs);
      child.on('message', (message: FromServer) => {
        if (message.type !== 'ready') return;
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`[${options.kind}] exited during start (${code ?? signal}): ${stderr.slice(-2000)}`));
      });
    });
    return new ServerProcess(options.kind, child, info, () => stderr);
  }

  get url(): string {
    return this.info.url;
  }

  get pid(): number {
    return this.info.pid;
  }

  request<T>(cmd: ToServer['cmd'], args?: unknown, timeoutMs = 30_000): Promise<T> {
    if (!this.child.connected) return Promise.reject(new Error(`[${this.kind}] server is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`[${this.kind}] ${cmd} timed out`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, cmd, args } satisfies ToServer);
    });
  }

  /** CPU seconds and memory of the server process, as it reports them. */
  usage(): Promise<ServerUsage> {
    return this.request<ServerUsage>('usage');
  }

  /** Full GC in the server (node --expose-gc), so memory figures exclude garbage. */
  async gc(): Promise<void> {
    await this.request('gc');
  }

  /** GC pauses since the previous call (the first call returns those since start). */
  gcStats(): Promise<GcStats> {
    return this.request<GcStats>('gcStats');
  }

  /** CPU seconds from /proc (the process, or it and its children such as mediasoup workers). */
  procCpuSeconds(withChildren = false): number {
    return withChildren ? treeCpuSeconds(this.pid) : procCpuSeconds(this.pid);
  }

  procRssBytes(): number {
    return procRssBytes(this.pid);
  }

  /** Closes the server gracefully; kills it when that takes more than 10 s. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.child.connected) await this.request('close', undefined, 10_000).catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    })();
    return this.closing;
  }

  /** The last lines the server wrote to stderr (for failure messages). */
  lastErrors(): string {
    return this.stderr();
  }
}

/**
 * What every benchmark gets from its runner: rounds, pinning, a pool of server processes
 * (shared where a benchmark allows it, so the smoke run starts few), and a log line sink.
 */
import { ServerProcess, type ServerKind, type StartOptions } from './ServerProcess.js';
import { SERVER_CPUS } from './processes.js';

export interface BenchContext {
  /** Rounds of interleaved baseline/Switchboard measurements. */
  rounds: number;
  /** Pin servers to core 0 (the runner pins the load generator to core 1). */
  pin: boolean;
  /** Tiny sizes (the smoke test): sanity, not numbers. */
  smoke: boolean;
  servers: ServerPool;
  log(line: string): void;
}

/** Server processes keyed by kind and settings; `fresh` ones are the caller's to close. */
export class ServerPool {
  private readonly shared = new Map<string, Promise<ServerProcess>>();
  private readonly owned = new Set<ServerProcess>();
  /** Every process id this pool started (for checks that none outlives it). */
  readonly startedPids: number[] = [];

  constructor(private readonly pin: boolean) {}

  /** A running server of this kind and env, started on first use and kept until closeAll(). */
  get(kind: ServerKind, env: Record<string, string> = {}, options: { cpus?: string | null } = {}): Promise<ServerProcess> {
    const cpus = options.cpus === undefined ? (this.pin ? SERVER_CPUS : null) : options.cpus;
    const key = `${kind} ${JSON.stringify(env)} ${cpus}`;
    let server = this.shared.get(key);
    if (!server) {
      server = ServerProcess.start({ kind, env, cpus });
      this.shared.set(key, server);
      server.then(
        (s) => {
          this.owned.add(s);
          this.startedPids.push(s.pid);
        },
        () => this.shared.delete(key),
      );
    }
    return server;
  }

  /** A new server just for the caller (close it with release()). */
  async fresh(
    kind: ServerKind,
    env: StartOptions['env'] = {},
    options: { cpus?: string | null; nodeArgs?: string[] } = {},
  ): Promise<ServerProcess> {
    const cpus = options.cpus === undefined ? (this.pin ? SERVER_CPUS : null) : options.cpus;
    const server = await ServerProcess.start({ kind, env, cpus, nodeArgs: options.nodeArgs });
    this.owned.add(server);
    this.startedPids.push(server.pid);
    return server;
  }

  async release(server: ServerProcess): Promise<void> {
    for (const [key, shared] of this.shared) if ((await shared.catch(() => null)) === server) this.shared.delete(key);
    this.owned.delete(server);
    await server.close();
  }

  async closeAll(): Promise<void> {
    const starting = await Promise.all([...this.shared.values()].map((server) => server.catch(() => null)));
    const all = new Set([...this.owned, ...starting.filter((server): server is ServerProcess => server !== null)]);
    this.owned.clear();
    this.shared.clear();
    await Promise.all([...all].map((server) => server.close()));
  }
}

/**
 * The TURN benchmark's load generator: native where it can be, Node where it cannot.
 *
 * Native: bench/native/turnblast.c, compiled with gcc -O2 on first use into a cache outside
 * the repository (os.tmpdir()/switchboard-bench/turnblast-<hash of source and flags>, reused
 * while the source is unchanged) and driven over stdin/stdout (the protocol is at the top of
 * the C file). Node keeps the control plane: TurnFlows opens the flows as the Node generator
 * does (allocation and channel binding, or forwarder registration), then hands their ports
 * over (its sockets closed, the allocations kept); turnblast binds the same client and peer
 * ports, sends the paced ChannelData with sendmmsg (up to 64 datagrams a message with UDP GSO,
 * unless BENCH_TURN_GSO=0) and counts the peers' datagrams with recvmmsg. At close, once
 * turnblast has quit, Node releases the allocations from the same client ports.
 *
 * Node: TurnFlows itself (one dgram `send` and one `message` event per packet), where gcc is
 * missing, the build or a trial run fails, or BENCH_TURN_GENERATOR=node; `nodeReason` says why.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { envFlag } from './env.js';
import { tasksetAvailable, trackChild } from './processes.js';
import { TurnFlows, type LoadFlows, type TurnEndpoint } from './turnLoad.js';

const SOURCE = fileURLToPath(new URL('../native/turnblast.c', import.meta.url));
const GCC_FLAGS = ['-O2', '-pthread'];

export type GeneratorKind = 'native' | 'node';

export interface LoadGenerator {
  kind: GeneratorKind;
  /** Whether the native generator sends with UDP GSO (false for Node). */
  gso: boolean;
  /** Why the Node generator runs rather than the native one; null when the native one runs. */
  nodeReason: string | null;
  /** What generates the load, for the log and the results. */
  description: string;
  /** Opens `count` flows (through a TURN relay, or registered with the bare forwarder when `bare`). */
  open(endpoint: TurnEndpoint, count: number, options?: OpenOptions): Promise<LoadFlows>;
}

export interface OpenOptions {
  /** Flows through the bare forwarder (bench/servers/udpForwarder.ts) instead of a TURN relay. */
  bare?: boolean;
  /** taskset CPU list for the native process (the generator's cores); null or absent: not pinned. */
  cpus?: string | null;
}

interface NativeOptions extends OpenOptions {
  /** Send with UDP GSO. */
  gso: boolean;
}

function nativeDescription(gso: boolean, why: string): string {
  return `native (bench/native/turnblast.c: one C process, sendmmsg${gso ? ' with UDP GSO' : ` without UDP GSO (${why})`} and recvmmsg; Node for allocations only)`;
}
export const NODE_DESCRIPTION = 'Node (dgram: one send and one message event per packet, in the benchmark process)';

type Built = { path: string; gso: boolean } | { error: string };
let built: Built | undefined;

/** Whether sends may use UDP GSO (BENCH_TURN_GSO, on by default). */
function gsoWanted(): boolean {
  return envFlag('BENCH_TURN_GSO', true);
}

/** The compiled turnblast (built once per source) and whether the kernel takes its UDP GSO, or why there is none. */
export function turnblastBinary(): Built {
  built ??= build();
  return built;
}

function firstLine(text: string | null | undefined): string {
  return (text ?? '').trim().split('\n')[0] ?? '';
}

function build(): Built {
  if (process.platform !== 'linux') return { error: `turnblast needs Linux (sendmmsg, recvmmsg, epoll), this is ${process.platform}` };
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(GCC_FLAGS.join(' ')).update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'switchboard-bench');
  const binary = join(dir, `turnblast-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    // Built under a name of its own, then renamed: processes building at once each install a whole file.
    const partial = `${binary}.${process.pid}.tmp`;
    const gcc = spawnSync('gcc', [...GCC_FLAGS, '-o', partial, SOURCE], { encoding: 'utf8', timeout: 120_000 });
    if (gcc.error) {
      const code = (gcc.error as NodeJS.ErrnoException).code;
      return { error: code === 'ENOENT' ? 'gcc is not installed' : `gcc could not run (${code ?? gcc.error.message})` };
    }
    if (gcc.status !== 0) {
      rmSync(partial, { force: true });
      return { error: `gcc failed to build bench/native/turnblast.c: ${firstLine(gcc.stderr) || `exit ${gcc.status}`}` };
    }
    renameSync(partial, binary);
  }
  // A trial run with one flow on ephemeral ports: a build that cannot execute here (a noexec
  // temporary directory, say) is no better than none; its answer to `start` says whether the kernel takes UDP GSO.
  const trial = spawnSync(binary, [], { input: 'flow 0 127.0.0.1 9 16384 0\nstart\nquit\n', encoding: 'utf8', timeout: 10_000 });
  const started = /"flows":1,.*"gso":([01])/.exec(trial.stdout ?? '');
  if (trial.error || !started || !trial.stdout.includes('"quit":true'))
    return {
      error: `${binary} does not run: ${trial.error?.message ?? (firstLine(trial.stderr) || firstLine(trial.stdout) || `exit ${trial.status}`)}`,
    };
  return { path: binary, gso: started[1] === '1' };
}

/**
 * The generator to use: native unless asked for Node (`BENCH_TURN_GENERATOR=node`) or the
 * native one cannot be built or run here (then Node, and nodeReason says why).
 */
export function loadGenerator(asked: string = process.env.BENCH_TURN_GENERATOR || 'native'): LoadGenerator {
  const node = (reason: string): LoadGenerator => ({
    kind: 'node',
    gso: false,
    nodeReason: reason,
    description: `${NODE_DESCRIPTION}; not native: ${reason}`,
    open: (endpoint, count, options = {}) => (options.bare ? TurnFlows.openBare(endpoint, count) : TurnFlows.open(endpoint, count)),
  });
  if (asked === 'node') return node('BENCH_TURN_GENERATOR=node');
  if (asked !== 'native') throw new Error(`BENCH_TURN_GENERATOR must be native or node, got ${asked}`);
  const binary = turnblastBinary();
  if ('error' in binary) return node(binary.error);
  const gso = binary.gso && gsoWanted();
  return {
    kind: 'native',
    gso,
    nodeReason: null,
    description: nativeDescription(gso, gsoWanted() ? 'the kernel refused it' : 'BENCH_TURN_GSO=0'),
    open: (endpoint, count, options = {}) => NativeFlows.open(binary.path, endpoint, count, { ...options, gso }),
  };
}

type Answer = Record<string, number | boolean | string>;

/** Flows opened by Node and driven by a turnblast process. */
export class NativeFlows implements LoadFlows {
  private readonly waiters: Array<{ line: string; resolve: (answer: Answer) => void; reject: (error: Error) => void }> = [];
  private readonly exited: Promise<void>;
  private gone: string | null = null;
  private stderr = '';
  /** Ends the stream of a send with durationMs 0 (set while one runs). */
  private endStream: (() => void) | undefined;
  private streaming: Promise<unknown> | undefined;
  private closed = false;
  /** Socket buffer sizes turnblast got (bytes, as the kernel reports them: twice what was set). */
  buffers: { sndbuf: number; rcvbuf: number } = { sndbuf: 0, rcvbuf: 0 };

  private constructor(
    private readonly child: ChildProcess,
    private readonly release: () => Promise<void>,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
    child.once('error', (error) => this.fail(`could not start: ${error.message}`));
    child.once('exit', (code, signal) => this.fail(`exited (${code ?? signal})`));
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    child.stdin?.on('error', () => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (!waiter) return; // the answer to quit
      let answer: Answer;
      try {
        answer = JSON.parse(line) as Answer;
      } catch {
        waiter.reject(new Error(`turnblast answered "${waiter.line}" with ${line}`));
        return;
      }
      if (typeof answer.error === 'string') waiter.reject(new Error(`turnblast: ${waiter.line}: ${answer.error}`));
      else waiter.resolve(answer);
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Opens the flows with TurnFlows, hands their ports to a new turnblast process, and starts it. */
  static async open(binary: string, endpoint: TurnEndpoint, count: number, options: NativeOptions): Promise<NativeFlows> {
    const opened = options.bare ? await TurnFlows.openBare(endpoint, count) : await TurnFlows.open(endpoint, count);
    const handed = await opened.handOver();
    // Pinned with taskset, which execs turnblast in its own process (the pid stays turnblast's).
    const child =
      options.cpus && tasksetAvailable()
        ? spawn('taskset', ['-c', options.cpus, binary], { stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    trackChild(child);
    const flows = new NativeFlows(child, handed.release);
    try {
      await flows.command(`gso ${options.gso ? 1 : 0}`);
      for (const f of handed.flows) await flows.command(`flow ${f.clientPort} ${f.address} ${f.port} ${f.channel} ${f.peerPort}`);
      const started = await flows.command('start');
      flows.buffers = { sndbuf: Number(started.sndbuf), rcvbuf: Number(started.rcvbuf) };
    } catch (error) {
      await flows.close();
      throw error;
    }
    return flows;
  }

  private fail(why: string): void {
    this.gone ??= why;
    const error = new Error(`turnblast ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /** Sends one command line; resolves with its answer. */
  private command(line: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      if (this.gone) {
        reject(new Error(`turnblast ${this.gone}`));
        return;
      }
      this.waiters.push({ line, resolve, reject });
      this.child.stdin?.write(`${line}\n`);
    });
  }

  async send(payloadBytes: number, rate: number, durationMs: number): Promise<{ sent: number; achievedRate: number }> {
    const result = (answer: Answer) => ({ sent: Number(answer.sent), achievedRate: Number(answer.achievedRate) });
    if (durationMs > 0) return result(await this.command(`send ${payloadBytes} ${rate} ${durationMs}`));
    // Until stop(): turnblast streams in the background and answers `stop` with the totals.
    const stopped = new Promise<void>((resolve) => (this.endStream = resolve));
    const run = (async () => {
      await this.command(`stream ${payloadBytes} ${rate}`);
      await stopped;
      return result(await this.command('stop'));
    })();
    this.streaming = run.catch(() => undefined);
    return run;
  }

  async received(): Promise<number> {
    return Number((await this.command('received')).received);
  }

  stop(): void {
    this.endStream?.();
    this.endStream = undefined;
  }

  /** Ends a stream still running, quits turnblast (its sockets close), then releases the allocations from the freed ports. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    await this.streaming;
    if (!this.gone) {
      this.child.stdin?.end('quit\n');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    } else await this.exited;
    await this.release();
  }
}

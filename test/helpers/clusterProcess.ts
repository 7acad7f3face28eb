/**
 * Switchboard nodes as separate processes (`node --import tsx server/main.ts`), so a test can
 * kill one with SIGKILL for real: no close(), no lease released, no registry entry removed.
 *
 * Each node runs under a small sh watchdog that leads its own process group (spawned
 * detached), with the node as its child in that group. kill() sends SIGKILL to the whole
 * group (process.kill(-pgid)); stop() sends SIGTERM to the node (its graceful shutdown), then
 * SIGKILL to the group if it has not exited in time. The watchdog holds a pipe from this
 * process: when that pipe closes (this process exits or is killed by any signal) the watchdog
 * SIGKILLs the node, so no node outlives its test run. An exit hook also SIGKILLs every group
 * still running when this process exits normally.
 *
 * Ports are chosen free beforehand (PUBLIC_URL, a node's registered ws_url, must name its
 * port); a node that exits during start (the port was taken meanwhile) is retried on another.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const START_TIMEOUT_MS = 40_000;
const STOP_TIMEOUT_MS = 12_000;
const OUTPUT_KEPT_CHARS = 40_000;

/**
 * The watchdog: starts the node ("$@") without the pipe, prints its pid, and exits when the
 * node does. A subshell of it blocks reading fd 3, the pipe from this process: whatever ends
 * the read (EOF: this process is gone, or done with the node) makes it SIGKILL the node.
 * Both stay in the watchdog's process group, which kill() and stop() end with SIGKILL.
 */
const WATCHDOG = `
"$0" "$@" </dev/null 3<&- &
child=$!
echo "node-pid $child"
( read -r line <&3; kill -KILL "$child" 2>/dev/null ) &
wait "$child"
`;

/** Process groups started here and not seen exit, for the exit hook. */
const groups = new Set<number>();
process.once('exit', () => {
  for (const pgid of groups) killGroup(pgid);
});

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nothing listened on a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface NodeProcess {
  /** NODE_ID */
  readonly id: string;
  readonly port: number;
  /** http://127.0.0.1:<port>, also its PUBLIC_URL (the ws_url other nodes redirect to). */
  readonly url: string;
  /** The node's pid (the watchdog's is the group id). */
  readonly pid: number;
  /** Whether the node (its watchdog) has not exited. */
  readonly running: boolean;
  /** The last output (stdout and stderr) of the node, for failure messages. */
  output(): string;
  /** SIGKILL to the node's process group (a crash); resolves once it has exited. */
  kill(): Promise<void>;
  /** SIGTERM to the node (graceful shutdown); SIGKILL to its group if it has not exited within 12 s. Idempotent. */
  stop(): Promise<void>;
}

export interface NodeProcessOptions {
  /** NODE_ID */
  id: string;
  /** Settings, on top of the test defaults (NODE_ENV=test, HOST=127.0.0.1, METRICS_PORT=0, PORT, PUBLIC_URL). */
  env: Record<string, string>;
}

/** Starts one node and resolves once its /ready answers 200 (a node that exits during start is retried on another port). */
export async function startNodeProcess(options: NodeProcessOptions): Promise<NodeProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(options, port);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof StartExit)) throw error;
    }
  }
}

/** The node exited while starting (maybe its port was taken between choosing and binding it). */
class StartExit extends Error {}

async function launch(options: NodeProcessOptions, port: number): Promise<NodeProcess> {
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    // /metrics on the node's own PORT (its url), as testConfig does: nodes cannot share METRICS_PORT's default port.
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
    ...options.env,
    PORT: String(port),
    PUBLIC_URL: url,
    NODE_ID: options.id,
  };
  const node = [process.execPath, '--import', 'tsx', 'server/main.ts'];
  const watchdog: ChildProcess = spawn('/bin/sh', ['-c', WATCHDOG, ...node], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const pgid = watchdog.pid;
  if (pgid === undefined) throw new Error(`could not start node ${options.id}`);
  groups.add(pgid);
  const pipe = watchdog.stdio[3] as Socket;
  pipe.on('error', () => undefined); // EPIPE once the watchdog is gone
  let output = '';
  let nodePid: number | null = null;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_KEPT_CHARS);
    nodePid ??= Number(/^node-pid (\d+)$/m.exec(output)?.[1] ?? NaN) || null;
  };
  watchdog.stdout?.on('data', collect);
  watchdog.stderr?.on('data', collect);
  let exited = false;
  // The watchdog exits with the node's status (sh's wait: 128 + n when signal n ended the node); terminate() reads it.
  const status = new Promise<ExitStatus>((resolve) => watchdog.once('exit', (code, signal) => resolve({ code, signal })));
  const exit = new Promise<void>((resolve) =>
    watchdog.once('exit', () => {
      exited = true;
      groups.delete(pgid);
      // The node has exited (the watchdog waited for it) or the group was killed: end what is left of the group (the pipe's reader).
      killGroup(pgid);
      pipe.destroy();
      resolve();
    }),
  );

  const kill = async (): Promise<void> => {
    killGroup(pgid);
    await exit;
  };
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exited) return;
      if (nodePid !== null) {
        try {
          process.kill(nodePid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exit, new Promise((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)))]);
      clearTimeout(timer);
      await kill();
    })();
    return stopping;
  };

  const started = Date.now();
  for (;;) {
    if (exited) throw new StartExit(`node ${options.id} exited during start on port ${port}: ${output.slice(-3000)}`);
    if (Date.now() - started > START_TIMEOUT_MS) {
      await kill();
      throw new Error(`node ${options.id} was not ready within ${START_TIMEOUT_MS} ms on port ${port}: ${output.slice(-3000)}`);
    }
    if (nodePid !== null && (await ready(url))) break;
    await delay(100);
  }

  const handle: NodeProcess = {
    id: options.id,
    port,
    url,
    get pid() {
      return nodePid as number;
    },
    get running() {
      return !exited;
    },
    output: () => output,
    kill,
    stop,
  };
  exitStatuses.set(handle, status);
  return handle;
}

/** How a node's process ended: its exit code (128 + n when signal n ended the node), or the signal that ended its watchdog. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The exit status of each node started here, resolved when its watchdog exits. */
const exitStatuses = new WeakMap<NodeProcess, Promise<ExitStatus>>();

/**
 * SIGTERM to the node alone (what a process manager sends: its graceful shutdown), then waits up
 * to `timeoutMs` for it to exit. Resolves with its exit status and how long it took, or with
 * status null when it was still running at the timeout (it is left running: stop() or kill() it).
 */
export async function terminate(node: NodeProcess, timeoutMs: number): Promise<{ status: ExitStatus | null; ms: number }> {
  const status = exitStatuses.get(node);
  if (!status) throw new Error(`node ${node.id} was not started by startNodeProcess`);
  const sentAt = Date.now();
  if (node.running) process.kill(node.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  const result = await Promise.race([status, timeout]);
  clearTimeout(timer);
  return { status: result, ms: Date.now() - sentAt };
}

async function ready(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Starts the nodes one after the other; on a failure, stops those already started and rethrows. */
export async function startNodeProcesses(nodes: NodeProcessOptions[]): Promise<NodeProcess[]> {
  const started: NodeProcess[] = [];
  try {
    for (const options of nodes) started.push(await startNodeProcess(options));
    return started;
  } catch (error) {
    await Promise.all(started.map((node) => node.kill()));
    throw error;
  }
}

/**
 * A throw-away redis-server that a test can kill (SIGKILL) and start again, empty, on the same
 * port: what a Redis restart without persistence looks like to its clients. Like
 * test/helpers/redis.ts, nothing is persisted and each redis-server runs under a sh watchdog
 * holding a pipe from this process, so none outlives the test run, whatever ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_SERVER, redisUnavailable } from '../helpers/redis.js';

export interface RestartableRedis {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** SIGKILL to redis-server; resolves once the port no longer accepts connections. */
  kill(): Promise<void>;
  /** Starts a new, empty redis-server on the same port (after kill()); resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Stops whatever runs; idempotent. */
  stop(): Promise<void>;
}

/** The watchdog: runs redis-server ("$@"), prints its pid, and kills it when the pipe on fd 3 closes. */
const WATCHDOG = `
"$0" "$@" </dev/null 3<&- &
child=$!
echo "redis-pid $child"
read -r _ <&3
kill -KILL "$child" 2>/dev/null
wait "$child"
exit 0
`;

interface Incarnation {
  watchdog: ChildProcess;
  redisPid: Promise<number>;
  exited: Promise<void>;
  dir: string;
}

const incarnations = new Set<Incarnation>();
process.once('exit', () => {
  for (const incarnation of incarnations) incarnation.watchdog.kill('SIGKILL');
});

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
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

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

function launch(port: number): Incarnation {
  const dir = mkdtempSync(join(tmpdir(), 'sb-cluster-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'];
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, REDIS_SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let output = '';
  const redisPid = new Promise<number>((resolve) => {
    watchdog.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const pid = /^redis-pid (\d+)$/m.exec(output)?.[1];
      if (pid !== undefined) resolve(Number(pid));
    });
  });
  watchdog.stderr?.resume();
  const exited = new Promise<void>((resolve) => watchdog.once('exit', () => resolve()));
  const incarnation: Incarnation = { watchdog, redisPid, exited, dir };
  incarnations.add(incarnation);
  void exited.then(() => {
    incarnations.delete(incarnation);
    rmSync(dir, { recursive: true, force: true });
  });
  return incarnation;
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await delay(25);
  }
}

/** Ends an incarnation: SIGKILL to redis-server, then the pipe closes and the watchdog exits. */
async function end(incarnation: Incarnation, port: number): Promise<void> {
  const pid = await Promise.race([incarnation.redisPid, delay(2_000).then(() => null)]);
  if (pid !== null) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const pipe = incarnation.watchdog.stdio[3];
  if (pipe && 'destroy' in pipe) pipe.destroy();
  await Promise.race([incarnation.exited, delay(5_000).then(() => incarnation.watchdog.kill('SIGKILL'))]);
  await incarnation.exited;
  await waitFor(async () => !(await accepts(port)), `port ${port} is closed`);
}

export async function startRestartableRedis(): Promise<RestartableRedis> {
  const unavailable = redisUnavailable();
  if (unavailable) throw new Error(unavailable);
  const port = await freePort();
  let current: Incarnation | null = null;
  const start = async (): Promise<void> => {
    const incarnation = launch(port);
    current = incarnation;
    let exited = false;
    void incarnation.exited.then(() => (exited = true));
    await waitFor(async () => {
      if (exited) throw new Error(`redis-server did not start on port ${port}`);
      return accepts(port);
    }, `redis-server accepts connections on port ${port}`);
  };
  const stopCurrent = async (): Promise<void> => {
    const incarnation = current;
    current = null;
    if (incarnation) await end(incarnation, port);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: stopCurrent,
    restart: async () => {
      await stopCurrent();
      await start();
    },
    stop: stopCurrent,
  };
}

/**
 * A throw-away redis-server for tests: Debian's binary on a free 127.0.0.1 port, nothing
 * persisted (--save '' --appendonly no, working directory in a temporary folder).
 *
 * redis-server runs under a small sh watchdog that holds a pipe from this process: when the
 * pipe closes (stop(), or this process exiting or being killed by any signal) the watchdog
 * kills redis-server and waits for it, so no redis-server outlives its test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = '/usr/bin/redis-server';

/** Why Redis tests cannot run here, or null when they can. */
export function redisUnavailable(): string | null {
  return existsSync(REDIS_SERVER) ? null : `${REDIS_SERVER} is missing (Debian package redis-server; scripts/setup.sh installs it)`;
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** Whether redis-server is still running. */
  readonly running: boolean;
  /** Stops redis-server and waits until it has exited; idempotent. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** The processes of every server this process started and has not seen exit, for the exit hook. */
const running = new Map<ChildProcess, () => number | null>();
process.once('exit', () => {
  for (const [watchdog, redisPid] of running) killHard(watchdog, redisPid());
});

/** SIGKILL to redis-server and its watchdog. */
function killHard(watchdog: ChildProcess, redisPid: number | null): void {
  if (redisPid !== null) {
    try {
      process.kill(redisPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  watchdog.kill('SIGKILL');
}

/** A port nothing listened on a moment ago. */
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

/** Resolves once something accepts TCP connections on the port. */
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

/**
 * The watchdog: starts redis-server with its arguments ("$@") without the pipe, prints its pid,
 * then blocks reading fd 3, the pipe from this process; on EOF it stops redis-server (TERM:
 * with nothing to save it exits at once) and waits for it.
 */
const WATCHDOG = `
"$0" "$@" </dev/null 3<&- &
child=$!
echo "redis-pid $child"
read -r _ <&3
kill -TERM "$child" 2>/dev/null
wait "$child"
exit 0
`;

/**
 * Starts a redis-server; rejects (after cleaning up) when none accepts connections within 10 s.
 * A port taken between choosing and binding it makes redis-server exit, so that is retried.
 */
export async function startRedis(): Promise<RedisServer> {
  const unavailable = redisUnavailable();
  if (unavailable) throw new Error(unavailable);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort());
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startOnce(port: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, REDIS_SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let output = '';
  let redisPid: number | null = null;
  running.set(watchdog, () => redisPid);
  watchdog.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    const pid = /^redis-pid (\d+)$/m.exec(output)?.[1];
    if (pid !== undefined) redisPid ??= Number(pid);
  });
  watchdog.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    watchdog.once('exit', () => {
      exited = true;
      running.delete(watchdog);
      rmSync(dir, { recursive: true, force: true });
      resolve();
    }),
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const pipe = watchdog.stdio[3];
      if (pipe && 'destroy' in pipe) pipe.destroy();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          killHard(watchdog, redisPid);
          resolve();
        }, STOP_TIMEOUT_MS);
      });
      await Promise.race([exit, late]);
      clearTimeout(timer);
      await exit;
      // The watchdog is gone; wait until the port no longer answers (redis-server has exited).
      for (let i = 0; i < 50 && (await accepts(port)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    })();
    return stopping;
  };

  const started = Date.now();
  while (!(await accepts(port))) {
    if (exited || Date.now() - started > START_TIMEOUT_MS) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}: ${output.trim().slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return !exited;
    },
    stop,
  };
}

/**
 * A throw-away redis-server for tests: Debian's binary on a free 127.0.0.1 port, nothing
 * persisted (--save '' --appendonly no, working directory in a temporary folder). A test can
 * also kill it (SIGKILL) and start it again, empty, on the same port: what a Redis restart
 * without persistence looks like to its clients.
 *
 * Each redis-server runs under a small sh watchdog that holds a pipe from this process: when
 * the pipe closes (stop(), kill(), or this process exiting or being killed by any signal) the
 * watchdog kills redis-server and waits for it, so no redis-server outlives its test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './clusterProcess.js';

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
  /** SIGKILL to redis-server (a crash: no shutdown); resolves once the port no longer accepts connections. */
  kill(): Promise<void>;
  /**
   * Starts a new, empty redis-server on the same port, after killing the running one (as kill()
   * does) if there is one; resolves once it accepts connections.
   */
  restart(): Promise<void>;
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

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
 * then blocks reading fd 3, the pipe from this process. A line "KILL" (kill()) makes it
 * SIGKILL redis-server; EOF alone (stop(), or this process gone) makes it stop redis-server
 * with TERM (with nothing to save it exits at once). Either way it waits for it.
 */
const WATCHDOG = `
"$0" "$@" </dev/null 3<&- &
child=$!
echo "redis-pid $child"
signal=TERM
read -r line <&3 && [ "$line" = KILL ] && signal=KILL
kill -"$signal" "$child" 2>/dev/null
wait "$child"
exit 0
`;

/** One redis-server process, with its watchdog. */
interface Incarnation {
  /** Whether it has exited. */
  readonly exited: boolean;
  /** Ends it (SIGKILL when `hard`, else TERM) and waits until it has exited; the first call decides. */
  end(hard: boolean): Promise<void>;
}

/** For a suite's before() hook: starts a redis-server, or skips the suite (saying why) when there is none here. */
export async function startRedisOrSkip(context: Mocha.Context): Promise<RedisServer> {
  const unavailable = redisUnavailable();
  if (unavailable) {
    console.log(`      skipped: ${unavailable}`);
    context.skip();
  }
  return startRedis();
}

/**
 * Starts a redis-server; rejects (after cleaning up) when none accepts connections within 10 s.
 * A port taken between choosing and binding it makes redis-server exit, so that is retried.
 */
export async function startRedis(): Promise<RedisServer> {
  const unavailable = redisUnavailable();
  if (unavailable) throw new Error(unavailable);
  let port: number;
  let current: Incarnation;
  for (let attempt = 1; ; attempt++) {
    try {
      port = await freePort();
      current = await launch(port);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }

  const kill = async (): Promise<void> => {
    await current.end(true);
    if (await accepts(port)) throw new Error(`port ${port} still accepts connections after redis-server was killed`);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return !current.exited;
    },
    stop: () => current.end(false),
    kill,
    restart: async () => {
      await kill();
      current = await launch(port);
    },
  };
}

/** Whether the port stops accepting connections (its redis-server has exited) within `ms`. */
async function closesWithin(port: number, ms: number): Promise<boolean> {
  const started = Date.now();
  while (await accepts(port)) {
    if (Date.now() - started > ms) return false;
    await delay(50);
  }
  return true;
}

/** Starts redis-server on the port and waits until it accepts connections (rejects, after cleaning up, when it does not). */
async function launch(port: number): Promise<Incarnation> {
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
  const pipe = watchdog.stdio[3] as Socket;
  pipe.on('error', () => undefined); // EPIPE once the watchdog is gone: nothing left to tell it
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

  let ending: Promise<void> | null = null;
  const end = (hard: boolean): Promise<void> => {
    ending ??= (async () => {
      if (hard && !exited) pipe.end('KILL\n');
      else pipe.destroy();
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
      await closesWithin(port, STOP_TIMEOUT_MS);
    })();
    return ending;
  };

  const started = Date.now();
  while (!(await accepts(port))) {
    if (exited || Date.now() - started > START_TIMEOUT_MS) {
      await end(false);
      throw new Error(`redis-server did not start on port ${port}: ${output.trim().slice(-2000)}`);
    }
    await delay(50);
  }

  return {
    get exited() {
      return exited;
    },
    end,
  };
}

/**
 * 7. Cluster (issue 17): two Switchboard nodes on one redis-server against one node without
 * Redis (REDIS_URL unset), in the same run.
 *
 * Set-up: the benchmark starts a redis-server (Debian's /usr/bin/redis-server, nothing
 * persisted) on a free 127.0.0.1 port under a small sh watchdog that stops it when this
 * process lets go of it (at the end, on failure, or when this process dies), then two
 * Switchboard processes (bench/servers/main.ts) with their own NODE_ID and port and that
 * REDIS_URL (the cluster and the Redis store, the default with REDIS_URL), and one process
 * without REDIS_URL. Every server process and redis-server are pinned to core 0 where
 * pinning is on; the load generator (this process) runs on core 1.
 *
 * - Relay: per round and case, the relay benchmark's measurement (bench/relay.ts
 *   measureRelay: fresh clients join a room, an open latency loop, then a closed loop of
 *   signals in flight) runs in `roomsPerNode` rooms per node at once: in the cluster each room
 *   is claimed by the node its clients connect to, so both nodes serve rooms; the single node
 *   holds all of them. Relayed messages per CPU-second of every process of the set-up (the
 *   nodes, and redis-server for the cluster), one node against two; a third set-up, two
 *   independent nodes without Redis, separates the cost of splitting the load over two
 *   processes from what the cluster adds. The order of the set-ups rotates by round. Redis' own CPU (from /proc/<pid>/stat) and its command count (INFO stats) per
 *   relayed message are printed.
 * - Cross-node join: per round, newcomers arrive at a fixed rate (open loop), each into its
 *   own room whose host joined first on the room's owner (rooms alternate between the two
 *   nodes). A direct newcomer connects to the owner; a redirected one connects to the other
 *   node, gets connect_error `wrong_node` with `err.data.ws_url`, connects there (one
 *   redirect, as the SDK does), joins and signals the host. Times from the first connect to
 *   the redirect, the connect, the join ack and the host receiving the signal; p50/p99 of
 *   direct against redirected, order alternating by round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { io as ioClient, type Socket } from 'socket.io-client';
import { RedisKeys } from '../server/store/redisKeys.js';
import { freePort } from '../test/helpers/clusterProcess.js';
import { BENCH_TENANT, BenchTokens } from './lib/benchConfig.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { machineFacts, procCpuSeconds, SERVER_CPUS, tasksetAvailable, trackChild } from './lib/processes.js';
import { markdownTable, verdict, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { ask, closeClients, connectAndJoin, PayloadFactory, sequenceOf, sleep, type JoinedClient } from './lib/signaling.js';
import { fmt, fmtSummary, percentiles, ratioSummary, summarize, type Percentiles } from './lib/stats.js';
import { measureRelay, type RelayMeasurement, type RelayOptions } from './relay.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

/** Why the cluster benchmark cannot run here, or null when it can. */
export function redisUnavailableReason(): string | null {
  return existsSync(REDIS_SERVER) ? null : `${REDIS_SERVER} is missing (Debian package redis-server)`;
}

export interface ClusterBenchOptions {
  /** Room sizes of the relay cases. */
  sizes: number[];
  /** Signal payload (bytes of JSON). */
  payload: number;
  /** Rooms each cluster node serves at once in the relay part (the single node holds twice as many). */
  roomsPerNode: number;
  warmupMs: number;
  throughputMs: number;
  /** Signals in flight per room in the closed loop. */
  inFlight: number;
  /** Signals per second per room in the latency loop. */
  latencyRate: number;
  latencyMs: number;
  /** Newcomers per second in the join part. */
  joinRate: number;
  joinMs: number;
  /** Newcomers at the start of each join batch that warm up and are not counted. */
  joinWarmup: number;
}

export function clusterOptions(smoke: boolean): ClusterBenchOptions {
  if (smoke)
    return {
      sizes: [2],
      payload: 300,
      roomsPerNode: 1,
      warmupMs: 50,
      throughputMs: 300,
      inFlight: 16,
      latencyRate: 100,
      latencyMs: 200,
      joinRate: 25,
      joinMs: 400,
      joinWarmup: 2,
    };
  return {
    sizes: envList('BENCH_CLUSTER_ROOMS', [2, 6]),
    payload: envNumber('BENCH_CLUSTER_PAYLOAD', 300),
    roomsPerNode: envNumber('BENCH_CLUSTER_ROOMS_PER_NODE', 1),
    warmupMs: envNumber('BENCH_CLUSTER_WARMUP_MS', 700),
    throughputMs: envNumber('BENCH_CLUSTER_MS', 3000),
    inFlight: envNumber('BENCH_CLUSTER_IN_FLIGHT', 48),
    latencyRate: envNumber('BENCH_CLUSTER_RATE', 1000),
    latencyMs: envNumber('BENCH_CLUSTER_LATENCY_MS', 1500),
    joinRate: envNumber('BENCH_CLUSTER_JOIN_RATE', 50),
    joinMs: envNumber('BENCH_CLUSTER_JOIN_MS', 5000),
    joinWarmup: envNumber('BENCH_CLUSTER_JOIN_WARMUP', 10),
  };
}

// ---------------------------------------------------------------------------------------------
// redis-server

/**
 * The watchdog: starts redis-server with the arguments ("$@") with its stdin closed, prints its
 * pid, then reads its own stdin (a pipe from this process) until EOF: stop(), or this process
 * gone for any reason. Then it stops redis-server (TERM: with nothing to save it exits at once)
 * and waits for it.
 */
const WATCHDOG = `
"$0" "$@" </dev/null &
child=$!
echo "redis-pid $child"
cat >/dev/null
kill -TERM "$child" 2>/dev/null
wait "$child"
exit 0
`;

export interface BenchRedis {
  url: string;
  port: number;
  /** redis-server's own process id (its CPU is read from /proc/<pid>/stat). */
  pid: number;
  /** A command connection of the benchmark's (INFO, setup). */
  control: Redis;
  /** Commands redis-server has processed since it started (INFO stats). */
  commandsProcessed(): Promise<number>;
  /** Stops redis-server and waits until it and its watchdog have exited; idempotent. */
  stop(): Promise<void>;
}

/** Starts redis-server on a free port (retried: the port may be taken between choosing and binding it). */
export async function startBenchRedis(cpus: string | null): Promise<BenchRedis> {
  const unavailable = redisUnavailableReason();
  if (unavailable) throw new Error(unavailable);
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchRedis(await freePort(), cpus);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function launchRedis(port: number, cpus: string | null): Promise<BenchRedis> {
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
    '/tmp',
    '--loglevel',
    'warning',
  ];
  const shell = ['/bin/sh', '-c', WATCHDOG, REDIS_SERVER, ...args];
  const watchdog: ChildProcess =
    cpus && tasksetAvailable()
      ? spawn('taskset', ['-c', cpus, ...shell], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(shell[0] as string, shell.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(watchdog);
  watchdog.stdin?.on('error', () => undefined); // EPIPE once the watchdog is gone
  let output = '';
  let pid: number | null = null;
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
    pid ??= Number(/^redis-pid (\d+)$/m.exec(output)?.[1] ?? Number.NaN) || null;
  };
  watchdog.stdout?.on('data', collect);
  watchdog.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (watchdog.exitCode !== null || watchdog.signalCode !== null) resolve();
    else watchdog.once('exit', () => resolve());
  });
  let gone = false;
  void exited.then(() => (gone = true));

  let control: Redis | null = null;
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      control?.disconnect();
      watchdog.stdin?.end();
      const timer = setTimeout(() => {
        if (pid !== null) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        watchdog.kill('SIGKILL');
      }, 5_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  const url = `redis://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (gone || Date.now() - started > 10_000) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}: ${output.trim().slice(-1000)}`);
    }
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      control = probe;
      break;
    } catch {
      probe.disconnect();
      await sleep(50);
    }
  }
  const info = await control.info('server');
  const serverPid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  if (!Number.isFinite(serverPid) || (pid !== null && pid !== serverPid)) {
    await stop();
    throw new Error(`redis-server on port ${port} is not the one started here (process_id ${serverPid}, watchdog child ${pid})`);
  }
  const commands = control;
  return {
    url,
    port,
    pid: serverPid,
    control: commands,
    commandsProcessed: async () => Number(/^total_commands_processed:(\d+)/m.exec(await commands.info('stats'))?.[1]),
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// The two set-ups

/** one: one node without Redis; two: the cluster; split: two nodes without Redis, each with its own rooms (a diagnostic). */
export type SetupName = 'one' | 'two' | 'split';

interface Setup {
  name: SetupName;
  /** The node each room of the relay part lives on (the single node: all of them). */
  roomNodes: ServerProcess[];
  /** Every process whose CPU counts, with a label. */
  processes: Array<{ label: string; cpuS: () => Promise<number> }>;
  redis: BenchRedis | null;
}

/** CPU of every process of a set-up (and Redis' command count) at one moment. */
interface Snapshot {
  cpuS: number[];
  redisCommands: number | null;
}

async function snapshot(setup: Setup): Promise<Snapshot> {
  const [cpuS, redisCommands] = await Promise.all([
    Promise.all(setup.processes.map((p) => p.cpuS())),
    setup.redis ? setup.redis.commandsProcessed() : Promise.resolve(null),
  ]);
  return { cpuS, redisCommands };
}

/**
 * `server` as measureRelay sees it, except that usage() reports the CPU of every process of
 * the set-up (so its msg/CPU-s counts them all) and records the snapshot it took: measureRelay
 * asks usage() at the start and at the end of its throughput window, so `samples` holds those two.
 */
function setupView(server: ServerProcess, setup: Setup, samples: Snapshot[]): ServerProcess {
  return new Proxy(server, {
    get(target, prop) {
      if (prop === 'usage')
        return async () => {
          const s = await snapshot(setup);
          samples.push(s);
          return { cpuS: s.cpuS.reduce((a, b) => a + b, 0), rss: 0, heapUsed: 0 };
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** What one set-up did in one relay case of one round (all its rooms at once). */
export interface SetupRelayMeasurement {
  /** Relayed messages per wall second, every room. */
  perS: number;
  /** CPU use of each process during the window (1 = one core), in the order of `processLabels`. */
  processUtil: number[];
  processLabels: string[];
  /** Relayed messages per CPU-second of every process of the set-up. */
  perCpuS: number;
  /** redis-server CPU microseconds per relayed message (cluster only). */
  redisUsPerMsg: number | null;
  /** Redis commands processed per 1,000 relayed messages (cluster only; background commands included). */
  redisCommandsPer1k: number | null;
  /** Median of the rooms' latency p50, and the worst room's p99 (open loop). */
  p50: number;
  p99: number;
  lost: number;
  errors: number;
  /** Each room's own measurement (its cpuS/perCpuS count the whole set-up's CPU). */
  rooms: RelayMeasurement[];
}

async function measureSetupRelay(
  setup: Setup,
  size: number,
  options: ClusterBenchOptions,
  tokens: BenchTokens,
): Promise<SetupRelayMeasurement> {
  const relayOptions: RelayOptions = {
    roomSizes: [size],
    payloads: [options.payload],
    warmupMs: options.warmupMs,
    throughputMs: options.throughputMs,
    inFlight: options.inFlight,
    latencyRate: options.latencyRate,
    latencyMs: options.latencyMs,
    profileMs: 0,
  };
  const samples = setup.roomNodes.map((): Snapshot[] => []);
  const rooms = await Promise.all(
    setup.roomNodes.map((node, i) =>
      measureRelay(setupView(node, setup, samples[i] as Snapshot[]), 'switchboard', size, options.payload, relayOptions, tokens),
    ),
  );
  const labels = setup.processes.map((p) => p.label);
  const util = labels.map(() => 0);
  let redisCommandsPerS = 0;
  rooms.forEach((m, i) => {
    const [s0, s1] = samples[i] as Snapshot[];
    if (!s0 || !s1 || (samples[i] as Snapshot[]).length !== 2)
      throw new Error(`measureRelay asked usage() ${(samples[i] as Snapshot[]).length} times, not twice (window start and end)`);
    labels.forEach((_, k) => (util[k] = (util[k] as number) + ((s1.cpuS[k] as number) - (s0.cpuS[k] as number)) / m.wallS / rooms.length));
    if (s0.redisCommands !== null && s1.redisCommands !== null)
      redisCommandsPerS += (s1.redisCommands - s0.redisCommands) / m.wallS / rooms.length;
  });
  const perS = rooms.reduce((sum, m) => sum + m.delivered / m.wallS, 0);
  const totalUtil = util.reduce((a, b) => a + b, 0);
  const redisIndex = labels.indexOf('redis-server');
  return {
    perS,
    processUtil: util,
    processLabels: labels,
    perCpuS: totalUtil > 0 ? perS / totalUtil : Number.NaN,
    redisUsPerMsg: redisIndex >= 0 ? ((util[redisIndex] as number) / perS) * 1e6 : null,
    redisCommandsPer1k: setup.redis ? (redisCommandsPerS / perS) * 1000 : null,
    p50: summarize(rooms.map((m) => m.latency.p50)).median,
    p99: Math.max(...rooms.map((m) => m.latency.p99)),
    lost: rooms.reduce((sum, m) => sum + m.lost, 0),
    errors: rooms.reduce((sum, m) => sum + m.errors, 0),
    rooms,
  };
}

// ---------------------------------------------------------------------------------------------
// Cross-node join

/** One newcomer connecting: to `url`, following one wrong_node redirect as the SDK does. */
async function connectFollowing(url: string, token: string): Promise<{ socket: Socket; redirectMs: number | null; connectMs: number }> {
  const start = performance.now();
  let redirectMs: number | null = null;
  const attempt = (target: string): Promise<Socket> => {
    const socket = ioClient(target, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20_000, auth: { token } });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('connect_error');
        resolve(socket);
      });
      socket.once('connect_error', (error: Error & { data?: { ws_url?: string } }) => {
        socket.close();
        reject(error);
      });
    });
  };
  try {
    const socket = await attempt(url);
    return { socket, redirectMs, connectMs: performance.now() - start };
  } catch (error) {
    const wsUrl = (error as { data?: { ws_url?: unknown } }).data?.ws_url;
    if ((error as Error).message !== 'wrong_node' || typeof wsUrl !== 'string')
      throw new Error(`connect failed: ${(error as Error).message}`);
    redirectMs = performance.now() - start;
    try {
      const socket = await attempt(wsUrl);
      return { socket, redirectMs, connectMs: performance.now() - start };
    } catch (second) {
      throw new Error(`connect after the redirect to ${wsUrl} failed: ${(second as Error).message}`);
    }
  }
}

export type JoinEntry = 'direct' | 'redirected';

export interface CrossJoinMeasurement {
  entry: JoinEntry;
  joins: number;
  /** Newcomers (warm-up included) that were redirected: all of them when redirected, none when direct. */
  redirects: number;
  total: number;
  /** Cumulative from the start of the first connect. */
  redirect: Percentiles | null;
  connect: Percentiles;
  joinAck: Percentiles;
  firstSignal: Percentiles;
  /** CPU milliseconds per newcomer: both nodes and redis-server, and redis-server alone. */
  cpuMsPerJoin: number;
  redisCpuMsPerJoin: number;
  ratePerS: number;
}

let joinRun = 0;

async function measureCrossJoin(
  entry: JoinEntry,
  nodes: [ServerProcess, ServerProcess],
  redis: BenchRedis,
  options: ClusterBenchOptions,
  tokens: BenchTokens,
): Promise<CrossJoinMeasurement> {
  const run = `${process.pid}-${++joinRun}`;
  const total = Math.max(1, Math.round((options.joinRate * options.joinMs) / 1000)) + options.joinWarmup;
  const rooms = Array.from({ length: total }, (_, i) => `cluster-join-${run}-${i}`);
  const owner = (i: number): ServerProcess => nodes[i % 2] as ServerProcess;
  const other = (i: number): ServerProcess => nodes[(i + 1) % 2] as ServerProcess;
  const hosts: JoinedClient[] = [];
  const newcomers: Socket[] = [];
  const arrived = new Map<number, number>();
  try {
    // Hosts first (not timed), on each room's owner: their connection claims the room there.
    let next = 0;
    const hostWorker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        const host = await connectAndJoin({ protocol: 'switchboard', url: owner(i).url }, rooms[i] as string, tokens);
        host.socket.on('signal', (message: Parameters<typeof sequenceOf>[0]) => arrived.set(sequenceOf(message), performance.now()));
        hosts[i] = host;
      }
    };
    await Promise.all(Array.from({ length: Math.min(20, total) }, hostWorker));
    const minted = rooms.map((room) => tokens.mint(room));
    const payloads = new PayloadFactory(300, (hosts[0] as JoinedClient).id);
    await Promise.all(nodes.map((node) => node.gc()));

    const samples: Array<{ redirect: number | null; connect: number; joinAck: number; firstSignal: number }> = [];
    const failures: string[] = [];
    let redirects = 0;
    const cpu = (): [number, number] => {
      const redisCpu = procCpuSeconds(redis.pid);
      return [nodes.reduce((sum, node) => sum + node.procCpuSeconds(), redisCpu), redisCpu];
    };
    const [cpu0, redis0] = cpu();
    const start = performance.now();
    const arrivals: Array<Promise<void>> = [];
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / options.joinRate - performance.now();
      if (wait > 0) await sleep(wait);
      arrivals.push(
        (async () => {
          const t0 = performance.now();
          const target = entry === 'direct' ? owner(i) : other(i);
          const { socket, redirectMs, connectMs } = await connectFollowing(target.url, minted[i] as string);
          newcomers.push(socket);
          if (redirectMs !== null) redirects += 1;
          const ack = await ask<{ ok: boolean; peers?: Array<{ id: string }>; error?: { code: string } }>(socket, 'join', {});
          const joinAck = performance.now() - t0;
          const hostId = ack.peers?.[0]?.id;
          if (!ack.ok || !hostId) throw new Error(`join refused or no peer listed: ${ack.error?.code ?? 'no host'}`);
          socket.emit('signal', payloads.make(hostId, i), () => undefined);
          const deadline = performance.now() + 20_000;
          while (!arrived.has(i) && performance.now() < deadline) await sleep(1);
          const at = arrived.get(i);
          if (at === undefined) throw new Error('first signal never arrived');
          if (i >= options.joinWarmup) samples.push({ redirect: redirectMs, connect: connectMs, joinAck, firstSignal: at - t0 });
        })().catch((error: Error) => {
          failures.push(error.message);
        }),
      );
    }
    const lastArrival = performance.now();
    await Promise.all(arrivals);
    const [cpu1, redis1] = cpu();
    if (failures.length) throw new Error(`${failures.length} ${entry} newcomer(s) failed: ${failures[0]}`);
    const expected = entry === 'direct' ? 0 : total;
    if (redirects !== expected) throw new Error(`${redirects} of ${total} ${entry} newcomers were redirected, expected ${expected}`);
    const redirected = samples.map((s) => s.redirect).filter((r): r is number => r !== null);
    return {
      entry,
      joins: samples.length,
      redirects,
      total,
      redirect: redirected.length ? percentiles(redirected) : null,
      connect: percentiles(samples.map((s) => s.connect)),
      joinAck: percentiles(samples.map((s) => s.joinAck)),
      firstSignal: percentiles(samples.map((s) => s.firstSignal)),
      cpuMsPerJoin: ((cpu1 - cpu0) * 1000) / total,
      redisCpuMsPerJoin: ((redis1 - redis0) * 1000) / total,
      ratePerS: total > 1 ? ((total - 1) * 1000) / (lastArrival - start) : Number.NaN,
    };
  } finally {
    await closeClients([...hosts.filter(Boolean).map((h) => h.socket), ...newcomers], 300);
  }
}

// ---------------------------------------------------------------------------------------------
// The run

export interface ClusterRelayCase {
  size: number;
  one: SetupRelayMeasurement[];
  two: SetupRelayMeasurement[];
  /** Two independent nodes without Redis: what splitting the load over two processes costs by itself. */
  split: SetupRelayMeasurement[];
}

export interface ClusterData {
  options: ClusterBenchOptions;
  relay: ClusterRelayCase[];
  join: { direct: CrossJoinMeasurement[]; redirected: CrossJoinMeasurement[] };
  redisVersion: string;
  rounds?: number;
}

/** Starts a cluster node: its own NODE_ID, a port of its own (PORT=0), the shared REDIS_URL. */
function startNode(ctx: BenchContext, redis: BenchRedis, nodeId: string): Promise<ServerProcess> {
  return ctx.servers.fresh('switchboard', { REDIS_URL: redis.url, NODE_ID: nodeId });
}

export async function runCluster(ctx: BenchContext, options: ClusterBenchOptions = clusterOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  const cpus = ctx.pin ? SERVER_CPUS : null;
  const single = ctx.servers.get('switchboard');
  const second = ctx.servers.get('switchboard', { NODE_ID: `bench-c-${process.pid}` });
  const redis = await startBenchRedis(cpus);
  const nodes: ServerProcess[] = [];
  try {
    const redisVersion = /^redis_version:(\S+)/m.exec(await redis.control.info('server'))?.[1] ?? '?';
    const keys = new RedisKeys();
    nodes.push(await startNode(ctx, redis, `bench-a-${process.pid}`));
    nodes.push(await startNode(ctx, redis, `bench-b-${process.pid}`));
    if ((await redis.control.exists(keys.tenant(BENCH_TENANT))) !== 1) throw new Error('the bench tenant is not in the Redis store');
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    const [one, other] = await Promise.all([single, second]);
    const ipcCpu = (server: ServerProcess) => async () => (await server.usage()).cpuS;
    const setups: Record<SetupName, Setup> = {
      one: {
        name: 'one',
        roomNodes: Array.from({ length: 2 * options.roomsPerNode }, () => one),
        processes: [{ label: 'node', cpuS: ipcCpu(one) }],
        redis: null,
      },
      two: {
        name: 'two',
        roomNodes: Array.from({ length: 2 * options.roomsPerNode }, (_, i) => (i % 2 === 0 ? a : b)),
        processes: [
          { label: 'node A', cpuS: ipcCpu(a) },
          { label: 'node B', cpuS: ipcCpu(b) },
          { label: 'redis-server', cpuS: async () => procCpuSeconds(redis.pid) },
        ],
        redis,
      },
      split: {
        name: 'split',
        roomNodes: Array.from({ length: 2 * options.roomsPerNode }, (_, i) => (i % 2 === 0 ? one : other)),
        processes: [
          { label: 'node', cpuS: ipcCpu(one) },
          { label: 'node 2', cpuS: ipcCpu(other) },
        ],
        redis: null,
      },
    };
    const setupLabel: Record<SetupName, string> = { one: 'one node', two: 'two nodes', split: 'two nodes without Redis' };

    const relay: ClusterRelayCase[] = options.sizes.map((size) => ({ size, one: [], two: [], split: [] }));
    const join = { direct: [] as CrossJoinMeasurement[], redirected: [] as CrossJoinMeasurement[] };
    for (let round = 0; round < ctx.rounds; round++) {
      const names: SetupName[] = ['one', 'two', 'split'];
      const order = [...names.slice(round % 3), ...names.slice(0, round % 3)];
      for (const c of relay) {
        for (const which of order) {
          const m = await measureSetupRelay(setups[which], c.size, options, tokens);
          c[which].push(m);
          const util = m.processLabels.map((label, k) => `${label} ${fmt((m.processUtil[k] as number) * 100)}%`).join(', ');
          ctx.log(
            `cluster relay round ${round + 1}/${ctx.rounds} room ${c.size} ${setupLabel[which]}: ${fmt(m.perCpuS)} msg/CPU-s, ${fmt(m.perS)} msg/s (${util})${m.redisUsPerMsg === null ? '' : `, Redis ${fmt(m.redisUsPerMsg)} µs and ${fmt(m.redisCommandsPer1k ?? Number.NaN)} commands per 1k msg`}, p50 ${fmt(m.p50)} p99 ${fmt(m.p99)} ms, lost ${m.lost}, errors ${m.errors}`,
          );
        }
      }
      const entries = round % 2 === 0 ? (['direct', 'redirected'] as const) : (['redirected', 'direct'] as const);
      for (const entry of entries) {
        const m = await measureCrossJoin(entry, [a, b], redis, options, tokens);
        join[entry].push(m);
        ctx.log(
          `cluster join round ${round + 1}/${ctx.rounds} ${entry}: ${m.joins} joins at ${fmt(m.ratePerS)}/s; ${m.redirect ? `redirect p50 ${fmt(m.redirect.p50)} p99 ${fmt(m.redirect.p99)} ms; ` : ''}connect p50 ${fmt(m.connect.p50)} p99 ${fmt(m.connect.p99)} ms; join ack p50 ${fmt(m.joinAck.p50)} p99 ${fmt(m.joinAck.p99)} ms; first signal p50 ${fmt(m.firstSignal.p50)} p99 ${fmt(m.firstSignal.p99)} ms; ${fmt(m.cpuMsPerJoin)} CPU-ms/join (Redis ${fmt(m.redisCpuMsPerJoin)})`,
        );
      }
    }
    return renderCluster(
      { options, relay, join, redisVersion, rounds: ctx.rounds },
      { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin },
    );
  } finally {
    // Nodes first (they release their leases and leave the registry), then redis-server.
    await Promise.all(nodes.map((node) => ctx.servers.release(node)));
    await redis.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** The section, from the figures (also used to rebuild RESULTS.md from results/cluster.json). */
export function renderCluster(data: ClusterData, meta: RenderMeta): Section {
  const { options, relay, join } = data;
  const rounds = data.rounds ?? relay[0]?.one.length ?? meta.rounds;
  const headline: HeadlineRow[] = [];
  const missed: string[] = [];
  const payloadLabel = options.payload >= 1000 ? `${options.payload / 1000} KB` : `${options.payload} B`;

  const relayRows = relay.map((c) => {
    const pick = (list: SetupRelayMeasurement[], f: (m: SetupRelayMeasurement) => number): number[] => list.map(f);
    const oneCpu = summarize(pick(c.one, (m) => m.perCpuS));
    const twoCpu = summarize(pick(c.two, (m) => m.perCpuS));
    const ratio = ratioSummary(
      pick(c.two, (m) => m.perCpuS),
      pick(c.one, (m) => m.perCpuS),
    );
    const p99Ratio = ratioSummary(
      pick(c.two, (m) => m.p99),
      pick(c.one, (m) => m.p99),
    );
    const split = c.split ?? [];
    const splitCpu = summarize(pick(split, (m) => m.perCpuS));
    const splitRatio = ratioSummary(
      pick(split, (m) => m.perCpuS),
      pick(c.one, (m) => m.perCpuS),
    );
    const clusterVsSplit = ratioSummary(
      pick(c.two, (m) => m.perCpuS),
      pick(split, (m) => m.perCpuS),
    );
    const redisUs = summarize(pick(c.two, (m) => m.redisUsPerMsg ?? Number.NaN));
    const redisCmds = summarize(pick(c.two, (m) => m.redisCommandsPer1k ?? Number.NaN));
    const label = `room ${c.size}, ${payloadLabel}`;
    const v = verdict(ratio.median, 0.9, 'atLeast');
    if (v === 'missed') missed.push(`relay msg/CPU-s in ${label} (${fmt(ratio.median, 2)}x)`);
    headline.push({
      metric: `relay msg/CPU-s, ${label} (one node vs two)`,
      baseline: fmt(oneCpu.median),
      switchboard: fmt(twoCpu.median),
      ratio: fmtSummary(ratio, 2),
      target: '>= 0.9',
      verdict: v,
    });
    headline.push({
      metric: `Redis CPU µs per relayed message, ${label}`,
      baseline: '',
      switchboard: fmt(redisUs.median),
      ratio: '',
      target: '',
      verdict: '',
    });
    const utilOf = (list: SetupRelayMeasurement[]): string => {
      const labels = list[0]?.processLabels ?? [];
      return labels.map((_, k) => fmt(summarize(list.map((m) => (m.processUtil[k] ?? Number.NaN) * 100)).median)).join(' / ');
    };
    return [
      label,
      fmtSummary(oneCpu),
      fmtSummary(twoCpu),
      `**${fmtSummary(ratio, 2)}** ${v}`,
      fmtSummary(splitCpu),
      `${fmtSummary(splitRatio, 2)} / ${fmtSummary(clusterVsSplit, 2)}`,
      `${fmt(summarize(pick(c.one, (m) => m.perS)).median)} / ${fmt(summarize(pick(c.two, (m) => m.perS)).median)} / ${fmt(summarize(pick(split, (m) => m.perS)).median)}`,
      `${utilOf(c.one)} / ${utilOf(c.two)} / ${utilOf(split)}`,
      fmtSummary(redisUs),
      fmtSummary(redisCmds),
      `${fmt(summarize(pick(c.one, (m) => m.p50)).median)} / ${fmt(summarize(pick(c.two, (m) => m.p50)).median)}`,
      `${fmtSummary(summarize(pick(c.one, (m) => m.p99)))} / ${fmtSummary(summarize(pick(c.two, (m) => m.p99)))}`,
      fmtSummary(p99Ratio, 2),
      String([...c.one, ...c.two, ...split].reduce((sum, m) => sum + m.lost + m.errors, 0)),
    ];
  });

  const joinRows: string[][] = [];
  const stages = [
    ['wrong_node received (redirected only)', (m: CrossJoinMeasurement) => m.redirect],
    ['connect (handshake + auth on the owner)', (m: CrossJoinMeasurement) => m.connect],
    ['join ack', (m: CrossJoinMeasurement) => m.joinAck],
    ['first signal at the host', (m: CrossJoinMeasurement) => m.firstSignal],
  ] as const;
  for (const [stage, pick] of stages) {
    for (const q of ['p50', 'p99'] as const) {
      const value = (m: CrossJoinMeasurement): number => pick(m)?.[q] ?? Number.NaN;
      const direct = summarize(join.direct.map(value));
      const redirected = summarize(join.redirected.map(value));
      const r = ratioSummary(join.redirected.map(value), join.direct.map(value));
      joinRows.push([stage, q, fmtSummary(direct), fmtSummary(redirected), fmtSummary(r, 2)]);
      if (stage === 'first signal at the host') {
        const target = q === 'p99' ? '<= 2' : '';
        const v = q === 'p99' ? verdict(r.median, 2, 'atMost') : '';
        if (v === 'missed') missed.push(`cross-node join p99 (${fmt(r.median, 2)}x)`);
        headline.push({
          metric: `cross-node join -> first signal ${q} ms at ${options.joinRate}/s (direct vs redirected)`,
          baseline: fmt(direct.median),
          switchboard: fmt(redirected.median),
          ratio: fmtSummary(r, 2),
          target,
          verdict: v,
        });
      }
    }
  }
  const cpuRow = (label: string, f: (m: CrossJoinMeasurement) => number): string[] => [
    label,
    '',
    fmtSummary(summarize(join.direct.map(f))),
    fmtSummary(summarize(join.redirected.map(f))),
    fmtSummary(ratioSummary(join.redirected.map(f), join.direct.map(f)), 2),
  ];
  joinRows.push(cpuRow('CPU per newcomer, both nodes + redis-server (ms)', (m) => m.cpuMsPerJoin));
  joinRows.push(cpuRow('CPU per newcomer, redis-server alone (ms)', (m) => m.redisCpuMsPerJoin));

  const lines: string[] = [];
  lines.push(
    `Two Switchboard nodes (each its own process, NODE_ID and port; \`REDIS_URL\` set: the cluster, and the Redis store it selects) on one redis-server ${data.redisVersion} started by the benchmark (\`--save '' --appendonly no\`), against one node with \`REDIS_URL\` unset (the in-memory store), in the same run; every server process and redis-server on the server core where pinned. ${rounds} rounds; figures are the median with the range (min–max) across rounds; a ratio is the ratio of the two medians, with the range of the per-round ratios.`,
  );
  lines.push('');
  lines.push('### Relay: messages per CPU-second of every server process');
  lines.push('');
  lines.push(
    `Each case, each round: the relay benchmark's measurement (section 1: fresh clients join, an open loop of ${options.latencyRate} signals/s per room for ${options.latencyMs / 1000} s for latency, then a closed loop of ${options.inFlight} signals in flight per room for ${options.throughputMs / 1000} s after a ${options.warmupMs} ms warm-up, every signal acked) runs in ${2 * options.roomsPerNode} rooms at once: in the cluster ${options.roomsPerNode} room(s) per node, each claimed by the node its clients connect to (all members of a room are on its owner, so the relay emits locally); the single node holds them all. A third set-up, two nodes without Redis (independent single nodes, each with its own rooms), tells what splitting the same load over two processes on the same core costs by itself, apart from anything the cluster adds. msg/CPU-s divides the relayed messages by the CPU time of every process of the set-up over the window (one node: its process; two nodes: both processes and redis-server). The order of the three set-ups rotates by round.`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      [
        'case',
        'one node msg/CPU-s',
        'two nodes msg/CPU-s',
        'ratio (target >= 0.9)',
        'two nodes without Redis msg/CPU-s',
        'ratio without Redis / one node; two nodes / without Redis',
        'msg/s wall one / two / without Redis',
        'CPU % one: node / two: node A / node B / redis / without Redis: node / node 2',
        'Redis CPU µs per msg',
        'Redis commands per 1k msg',
        'p50 ms one / two',
        'p99 ms one / two (worst room)',
        'p99 ratio',
        'lost + refused',
      ],
      relayRows,
    ),
  );
  lines.push('');
  lines.push(
    "Redis CPU is redis-server's user+system time from /proc/<pid>/stat (10 ms ticks) over the window; its commands are `INFO stats` total_commands_processed over the window, which include the background traffic (heartbeats, lease renewals, session heartbeats) and the benchmark's own INFO reads.",
  );
  lines.push('');
  lines.push('### Cross-node join: connect -> wrong_node -> connect to the owner -> join ack -> first signal');
  lines.push('');
  lines.push(
    `Newcomers arrive at ${options.joinRate}/s for ${options.joinMs / 1000} s (open loop; the first ${options.joinWarmup} of each batch are warm-up), each into its own room where a host already joined on the room's owner (rooms alternate between the two nodes). Direct: the newcomer connects to the owner. Redirected: it connects to the other node, which refuses the handshake with connect_error \`wrong_node\` and \`err.data.ws_url\`; it connects there (one redirect, as the SDK does; every redirected newcomer is checked to have been redirected once, every direct one never), joins (the ack lists the host) and signals the host a 300 B ICE candidate. Times are cumulative from the start of the first connect. Both batches run on the same two nodes, order alternating by round.`,
  );
  lines.push('');
  lines.push(markdownTable(['stage (cumulative)', 'percentile', 'direct ms', 'redirected ms', 'ratio'], joinRows));
  lines.push('');
  if (missed.length) lines.push(`**Targets missed:** ${missed.join('; ')}.`);
  else lines.push('**All cluster targets met.**');

  return {
    name: 'cluster',
    title: '7. Cluster (two nodes on Redis)',
    machine: meta.machine,
    wallS: meta.wallS,
    headline,
    markdown: lines.join('\n'),
    plots: [],
    data: { ...data, rounds },
  };
}

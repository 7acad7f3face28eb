/**
 * 3. Join latency under a steady arrival rate: connect -> join ack -> first relayed signal.
 * Per round and server (order alternating), one host per room is connected and joined
 * first (not timed); then newcomers arrive at a fixed rate (open loop, 50/s by default),
 * one per room: each connects (handshake, auth), joins (the ack lists the host), and sends
 * its first signal to the host; the time until the host receives it ends the measurement.
 * Cumulative times from the start of the connect, p50 and p99.
 */
import { BenchTokens } from './lib/benchConfig.js';
import type { BenchContext } from './lib/context.js';
import { envNumber } from './lib/env.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { closeClients, connectAndJoin, PayloadFactory, sequenceOf, sleep, type JoinedClient, type Protocol } from './lib/signaling.js';
import { fmt, fmtSummary, percentiles, ratioSummary, summarize, type Percentiles } from './lib/stats.js';
import type { Socket } from 'socket.io-client';

export interface JoinOptions {
  /** Newcomers per second. */
  rate: number;
  durationMs: number;
  /** Newcomers at the start that warm up and are not counted. */
  warmupJoins: number;
  /** Hosts connecting at once while the rooms are prepared. */
  hostConcurrency: number;
}

export function joinOptions(smoke: boolean): JoinOptions {
  if (smoke) return { rate: 25, durationMs: 400, warmupJoins: 2, hostConcurrency: 10 };
  return {
    rate: envNumber('BENCH_JOIN_RATE', 50),
    durationMs: envNumber('BENCH_JOIN_MS', 5000),
    warmupJoins: envNumber('BENCH_JOIN_WARMUP', 10),
    hostConcurrency: 20,
  };
}

export interface JoinMeasurement {
  joins: number;
  connect: Percentiles;
  joinAck: Percentiles;
  firstSignal: Percentiles;
  /** Server CPU milliseconds per newcomer (connect, join, first signal). */
  cpuMsPerJoin: number;
  /** The arrival rate achieved. */
  ratePerS: number;
}

let runCounter = 0;

export async function measureJoin(
  server: ServerProcess,
  protocol: Protocol,
  options: JoinOptions,
  tokens: BenchTokens,
): Promise<JoinMeasurement> {
  const run = `${process.pid}-${++runCounter}`;
  const total = Math.max(1, Math.round((options.rate * options.durationMs) / 1000)) + options.warmupJoins;
  const target = { protocol, url: server.url };
  const rooms = Array.from({ length: total }, (_, i) => `join-${run}-${i}`);
  const hosts: JoinedClient[] = [];
  const newcomers: Socket[] = [];
  const arrived = new Map<number, number>();
  try {
    let next = 0;
    const hostWorker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        const host = await connectAndJoin(target, rooms[i] as string, tokens);
        host.socket.on('signal', (message: Parameters<typeof sequenceOf>[0]) => arrived.set(sequenceOf(message), performance.now()));
        hosts[i] = host;
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.hostConcurrency, total) }, hostWorker));
    const minted = protocol === 'switchboard' ? rooms.map((room) => tokens.mint(room)) : [];
    const payloads = new PayloadFactory(300, (hosts[0] as JoinedClient).id);
    await server.gc();

    const samples: Array<{ connect: number; joinAck: number; firstSignal: number }> = [];
    const failures: string[] = [];
    const cpu0 = server.procCpuSeconds();
    const start = performance.now();
    const arrivals: Array<Promise<void>> = [];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / options.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      arrivals.push(
        (async () => {
          const t0 = performance.now();
          const client = await connectAndJoin(target, rooms[i] as string, minted[i] ?? tokens);
          newcomers.push(client.socket);
          const hostId = client.peers[0];
          if (!hostId) throw new Error('join ack listed no peer');
          client.socket.emit('signal', payloads.make(hostId, i), () => undefined);
          const deadline = performance.now() + 20_000;
          while (!arrived.has(i) && performance.now() < deadline) await sleep(1);
          const at = arrived.get(i);
          if (at === undefined) throw new Error('first signal never arrived');
          if (i >= options.warmupJoins) samples.push({ connect: client.connectMs, joinAck: client.joinMs, firstSignal: at - t0 });
        })().catch((error: Error) => {
          failures.push(error.message);
        }),
      );
    }
    const lastArrival = performance.now();
    await Promise.all(arrivals);
    const cpuS = server.procCpuSeconds() - cpu0;
    if (failures.length) throw new Error(`${failures.length} newcomer(s) failed: ${failures[0]}`);
    return {
      joins: samples.length,
      connect: percentiles(samples.map((s) => s.connect)),
      joinAck: percentiles(samples.map((s) => s.joinAck)),
      firstSignal: percentiles(samples.map((s) => s.firstSignal)),
      cpuMsPerJoin: (cpuS * 1000) / total,
      ratePerS: total > 1 ? ((total - 1) * 1000) / (lastArrival - start) : Number.NaN,
    };
  } finally {
    await closeClients([...hosts.filter(Boolean).map((h) => h.socket), ...newcomers], 300);
  }
}

export async function runJoin(ctx: BenchContext, options: JoinOptions = joinOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  const [baseline, switchboard] = await Promise.all([ctx.servers.get('baseline'), ctx.servers.get('switchboard')]);
  const results = { baseline: [] as JoinMeasurement[], switchboard: [] as JoinMeasurement[] };
  for (let round = 0; round < ctx.rounds; round++) {
    const order = round % 2 === 0 ? (['baseline', 'switchboard'] as const) : (['switchboard', 'baseline'] as const);
    for (const which of order) {
      const m = await measureJoin(
        which === 'baseline' ? baseline : switchboard,
        which === 'baseline' ? 'bare' : 'switchboard',
        options,
        tokens,
      );
      results[which].push(m);
      ctx.log(
        `join round ${round + 1}/${ctx.rounds} ${which}: ${m.joins} joins at ${fmt(m.ratePerS)}/s; connect p50 ${fmt(m.connect.p50)} p99 ${fmt(m.connect.p99)} ms; join ack p50 ${fmt(m.joinAck.p50)} p99 ${fmt(m.joinAck.p99)} ms; first signal p50 ${fmt(m.firstSignal.p50)} p99 ${fmt(m.firstSignal.p99)} ms; ${fmt(m.cpuMsPerJoin)} CPU-ms/join`,
      );
    }
  }
  return renderJoin(
    { options, results, rounds: ctx.rounds },
    { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin },
  );
}

export interface JoinData {
  options: JoinOptions;
  results: { baseline: JoinMeasurement[]; switchboard: JoinMeasurement[] };
  rounds?: number;
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/join.json). */
export function renderJoin(data: JoinData, meta: RenderMeta): Section {
  const { options, results } = data;
  const rounds = data.rounds ?? results.baseline.length;
  const headline: HeadlineRow[] = [];
  const rows: string[][] = [];
  const stages = [
    ['connect (handshake + auth)', (m: JoinMeasurement) => m.connect],
    ['join ack', (m: JoinMeasurement) => m.joinAck],
    ['first relayed signal', (m: JoinMeasurement) => m.firstSignal],
  ] as const;
  for (const [stage, pick] of stages) {
    for (const q of ['p50', 'p99'] as const) {
      const b = summarize(results.baseline.map((m) => pick(m)[q]));
      const s = summarize(results.switchboard.map((m) => pick(m)[q]));
      const r = ratioSummary(
        results.switchboard.map((m) => pick(m)[q]),
        results.baseline.map((m) => pick(m)[q]),
      );
      rows.push([stage, q, fmtSummary(b), fmtSummary(s), fmtSummary(r, 2)]);
      if (stage === 'first relayed signal')
        headline.push({
          metric: `join -> first signal ${q} ms at ${options.rate}/s`,
          baseline: fmt(b.median),
          switchboard: fmt(s.median),
          ratio: fmtSummary(r, 2),
          target: '',
          verdict: '',
        });
    }
  }
  const cpuB = summarize(results.baseline.map((m) => m.cpuMsPerJoin));
  const cpuS = summarize(results.switchboard.map((m) => m.cpuMsPerJoin));
  rows.push([
    'server CPU per newcomer (ms)',
    '',
    fmtSummary(cpuB),
    fmtSummary(cpuS),
    fmtSummary(
      ratioSummary(
        results.switchboard.map((m) => m.cpuMsPerJoin),
        results.baseline.map((m) => m.cpuMsPerJoin),
      ),
      2,
    ),
  ]);

  const lines: string[] = [];
  lines.push(
    `Newcomers arrive at ${options.rate}/s for ${options.durationMs / 1000} s (open loop; the first ${options.warmupJoins} are warm-up and not counted), each into its own room where a host waits. Each newcomer connects (Switchboard: JWT in the handshake auth; the baseline: none), joins (the ack lists the host), and signals the host a 300 B ICE candidate; times are cumulative from the start of the connect to: 'connect', the join ack, and the host receiving the signal. ${rounds} rounds, baseline and Switchboard alternating; median (min–max) of each round's percentile; ratios are the ratio of the medians, with the range of the per-round ratios.`,
  );
  lines.push('');
  lines.push(markdownTable(['stage (cumulative)', 'percentile', 'bare Socket.IO ms', 'Switchboard ms', 'ratio'], rows));
  lines.push('');
  lines.push(
    "No numeric target is set for join latency; the ratio shows what authentication, room admission and the join ack's contents (the peers, the ICE servers) add to a join. TURN and the SFU are off in this benchmark.",
  );
  return {
    name: 'join',
    title: '3. Join latency',
    machine: meta.machine,
    wallS: meta.wallS,
    headline,
    markdown: lines.join('\n'),
    plots: [],
    data: { ...data, rounds },
  };
}

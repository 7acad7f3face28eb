/**
 * 1. Signaling relay: Switchboard vs a bare Socket.IO relay (same socket.io, a minimal
 * `signal` handler, no auth), rooms of 2 and 6, 300 B and 3 KB payloads.
 *
 * Per round and case, on each server (order alternating by round), fresh clients join a
 * room and then:
 * - latency: an open loop at a fixed total rate (the same for both servers), round-robin
 *   over senders and targets; send -> relayed `signal` at the target, p50/p99;
 * - throughput: a closed loop (a fixed number of messages in flight per room, each delivery
 *   releases the next send) for a fixed window after a warm-up; relayed messages per
 *   server CPU-second (process.cpuUsage() of the server process) and per wall second.
 * Every signal is sent with an ack, as the SDK does, on both servers.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { RAISED_LIMITS, BenchTokens } from './lib/benchConfig.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { machineFacts } from './lib/processes.js';
import { profileMarkdown, summarizeProfile, type ProfileSummary } from './lib/profile.js';
import { markdownTable, verdict, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { GcStats, ServerProcess } from './lib/ServerProcess.js';
import { closeClients, connectAndJoin, PayloadFactory, sequenceOf, sleep, type JoinedClient, type Protocol } from './lib/signaling.js';
import { barChart } from './lib/svg.js';
import { fmt, fmtRatio, fmtSummary, percentiles, ratioSummary, summarize, type Percentiles } from './lib/stats.js';

export interface RelayOptions {
  roomSizes: number[];
  payloads: number[];
  warmupMs: number;
  throughputMs: number;
  /** Messages in flight per room in the closed loop. */
  inFlight: number;
  /** Total messages per second of the latency loop. */
  latencyRate: number;
  latencyMs: number;
  /** Length of the CPU profile of each server (0: no profile). */
  profileMs: number;
}

export function relayOptions(smoke: boolean): RelayOptions {
  if (smoke)
    return {
      roomSizes: [2, 6],
      payloads: [300, 3000],
      warmupMs: 50,
      throughputMs: 300,
      inFlight: 16,
      latencyRate: 200,
      latencyMs: 200,
      profileMs: 0,
    };
  return {
    roomSizes: envList('BENCH_RELAY_ROOMS', [2, 6]),
    payloads: envList('BENCH_RELAY_PAYLOADS', [300, 3000]),
    warmupMs: envNumber('BENCH_RELAY_WARMUP_MS', 700),
    throughputMs: envNumber('BENCH_RELAY_MS', 3000),
    inFlight: envNumber('BENCH_RELAY_IN_FLIGHT', 48),
    latencyRate: envNumber('BENCH_RELAY_RATE', 2000),
    latencyMs: envNumber('BENCH_RELAY_LATENCY_MS', 4000),
    profileMs: envNumber('BENCH_RELAY_PROFILE_MS', 3000),
  };
}

/** What one server did in one case of one round. */
export interface RelayMeasurement {
  payloadBytes: number;
  delivered: number;
  wallS: number;
  cpuS: number;
  /** Relayed messages per server CPU-second. */
  perCpuS: number;
  /** Relayed messages per wall-clock second. */
  perS: number;
  /** Server CPU use during the window (1 = one core). */
  cpuUtil: number;
  latency: Percentiles;
  /** The server's GC pauses during the latency loop. */
  latencyGc?: GcStats;
  /** Messages never delivered (both loops). */
  lost: number;
  /** Acks with ok:false (e.g. rate_limited): must stay 0. */
  errors: number;
}

const MAX_ROOM = 8;

/** Sends numbered signals between the clients of one room and matches their arrival. */
class RelayDriver {
  readonly sentAt = new Map<number, number>();
  delivered = 0;
  errors = 0;
  readonly errorCodes = new Set<string>();
  latencies: number[] | null = null;
  /** Only messages sent at or after this time (performance.now()) count for latency. */
  recordFrom = 0;
  onDelivered: ((sender: number) => void) | null = null;
  private seq = 0;
  private readonly nextTarget: number[];

  constructor(
    private readonly clients: JoinedClient[],
    private readonly payloads: PayloadFactory,
  ) {
    if (clients.length > MAX_ROOM || clients.length < 2) throw new Error(`rooms of 2..${MAX_ROOM}`);
    this.nextTarget = clients.map((_, i) => (i + 1) % clients.length);
    for (const client of clients) client.socket.on('signal', (message: Parameters<typeof sequenceOf>[0]) => this.received(message));
  }

  send(sender: number): void {
    const n = this.clients.length;
    const target = this.nextTarget[sender] as number;
    const next = (target + 1) % n;
    this.nextTarget[sender] = next === sender ? (next + 1) % n : next;
    const seq = ++this.seq * MAX_ROOM + sender;
    this.sentAt.set(seq, performance.now());
    const client = this.clients[sender] as JoinedClient;
    client.socket.emit('signal', this.payloads.make((this.clients[target] as JoinedClient).id, seq), this.ack);
  }

  /** Waits until every message sent arrived (or the timeout); returns how many did not. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.sentAt.size > 0 && Date.now() < deadline) await sleep(10);
    const lost = this.sentAt.size;
    this.sentAt.clear();
    return lost;
  }

  private readonly ack = (response: { ok?: boolean; error?: { code?: string } } | undefined): void => {
    if (response?.ok) return;
    this.errors += 1;
    this.errorCodes.add(response?.error?.code ?? 'no_ack');
  };

  private received(message: Parameters<typeof sequenceOf>[0]): void {
    const seq = sequenceOf(message);
    const at = this.sentAt.get(seq);
    if (at === undefined) return;
    this.sentAt.delete(seq);
    this.delivered += 1;
    if (at >= this.recordFrom) this.latencies?.push(performance.now() - at);
    this.onDelivered?.(seq % MAX_ROOM);
  }
}

let roomCounter = 0;

async function joinRoom(server: ServerProcess, protocol: Protocol, size: number, tokens: BenchTokens): Promise<JoinedClient[]> {
  const room = `relay-${process.pid}-${++roomCounter}`;
  const clients: JoinedClient[] = [];
  try {
    for (let i = 0; i < size; i++) clients.push(await connectAndJoin({ protocol, url: server.url }, room, tokens));
  } catch (error) {
    await closeClients(
      clients.map((c) => c.socket),
      0,
    );
    throw error;
  }
  return clients;
}

/** The closed loop: `inFlight` messages always travelling; returns a stop function. */
function startClosedLoop(driver: RelayDriver, size: number, inFlight: number): () => void {
  let running = true;
  driver.onDelivered = (sender) => {
    if (running) driver.send(sender);
  };
  const perSender = Math.max(1, Math.round(inFlight / size));
  for (let i = 0; i < size; i++) for (let k = 0; k < perSender; k++) driver.send(i);
  return () => {
    running = false;
    driver.onDelivered = null;
  };
}

/** The open loop: `rate` messages per second in total for `durationMs`, round-robin over senders. */
async function openLoop(driver: RelayDriver, size: number, rate: number, durationMs: number): Promise<void> {
  const start = performance.now();
  let sent = 0;
  let sender = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.floor((rate * Math.min(elapsed, durationMs)) / 1000) - sent;
      for (let k = 0; k < due; k++) {
        driver.send(sender);
        sender = (sender + 1) % size;
        sent += 1;
      }
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
}

export async function measureRelay(
  server: ServerProcess,
  protocol: Protocol,
  size: number,
  payloadBytes: number,
  options: RelayOptions,
  tokens: BenchTokens,
): Promise<RelayMeasurement> {
  const clients = await joinRoom(server, protocol, size, tokens);
  try {
    const payloads = new PayloadFactory(payloadBytes, (clients[1] as JoinedClient).id);
    const driver = new RelayDriver(clients, payloads);
    await server.gc();

    // The first part of the open loop warms up (JIT, socket buffers) and is not recorded.
    driver.latencies = [];
    driver.recordFrom = performance.now() + options.warmupMs;
    const gcReset = sleep(options.warmupMs).then(() => server.gcStats());
    await openLoop(driver, size, options.latencyRate, options.warmupMs + options.latencyMs);
    await gcReset;
    const latencyGc = await server.gcStats();
    let lost = await driver.drain(3_000);
    const latency = percentiles(driver.latencies);
    driver.latencies = null;

    const stop = startClosedLoop(driver, size, options.inFlight);
    await sleep(options.warmupMs);
    // process.cpuUsage() of the server (µs resolution, every thread), asked over IPC.
    const cpu0 = (await server.usage()).cpuS;
    const delivered0 = driver.delivered;
    const t0 = performance.now();
    await sleep(options.throughputMs);
    const cpu1 = (await server.usage()).cpuS;
    const delivered1 = driver.delivered;
    const t1 = performance.now();
    stop();
    lost += await driver.drain(3_000);

    const delivered = delivered1 - delivered0;
    const wallS = (t1 - t0) / 1000;
    const cpuS = cpu1 - cpu0;
    return {
      payloadBytes: payloads.sizeOf((clients[1] as JoinedClient).id),
      delivered,
      wallS,
      cpuS,
      perCpuS: cpuS > 0 ? delivered / cpuS : Number.NaN,
      perS: delivered / wallS,
      cpuUtil: cpuS / wallS,
      latency,
      latencyGc,
      lost,
      errors: driver.errors,
    };
  } finally {
    await closeClients(clients.map((c) => c.socket));
  }
}

/** Signaling latency alone: an open loop at `rate` signals/s in a room of `size` (used by the TURN isolation test). */
export async function measureSignalLatency(
  server: ServerProcess,
  protocol: Protocol,
  options: { size: number; payload: number; rate: number; durationMs: number; warmupMs: number },
  tokens: BenchTokens,
): Promise<Percentiles & { lost: number }> {
  const clients = await joinRoom(server, protocol, options.size, tokens);
  try {
    const driver = new RelayDriver(clients, new PayloadFactory(options.payload, (clients[1] as JoinedClient).id));
    driver.latencies = [];
    driver.recordFrom = performance.now() + options.warmupMs;
    await openLoop(driver, options.size, options.rate, options.warmupMs + options.durationMs);
    const lost = await driver.drain(3_000);
    return { ...percentiles(driver.latencies), lost };
  } finally {
    await closeClients(clients.map((c) => c.socket));
  }
}

/** A CPU profile of the server during the closed loop (room of 2, smallest payload). */
async function profileServer(
  server: ServerProcess,
  protocol: Protocol,
  options: RelayOptions,
  tokens: BenchTokens,
): Promise<ProfileSummary> {
  const clients = await joinRoom(server, protocol, 2, tokens);
  const file = join(tmpdir(), `switchboard-bench-${protocol}-${process.pid}.cpuprofile`);
  try {
    const driver = new RelayDriver(clients, new PayloadFactory(options.payloads[0] ?? 300, (clients[1] as JoinedClient).id));
    const stop = startClosedLoop(driver, 2, options.inFlight);
    await sleep(options.warmupMs);
    await server.request('profileStart');
    await sleep(options.profileMs);
    await server.request('profileStop', file);
    stop();
    await driver.drain(3_000);
    return summarizeProfile(file);
  } finally {
    rmSync(file, { force: true });
    await closeClients(clients.map((c) => c.socket));
  }
}

export interface CaseResult {
  size: number;
  payload: number;
  baseline: RelayMeasurement[];
  switchboard: RelayMeasurement[];
}

export async function runRelay(ctx: BenchContext, options: RelayOptions = relayOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  const [baseline, switchboard] = await Promise.all([ctx.servers.get('baseline'), ctx.servers.get('switchboard')]);
  const cases: CaseResult[] = [];
  for (const size of options.roomSizes)
    for (const payload of options.payloads) cases.push({ size, payload, baseline: [], switchboard: [] });

  for (let round = 0; round < ctx.rounds; round++) {
    for (const c of cases) {
      const order = round % 2 === 0 ? (['baseline', 'switchboard'] as const) : (['switchboard', 'baseline'] as const);
      for (const which of order) {
        const server = which === 'baseline' ? baseline : switchboard;
        const m = await measureRelay(server, which === 'baseline' ? 'bare' : 'switchboard', c.size, c.payload, options, tokens);
        c[which].push(m);
        ctx.log(
          `relay round ${round + 1}/${ctx.rounds} room ${c.size} ${c.payload} B ${which}: ${fmt(m.perCpuS)} msg/CPU-s, ${fmt(m.perS)} msg/s (CPU ${fmt(m.cpuUtil * 100)}%), p50 ${fmt(m.latency.p50)} ms p99 ${fmt(m.latency.p99)} ms (${m.latencyGc?.count ?? '?'} GCs, longest ${fmt(m.latencyGc?.maxMs ?? Number.NaN)} ms), lost ${m.lost}, errors ${m.errors}`,
        );
      }
    }
  }

  let profiles: { baseline: ProfileSummary; switchboard: ProfileSummary } | null = null;
  if (options.profileMs > 0) {
    profiles = {
      baseline: await profileServer(baseline, 'bare', options, tokens),
      switchboard: await profileServer(switchboard, 'switchboard', options, tokens),
    };
  }
  return renderRelay(
    { options, cases, profiles, rounds: ctx.rounds },
    { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin },
  );
}

export interface RelayData {
  options: RelayOptions;
  cases: CaseResult[];
  profiles: { baseline: ProfileSummary; switchboard: ProfileSummary } | null;
  rounds?: number;
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/relay.json). */
export function renderRelay(data: RelayData, meta: RenderMeta): Section {
  const { options, cases, profiles } = data;
  const { machine, wallS } = meta;
  const rounds = data.rounds ?? cases[0]?.baseline.length ?? meta.rounds;
  const headline: HeadlineRow[] = [];
  const rows: string[][] = [];
  const missed: string[] = [];
  const summaries = cases.map((c) => {
    const get = (list: RelayMeasurement[], f: (m: RelayMeasurement) => number): number[] => list.map(f);
    const tput = ratioSummary(
      get(c.switchboard, (m) => m.perCpuS),
      get(c.baseline, (m) => m.perCpuS),
    );
    const p99 = ratioSummary(
      get(c.switchboard, (m) => m.latency.p99),
      get(c.baseline, (m) => m.latency.p99),
    );
    const label = `room ${c.size}, ${c.payload >= 1000 ? `${c.payload / 1000} KB` : `${c.payload} B`}`;
    const s = {
      label,
      size: c.size,
      payload: c.payload,
      bytes: c.switchboard[0]?.payloadBytes ?? c.payload,
      baselineCpu: summarize(get(c.baseline, (m) => m.perCpuS)),
      switchboardCpu: summarize(get(c.switchboard, (m) => m.perCpuS)),
      baselineRate: summarize(get(c.baseline, (m) => m.perS)),
      switchboardRate: summarize(get(c.switchboard, (m) => m.perS)),
      baselineUtil: summarize(get(c.baseline, (m) => m.cpuUtil * 100)),
      switchboardUtil: summarize(get(c.switchboard, (m) => m.cpuUtil * 100)),
      baselineP50: summarize(get(c.baseline, (m) => m.latency.p50)),
      switchboardP50: summarize(get(c.switchboard, (m) => m.latency.p50)),
      baselineP99: summarize(get(c.baseline, (m) => m.latency.p99)),
      switchboardP99: summarize(get(c.switchboard, (m) => m.latency.p99)),
      gcB: summarize(get(c.baseline, (m) => m.latencyGc?.count ?? Number.NaN)),
      gcS: summarize(get(c.switchboard, (m) => m.latencyGc?.count ?? Number.NaN)),
      gcMaxB: summarize(get(c.baseline, (m) => m.latencyGc?.maxMs ?? Number.NaN)),
      gcMaxS: summarize(get(c.switchboard, (m) => m.latencyGc?.maxMs ?? Number.NaN)),
      tput,
      p99,
      lost: [...c.baseline, ...c.switchboard].reduce((sum, m) => sum + m.lost, 0),
      errors: [...c.baseline, ...c.switchboard].reduce((sum, m) => sum + m.errors, 0),
    };
    const tputVerdict = verdict(tput.median, 0.85, 'atLeast');
    const p99Verdict = verdict(p99.median, 1.2, 'atMost');
    if (tputVerdict === 'missed') missed.push(`throughput per CPU-second in ${label} (${fmtRatio(tput.median)})`);
    if (p99Verdict === 'missed') missed.push(`p99 latency in ${label} (${fmtRatio(p99.median)})`);
    headline.push({
      metric: `relay msg/CPU-s, ${label}`,
      baseline: fmt(s.baselineCpu.median),
      switchboard: fmt(s.switchboardCpu.median),
      ratio: fmtSummary(tput, 2),
      target: '>= 0.85',
      verdict: tputVerdict,
    });
    headline.push({
      metric: `relay p99 ms, ${label}`,
      baseline: fmt(s.baselineP99.median),
      switchboard: fmt(s.switchboardP99.median),
      ratio: fmtSummary(p99, 2),
      target: '<= 1.2',
      verdict: p99Verdict,
    });
    rows.push([
      label,
      String(s.bytes),
      fmtSummary(s.baselineCpu),
      fmtSummary(s.switchboardCpu),
      `**${fmtSummary(tput, 2)}** ${tputVerdict}`,
      `${fmt(s.baselineRate.median)} / ${fmt(s.switchboardRate.median)}`,
      `${fmt(s.baselineUtil.median)} / ${fmt(s.switchboardUtil.median)}`,
      `${fmt(s.baselineP50.median)} / ${fmt(s.switchboardP50.median)}`,
      `${fmtSummary(s.baselineP99)} / ${fmtSummary(s.switchboardP99)}`,
      `**${fmtSummary(p99, 2)}** ${p99Verdict}`,
      `${fmt(s.gcB.median)} (${fmt(s.gcMaxB.median)}) / ${fmt(s.gcS.median)} (${fmt(s.gcMaxS.median)})`,
    ]);
    return s;
  });

  const lines: string[] = [];
  lines.push(
    `Each case, each round: fresh clients join a room on each server (order alternating by round), then (a) an open loop sends ${options.latencyRate} signals/s in total for ${options.latencyMs / 1000} s after a ${options.warmupMs} ms warm-up (latency: send -> relayed \`signal\` at the target), and (b) a closed loop keeps ${options.inFlight} signals in flight per room for ${options.throughputMs / 1000} s after a ${options.warmupMs} ms warm-up (throughput). Every signal carries an ack on both servers, as the SDK sends them. Switchboard runs its full path (per-socket rate limit, payload check: the hand-written \`signal\` shape check, zod for anything it does not take, grant checks, metrics, pino at info to /dev/null); its limits are raised so they never cap the measurement (${Object.entries(
      RAISED_LIMITS,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ', ',
      )}); refused acks are counted below. The baseline is a bare Socket.IO ${'4.8'} relay: \`socket.on('signal', (m, ack) => { io.to(m.to).emit('signal', {from, ...}); ack({ ok: true }) })\`, no auth, no checks. ${rounds} rounds; figures are the median with the range (min–max) across rounds; a ratio is the ratio of the two medians, with the range of the per-round ratios (each round measures both servers back to back).`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      [
        'case',
        'payload bytes (JSON)',
        'baseline msg/CPU-s',
        'Switchboard msg/CPU-s',
        'ratio (target >= 0.85)',
        'msg/s wall b / S',
        'server CPU % b / S',
        'p50 ms b / S',
        'p99 ms b / S',
        'p99 ratio (target <= 1.2)',
        'GC pauses in the latency window, count (longest ms) b / S',
      ],
      rows,
    ),
  );
  lines.push('');
  const lost = summaries.reduce((sum, s) => sum + s.lost, 0);
  const errors = summaries.reduce((sum, s) => sum + s.errors, 0);
  lines.push(`Messages lost: ${lost}; refused acks (rate_limited or other): ${errors}.`);
  lines.push('');
  lines.push(
    'The server is pinned to one core and the load generator (one Node process with all the socket.io-client sockets) to the other; when "server CPU %" stays below ~90, the generator, not the server, bounded the wall-clock rate, so msg/CPU-s (work per message) is the figure to compare; it does not depend on who the bottleneck is.',
  );
  lines.push('');
  if (missed.length) lines.push(`**Targets missed:** ${missed.join('; ')}. See the profile below.`);
  else lines.push('**All relay targets met.**');
  if (profiles) {
    lines.push('');
    lines.push(
      `### Where the server CPU goes (V8 CPU profile of each server, room of 2, ${options.payloads[0]} B, closed loop, ${options.profileMs / 1000} s)`,
    );
    lines.push('');
    lines.push(profileMarkdown(profiles.baseline, profiles.switchboard));
  }

  const plots = [
    {
      file: 'relay-throughput.svg',
      title: 'Relayed messages per server CPU-second',
      svg: barChart({
        title: 'Signaling relay: messages per server CPU-second (higher is better)',
        yLabel: 'relayed messages / CPU-s',
        categories: summaries.map((s) => s.label),
        series: [
          {
            name: 'bare Socket.IO',
            values: summaries.map((s) => s.baselineCpu.median),
            mins: summaries.map((s) => s.baselineCpu.min),
            maxs: summaries.map((s) => s.baselineCpu.max),
          },
          {
            name: 'Switchboard',
            values: summaries.map((s) => s.switchboardCpu.median),
            mins: summaries.map((s) => s.switchboardCpu.min),
            maxs: summaries.map((s) => s.switchboardCpu.max),
          },
        ],
      }),
    },
  ];
  return {
    name: 'relay',
    title: '1. Signaling relay',
    machine,
    wallS,
    headline,
    markdown: lines.join('\n'),
    plots,
    data: { ...data, rounds },
  };
}

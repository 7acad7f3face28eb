/**
 * 4. TURN: the bundled relay (in a Switchboard process, on its worker thread) vs Debian's
 * coturn, on the same traffic from the raw client of test/helpers/stun.ts, and vs a bare Node.js
 * UDP forwarder (bench/servers/udpForwarder.ts: no TURN, one receive and one send per packet),
 * the ceiling any relay written in Node can reach per packet.
 * - Capacity: flows (one allocation each, ChannelData to a channel bound to a UDP peer) at
 *   a rising rate, 120 B and 1200 B payloads; each step sends for a fixed time and counts
 *   what the peers receive. The capacity is the highest delivered rate with under 1% loss
 *   (the ladder grows by a factor, then bisects between the last pass and the first fail).
 *   Relay and load generator are pinned to different cores. The load generator is native
 *   (bench/lib/nativeBlast.ts: Node allocates, a C process sends and counts the packets, at a
 *   small part of the relay's CPU per packet) or, where that cannot be built, Node's dgram.
 * - Allocations per second: fresh clients doing the whole 401 challenge + Allocate.
 * - Isolation: signaling p99 on the Switchboard process while the relay carries a
 *   sustained stream (from a separate process), vs the same with no stream, vs the same
 *   relay code on the signaling thread (a counterfactual server, bench/servers/main.ts
 *   kind switchboard-inline-turn). The server may use both cores here: the worker thread
 *   can only isolate when it has a core to run on.
 */
import { BenchTokens, turnEnv } from './lib/benchConfig.js';
import { coturnUnavailableReason, startCoturn, type Coturn } from './lib/coturn.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { allCpus, cpuCount, LOAD_CPUS, machineFacts, procCpuSeconds, setAffinity, udpDrops, withAffinity } from './lib/processes.js';
import { markdownTable, verdict, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { sleep } from './lib/signaling.js';
import { fmt, fmtSummary, ratioSummary, summarize, type Percentiles } from './lib/stats.js';
import { barChart } from './lib/svg.js';
import { loadGenerator, NODE_DESCRIPTION, type GeneratorKind } from './lib/nativeBlast.js';
import { allocationBurst, type LoadFlows, type TurnEndpoint } from './lib/turnLoad.js';
import { measureSignalLatency } from './relay.js';
import { BENCH_TURN_SECRET } from './lib/benchConfig.js';

export interface TurnOptions {
  payloads: number[];
  flows: number;
  stepMs: number;
  startRate: number;
  growth: number;
  maxSteps: number;
  refineSteps: number;
  maxLoss: number;
  allocations: number;
  allocationConcurrency: number;
  /** Packets per second of the sustained stream at most (it is 60% of the bundled relay's measured capacity, up to this). */
  streamRate: number;
  streamPayload: number;
  signalRate: number;
  signalMs: number;
  /** Wait after each ladder step for packets in flight (200 ms). */
  drainMs?: number;
  /** The equal-rate part: packets/s every backend gets, rounds of alternating steps, and each step's length. */
  equalRate: number;
  equalRounds: number;
  equalStepMs: number;
  /** Warm-up of the signaling loop and of the stream before latencies count (300 ms). */
  warmupMs?: number;
}

export function turnOptions(smoke: boolean): TurnOptions {
  if (smoke) {
    return {
      payloads: [120, 1200],
      flows: 2,
      stepMs: 200,
      startRate: 1000,
      growth: 2,
      maxSteps: 2,
      refineSteps: 0,
      maxLoss: 0.01,
      allocations: 6,
      allocationConcurrency: 3,
      streamRate: 1000,
      streamPayload: 1200,
      signalRate: 100,
      signalMs: 300,
      drainMs: 50,
      warmupMs: 100,
      equalRate: 2000,
      equalRounds: 2,
      equalStepMs: 150,
    };
  }
  return {
    payloads: envList('BENCH_TURN_PAYLOADS', [120, 1200]),
    flows: envNumber('BENCH_TURN_FLOWS', 4),
    stepMs: envNumber('BENCH_TURN_STEP_MS', 1000),
    startRate: envNumber('BENCH_TURN_START_PPS', 20_000),
    growth: 1.5,
    maxSteps: envNumber('BENCH_TURN_MAX_STEPS', 10),
    refineSteps: 2,
    maxLoss: 0.01,
    allocations: envNumber('BENCH_TURN_ALLOCATIONS', 100),
    allocationConcurrency: 10,
    streamRate: envNumber('BENCH_TURN_STREAM_PPS', 50_000),
    streamPayload: 1200,
    signalRate: envNumber('BENCH_TURN_SIGNAL_RATE', 1000),
    signalMs: envNumber('BENCH_TURN_SIGNAL_MS', 4000),
    equalRate: envNumber('BENCH_TURN_EQUAL_PPS', 50_000),
    equalRounds: envNumber('BENCH_TURN_EQUAL_ROUNDS', 16),
    equalStepMs: envNumber('BENCH_TURN_EQUAL_STEP_MS', 600),
  };
}

export interface TurnStep {
  offered: number;
  achieved: number;
  sent: number;
  received: number;
  loss: number;
  deliveredPps: number;
  cpuUsPerPacket: number;
  ok: boolean;
  /** The load generator could not send at the offered rate. */
  generatorBound: boolean;
  /** Datagrams the kernel dropped (full receive buffers) on the relay's sockets and on the generator's. */
  relayDrops?: number;
  generatorDrops?: number;
  /** CPU µs of the load generator's process per packet sent, over the step and its drain (absent before it was recorded). */
  generatorCpuUsPerPacket?: number;
}

export interface LadderResult {
  payload: number;
  steps: TurnStep[];
  /** Highest delivered packets/s with loss under the limit (0 when none passed). */
  capacityPps: number;
  mbps: number;
  cpuUsPerPacket: number;
  /** The ladder stopped because the generator, not the relay, hit its limit. */
  generatorBound: boolean;
  /** The generator's CPU µs per packet sent at the step the capacity comes from. */
  generatorCpuUsPerPacket?: number;
}

/**
 * What carries the flows: the bundled relay with one relay worker (pinned to one core), the
 * same on Node's dgram (TURN_UDP_IO=dgram: the single thread the relay was before it ran across
 * cores on native I/O), the bundled relay with one worker per core (TURN_WORKERS, the default;
 * on every core), coturn, or the bare forwarder (no TURN).
 */
export type Backend = 'bundled' | 'dgram' | 'workers' | 'coturn' | 'forwarder';
/** The TURN servers whose allocations are measured. */
type TurnBackend = Exclude<Backend, 'forwarder' | 'dgram'>;

const BACKEND_LABELS: Record<Backend, string> = {
  coturn: 'coturn',
  bundled: 'bundled (Switchboard), 1 relay worker',
  dgram: 'bundled (Switchboard), 1 relay worker on dgram (TURN_UDP_IO=dgram)',
  workers: 'bundled (Switchboard), one relay worker per core',
  forwarder: 'bare Node forwarder (no TURN)',
};

async function ladder(
  endpoint: TurnEndpoint,
  pid: number,
  payload: number,
  options: TurnOptions,
  open: (endpoint: TurnEndpoint, count: number) => Promise<LoadFlows>,
): Promise<LadderResult> {
  const flows = await open(endpoint, options.flows);
  const steps: TurnStep[] = [];
  try {
    const step = async (rate: number): Promise<TurnStep> => {
      const received0 = await flows.received();
      const relayDrops0 = udpDrops(pid);
      const generatorDrops0 = udpDrops(flows.pid);
      const cpu0 = procCpuSeconds(pid);
      const generatorCpu0 = procCpuSeconds(flows.pid);
      const { sent, achievedRate } = await flows.send(payload, Math.round(rate), options.stepMs);
      await sleep(options.drainMs ?? 200);
      const received = (await flows.received()) - received0;
      const cpuS = procCpuSeconds(pid) - cpu0;
      const generatorCpuS = procCpuSeconds(flows.pid) - generatorCpu0;
      const relayDrops = udpDrops(pid) - relayDrops0;
      const generatorDrops = udpDrops(flows.pid) - generatorDrops0;
      const loss = sent > 0 ? Math.max(0, 1 - received / sent) : 1;
      const generatorBound = achievedRate < rate * 0.95;
      const s: TurnStep = {
        offered: Math.round(rate),
        achieved: achievedRate,
        sent,
        received,
        loss,
        deliveredPps: received / (options.stepMs / 1000),
        cpuUsPerPacket: received > 0 ? (cpuS * 1e6) / received : Number.NaN,
        ok: loss < options.maxLoss,
        generatorBound,
        relayDrops,
        generatorDrops,
        generatorCpuUsPerPacket: sent > 0 ? (generatorCpuS * 1e6) / sent : Number.NaN,
      };
      steps.push(s);
      return s;
    };
    let rate = options.startRate;
    let pass: TurnStep | null = null;
    let fail: TurnStep | null = null;
    let generatorBound = false;
    for (let i = 0; i < options.maxSteps; i++) {
      const s = await step(rate);
      if (!s.ok) {
        fail = s;
        break;
      }
      pass = s;
      if (s.generatorBound) {
        generatorBound = true;
        break;
      }
      rate *= options.growth;
    }
    for (let i = 0; i < options.refineSteps && pass && fail; i++) {
      const s = await step((pass.offered + fail.offered) / 2);
      if (s.ok) pass = s;
      else fail = s;
    }
    const best = steps.filter((s) => s.ok).sort((a, b) => b.deliveredPps - a.deliveredPps)[0];
    return {
      payload,
      steps,
      capacityPps: best?.deliveredPps ?? 0,
      mbps: best ? (best.deliveredPps * payload * 8) / 1e6 : 0,
      cpuUsPerPacket: best?.cpuUsPerPacket ?? Number.NaN,
      generatorBound: generatorBound || (!fail && pass !== null),
      generatorCpuUsPerPacket: best?.generatorCpuUsPerPacket ?? Number.NaN,
    };
  } finally {
    await flows.close();
  }
}

/** The equal-rate part's backends: the capacity part's, and the bare forwarder on one thread per core (the shape of the relay's workers). */
export type EqualRateBackend = Backend | 'forwarders';

/** One step of the equal-rate part: a backend carrying `rate` packets/s of `payload` B. */
export interface EqualRateStep {
  payload: number;
  round: number;
  backend: EqualRateBackend;
  cpuUsPerPacket: number;
  loss: number;
}

/**
 * CPU per packet with every backend at the same offered rate (the ladders measure each at its
 * own capacity, and a relay's CPU per packet falls as its rate rises: more datagrams per
 * wake-up). Flows to every backend stay open; each round sends a short step to each in turn
 * (the order alternates), so that a disturbance of the machine hits neighbouring steps alike
 * and the per-round ratios pair them.
 */
async function equalRateSteps(
  backends: ReadonlyArray<{
    name: EqualRateBackend;
    endpoint: TurnEndpoint;
    pid: number;
    open: (endpoint: TurnEndpoint, count: number) => Promise<LoadFlows>;
  }>,
  options: TurnOptions,
  log: (line: string) => void,
): Promise<EqualRateStep[]> {
  const steps: EqualRateStep[] = [];
  for (const payload of options.payloads) {
    const open: Array<{ name: EqualRateBackend; pid: number; flows: LoadFlows }> = [];
    try {
      for (const backend of backends) {
        const flows = await backend.open(backend.endpoint, options.flows);
        open.push({ name: backend.name, pid: backend.pid, flows });
        // Warm-up: the relay's hot path compiled, the sockets' buffers grown.
        await flows.send(payload, Math.min(options.equalRate, 20_000), 300);
      }
      for (let round = 0; round < options.equalRounds; round++) {
        for (const target of round % 2 === 0 ? open : [...open].reverse()) {
          const received0 = await target.flows.received();
          const cpu0 = procCpuSeconds(target.pid);
          const { sent } = await target.flows.send(payload, options.equalRate, options.equalStepMs);
          await sleep(options.drainMs ?? 200);
          const received = (await target.flows.received()) - received0;
          steps.push({
            payload,
            round,
            backend: target.name,
            cpuUsPerPacket: received > 0 ? ((procCpuSeconds(target.pid) - cpu0) * 1e6) / received : Number.NaN,
            loss: sent > 0 ? Math.max(0, 1 - received / sent) : 1,
          });
        }
      }
      for (const target of open) {
        const mine = steps.filter((s) => s.payload === payload && s.backend === target.name);
        log(
          `turn equal rate ${options.equalRate} pkt/s ${payload} B ${target.name}: ${fmt(summarize(mine.map((s) => s.cpuUsPerPacket)).median)} CPU-µs/pkt, loss ${fmt(summarize(mine.map((s) => s.loss * 100)).median)}%`,
        );
      }
    } finally {
      await Promise.all(open.map((target) => target.flows.close()));
    }
  }
  return steps;
}

/** A relay above this share of its core at the first lossy step was the bottleneck. */
const RELAY_BUSY = 0.8;

/** Kernel drops at each ladder's first lossy step, "relay / generator (of lost)", median over rounds. */
function dropsAtFirstLoss(ladders: LadderResult[]): string {
  const firsts = ladders
    .map((l) => l.steps.filter((s) => !s.ok).sort((a, b) => a.offered - b.offered)[0])
    .filter((s): s is TurnStep => s?.relayDrops !== undefined);
  if (!firsts.length) return 'n/a';
  const relay = summarize(firsts.map((s) => s.relayDrops ?? Number.NaN)).median;
  const generator = summarize(firsts.map((s) => s.generatorDrops ?? Number.NaN)).median;
  const lost = summarize(firsts.map((s) => s.sent - s.received)).median;
  return `${fmt(relay)} / ${fmt(generator)} (of ${fmt(lost)})`;
}

/** The relay's CPU use (1 = a core) during the first step of a ladder with too much loss; NaN when none. */
function relayCpuAtFirstLoss(ladder: LadderResult, options: TurnOptions): number {
  const lossy = ladder.steps.filter((s) => !s.ok).sort((a, b) => a.offered - b.offered)[0];
  if (!lossy || !Number.isFinite(lossy.cpuUsPerPacket)) return Number.NaN;
  // CPU time over the step and the 200 ms drain after it (a relay busy all the step shows 80-90%).
  return (lossy.cpuUsPerPacket * lossy.received) / 1e6 / (options.stepMs / 1000 + (options.drainMs ?? 200) / 1000);
}

type UnderStream = Percentiles & { lost: number; streamLoss: number; streamPps: number };

export interface IsolationRound {
  idle: Percentiles & { lost: number };
  worker: UnderStream;
  inline: UnderStream;
  /** Signaling on the server with one relay worker per core (absent from results recorded before it was measured), and with no stream there. */
  workers?: UnderStream;
  workersIdle?: Percentiles & { lost: number };
}

export async function runTurn(ctx: BenchContext, options: TurnOptions = turnOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  const generator = loadGenerator();
  ctx.log(`turn: load generator: ${generator.description}`);
  // The native generator's process gets the generator's core, as this process does.
  const openFlows =
    (bare: boolean) =>
    (endpoint: TurnEndpoint, count: number): Promise<LoadFlows> =>
      generator.open(endpoint, count, { bare, cpus: ctx.pin ? LOAD_CPUS : null });
  const coturnMissing = coturnUnavailableReason();
  if (coturnMissing) ctx.log(`turn: coturn comparison skipped: ${coturnMissing}`);
  const pinned = ctx.pin ? '0' : null;
  const workerCount = cpuCount();
  // One relay worker on one core: the relay as it was before it ran across cores, and the base of the scaling ratio.
  const bundledServer = await ctx.servers.get('switchboard', { ...turnEnv(), TURN_WORKERS: '1' }, { cpus: pinned });
  const bundled: TurnEndpoint = { address: '127.0.0.1', port: bundledServer.info.turnPort as number, secret: BENCH_TURN_SECRET };
  // One relay worker per core (the default) on every core; the generator keeps its core and shares it.
  const workersServer = await ctx.servers.get('switchboard', { ...turnEnv(), TURN_WORKERS: String(workerCount) }, { cpus: null });
  // One relay worker on Node's dgram: the single thread the relay was, the base of the capacity target.
  const dgramServer = await ctx.servers.get('switchboard', { ...turnEnv(), TURN_WORKERS: '1', TURN_UDP_IO: 'dgram' }, { cpus: pinned });
  const dgramEndpoint: TurnEndpoint = { address: '127.0.0.1', port: dgramServer.info.turnPort as number, secret: BENCH_TURN_SECRET };
  const workers: TurnEndpoint = {
    address: '127.0.0.1',
    port: workersServer.info.turnPort as number,
    ports: workersServer.info.turnPorts,
    secret: BENCH_TURN_SECRET,
  };
  const forwarder = await ctx.servers.fresh('udp-forwarder', {}, { cpus: pinned });
  // The forwarder with one thread per core, on every core as the relay's workers: the ceiling of their shape.
  const forwarders = await ctx.servers.fresh('udp-forwarder', { threads: workerCount }, { cpus: null });
  let coturn: Coturn | null = null;
  const capacity: Record<Backend, LadderResult[]> = { bundled: [], dgram: [], workers: [], coturn: [], forwarder: [] };
  const allocations: Record<TurnBackend, Array<{ perS: number; cpuMsPerAllocation: number; failures: number }>> = {
    bundled: [],
    workers: [],
    coturn: [],
  };
  const isolation: IsolationRound[] = [];
  let equalRate: EqualRateStep[] = [];
  let streamRate = options.streamRate;
  try {
    coturn = coturnMissing ? null : await startCoturn(pinned);
    const backends: Array<{
      name: Backend;
      endpoint: TurnEndpoint;
      pid: number;
      open: (endpoint: TurnEndpoint, count: number) => Promise<LoadFlows>;
    }> = [
      { name: 'bundled', endpoint: bundled, pid: bundledServer.pid, open: openFlows(false) },
      { name: 'dgram', endpoint: dgramEndpoint, pid: dgramServer.pid, open: openFlows(false) },
      { name: 'workers', endpoint: workers, pid: workersServer.pid, open: openFlows(false) },
      {
        name: 'forwarder',
        endpoint: { address: '127.0.0.1', port: forwarder.info.port, secret: '' },
        pid: forwarder.pid,
        open: openFlows(true),
      },
    ];
    if (coturn) backends.push({ name: 'coturn', endpoint: coturn, pid: coturn.pid, open: openFlows(false) });

    await withAffinity(ctx.pin ? LOAD_CPUS : null, async () => {
      for (let round = 0; round < ctx.rounds; round++) {
        const order = round % 2 === 0 ? backends : [...backends].reverse();
        for (const payload of options.payloads) {
          for (const backend of order) {
            const result = await ladder(backend.endpoint, backend.pid, payload, options, backend.open);
            capacity[backend.name].push(result);
            ctx.log(
              `turn round ${round + 1}/${ctx.rounds} ${backend.name} ${payload} B: ${fmt(result.capacityPps)} pkt/s (${fmt(result.mbps)} Mbit/s) at < ${options.maxLoss * 100}% loss, ${fmt(result.cpuUsPerPacket)} CPU-µs/pkt, generator ${fmt(result.generatorCpuUsPerPacket ?? Number.NaN)} CPU-µs/pkt${result.generatorBound ? ' (generator-bound)' : ''}; steps ${result.steps.map((s) => `${s.offered}:${(s.loss * 100).toFixed(1)}%`).join(' ')}`,
            );
          }
        }
        for (const backend of order) {
          if (backend.name === 'forwarder' || backend.name === 'dgram') continue;
          const cpu0 = procCpuSeconds(backend.pid);
          const burst = await allocationBurst(backend.endpoint, options.allocations, options.allocationConcurrency);
          const cpuMs = (procCpuSeconds(backend.pid) - cpu0) * 1000;
          allocations[backend.name].push({ perS: burst.perS, cpuMsPerAllocation: cpuMs / options.allocations, failures: burst.failures });
          ctx.log(
            `turn round ${round + 1}/${ctx.rounds} ${backend.name}: ${fmt(burst.perS)} allocations/s, ${fmt(cpuMs / options.allocations)} CPU-ms each, ${burst.failures} failed`,
          );
        }
      }
      equalRate = await equalRateSteps(
        [
          ...backends,
          {
            name: 'forwarders',
            endpoint: { address: '127.0.0.1', port: forwarders.info.port, ports: forwarders.info.turnPorts, secret: '' },
            pid: forwarders.pid,
            open: openFlows(true),
          },
        ],
        options,
        ctx.log,
      );
    });

    // Isolation: the server may use every core; so may the stream process and the generator.
    const bundledCapacity = summarize(capacity.bundled.filter((r) => r.payload === options.streamPayload).map((r) => r.capacityPps)).median;
    if (Number.isFinite(bundledCapacity) && bundledCapacity > 0)
      streamRate = Math.min(options.streamRate, Math.round(bundledCapacity * 0.6));
    setAffinity(bundledServer.pid, allCpus());
    const inlineServer = await ctx.servers.get('switchboard-inline-turn', turnEnv(), { cpus: null });
    const inline: TurnEndpoint = { address: '127.0.0.1', port: inlineServer.info.turnPort as number, secret: BENCH_TURN_SECRET };
    const streams = await Promise.all([
      ctx.servers.fresh('turn-stream', { ...bundled, flows: 2, generator: generator.kind }, { cpus: null }),
      ctx.servers.fresh('turn-stream', { ...inline, flows: 2, generator: generator.kind }, { cpus: null }),
    ]);
    const [toWorker, toInline] = streams as [ServerProcess, ServerProcess];
    // The stream to the relay with one worker per core uses both its ports, as its users would.
    const toWorkers = await ctx.servers.fresh(
      'turn-stream',
      { ...workers, flows: 2 * workerCount, generator: generator.kind },
      { cpus: null },
    );
    streams.push(toWorkers);
    const warmupMs = options.warmupMs ?? 300;
    const signal = { size: 2, payload: 300, rate: options.signalRate, durationMs: options.signalMs, warmupMs };
    try {
      // Warm both servers' signaling paths (JIT) before anything is recorded.
      for (const server of [bundledServer, inlineServer, workersServer])
        await measureSignalLatency(server, 'switchboard', { ...signal, durationMs: Math.min(1000, signal.durationMs) }, tokens);
      for (let round = 0; round < ctx.rounds; round++) {
        const underStream = async (stream: ServerProcess, server: ServerProcess) => {
          await stream.request('streamStart', { rate: streamRate, payload: options.streamPayload });
          await sleep(warmupMs);
          const latency = await measureSignalLatency(server, 'switchboard', signal, tokens);
          const result = await stream.request<{ sent: number; received: number; achievedRate: number; generator: GeneratorKind }>(
            'streamStop',
          );
          if (result.generator !== generator.kind) ctx.log(`turn isolation: the stream process ran the ${result.generator} generator`);
          return { ...latency, streamLoss: result.sent ? 1 - result.received / result.sent : 1, streamPps: result.achievedRate };
        };
        const variants = ['idle', 'worker', 'inline', 'workersIdle', 'workers'] as const;
        const shift = round % variants.length;
        const order = [...variants.slice(shift), ...variants.slice(0, shift)];
        const entry: Partial<IsolationRound> = {};
        for (const variant of order) {
          if (variant === 'idle') entry.idle = await measureSignalLatency(bundledServer, 'switchboard', signal, tokens);
          else if (variant === 'worker') entry.worker = await underStream(toWorker, bundledServer);
          else if (variant === 'inline') entry.inline = await underStream(toInline, inlineServer);
          else if (variant === 'workersIdle') entry.workersIdle = await measureSignalLatency(workersServer, 'switchboard', signal, tokens);
          else entry.workers = await underStream(toWorkers, workersServer);
        }
        const r = entry as Required<IsolationRound>;
        isolation.push(r);
        ctx.log(
          `turn isolation round ${round + 1}/${ctx.rounds}: signaling p99 idle ${fmt(r.idle.p99)} ms; with a ${streamRate} pkt/s stream: worker thread ${fmt(r.worker.p99)} ms (stream loss ${(r.worker.streamLoss * 100).toFixed(2)}%), relay on the signaling thread ${fmt(r.inline.p99)} ms (stream loss ${(r.inline.streamLoss * 100).toFixed(2)}%); ${workerCount} relay workers: idle ${fmt(r.workersIdle.p99)} ms, with the stream ${fmt(r.workers.p99)} ms (stream loss ${(r.workers.streamLoss * 100).toFixed(2)}%)`,
        );
      }
    } finally {
      await Promise.all(streams.map((s) => ctx.servers.release(s)));
    }
  } finally {
    await coturn?.close();
    await ctx.servers.release(forwarder);
    await ctx.servers.release(forwarders);
  }
  return renderTurn(
    {
      options,
      workerCount,
      capacity,
      allocations,
      equalRate,
      isolation,
      streamRate,
      coturnMissing,
      coturnVersion: coturn?.version ?? null,
      rounds: ctx.rounds,
      generator: { kind: generator.kind, gso: generator.gso, nodeReason: generator.nodeReason, description: generator.description },
    },
    { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin },
  );
}

export interface TurnData {
  options: TurnOptions;
  /** `forwarder` and `workers` are absent from results recorded before they were measured. */
  /** `dgram`: absent from results recorded before the relay had native I/O (bundled and workers were then on dgram). */
  capacity: Record<'bundled' | 'coturn', LadderResult[]> & { forwarder?: LadderResult[]; workers?: LadderResult[]; dgram?: LadderResult[] };
  allocations: Record<'bundled' | 'coturn', Array<{ perS: number; cpuMsPerAllocation: number; failures: number }>> & {
    workers?: Array<{ perS: number; cpuMsPerAllocation: number; failures: number }>;
  };
  /** Relay workers of the `workers` backend (one per core), and threads of the `forwarders` one. */
  workerCount?: number;
  /** The equal-rate part (absent from results recorded before it was measured). */
  equalRate?: EqualRateStep[];
  isolation: IsolationRound[];
  streamRate: number;
  coturnMissing: string | null;
  coturnVersion: string | null;
  rounds?: number;
  pin?: boolean;
  /** The load generator of the capacity part and of the stream (absent before the native one: Node's). */
  generator?: { kind: GeneratorKind; gso?: boolean; nodeReason: string | null; description: string };
}

/** A backend's name in the tables; `workers`: how many relay workers (or forwarder threads) the multi-core backends run. */
function backendLabel(backend: EqualRateBackend, workers: string): string {
  if (backend === 'workers') return `bundled (Switchboard), ${workers} relay workers`;
  if (backend === 'forwarders') return `bare Node forwarder, ${workers} threads (one per port)`;
  return BACKEND_LABELS[backend];
}

/** The equal-rate part: a table of CPU per packet against the bare forwarder, and its headline rows. */
function renderEqualRate(data: TurnData, steps: EqualRateStep[], headline: HeadlineRow[]): string[] {
  const { options } = data;
  const workers = String(data.workerCount ?? 'N');
  const rate = options.equalRate;
  const rows: string[][] = [];
  const lossy: string[] = [];
  for (const payload of options.payloads) {
    const of = (backend: EqualRateBackend): EqualRateStep[] =>
      steps.filter((s) => s.payload === payload && s.backend === backend).sort((a, b) => a.round - b.round);
    const perCpu = (list: EqualRateStep[]): number[] => list.map((s) => 1e6 / s.cpuUsPerPacket);
    const forwarder = perCpu(of('forwarder'));
    for (const backend of ['coturn', 'forwarder', 'forwarders', 'dgram', 'bundled', 'workers'] as const) {
      const list = of(backend);
      if (!list.length) continue;
      const label = backendLabel(backend, workers);
      const ratio = ratioSummary(perCpu(list), forwarder);
      const loss = summarize(list.map((s) => s.loss * 100));
      if (loss.median >= options.maxLoss * 100) lossy.push(`${label} at ${payload} B`);
      rows.push([
        `${payload} B`,
        label,
        fmtSummary(summarize(list.map((s) => s.cpuUsPerPacket))),
        fmtSummary(summarize(perCpu(list))),
        backend === 'forwarder' ? '1.00x' : fmtSummary(ratio, 2),
        fmtSummary(loss),
      ]);
      if (backend !== 'bundled' && backend !== 'workers') continue;
      const isWorkers = backend === 'workers';
      headline.push({
        metric: `TURN packets per relay CPU-second at ${fmt(rate)} packets/s, ${payload} B, ${isWorkers ? `${workers} relay workers` : '1 relay worker'} (baseline: bare Node forwarder, no TURN)`,
        baseline: fmt(summarize(forwarder).median),
        switchboard: fmt(summarize(perCpu(list)).median),
        ratio: fmtSummary(ratio, 2),
        target: isWorkers ? '>= 0.9x' : '',
        verdict: isWorkers ? verdict(ratio.median, 0.9, 'atLeast') : '',
      });
    }
  }
  const rounds = options.equalRounds;
  return [
    `### Cost per packet at an equal rate`,
    '',
    `The table above takes each relay's CPU per packet at its own capacity, a different rate for each, and a relay's CPU per packet falls as its rate rises (more datagrams per wake-up). Here every backend carries the same ${fmt(rate)} packets/s (the same flows and pacing): flows to all of them stay open, and each of ${rounds} rounds sends a ${options.equalStepMs / 1000} s step to each in turn, the order reversed every other round, so that a disturbance of the machine hits neighbouring steps alike. Pinning as above; the bare forwarder also runs as ${workers} threads, one per port and on every core like the relay's workers, the ceiling of their shape. Median (min–max) over the rounds; the ratio is packets per CPU-second against the single-threaded bare forwarder, the ratio of the medians with the range of the per-round ratios.`,
    '',
    markdownTable(['payload', 'relay', 'CPU µs per packet', 'packets per CPU-second', 'vs bare forwarder', 'loss %'], rows),
    ...(lossy.length
      ? [
          '',
          `Over ${options.maxLoss * 100}% loss at this rate (the figure is then per packet delivered, at saturation): ${lossy.join('; ')}.`,
        ]
      : []),
  ];
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/turn.json). */
export function renderTurn(data: TurnData, meta: RenderMeta): Section {
  const { options, capacity, allocations, isolation } = data;
  const results = data;
  const { wallS } = meta;
  const generator = data.generator ?? { kind: 'node', nodeReason: null, description: NODE_DESCRIPTION };
  const machine = {
    ...meta.machine,
    pinning: meta.pin
      ? `relay on core 0${data.workerCount ? ` (the relay with ${data.workerCount} relay workers: on every core)` : ''}, load generator on core 1 for capacity and allocations; nothing pinned for the isolation part`
      : 'not pinned',
    loadGenerator: generator.description,
  };
  const generatorProcess = generator.kind === 'native' ? 'one C process' : 'one Node process';
  const rounds = data.rounds ?? isolation.length;
  const headline: HeadlineRow[] = [];
  const lines: string[] = [];
  lines.push(
    `Same traffic against both relays${capacity.forwarder?.length ? ' and the bare forwarder' : ''}: ${options.flows} flows, each an allocation with a channel bound to a UDP peer on 127.0.0.1 (for the forwarder: the same ChannelData frames, registered to the same kind of peer); ChannelData paced every millisecond, round-robin over the flows, ${options.stepMs / 1000} s per step from ${options.startRate} packets/s up by ${options.growth}x until loss reaches ${options.maxLoss * 100}%, then ${options.refineSteps} bisection steps. Relay on core 0, load generator on core 1${meta.pin ? '' : ' (not pinned in this run)'}${capacity.workers?.length ? `; the bundled relay with ${data.workerCount} relay workers (one per core, the default) runs on every core, sharing the generator's` : ''}. Load generator: ${generator.description}. coturn: ${results.coturnMissing ?? `${results.coturnVersion}, started as test/turn/coturn.test.ts starts it`}; the bundled relay runs in a Switchboard process (its worker thread), so its CPU figure is the whole process. Mbit/s counts payload bytes. ${rounds} rounds, median (min–max); ratios are the ratio of the medians, with the range of the per-round ratios. The ladder's steps are discrete (x${options.growth}, then ${options.refineSteps} bisections), so capacities repeat across rounds and are accurate to about ${Math.round((Math.pow(options.growth, 1 / 2 ** options.refineSteps) - 1) * 100)}%.`,
  );
  lines.push('');
  const rows: string[][] = [];
  const relayIdleAtLoss: string[] = [];
  const generatorCost: string[] = [];
  const series: Array<{ name: string; values: number[]; mins: number[]; maxs: number[] }> = [
    { name: 'coturn', values: [], mins: [], maxs: [] },
    { name: 'Switchboard (bundled)', values: [], mins: [], maxs: [] },
    { name: 'bare Node forwarder', values: [], mins: [], maxs: [] },
    { name: `Switchboard, ${data.workerCount ?? 'N'} relay workers`, values: [], mins: [], maxs: [] },
  ];
  for (const payload of options.payloads) {
    const of = (backend: 'bundled' | 'coturn'): LadderResult[] => capacity[backend].filter((r) => r.payload === payload);
    const b = of('bundled');
    const c = of('coturn');
    const f = capacity.forwarder?.filter((r) => r.payload === payload) ?? [];
    const w = capacity.workers?.filter((r) => r.payload === payload) ?? [];
    const d = capacity.dgram?.filter((r) => r.payload === payload) ?? [];
    const pps = { bundled: summarize(b.map((r) => r.capacityPps)), coturn: summarize(c.map((r) => r.capacityPps)) };
    const ratio = ratioSummary(
      b.map((r) => r.capacityPps),
      c.map((r) => r.capacityPps),
    );
    const bound = (list: LadderResult[]): string =>
      list.some((r) => r.generatorBound) ? ' (generator could not send faster: at least)' : '';
    for (const [backend, list] of [
      ['coturn', c],
      ['bundled', b],
      ['dgram', d],
      ['workers', w],
      ['forwarder', f],
    ] as const) {
      if (!list.length) continue;
      const label = backendLabel(backend, String(data.workerCount ?? 'one per core'));
      const generatorUs = summarize(list.map((r) => r.generatorCpuUsPerPacket ?? Number.NaN));
      if (generatorUs.rounds) generatorCost.push(`${label} ${payload} B ${fmtSummary(generatorUs)}`);
      rows.push([
        `${payload} B`,
        label,
        `${fmtSummary(summarize(list.map((r) => r.capacityPps)))}${bound(list)}`,
        fmtSummary(summarize(list.map((r) => r.mbps))),
        fmtSummary(summarize(list.map((r) => r.cpuUsPerPacket))),
        fmtSummary(summarize(list.map((r) => 1e6 / r.cpuUsPerPacket))),
        fmtSummary(summarize(list.map((r) => relayCpuAtFirstLoss(r, options) * 100))),
        dropsAtFirstLoss(list),
      ]);
      if (summarize(list.map((r) => relayCpuAtFirstLoss(r, options))).median < RELAY_BUSY) {
        const firsts = list
          .map((l) => l.steps.filter((s) => !s.ok).sort((x, y) => x.offered - y.offered)[0])
          .filter((s): s is TurnStep => s?.relayDrops !== undefined);
        const where =
          firsts.length === 0
            ? 'drop counters not recorded in this run'
            : summarize(firsts.map((s) => s.generatorDrops ?? 0)).median > summarize(firsts.map((s) => s.relayDrops ?? 0)).median
              ? "dropped on the load generator's sockets: a lower bound"
              : "dropped on the relay's own sockets: its limit under this bursty load";
        relayIdleAtLoss.push(`${backend === 'bundled' ? 'the bundled relay' : label} at ${payload} B (${where})`);
      }
    }
    const perCpuC = summarize(c.map((r) => 1e6 / r.cpuUsPerPacket));
    const perCpuB = summarize(b.map((r) => 1e6 / r.cpuUsPerPacket));
    series[0]?.values.push(perCpuC.median);
    series[0]?.mins.push(perCpuC.min);
    series[0]?.maxs.push(perCpuC.max);
    series[1]?.values.push(perCpuB.median);
    series[1]?.mins.push(perCpuB.min);
    series[1]?.maxs.push(perCpuB.max);
    const perCpuF = summarize(f.map((r) => 1e6 / r.cpuUsPerPacket));
    series[2]?.values.push(perCpuF.median);
    series[2]?.mins.push(perCpuF.min);
    series[2]?.maxs.push(perCpuF.max);
    const perCpuW = summarize(w.map((r) => 1e6 / r.cpuUsPerPacket));
    series[3]?.values.push(perCpuW.median);
    series[3]?.mins.push(perCpuW.min);
    series[3]?.maxs.push(perCpuW.max);
    headline.push({
      metric: `TURN packets/s at < 1% loss, ${payload} B (baseline: coturn)`,
      baseline: fmt(pps.coturn.median),
      switchboard: fmt(pps.bundled.median),
      ratio: fmtSummary(ratio, 2),
      target: '',
      verdict: '',
    });
    const perCpu = { bundled: b.map((r) => 1e6 / r.cpuUsPerPacket), coturn: c.map((r) => 1e6 / r.cpuUsPerPacket) };
    headline.push({
      metric: `TURN packets per relay CPU-second, ${payload} B (baseline: coturn)`,
      baseline: fmt(summarize(perCpu.coturn).median),
      switchboard: fmt(summarize(perCpu.bundled).median),
      ratio: fmtSummary(ratioSummary(perCpu.bundled, perCpu.coturn), 2),
      target: '',
      verdict: '',
    });
    if (f.length) {
      const perCpuForwarder = f.map((r) => 1e6 / r.cpuUsPerPacket);
      headline.push({
        metric: `TURN packets/s at < 1% loss, ${payload} B (baseline: bare Node forwarder, no TURN)`,
        baseline: fmt(summarize(f.map((r) => r.capacityPps)).median),
        switchboard: fmt(pps.bundled.median),
        ratio: fmtSummary(
          ratioSummary(
            b.map((r) => r.capacityPps),
            f.map((r) => r.capacityPps),
          ),
          2,
        ),
        target: '',
        verdict: '',
      });
      headline.push({
        metric: `TURN packets per relay CPU-second, ${payload} B (baseline: bare Node forwarder, no TURN)`,
        baseline: fmt(summarize(perCpuForwarder).median),
        switchboard: fmt(summarize(perCpu.bundled).median),
        ratio: fmtSummary(ratioSummary(perCpu.bundled, perCpuForwarder), 2),
        target: '',
        verdict: '',
      });
      if (w.length) {
        const perCpuWorkers = w.map((r) => 1e6 / r.cpuUsPerPacket);
        const perCpuRatio = ratioSummary(perCpuWorkers, perCpuForwarder);
        // Each at its own capacity; the target is judged at an equal rate (below), where the issue set it.
        const atEqualRate = data.equalRate?.length ? '' : '>= 0.9x';
        headline.push({
          metric: `TURN packets per relay CPU-second, ${payload} B, ${data.workerCount ?? 'N'} relay workers, each at its capacity (baseline: bare Node forwarder, no TURN)`,
          baseline: fmt(summarize(perCpuForwarder).median),
          switchboard: fmt(summarize(perCpuWorkers).median),
          ratio: fmtSummary(perCpuRatio, 2),
          target: atEqualRate,
          verdict: atEqualRate ? verdict(perCpuRatio.median, 0.9, 'atLeast') : '',
        });
      }
    }
    if (w.length) {
      const scaling = ratioSummary(
        w.map((r) => r.capacityPps),
        b.map((r) => r.capacityPps),
      );
      // Before native I/O, 1 relay worker was the single thread the target is set against; since, that thread is the dgram one.
      headline.push({
        metric: `TURN packets/s at < 1% loss, ${payload} B, ${data.workerCount ?? 'N'} relay workers (baseline: 1 relay worker)`,
        baseline: fmt(pps.bundled.median),
        switchboard: fmt(summarize(w.map((r) => r.capacityPps)).median),
        ratio: fmtSummary(scaling, 2),
        target: d.length ? '' : '>= 1.6x',
        verdict: d.length ? '' : verdict(scaling.median, 1.6, 'atLeast'),
      });
    }
    if (w.length && d.length) {
      const overDgram = ratioSummary(
        w.map((r) => r.capacityPps),
        d.map((r) => r.capacityPps),
      );
      headline.push({
        metric: `TURN packets/s at < 1% loss, ${payload} B, ${data.workerCount ?? 'N'} relay workers (baseline: the single-threaded relay on dgram)`,
        baseline: fmt(summarize(d.map((r) => r.capacityPps)).median),
        switchboard: fmt(summarize(w.map((r) => r.capacityPps)).median),
        ratio: fmtSummary(overDgram, 2),
        target: '>= 1.6x',
        verdict: verdict(overDgram.median, 1.6, 'atLeast'),
      });
    }
  }
  lines.push(
    markdownTable(
      [
        'payload',
        'relay',
        'delivered packets/s at < 1% loss',
        'Mbit/s (payload)',
        'relay CPU µs per packet',
        'packets per relay CPU-second',
        'relay CPU % of a core, first lossy step and its drain',
        'where the kernel dropped, first lossy step: relay / generator sockets (of packets lost)',
      ],
      rows,
    ),
  );
  lines.push('');
  lines.push(
    relayIdleAtLoss.length
      ? `Some relays were not busy when packets started to go missing (below ${RELAY_BUSY * 100}% of their core at the first step over 1% loss): ${relayIdleAtLoss.join('; ')}. There the relay's CPU was not the limit; the kernel's drop counters (\`/proc/net/udp\`) say whose receive buffers overflowed in the bursts that 1 ms pacing sends: the relay's, or the load generator's (${generatorProcess} on one core that sends and receives every packet). A capacity limited by the generator is a lower bound, and a ratio against it an upper bound. Where the relay sat near 100% of its core, the figure is the relay's own.`
      : `At the first step over 1% loss every relay was near 100% of its core: the capacities are the relays' own.`,
  );
  lines.push('');
  if (generatorCost.length) {
    lines.push(
      `The load generator's CPU µs per packet sent (its whole process, at the step each capacity comes from; the relay's figures above are per packet delivered): ${generatorCost.join('; ')}.`,
    );
    lines.push('');
  }
  if (data.equalRate?.length) lines.push(...renderEqualRate(data, data.equalRate, headline), '');
  const allocB = summarize(allocations.bundled.map((a) => a.perS));
  const allocC = summarize(allocations.coturn.map((a) => a.perS));
  const allocRatio = ratioSummary(
    allocations.bundled.map((a) => a.perS),
    allocations.coturn.map((a) => a.perS),
  );
  lines.push(
    `Allocations (${options.allocations} fresh clients per round, ${options.allocationConcurrency} in flight, each the full 401 challenge + signed Allocate, released afterwards): coturn ${fmtSummary(allocC)}/s (${fmtSummary(summarize(allocations.coturn.map((a) => a.cpuMsPerAllocation)))} CPU-ms each, allocation and release, from /proc's 10 ms clock ticks), bundled ${fmtSummary(allocB)}/s (${fmtSummary(summarize(allocations.bundled.map((a) => a.cpuMsPerAllocation)))} CPU-ms each); ratio ${fmtSummary(allocRatio, 2)}.${allocations.workers?.length ? ` With ${data.workerCount} relay workers: ${fmtSummary(summarize(allocations.workers.map((a) => a.perS)))}/s.` : ''} Failed allocations: ${[...allocations.bundled, ...allocations.coturn, ...(allocations.workers ?? [])].reduce((sum, a) => sum + a.failures, 0)}.`,
  );
  headline.push({
    metric: 'TURN allocations/s (baseline: coturn)',
    baseline: fmt(allocC.median),
    switchboard: fmt(allocB.median),
    ratio: fmtSummary(allocRatio, 2),
    target: '',
    verdict: '',
  });
  lines.push('');

  const idle = summarize(isolation.map((r) => r.idle.p99));
  const worker = summarize(isolation.map((r) => r.worker.p99));
  const inline = summarize(isolation.map((r) => r.inline.p99));
  const workerRatio = ratioSummary(
    isolation.map((r) => r.worker.p99),
    isolation.map((r) => r.idle.p99),
  );
  const inlineRatio = ratioSummary(
    isolation.map((r) => r.inline.p99),
    isolation.map((r) => r.idle.p99),
  );
  // The server with one relay worker per core: its own idle p99 is its baseline.
  const measuredWorkers = isolation.filter((r): r is Required<IsolationRound> => r.workers !== undefined && r.workersIdle !== undefined);
  const workersIdle = summarize(measuredWorkers.map((r) => r.workersIdle.p99));
  const workersUnder = summarize(measuredWorkers.map((r) => r.workers.p99));
  const workersRatio = ratioSummary(
    measuredWorkers.map((r) => r.workers.p99),
    measuredWorkers.map((r) => r.workersIdle.p99),
  );
  const workersRows = measuredWorkers.length
    ? [
        [
          `no TURN stream, server with ${data.workerCount} relay workers`,
          fmtSummary(summarize(measuredWorkers.map((r) => r.workersIdle.p50))),
          fmtSummary(workersIdle),
          '1.00x',
          '',
        ],
        [
          `stream via ${data.workerCount} relay workers (shipped default), over their ports`,
          fmtSummary(summarize(measuredWorkers.map((r) => r.workers.p50))),
          fmtSummary(workersUnder),
          fmtSummary(workersRatio, 2),
          `${fmt(summarize(measuredWorkers.map((r) => r.workers.streamLoss * 100)).median)}%`,
        ],
      ]
    : [];
  lines.push(`### Signaling latency while TURN relays a sustained stream`);
  lines.push('');
  lines.push(
    `A room of 2 exchanges ${options.signalRate} signals/s (300 B) for ${options.signalMs / 1000} s while a separate process streams ${results.streamRate} packets/s of ${options.streamPayload} B (${fmt((results.streamRate * options.streamPayload * 8) / 1e6)} Mbit/s: 60% of the bundled relay's measured capacity at that size, at most ${options.streamRate}) through the server's relay. Variants, rotated per round: no stream; the stream through the shipped relay (worker thread); the stream through the same relay code on the signaling thread (a counterfactual server built only for this benchmark)${measuredWorkers.length ? `; and on a server with ${data.workerCount} relay workers (the default, one per core): no stream, and the same stream spread over its workers' ports` : ''}. Server, stream and generator are not pinned here (the worker thread needs a core of its own to isolate anything).`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      ['variant', 'signaling p50 ms', 'signaling p99 ms', 'p99 / no stream', 'stream loss'],
      [
        ['no TURN stream', fmtSummary(summarize(isolation.map((r) => r.idle.p50))), fmtSummary(idle), '1.00x', ''],
        [
          'stream via the worker-thread relay (shipped)',
          fmtSummary(summarize(isolation.map((r) => r.worker.p50))),
          fmtSummary(worker),
          fmtSummary(workerRatio, 2),
          `${fmt(summarize(isolation.map((r) => r.worker.streamLoss * 100)).median)}%`,
        ],
        [
          'stream via a relay on the signaling thread (counterfactual)',
          fmtSummary(summarize(isolation.map((r) => r.inline.p50))),
          fmtSummary(inline),
          fmtSummary(inlineRatio, 2),
          `${fmt(summarize(isolation.map((r) => r.inline.streamLoss * 100)).median)}%`,
        ],
        ...workersRows,
      ],
    ),
  );
  headline.push({
    metric: 'signaling p99 ms: idle vs TURN stream (worker thread)',
    baseline: fmt(idle.median),
    switchboard: fmt(worker.median),
    ratio: fmtSummary(workerRatio, 2),
    target: '',
    verdict: '',
  });
  if (measuredWorkers.length)
    headline.push({
      metric: `signaling p99 ms: idle vs TURN stream (${data.workerCount} relay workers)`,
      baseline: fmt(workersIdle.median),
      switchboard: fmt(workersUnder.median),
      ratio: fmtSummary(workersRatio, 2),
      target: '',
      verdict: '',
    });
  headline.push({
    metric: 'signaling p99 ms: idle vs TURN stream (relay on signaling thread)',
    baseline: fmt(idle.median),
    switchboard: fmt(inline.median),
    ratio: fmtSummary(inlineRatio, 2),
    target: '',
    verdict: '',
  });

  const plots = [
    {
      file: 'turn-capacity.svg',
      title: 'TURN relay efficiency',
      svg: barChart({
        title: 'TURN: packets relayed per relay CPU-second (higher is better)',
        yLabel: 'packets / relay CPU-s',
        xLabel: 'ChannelData payload',
        categories: options.payloads.map((p) => `${p} B`),
        series: series.filter((s) => s.values.some((v) => Number.isFinite(v))),
      }),
    },
  ];
  return {
    name: 'turn',
    title: '4. TURN relay',
    machine,
    wallS,
    headline,
    markdown: lines.join('\n'),
    plots,
    data: { ...data, rounds, pin: meta.pin },
  };
}

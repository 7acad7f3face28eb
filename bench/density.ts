/**
 * 2. Connection density: idle authenticated clients on Switchboard vs idle clients on the
 * bare Socket.IO relay. For each size and round, on a fresh server per measurement (order
 * alternating by round): full GC, RSS and heap; connect N clients (a bounded number of
 * handshakes in flight), each joining a room of 4 (Switchboard: JWT handshake + `join`;
 * baseline: `join room`), spread over several 127.0.0.x source addresses with
 * engine.io-client's `localAddress`; then full GC again. RSS and heap per connection, and
 * handshakes+joins per second (wall) and per server CPU-second.
 *
 * Every socket takes a file descriptor on both sides. A size one process cannot hold (more
 * than BENCH_DENSITY_CLIENTS_PER_PROCESS, or than its open-files limit allows) is split over
 * child load generators (bench/servers/densityClients.ts) that connect contiguous batches of
 * the same clients with the same total in flight; the runner still takes the wall time and
 * the server's CPU. A size the server itself cannot hold (its limit is the runner's, which
 * may not be raised on some machines) is measured at the largest size that fits, and
 * labelled as such wherever it is printed.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RAISED_LIMITS, BenchTokens } from './lib/benchConfig.js';
import { profileMarkdown, summarizeProfile, type ProfileSummary } from './lib/profile.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { type BatchReport, type ClientBatch, connectBatch, roomOfClient, splitBatch } from './lib/idleClients.js';
import { LOAD_CPUS, machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess, ServerUsage } from './lib/ServerProcess.js';
import { closeClients, sleep, sourceAddresses, type Protocol } from './lib/signaling.js';
import { fmt, fmtRatio, fmtSummary, ratioSummary, summarize } from './lib/stats.js';
import { lineChart } from './lib/svg.js';
import type { Socket } from 'socket.io-client';

export interface DensityOptions {
  sizes: number[];
  roomSize: number;
  /** Handshakes+joins in flight at once. */
  concurrency: number;
  /** Number of 127.0.0.x source addresses (127.0.0.2 onwards). */
  sources: number;
  settleMs: number;
  /** A fresh server per measurement (clean memory baseline); the smoke run shares one. */
  freshServers: boolean;
  /** Clients connected under a CPU profile of each server (0: no profile). */
  profileClients: number;
  /** Most clients one load-generator process holds; larger sizes are split over child processes. */
  clientsPerProcess: number;
}

export function densityOptions(smoke: boolean): DensityOptions {
  // 20 clients in the runner's process, 40 split over 2 child generators: both paths stay tested.
  if (smoke)
    return {
      sizes: [20, 40],
      roomSize: 4,
      concurrency: 10,
      sources: 2,
      settleMs: 100,
      freshServers: false,
      profileClients: 0,
      clientsPerProcess: 20,
    };
  return {
    sizes: envList('BENCH_DENSITY_SIZES', [5000, 10000, 20000]),
    roomSize: envNumber('BENCH_DENSITY_ROOM', 4),
    concurrency: envNumber('BENCH_DENSITY_CONCURRENCY', 50),
    sources: envNumber('BENCH_DENSITY_SOURCES', 4),
    settleMs: envNumber('BENCH_DENSITY_SETTLE_MS', 1000),
    freshServers: true,
    profileClients: envNumber('BENCH_DENSITY_PROFILE_CLIENTS', 1000),
    clientsPerProcess: envNumber('BENCH_DENSITY_CLIENTS_PER_PROCESS', 10_000),
  };
}

/** Descriptors a load-generator process keeps for itself (modules, IPC, stdio), besides one per client. */
const GENERATOR_OWN_DESCRIPTORS = 500;
/** Headroom a server keeps for its own descriptors besides one per client (an idle server holds a few dozen). */
const SERVER_OWN_DESCRIPTORS = 200;

/** How a requested size is measured on this machine. */
export interface SizePlan {
  /** Clients actually connected. */
  size: number;
  /** The size asked for, when it did not fit the server's open-files limit. */
  requested?: number;
  /** Load-generator processes (1: the runner itself). */
  processes: number;
}

/**
 * Fits a size to the open-files limit (the runner's, which the servers and child generators
 * inherit): at most the limit less the server's own descriptors, split over as many
 * generator processes as it takes to keep each within `clientsPerProcess` and the limit.
 */
export function planSize(requested: number, clientsPerProcess: number, openFilesLimit: number): SizePlan {
  const size = Math.min(requested, openFilesLimit - SERVER_OWN_DESCRIPTORS);
  const perProcess = Math.min(clientsPerProcess, openFilesLimit - GENERATOR_OWN_DESCRIPTORS);
  return { size, ...(size < requested ? { requested } : {}), processes: Math.ceil(size / perProcess) };
}

/** A size as printed: the clients connected, and why when it is not the size asked for. */
export function sizeLabel(result: { size: number; requested?: number }, openFilesLimit: number | undefined): string {
  return result.requested === undefined
    ? String(result.size)
    : `${result.size} (${result.requested} does not fit the ${openFilesLimit ?? '?'}-descriptor limit)`;
}

export interface DensityMeasurement {
  clients: number;
  rssPerConn: number;
  heapPerConn: number;
  /** Handshakes+joins per wall second. */
  perS: number;
  /** Handshakes+joins per server CPU-second. */
  perCpuS: number;
  /** Connections per source address as the server saw them. */
  addresses: Record<string, number>;
  /** Per load-generator process (one: the runner itself), its clients and its wall time. */
  loadGenerators?: BatchReport[];
}

let runCounter = 0;

/** Generous: each client has its own 20 s timeouts; this only catches a generator that hangs. */
const GENERATOR_CONNECT_TIMEOUT_MS = 30 * 60_000;

/**
 * One measurement. With `generators`, the clients are split over those child processes;
 * without, this process connects them all.
 */
export async function measureDensity(
  server: ServerProcess,
  protocol: Protocol,
  clients: number,
  options: DensityOptions,
  tokens: BenchTokens,
  { generators = [], profileFile }: { generators?: ServerProcess[]; profileFile?: string } = {},
): Promise<DensityMeasurement> {
  const run = `${process.pid}-${++runCounter}`;
  const whole: ClientBatch = {
    target: { protocol, url: server.url },
    roomPrefix: `dense-${run}`,
    roomSize: options.roomSize,
    first: 0,
    count: clients,
    tokens: [],
    sources: sourceAddresses(options.sources),
    concurrency: options.concurrency,
  };
  // Tokens are minted before the clock starts: minting is the issuer's work, not the server's.
  if (protocol === 'switchboard') whole.tokens = Array.from({ length: clients }, (_, i) => tokens.mint(roomOfClient(whole, i)));
  const batches = generators.length ? splitBatch(whole, generators.length) : [];
  const split = batches.map((batch, i) => ({ batch, generator: generators[i] as ServerProcess }));
  // Each generator gets its clients and tokens (megabytes over IPC) before the clock starts too.
  await Promise.all(split.map(({ batch, generator }) => generator.request('loadClients', batch)));
  await server.gc();
  await sleep(100);
  await server.gc();
  const before: ServerUsage = await server.usage();
  const sockets: Socket[] = [];
  try {
    if (profileFile) await server.request('profileStart');
    const cpu0 = server.procCpuSeconds();
    const t0 = performance.now();
    const loadGenerators = split.length
      ? await Promise.all(
          split.map(({ generator }) => generator.request<BatchReport>('connectClients', undefined, GENERATOR_CONNECT_TIMEOUT_MS)),
        )
      : [await connectBatch(whole, sockets)];
    const t1 = performance.now();
    const cpu1 = server.procCpuSeconds();
    if (profileFile) await server.request('profileStop', profileFile);
    await sleep(options.settleMs);
    await server.gc();
    const after: ServerUsage = await server.usage();
    const addresses = await server.request<Record<string, number>>('addresses');
    return {
      clients,
      rssPerConn: (after.rss - before.rss) / clients,
      heapPerConn: (after.heapUsed - before.heapUsed) / clients,
      perS: clients / ((t1 - t0) / 1000),
      perCpuS: cpu1 > cpu0 ? clients / (cpu1 - cpu0) : Number.NaN,
      addresses,
      loadGenerators,
    };
  } finally {
    if (split.length) await Promise.all(split.map(({ generator }) => generator.request('closeClients', 300)));
    else await closeClients(sockets, 300);
  }
}

/**
 * Child load generators (bench/servers/densityClients.ts), started when a size first needs
 * them and kept for the rest of the run: warm from one measurement to the next, as the
 * runner is when it holds the clients itself, and not started again for every measurement.
 */
class GeneratorPool {
  private readonly started: ServerProcess[] = [];

  constructor(private readonly ctx: BenchContext) {}

  /** Generators for a size split over `processes` (none when the runner holds every client). */
  async take(processes: number): Promise<ServerProcess[]> {
    if (processes <= 1) return [];
    const missing = processes - this.started.length;
    // On the load generator's core, with the runner, when pinned.
    if (missing > 0)
      this.started.push(
        ...(await Promise.all(
          Array.from({ length: missing }, () => this.ctx.servers.fresh('density-clients', {}, { cpus: this.ctx.pin ? LOAD_CPUS : null })),
        )),
      );
    return this.started.slice(0, processes);
  }

  async close(): Promise<void> {
    await Promise.all(this.started.splice(0).map((generator) => this.ctx.servers.release(generator)));
  }
}

export interface SizeResult {
  /** Clients connected. */
  size: number;
  /** The size asked for, when it did not fit the server's open-files limit. */
  requested?: number;
  /** Load-generator processes the clients were split over (1 or absent: the runner alone). */
  processes?: number;
  baseline: DensityMeasurement[];
  switchboard: DensityMeasurement[];
}

export async function runDensity(ctx: BenchContext, options: DensityOptions = densityOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  const openFilesLimit = softOpenFilesLimit();
  const results: SizeResult[] = [];
  for (const requested of options.sizes) {
    const plan = planSize(requested, options.clientsPerProcess, openFilesLimit);
    if (plan.requested !== undefined)
      ctx.log(
        `density: ${sizeLabel(plan, openFilesLimit)}: a server holds one descriptor per client besides its own, within the open-files limit it inherits from this process; measuring ${plan.size}`,
      );
    if (results.some((r) => r.size === plan.size)) continue;
    results.push({
      size: plan.size,
      ...(plan.requested !== undefined ? { requested: plan.requested } : {}),
      processes: plan.processes,
      baseline: [],
      switchboard: [],
    });
  }
  const generators = new GeneratorPool(ctx);
  let profiles: { baseline: ProfileSummary; switchboard: ProfileSummary } | null = null;
  try {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const result of results) {
        const order = round % 2 === 0 ? (['baseline', 'switchboard'] as const) : (['switchboard', 'baseline'] as const);
        for (const which of order) {
          const server = options.freshServers ? await ctx.servers.fresh(which) : await ctx.servers.get(which);
          try {
            const split = await generators.take(result.processes ?? 1);
            const m = await measureDensity(server, which === 'baseline' ? 'bare' : 'switchboard', result.size, options, tokens, {
              generators: split,
            });
            result[which].push(m);
            const splitNote = split.length
              ? `, ${split.length} generator processes (${(m.loadGenerators ?? []).map((g) => `${g.clients} in ${fmt(g.wallS)} s`).join(', ')})`
              : '';
            ctx.log(
              `density round ${round + 1}/${ctx.rounds} ${sizeLabel(result, openFilesLimit)} clients ${which}: ${fmt(m.rssPerConn / 1024)} KiB RSS/conn, ${fmt(m.heapPerConn / 1024)} KiB heap/conn, ${fmt(m.perS)} handshakes+joins/s, ${fmt(m.perCpuS)} per CPU-s, sources ${Object.keys(m.addresses).length}${splitNote}`,
            );
          } finally {
            if (options.freshServers) await ctx.servers.release(server);
          }
        }
      }
    }
    if (options.profileClients > 0) {
      const summaries: Partial<Record<'baseline' | 'switchboard', ProfileSummary>> = {};
      const plan = planSize(options.profileClients, options.clientsPerProcess, openFilesLimit);
      for (const which of ['baseline', 'switchboard'] as const) {
        const server = await ctx.servers.fresh(which);
        const file = join(tmpdir(), `switchboard-bench-density-${which}-${process.pid}.cpuprofile`);
        try {
          await measureDensity(server, which === 'baseline' ? 'bare' : 'switchboard', plan.size, options, tokens, {
            generators: await generators.take(plan.processes),
            profileFile: file,
          });
          summaries[which] = summarizeProfile(file);
        } finally {
          rmSync(file, { force: true });
          await ctx.servers.release(server);
        }
      }
      profiles = summaries as { baseline: ProfileSummary; switchboard: ProfileSummary };
    }
  } finally {
    await generators.close();
  }
  // JSON has no Infinity: the limit is stored only where there is one.
  const limit = Number.isFinite(openFilesLimit) ? { openFilesLimit } : {};
  return renderDensity(
    { options, results, profiles, rounds: ctx.rounds, ...limit },
    { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin },
  );
}

/**
 * The soft "Max open files" of this process (Linux), or Infinity where it cannot be read.
 * Servers and child generators are spawned from this process and inherit it.
 */
function softOpenFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.split(/\s{2,}/)[1]) : NaN;
    return Number.isFinite(soft) ? soft : Infinity;
  } catch {
    return Infinity;
  }
}

export interface DensityData {
  options: DensityOptions;
  /** This process's open-files limit (inherited by the servers), where there is one. */
  openFilesLimit?: number;
  results: SizeResult[];
  profiles: { baseline: ProfileSummary; switchboard: ProfileSummary } | null;
  rounds?: number;
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/density.json). */
export function renderDensity(data: DensityData, meta: RenderMeta): Section {
  const { options, results, profiles } = data;
  const { machine, wallS } = meta;
  const rounds = data.rounds ?? results[0]?.baseline.length ?? meta.rounds;
  const headline: HeadlineRow[] = [];
  const rows: string[][] = [];
  const kib = (values: number[]): number[] => values.map((v) => v / 1024);
  const summaries = results.map((r) => {
    const b = r.baseline;
    const s = r.switchboard;
    const out = {
      size: r.size,
      rssB: summarize(kib(b.map((m) => m.rssPerConn))),
      rssS: summarize(kib(s.map((m) => m.rssPerConn))),
      heapB: summarize(kib(b.map((m) => m.heapPerConn))),
      heapS: summarize(kib(s.map((m) => m.heapPerConn))),
      rateB: summarize(b.map((m) => m.perS)),
      rateS: summarize(s.map((m) => m.perS)),
      cpuB: summarize(b.map((m) => m.perCpuS)),
      cpuS: summarize(s.map((m) => m.perCpuS)),
      rssRatio: ratioSummary(
        s.map((m) => m.rssPerConn),
        b.map((m) => m.rssPerConn),
      ),
      rateRatio: ratioSummary(
        s.map((m) => m.perS),
        b.map((m) => m.perS),
      ),
      cpuRatio: ratioSummary(
        s.map((m) => m.perCpuS),
        b.map((m) => m.perCpuS),
      ),
      sources: Math.max(0, ...[...b, ...s].map((m) => Object.keys(m.addresses).length)),
    };
    const label = sizeLabel(r, data.openFilesLimit);
    headline.push({
      metric: `RSS KiB per idle client, ${label}`,
      baseline: fmt(out.rssB.median),
      switchboard: fmt(out.rssS.median),
      ratio: fmtSummary(out.rssRatio, 2),
      target: '',
      verdict: '',
    });
    headline.push({
      metric: `handshakes+joins per CPU-s, ${label}`,
      baseline: fmt(out.cpuB.median),
      switchboard: fmt(out.cpuS.median),
      ratio: fmtSummary(out.cpuRatio, 2),
      target: '',
      verdict: '',
    });
    rows.push([
      label,
      `${fmtSummary(out.rssB)} / ${fmtSummary(out.rssS)}`,
      fmtRatio(out.rssRatio.median),
      `${fmtSummary(out.heapB)} / ${fmtSummary(out.heapS)}`,
      `${fmtSummary(out.rateB)} / ${fmtSummary(out.rateS)}`,
      fmtRatio(out.rateRatio.median),
      `${fmtSummary(out.cpuB)} / ${fmtSummary(out.cpuS)}`,
      fmtRatio(out.cpuRatio.median),
      String(out.sources),
    ]);
    return out;
  });
  const lines: string[] = [];
  lines.push(
    `Per size and round, a fresh server process per measurement${options.freshServers ? '' : ' (shared in this run)'}; baseline and Switchboard alternate which goes first. N clients connect with at most ${options.concurrency} handshakes+joins in flight, each joining a room of ${options.roomSize} (Switchboard: a JWT in the handshake auth, verified, revocation and tenant looked up, then \`join\`, which announces the peer to the room; baseline: no auth, \`join\` = \`socket.join(room)\` + ack + \`peer_joined\` to the room). The clients spread over ${options.sources} source addresses (127.0.0.2 onwards) with engine.io-client's \`localAddress\` option, which works: the server saw ${Math.max(...summaries.map((s) => s.sources))} distinct client addresses. Switchboard's handshake limit per IP is raised (${'RATE_LIMIT_HANDSHAKES_PER_MIN'}=${RAISED_LIMITS.RATE_LIMIT_HANDSHAKES_PER_MIN}). Memory is the server's RSS and V8 heap after a full GC, before and after, divided by N. Tokens are minted by the load generator before the clock starts. ${rounds} rounds, median (min–max); ratios are the ratio of the medians, with the range of the per-round ratios. Sizes default to ${densityOptions(false).sizes.join(', ')} (BENCH_DENSITY_SIZES); every client takes a descriptor in the server and in a load generator, and \`npm run bench\` raises \`ulimit -n\` to 65536 first where it may.${splitSentence(data)}${cappedSentences(data)}`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      [
        'clients',
        'RSS KiB/conn b / S',
        'RSS ratio',
        'heap KiB/conn b / S',
        'handshakes+joins/s b / S',
        'rate ratio',
        'per server CPU-s b / S',
        'CPU ratio',
        'source addresses seen',
      ],
      rows,
    ),
  );
  lines.push('');
  lines.push(
    'No target is set for density; what a Switchboard connection costs over a bare Socket.IO socket is its authenticated identity, its peer record, the room bookkeeping and the per-socket rate limiter entries. Handshakes+joins per wall second are bounded by the load generator (one core, split or not; it runs the same socket.io-client handshake work per client); per server CPU-second is the server-side cost.',
  );
  if (profiles) {
    lines.push('');
    lines.push(`### Where the handshake CPU goes (V8 CPU profile of each server while ${options.profileClients} clients connect and join)`);
    lines.push('');
    lines.push(profileMarkdown(profiles.baseline, profiles.switchboard));
  }
  const plots = [
    {
      file: 'density-rss.svg',
      title: 'Server RSS per idle connection',
      svg: lineChart({
        title: 'Server RSS per idle connection (lower is better)',
        xLabel: 'idle clients',
        yLabel: 'RSS KiB per connection',
        series: [
          { name: 'bare Socket.IO', points: summaries.map((s) => ({ x: s.size, y: s.rssB.median, yMin: s.rssB.min, yMax: s.rssB.max })) },
          { name: 'Switchboard', points: summaries.map((s) => ({ x: s.size, y: s.rssS.median, yMin: s.rssS.min, yMax: s.rssS.max })) },
        ],
      }),
    },
  ];
  return {
    name: 'density',
    title: '2. Connection density',
    machine,
    wallS,
    headline,
    markdown: lines.join('\n'),
    plots: summaries.length > 1 ? plots : [],
    data: { ...data, rounds },
  };
}

/** How sizes split over child load generators were measured (empty when none was). */
function splitSentence(data: DensityData): string {
  const split = data.results.filter((r) => (r.processes ?? 1) > 1);
  if (!split.length) return '';
  const which = split.map((r) => `${r.size} over ${r.processes}`).join(', ');
  return ` Sizes above ${data.options.clientsPerProcess} clients are split over child load-generator processes (${which}; on the load generator's core when pinned): each connects a contiguous batch of whole rooms with its share of the ${data.options.concurrency} handshakes+joins in flight, so the total in flight and every client's room, token and source address are what one process would use; the runner still takes the wall time (from the start signal to the last batch's report) and the server's CPU.`;
}

/** Why a size was measured below the size asked for (empty when none was). */
function cappedSentences(data: DensityData): string {
  return data.results
    .filter((r) => r.requested !== undefined)
    .map(
      (r) =>
        ` **${r.size} clients, not ${r.requested}**: ${r.requested} does not fit this machine's per-process limit of ${data.openFilesLimit ?? '?'} open files, the server's own descriptors included (it holds one per client besides its own), and the limit could not be raised (\`npm run bench\` raises \`ulimit -n\` where it may; on this machine it is refused even to root); ${r.size} is the limit less ${SERVER_OWN_DESCRIPTORS} of headroom. ${r.requested} needs a machine where the limit can be raised.`,
    )
    .join('');
}

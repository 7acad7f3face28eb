/**
 * 2. Connection density: idle authenticated clients on Switchboard vs idle clients on the
 * bare Socket.IO relay. For each size and round, on a fresh server per measurement (order
 * alternating by round): full GC, RSS and heap; connect N clients (a bounded number of
 * handshakes in flight), each joining a room of 4 (Switchboard: JWT handshake + `join`;
 * baseline: `join room`), spread over several 127.0.0.x source addresses with
 * engine.io-client's `localAddress`; then full GC again. RSS and heap per connection, and
 * handshakes+joins per second (wall) and per server CPU-second.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RAISED_LIMITS, BenchTokens } from './lib/benchConfig.js';
import { profileMarkdown, summarizeProfile, type ProfileSummary } from './lib/profile.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess, ServerUsage } from './lib/ServerProcess.js';
import { closeClients, connectAndJoin, sleep, sourceAddresses, type Protocol } from './lib/signaling.js';
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
}

export function densityOptions(smoke: boolean): DensityOptions {
  if (smoke) return { sizes: [40], roomSize: 4, concurrency: 10, sources: 2, settleMs: 100, freshServers: false, profileClients: 0 };
  return {
    sizes: envList('BENCH_DENSITY_SIZES', [5000, 10000, 20000]),
    roomSize: envNumber('BENCH_DENSITY_ROOM', 4),
    concurrency: envNumber('BENCH_DENSITY_CONCURRENCY', 50),
    sources: envNumber('BENCH_DENSITY_SOURCES', 4),
    settleMs: envNumber('BENCH_DENSITY_SETTLE_MS', 1000),
    freshServers: true,
    profileClients: envNumber('BENCH_DENSITY_PROFILE_CLIENTS', 1000),
  };
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
}

let runCounter = 0;

export async function measureDensity(server: ServerProcess, protocol: Protocol, clients: number, options: DensityOptions, tokens: BenchTokens, profileFile?: string): Promise<DensityMeasurement> {
  const run = `${process.pid}-${++runCounter}`;
  const sources = sourceAddresses(options.sources);
  // Tokens are minted before the clock starts: minting is the issuer's work, not the server's.
  const minted = protocol === 'switchboard' ? Array.from({ length: clients }, (_, i) => tokens.mint(`dense-${run}-${Math.floor(i / options.roomSize)}`)) : [];
  await server.gc();
  await sleep(100);
  await server.gc();
  const before: ServerUsage = await server.usage();
  const sockets: Socket[] = [];
  try {
    if (profileFile) await server.request('profileStart');
    const cpu0 = server.procCpuSeconds();
    const t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < clients) {
        const i = next++;
        const room = `dense-${run}-${Math.floor(i / options.roomSize)}`;
        const joined = await connectAndJoin({ protocol, url: server.url }, room, minted[i] ?? tokens, { localAddress: sources.length ? sources[i % sources.length] : undefined });
        sockets.push(joined.socket);
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, clients) }, worker));
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
    };
  } finally {
    await closeClients(sockets, 300);
  }
}

export interface SizeResult {
  size: number;
  baseline: DensityMeasurement[];
  switchboard: DensityMeasurement[];
}

export async function runDensity(ctx: BenchContext, options: DensityOptions = densityOptions(ctx.smoke)): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(ctx.pin);
  const tokens = new BenchTokens();
  // The load generator holds one descriptor per client (plus a few hundred of its own).
  const openFilesLimit = softOpenFilesLimit();
  const fits = (size: number) => size + 500 <= openFilesLimit;
  const skippedSizes = options.sizes.filter((size) => !fits(size));
  if (skippedSizes.length) ctx.log(`density: skipping ${skippedSizes.join(', ')} clients: the open-files limit here is ${openFilesLimit} and cannot be raised (ulimit -n)`);
  const results: SizeResult[] = options.sizes.filter(fits).map((size) => ({ size, baseline: [], switchboard: [] }));
  for (let round = 0; round < ctx.rounds; round++) {
    for (const result of results) {
      const order = round % 2 === 0 ? (['baseline', 'switchboard'] as const) : (['switchboard', 'baseline'] as const);
      for (const which of order) {
        const server = options.freshServers ? await ctx.servers.fresh(which) : await ctx.servers.get(which);
        try {
          const m = await measureDensity(server, which === 'baseline' ? 'bare' : 'switchboard', result.size, options, tokens);
          result[which].push(m);
          ctx.log(
            `density round ${round + 1}/${ctx.rounds} ${result.size} clients ${which}: ${fmt(m.rssPerConn / 1024)} KiB RSS/conn, ${fmt(m.heapPerConn / 1024)} KiB heap/conn, ${fmt(m.perS)} handshakes+joins/s, ${fmt(m.perCpuS)} per CPU-s, sources ${Object.keys(m.addresses).length}`,
          );
        } finally {
          if (options.freshServers) await ctx.servers.release(server);
        }
      }
    }
  }
  let profiles: { baseline: ProfileSummary; switchboard: ProfileSummary } | null = null;
  if (options.profileClients > 0) {
    const summaries: Partial<Record<'baseline' | 'switchboard', ProfileSummary>> = {};
    for (const which of ['baseline', 'switchboard'] as const) {
      const server = await ctx.servers.fresh(which);
      const file = join(tmpdir(), `switchboard-bench-density-${which}-${process.pid}.cpuprofile`);
      try {
        await measureDensity(server, which === 'baseline' ? 'bare' : 'switchboard', options.profileClients, options, tokens, file);
        summaries[which] = summarizeProfile(file);
      } finally {
        rmSync(file, { force: true });
        await ctx.servers.release(server);
      }
    }
    profiles = summaries as { baseline: ProfileSummary; switchboard: ProfileSummary };
  }
  const skipped = skippedSizes.length ? { sizes: skippedSizes, openFilesLimit } : undefined;
  return renderDensity({ options, results, profiles, rounds: ctx.rounds, ...(skipped ? { skipped } : {}) }, { machine, wallS: (performance.now() - started) / 1000, rounds: ctx.rounds, pin: ctx.pin });
}

/** The soft "Max open files" of this process (Linux), or Infinity where it cannot be read. */
function softOpenFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line ? Number(line.split(/\s{2,}/)[1]) : NaN;
    return Number.isFinite(soft) ? soft : Infinity;
  } catch {
    return Infinity;
  }
}

export interface DensityData {
  options: DensityOptions;
  /** Sizes left out because this process may not open enough files (one descriptor per client). */
  skipped?: { sizes: number[]; openFilesLimit: number };
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
      rssRatio: ratioSummary(s.map((m) => m.rssPerConn), b.map((m) => m.rssPerConn)),
      rateRatio: ratioSummary(s.map((m) => m.perS), b.map((m) => m.perS)),
      cpuRatio: ratioSummary(s.map((m) => m.perCpuS), b.map((m) => m.perCpuS)),
      sources: Math.max(0, ...[...b, ...s].map((m) => Object.keys(m.addresses).length)),
    };
    headline.push({ metric: `RSS KiB per idle client, ${r.size}`, baseline: fmt(out.rssB.median), switchboard: fmt(out.rssS.median), ratio: fmtSummary(out.rssRatio, 2), target: '', verdict: '' });
    headline.push({ metric: `handshakes+joins per CPU-s, ${r.size}`, baseline: fmt(out.cpuB.median), switchboard: fmt(out.cpuS.median), ratio: fmtSummary(out.cpuRatio, 2), target: '', verdict: '' });
    rows.push([
      String(r.size),
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
    `Per size and round, a fresh server process per measurement${options.freshServers ? '' : ' (shared in this run)'}; baseline and Switchboard alternate which goes first. N clients connect with at most ${options.concurrency} handshakes+joins in flight, each joining a room of ${options.roomSize} (Switchboard: a JWT in the handshake auth, verified, revocation and tenant looked up, then \`join\`, which announces the peer to the room; baseline: no auth, \`join\` = \`socket.join(room)\` + ack + \`peer_joined\` to the room). The clients spread over ${options.sources} source addresses (127.0.0.2 onwards) with engine.io-client's \`localAddress\` option, which works: the server saw ${Math.max(...summaries.map((s) => s.sources))} distinct client addresses. Switchboard's handshake limit per IP is raised (${'RATE_LIMIT_HANDSHAKES_PER_MIN'}=${RAISED_LIMITS.RATE_LIMIT_HANDSHAKES_PER_MIN}). Memory is the server's RSS and V8 heap after a full GC, before and after, divided by N. Tokens are minted by the load generator before the clock starts. ${rounds} rounds, median (min–max); ratios are the ratio of the medians, with the range of the per-round ratios. Sizes default to ${densityOptions(false).sizes.join(', ')} (BENCH_DENSITY_SIZES); \`npm run bench\` raises \`ulimit -n\` to 65536 first, since the load generator holds one descriptor per client.${data.skipped ? ` **Not measured here: ${data.skipped.sizes.join(', ')} clients**: the load generator needs one descriptor per client, and this machine's open-files limit is ${data.skipped.openFilesLimit} and may not be raised (\`ulimit -n\` is refused even to root); run it where the limit can be raised, or split the clients over several generator processes.` : ''}`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      ['clients', 'RSS KiB/conn b / S', 'RSS ratio', 'heap KiB/conn b / S', 'handshakes+joins/s b / S', 'rate ratio', 'per server CPU-s b / S', 'CPU ratio', 'source addresses seen'],
      rows,
    ),
  );
  lines.push('');
  lines.push(
    'No target is set for density; what a Switchboard connection costs over a bare Socket.IO socket is its authenticated identity, its peer record, the room bookkeeping and the per-socket rate limiter entries. Handshakes+joins per wall second are bounded by the single-process load generator (it runs the same socket.io-client handshake work per client); per server CPU-second is the server-side cost.',
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
  return { name: 'density', title: '2. Connection density', machine, wallS, headline, markdown: lines.join('\n'), plots: summaries.length > 1 ? plots : [], data: { ...data, rounds } };
}

/**
 * `npm run bench [-- name ...]`: runs the benchmarks (all, or the named ones: relay, density,
 * join, turn, topology, simulcast, bundle, cluster, data), prints a summary table, and rewrites bench/RESULTS.md and
 * bench/results/. `npm run bench -- --render` only rebuilds RESULTS.md and the plots from
 * the stored bench/results/*.json (after a change to how results are presented). Servers run in child processes pinned to core 0 and this process (the load
 * generator) to core 1 when taskset and two cores are available (BENCH_PIN=0 turns that off).
 * Knobs: BENCH_ROUNDS (3), BENCH_BROWSER=0 skips the browser benchmark, and per-benchmark
 * BENCH_* variables documented in bench/README.md.
 */
import { renderBundle, runBundle, type BundleResult } from './bundle.js';
import { redisUnavailableReason, renderCluster, runCluster, type ClusterData } from './cluster.js';
import { renderData, runData, type DataResult } from './data.js';
import { ServerPool, type BenchContext } from './lib/context.js';
import { envFlag, envNumber } from './lib/env.js';
import { canPin, LOAD_CPUS, liveChildren, withAffinity } from './lib/processes.js';
import { HEADLINE_HEADER, headlineRows, textTable, type RenderMeta, type Section } from './lib/report.js';
import { loadSections, saveSection, writeResults } from './lib/results.js';
import { renderDensity, runDensity, type DensityData } from './density.js';
import { renderJoin, runJoin, type JoinData } from './join.js';
import { renderRelay, runRelay, type RelayData } from './relay.js';
import { renderSimulcast, runSimulcast, type SimulcastData } from './simulcast.js';
import { renderTopology, runTopology, type TopologyData } from './topology.js';
import { renderTurn, runTurn, type TurnData } from './turn.js';

const BENCHMARKS: Record<string, { run: (ctx: BenchContext) => Promise<Section>; pinGenerator: boolean }> = {
  relay: { run: runRelay, pinGenerator: true },
  density: { run: runDensity, pinGenerator: true },
  join: { run: runJoin, pinGenerator: true },
  // The TURN benchmark pins per part (its isolation part needs both cores for the server).
  turn: { run: runTurn, pinGenerator: false },
  // Browsers and the SFU share both cores; nothing is pinned.
  topology: { run: runTopology, pinGenerator: false },
  // The topology benchmark's SFU room with simulcast: downlink by tile size, in Chromium like topology.
  simulcast: { run: runSimulcast, pinGenerator: false },
  bundle: { run: runBundle, pinGenerator: false },
  // Two nodes and redis-server on the server core, the generator on the other.
  cluster: { run: runCluster, pinGenerator: true },
  // Two Chromium pages and the server share the cores, like topology.
  data: { run: runData, pinGenerator: false },
};

const RENDERERS: Record<string, (data: unknown, meta: RenderMeta) => Section> = {
  relay: (data, meta) => renderRelay(data as RelayData, meta),
  density: (data, meta) => renderDensity(data as DensityData, meta),
  join: (data, meta) => renderJoin(data as JoinData, meta),
  turn: (data, meta) => renderTurn(data as TurnData, meta),
  topology: (data, meta) => renderTopology(data as TopologyData, meta),
  'topology-video': (data, meta) => renderTopology(data as TopologyData, meta),
  simulcast: (data, meta) => renderSimulcast(data as SimulcastData, meta),
  bundle: (data, meta) => renderBundle(data as BundleResult, meta),
  cluster: (data, meta) => renderCluster(data as ClusterData, meta),
  data: (data, meta) => renderData(data as DataResult, meta),
};

/** Rebuilds every stored section with the current rendering code. */
function renderStored(): void {
  for (const stored of loadSections()) {
    const render = RENDERERS[stored.name];
    if (!render) continue;
    const storedPin = (stored.data as { pin?: boolean }).pin;
    const meta: RenderMeta = {
      machine: stored.machine,
      wallS: stored.wallS,
      rounds: 0,
      pin: storedPin ?? /^(server|relay) on core/.test(stored.machine.pinning),
    };
    saveSection(render(stored.data, meta));
    console.log(`re-rendered ${stored.name}`);
  }
  writeResults();
  console.log('wrote bench/RESULTS.md and bench/results/');
}

async function main(): Promise<void> {
  if (process.argv.includes('--render')) {
    renderStored();
    return;
  }
  const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = requested.filter((name) => !(name in BENCHMARKS));
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  const names = requested.length ? requested : Object.keys(BENCHMARKS);
  const pin = envFlag('BENCH_PIN', true) && canPin();
  const started = Date.now();
  const log = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const sections: Section[] = [];
  for (const name of names) {
    const bench = BENCHMARKS[name];
    if (!bench) continue;
    if ((name === 'topology' || name === 'simulcast' || name === 'data') && !envFlag('BENCH_BROWSER', true)) {
      log(`${name}: skipped (BENCH_BROWSER=0)`);
      continue;
    }
    const noRedis = name === 'cluster' ? redisUnavailableReason() : null;
    if (noRedis) {
      log(`cluster: skipped (${noRedis})`);
      continue;
    }
    const ctx: BenchContext = { rounds: envNumber('BENCH_ROUNDS', 3), pin, smoke: false, servers: new ServerPool(pin), log };
    const placement =
      name === 'topology' || name === 'simulcast' || name === 'bundle' || name === 'data'
        ? ''
        : ` (${ctx.rounds} rounds${pin ? ', server on core 0, load generator on core 1' : ', not pinned'})`;
    log(`${name}: starting${placement}`);
    try {
      const section = await withAffinity(pin && bench.pinGenerator ? LOAD_CPUS : null, () => bench.run(ctx));
      saveSection(section);
      writeResults();
      sections.push(section);
      log(`${name}: done in ${Math.round(section.wallS)} s`);
      console.log(`\n${section.title}\n${textTable(HEADLINE_HEADER, headlineRows(section.headline))}\n`);
    } catch (error) {
      log(`${name}: FAILED: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    } finally {
      await ctx.servers.closeAll();
    }
  }
  if (sections.length) {
    console.log(`\nSummary (${Math.round((Date.now() - started) / 1000)} s)\n`);
    console.log(
      textTable(
        ['benchmark', ...HEADLINE_HEADER],
        sections.flatMap((s) => headlineRows(s.headline).map((r) => [s.name, ...r])),
      ),
    );
    console.log('\nwrote bench/RESULTS.md and bench/results/');
  }
  const leftover = liveChildren();
  if (leftover.length) log(`warning: ${leftover.length} child process(es) still running; killing them`);
  for (const child of leftover) child.kill('SIGKILL');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

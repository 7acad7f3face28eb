/**
 * Smoke run of every benchmark in bench/ at tiny sizes (the browser one: a room of two in
 * each mode and one promotion, skipped where Chromium is missing): each
 * completes, produces sane numbers, renders its RESULTS.md section, and leaves no server,
 * coturn or stream process behind. Numbers are never asserted against targets here.
 */
import os from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runBundle, type BundleResult, type FileSize } from '../../bench/bundle.js';
import { redisUnavailableReason, runCluster, type ClusterData } from '../../bench/cluster.js';
import { runDensity, type DensityMeasurement } from '../../bench/density.js';
import { runJoin, type JoinMeasurement } from '../../bench/join.js';
import { turnEnv } from '../../bench/lib/benchConfig.js';
import { ServerPool, type BenchContext } from '../../bench/lib/context.js';
import { coturnUnavailableReason } from '../../bench/lib/coturn.js';
import { liveChildren, processAlive } from '../../bench/lib/processes.js';
import type { Section } from '../../bench/lib/report.js';
import { loadSections, renderResults, saveSection, writeResults } from '../../bench/lib/results.js';
import { runRelay, type RelayMeasurement } from '../../bench/relay.js';
import { renderTopology, runTopology, type TopologyData } from '../../bench/topology.js';
import { runTurn, type EqualRateStep, type LadderResult } from '../../bench/turn.js';
import { browserUnavailableReason } from '../helpers/browser.js';

const positive = (value: number, what: string): void => {
  expect(Number.isFinite(value) && value > 0, `${what} = ${value}`).to.equal(true);
};

describe('benchmarks: smoke run at tiny sizes', function () {
  this.timeout(60_000);
  const log: string[] = [];
  const sections: Section[] = [];
  let ctx: BenchContext;
  let started = 0;

  before(async () => {
    started = Date.now();
    ctx = { rounds: 1, pin: false, smoke: true, servers: new ServerPool(false), log: (line) => log.push(line) };
    // Start every server the benchmarks share at once: start-up (tsx, imports) dominates a smoke run.
    await Promise.all([
      ctx.servers.get('baseline'),
      ctx.servers.get('switchboard'),
      ctx.servers.get('switchboard', turnEnv(), { cpus: null }),
      ctx.servers.get('switchboard-inline-turn', turnEnv(), { cpus: null }),
    ]);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(log.slice(-20).join('\n'));
  });

  after(async function () {
    this.timeout(30_000);
    await ctx?.servers.closeAll();
    const pids = ctx?.servers.startedPids ?? [];
    const deadline = Date.now() + 5_000;
    while (pids.some(processAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    console.log(`      benchmark smoke run: ${((Date.now() - started) / 1000).toFixed(1)} s, ${pids.length} server processes started`);
    expect(pids.filter(processAlive), 'server processes still running').to.deep.equal([]);
    expect(
      liveChildren().map((c) => c.pid),
      'child processes still running',
    ).to.deep.equal([]);
  });

  it('relay: both servers relay every message in rooms of 2 and 6, with a finite throughput ratio', async () => {
    const section = await runRelay(ctx);
    sections.push(section);
    const { cases } = section.data as {
      cases: Array<{ size: number; payload: number; baseline: RelayMeasurement[]; switchboard: RelayMeasurement[] }>;
    };
    expect(cases.map((c) => `${c.size}/${c.payload}`)).to.deep.equal(['2/300', '2/3000', '6/300', '6/3000']);
    for (const c of cases) {
      for (const m of [...c.baseline, ...c.switchboard]) {
        expect(m.delivered, 'messages relayed').to.be.greaterThan(0);
        positive(m.perCpuS, 'messages per CPU-second');
        positive(m.latency.p99, 'p99');
        expect(m.lost, 'lost messages').to.equal(0);
        expect(m.errors, 'refused acks (rate limits must not cap the bench)').to.equal(0);
        expect(m.payloadBytes).to.be.within(c.payload * 0.9, c.payload * 1.1);
      }
    }
    expect(section.headline.filter((h) => h.metric.startsWith('relay msg/CPU-s'))).to.have.length(4);
    for (const row of section.headline) expect(row.ratio, row.metric).to.match(/^\d+(\.\d+)?/);
  });

  it('density: idle clients connect from several source addresses; per-connection memory and rates are finite', async () => {
    const section = await runDensity(ctx);
    sections.push(section);
    const { results } = section.data as {
      results: Array<{ size: number; baseline: DensityMeasurement[]; switchboard: DensityMeasurement[] }>;
    };
    for (const m of results.flatMap((r) => [...r.baseline, ...r.switchboard])) {
      expect(Number.isFinite(m.rssPerConn), 'RSS per connection').to.equal(true);
      positive(m.perS, 'handshakes+joins per second');
      positive(m.perCpuS, 'handshakes+joins per CPU-second');
      expect(Object.keys(m.addresses), 'source addresses the server saw').to.have.length(2);
    }
    // The smoke run's larger size goes over two generator processes, the way 20k does.
    const largest = results.reduce((a, b) => (b.size > a.size ? b : a));
    for (const m of [...largest.baseline, ...largest.switchboard])
      expect(m.loadGenerators, `generator processes for ${largest.size} clients`).to.have.length(2);
  });

  it('join: connect -> join ack -> first relayed signal percentiles on both servers', async () => {
    const section = await runJoin(ctx);
    sections.push(section);
    const { results } = section.data as { results: { baseline: JoinMeasurement[]; switchboard: JoinMeasurement[] } };
    for (const m of [...results.baseline, ...results.switchboard]) {
      expect(m.joins).to.be.greaterThan(0);
      positive(m.connect.p50, 'connect p50');
      expect(m.joinAck.p50).to.be.at.least(m.connect.p50);
      expect(m.firstSignal.p99).to.be.at.least(m.joinAck.p50);
    }
  });

  it('turn: the bundled relay (one relay worker on native I/O and on dgram, and one per core), the bare forwarder (and coturn, where installed) deliver ChannelData, the relays allocate, and signaling keeps flowing under a stream', async () => {
    const section = await runTurn(ctx);
    sections.push(section);
    const data = section.data as {
      capacity: Record<'bundled' | 'dgram' | 'workers' | 'coturn' | 'forwarder', LadderResult[]>;
      allocations: Record<'bundled' | 'workers' | 'coturn', Array<{ perS: number; failures: number }>>;
      isolation: Array<Record<'idle' | 'worker' | 'inline' | 'workersIdle' | 'workers', { p99: number }>>;
      workerCount: number;
      generator: { kind: 'native' | 'node'; nodeReason: string | null };
      equalRate: EqualRateStep[];
    };
    if (data.generator.kind === 'node') console.log(`      native load generator not used: ${data.generator.nodeReason}`);
    // 'workers': the bundled relay with one relay worker per core, the flows spread over their ports.
    expect(data.workerCount, 'relay workers: one per core').to.equal(Math.max(1, os.availableParallelism()));
    const backends = coturnUnavailableReason() ? (['bundled', 'workers'] as const) : (['bundled', 'workers', 'coturn'] as const);
    if (backends.length === 2) console.log(`      coturn part skipped: ${coturnUnavailableReason()}`);
    // Allocations are measured for the TURN servers; capacity also for the dgram relay and the bare forwarder.
    for (const backend of [...backends, 'dgram', 'forwarder'] as const) {
      expect(data.capacity[backend], backend).to.have.length(2);
      for (const ladder of data.capacity[backend])
        expect(
          ladder.steps.reduce((sum, s) => sum + s.received, 0),
          `${backend} ${ladder.payload} B delivered`,
        ).to.be.greaterThan(0);
    }
    for (const backend of backends)
      for (const a of data.allocations[backend]) {
        positive(a.perS, `${backend} allocations/s`);
        expect(a.failures).to.equal(0);
      }
    // The equal-rate part: every backend, and the forwarder on one thread per core, carried each round's step.
    for (const backend of [...backends, 'dgram', 'forwarder', 'forwarders'] as const)
      for (const payload of [120, 1200]) {
        const steps = data.equalRate.filter((s) => s.backend === backend && s.payload === payload);
        expect(steps, `equal rate ${backend} ${payload} B`).to.have.length(2);
        // Delivered something (a CPU figure is 0 when the step used less than one of /proc's 10 ms ticks).
        for (const step of steps) {
          expect(step.loss, `equal rate ${backend} ${payload} B loss`).to.be.lessThan(1);
          expect(step.cpuUsPerPacket, `equal rate ${backend} ${payload} B CPU per packet`).to.be.at.least(0);
        }
      }
    for (const round of data.isolation)
      for (const variant of ['idle', 'worker', 'inline', 'workersIdle', 'workers'] as const)
        positive(round[variant].p99, `signaling p99 (${variant})`);
  });

  it('bundle: measures the served build (core, lazy mediasoup-client chunk, IIFE), the npm packages and their baselines', async () => {
    const section = await runBundle(ctx);
    sections.push(section);
    const data = section.data as Required<BundleResult>;
    const gzipOf = (files: FileSize[]) => files.reduce((sum, f) => sum + f.gzip, 0);
    expect(data.core.length).to.be.greaterThan(0);
    expect(data.lazy.length, 'a lazily imported chunk').to.be.greaterThan(0);
    expect(data.package.appCore.length, "the package's entry in an app").to.be.greaterThan(0);
    expect(data.package.appLazy.length, "the package's lazy chunk in an app").to.be.greaterThan(0);
    const everyFile = [
      ...data.core,
      data.iife,
      data.package.esm,
      data.package.iife,
      ...data.package.appCore,
      ...data.package.appLazy,
      data.react.esm,
      data.react.app,
      ...Object.values(data.baselines),
    ];
    for (const f of everyFile) expect(f.gzip, f.file).to.be.within(1, f.min);
    expect(data.iife.gzip).to.be.greaterThan(gzipOf(data.core));
    expect(data.package.iife.gzip, 'the IIFE carries its dependencies').to.be.greaterThan(data.baselines.dependencies.gzip);
    // The package's code with its dependencies: more than socket.io-client alone up front; its lazy chunk is mediasoup-client.
    expect(gzipOf(data.package.appCore)).to.be.greaterThan(data.baselines.socketIoClient.gzip);
    expect(gzipOf(data.package.appLazy) / data.baselines.mediasoupClient.gzip).to.be.within(0.8, 1.2);
    // The React bindings leave React and the core out.
    expect(data.react.app.gzip).to.be.lessThan(data.baselines.react.gzip / 4);
    expect(section.headline.filter((row) => row.ratio !== '').length, 'ratios against baselines').to.equal(5);
  });

  it('cluster: two nodes on a redis-server relay in rooms on both, and redirected newcomers join through wrong_node', async function () {
    const unavailable = redisUnavailableReason();
    if (unavailable) {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
    this.timeout(120_000);
    const section = await runCluster(ctx);
    sections.push(section);
    const data = section.data as ClusterData;
    for (const c of data.relay) {
      for (const m of [...c.one, ...c.two, ...c.split]) {
        positive(m.perCpuS, 'messages per CPU-second of the set-up');
        expect(m.lost, 'lost messages').to.equal(0);
        expect(m.errors, 'refused acks').to.equal(0);
      }
      for (const m of c.two) {
        expect(m.processLabels).to.deep.equal(['node A', 'node B', 'redis-server']);
        positive(m.processUtil[0] ?? 0, 'node A CPU');
        positive(m.processUtil[1] ?? 0, 'node B CPU');
        expect(m.redisUsPerMsg, 'Redis CPU per message').to.be.at.least(0);
      }
    }
    for (const m of data.join.redirected) {
      expect(m.redirects, 'every redirected newcomer got wrong_node once').to.equal(m.total);
      positive(m.redirect?.p50 ?? 0, 'wrong_node p50');
      expect(m.firstSignal.p50).to.be.at.least(m.connect.p50);
    }
    for (const m of data.join.direct) expect(m.redirects, 'direct newcomers are not redirected').to.equal(0);
    expect(section.headline.map((h) => h.target)).to.include.members(['>= 0.9', '<= 2']);
  });

  it('topology: a room of two in mesh and SFU mode in Chromium, and a promotion with its gap and CPU profile', async function () {
    const unavailable = browserUnavailableReason();
    if (unavailable) {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
    this.timeout(240_000);
    const section = await runTopology(ctx, {
      sizes: [2],
      resolution: '160x120',
      warmupMs: 500,
      measureMs: 1500,
      rounds: 1,
      promotion: true,
      setupTimeoutMs: 60_000,
    });
    sections.push(section);
    const data = section.data as TopologyData;
    expect(data.failures ?? []).to.deep.equal([]);
    expect(data.measurements.map((m) => m.mode).sort()).to.deep.equal(['mesh', 'sfu']);
    for (const m of data.measurements) {
      positive(m.uplinkKbps, `${m.mode} uplink`);
      positive(m.downlinkKbps, `${m.mode} downlink`);
      positive(m.clientCpuPct, `${m.mode} browser CPU`);
    }
    const promotion = data.promotions[0];
    expect(promotion?.gapsMs).to.have.length(4);
    for (const gap of [...(promotion?.gapsMs ?? []), ...(promotion?.steadyGapsMs ?? [])]) positive(gap, 'video gap');
    positive(promotion?.handOverCpu?.groups['Chromium renderer'] ?? 0, 'renderer CPU in the hand-over');
    positive(promotion?.handOverCpu?.machineBusyPct ?? 0, 'machine busy in the hand-over');
    expect(section.markdown).to.include('Where the CPU went');
  });

  it('renders RESULTS.md and the SVG plots from the sections (into a temporary directory)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-results-'));
    try {
      for (const section of sections) saveSection(section, dir);
      writeResults(dir, join(dir, 'RESULTS.md'));
      const markdown = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
      for (const section of sections) expect(markdown).to.include(`## ${section.title}`);
      expect(markdown).to.include('## Machine');
      for (const plot of sections.flatMap((s) => s.plots))
        expect(readFileSync(join(dir, plot.file), 'utf8')).to.match(/^<svg[\s\S]*<\/svg>$/);
      expect(renderResults([])).to.include('# Switchboard benchmark results');
      // A video-only topology run is its own section beside the run with audio, with its own plots.
      const topology = sections.find((s) => s.name === 'topology');
      if (topology) {
        const data = topology.data as TopologyData;
        const videoOnly = renderTopology(
          { ...data, options: { ...data.options, audio: false } },
          { machine: topology.machine, wallS: topology.wallS, rounds: 1, pin: false },
        );
        expect(videoOnly.name).to.equal('topology-video');
        expect(videoOnly.plots.map((plot) => plot.file)).to.deep.equal(['topology-video-uplink.svg', 'topology-video-cpu.svg']);
        saveSection(videoOnly, dir);
        writeResults(dir, join(dir, 'RESULTS.md'));
        const both = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
        expect(both)
          .to.include(`## ${topology.title}`)
          .and.to.include(`## ${videoOnly.title}`)
          .and.to.include('(results/topology-video-uplink.svg)');
        expect(both).to.include(
          '| Topology crossover, video only (mesh vs SFU) | uplink kbps per client, room of 2 (baseline: mesh), video only |',
        );
        expect(loadSections(dir).map((s) => s.name)).to.include.members(['topology', 'topology-video']);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

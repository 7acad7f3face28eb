/**
 * 5. Topology crossover: per-client uplink bitrate and CPU for rooms of 2..8 in mesh and in
 * SFU mode, from Chromium's getStats on the demo page (fake camera, 160x120 at 15 fps by default,
 * plus the fake microphone), so operators can choose mesh_threshold; plus the media gap of
 * a promotion (the SDK's lastMigration.mediaGapMs when a fifth peer joins a mesh of four),
 * against the same measure in the steady mesh of four, with where the CPU went in both.
 * Each room is created through the API with its mode pinned (mode: mesh | sfu) before the
 * pages join. Nothing is pinned to cores here: browsers, the server and its mediasoup
 * worker share the machine, as they would on one host. Skipped with BENCH_BROWSER=0.
 */
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, launchBrowser } from '../test/helpers/browser.js';
import type { BenchContext } from './lib/context.js';
import { envFlag, envList, envNumber } from './lib/env.js';
import { chromiumProcessType, descendants, machineCpuSeconds, machineFacts, processName, procCpuSeconds } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { sleep } from './lib/signaling.js';
import { fmt, fmtSummary, summarize } from './lib/stats.js';
import { lineChart } from './lib/svg.js';

export interface TopologyOptions {
  sizes: number[];
  /** Which topologies to measure at each size (both by default; BENCH_BROWSER_MODES=mesh for meshes only). */
  modes?: Mode[];
  /**
   * Camera size of every page (the demo's `res`). 160x120 by default: two cores cannot encode
   * and decode a mesh of 7 or 8 pages at 320x240 (bench/notes/topology-history.md).
   * Absent in older stored results, which were all measured at 320x240.
   */
  resolution?: string;
  /** Whether pages send audio (BENCH_BROWSER_AUDIO=0: video only). Absent in older stored results, which were all measured with audio. */
  audio?: boolean;
  warmupMs: number;
  measureMs: number;
  rounds: number;
  promotion: boolean;
  /** Time allowed for pages to connect and see every other participant's video (rooms of up to 5; larger rooms get 15 s more per page; meshes over 5 join one page at a time within it). */
  setupTimeoutMs: number;
}

export function topologyOptions(): TopologyOptions {
  return {
    sizes: envList('BENCH_BROWSER_SIZES', [2, 3, 4, 5, 6, 7, 8]),
    modes: (process.env.BENCH_BROWSER_MODES ?? 'mesh,sfu').split(',').filter((m): m is Mode => m === 'mesh' || m === 'sfu'),
    resolution: process.env.BENCH_BROWSER_RES ?? '160x120',
    audio: envFlag('BENCH_BROWSER_AUDIO', true),
    warmupMs: envNumber('BENCH_BROWSER_WARMUP_MS', 5000),
    measureMs: envNumber('BENCH_BROWSER_MEASURE_MS', 6000),
    rounds: envNumber('BENCH_BROWSER_ROUNDS', 1),
    promotion: envFlag('BENCH_BROWSER_PROMOTION', true),
    setupTimeoutMs: 60_000,
  };
}

type Mode = 'mesh' | 'sfu';

export interface TopologyMeasurement {
  mode: Mode;
  size: number;
  /** Mean over the room's clients. */
  uplinkKbps: number;
  downlinkKbps: number;
  /** Chromium CPU (every browser process) per client, percent of one core. */
  clientCpuPct: number;
  /** Server process plus its mediasoup workers, percent of one core. */
  serverCpuPct: number;
}

interface PageSample {
  up: number;
  down: number;
  /** When the page read its counters (ms since the epoch, the middle of its getStats calls). */
  at: number;
}

/**
 * Media bytes sent and received (RTP payload + headers) over every connection of the page,
 * with the time the page read them: a starved page can take seconds to answer, so rates are
 * taken over each page's own interval, not the benchmark's.
 */
async function sample(page: Page): Promise<PageSample> {
  return page.evaluate(async () => {
    const startedAt = Date.now();
    type Transport = { getStats(): Promise<RTCStatsReport> } | null;
    const room = window.switchboardRoom as unknown as {
      links: Map<string, { pc: RTCPeerConnection }>;
      sfu: { sendTransport: Transport; recvTransport: Transport } | null;
    };
    const reports: RTCStatsReport[] = [];
    for (const link of room.links.values()) reports.push(await link.pc.getStats());
    if (room.sfu?.sendTransport) reports.push(await room.sfu.sendTransport.getStats());
    if (room.sfu?.recvTransport) reports.push(await room.sfu.recvTransport.getStats());
    let up = 0;
    let down = 0;
    for (const report of reports) {
      report.forEach(
        (s: { type: string; bytesSent?: number; headerBytesSent?: number; bytesReceived?: number; headerBytesReceived?: number }) => {
          if (s.type === 'outbound-rtp') up += (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0);
          if (s.type === 'inbound-rtp') down += (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0);
        },
      );
    }
    return { up, down, at: (startedAt + Date.now()) / 2 };
  });
}

/** CPU seconds of every Chromium process this process started. */
function chromiumCpuSeconds(): number {
  return descendants(process.pid)
    .filter((pid) => /chrom/i.test(processName(pid)))
    .reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
}

async function framesFromAll(page: Page, others: number): Promise<boolean> {
  return page.evaluate(async (n) => {
    const stats = await window.switchboardRoom.getParticipantStats();
    return stats.size === n && [...stats.values()].every((s) => s.framesDecoded > 0);
  }, others);
}

class Pages {
  private readonly open: Page[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly base: string,
    private readonly resolution: string,
    private readonly audio: boolean,
  ) {}

  async join(room: string, name: string, timeoutMs: number): Promise<Page> {
    const page = await this.browser.newPage({ viewport: { width: 640, height: 480 } });
    this.open.push(page);
    await page.goto(`${this.base}/?room=${encodeURIComponent(room)}&name=${name}&res=${this.resolution}${this.audio ? '' : '&audio=0'}`);
    await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: timeoutMs });
    return page;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((p) => p.close().catch(() => undefined)));
  }
}

/** What each page sees (for failure messages). */
async function describePages(pages: Page[]): Promise<string> {
  const states = await Promise.all(
    pages.map((p) =>
      p
        .evaluate(async () => {
          const room = window.switchboardRoom;
          const stats = await room.getParticipantStats();
          return `${room.localParticipant.identity}: ${room.state} ${room.mode}, ${room.links.size} links, frames ${[...stats].map(([id, s]) => `${id}=${s.framesDecoded}`).join(' ')}`;
        })
        .catch((error: Error) => `page error: ${error.message}`),
    ),
  );
  return states.join('; ');
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, pages: Page[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${await describePages(pages)})`);
    await sleep(250);
  }
}

export async function createRoom(server: ServerProcess, room: string, mode: 'mesh' | 'sfu' | 'auto'): Promise<void> {
  const response = await fetch(`${server.url}/api/v1/rooms`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.info.devApiSecret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ room_id: room, mode }),
  });
  if (response.status !== 201 && response.status !== 200)
    throw new Error(`POST /api/v1/rooms ${room}: ${response.status} ${await response.text()}`);
}

async function measureRoom(
  server: ServerProcess,
  pages: Pages,
  mode: Mode,
  size: number,
  options: TopologyOptions,
  tag: string,
): Promise<TopologyMeasurement> {
  const room = `topo-${mode}-${size}-${tag}`;
  const setupTimeoutMs = options.setupTimeoutMs + Math.max(0, size - 5) * 15_000;
  await createRoom(server, room, mode);
  const list: Page[] = [];
  const setupDeadline = Date.now() + setupTimeoutMs;
  for (let i = 0; i < size; i++) {
    list.push(await pages.join(room, `p${i + 1}`, setupTimeoutMs));
    // Past 5 pages, a mesh joins one page at a time (each waits until everyone decodes
    // everyone): all links negotiating at once on two cores starve the pages of their pings.
    if (mode === 'mesh' && size > 5) {
      const joined = [...list];
      await waitUntil(
        async () => (await Promise.all(joined.map((p) => framesFromAll(p, joined.length - 1)))).every(Boolean),
        Math.max(0, setupDeadline - Date.now()),
        `video between the first ${joined.length} pages`,
        joined,
      );
    }
  }
  await waitUntil(
    async () => {
      const states = await Promise.all(
        list.map((p) => p.evaluate(() => ({ mode: window.switchboardRoom.mode, links: window.switchboardRoom.links.size }))),
      );
      return states.every((s) => s.mode === mode && s.links === (mode === 'mesh' ? size - 1 : 0));
    },
    setupTimeoutMs,
    `${size} pages in ${mode} mode`,
    list,
  );
  await waitUntil(
    async () => (await Promise.all(list.map((p) => framesFromAll(p, size - 1)))).every(Boolean),
    setupTimeoutMs,
    'video from every participant',
    list,
  );
  await sleep(options.warmupMs);
  const before = await Promise.all(list.map(sample));
  const chrome0 = chromiumCpuSeconds();
  const server0 = server.procCpuSeconds(true);
  const t0 = performance.now();
  await sleep(options.measureMs);
  const after = await Promise.all(list.map(sample));
  const chrome1 = chromiumCpuSeconds();
  const server1 = server.procCpuSeconds(true);
  const seconds = (performance.now() - t0) / 1000;
  // bytes * 8 / ms = kbit/s, per page over its own interval.
  const kbps = (pick: (s: PageSample) => number): number =>
    list.reduce((sum, _, i) => {
      const [a, b] = [before[i] as PageSample, after[i] as PageSample];
      return sum + ((pick(b) - pick(a)) * 8) / (b.at - a.at);
    }, 0) / size;
  await pages.closeAll();
  return {
    mode,
    size,
    uplinkKbps: kbps((s) => s.up),
    downlinkKbps: kbps((s) => s.down),
    clientCpuPct: ((chrome1 - chrome0) / seconds / size) * 100,
    serverCpuPct: ((server1 - server0) / seconds) * 100,
  };
}

export interface PromotionResult {
  gapsMs: number[];
  durationsMs: number[];
  /** The same measure on the same four pages in the steady mesh of four, over 4 s, before the fifth joins. */
  steadyGapsMs?: number[];
  /** Where the CPU went in the steady mesh of four and during the hand-over (fifth join to the last link closed). */
  steadyCpu?: CpuProfile;
  handOverCpu?: CpuProfile;
}

/** CPU use over a window: percent of one core per group, and the whole machine's busy share. */
export interface CpuProfile {
  seconds: number;
  /** Percent of one core, by group (Chromium by process type, the server, its mediasoup worker, this driver). */
  groups: Record<string, number>;
  /** Busy share of all cores, percent (everything on the machine). */
  machineBusyPct: number;
}

interface CpuSnapshot {
  at: number;
  byPid: Map<number, { group: string; seconds: number }>;
  machine: { busy: number; total: number };
}

/** CPU seconds so far of every process this benchmark started, grouped by what it does. */
function cpuSnapshot(server: ServerProcess): CpuSnapshot {
  const byPid = new Map<number, { group: string; seconds: number }>();
  for (const pid of descendants(process.pid)) {
    const name = processName(pid);
    let group: string;
    if (pid === server.pid) group = 'Switchboard server (Node)';
    else if (/mediasoup/i.test(name)) group = 'mediasoup worker';
    else if (/chrom/i.test(name)) group = `Chromium ${chromiumProcessType(pid)}`;
    else continue;
    byPid.set(pid, { group, seconds: procCpuSeconds(pid) });
  }
  byPid.set(process.pid, { group: 'benchmark driver (Node)', seconds: procCpuSeconds(process.pid) });
  return { at: performance.now(), byPid, machine: machineCpuSeconds() };
}

/** What was spent between two snapshots (a process started in between counts from zero). */
function cpuProfile(before: CpuSnapshot, after: CpuSnapshot): CpuProfile {
  const seconds = (after.at - before.at) / 1000;
  const groups: Record<string, number> = {};
  for (const [pid, { group, seconds: cpu }] of after.byPid) {
    const spent = cpu - (before.byPid.get(pid)?.seconds ?? 0);
    groups[group] = (groups[group] ?? 0) + (spent / seconds) * 100;
  }
  const total = after.machine.total - before.machine.total;
  return { seconds, groups, machineBusyPct: total > 0 ? ((after.machine.busy - before.machine.busy) / total) * 100 : Number.NaN };
}

async function measurePromotion(server: ServerProcess, pages: Pages, options: TopologyOptions, tag: string): Promise<PromotionResult> {
  const room = `promo-${tag}`;
  await createRoom(server, room, 'auto');
  const early: Page[] = [];
  for (let i = 0; i < 4; i++) early.push(await pages.join(room, `p${i + 1}`, options.setupTimeoutMs));
  await waitUntil(
    async () => (await Promise.all(early.map((p) => framesFromAll(p, 3)))).every(Boolean),
    options.setupTimeoutMs,
    'video in the mesh of four',
    early,
  );
  await sleep(2000);
  // The baseline: the same measure with no migration, and where the CPU goes meanwhile.
  const steadyStart = cpuSnapshot(server);
  const steadyGapsMs = await Promise.all(early.map((p) => p.evaluate(() => window.switchboardRoom.measureVideoGap(4000))));
  const steadyCpu = cpuProfile(steadyStart, cpuSnapshot(server));
  const handOverStart = cpuSnapshot(server);
  const fifth = await pages.join(room, 'p5', options.setupTimeoutMs);
  const all = [...early, fifth];
  await waitUntil(
    async () =>
      (
        await Promise.all(
          all.map((p) => p.evaluate(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0)),
        )
      ).every(Boolean),
    options.setupTimeoutMs,
    'promotion to the SFU',
    all,
  );
  const handOverCpu = cpuProfile(handOverStart, cpuSnapshot(server));
  await waitUntil(
    async () => (await Promise.all(early.map((p) => p.evaluate(() => window.switchboardRoom.lastMigration?.to === 'sfu')))).every(Boolean),
    options.setupTimeoutMs,
    'migration reports',
    all,
  );
  const reports = await Promise.all(early.map((p) => p.evaluate(() => window.switchboardRoom.lastMigration)));
  await pages.closeAll();
  return {
    gapsMs: reports.map((r) => r?.mediaGapMs ?? Number.NaN),
    durationsMs: reports.map((r) => r?.durationMs ?? Number.NaN),
    steadyGapsMs,
    steadyCpu,
    handOverCpu,
  };
}

export async function runTopology(ctx: BenchContext, options: TopologyOptions = topologyOptions()): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(false);
  const unavailable = browserUnavailableReason();
  if (unavailable) throw new Error(`topology benchmark needs Chromium: ${unavailable} (BENCH_BROWSER=0 skips it)`);
  buildSdk();
  const server = await ctx.servers.get(
    'switchboard',
    {
      SFU_ENABLED: 'true',
      SFU_WORKERS: '1',
      SFU_LISTEN_IP: '127.0.0.1',
      MESH_THRESHOLD: '4',
      DEMOTE_DELAY_MS: '1500',
      ROOM_EMPTY_TIMEOUT_MS: '1000',
    },
    { cpus: null },
  );
  const browser = await launchBrowser();
  const pages = new Pages(browser, server.url.replace('127.0.0.1', 'localhost'), options.resolution ?? '160x120', options.audio ?? true);
  const measurements: TopologyMeasurement[] = [];
  const promotions: PromotionResult[] = [];
  const failures: string[] = [];
  // A browser run on a busy 2-core machine can stall; each measurement gets a second chance.
  const attempt = async <T>(label: string, fn: (tag: string) => Promise<T>): Promise<T | null> => {
    for (let tries = 1; tries <= 2; tries++) {
      try {
        return await fn(`${process.pid}-${label}-${tries}`);
      } catch (error) {
        await pages.closeAll();
        ctx.log(`topology ${label}: attempt ${tries} failed: ${(error as Error).message}`);
        if (tries === 2) failures.push(`${label}: ${(error as Error).message}`);
      }
    }
    return null;
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const size of options.sizes) {
        const order: Mode[] = (size + round) % 2 === 0 ? ['mesh', 'sfu'] : ['sfu', 'mesh'];
        for (const mode of order.filter((m) => (options.modes ?? ['mesh', 'sfu']).includes(m))) {
          const m = await attempt(`${mode}-${size}-r${round}`, (tag) => measureRoom(server, pages, mode, size, options, tag));
          if (!m) continue;
          measurements.push(m);
          ctx.log(
            `topology round ${round + 1}/${options.rounds} ${mode} ${size}: uplink ${fmt(m.uplinkKbps)} kbps, downlink ${fmt(m.downlinkKbps)} kbps, browser CPU ${fmt(m.clientCpuPct)}% per client, server CPU ${fmt(m.serverCpuPct)}%`,
          );
          await sleep(500);
        }
      }
      if (options.promotion) {
        const p = await attempt(`promotion-r${round}`, (tag) => measurePromotion(server, pages, options, tag));
        if (!p) continue;
        promotions.push(p);
        ctx.log(
          `topology round ${round + 1}/${options.rounds} promotion 4 -> 5: media gap ${p.gapsMs.map((g) => fmt(g)).join(', ')} ms (steady mesh of 4: ${(p.steadyGapsMs ?? []).map((g) => fmt(g)).join(', ')} ms); machine busy ${fmt(p.steadyCpu?.machineBusyPct ?? Number.NaN)}% steady, ${fmt(p.handOverCpu?.machineBusyPct ?? Number.NaN)}% in the hand-over; migration ${p.durationsMs.map((d) => fmt(d)).join(', ')} ms`,
        );
      }
    }
  } finally {
    await pages.closeAll();
    await browser.close();
  }
  return renderTopology(
    { options, measurements, promotions, failures },
    { machine, wallS: (performance.now() - started) / 1000, rounds: options.rounds, pin: false },
  );
}

export interface TopologyData {
  options: TopologyOptions;
  measurements: TopologyMeasurement[];
  promotions: PromotionResult[];
  failures?: string[];
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/topology.json). */
export function renderTopology(data: TopologyData, meta: RenderMeta): Section {
  const { options, measurements, promotions } = data;
  const resolution = options.resolution ?? '320x240';
  const failures = data.failures ?? [];
  const { wallS } = meta;
  const machine = { ...meta.machine, pinning: 'nothing pinned: browsers, server and mediasoup worker share every core' };
  // A video-only run (BENCH_BROWSER_AUDIO=0) is its own section, next to the run with audio.
  const videoOnly = options.audio === false;
  const name = videoOnly ? 'topology-video' : 'topology';
  const metricSuffix = videoOnly ? ', video only' : '';
  const rows: string[][] = [];
  const headline: HeadlineRow[] = [];
  const of = (mode: Mode, size: number): TopologyMeasurement[] => measurements.filter((m) => m.mode === mode && m.size === size);
  for (const size of options.sizes) {
    const mesh = of('mesh', size);
    const sfu = of('sfu', size);
    const up = { mesh: summarize(mesh.map((m) => m.uplinkKbps)), sfu: summarize(sfu.map((m) => m.uplinkKbps)) };
    rows.push([
      String(size),
      `${fmtSummary(up.mesh)} / ${fmtSummary(up.sfu)}`,
      `${fmtSummary(summarize(mesh.map((m) => m.downlinkKbps)))} / ${fmtSummary(summarize(sfu.map((m) => m.downlinkKbps)))}`,
      `${fmtSummary(summarize(mesh.map((m) => m.clientCpuPct)))} / ${fmtSummary(summarize(sfu.map((m) => m.clientCpuPct)))}`,
      `${fmtSummary(summarize(mesh.map((m) => m.serverCpuPct)))} / ${fmtSummary(summarize(sfu.map((m) => m.serverCpuPct)))}`,
    ]);
    headline.push({
      metric: `uplink kbps per client, room of ${size} (baseline: mesh)${metricSuffix}`,
      baseline: fmt(up.mesh.median),
      switchboard: fmt(up.sfu.median),
      ratio: up.mesh.median > 0 ? `${(up.sfu.median / up.mesh.median).toFixed(2)}x` : 'n/a',
      target: '',
      verdict: '',
    });
  }
  const gaps = summarize(promotions.flatMap((p) => p.gapsMs));
  const durations = summarize(promotions.flatMap((p) => p.durationsMs));
  const lines: string[] = [];
  lines.push(
    `Chromium (Debian's, headless, run without real-time thread priority as an ordinary user's browser is; fake camera ${resolution} at 15 fps${videoOnly ? ', no microphone' : ' and fake microphone'}) loads the demo page once per participant; each room is created through \`POST /api/v1/rooms\` with \`mode\` pinned to mesh or sfu, and measured after every page decodes video from every other one and a ${options.warmupMs / 1000} s warm-up, over ${options.measureMs / 1000} s. Uplink/downlink: RTP bytes (payload + headers) from \`outbound-rtp\`/\`inbound-rtp\` over every peer connection of the page (mesh links, or the SFU's send and receive transports), averaged over the room's clients. Browser CPU: every Chromium process, divided by the room size (so it includes the shared browser and GPU processes). Server CPU: the Switchboard process and its mediasoup worker. Nothing is pinned; on ${machine.cores} cores the browsers compete with each other and with the SFU, so CPU-constrained encoders may lower their bitrate in larger meshes. ${options.rounds} round(s).`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      [
        'clients',
        'uplink kbps per client mesh / SFU',
        'downlink kbps per client mesh / SFU',
        'browser CPU % per client mesh / SFU',
        'server CPU % mesh / SFU',
      ],
      rows,
    ),
  );
  lines.push('');
  if (promotions.length) {
    lines.push(
      `Promotion (a fifth participant joins a mesh of four, MESH_THRESHOLD=4): the largest gap in inbound video on the four earlier pages (\`lastMigration.mediaGapMs\`) was ${fmtSummary(gaps)} ms (median, range over ${gaps.rounds} pages), and the migration took ${fmtSummary(durations)} ms (\`lastMigration.durationMs\`). The e2e target for the gap is < 500 ms.`,
    );
    const steady = summarize(promotions.flatMap((p) => p.steadyGapsMs ?? []));
    const steadyText = steady.rounds > 0 ? fmt(steady.median) : '';
    headline.push({
      metric: `largest video gap ms: steady mesh of 4 (baseline) vs promotion (median of pages; max)${metricSuffix}`,
      baseline: steadyText,
      switchboard: `${fmt(gaps.median)} (max ${fmt(gaps.max)})`,
      ratio: steady.rounds > 0 && steady.median > 0 ? `${(gaps.median / steady.median).toFixed(2)}x` : '',
      target: '< 500',
      verdict: Number.isFinite(gaps.max) ? (gaps.max < 500 ? 'met' : 'missed') : 'n/a',
    });
    if (steady.rounds > 0) {
      lines.push('');
      lines.push(
        `Baseline for the gap: the same measure (\`room.measureVideoGap(4000)\`) on the same four pages in the steady mesh of four just before the fifth joined, no migration: ${fmtSummary(steady)} ms. It is the gap this machine's load causes by itself; the promotion adds the SFU's setup, a second encoder per page and the fifth page's start on top.`,
      );
    }
    const profiled = promotions.filter((p) => p.steadyCpu && p.handOverCpu);
    if (profiled.length) {
      const groupNames = [
        ...new Set(profiled.flatMap((p) => [...Object.keys(p.steadyCpu?.groups ?? {}), ...Object.keys(p.handOverCpu?.groups ?? {})])),
      ];
      const median = (pick: (p: PromotionResult) => number | undefined) =>
        summarize(profiled.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v)));
      const cpuRows = groupNames
        .map((group) => ({
          group,
          steady: median((p) => p.steadyCpu?.groups[group] ?? 0),
          handOver: median((p) => p.handOverCpu?.groups[group] ?? 0),
        }))
        .filter((r) => r.steady.median >= 0.5 || r.handOver.median >= 0.5)
        .sort((a, b) => b.handOver.median - a.handOver.median)
        .map((r) => [r.group, fmtSummary(r.steady), fmtSummary(r.handOver)]);
      cpuRows.push([
        '**whole machine busy, % of all cores**',
        fmtSummary(median((p) => p.steadyCpu?.machineBusyPct)),
        fmtSummary(median((p) => p.handOverCpu?.machineBusyPct)),
      ]);
      lines.push('');
      lines.push(
        `Where the CPU went (the profile of the promotion, from /proc: user + system time per process, grouped by Chromium process type; % of one core, ${machine.cores} cores in all): in the steady mesh of four over the baseline's 4 s, and during the hand-over, from the fifth page's start to every page in SFU mode with its mesh links closed (${fmtSummary(median((p) => p.handOverCpu?.seconds))} s).`,
      );
      lines.push('');
      lines.push(markdownTable(['process group', 'steady mesh of 4, % of a core', 'hand-over, % of a core'], cpuRows));
    }
  }
  if (failures.length) {
    lines.push('');
    lines.push(`Measurements that failed twice and are missing above: ${failures.map((f) => `\`${f.slice(0, 300)}\``).join('; ')}.`);
  }
  const plots = [
    {
      file: `${name}-uplink.svg`,
      title: 'Uplink per client, mesh vs SFU',
      svg: lineChart({
        title: `Uplink per client by room size (Chromium, ${resolution} @ 15 fps${videoOnly ? ', video only' : ' + audio'})`,
        xLabel: 'participants in the room',
        yLabel: 'uplink kbps per client',
        series: (['mesh', 'sfu'] as const).map((mode) => ({
          name: mode === 'mesh' ? 'mesh (peer to peer)' : 'SFU (mediasoup)',
          points: options.sizes.map((size) => {
            const s = summarize(of(mode, size).map((m) => m.uplinkKbps));
            return { x: size, y: s.median, yMin: s.min, yMax: s.max };
          }),
        })),
      }),
    },
    {
      file: `${name}-cpu.svg`,
      title: 'Browser CPU per client, mesh vs SFU',
      svg: lineChart({
        title: 'Browser CPU per client by room size',
        xLabel: 'participants in the room',
        yLabel: '% of one core per client',
        series: (['mesh', 'sfu'] as const).map((mode) => ({
          name: mode === 'mesh' ? 'mesh (peer to peer)' : 'SFU (mediasoup)',
          points: options.sizes.map((size) => ({ x: size, y: summarize(of(mode, size).map((m) => m.clientCpuPct)).median })),
        })),
      }),
    },
  ];
  const title = videoOnly ? '5b. Topology crossover, video only (mesh vs SFU)' : '5. Topology crossover (mesh vs SFU)';
  return { name, title, machine, wallS, headline, markdown: lines.join('\n'), plots, data: { ...data, failures } };
}

/**
 * 5c. Topology, SFU with simulcast: the downlink of a subscriber by the size it shows the others
 * at, and the SFU worker's CPU per forwarded stream. Per room (BENCH_SIMULCAST_SIZE pages of the
 * demo, fake camera of BENCH_SIMULCAST_RES at BENCH_SIMULCAST_FPS, video only), every page shows
 * every other participant in a tile of its own through the SDK's attachTrack (so adaptive stream
 * reports the tile's size): first small tiles (160x90), then the same pages with large tiles (the
 * camera's size: the smallest tile that takes the top layer), then fresh pages sending one layer
 * (`simulcast=0`) with small tiles, in the same run. Downlink: RTP bytes (payload + headers) of
 * `inbound-rtp` on the page's SFU receive transport over the page's own interval, averaged over
 * the pages. Over the same window: the server's mediasoup worker (its child process; CPU from
 * its threads' schedstat) divided by the video streams it forwarded (`inbound-rtp` streams that
 * received packets: a paused consumer forwards none; mediasoup's probation stream is counted
 * apart), and by the packets it received and sent; every Chromium process; the whole machine.
 * Each window starts once every tile decodes the layer it should (or after a deadline; the
 * decoded sizes are in the results). `npm run bench:simulcast`.
 */
import type { Browser, Page } from 'playwright-core';
import { simulcastEncodings } from '../client-sdk/src/simulcast.js';
import { browserUnavailableReason, buildSdk, launchBrowser } from '../test/helpers/browser.js';
import { decodedSize, resizeTile, showVideoOf } from '../test/helpers/tiles.js';
import type { BenchContext } from './lib/context.js';
import { envList, envNumber } from './lib/env.js';
import { descendantsNamed, machineCpuSeconds, machineFacts, procCpuSeconds, procRunSeconds } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { sleep } from './lib/signaling.js';
import { fmt, fmtSummary, ratioSummary, summarize, type Summary } from './lib/stats.js';
import { createRoom, waitUntil } from './topology.js';

/** One room to measure: its pages and their camera. */
export interface SimulcastRoomSpec {
  size: number;
  /** The demo's `res`, e.g. 1280x720. */
  resolution: string;
  /** The demo's `fps`: the camera's frame rate. */
  fps: number;
}

export interface SimulcastOptions {
  /** BENCH_SIMULCAST_SIZE (a list), with BENCH_SIMULCAST_RES and BENCH_SIMULCAST_FPS (one for all, or one per size). */
  rooms: SimulcastRoomSpec[];
  smallTile: [number, number];
  warmupMs: number;
  measureMs: number;
  rounds: number;
  /** How long tiles may take to reach their layer before the measurement starts anyway. */
  layerTimeoutMs: number;
}

/** A knob given once for every room, or once per room. */
function perRoom<T>(name: string, values: T[], rooms: number): (room: number) => T {
  if (values.length !== 1 && values.length !== rooms) throw new Error(`${name} needs one value, or one per BENCH_SIMULCAST_SIZE`);
  return (room) => values[values.length === 1 ? 0 : room] as T;
}

export function simulcastOptions(): SimulcastOptions {
  const sizes = envList('BENCH_SIMULCAST_SIZE', [4, 8]);
  const resolutions = (process.env.BENCH_SIMULCAST_RES || '1280x720,640x360').split(',').map((r) => r.trim());
  if (!resolutions.every((r) => /^\d+x\d+$/.test(r)))
    throw new Error(`BENCH_SIMULCAST_RES must be WxH[,WxH...], got ${resolutions.join(',')}`);
  const resolution = perRoom('BENCH_SIMULCAST_RES', resolutions, sizes.length);
  const fps = perRoom('BENCH_SIMULCAST_FPS', envList('BENCH_SIMULCAST_FPS', [15]), sizes.length);
  return {
    rooms: sizes.map((size, i) => ({ size, resolution: resolution(i), fps: fps(i) })),
    smallTile: [160, 90],
    warmupMs: envNumber('BENCH_BROWSER_WARMUP_MS', 5000),
    measureMs: envNumber('BENCH_BROWSER_MEASURE_MS', 6000),
    rounds: envNumber('BENCH_SIMULCAST_ROUNDS', 1),
    layerTimeoutMs: 60_000,
  };
}

function dimensions(resolution: string): [number, number] {
  const [width = 0, height = 0] = resolution.split('x').map(Number);
  return [width, height];
}

/** The layers the SDK sends for a camera of this size, lowest first (one without simulcast). */
function layers(resolution: string): Array<{ width: number; height: number; maxKbps: number | null }> {
  const [width, height] = dimensions(resolution);
  const encodings = simulcastEncodings(width, height);
  if (!encodings) return [{ width, height, maxKbps: null }];
  return encodings.map((e) => ({
    width: Math.round(width / e.scaleResolutionDownBy),
    height: Math.round(height / e.scaleResolutionDownBy),
    maxKbps: e.maxBitrate / 1000,
  }));
}

/** What one case (a tile size, or no simulcast) measured over its window. */
export interface CaseMeasurement {
  /** Mean video downlink per subscriber, kbit/s (RTP payload + headers), the SFU's bandwidth probation included. */
  downKbps: number;
  /** Of that, the probation packets (padding the SFU sends to probe the subscriber's downlink). */
  probationKbps: number;
  /** Video streams that received packets in the window, over every page: what the SFU forwarded (the room has n(n-1)). */
  forwardedStreams: number;
  /** Video RTP packets and kbit/s the pages received (all of them): what the SFU sent out. */
  forwardedPps: number;
  forwardedKbps: number;
  /** Probation packets/s to every page (not counted as forwarded). */
  probationPps: number;
  /** Video RTP packets/s the pages sent to the SFU (every layer): what the SFU received. */
  ingressPps: number;
  /** Mean frames decoded per second of a forwarded stream. */
  decodedFps: number;
  /** The server's mediasoup worker(s), percent of one core. */
  workerCpuPct: number;
  /** Every Chromium process, percent of one core. */
  browserCpuPct: number;
  /** Busy share of all cores, percent. */
  machineBusyPct: number;
  /** The decoded width of every tile at the end of the window. */
  decodedWidths: number[];
  /** Each sender's highest outbound video layer at the end of the window: "<rid> <width>px <fps>fps <qualityLimitationReason>". */
  senders: string[];
}

/** One round of one room. */
export interface SimulcastRound {
  small: CaseMeasurement;
  large: CaseMeasurement;
  noSimulcast: CaseMeasurement;
}

export interface SimulcastRoomResult extends SimulcastRoomSpec {
  rounds: SimulcastRound[];
  failures: string[];
}

export interface SimulcastData {
  options: SimulcastOptions;
  /** The worker with no room, over one window before the first: what it spends on nothing. */
  idleWorkerCpuPct: number;
  rooms: SimulcastRoomResult[];
}

interface StreamCounters {
  bytes: number;
  packets: number;
  frames: number;
}

interface PageSample {
  /** When the page read its counters (ms since the epoch, the middle of its getStats calls). */
  at: number;
  /** Inbound video streams of the SFU receive transport, by stats id; mediasoup's bandwidth probation stream as PROBATOR. */
  inbound: Record<string, StreamCounters>;
  /** Video RTP packets sent on the SFU send transport, every layer. */
  sentPackets: number;
}

/** The page's video counters on its SFU transports. */
function sample(page: Page): Promise<PageSample> {
  return page.evaluate(async () => {
    const startedAt = Date.now();
    type Transport = { getStats(): Promise<RTCStatsReport> } | null;
    const room = window.switchboardRoom as unknown as { sfu: { sendTransport: Transport; recvTransport: Transport } | null };
    const received = await room.sfu?.recvTransport?.getStats();
    const sent = await room.sfu?.sendTransport?.getStats();
    type Rtp = {
      id: string;
      type: string;
      kind?: string;
      bytesReceived?: number;
      headerBytesReceived?: number;
      packetsReceived?: number;
      framesDecoded?: number;
      packetsSent?: number;
      mid?: string;
      ssrc?: number;
    };
    const inbound: Record<string, { bytes: number; packets: number; frames: number }> = {};
    received?.forEach((s: Rtp) => {
      // mediasoup-client's probator (mid "probator", SSRC 1234) carries the SFU's padding-only probation packets.
      if (s.type === 'inbound-rtp' && s.kind === 'video')
        inbound[s.mid === 'probator' || s.ssrc === 1234 ? 'probator' : s.id] = {
          bytes: (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0),
          packets: s.packetsReceived ?? 0,
          frames: s.framesDecoded ?? 0,
        };
    });
    let sentPackets = 0;
    sent?.forEach((s: Rtp) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') sentPackets += s.packetsSent ?? 0;
    });
    return { at: (startedAt + Date.now()) / 2, inbound, sentPackets };
  });
}

interface CpuSample {
  at: number;
  worker: Map<number, number>;
  browser: Map<number, number>;
  machine: { busy: number; total: number };
}

/** CPU seconds so far of the server's mediasoup workers and of every Chromium process this process started. */
function cpuSample(server: ServerProcess): CpuSample {
  const seconds = (pids: number[], cpu: (pid: number) => number) => new Map(pids.map((pid) => [pid, cpu(pid)]));
  return {
    at: performance.now(),
    // The worker's few percent of a core need the scheduler's nanoseconds; Chromium's threads come and go, so its ticks.
    worker: seconds(descendantsNamed(server.pid, /^mediasoup-work/), procRunSeconds),
    browser: seconds(descendantsNamed(process.pid, /chrom/i), procCpuSeconds),
    machine: machineCpuSeconds(),
  };
}

/** Percent of one core spent between two samples (a process started in between counts from zero). */
function cpuPct(before: Map<number, number>, after: Map<number, number>, seconds: number): number {
  let spent = 0;
  for (const [pid, cpu] of after) spent += cpu - (before.get(pid) ?? 0);
  return (spent / seconds) * 100;
}

/** Downlink, forwarding and CPU over the next `ms`. */
async function measureWindow(
  server: ServerProcess,
  pages: Page[],
  ms: number,
): Promise<Omit<CaseMeasurement, 'decodedWidths' | 'senders'>> {
  const cpu0 = cpuSample(server);
  const before = await Promise.all(pages.map(sample));
  await sleep(ms);
  const after = await Promise.all(pages.map(sample));
  const cpu1 = cpuSample(server);
  const seconds = (cpu1.at - cpu0.at) / 1000;
  let downKbps = 0;
  let probationKbps = 0;
  let probationPps = 0;
  let forwardedKbps = 0;
  let forwardedStreams = 0;
  let forwardedPps = 0;
  let ingressPps = 0;
  let fpsSum = 0;
  for (const [i, b] of after.entries()) {
    const a = before[i] as PageSample;
    const pageSeconds = (b.at - a.at) / 1000;
    for (const [id, end] of Object.entries(b.inbound)) {
      const start = a.inbound[id] ?? { bytes: 0, packets: 0, frames: 0 };
      const kbps = ((end.bytes - start.bytes) * 8) / 1000 / pageSeconds;
      const pps = (end.packets - start.packets) / pageSeconds;
      downKbps += kbps / pages.length;
      if (id === 'probator') {
        probationKbps += kbps / pages.length;
        probationPps += pps;
      } else if (pps > 0) {
        forwardedStreams++;
        forwardedPps += pps;
        forwardedKbps += kbps;
        fpsSum += (end.frames - start.frames) / pageSeconds;
      }
    }
    ingressPps += (b.sentPackets - a.sentPackets) / pageSeconds;
  }
  const machineTotal = cpu1.machine.total - cpu0.machine.total;
  return {
    downKbps,
    probationKbps,
    forwardedStreams,
    forwardedPps,
    forwardedKbps,
    probationPps,
    ingressPps,
    decodedFps: forwardedStreams > 0 ? fpsSum / forwardedStreams : Number.NaN,
    workerCpuPct: cpuPct(cpu0.worker, cpu1.worker, seconds),
    browserCpuPct: cpuPct(cpu0.browser, cpu1.browser, seconds),
    machineBusyPct: machineTotal > 0 ? ((cpu1.machine.busy - cpu0.machine.busy) / machineTotal) * 100 : Number.NaN,
  };
}

const tileId = (identity: string): string => `tile-${identity}`;

class SimulcastRoom {
  readonly pages: Page[] = [];
  readonly identities: string[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly base: string,
    private readonly spec: SimulcastRoomSpec,
  ) {}

  /** N pages in an SFU room, every one decoding every other. */
  async open(server: ServerProcess, room: string, simulcast: boolean): Promise<void> {
    // Rooms over five pages get 15 s more per page, as in the topology benchmark.
    const timeoutMs = 60_000 + Math.max(0, this.spec.size - 5) * 15_000;
    await createRoom(server, room, 'sfu');
    for (let i = 0; i < this.spec.size; i++) {
      const page = await this.browser.newPage({ viewport: { width: 1280, height: 800 } });
      this.pages.push(page);
      await page.goto(
        `${this.base}/?room=${encodeURIComponent(room)}&name=s${i + 1}&res=${this.spec.resolution}&fps=${this.spec.fps}&audio=0&tiles=0${simulcast ? '' : '&simulcast=0'}`,
      );
      await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: timeoutMs });
      this.identities.push(await page.evaluate(() => window.switchboardRoom.localParticipant.identity));
    }
    await waitUntil(
      async () =>
        (
          await Promise.all(
            this.pages.map((p) =>
              p.evaluate(async (n) => {
                const stats = await window.switchboardRoom.getParticipantStats();
                return stats.size === n && [...stats.values()].every((s) => s.framesDecoded > 0);
              }, this.spec.size - 1),
            ),
          )
        ).every(Boolean),
      timeoutMs,
      'video from every participant',
      this.pages,
    );
  }

  /** Every page shows every other participant in a tile of this size (made on the first call). */
  async showTiles(width: number, height: number): Promise<void> {
    for (const [i, page] of this.pages.entries()) {
      for (const identity of this.identities) {
        if (identity === this.identities[i]) continue;
        const exists = await page.evaluate((id) => document.getElementById(id) !== null, tileId(identity));
        if (exists) await resizeTile(page, tileId(identity), width, height);
        else await waitUntil(() => showVideoOf(page, identity, tileId(identity), width, height), 30_000, `a video track of ${identity}`);
      }
    }
  }

  /** Each page's highest outbound video layer now: "<rid> <frameWidth>px <framesPerSecond>fps <qualityLimitationReason>". */
  async senders(): Promise<string[]> {
    return Promise.all(
      this.pages.map((page) =>
        page.evaluate(async () => {
          const room = window.switchboardRoom as unknown as {
            sfu: { sendTransport: { getStats(): Promise<RTCStatsReport> } | null } | null;
          };
          const report = await room.sfu?.sendTransport?.getStats();
          type Layer = {
            type: string;
            kind?: string;
            rid?: string;
            frameWidth?: number;
            framesPerSecond?: number;
            qualityLimitationReason?: string;
          };
          let top: Layer | null = null;
          report?.forEach((s: Layer) => {
            if (s.type === 'outbound-rtp' && s.kind === 'video' && (s.frameWidth ?? 0) >= (top?.frameWidth ?? 0)) top = s;
          });
          const found = top as Layer | null;
          return found
            ? `${found.rid ?? '-'} ${found.frameWidth ?? 0}px ${Math.round(found.framesPerSecond ?? 0)}fps ${found.qualityLimitationReason ?? '?'}`
            : 'none';
        }),
      ),
    );
  }

  /** The decoded width of every tile. */
  async decodedWidths(): Promise<number[]> {
    const widths: number[] = [];
    for (const [i, page] of this.pages.entries())
      for (const identity of this.identities)
        if (identity !== this.identities[i]) widths.push((await decodedSize(page, tileId(identity))).width);
    return widths;
  }

  /** Waits (up to the deadline) until every tile decodes frames `width` wide; resolves whether they all did. */
  async waitForWidth(width: number, timeoutMs: number): Promise<boolean> {
    return waitUntil(async () => (await this.decodedWidths()).every((w) => w === width), timeoutMs, `every tile at ${width} wide`).then(
      () => true,
      () => false,
    );
  }

  /** Tiles of this size, then (once they decode `width`, or at the deadline) a warm-up and the window. */
  async measure(server: ServerProcess, tile: [number, number], width: number, options: SimulcastOptions): Promise<CaseMeasurement> {
    await this.showTiles(...tile);
    await this.waitForWidth(width, options.layerTimeoutMs);
    await sleep(options.warmupMs);
    const measured = await measureWindow(server, this.pages, options.measureMs);
    return { ...measured, decodedWidths: await this.decodedWidths(), senders: await this.senders() };
  }

  async close(): Promise<void> {
    await Promise.all(this.pages.splice(0).map((p) => p.close().catch(() => undefined)));
  }
}

async function measureRound(
  server: ServerProcess,
  browser: Browser,
  base: string,
  spec: SimulcastRoomSpec,
  options: SimulcastOptions,
  tag: string,
): Promise<SimulcastRound> {
  const sent = layers(spec.resolution);
  const [width, height] = dimensions(spec.resolution);
  const on = new SimulcastRoom(browser, base, spec);
  const off = new SimulcastRoom(browser, base, spec);
  try {
    await on.open(server, `simulcast-on-${spec.size}-${tag}`, true);
    const small = await on.measure(server, options.smallTile, sent[0]?.width ?? width, options);
    const large = await on.measure(server, [width, height], width, options);
    await on.close();
    await off.open(server, `simulcast-off-${spec.size}-${tag}`, false);
    const noSimulcast = await off.measure(server, options.smallTile, width, options);
    return { small, large, noSimulcast };
  } finally {
    await on.close();
    await off.close();
  }
}

export async function runSimulcast(ctx: BenchContext, options: SimulcastOptions = simulcastOptions()): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(false);
  const unavailable = browserUnavailableReason();
  if (unavailable) throw new Error(`simulcast benchmark needs Chromium: ${unavailable} (BENCH_BROWSER=0 skips it)`);
  buildSdk();
  const server = await ctx.servers.get(
    'switchboard',
    { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', ROOM_EMPTY_TIMEOUT_MS: '1000' },
    { cpus: null },
  );
  const browser = await launchBrowser();
  const base = server.url.replace('127.0.0.1', 'localhost');
  const rooms: SimulcastRoomResult[] = options.rooms.map((spec) => ({ ...spec, rounds: [], failures: [] }));
  const idle0 = cpuSample(server);
  await sleep(options.measureMs);
  const idle1 = cpuSample(server);
  const idleWorkerCpuPct = cpuPct(idle0.worker, idle1.worker, (idle1.at - idle0.at) / 1000);
  ctx.log(`simulcast: the worker with no room: ${fmt(idleWorkerCpuPct)}% of a core`);
  const caseLine = (label: string, c: CaseMeasurement) =>
    `${label} ${fmt(c.downKbps)} kbps per subscriber, ${c.forwardedStreams} streams forwarded (${fmt(c.forwardedPps)} packets/s out, ${fmt(c.ingressPps)} in), worker ${fmt(c.workerCpuPct)}% of a core, Chromium ${fmt(c.browserCpuPct)}%, machine ${fmt(c.machineBusyPct)}% busy, decoded ${fmt(c.decodedFps)} fps, widths ${[...new Set(c.decodedWidths)].join('/')}, senders ${c.senders.join(', ')}`;
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const room of rooms) {
        const label = `simulcast round ${round + 1}/${options.rounds}, room of ${room.size} at ${room.resolution} ${room.fps} fps`;
        try {
          const r = await measureRound(server, browser, base, room, options, `${process.pid}-${round}`);
          room.rounds.push(r);
          ctx.log(
            `${label}: ${caseLine('small tiles:', r.small)}; ${caseLine('large tiles:', r.large)}; ${caseLine('no simulcast:', r.noSimulcast)}`,
          );
        } catch (error) {
          ctx.log(`${label}: failed: ${(error as Error).message}`);
          room.failures.push((error as Error).message);
        }
      }
    }
  } finally {
    await browser.close();
  }
  return renderSimulcast(
    { options, idleWorkerCpuPct, rooms },
    { machine, wallS: (performance.now() - started) / 1000, rounds: options.rounds, pin: false },
  );
}

/** Worker CPU-ms per second per forwarded stream (10 = 1% of a core). */
const workerMsPerStream = (c: CaseMeasurement): number =>
  c.forwardedStreams > 0 ? (c.workerCpuPct * 10) / c.forwardedStreams : Number.NaN;
/** Worker CPU microseconds per video packet it received or sent (probation included). */
const workerUsPerPacket = (c: CaseMeasurement): number => {
  const packets = c.forwardedPps + c.probationPps + c.ingressPps;
  return packets > 0 ? (c.workerCpuPct / 100 / packets) * 1e6 : Number.NaN;
};

/** A count across rounds: "56", or "54 (52–56)". */
function fmtCount(summary: Summary): string {
  const n = (v: number) => (Number.isFinite(v) ? String(Math.round(v)) : 'n/a');
  return summary.rounds <= 1 || summary.min === summary.max
    ? n(summary.median)
    : `${n(summary.median)} (${n(summary.min)}–${n(summary.max)})`;
}

/** Equal strings counted: "r1 640px 15fps none ×7, r1 640px 9fps cpu ×1". */
function tally(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([v, n]) => `${v} ×${n}`).join(', ');
}

function renderRoom(room: SimulcastRoomResult, options: SimulcastOptions): { headline: HeadlineRow[]; lines: string[] } {
  const { rounds, size, resolution, fps } = room;
  const [width, height] = dimensions(resolution);
  const smallTile = options.smallTile.join('x');
  const largeTile = `${width}x${height}`;
  const cases: Array<{ label: string; pick: (r: SimulcastRound) => CaseMeasurement; baseline?: true }> = [
    { label: `simulcast, ${smallTile} tiles`, pick: (r) => r.small },
    { label: `simulcast, ${largeTile} tiles`, pick: (r) => r.large },
    { label: `no simulcast, ${smallTile} tiles`, pick: (r) => r.noSimulcast, baseline: true },
  ];
  const of = (pick: (r: SimulcastRound) => CaseMeasurement, value: (c: CaseMeasurement) => number): Summary =>
    summarize(rounds.map((r) => value(pick(r))));
  const ratio = (
    pick: (r: SimulcastRound) => CaseMeasurement,
    base: (r: SimulcastRound) => CaseMeasurement,
    value: (c: CaseMeasurement) => number,
  ) =>
    ratioSummary(
      rounds.map((r) => value(pick(r))),
      rounds.map((r) => value(base(r))),
    );
  const down = (c: CaseMeasurement) => c.downKbps;
  const smallVsNone = ratio(
    (r) => r.small,
    (r) => r.noSimulcast,
    down,
  );
  const smallVsLarge = ratio(
    (r) => r.small,
    (r) => r.large,
    down,
  );
  const perStreamLargeVsNone = ratio(
    (r) => r.large,
    (r) => r.noSimulcast,
    workerMsPerStream,
  );
  const headline: HeadlineRow[] = [
    {
      metric: `downlink kbps per subscriber, SFU room of ${size} (${resolution} cameras at ${fps} fps), ${smallTile} tiles (baseline: no simulcast)`,
      baseline: fmt(of((r) => r.noSimulcast, down).median),
      switchboard: fmt(of((r) => r.small, down).median),
      ratio: fmtSummary(smallVsNone, 2),
      target: '< 0.5',
      verdict: Number.isFinite(smallVsNone.max) ? (smallVsNone.max < 0.5 ? 'met' : 'missed') : 'n/a',
    },
    {
      metric: `downlink kbps per subscriber, room of ${size}, ${smallTile} tiles vs ${largeTile} tiles (baseline: large)`,
      baseline: fmt(of((r) => r.large, down).median),
      switchboard: fmt(of((r) => r.small, down).median),
      ratio: fmtSummary(smallVsLarge, 2),
      target: '',
      verdict: '',
    },
    {
      metric: `SFU worker CPU-ms/s per forwarded stream, room of ${size}, simulcast with ${largeTile} tiles (baseline: no simulcast)`,
      baseline: fmt(of((r) => r.noSimulcast, workerMsPerStream).median),
      switchboard: fmt(of((r) => r.large, workerMsPerStream).median),
      ratio: fmtSummary(perStreamLargeVsNone, 2),
      target: '',
      verdict: '',
    },
  ];
  const sent = layers(resolution);
  const layerText =
    sent.length > 1
      ? `${sent.length} VP8 layers (${sent.map((l) => `${l.width}x${l.height} at ${fmt(l.maxKbps ?? Number.NaN)} kbit/s`).join(', ')})`
      : 'one layer (the SDK sends no lower layer at this size)';
  const widths = (pick: (r: SimulcastRound) => CaseMeasurement) =>
    [...new Set(rounds.flatMap((r) => pick(r).decodedWidths))].sort((a, b) => a - b).join(', ');
  const lines: string[] = [];
  lines.push(`### Room of ${size}, ${resolution} cameras at ${fps} fps`);
  lines.push('');
  lines.push(
    `Simulcast sends each camera as ${layerText}; without simulcast, one uncapped layer. Each page receives ${size - 1} videos: ${size * (size - 1)} streams in the room. ${rounds.length} round(s).`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      [
        'case',
        'downlink kbps per subscriber',
        'of which probation',
        'vs no simulcast',
        'decoded widths of the tiles (px)',
        'decoded fps per tile',
      ],
      cases.map(({ label, pick, baseline }) => [
        label,
        fmtSummary(of(pick, down)),
        fmtSummary(of(pick, (c) => c.probationKbps)),
        baseline
          ? '1'
          : fmtSummary(
              ratio(pick, (r) => r.noSimulcast, down),
              2,
            ),
        widths(pick),
        fmtSummary(of(pick, (c) => c.decodedFps)),
      ]),
    ),
  );
  lines.push('');
  lines.push(`Small tiles vs large tiles, same pages: ${fmtSummary(smallVsLarge, 2)}x the downlink.`);
  lines.push('');
  lines.push(
    markdownTable(
      [
        'case',
        'streams forwarded',
        'packets/s forwarded',
        'kbit/s forwarded',
        'packets/s into the SFU',
        'worker CPU, % of a core',
        'worker CPU-ms/s per forwarded stream',
        'worker µs per packet (in + out)',
        'Chromium CPU, % of a core per page',
        'machine busy, % of all cores',
      ],
      cases.map(({ label, pick }) => [
        label,
        `${fmtCount(of(pick, (c) => c.forwardedStreams))} of ${size * (size - 1)}`,
        fmtSummary(of(pick, (c) => c.forwardedPps)),
        fmtSummary(of(pick, (c) => c.forwardedKbps)),
        fmtSummary(of(pick, (c) => c.ingressPps)),
        fmtSummary(of(pick, (c) => c.workerCpuPct)),
        fmtSummary(of(pick, workerMsPerStream)),
        fmtSummary(of(pick, workerUsPerPacket)),
        fmtSummary(of(pick, (c) => c.browserCpuPct / size)),
        fmtSummary(of(pick, (c) => c.machineBusyPct)),
      ]),
    ),
  );
  const senders = rounds.map(
    (r, i) => `round ${i + 1}: ${cases.map(({ label, pick }) => `${label.replace(/ tiles$/, '')}: ${tally(pick(r).senders)}`).join('; ')}`,
  );
  if (senders.length) {
    lines.push('');
    lines.push(
      `Each sender's highest outbound layer at the end of each window (rid, frame width, frames per second, Chromium's \`qualityLimitationReason\`; ×n: how many senders): ${senders.join('. ')}.`,
    );
  }
  if (room.failures.length) {
    lines.push('');
    lines.push(`Rounds that failed: ${room.failures.map((f) => `\`${f.slice(0, 300)}\``).join('; ')}.`);
  }
  return { headline, lines };
}

export function renderSimulcast(data: SimulcastData, meta: RenderMeta): Section {
  const { options, rooms } = data;
  const machine = { ...meta.machine, pinning: 'nothing pinned: browsers, server and mediasoup worker share every core' };
  const smallTile = options.smallTile.join('x');
  const lines: string[] = [];
  lines.push(
    `Chromium (the demo page; fake camera, no microphone), each room's pages in an SFU room (pinned with \`mode: sfu\`, one mediasoup worker); each page shows every other participant in a tile of its own through \`attachTrack\`, so the SDK's adaptive stream reports the tile's size and the SFU picks the layer (\`sfu:consumer_preferences\`). Measured in the same run, per room: the room with ${smallTile} tiles, the same pages with tiles of the camera's size (the smallest that takes the top layer), then a room of new pages sending one layer (\`?simulcast=0\`, uncapped) with ${smallTile} tiles. Each window is ${options.measureMs / 1000} s, after every tile decodes its layer (or ${options.layerTimeoutMs / 1000} s passed) and a ${options.warmupMs / 1000} s warm-up. Downlink: video RTP bytes (payload + headers) on each page's SFU receive transport, averaged over the pages. Streams forwarded: the \`inbound-rtp\` video streams that received packets in the window (a paused consumer forwards none); mediasoup's bandwidth probation (padding on its own stream) is counted in the downlink, apart, and not as a stream. Worker CPU: the run time of the server's \`mediasoup-worker\` child process over the window (its threads' \`/proc\` schedstat), divided by the streams forwarded (CPU-ms per second; 10 = 1% of a core) and by the video packets it received and sent (the senders' \`outbound-rtp\` packets, every layer, and the subscribers' \`inbound-rtp\` packets); it includes receiving every layer of every camera, RTCP and the bandwidth estimation (with no room, over one window before the first, the worker used ${fmt(data.idleWorkerCpuPct)}% of a core). Chromium CPU: every browser process, divided by the pages. Figures are medians over the rounds with their range; a ratio is the ratio of the medians, with the range of the per-round ratios.`,
  );
  const headline: HeadlineRow[] = [];
  for (const room of rooms) {
    const rendered = renderRoom(room, options);
    headline.push(...rendered.headline);
    lines.push('');
    lines.push(...rendered.lines);
  }
  return {
    name: 'simulcast',
    title: '5c. Topology: SFU downlink with simulcast and adaptive stream',
    machine,
    wallS: meta.wallS,
    headline,
    markdown: lines.join('\n'),
    plots: [],
    data,
  };
}

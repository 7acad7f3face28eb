/**
 * 5c. Topology, SFU with simulcast: the downlink of a subscriber by the size it shows the others
 * at. An SFU room of Chromium pages (the demo page, fake camera at 1280x720 and 15 fps, video
 * only), each showing every other participant in a tile of its own through the SDK's attachTrack
 * (so adaptive stream reports the tile's size): first small tiles (160x90), then the same pages
 * with large tiles (1280x720), then a room of fresh pages sending one layer (`simulcast=0`) with
 * small tiles, all in the same run. Downlink: RTP bytes (payload + headers) of `inbound-rtp` on
 * the page's SFU receive transport, over each page's own interval, averaged over the pages.
 * Each measurement starts once every tile decodes the layer it should (or after a deadline, the
 * decoded sizes are then in the results). `npm run bench:simulcast`.
 */
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, launchBrowser } from '../test/helpers/browser.js';
import { decodedSize, resizeTile, showVideoOf } from '../test/helpers/tiles.js';
import type { BenchContext } from './lib/context.js';
import { envNumber } from './lib/env.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import type { ServerProcess } from './lib/ServerProcess.js';
import { sleep } from './lib/signaling.js';
import { fmt, fmtSummary, summarize } from './lib/stats.js';
import { createRoom, waitUntil } from './topology.js';

export interface SimulcastOptions {
  /** Pages in the SFU room (BENCH_SIMULCAST_SIZE). */
  size: number;
  resolution: string;
  smallTile: [number, number];
  largeTile: [number, number];
  warmupMs: number;
  measureMs: number;
  rounds: number;
  /** How long tiles may take to reach their layer before the measurement starts anyway. */
  layerTimeoutMs: number;
}

export function simulcastOptions(): SimulcastOptions {
  return {
    size: envNumber('BENCH_SIMULCAST_SIZE', 4),
    resolution: process.env.BENCH_SIMULCAST_RES ?? '1280x720',
    smallTile: [160, 90],
    largeTile: [1280, 720],
    warmupMs: envNumber('BENCH_BROWSER_WARMUP_MS', 5000),
    measureMs: envNumber('BENCH_BROWSER_MEASURE_MS', 6000),
    rounds: envNumber('BENCH_SIMULCAST_ROUNDS', 1),
    layerTimeoutMs: 60_000,
  };
}

/** One round: mean downlink per subscriber, kbit/s, and the decoded widths of every tile when measured. */
export interface SimulcastRound {
  smallKbps: number;
  largeKbps: number;
  noSimulcastKbps: number;
  decodedWidths: { small: number[]; large: number[]; noSimulcast: number[] };
  /**
   * What each sender's top layer was at the end of the large-tile window (its outbound-rtp:
   * frame width and Chromium's qualityLimitationReason), to tell a sender that dropped its top
   * layer (CPU, bandwidth) from the SFU forwarding a lower one. Absent in older results.
   */
  senderTopLayers?: string[];
}

interface DownSample {
  bytes: number;
  at: number;
}

/** Video bytes received on the page's SFU receive transport, and when they were read. */
function downlink(page: Page): Promise<DownSample> {
  return page.evaluate(async () => {
    const startedAt = Date.now();
    const room = window.switchboardRoom as unknown as { sfu: { recvTransport: { getStats(): Promise<RTCStatsReport> } | null } | null };
    const report = await room.sfu?.recvTransport?.getStats();
    let bytes = 0;
    report?.forEach((s: { type: string; kind?: string; bytesReceived?: number; headerBytesReceived?: number }) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') bytes += (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0);
    });
    return { bytes, at: (startedAt + Date.now()) / 2 };
  });
}

/** Mean downlink per page over the next `ms`, kbit/s. */
async function measureDownlink(pages: Page[], ms: number): Promise<number> {
  const before = await Promise.all(pages.map(downlink));
  await sleep(ms);
  const after = await Promise.all(pages.map(downlink));
  const rates = pages.map((_, i) => {
    const [a, b] = [before[i] as DownSample, after[i] as DownSample];
    return ((b.bytes - a.bytes) * 8) / (b.at - a.at);
  });
  return rates.reduce((sum, rate) => sum + rate, 0) / pages.length;
}

const tileId = (identity: string): string => `tile-${identity}`;

class SimulcastRoom {
  readonly pages: Page[] = [];
  readonly identities: string[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly base: string,
    private readonly options: SimulcastOptions,
  ) {}

  /** N pages in an SFU room, every one decoding every other. */
  async open(server: ServerProcess, room: string, simulcast: boolean): Promise<void> {
    await createRoom(server, room, 'sfu');
    for (let i = 0; i < this.options.size; i++) {
      const page = await this.browser.newPage({ viewport: { width: 1280, height: 800 } });
      this.pages.push(page);
      await page.goto(
        `${this.base}/?room=${encodeURIComponent(room)}&name=s${i + 1}&res=${this.options.resolution}&audio=0&tiles=0${simulcast ? '' : '&simulcast=0'}`,
      );
      await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 60_000 });
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
              }, this.options.size - 1),
            ),
          )
        ).every(Boolean),
      60_000,
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

  /** Each page's highest outbound video layer now: "<rid> <frameWidth>px <qualityLimitationReason>". */
  async senderTopLayers(): Promise<string[]> {
    return Promise.all(
      this.pages.map((page) =>
        page.evaluate(async () => {
          const room = window.switchboardRoom as unknown as {
            sfu: { sendTransport: { getStats(): Promise<RTCStatsReport> } | null } | null;
          };
          const report = await room.sfu?.sendTransport?.getStats();
          let top: { rid?: string; frameWidth?: number; qualityLimitationReason?: string } | null = null;
          report?.forEach((s: { type: string; kind?: string; rid?: string; frameWidth?: number; qualityLimitationReason?: string }) => {
            if (s.type === 'outbound-rtp' && s.kind === 'video' && (s.frameWidth ?? 0) >= (top?.frameWidth ?? 0)) top = s;
          });
          const found = top as { rid?: string; frameWidth?: number; qualityLimitationReason?: string } | null;
          return found ? `${found.rid ?? '-'} ${found.frameWidth ?? 0}px ${found.qualityLimitationReason ?? '?'}` : 'none';
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

  async close(): Promise<void> {
    await Promise.all(this.pages.splice(0).map((p) => p.close().catch(() => undefined)));
  }
}

async function measureRound(
  server: ServerProcess,
  browser: Browser,
  base: string,
  options: SimulcastOptions,
  tag: string,
): Promise<SimulcastRound> {
  const width = Number(options.resolution.split('x')[0]);
  const smallLayerWidth = Math.round(width / 4);
  const on = new SimulcastRoom(browser, base, options);
  const off = new SimulcastRoom(browser, base, options);
  try {
    await on.open(server, `simulcast-on-${tag}`, true);
    await on.showTiles(...options.smallTile);
    await on.waitForWidth(smallLayerWidth, options.layerTimeoutMs);
    await sleep(options.warmupMs);
    const smallKbps = await measureDownlink(on.pages, options.measureMs);
    const small = await on.decodedWidths();
    await on.showTiles(...options.largeTile);
    await on.waitForWidth(width, options.layerTimeoutMs);
    await sleep(options.warmupMs);
    const largeKbps = await measureDownlink(on.pages, options.measureMs);
    const large = await on.decodedWidths();
    const senderTopLayers = await on.senderTopLayers();
    await on.close();

    await off.open(server, `simulcast-off-${tag}`, false);
    await off.showTiles(...options.smallTile);
    await off.waitForWidth(width, options.layerTimeoutMs);
    await sleep(options.warmupMs);
    const noSimulcastKbps = await measureDownlink(off.pages, options.measureMs);
    const noSimulcast = await off.decodedWidths();
    return { smallKbps, largeKbps, noSimulcastKbps, decodedWidths: { small, large, noSimulcast }, senderTopLayers };
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
  const rounds: SimulcastRound[] = [];
  const failures: string[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      try {
        const r = await measureRound(server, browser, base, options, `${process.pid}-${round}`);
        rounds.push(r);
        ctx.log(
          `simulcast round ${round + 1}/${options.rounds}: downlink per subscriber ${fmt(r.smallKbps)} kbps (small tiles), ${fmt(r.largeKbps)} kbps (large tiles), ${fmt(r.noSimulcastKbps)} kbps (no simulcast, small tiles); decoded widths ${JSON.stringify(r.decodedWidths)}; senders' top layers at the end of the large-tile window: ${(r.senderTopLayers ?? []).join(', ')}`,
        );
      } catch (error) {
        ctx.log(`simulcast round ${round + 1}: failed: ${(error as Error).message}`);
        failures.push((error as Error).message);
      }
    }
  } finally {
    await browser.close();
  }
  return renderSimulcast(
    { options, rounds, failures },
    { machine, wallS: (performance.now() - started) / 1000, rounds: options.rounds, pin: false },
  );
}

export interface SimulcastData {
  options: SimulcastOptions;
  rounds: SimulcastRound[];
  failures: string[];
}

export function renderSimulcast(data: SimulcastData, meta: RenderMeta): Section {
  const { options, rounds, failures } = data;
  const machine = { ...meta.machine, pinning: 'nothing pinned: browsers, server and mediasoup worker share every core' };
  const small = summarize(rounds.map((r) => r.smallKbps));
  const large = summarize(rounds.map((r) => r.largeKbps));
  const none = summarize(rounds.map((r) => r.noSimulcastKbps));
  const ratio = (pick: (r: SimulcastRound) => number, base: (r: SimulcastRound) => number) =>
    summarize(rounds.map((r) => (base(r) > 0 ? pick(r) / base(r) : Number.NaN)));
  const smallVsNone = ratio(
    (r) => r.smallKbps,
    (r) => r.noSimulcastKbps,
  );
  const smallVsLarge = ratio(
    (r) => r.smallKbps,
    (r) => r.largeKbps,
  );
  const largeVsNone = ratio(
    (r) => r.largeKbps,
    (r) => r.noSimulcastKbps,
  );
  const widths = (pick: (r: SimulcastRound) => number[]) => [...new Set(rounds.flatMap(pick))].sort((a, b) => a - b).join(', ');
  const headline: HeadlineRow[] = [
    {
      metric: `downlink kbps per subscriber, SFU room of ${options.size}, ${options.smallTile.join('x')} tiles (baseline: no simulcast)`,
      baseline: fmt(none.median),
      switchboard: fmt(small.median),
      ratio: fmtSummary(smallVsNone, 2),
      target: '< 0.5',
      verdict: Number.isFinite(smallVsNone.max) ? (smallVsNone.max < 0.5 ? 'met' : 'missed') : 'n/a',
    },
    {
      metric: `downlink kbps per subscriber, ${options.smallTile.join('x')} tiles vs ${options.largeTile.join('x')} tiles (baseline: large)`,
      baseline: fmt(large.median),
      switchboard: fmt(small.median),
      ratio: fmtSummary(smallVsLarge, 2),
      target: '',
      verdict: '',
    },
  ];
  const lines: string[] = [];
  lines.push(
    `Chromium (the demo page; fake camera ${options.resolution} at 15 fps, no microphone), ${options.size} pages in an SFU room (pinned with \`mode: sfu\`); each page shows every other participant in a tile of its own through \`attachTrack\`, so the SDK's adaptive stream reports the tile's size and the SFU picks the layer (\`sfu:consumer_preferences\`). Simulcast: the SDK sends the ${options.resolution} camera as three VP8 layers (1/4, 1/2, full; 100, 300, 900 kbit/s caps). Measured in the same run: the room with ${options.smallTile.join('x')} tiles, the same pages with ${options.largeTile.join('x')} tiles, then a room of new pages sending one layer (\`?simulcast=0\`, uncapped) with ${options.smallTile.join('x')} tiles. Downlink: video RTP bytes (payload + headers) on each page's SFU receive transport, over ${options.measureMs / 1000} s after every tile decodes its layer (or ${options.layerTimeoutMs / 1000} s passed) and a ${options.warmupMs / 1000} s warm-up, averaged over the pages (each receives ${options.size - 1} videos). ${rounds.length} round(s).`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      ['case', 'downlink kbps per subscriber', 'vs no simulcast', 'decoded widths of the tiles (px)'],
      [
        [
          `simulcast, ${options.smallTile.join('x')} tiles`,
          fmtSummary(small),
          fmtSummary(smallVsNone, 2),
          widths((r) => r.decodedWidths.small),
        ],
        [
          `simulcast, ${options.largeTile.join('x')} tiles`,
          fmtSummary(large),
          fmtSummary(largeVsNone, 2),
          widths((r) => r.decodedWidths.large),
        ],
        [`no simulcast, ${options.smallTile.join('x')} tiles`, fmtSummary(none), '1', widths((r) => r.decodedWidths.noSimulcast)],
      ],
    ),
  );
  lines.push('');
  lines.push(`Small tiles vs large tiles, same pages: ${fmtSummary(smallVsLarge, 2)}x the downlink.`);
  const senders = rounds.flatMap((r, i) => (r.senderTopLayers ? [`round ${i + 1}: ${r.senderTopLayers.join(', ')}`] : []));
  if (senders.length) {
    lines.push('');
    lines.push(
      `Each sender's highest outbound layer at the end of the large-tile window (rid, frame width, Chromium's \`qualityLimitationReason\`): ${senders.join('; ')}.`,
    );
  }
  if (failures.length) {
    lines.push('');
    lines.push(`Rounds that failed: ${failures.map((f) => `\`${f.slice(0, 300)}\``).join('; ')}.`);
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

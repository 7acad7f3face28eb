/**
 * 8. Binary data throughput through a mesh link: the SDK (`await room.send(bytes)`, binary
 * frames, exactly-once sequencing, backpressure) against a raw RTCDataChannel on the same
 * peer connection of the same two Chromium pages (opened on the SDK's link, so both share one
 * SCTP association; the raw loop is the usual careful one: wait for 'bufferedamountlow' while
 * bufferedAmount is above 1 MiB). Each round sends BENCH_DATA_MB of BENCH_DATA_MESSAGE_KB
 * messages each way, baseline and SDK back to back, order alternating by round; throughput is
 * payload bits from the first send to the last message received. The SDK's bufferedDataBytes
 * (its queue plus the channels' bufferedAmount) is sampled during its loop.
 */
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, launchBrowser, openDemoPage } from '../test/helpers/browser.js';
import type { BenchContext } from './lib/context.js';
import { envNumber } from './lib/env.js';
import { machineFacts } from './lib/processes.js';
import { markdownTable, verdict, type HeadlineRow, type RenderMeta, type Section } from './lib/report.js';
import { fmt, fmtRatio, fmtSummary, ratioSummary, summarize } from './lib/stats.js';

export interface DataRound {
  order: Array<'raw' | 'sdk'>;
  rawMbps: number;
  sdkMbps: number;
  /** The SDK sender's largest bufferedDataBytes sampled during its loop. */
  sdkMaxBufferedBytes: number;
  /** The raw sender's largest bufferedAmount. */
  rawMaxBufferedBytes: number;
}

export interface DataResult {
  messageBytes: number;
  messages: number;
  rounds: DataRound[];
}

/** A message loop's figures, as the pages report them. */
interface Loop {
  startedAt: number;
  lastAt: number;
  received: number;
  maxBuffered: number;
}

const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** Opens a raw channel on the SDK's link from `sender` to `receiver`, ready to count what arrives. */
async function openRawChannel(sender: Page, receiver: Page, label: string): Promise<void> {
  await receiver.evaluate((name) => {
    const room = window.switchboardRoom as unknown as { links: Map<string, { pc: RTCPeerConnection }> };
    const link = [...room.links.values()][0];
    if (!link) throw new Error('no mesh link');
    const w = window as unknown as { raw: { received: number; lastAt: number } };
    w.raw = { received: 0, lastAt: 0 };
    link.pc.addEventListener('datachannel', ({ channel }) => {
      if (channel.label !== name) return;
      channel.binaryType = 'arraybuffer';
      channel.onmessage = () => {
        w.raw.received++;
        w.raw.lastAt = Date.now();
      };
    });
  }, label);
  await sender.evaluate(async (name) => {
    const room = window.switchboardRoom as unknown as { links: Map<string, { pc: RTCPeerConnection }> };
    const link = [...room.links.values()][0];
    if (!link) throw new Error('no mesh link');
    const channel = link.pc.createDataChannel(name, { ordered: true });
    await new Promise<void>((resolve) => (channel.onopen = () => resolve()));
    (window as unknown as { rawChannel: RTCDataChannel }).rawChannel = channel;
  }, label);
}

async function rawLoop(sender: Page, receiver: Page, messages: number, bytes: number): Promise<Loop> {
  await receiver.evaluate(() => {
    const w = window as unknown as { raw: { received: number; lastAt: number } };
    w.raw.received = 0;
  });
  const sent = await sender.evaluate(
    async ([count, size, high, low]) => {
      const channel = (window as unknown as { rawChannel: RTCDataChannel }).rawChannel;
      channel.bufferedAmountLowThreshold = low;
      const buffer = new Uint8Array(size);
      const view = new DataView(buffer.buffer);
      let maxBuffered = 0;
      const startedAt = Date.now();
      for (let n = 1; n <= count; n++) {
        if (channel.bufferedAmount > high)
          await new Promise<void>((resolve) => channel.addEventListener('bufferedamountlow', () => resolve(), { once: true }));
        view.setUint32(0, n);
        channel.send(buffer);
        maxBuffered = Math.max(maxBuffered, channel.bufferedAmount);
      }
      return { startedAt, maxBuffered };
    },
    [messages, bytes, HIGH_WATER, LOW_WATER] as const,
  );
  const done = await waitForCount(receiver, messages, () =>
    receiver.evaluate(() => (window as unknown as { raw: { received: number; lastAt: number } }).raw),
  );
  return { startedAt: sent.startedAt, lastAt: done.lastAt, received: done.received, maxBuffered: sent.maxBuffered };
}

async function sdkLoop(sender: Page, receiver: Page, messages: number, bytes: number, topic: string): Promise<Loop> {
  await receiver.evaluate((name) => {
    const w = window as unknown as { sdk: { received: number; lastAt: number } };
    w.sdk = { received: 0, lastAt: 0 };
    window.switchboardRoom.on('data', (payload: unknown, _participant: unknown, info: unknown) => {
      if (!(payload instanceof Uint8Array) || (info as { topic?: string }).topic !== name) return;
      w.sdk.received++;
      w.sdk.lastAt = Date.now();
    });
  }, topic);
  const sent = await sender.evaluate(
    async ([count, size, name]) => {
      const room = window.switchboardRoom as unknown as {
        send(payload: Uint8Array, options: { topic: string }): Promise<void>;
        bufferedDataBytes: number;
      };
      const buffer = new Uint8Array(size);
      const view = new DataView(buffer.buffer);
      let maxBuffered = 0;
      const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, room.bufferedDataBytes)), 5);
      const startedAt = Date.now();
      for (let n = 1; n <= count; n++) {
        view.setUint32(0, n);
        await room.send(buffer, { topic: name });
        maxBuffered = Math.max(maxBuffered, room.bufferedDataBytes);
      }
      clearInterval(sampler);
      return { startedAt, maxBuffered };
    },
    [messages, bytes, topic] as const,
  );
  const done = await waitForCount(receiver, messages, () =>
    receiver.evaluate(() => (window as unknown as { sdk: { received: number; lastAt: number } }).sdk),
  );
  return { startedAt: sent.startedAt, lastAt: done.lastAt, received: done.received, maxBuffered: sent.maxBuffered };
}

async function waitForCount(
  page: Page,
  count: number,
  read: () => Promise<{ received: number; lastAt: number }>,
): Promise<{ received: number; lastAt: number }> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const state = await read();
    if (state.received >= count) return state;
    if (Date.now() > deadline) throw new Error(`only ${state.received} of ${count} messages arrived on ${page.url()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const mbps = (loop: Loop, messages: number, bytes: number): number =>
  (messages * bytes * 8) / ((loop.lastAt - loop.startedAt) / 1000) / 1e6;

export async function runData(ctx: BenchContext): Promise<Section> {
  const started = performance.now();
  const machine = machineFacts(false);
  const unavailable = browserUnavailableReason();
  if (unavailable) throw new Error(`data benchmark needs Chromium: ${unavailable}`);
  const messageBytes = envNumber('BENCH_DATA_MESSAGE_KB', 64) * 1024;
  const messages = Math.max(1, Math.round((envNumber('BENCH_DATA_MB', ctx.smoke ? 1 : 50) * 1024 * 1024) / messageBytes));
  buildSdk();
  const server = await ctx.servers.get('switchboard', {}, { cpus: null });
  let browser: Browser | null = null;
  const rounds: DataRound[] = [];
  try {
    browser = await launchBrowser();
    const base = server.url.replace('127.0.0.1', 'localhost');
    const room = `bench-data-${process.pid}`;
    const sender = await openDemoPage(browser, base, `room=${room}&name=sender&res=160x120&audio=0`, { width: 480, height: 360 });
    const receiver = await openDemoPage(browser, base, `room=${room}&name=receiver&res=160x120&audio=0`, { width: 480, height: 360 });
    // The link is up once an SDK message arrives.
    await sdkLoop(sender, receiver, 1, 1024, 'warm-up');
    for (let round = 0; round < ctx.rounds; round++) {
      const order: Array<'raw' | 'sdk'> = round % 2 === 0 ? ['raw', 'sdk'] : ['sdk', 'raw'];
      const loops: Partial<Record<'raw' | 'sdk', Loop>> = {};
      for (const kind of order) {
        if (kind === 'raw') {
          await openRawChannel(sender, receiver, `raw-${round}`);
          loops.raw = await rawLoop(sender, receiver, messages, messageBytes);
        } else loops.sdk = await sdkLoop(sender, receiver, messages, messageBytes, `bench-${round}`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const raw = loops.raw as Loop;
      const sdk = loops.sdk as Loop;
      const measured: DataRound = {
        order,
        rawMbps: mbps(raw, messages, messageBytes),
        sdkMbps: mbps(sdk, messages, messageBytes),
        sdkMaxBufferedBytes: sdk.maxBuffered,
        rawMaxBufferedBytes: raw.maxBuffered,
      };
      rounds.push(measured);
      ctx.log(
        `data round ${round + 1}/${ctx.rounds} (${order.join(' then ')}): raw ${fmt(measured.rawMbps)} Mbit/s, SDK ${fmt(measured.sdkMbps)} Mbit/s (${fmtRatio(measured.sdkMbps / measured.rawMbps)}), SDK buffered at most ${fmt(sdk.maxBuffered / 1024)} KiB`,
      );
    }
  } finally {
    await browser?.close();
  }
  return renderData(
    { messageBytes, messages, rounds },
    {
      machine: { ...machine, pinning: 'not pinned (two Chromium pages and the server share the cores)' },
      wallS: (performance.now() - started) / 1000,
      rounds: ctx.rounds,
      pin: false,
    },
  );
}

/** The section, from the figures (also used to rebuild RESULTS.md from results/data.json). */
export function renderData(result: DataResult, meta: RenderMeta): Section {
  const raw = summarize(result.rounds.map((r) => r.rawMbps));
  const sdk = summarize(result.rounds.map((r) => r.sdkMbps));
  const ratio = ratioSummary(
    result.rounds.map((r) => r.sdkMbps),
    result.rounds.map((r) => r.rawMbps),
  );
  const buffered = summarize(result.rounds.map((r) => r.sdkMaxBufferedBytes / 1024));
  const rawBuffered = summarize(result.rounds.map((r) => r.rawMaxBufferedBytes / 1024));
  const headline: HeadlineRow[] = [
    {
      metric: `mesh binary throughput Mbit/s, ${result.messageBytes / 1024} KiB messages (baseline: raw RTCDataChannel, same link)`,
      baseline: fmtSummary(raw),
      switchboard: fmtSummary(sdk),
      ratio: fmtRatio(ratio.median),
      target: '>= 0.8x',
      verdict: verdict(ratio.median, 0.8, 'atLeast'),
    },
  ];
  const rows = result.rounds.map((r, i) => [
    String(i + 1),
    r.order.join(' then '),
    fmt(r.rawMbps),
    fmt(r.sdkMbps),
    fmtRatio(r.sdkMbps / r.rawMbps),
    fmt(r.rawMaxBufferedBytes / 1024),
    fmt(r.sdkMaxBufferedBytes / 1024),
  ]);
  const lines = [
    `Two Chromium pages in one mesh room (SFU off), ${result.messages} messages of ${result.messageBytes / 1024} KiB (${fmt((result.messages * result.messageBytes) / 1024 / 1024)} MiB) from one page to the other per loop. Baseline: a raw ordered RTCDataChannel opened on the SDK's own peer connection (same SCTP association), sending while bufferedAmount is at most 1 MiB and otherwise waiting for 'bufferedamountlow' (threshold 256 KiB). Switchboard: \`await room.send(bytes, { topic })\` (binary frame, sequence numbers, sent history, backpressure at the same marks). Throughput: payload bits from the first send to the last message received, per round; the two loops run back to back, order alternating. Median (range) over ${result.rounds.length} rounds: raw ${fmtSummary(raw)} Mbit/s, SDK ${fmtSummary(sdk)} Mbit/s, ratio ${fmtRatio(ratio.median)} (per-round ${fmt(ratio.min)}–${fmt(ratio.max)}). Largest sender buffer sampled: raw bufferedAmount ${fmtSummary(rawBuffered)} KiB, SDK bufferedDataBytes (queue + bufferedAmount) ${fmtSummary(buffered)} KiB.`,
    '',
    markdownTable(['round', 'order', 'raw Mbit/s', 'SDK Mbit/s', 'ratio', 'raw max buffered KiB', 'SDK max buffered KiB'], rows),
  ];
  return {
    name: 'data',
    title: '8. Data channel throughput (SDK vs raw RTCDataChannel)',
    machine: meta.machine,
    wallS: meta.wallS,
    headline,
    markdown: lines.join('\n'),
    plots: [],
    data: result,
  };
}

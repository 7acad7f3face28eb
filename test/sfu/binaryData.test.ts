import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, identityOf, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { ranges } from '../helpers/pageSequence.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** Four pages promote the room (MESH_THRESHOLD 3); two leaving demote it (at or below 2 for DEMOTE_DELAY_MS). */
const SFU_ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '1',
  SFU_LISTEN_IP: '127.0.0.1',
  MESH_THRESHOLD: '3',
  DEMOTE_DELAY_MS: '1500',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
};

/**
 * Page-side helpers, as plain script (no bundler helpers in the page): numbered binary payloads
 * (`binBytes(n, length)`: a pattern with n in the first four bytes and every 4 KiB), a check that
 * one arrived intact (`binIntact`: its n, or -1), and a record of every binary message received,
 * per sender and topic (`binRecv[identity][topic]`: the n's in arrival order; `bad`: damaged ones).
 */
const PAGE_HELPERS = `
window.binPattern = new Uint8Array(256 * 1024);
for (let i = 0; i < window.binPattern.length; i++) window.binPattern[i] = (i * 7 + (i >> 8) * 13) & 255;
window.binBytes = (n, length) => {
  const bytes = window.binPattern.slice(0, length);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at + 4 <= length; at += 4096) view.setUint32(at, n);
  return bytes;
};
window.binIntact = (bytes) => {
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const expected = window.binBytes(n, bytes.byteLength);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== expected[i]) return -1;
  return n;
};
window.binRecv = {};
window.binBad = 0;
window.switchboardRoom.on('data', (payload, participant, info) => {
  if (!(payload instanceof Uint8Array)) return;
  const byTopic = (window.binRecv[participant.identity] ??= {});
  const n = window.binIntact(payload);
  if (n < 0) window.binBad++;
  (byTopic[info.topic || ''] ??= []).push(n);
});
`;

describe('SFU binary data (Chromium, mediasoup): binary frames across a promotion and a demotion, 64 KiB, backpressure, size limit', function () {
  this.timeout(240_000);
  let t: TestServer;
  let browser: Browser;
  let base: string;
  const pages: Page[] = [];

  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    t = await startServer(SFU_ENV);
    base = t.url.replace('127.0.0.1', 'localhost');
    browser = await launchBrowser();
  });
  after(async () => {
    for (const page of pages) await page.close().catch(() => undefined);
    await browser?.close();
    await t?.close();
  });

  const open = async (room: string, name: string): Promise<Page> => {
    const page = await openDemoPage(browser, base, `room=${room}&name=${name}&res=160x120&audio=0`, { width: 640, height: 480 });
    await page.evaluate(PAGE_HELPERS);
    pages.push(page);
    return page;
  };
  const received = (page: Page, from: string, topic: string): Promise<number[]> =>
    page.evaluate(([f, tp]) => window.binRecv[f as string]?.[tp as string] ?? [], [from, topic]);

  it('binary messages sent through a promotion to the SFU arrive exactly once, in order, intact; then over the SFU alone: 64 KiB byte-identical with its topic, a 52 MB awaited loop with the sender bounded, oversized refused; then through a demotion back to the mesh, exactly once again', async () => {
    const room = 'binary-sfu';
    const p1 = await open(room, 'p1');
    const p2 = await open(room, 'p2');
    // p2 shows no remote video: adaptive stream pauses its video consumers on the SFU, and its
    // hand-over must not wait for their frames (it did, until the migration deadline).
    await p2.addStyleTag({ content: '.tile.remote video { display: none; }' });
    const from = await identityOf(p1);
    const p0 = await open(room, 'p0');
    await p1.waitForFunction(() => window.switchboardRoom.participants.size === 2, undefined, { timeout: 30_000 });
    expect(await p1.evaluate(() => window.switchboardRoom.mode)).to.equal('mesh');

    // p1 sends a numbered 16 KiB binary message every 30 ms, through the promotion.
    await p1.evaluate(() => {
      window.binSent = 0;
      window.binTimer = setInterval(() => {
        const r = window.switchboardRoom as unknown as BinRoom;
        if (r.state !== 'connected') return;
        window.binSent++;
        void r.send(window.binBytes(window.binSent, 16 * 1024), { topic: 'seq' });
      }, 30);
    });
    await waitFor(async () => (await received(p2, from, 'seq')).length > 10, 20_000, 'binary sequence over the mesh');
    const p3 = await open(room, 'p3');
    for (const page of [p1, p2, p3])
      await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 30_000, polling: 250 });
    // The hand-over is over once p1's mesh links are gone: its data goes over the SFU alone.
    await p1.waitForFunction(() => (window.switchboardRoom as unknown as { links: Map<string, unknown> }).links.size === 0, undefined, {
      timeout: 90_000,
      polling: 250,
    });
    for (const [name, page] of Object.entries({ p1, p2 })) {
      await page.waitForFunction(() => window.switchboardRoom.lastMigration?.to === 'sfu', undefined, { timeout: 60_000, polling: 250 });
      const { durationMs, timeoutMs } = await page.evaluate(() => ({
        durationMs: window.switchboardRoom.lastMigration?.durationMs ?? NaN,
        timeoutMs: (window.switchboardRoom as unknown as { options: { migrationTimeoutMs?: number } }).options.migrationTimeoutMs ?? 30_000,
      }));
      expect(durationMs, `${name}: the hand-over ended before its deadline (no fallback)`).to.be.below(timeoutMs);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const sent = await p1.evaluate(() => {
      clearInterval(window.binTimer);
      return window.binSent;
    });
    await waitFor(
      async () => (await received(p2, from, 'seq')).at(-1) === sent && (await received(p3, from, 'seq')).at(-1) === sent,
      30_000,
      `the last of ${sent} messages on p2 and p3`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const onP2 = await received(p2, from, 'seq');
    expect(ranges(onP2), 'p2: every message exactly once, in order').to.equal(`1-${sent}`);
    const onP3 = await received(p3, from, 'seq');
    expect(onP3.length, 'p3: from its first message on, none missing and none twice').to.equal(sent - (onP3[0] as number) + 1);
    expect(ranges(onP3)).to.equal(`${onP3[0]}-${sent}`);
    console.log(`      promotion: ${sent} binary messages of 16 KiB, p2 got 1-${sent} once each, p3 ${ranges(onP3)}`);

    // Over the SFU alone: a 64 KiB binary message, byte-identical, with its topic.
    await p1.evaluate(() => (window.switchboardRoom as unknown as BinRoom).send(window.binBytes(1, 64 * 1024), { topic: 'file' }));
    await waitFor(async () => (await received(p2, from, 'file')).length === 1, 20_000, '64 KiB over the SFU');
    expect(await received(p2, from, 'file'), 'intact (binIntact gives its n)').to.deep.equal([1]);

    // 800 x 64 KiB, awaiting send(): the sender's SDK queue plus bufferedAmount stays bounded.
    const count = 800;
    const loop = await p1.evaluate(async (n) => {
      const r = window.switchboardRoom as unknown as BinRoom;
      let max = 0;
      const sampler = setInterval(() => (max = Math.max(max, r.bufferedDataBytes)), 5);
      const started = performance.now();
      for (let i = 1; i <= n; i++) {
        await r.send(window.binBytes(i, 64 * 1024), { topic: 'bulk' });
        max = Math.max(max, r.bufferedDataBytes);
      }
      clearInterval(sampler);
      return { max, ms: performance.now() - started };
    }, count);
    const started = Date.now();
    await waitFor(
      async () => (await received(p2, from, 'bulk')).length >= count && (await received(p3, from, 'bulk')).length >= count,
      120_000,
      'the loop on p2 and p3',
    );
    const seconds = (loop.ms + (Date.now() - started)) / 1000;
    console.log(
      `      SFU loop: ${((count * 65536) / 1e6).toFixed(1)} MB sent in ${(loop.ms / 1000).toFixed(1)} s, received by both in ~${seconds.toFixed(1)} s; sender buffered at most ${(loop.max / 1024).toFixed(0)} KiB`,
    );
    expect(loop.max, 'SDK queue plus bufferedAmount of the data producer').to.be.below(4 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const page of [p2, p3]) expect(ranges(await received(page, from, 'bulk')), 'exactly once, in order').to.equal(`1-${count}`);
    for (const page of [p2, p3]) expect(await page.evaluate(() => window.binBad), 'damaged messages').to.equal(0);

    // Oversized: refused before anything is sent.
    const refused = await p1.evaluate(() => {
      try {
        void (window.switchboardRoom as unknown as BinRoom).send(new Uint8Array(256 * 1024));
        return 'sent';
      } catch (error) {
        return (error as { code?: string }).code ?? String(error);
      }
    });
    expect(refused).to.equal('payload_too_large');
    // A message the SDK would refuse, written straight on the data producer: the browser refuses it
    // (max-message-size) or the SFU drops it; either way the server stays up and data goes on.
    const raw = await p1.evaluate(() => {
      const sfu = (window.switchboardRoom as unknown as { sfu: { reliable: { send(d: Uint8Array): void } | null } | null }).sfu;
      try {
        sfu?.reliable?.send(new Uint8Array(300 * 1024));
        return 'written';
      } catch (error) {
        return `refused: ${String(error).slice(0, 120)}`;
      }
    });
    console.log(`      a raw 300 KiB message on the data producer: ${raw}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await fetch(`${t.url}/health`)).status, 'server still up').to.equal(200);
    await p1.evaluate(() => (window.switchboardRoom as unknown as BinRoom).send(window.binBytes(2, 1000), { topic: 'file' }));
    await waitFor(async () => (await received(p2, from, 'file')).length === 2, 20_000, 'data still flows after the oversized one');

    // Demotion: p3 leaves, the room goes back to the mesh while p1 keeps sending binary messages.
    await p1.evaluate(() => {
      window.binSent = 0;
      window.binTimer = setInterval(() => {
        const r = window.switchboardRoom as unknown as BinRoom;
        if (r.state !== 'connected') return;
        window.binSent++;
        void r.send(window.binBytes(window.binSent, 16 * 1024), { topic: 'back' });
      }, 30);
    });
    await waitFor(async () => (await received(p2, from, 'back')).length > 10, 20_000, 'binary sequence over the SFU');
    await p3.close();
    await p0.close();
    for (const page of [p1, p2])
      await page.waitForFunction(() => window.switchboardRoom.mode === 'mesh', undefined, { timeout: 30_000, polling: 250 });
    // The hand-over is over once p1 has left the SFU.
    await p1.waitForFunction(() => (window.switchboardRoom as unknown as { sfu: unknown }).sfu === null, undefined, {
      timeout: 60_000,
      polling: 250,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const sentBack = await p1.evaluate(() => {
      clearInterval(window.binTimer);
      return window.binSent;
    });
    await waitFor(async () => (await received(p2, from, 'back')).at(-1) === sentBack, 30_000, `the last of ${sentBack} on p2`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(ranges(await received(p2, from, 'back')), 'demotion: every message exactly once, in order').to.equal(`1-${sentBack}`);
    expect(await p2.evaluate(() => window.binBad), 'damaged messages').to.equal(0);
    console.log(`      demotion: ${sentBack} binary messages of 16 KiB, p2 got 1-${sentBack} once each`);
  });
});

/** What this test uses of the page's Room beyond PageRoom. */
interface BinRoom {
  state: string;
  send(payload: unknown, options?: { topic?: string }): Promise<void>;
  bufferedDataBytes: number;
}

declare global {
  interface Window {
    binBytes(n: number, length: number): Uint8Array;
    binRecv: Record<string, Record<string, number[]>>;
    binBad: number;
    binSent: number;
    binTimer: ReturnType<typeof setInterval>;
  }
}

/**
 * Issue 18, calls survive drops and restarts, in Chromium (fake media, the demo page):
 * - a page whose signaling goes through a proxy that is cut for 5 s, in a mesh of three pages:
 *   nobody sees a participant leave or join, the mesh links are the same connections, and the
 *   largest inbound video gap on every page stays under 500 ms (media never stops);
 * - the server restarted (shut down, then started on the same port) under a mesh of three
 *   pages: every page is back in the room within 10 s without a reload, and numbered reliable
 *   data sent after the return arrives exactly once and in order.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, identityOf, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { freePort } from '../helpers/clusterProcess.js';
import { startCutProxy, type CutProxy } from '../helpers/cutProxy.js';
import { recordSequence, sendSequence, settle, stopSequence } from '../helpers/pageSequence.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

const CUT_MS = 5_000;
const GAP_TARGET_MS = 500;

/** Records, on the page, participant joins and leaves and connection states from now on. */
async function recordRoomEvents(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: string[] = [];
    (window as unknown as { roomLog: string[] }).roomLog = log;
    const room = window.switchboardRoom;
    room.on('participantJoined', (p: unknown) => log.push(`joined ${(p as { identity: string }).identity}`));
    room.on('participantLeft', (p: unknown) => log.push(`left ${(p as { identity: string }).identity}`));
    room.on('connectionStateChanged', (s: unknown) => log.push(`state ${String(s)}`));
  });
}

const roomLog = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { roomLog: string[] }).roomLog);

/** The page's mesh links' RTCPeerConnections, tagged on the page so a later call can tell whether they are the same objects. */
async function tagLinks(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const links = (window.switchboardRoom as unknown as { links: Map<string, { pc: RTCPeerConnection & { tag?: string } }> }).links;
    return [...links.entries()].map(([id, link]) => (link.pc.tag ??= `${id}:${Math.random().toString(36).slice(2)}`)).sort();
  });
}

describe('browser e2e: calls survive signaling drops and server restarts (issue 18)', function () {
  this.timeout(180_000);
  let browser: Browser | undefined;

  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  it('a 5 s signaling cut of one page in a mesh of three: no leave or join anywhere, the same links, inbound video gap < 500 ms', async () => {
    const t = await startServer({ RESUME_GRACE_MS: '15000', TURN_ENABLED: 'false' });
    let proxy: CutProxy | undefined;
    const pages: Page[] = [];
    try {
      proxy = await startCutProxy(t.url);
      const direct = t.url.replace('127.0.0.1', 'localhost');
      const viaProxy = proxy.url.replace('127.0.0.1', 'localhost');
      for (const [name, base] of [
        ['ann', viaProxy],
        ['ben', direct],
        ['cat', direct],
      ] as const)
        pages.push(await openDemoPage(browser as Browser, base, `room=cut&name=${name}&res=320x240`, { width: 800, height: 500 }));
      for (const page of pages)
        await page.waitForFunction(
          () =>
            [...(window.switchboardRoom as unknown as { links: Map<string, { pc: RTCPeerConnection }> }).links.values()].filter(
              (l) => l.pc.connectionState === 'connected',
            ).length === 2,
          undefined,
          { timeout: 30_000 },
        );
      // Video decoding everywhere before the cut.
      await waitFor(
        async () => {
          for (const page of pages) {
            const stats = await page.evaluate(async () =>
              [...(await window.switchboardRoom.getParticipantStats()).values()].map((s) => s.framesDecoded),
            );
            if (stats.length !== 2 || stats.some((f) => f < 10)) return false;
          }
          return true;
        },
        30_000,
        'video decoding on every page',
      );
      const linksBefore = await Promise.all(pages.map(tagLinks));
      for (const page of pages) await recordRoomEvents(page);
      for (const page of pages)
        await page.evaluate((ms) => {
          (window as unknown as { gap: Promise<number> }).gap = window.switchboardRoom.measureVideoGap(ms);
        }, CUT_MS + 4_000);

      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.cut();
      const ann = pages[0] as Page;
      await ann.waitForFunction(() => window.switchboardRoom.state === 'reconnecting', undefined, { timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, CUT_MS));
      proxy.restore();
      await ann.waitForFunction(() => window.switchboardRoom.state === 'connected', undefined, { timeout: 20_000 });
      const gaps = await Promise.all(pages.map((page) => page.evaluate(() => (window as unknown as { gap: Promise<number> }).gap)));
      const names = ['ann', 'ben', 'cat'];
      console.log(
        `      largest inbound video gap per page over the cut (${CUT_MS} ms): ${gaps.map((g, i) => `${names[i]} ${g} ms`).join(', ')} (target ${GAP_TARGET_MS} ms)`,
      );
      for (const [i, page] of pages.entries()) {
        const log = await roomLog(page);
        expect(log, `${names[i]}'s room events`).to.deep.equal(i === 0 ? ['state reconnecting', 'state connected'] : []);
        expect(await tagLinks(page), `${names[i]}'s links are the same connections`).to.deep.equal(linksBefore[i]);
        expect(gaps[i], `${names[i]}'s largest video gap`).to.be.lessThan(GAP_TARGET_MS);
      }
      const annIdentity = await identityOf(ann);
      expect(t.server.rooms.get('dev', 'cut')?.peerByUser(annIdentity), 'ann is back on the server').to.not.equal(undefined);
    } finally {
      for (const page of pages) await page.close().catch(() => undefined);
      await proxy?.close();
      await t.close();
    }
  });

  it('a server restart under a mesh of three pages: every page back within 10 s without a reload; data after the return exactly once', async () => {
    const env = { PORT: String(await freePort()), TURN_ENABLED: 'false' };
    let t: TestServer = await startServer(env);
    const pages: Page[] = [];
    try {
      const base = t.url.replace('127.0.0.1', 'localhost');
      for (const name of ['ann', 'ben', 'cat'])
        pages.push(await openDemoPage(browser as Browser, base, `room=restart&name=${name}&res=320x240`, { width: 800, height: 500 }));
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.participants.size === 2, undefined, { timeout: 30_000 });
      for (const page of pages) {
        await recordRoomEvents(page);
        await page.evaluate(() => {
          (window as unknown as { loads: number }).loads = 1;
        });
      }

      await t.close();
      const downAt = Date.now();
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.state === 'reconnecting', undefined, { timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      t = await startServer(env);
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.state === 'connected', undefined, { timeout: 10_000 });
      const backMs = Date.now() - downAt;
      console.log(`      every page back in the room ${backMs} ms after the shutdown (the server was down ~1 s)`);
      expect(backMs).to.be.lessThan(10_000);
      for (const page of pages) {
        await page.waitForFunction(() => window.switchboardRoom.participants.size === 2, undefined, { timeout: 15_000 });
        // The same page, not reloaded.
        expect(await page.evaluate(() => (window as unknown as { loads?: number }).loads)).to.equal(1);
      }
      for (const page of pages) await recordSequence(page);
      for (const page of pages) await sendSequence(page, 50);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const senders = await Promise.all(pages.map(stopSequence));
      await settle(pages, senders);
      for (const page of pages) {
        const [self, received] = await page.evaluate(() => [window.switchboardRoom.localParticipant.identity, window.seqReceived] as const);
        for (const sender of senders) {
          if (sender.identity === self) continue;
          expect(received[sender.identity], `${sender.identity} -> ${self}`).to.deep.equal(
            Array.from({ length: sender.sent }, (_, k) => k + 1),
          );
        }
      }
    } finally {
      for (const page of pages) await page.close().catch(() => undefined);
      await t.close();
    }
  });
});

/**
 * Issue 17, test 6: kill -9 of the owner of an SFU room of five Chromium pages: video resumes
 * on every page within 15 s; data exactly once.
 *
 * Three Switchboard nodes run as processes of their own (test/helpers/clusterProcess.ts) on one
 * redis-server (STORE=redis), each with the SFU on (one mediasoup worker, its own RTP port
 * range), TURN off, MESH_THRESHOLD=4. Node A owns the room (a connection there claims its
 * lease first); the five pages load the demo from B or C, whose SDK is given that origin and
 * is redirected to A. The fifth join promotes the room to A's SFU. Once video flows on every
 * page and every page sends numbered reliable messages (10/s), A's process group gets SIGKILL:
 * the pages lose signaling and their SFU session, reconnect through the page's origin, and a
 * live node claims the room. The new owner restores the SFU mode from the snapshot A left in
 * Redis: a router opens there before the first page is admitted, and every page rejoins straight
 * onto it under its old peer id.
 *
 * Asserted: every page joined again on the same live node, which holds the room on its SFU
 * (switchboard_rooms_active{mode="sfu"} 1 there, 0 on the other live node: one router in the
 * cluster); decoded video grows again from every other page on every page within 15 s of the
 * kill, over whichever path carries it (per-page times printed, sampled every ~0.5 s, with the
 * rejoin times and when the new SFU carried every video, an upper bound read once every page is
 * in SFU mode); every page sends numbered reliable messages (10/s while connected) throughout;
 * each arrives exactly once and in order at every other page.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import { identityOf } from '../helpers/browser.js';
import { anchorRoom, openClusterPage, roomsActive, timeUntilFlowing, useBrowserCluster } from '../helpers/clusterPages.js';
import type { NodeProcess } from '../helpers/clusterProcess.js';
import { recordSequence, ranges, sendSequence, settle, stopSequence } from '../helpers/pageSequence.js';
import { waitFor } from '../helpers/server.js';

const ROOM = 'owner-death-sfu';
const VIDEO_LIMIT_MS = 15_000;
const SEND_INTERVAL_MS = 100;

/** The page's connection states since the recorder was installed, with their times. */
function statesOf(page: Page): Promise<Array<{ state: string; at: number }>> {
  return page.evaluate(() => (window as unknown as { stateLog: Array<{ state: string; at: number }> }).stateLog);
}

describe('Cluster: kill -9 of the owner of an SFU room of five Chromium pages (issue 17, test 6)', function () {
  this.timeout(240_000);
  const cluster = useBrowserCluster('owner-death-sfu');
  const pages: Page[] = [];
  const sockets: Socket[] = [];

  after(async function () {
    for (const socket of sockets) socket.close();
    for (const page of pages) await page.close().catch(() => undefined);
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const node of cluster().nodes) console.log(`      --- ${node.id} output (last 3000 chars) ---\n${node.output().slice(-3000)}`);
    for (const page of pages) {
      const line = await page
        .evaluate(() => {
          const room = window.switchboardRoom as unknown as {
            mode: string;
            state: string;
            links: Map<string, unknown>;
            nodeUrl: string | null;
          };
          return `${window.switchboardRoom.localParticipant.identity}: ${room.state} ${room.mode} links ${room.links.size} on ${room.nodeUrl}; error: ${document.getElementById('error')?.textContent || 'none'}`;
        })
        .catch((error: Error) => error.message);
      console.log(`      ${line}`);
    }
  });

  it('every page rejoins on a live node, on its SFU; video grows again on every page within 15 s; data exactly once', async function () {
    const { nodes, browser } = cluster();
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];

    // A claims the room: a connection there (not joined) holds its lease until the pages are in.
    const anchor = await anchorRoom(a, ROOM);
    sockets.push(anchor);

    // Five pages, served by B or C (the SDK is given the page's origin and redirected to A); video only.
    const origins = [b, c, b, c, b].map((node) => node.url.replace('127.0.0.1', 'localhost'));
    for (const [i, origin] of origins.entries())
      pages.push(await openClusterPage(browser, origin, `room=${ROOM}&name=p${i + 1}&res=160x120&audio=0&tiles=0`));
    anchor.close();
    const joinedOn = () =>
      Promise.all(
        // A page given its own origin (localhost) that joins there is on that node, as one redirected to its PUBLIC_URL (127.0.0.1).
        pages.map(async (page) =>
          (await page.evaluate(() => (window.switchboardRoom as unknown as { nodeUrl: string | null }).nodeUrl))?.replace(
            'localhost',
            '127.0.0.1',
          ),
        ),
      );
    expect(await joinedOn(), 'every page redirected to the owner').to.deep.equal(pages.map(() => a.url));
    for (const page of pages)
      await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
        timeout: 90_000,
        polling: 250,
      });
    const before = await timeUntilFlowing(pages, 4, 'sfu', 60_000);
    expect(
      before.every((t) => Number.isFinite(t)),
      'video over the SFU on every page before the kill',
    ).to.equal(true);
    expect(await roomsActive(a)).to.deep.equal({ mesh: 0, sfu: 1 });

    for (const page of pages) await recordSequence(page);
    for (const page of pages) await sendSequence(page, SEND_INTERVAL_MS);
    await waitFor(
      async () => {
        await new Promise((r) => setTimeout(r, 250));
        const counts = await Promise.all(pages.map((page) => page.evaluate(() => Object.values(window.seqReceived).map((l) => l.length))));
        return counts.every((c) => c.length === 4 && c.every((n) => n >= 10));
      },
      30_000,
      'reliable data between every pair',
    );
    for (const page of pages)
      await page.evaluate(() => {
        const log: Array<{ state: string; at: number }> = [];
        (window as unknown as { stateLog: typeof log }).stateLog = log;
        window.switchboardRoom.on('connectionStateChanged', (state: unknown) => log.push({ state: String(state), at: Date.now() }));
      });

    await new Promise((r) => setTimeout(r, 2_000)); // messages in flight at the kill, on every path
    // kill -9 of the owner's process group.
    const killedAt = Date.now();
    await a.kill();

    // Every page joined again (its state log shows connected after the kill).
    const rejoinedAt: Array<number | null> = pages.map(() => null);
    const rejoined = async (i: number): Promise<boolean> => {
      if (rejoinedAt[i] === null) {
        const states = await statesOf(pages[i] as Page);
        rejoinedAt[i] = states.find((s) => s.state === 'connected' && s.at >= killedAt)?.at ?? null;
      }
      return rejoinedAt[i] !== null;
    };
    // Video over any path, counted once the page joined again (frames decoded before are the dead owner's last ones).
    const videoAt = await timeUntilFlowing(pages, 4, 'all', 30_000, rejoined);
    const ms = (t: number | null) => (t === null || !Number.isFinite(t) ? 'never' : `${t - killedAt} ms`);
    console.log(`      rejoined after the kill per page: ${rejoinedAt.map((t, i) => `p${i + 1} ${ms(t)}`).join(', ')}`);
    console.log(
      `      decoded video growing from all 4 others again per page: ${videoAt.map((t, i) => `p${i + 1} ${ms(t)}`).join(', ')} (limit ${VIDEO_LIMIT_MS} ms)`,
    );

    // On the SFU of one live node.
    for (const page of pages)
      await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
        timeout: 60_000,
        polling: 250,
      });
    const sfuAt = await timeUntilFlowing(pages, 4, 'sfu', 30_000);
    console.log(`      video over the new SFU per page: ${sfuAt.map((t, i) => `p${i + 1} ${ms(t)}`).join(', ')}`);
    const owners = await joinedOn();
    const owner = [b, c].find((node) => node.url === owners[0]);
    expect(owner, 'the pages joined a live node').to.not.equal(undefined);
    expect(owners, 'every page on the same node').to.deep.equal(pages.map(() => owner?.url));
    const other = owner === b ? c : b;
    const [onOwner, onOther] = [await roomsActive(owner as NodeProcess), await roomsActive(other)];
    console.log(`      new owner ${owner?.id}: rooms ${JSON.stringify(onOwner)}; ${other.id}: ${JSON.stringify(onOther)}`);
    expect(onOwner, 'the room on the new owner, on its SFU').to.deep.equal({ mesh: 0, sfu: 1 });
    expect(onOther, 'no room on the other live node').to.deep.equal({ mesh: 0, sfu: 0 });

    // Data after the move, then everything exactly once and in order.
    await new Promise((r) => setTimeout(r, 2_000));
    const senders: Array<{ identity: string; sent: number }> = [];
    for (const page of pages) senders.push(await stopSequence(page));
    await settle(pages, senders);
    await new Promise((r) => setTimeout(r, 500)); // late duplicates would show up here
    for (const page of pages) {
      const self = await identityOf(page);
      const received = await page.evaluate(() => window.seqReceived);
      for (const sender of senders) {
        if (sender.identity === self) continue;
        const list = received[sender.identity] ?? [];
        const expected = Array.from({ length: sender.sent }, (_, i) => i + 1);
        const missing = expected.filter((n) => !list.includes(n));
        const duplicated = list.filter((n, i) => list.indexOf(n) !== i);
        const outOfOrder = list.some((n, i) => i > 0 && n < (list[i - 1] as number));
        const found = { missing: ranges(missing), duplicated, outOfOrder };
        expect(found, `${self} from ${sender.identity} (${list.length} of ${sender.sent}): ${JSON.stringify(found)}`).to.deep.equal({
          missing: '',
          duplicated: [],
          outOfOrder: false,
        });
      }
    }
    console.log(
      `      reliable messages sent per page: ${senders.map((s, i) => `p${i + 1} ${s.sent}`).join(', ')}, each exactly once at the 4 others`,
    );
    for (const [i, t] of videoAt.entries())
      expect(t - killedAt, `p${i + 1}: video growing again after the kill`).to.be.at.most(VIDEO_LIMIT_MS);
  });
});

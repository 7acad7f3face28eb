import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { artifactPath, browserUnavailableReason, buildSdk, identityOf, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { recordSequence, ranges, sendSequence, settle, stopSequence } from '../helpers/pageSequence.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import type { FreezeSummary } from '../../client-sdk/src/VideoGapMeter.js';

const SFU_ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '2',
  SFU_LISTEN_IP: '127.0.0.1',
  MESH_THRESHOLD: '4',
  DEMOTE_DELAY_MS: '1500',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
};

/**
 * Camera size of every page. SFU_TEST_RES=640x360 (or larger) runs the same tests with cameras
 * the SFU session sends as simulcast (two layers from 360p); the default keeps five pages'
 * encoders within two cores.
 */
const RES = process.env.SFU_TEST_RES ?? '160x120';
/** SFU_TEST_SIMULCAST=0: the pages send one layer on the SFU whatever their size (the demo's `simulcast=0`), to compare. */
const SIMULCAST = process.env.SFU_TEST_SIMULCAST === '0' ? '&simulcast=0' : '';

/** Pages of the running test (closed after each test), for failure diagnostics. */
const openPages = new Set<Page>();

/** One line on a page's mesh links: states, tracks, negotiation counters, the last page error. */
function linkStates(page: Page): Promise<string> {
  return page.evaluate(() => {
    const room = window.switchboardRoom as unknown as {
      mode: string;
      localParticipant: { identity: string; id: string };
      links: Map<string, { pc: RTCPeerConnection; counters: object }>;
    };
    const links = [...room.links].map(
      ([id, l]) =>
        `${id}:${l.pc.connectionState}/${l.pc.iceConnectionState}/${l.pc.signalingState}/gathering ${l.pc.iceGatheringState}/${l.pc
          .getReceivers()
          .map((r) => r.track.kind)
          .join('+')} ${JSON.stringify(l.counters)}`,
    );
    return `${room.localParticipant.identity} (${room.localParticipant.id}) mode=${room.mode} links=[${links.join(', ')}] last error: ${document.getElementById('error')?.textContent || 'none'}`;
  });
}

/** The page receives `identity`'s audio, bytes growing (over whichever path the room uses now). */
async function expectAudioFrom(page: Page, identity: string, timeoutMs = 20000): Promise<void> {
  const bytes = () => page.evaluate(async (id) => (await window.switchboardRoom.getParticipantStats()).get(id)?.audioBytes ?? 0, identity);
  const before = await bytes();
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 250));
      return (await bytes()) > before + 2000;
    },
    timeoutMs,
    `audio from ${identity} growing`,
  );
}

/** Every other participant's video frames decode on this page (over whichever path is up). */
// 60 s: a link whose ICE checks starve on this machine reaches "failed" after ~30 s, and the SDK's ICE restart then heals it.
async function expectVideoFrom(page: Page, count: number, timeoutMs = 60000): Promise<void> {
  await page.waitForFunction((n) => window.switchboardRoom.participants.size === n, count, { timeout: timeoutMs, polling: 250 });
  const sample = () =>
    page.evaluate(async () =>
      Object.fromEntries([...(await window.switchboardRoom.getParticipantStats())].map(([id, s]) => [id, s.framesDecoded])),
    );
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 250)); // getStats on five busy pages is not free
      return Object.values(await sample()).filter((f) => f > 0).length === count;
    },
    timeoutMs,
    'first frames from everyone',
  ).catch(async (error: Error) => {
    // Say what the page saw: which links, in which state, and frames per remote; and what every
    // other open page sees of its links (the far end of a stuck link).
    const state = await linkStates(page);
    const others = await Promise.all(
      [...openPages].filter((p) => p !== page && !p.isClosed()).map((p) => linkStates(p).catch((e: Error) => e.message)),
    );
    console.log(`      other pages: ${others.join(' | ')}`);
    throw new Error(`${error.message}: ${state}; frames ${JSON.stringify(await sample())}`);
  });
  // A link that had to negotiate again (a lost offer) is worth a line: it was a hang before.
  const retried = await page.evaluate(() => {
    const room = window.switchboardRoom as unknown as {
      localParticipant: { identity: string };
      links: Map<string, { counters: { renegotiations: number } }>;
    };
    return [...room.links]
      .filter(([, l]) => l.counters.renegotiations > 0)
      .map(([id, l]) => `${room.localParticipant.identity}->${id}: ${JSON.stringify(l.counters)}`);
  });
  if (retried.length) console.log(`      links negotiated again: ${retried.join('; ')}`);
  // Then more than 3 new frames from each, within 10 s (five pages on two cores stall now and then).
  const before = await sample();
  let after = before;
  const progressed = () => Object.entries(after).every(([identity, frames]) => frames - (before[identity] ?? 0) > 3);
  for (const deadline = Date.now() + 10_000; !progressed() && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 500));
    after = await sample();
  }
  if (!progressed()) console.log(`      video stalled on ${await videoStates(page).catch((e: Error) => `(no states: ${e.message})`)}`);
  for (const [identity, frames] of Object.entries(after))
    expect(frames - (before[identity] ?? 0), `new frames from ${identity} within 10 s`).to.be.greaterThan(3);
}

/** A page's inbound video per remote participant and path: packets, frames, key frames, PLIs (why a video stalls). */
function videoStates(page: Page): Promise<string> {
  return page.evaluate(async () => {
    type Stat = {
      type: string;
      kind?: string;
      trackIdentifier?: string;
      packetsReceived?: number;
      packetsLost?: number;
      framesReceived?: number;
      framesDecoded?: number;
      keyFramesDecoded?: number;
      pliCount?: number;
      nackCount?: number;
      framesDropped?: number;
    };
    const room = window.switchboardRoom as unknown as {
      localParticipant: { identity: string };
      participantsById: Map<string, { identity: string }>;
      links: Map<string, { pc: RTCPeerConnection }>;
      sfu: {
        recvTransport?: { getStats(): Promise<RTCStatsReport> };
        consumed: Map<string, { peerId: string; consumer?: { track: MediaStreamTrack; paused: boolean } }>;
      } | null;
    };
    // No named functions in here: tsx would wrap them in a __name() helper the page lacks.
    const lines: string[] = [];
    const reports: Array<[string, RTCStatsReport, { track: MediaStreamTrack; paused: boolean } | null]> = [];
    for (const [peerId, link] of room.links)
      reports.push([`${room.participantsById.get(peerId)?.identity} mesh`, await link.pc.getStats(), null]);
    const recv = room.sfu?.recvTransport ? await room.sfu.recvTransport.getStats() : null;
    for (const { peerId, consumer } of room.sfu?.consumed.values() ?? []) {
      if (recv && consumer && consumer.track.kind === 'video')
        reports.push([
          `${room.participantsById.get(peerId)?.identity} sfu (paused ${consumer.paused}, track ${consumer.track.readyState}${consumer.track.muted ? ' muted' : ''})`,
          recv,
          consumer,
        ]);
    }
    for (const [label, report, consumer] of reports) {
      for (const stat of (report as unknown as Map<string, Stat>).values()) {
        if (stat.type !== 'inbound-rtp' || stat.kind !== 'video' || (consumer && stat.trackIdentifier !== consumer.track.id)) continue;
        lines.push(
          `${label}: pkts ${stat.packetsReceived} lost ${stat.packetsLost} frames ${stat.framesReceived}/${stat.framesDecoded} key ${stat.keyFramesDecoded} pli ${stat.pliCount} nack ${stat.nackCount} dropped ${stat.framesDropped}`,
        );
      }
    }
    return `${room.localParticipant.identity}: ${lines.join('; ')}`;
  });
}

/** Every remote participant's tile plays a live video track that the SDK still lists as subscribed. */
async function expectTilesPlaying(page: Page, count: number): Promise<void> {
  const read = () =>
    page.evaluate(() =>
      [...window.switchboardRoom.participants.values()].map((p) => {
        const video = document.querySelector<HTMLVideoElement>(`.tile[data-identity="${CSS.escape(p.identity)}"] video`);
        const shown = (video?.srcObject as MediaStream | null)?.getVideoTracks() ?? [];
        const subscribed = [...p.tracks.values()];
        return {
          identity: p.identity,
          live: shown.some((t) => t.readyState === 'live' && subscribed.includes(t)),
        };
      }),
    );
  // A tile gets its track when the SDK subscribes it; give a busy page a few seconds.
  let tiles = await read();
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && !(tiles.length === count && tiles.every((t) => t.live));) {
    await new Promise((r) => setTimeout(r, 500));
    tiles = await read();
  }
  expect(tiles, 'tiles').to.have.length(count);
  for (const tile of tiles) expect(tile.live, `live subscribed video in the tile of ${tile.identity}`).to.equal(true);
}

/**
 * The largest time any remote participant's video decoded no new frame on this page over
 * `ms`, measured as the SDK measures a migration's gap: the steady-state baseline the
 * migration gaps compare with on this machine.
 */
function steadyGap(page: Page, ms: number): Promise<number> {
  return page.evaluate((duration) => window.switchboardRoom.measureVideoGap(duration), ms);
}

/** The server's answer times of sfu:* requests so far (per event: how many, the mean, how many took over 2 s), and its dropped data messages. */
async function sfuRequestTimes(t: TestServer): Promise<string> {
  const { values } = await t.server.metrics.sfuRequestDuration.get();
  const byEvent = new Map<string, { count: number; sum: number; within2s: number }>();
  for (const { labels, value, metricName } of values) {
    const event = String(labels.event);
    const entry = byEvent.get(event) ?? { count: 0, sum: 0, within2s: 0 };
    byEvent.set(event, entry);
    if (metricName?.endsWith('_count')) entry.count = value;
    else if (metricName?.endsWith('_sum')) entry.sum = value;
    else if ((labels as Record<string, string | number>).le === 2) entry.within2s = value; // histogram buckets carry le
  }
  const times = [...byEvent].map(
    ([event, e]) =>
      `${event.slice(4)} ${e.count}x mean ${Math.round((e.sum / Math.max(e.count, 1)) * 1000)} ms, ${e.count - e.within2s} over 2 s`,
  );
  const dropped = (await t.server.metrics.sfuDataDropped.get()).values[0]?.value ?? 0;
  return `${times.join('; ')}; data messages the SFU dropped for full SCTP buffers: ${dropped}`;
}

/** Records and sends (for a page that joins while the others already send). */
async function startSequence(page: Page): Promise<void> {
  await recordSequence(page);
  await sendSequence(page, 50);
}

/** Each receiver got each sender's messages exactly once and in order (from its first one on). */
async function expectExactlyOnce(pages: Page[], senders: Array<{ identity: string; sent: number }>, fromStart: Set<Page>): Promise<void> {
  for (const page of pages) {
    const self = await identityOf(page);
    const received = await page.evaluate(() => window.seqReceived);
    for (const sender of senders) {
      if (sender.identity === self) continue;
      const list = received[sender.identity] ?? [];
      expect(list.length, `${self} got messages from ${sender.identity}`).to.be.greaterThan(0);
      const first = list[0] as number;
      if (fromStart.has(page)) expect(first, `${self} from ${sender.identity}: first`).to.equal(1);
      const expected = Array.from({ length: sender.sent - first + 1 }, (_, i) => first + i);
      const missing = expected.filter((n) => !list.includes(n));
      const duplicated = list.filter((n, i) => list.indexOf(n) !== i);
      const outOfOrder = list.some((n, i) => i > 0 && n < (list[i - 1] as number));
      const found = { missing: ranges(missing), duplicated, outOfOrder };
      expect(found, `${self} from ${sender.identity} (${list.length} of ${expected.length}): ${JSON.stringify(found)}`).to.deep.equal({
        missing: '',
        duplicated: [],
        outOfOrder: false,
      });
    }
  }
}

describe('browser e2e: SFU promotion and demotion in Chromium (fake media)', function () {
  this.timeout(300000);
  let attempts = 0;
  /** A room name of this test (no test meets another's rooms). */
  const fresh = (name: string): string => `${name}-${attempts}`;
  beforeEach(() => {
    attempts++;
  });
  let t: TestServer;
  let browser: Browser;
  let base: string;

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
    await browser?.close();
    await t?.close();
  });

  // Pages of a test that failed are closed too, so they do not starve the next test of CPU.
  afterEach(async () => {
    for (const page of openPages) await page.close().catch(() => undefined);
    openPages.clear();
  });
  /** A test body that prints the server's SFU request times when it fails (why a page waited). */
  const printingFailure = (body: () => Promise<void>) =>
    async function (): Promise<void> {
      try {
        await body();
      } catch (error) {
        console.log(`      server answer times of SFU requests so far: ${await sfuRequestTimes(t)}`);
        throw error;
      }
    };
  const openPage = async (room: string, name: string, extra = ''): Promise<Page> => {
    const page = await openDemoPage(browser, base, `room=${room}&name=${name}&res=${RES}&rawaudio=1${SIMULCAST}${extra}`, {
      width: 960,
      height: 600,
    });
    openPages.add(page);
    return page;
  };

  // p1 sends audio and video, the others video only (`audio=0`). Five pages' audio (capture, Opus
  // and playing four remote streams each) made the two cores the bottleneck of every hand-over:
  // with all five sending audio the machine was 90% busy and the hand-over took 9-19 s; video
  // only on four of them, ~65% and 3 s. One audio sender still checks audio across both moves.
  it(
    'promotes a mesh of four when a fifth joins, with data exactly once and a measured media gap; demotes when two leave',
    printingFailure(async () => {
      const grow = fresh('grow');
      const pages: Page[] = [];
      for (const name of ['p1', 'p2', 'p3', 'p4']) pages.push(await openPage(grow, name, name === 'p1' ? '' : '&audio=0'));
      const audioSender = await identityOf(pages[0] as Page);
      for (const page of pages) await expectVideoFrom(page, 3);
      expect(await (pages[0] as Page).evaluate(() => window.switchboardRoom.mode)).to.equal('mesh');
      const early = new Set(pages);
      for (const page of pages) await recordSequence(page);
      for (const page of pages) await sendSequence(page, 50);
      const baseline = await Promise.all(pages.map((page) => steadyGap(page, 4000)));
      console.log(
        `      largest inbound video gap in the steady mesh of 4 (no migration, 4 s) per page: ${baseline.map((g) => `${g} ms`).join(', ')}`,
      );
      await new Promise((r) => setTimeout(r, 500));

      // The fifth participant: the room goes to the SFU.
      const fifth = await openPage(grow, 'p5', '&audio=0');
      pages.push(fifth);
      await startSequence(fifth);
      // 90 s: the SDK keeps a link up to 30 s when its peer is slow to confirm, and a starved page is slow to notice.
      for (const page of pages) {
        await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
          timeout: 90000,
          polling: 250,
        });
      }
      expect(t.server.rooms.get('dev', grow)?.mode).to.equal('sfu');
      for (const page of pages) await expectVideoFrom(page, 4);
      for (const page of pages) await expectTilesPlaying(page, 4);
      for (const page of pages.slice(1)) await expectAudioFrom(page, audioSender);
      // The report comes once every video runs over the SFU (at most 20 s after the links closed).
      for (const page of pages.slice(0, 4))
        await page.waitForFunction(() => window.switchboardRoom.lastMigration?.to === 'sfu', undefined, { timeout: 30000, polling: 250 });
      const gaps = await Promise.all(pages.slice(0, 4).map((p) => p.evaluate(() => window.switchboardRoom.lastMigration)));
      const identities = new Map(await Promise.all(pages.map(async (page, i) => [await identityOf(page), `p${i + 1}`] as const)));
      const freezeText = (f: FreezeSummary | undefined) =>
        `${f?.count ?? 0}, ${Math.round(f?.totalMs ?? 0)} ms in all, longest alone ${Math.round(f?.longestSingleMs ?? 0)} ms`;
      const gapText = gaps
        .map(
          (g, i) =>
            `p${i + 1} ${g?.mediaGapMs ?? '?'} ms from ${g?.mediaGapFrom ?? '?'} on ${identities.get(g?.mediaGapOf ?? '') ?? (g?.mediaGapOf || '?')}'s video (migration ${g?.durationMs ?? '?'} ms; browser freezes on mesh ${freezeText(g?.freezesByPath.mesh)}; on sfu ${freezeText(g?.freezesByPath.sfu)})`,
        )
        .join(', ');
      console.log(`      largest inbound video gap during promotion per page: ${gapText}; target < 500 ms`);
      // The same measure in the steady SFU room of five (no migration): the gap this machine's
      // load causes by itself after the promotion, to read the promotion's figures against.
      const sfuBaseline = await Promise.all(pages.slice(0, 4).map((page) => steadyGap(page, 4000)));
      console.log(
        `      largest inbound video gap in the steady SFU room of 5 (no migration, 4 s) per page: ${sfuBaseline.map((g) => `${g} ms`).join(', ')}`,
      );
      console.log(`      server answer times of SFU requests: ${await sfuRequestTimes(t)}`);
      for (const g of gaps) expect(g?.to).to.equal('sfu');
      await fifth.screenshot({ path: artifactPath('demo-sfu-five-participants.png') });
      expect(await fifth.locator('#mode').textContent()).to.equal('SFU');

      // Two leave: back to mesh after the delay; media and data continue.
      await new Promise((r) => setTimeout(r, 500));
      const leaving = pages.splice(3, 2);
      const leftSenders = [];
      for (const page of leaving) leftSenders.push(await stopSequence(page));
      for (const page of leaving) await page.close();
      for (const page of pages) {
        await page.waitForFunction(
          () => window.switchboardRoom.mode === 'mesh' && window.switchboardRoom.lastMigration?.to === 'mesh',
          undefined,
          { timeout: 90000, polling: 250 },
        );
      }
      for (const page of pages) await expectVideoFrom(page, 2);
      for (const page of pages) await expectTilesPlaying(page, 2);
      for (const page of pages.slice(1)) await expectAudioFrom(page, audioSender);
      const demotionGaps = await Promise.all(pages.map((p) => p.evaluate(() => window.switchboardRoom.lastMigration)));
      console.log(`      largest inbound video gap during demotion per page: ${demotionGaps.map((g) => `${g?.mediaGapMs} ms`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 1000));
      const senders = [];
      for (const page of pages) senders.push(await stopSequence(page));
      await settle(pages, senders);
      await expectExactlyOnce(pages, senders, early);
      // Messages of the two who left, up to their departure: exactly once and in order too.
      for (const page of pages) {
        const self = await identityOf(page);
        const received = await page.evaluate(() => window.seqReceived);
        for (const sender of leftSenders) {
          const list = received[sender.identity] ?? [];
          expect(list.length, `${self} from ${sender.identity}`).to.be.greaterThan(10);
          const first = list[0] as number;
          const last = list[list.length - 1] as number;
          const missing = Array.from({ length: last - first + 1 }, (_, i) => first + i).filter((n) => !list.includes(n));
          const duplicated = list.filter((n, i) => list.indexOf(n) !== i);
          const outOfOrder = list.some((n, i) => i > 0 && n < (list[i - 1] as number));
          const found = { missing: ranges(missing), duplicated, outOfOrder };
          expect(
            found,
            `${self} from ${sender.identity}, who left after sending ${sender.sent} (got ${first}..${last}): ${JSON.stringify(found)}`,
          ).to.deep.equal({
            missing: '',
            duplicated: [],
            outOfOrder: false,
          });
        }
      }
      for (const page of pages) await page.close();
    }),
  );

  it(
    "past the migration deadline, keeps mesh links for data until both sides receive each other's data over the SFU; data exactly once",
    printingFailure(async () => {
      const room = fresh('late');
      const pages = [await openPage(room, 'l1'), await openPage(room, 'l2'), await openPage(room, 'l3')];
      for (const page of pages) await expectVideoFrom(page, 2);
      // A short deadline, and l1's SFU data consumers held back (a page too starved to set them up in time).
      for (const page of pages)
        await page.evaluate(
          () => ((window.switchboardRoom as unknown as { options: { migrationTimeoutMs: number } }).options.migrationTimeoutMs = 6000),
        );
      await (pages[0] as Page).evaluate(() => {
        const w = window as unknown as { holding: boolean };
        const signal = (window.switchboardRoom as unknown as { signal: { request: (event: string, payload: unknown) => Promise<unknown> } })
          .signal;
        const original = signal.request.bind(signal);
        w.holding = true;
        signal.request = (event, payload) =>
          event === 'sfu:consume_data' && w.holding
            ? new Promise((go) => {
                const timer = setInterval(() => {
                  if (w.holding) return;
                  clearInterval(timer);
                  go(undefined);
                }, 50);
              }).then(() => original(event, payload))
            : original(event, payload);
      });
      for (const page of pages) await recordSequence(page);
      for (const page of pages) await sendSequence(page, 50);
      const live = t.server.rooms.get('dev', room);
      if (!live) throw new Error('no room');
      t.server.rooms.updateConfig(live, { mode_policy: 'sfu' });

      // l1's deadline passes: its links are still up, for data, and so are the others' links to l1
      // (checked within the second deadline, 6 s later).
      const l1 = pages[0] as Page;
      await l1.waitForFunction(() => (window.switchboardRoom as unknown as { migrationOverdue: boolean }).migrationOverdue, undefined, {
        timeout: 30000,
        polling: 100,
      });
      const linksPastDeadline = await Promise.all(pages.map((page) => page.evaluate(() => window.switchboardRoom.links.size)));
      expect(linksPastDeadline[0], 'l1 links past the deadline').to.equal(2);
      expect(linksPastDeadline.slice(1), 'l2 and l3 keep their link to l1').to.satisfy((sizes: number[]) => sizes.every((n) => n >= 1));
      await l1.evaluate(() => ((window as unknown as { holding: boolean }).holding = false));
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.links.size === 0, undefined, { timeout: 30000, polling: 250 });
      await new Promise((r) => setTimeout(r, 1000));
      const senders = [];
      for (const page of pages) senders.push(await stopSequence(page));
      await settle(pages, senders);
      await expectExactlyOnce(pages, senders, new Set(pages));
      for (const page of pages) await page.close();
    }),
  );

  it(
    'a listener in SFU mode cannot produce (forbidden) and still receives',
    printingFailure(async () => {
      const speaker = await openPage(fresh('pinned'), 'speaker');
      const room = t.server.rooms.get('dev', fresh('pinned'));
      if (!room) throw new Error('no room');
      t.server.rooms.updateConfig(room, { mode_policy: 'sfu' });
      await speaker.waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 20000, polling: 250 });
      const listener = await openPage(fresh('pinned'), 'listener', '&role=listener');
      expect(await listener.evaluate(() => window.switchboardRoom.mode)).to.equal('sfu');
      await expectVideoFrom(listener, 1);
      const code = await listener.evaluate(async () => {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
        try {
          await window.switchboardRoom.publish(stream);
          return 'published';
        } catch (error) {
          return (error as { code: string }).code;
        }
      });
      expect(code).to.equal('forbidden');
      await speaker.close();
      await listener.close();
    }),
  );

  it(
    'a page whose SFU session fails to start reconnects, leaves nothing behind on the server, and joins the SFU',
    printingFailure(async () => {
      const room = fresh('restart');
      const pages = [await openPage(room, 'f1'), await openPage(room, 'f2'), await openPage(room, 'f3')];
      for (const page of pages) await expectVideoFrom(page, 2);
      const f1 = pages[0] as Page;
      const oldId = await f1.evaluate(() => window.switchboardRoom.localParticipant.id);
      // f1's first sfu:create_transport reaches the server, but its answer is lost as an error
      // (the session cannot start; the server holds a transport the page never learns about).
      await f1.evaluate(() => {
        const w = window as unknown as { states: string[]; sfuErrors: string[] };
        w.states = [];
        w.sfuErrors = [];
        const room = window.switchboardRoom as unknown as {
          signal: { request: (event: string, payload: unknown) => Promise<unknown> };
          on: (e: string, f: (x: unknown) => void) => void;
        };
        room.on('connectionStateChanged', (state) => w.states.push(String(state)));
        room.on('error', (error) => w.sfuErrors.push(String((error as { code?: string }).code)));
        const signal = room.signal;
        const original = signal.request.bind(signal);
        let refused = 0;
        signal.request = (event, payload) =>
          event === 'sfu:create_transport' && refused++ === 0
            ? original(event, payload).then(() => {
                throw new Error('answer lost (test)');
              })
            : original(event, payload);
      });
      const live = t.server.rooms.get('dev', room);
      if (!live) throw new Error('no room');
      t.server.rooms.updateConfig(live, { mode_policy: 'sfu' });
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
          timeout: 60000,
          polling: 200,
        });
      for (const page of pages) await expectVideoFrom(page, 2);
      const seen = await f1.evaluate(() => {
        const w = window as unknown as { states: string[]; sfuErrors: string[] };
        return { states: w.states, sfuErrors: w.sfuErrors };
      });
      expect(seen.sfuErrors, 'the failed start is reported').to.include('sfu_unavailable');
      expect(seen.states, 'f1 reconnected').to.include.members(['reconnecting', 'connected']);
      const newId = await f1.evaluate(() => window.switchboardRoom.localParticipant.id);
      expect(newId).to.not.equal(oldId);
      const sfuRoom = t.server.sfu?.get(`dev/${room}`);
      expect(sfuRoom?.transportCount(oldId), 'transports of the failed session').to.equal(0);
      expect(sfuRoom?.transportCount(newId)).to.equal(2);
      for (const page of pages) await page.close();
    }),
  );

  it(
    "recovers from kill -9 of the room's worker: decoded video grows again on every page (time printed against the 5 s target)",
    printingFailure(async () => {
      const pages = [await openPage(fresh('crash'), 'c1'), await openPage(fresh('crash'), 'c2'), await openPage(fresh('crash'), 'c3')];
      const room = t.server.rooms.get('dev', fresh('crash'));
      if (!room) throw new Error('no room');
      t.server.rooms.updateConfig(room, { mode_policy: 'sfu' });
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
          timeout: 60000,
          polling: 250,
        });
      for (const page of pages) await expectVideoFrom(page, 2);
      const pid = [...(t.server.sfu?.roomsByWorker() ?? [])].find(([, keys]) => keys.includes(`dev/${fresh('crash')}`))?.[0];
      expect(pid).to.be.a('number');
      for (const page of pages) {
        await page.evaluate(() => {
          const w = window as unknown as { modeReasons: string[] };
          w.modeReasons = [];
          window.switchboardRoom.on('modeChanged', (...args: unknown[]) => {
            w.modeReasons.push(String(args[1]));
          });
        });
      }
      process.kill(pid as number, 'SIGKILL');
      const killedAt = Date.now();
      // Frames decoded over the SFU per remote identity; the new consumers' counters start again from 0.
      const frames = (page: Page) =>
        page.evaluate(async () =>
          Object.fromEntries([...(await window.switchboardRoom.getParticipantStats())].map(([id, s]) => [id, s.framesByPath.sfu])),
        );
      // Every page hears of the new router first (frames decoded before that are the dead worker's last ones).
      for (const page of pages)
        await page.waitForFunction(() => (window as unknown as { modeReasons: string[] }).modeReasons.includes('sfu_restart'), undefined, {
          timeout: 15000,
          polling: 100,
        });
      // Then flowing again: two samples in a row in which every remote's count rose by more than 5
      // on every page (a counter that restarted reads lower, so it cannot pass for growth).
      let previous = await Promise.all(pages.map(frames));
      await waitFor(
        async () => {
          await new Promise((r) => setTimeout(r, 500)); // getStats on every page is not free: poll gently
          const now = await Promise.all(pages.map(frames));
          const flowing = now.every(
            (byId, i) =>
              Object.keys(byId).length === 2 && Object.entries(byId).every(([id, f]) => f > ((previous[i] ?? {})[id] ?? Infinity) + 5),
          );
          previous = now;
          return flowing;
        },
        15000,
        'decoded frames growing again after the worker died',
      );
      const recoveryMs = Date.now() - killedAt;
      // The outcome is asserted (within the wait above); the figure against the 5 s target is read from this line.
      console.log(`      media flowing again on every page ${recoveryMs} ms after kill -9 (target 5000 ms)`);
      for (const page of pages) await page.close();
    }),
  );

  it(
    'PUT mesh_threshold 2 on a live three-peer mesh room promotes it',
    printingFailure(async () => {
      const pages = [await openPage(fresh('put'), 'u1'), await openPage(fresh('put'), 'u2'), await openPage(fresh('put'), 'u3')];
      for (const page of pages) await expectVideoFrom(page, 2);
      const secret = /api_secret=(\S+)/.exec(t.server.config.bootNotices.join('\n'))?.[1];
      const response = await fetch(`${t.url}/api/v1/rooms/${fresh('put')}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mesh_threshold: 2 }),
      });
      expect(response.status, await response.clone().text()).to.equal(200);
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu' && window.switchboardRoom.links.size === 0, undefined, {
          timeout: 60000,
          polling: 250,
        });
      for (const page of pages) await expectVideoFrom(page, 2);
      for (const page of pages) await page.close();
    }),
  );
});

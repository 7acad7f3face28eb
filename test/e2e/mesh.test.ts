import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { descendants, processName, processThreads } from '../../bench/lib/processes.js';
import {
  artifactPath,
  browserUnavailableReason,
  buildSdk,
  identityOf,
  inboundBytes,
  launchBrowser,
  openDemoPage,
} from '../helpers/browser.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** Waits until the page's room sees `count` participants, each with audio and video tracks. */
async function waitForMedia(page: Page, count: number, timeoutMs = 30000): Promise<void> {
  await page.waitForFunction(
    (n) => {
      const room = window.switchboardRoom;
      if (!room || room.participants.size !== n) return false;
      return [...room.participants.values()].every((p) => {
        const kinds = new Set([...p.tracks.values()].map((t) => t.kind));
        return kinds.has('audio') && kinds.has('video');
      });
    },
    count,
    { timeout: timeoutMs, polling: 200 },
  );
}

/** Every thread of the Chromium processes this test process started: name and scheduling policy (0: SCHED_OTHER). */
function chromiumThreads(): { name: string; policy: number }[] {
  return descendants(process.pid)
    .filter((pid) => /chrom/i.test(processName(pid)))
    .flatMap(processThreads);
}

/** Asserts inbound audio and video bytes grow from every other page over about 1.5 s. */
async function expectMediaGrowing(page: Page, from: string[]): Promise<void> {
  // Tracks exist once negotiated; bytes start once ICE and DTLS are done (slower on a busy machine).
  await waitFor(
    async () => {
      const now = await inboundBytes(page);
      return from.every((id) => (now[id]?.audio ?? 0) > 0 && (now[id]?.video ?? 0) > 0);
    },
    30000,
    'first media bytes',
  );
  const before = await inboundBytes(page);
  await new Promise((r) => setTimeout(r, 1500));
  const after = await inboundBytes(page);
  for (const identity of from) {
    for (const kind of ['audio', 'video'] as const) {
      const grew = (after[identity]?.[kind] ?? 0) - (before[identity]?.[kind] ?? 0);
      expect(grew, `${kind} bytes from ${identity}`).to.be.greaterThan(kind === 'video' ? 5000 : 500);
    }
  }
}

/** A page's data received and its mesh links (connection, reliable channel, messages waiting for it). */
function linkStates(): unknown {
  const room = window.switchboardRoom as unknown as {
    state: string;
    links: Map<string, { established: boolean; dead: boolean; queued(): number; pc: RTCPeerConnection }>;
  };
  return {
    state: room.state,
    received: window.received,
    links: [...room.links].map(([id, link]) => ({
      id,
      established: link.established,
      dead: link.dead,
      queued: link.queued(),
      pc: link.pc.connectionState,
    })),
  };
}

/** Installs a data collector on a page. */
async function collectData(page: Page): Promise<void> {
  await page.evaluate(() => {
    window.received = [];
    window.switchboardRoom.on('data', (payload: unknown, participant: unknown) => {
      const p = payload as { type?: string; text?: string };
      if (p.type === 'probe') window.received.push({ from: (participant as { identity: string }).identity, text: String(p.text) });
    });
  });
}

/**
 * Three pages in one room: each receives the two others' audio and video with bytes growing,
 * a data message from each page arrives at every other page exactly once, the demo shows
 * them, and a page that closes is gone from the others.
 */
async function threePages(openPage: (room: string, name: string) => Promise<Page>, room: string, screenshot: string): Promise<void> {
  const pages = [await openPage(room, 'ann'), await openPage(room, 'ben'), await openPage(room, 'cy')];
  for (const page of pages) await waitForMedia(page, 2);
  const identities = await Promise.all(pages.map(identityOf));
  for (const [i, page] of pages.entries())
    await expectMediaGrowing(
      page,
      identities.filter((_, j) => j !== i),
    );

  for (const page of pages) await collectData(page);
  for (const [i, page] of pages.entries())
    await page.evaluate((text) => window.switchboardRoom.send({ type: 'probe', text }), `hello from ${i}`);
  await waitFor(
    async () => (await Promise.all(pages.map((p) => p.evaluate(() => window.received.length)))).every((n) => n >= 2),
    15000,
    'data on every page',
  ).catch(async (error: unknown) => {
    // What each page got and how its links stand, so a failure says where the message stopped.
    const states = await Promise.all(pages.map((p) => p.evaluate(linkStates).catch((e: unknown) => String(e))));
    throw new Error(`${String(error)}; pages: ${JSON.stringify(states)}`);
  });
  await new Promise((r) => setTimeout(r, 500));
  for (const [i, page] of pages.entries()) {
    const received = await page.evaluate(() => window.received);
    const expected = pages
      .map((_, j) => j)
      .filter((j) => j !== i)
      .map((j) => ({ from: identities[j], text: `hello from ${j}` }));
    expect(
      received.sort((a, b) => a.text.localeCompare(b.text)),
      `page ${i}`,
    ).to.deep.equal(expected);
  }

  // The demo itself: one video per remote participant, the mode badge, the participant list.
  const first = pages[0] as Page;
  expect(await first.locator('.tile.remote video').count()).to.equal(2);
  expect(await first.locator('#mode').textContent()).to.equal('mesh');
  expect(await first.locator('#participants li').count()).to.equal(3);
  await first.waitForFunction(
    () => [...document.querySelectorAll<HTMLVideoElement>('.tile video')].every((v) => v.videoWidth > 0),
    undefined,
    { timeout: 15000 },
  );
  await first.screenshot({ path: artifactPath(screenshot) });

  // A page that closes is gone from the others: participantLeft, connection torn down. (Closed as a
  // user closes a tab: its unload handlers run, and the SDK leaves on pagehide.)
  const leaving = identities[2] as string;
  await (pages[2] as Page).close({ runBeforeUnload: true });
  for (const page of pages.slice(0, 2)) {
    await page.waitForFunction((id) => !window.switchboardRoom.participants.has(id), leaving, { timeout: 15000 });
    expect(await page.locator('.tile.remote').count()).to.equal(1);
  }
  for (const page of pages.slice(0, 2)) await page.close();
}

describe('browser e2e: the mesh in Chromium (fake media)', function () {
  this.timeout(120000);
  let t: TestServer;
  let browser: Browser;
  let base: string;
  const errors: string[][] = [];

  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    t = await startServer({ ROOM_EMPTY_TIMEOUT_MS: '2000' });
    base = t.url.replace('127.0.0.1', 'localhost');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const openPage = (room: string, name: string, extra = ''): Promise<Page> =>
    openDemoPage(browser, base, `room=${room}&name=${name}${extra}`, undefined, errors);

  it('Chromium runs at normal priority: none of its threads is real-time (as root its audio threads would be, and starve the other pages)', async () => {
    const page = await openPage('priority', 'solo');
    // The fake microphone and the audio output run (threads that ask for real-time priority).
    await page.evaluate(async () => {
      const context = new AudioContext();
      const oscillator = context.createOscillator();
      oscillator.connect(context.destination);
      oscillator.start();
      await context.resume();
    });
    await new Promise((r) => setTimeout(r, 1000));
    const threads = chromiumThreads();
    expect(threads.filter((t) => /^Audio/.test(t.name)).length, 'audio threads found').to.be.greaterThan(0);
    const realtime = threads.filter((t) => t.policy !== 0);
    expect(realtime.map((t) => `${t.name} (policy ${t.policy})`)).to.deep.equal([]);
    await page.close();
  });

  it("three pages receive each other's audio and video, data arrives exactly once, and the demo shows it", async () => {
    await threePages(openPage, 'trio', 'demo-three-participants.png');
  });

  it('heals a signaling drop by itself: media and data resume without reload', async () => {
    const a = await openPage('heal', 'ann');
    const b = await openPage('heal', 'ben');
    await waitForMedia(a, 1);
    await waitForMedia(b, 1);
    const [idA, idB] = [await identityOf(a), await identityOf(b)];
    await a.evaluate(() => {
      (window as unknown as { states: string[] }).states = [];
      window.switchboardRoom.on('connectionStateChanged', (s) => (window as unknown as { states: string[] }).states.push(String(s)));
    });
    t.server.rooms.get('dev', 'heal')?.peerByUser(idA)?.socket.conn.close();
    await a.waitForFunction(() => (window as unknown as { states: string[] }).states.includes('reconnecting'), undefined, {
      timeout: 10000,
    });
    await a.waitForFunction(() => window.switchboardRoom.state === 'connected', undefined, { timeout: 20000 });
    await waitForMedia(a, 1);
    await waitForMedia(b, 1);
    await expectMediaGrowing(a, [idB]);
    await expectMediaGrowing(b, [idA]);
    await collectData(b);
    await a.evaluate(() => window.switchboardRoom.send({ type: 'probe', text: 'after the drop' }));
    await b.waitForFunction(() => window.received.length === 1, undefined, { timeout: 10000 });
    expect(await b.evaluate(() => window.received)).to.deep.equal([{ from: idA, text: 'after the drop' }]);
    await a.close();
    await b.close();
  });

  it('a page sending audio and video and one sending video only get what the other sends, whichever joins first', async () => {
    // Chromium 148+ refused the audio once the video-only page's offer had set the header-extension ids.
    for (const [order, room] of [
      ['av first', 'asym-a'],
      ['video-only first', 'asym-b'],
    ] as const) {
      const first = await openPage(room, 'first', order === 'av first' ? '' : '&audio=0');
      const second = await openPage(room, 'second', order === 'av first' ? '&audio=0' : '');
      const [av, videoOnly] = order === 'av first' ? [first, second] : [second, first];
      const avIdentity = await identityOf(av);
      await expectMediaGrowing(videoOnly, [avIdentity]);
      const fromVideoOnly = await identityOf(videoOnly);
      await waitFor(
        async () => ((await inboundBytes(av))[fromVideoOnly]?.video ?? 0) > 5000,
        30000,
        `${order}: video from the video-only page`,
      );
      expect((await inboundBytes(av))[fromVideoOnly]?.audio ?? 0, `${order}: no audio from the video-only page`).to.equal(0);
      for (const page of [av, videoOnly]) {
        const linkErrors = await page.evaluate(() =>
          [...(window.switchboardRoom.links as unknown as Map<string, { counters: { errors: number; lastError?: string } }>).values()].map(
            (l) => l.counters,
          ),
        );
        expect(
          linkErrors.map((c) => c.errors),
          `${order}: negotiation errors ${JSON.stringify(linkErrors)} (${avIdentity})`,
        ).to.deep.equal([0]);
      }
      await first.close();
      await second.close();
    }
  });

  it('a listener cannot publish (forbidden) yet receives the others', async () => {
    const speaker = await openPage('talk', 'speaker');
    const listener = await openPage('talk', 'listener', '&role=listener');
    await waitForMedia(listener, 1);
    await expectMediaGrowing(listener, [await identityOf(speaker)]);
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
    // The speaker sees the listener but gets no media from it.
    const fromListener = await speaker.evaluate(() => [...window.switchboardRoom.participants.values()].map((p) => p.tracks.size));
    expect(fromListener).to.deep.equal([0]);
    await speaker.close();
    await listener.close();
  });

  after(() => {
    const all = errors.flat().filter((e) => !/favicon/.test(e));
    if (all.length) console.log(`      page errors:\n        ${all.join('\n        ')}`);
  });
});

describe('browser e2e: the mesh relayed through the bundled TURN (iceTransportPolicy relay)', function () {
  this.timeout(120000);
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
    t = await startServer({
      TURN_ENABLED: 'true',
      TURN_PORT: '0',
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_SECRET: 'e2e-turn-secret-0123456789-0123456789',
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
    });
    base = t.url.replace('127.0.0.1', 'localhost');
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('three relay-only pages exchange media and data through the TURN server', async () => {
    const openPage = (room: string, name: string): Promise<Page> => openDemoPage(browser, base, `room=${room}&name=${name}&relay=1`);
    const before = t.server.turn?.stats().relayedBytes ?? 0;
    await threePages(openPage, 'relayed', 'demo-three-participants-relay.png');
    const stats = t.server.turn?.stats();
    expect((stats?.relayedBytes ?? 0) - before).to.be.greaterThan(100_000);
  });
});

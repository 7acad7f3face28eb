/**
 * Active speakers and connection quality in Chromium (issue 19), on the demo page.
 *
 * Active speakers: one page publishes a 440 Hz tone (a WebAudio oscillator into a
 * MediaStreamDestination, published as its microphone), two publish silence (a destination with
 * no source). Every page, the tone's own included, reports the tone page and only it as the
 * active speaker, in a mesh room (received audio levels in the SDK) and in an SFU room (the
 * router's audio level observer, active_speakers); no ActiveSpeakersChanged ever names a silent
 * page; a page joining while the tone plays lists it too.
 *
 * Connection quality: a page relays everything through the bundled TURN server behind a UDP
 * proxy in this process (tiny, deterministic, and touching only that page's packets, where tc
 * netem on the shared loopback would slow every process of the machine and a network namespace
 * needs Chromium and the server on both sides of a veth pair). The proxy drops 30% of what the
 * TURN server sends that page: its own quality, and what the other page is told of it, drop to
 * poor (or lost) while the other page's own quality stays good or excellent; with the loss
 * gone, both recover.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { failOnPageErrors, identityOf, openDemoPage, useChromiumSuite } from '../helpers/browser.js';
import { startLossyUdpProxy, type LossyUdpProxy } from '../helpers/lossyUdpProxy.js';
import { storeSfuRoom, waitFor } from '../helpers/server.js';

const ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '1',
  SFU_LISTEN_IP: '127.0.0.1',
  MESH_THRESHOLD: '4',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
  TURN_ENABLED: 'true',
  TURN_PORT: '0',
  TURN_LISTEN_IP: '127.0.0.1',
  TURN_RELAY_IP: '127.0.0.1',
  TURN_SECRET: 'e2e-turn-secret-0123456789-0123456789',
  TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
};

/** The room's API as these tests use it in the page. */
interface SpeakerRoom {
  activeSpeakers: Array<{ identity: string }>;
  localParticipant: { identity: string; connectionQuality: string; isSpeaking: boolean; audioLevel: number };
  participants: Map<string, { connectionQuality: string; isSpeaking: boolean; audioLevel: number }>;
  on(event: string, listener: (...args: unknown[]) => void): void;
  publish(stream: MediaStream): Promise<void>;
}

declare global {
  interface Window {
    speakerLog?: string[][];
    qualityLog?: Array<[string, string]>;
  }
}

/** Logs every ActiveSpeakersChanged and ConnectionQualityChanged of the page's room from now on. */
async function logEvents(page: Page): Promise<void> {
  await page.evaluate(() => {
    const room = window.switchboardRoom as unknown as SpeakerRoom;
    window.speakerLog = [];
    window.qualityLog = [];
    room.on('activeSpeakersChanged', (...args: unknown[]) => {
      window.speakerLog?.push((args[0] as Array<{ identity: string }>).map((p) => p.identity));
    });
    room.on('connectionQualityChanged', (...args: unknown[]) => {
      window.qualityLog?.push([String(args[0]), (args[1] as { identity: string }).identity]);
    });
  });
}

/** Publishes a tone (or silence) as the page's microphone. */
async function publishAudio(page: Page, tone: boolean): Promise<void> {
  await page.evaluate(async (withTone) => {
    const room = window.switchboardRoom as unknown as SpeakerRoom;
    const context = new AudioContext();
    await context.resume();
    const destination = context.createMediaStreamDestination();
    if (withTone) {
      const oscillator = context.createOscillator();
      oscillator.frequency.value = 440;
      const gain = context.createGain();
      gain.gain.value = 0.5;
      oscillator.connect(gain).connect(destination);
      oscillator.start();
    }
    await room.publish(destination.stream);
  }, tone);
}

/** The identities the page's room lists as active speakers now. */
function speakersOn(page: Page): Promise<string[]> {
  return page.evaluate(() => (window.switchboardRoom as unknown as SpeakerRoom).activeSpeakers.map((p) => p.identity));
}

/** Every identity any ActiveSpeakersChanged on the page named so far. */
function everNamed(page: Page): Promise<string[]> {
  return page.evaluate(() => [...new Set((window.speakerLog ?? []).flat())]);
}

describe('browser e2e: active speakers (Chromium, a WebAudio tone against silence)', function () {
  this.timeout(180000);
  const suite = useChromiumSuite(ENV);

  async function scenario(room: string, mode: 'mesh' | 'sfu'): Promise<void> {
    const open = (name: string) => openDemoPage(suite.browser, suite.base, `room=${room}&name=${name}&video=0&audio=0`);
    const pages = [await open('tone'), await open('quiet1'), await open('quiet2')];
    const [tonePage] = pages as [Page, Page, Page];
    try {
      for (const page of pages) expect(await page.evaluate(() => window.switchboardRoom.mode), 'mode').to.equal(mode);
      const ids = await Promise.all(pages.map(identityOf));
      const [toneId, ...quietIds] = ids as [string, string, string];
      for (const page of pages) await logEvents(page);
      await publishAudio(tonePage, true);
      for (const page of pages.slice(1)) await publishAudio(page, false);
      const started = Date.now();
      for (const [i, page] of pages.entries())
        await waitFor(
          async () => JSON.stringify(await speakersOn(page)) === JSON.stringify([toneId]),
          30000,
          `${mode}: page ${ids[i]} lists the tone as the only active speaker`,
        );
      console.log(
        `      ${mode}: the tone is the active speaker on all three pages ${Date.now() - started} ms after the silent pages published`,
      );
      // It stays so, and nobody ever called a silent page a speaker.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      for (const [i, page] of pages.entries()) {
        expect(await speakersOn(page), `${mode}: ${ids[i]} after 3 s more`).to.deep.equal([toneId]);
        const named = await everNamed(page);
        expect(named, `${mode}: ${ids[i]}'s ActiveSpeakersChanged events`).to.include(toneId);
        for (const quiet of quietIds) expect(named, `${mode}: ${ids[i]} never names ${quiet}`).to.not.include(quiet);
      }
      const states = await Promise.all(
        pages.map((page, i) =>
          page.evaluate(
            ([tone, self]) => {
              const room = window.switchboardRoom as unknown as SpeakerRoom;
              const p = tone === self ? room.localParticipant : room.participants.get(tone);
              return { isSpeaking: p?.isSpeaking, audioLevel: p?.audioLevel ?? 0 };
            },
            [toneId, ids[i]] as const,
          ),
        ),
      );
      for (const state of states) {
        expect(state.isSpeaking).to.equal(true);
        expect(state.audioLevel).to.be.above(0.01);
      }
      console.log(`      ${mode}: the tone's level as each page sees it: ${states.map((s) => s.audioLevel.toFixed(3)).join(', ')}`);
      // A page joining while the tone plays lists it too (SFU: from the router's current speakers in the join's sfu info).
      const late = await open('late');
      pages.push(late);
      await waitFor(
        async () => JSON.stringify(await speakersOn(late)) === JSON.stringify([toneId]),
        20000,
        `${mode}: a page that joined later lists the tone`,
      );
      // The demo highlights the speaker's tile on the others' pages, also on the late page, whose
      // tile for the tone was made after it learnt the speakers (SFU: from the join's sfu info).
      const highlighted = (page: Page) =>
        page.evaluate(
          (id) => document.querySelector(`.tile.remote[data-identity="${CSS.escape(id)}"]`)?.classList.contains('speaking') === true,
          toneId,
        );
      expect(await highlighted(pages[1] as Page), "the demo highlights the speaker's tile").to.equal(true);
      await waitFor(() => highlighted(late), 10000, `${mode}: the late page highlights the speaker's tile`);
    } finally {
      for (const page of pages) await page.close();
    }
  }

  it('in a mesh room: the tone page is the only active speaker on every page (its own included)', async () => {
    await scenario('speakers-mesh', 'mesh');
  });

  it('in an SFU room: the same, from the router’s audio level observer', async () => {
    await storeSfuRoom(suite.server, 'speakers-sfu', 'dev');
    await scenario('speakers-sfu', 'sfu');
  });
});

describe('browser e2e: connection quality under a lossy relay (Chromium, TURN behind a UDP proxy)', function () {
  this.timeout(180000);
  const suite = useChromiumSuite(ENV);
  let proxy: LossyUdpProxy;

  before(async function () {
    proxy = await startLossyUdpProxy(suite.server.server.turn?.port ?? 0);
  });
  after(async () => {
    await proxy?.close();
  });

  /** A demo page whose TURN server is the proxy (the join's ice_servers rewritten to its port) and which relays everything. */
  async function openBehindProxy(query: string): Promise<Page> {
    const page = await suite.browser.newPage({ viewport: { width: 1280, height: 800 } });
    failOnPageErrors(page, query);
    // A string, not a function: tsx names functions through a helper the page lacks.
    await page.addInitScript({
      content: `{
        const Native = window.RTCPeerConnection;
        const Proxied = function (configuration) {
          const iceServers = configuration && configuration.iceServers && configuration.iceServers.map((server) => ({
            ...server,
            urls: [].concat(server.urls).map((url) => url.replace(/^(turns?:[^:?]+):\\d+/, '$1:${proxy.port}')),
          }));
          return new Native({ ...configuration, ...(iceServers ? { iceServers } : {}) });
        };
        Proxied.prototype = Native.prototype;
        Proxied.generateCertificate = Native.generateCertificate.bind(Native);
        window.RTCPeerConnection = Proxied;
      }`,
    });
    await page.goto(`${suite.base}/?${query}`);
    await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 30000 });
    return page;
  }

  /** The page's own quality and the quality it was told of `other`. */
  function qualities(page: Page, other: string): Promise<{ self: string; other: string }> {
    return page.evaluate((id) => {
      const room = window.switchboardRoom as unknown as SpeakerRoom;
      return { self: room.localParticipant.connectionQuality, other: room.participants.get(id)?.connectionQuality ?? 'none' };
    }, other);
  }

  async function scenario(room: string, mode: 'mesh' | 'sfu'): Promise<void> {
    const query = `room=${room}&res=160x120&stats=1000`;
    const forwardedBefore = proxy.counts().forwarded;
    const lossy = await openBehindProxy(`${query}&name=lossy&relay=1`);
    const clean = await openDemoPage(suite.browser, suite.base, `${query}&name=clean`);
    try {
      for (const page of [lossy, clean]) expect(await page.evaluate(() => window.switchboardRoom.mode), 'mode').to.equal(mode);
      const [lossyId, cleanId] = [await identityOf(lossy), await identityOf(clean)];
      const good = (q: string) => q === 'excellent' || q === 'good';
      const bad = (q: string) => q === 'poor' || q === 'lost';
      await waitFor(
        async () => {
          const [l, c] = [await qualities(lossy, cleanId), await qualities(clean, lossyId)];
          return good(l.self) && good(c.self) && good(c.other) && good(l.other);
        },
        30000,
        'both pages measure a good connection first',
      );
      await waitFor(() => proxy.counts().forwarded > forwardedBefore + 300, 20000, 'the lossy page receives its media through the proxy');
      const relayed = await lossy.evaluate(async () => {
        const room = window.switchboardRoom as unknown as {
          links: Map<string, { pc: RTCPeerConnection }>;
          sfu: { qualityLink(): { getStats(): Promise<RTCStatsReport> } | null } | null;
        };
        const sources = [...room.links.values()].map((link) => link.pc);
        const sfu = room.sfu?.qualityLink();
        const types: string[] = [];
        for (const source of sfu ? [...sources, sfu] : sources)
          (await source.getStats()).forEach((s: { type: string; candidateType?: string; id: string }) => {
            if (s.type === 'local-candidate') types.push(String(s.candidateType));
          });
        return types;
      });
      expect(relayed.length).to.be.above(0);
      expect([...new Set(relayed)], `${mode}: the lossy page gathers relay candidates only`).to.deep.equal(['relay']);

      for (const page of [lossy, clean]) await logEvents(page);
      proxy.setLoss(0.3);
      const degradedAt = Date.now();
      await waitFor(async () => bad((await qualities(lossy, cleanId)).self), 30000, 'the lossy page sees its own quality drop');
      await waitFor(async () => bad((await qualities(clean, lossyId)).other), 30000, 'the clean page is told the lossy page dropped');
      const droppedMs = Date.now() - degradedAt;
      const during = await qualities(clean, lossyId);
      expect(good(during.self), `the clean page's own quality stays good (${during.self})`).to.equal(true);
      // It stays so while the loss lasts.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const still = await qualities(lossy, cleanId);
      expect(bad(still.self), `${mode}: still ${still.self} after 3 s more of loss`).to.equal(true);
      expect(bad((await qualities(clean, lossyId)).other), `${mode}: the clean page still sees it bad`).to.equal(true);
      console.log(
        `      ${mode}: 30% loss -> ${still.self} on the lossy page, seen by the other within ${droppedMs} ms; clean page ${during.self}`,
      );

      proxy.setLoss(0);
      const restoredAt = Date.now();
      await waitFor(async () => good((await qualities(lossy, cleanId)).self), 30000, 'the lossy page recovers');
      await waitFor(async () => good((await qualities(clean, lossyId)).other), 30000, 'the clean page is told it recovered');
      console.log(
        `      ${mode}: loss removed -> recovered on both pages in ${Date.now() - restoredAt} ms; dropped datagrams ${proxy.counts().dropped}`,
      );

      // ConnectionQualityChanged told both changes of the lossy participant, on both pages, in order.
      for (const [page, label] of [
        [lossy, 'lossy (its own)'],
        [clean, 'clean'],
      ] as const) {
        const events = (await page.evaluate(() => window.qualityLog ?? [])).filter(([, identity]) => identity === lossyId);
        const firstBad = events.findIndex(([quality]) => bad(quality));
        expect(firstBad, `${mode} ${label}: a poor or lost ConnectionQualityChanged (${JSON.stringify(events)})`).to.be.at.least(0);
        expect(
          events.slice(firstBad).some(([quality]) => good(quality)),
          `${mode} ${label}: then a good or excellent one`,
        ).to.equal(true);
      }
      const tileQuality = await clean.evaluate(
        (id) => document.querySelector<HTMLElement>(`.tile.remote[data-identity="${CSS.escape(id)}"]`)?.dataset['quality'],
        lossyId,
      );
      expect(good(String(tileQuality)), `the demo's tile shows the quality (${tileQuality})`).to.equal(true);
    } finally {
      await lossy.close();
      await clean.close();
    }
  }

  it('in a mesh room: drops to poor on the page behind a lossy relay, the other page stays good, and both recover', async () => {
    await scenario('quality-mesh', 'mesh');
  });

  it('in an SFU room: the same, over the SFU transports', async () => {
    await storeSfuRoom(suite.server, 'quality-sfu', 'dev');
    await scenario('quality-sfu', 'sfu');
  });
});

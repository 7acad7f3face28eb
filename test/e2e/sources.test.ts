/**
 * Track sources in Chromium (issue 19), in a mesh room and in an SFU room, with the demo page
 * and fake media: a canvas capture stream published as `screen` is seen as a screen share by
 * every other page; a second share past max_screen_shares (1) is refused with quota_exceeded; a
 * `guide` token's microphone reaches every other page, its camera is refused (forbidden), and
 * so is a listener's publish; a malformed source is payload_invalid.
 */
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { identityOf, openDemoPage, useChromiumSuite } from '../helpers/browser.js';
import { storeSfuRoom, waitFor } from '../helpers/server.js';

const ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '1',
  SFU_LISTEN_IP: '127.0.0.1',
  MESH_THRESHOLD: '4',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
};

/** What one page's room knows of another participant's tracks. */
interface SeenTracks {
  /** Announced (RemoteParticipant.trackPublications): sources. */
  announced: string[];
  /** Received (RemoteParticipant.trackInfo, as TrackSubscribed gave it): kind and source. */
  received: Array<{ kind: string; source: string }>;
}

/** What `page` knows of `identity`'s tracks. */
function seenOn(page: Page, identity: string): Promise<SeenTracks> {
  return page.evaluate((id) => {
    const participant = window.switchboardRoom.participants.get(id) as unknown as
      { trackPublications: Map<string, { source: string }>; trackInfo: Map<string, { kind: string; source: string }> } | undefined;
    return {
      announced: [...(participant?.trackPublications.values() ?? [])].map((p) => p.source),
      received: [...(participant?.trackInfo.values() ?? [])].map((p) => ({ kind: p.kind, source: p.source })),
    };
  }, identity);
}

/** Publishes a drawn canvas (640x360, 10 fps) from the page; resolves with the outcome (an error code, or the track's content hint). */
function publishCanvas(page: Page, source: string | undefined): Promise<{ ok: true; contentHint: string } | { ok: false; code: string }> {
  return page.evaluate(async (src) => {
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 360;
    const context = canvas.getContext('2d') as CanvasRenderingContext2D;
    let frame = 0;
    // Inline (no named function: tsx's keepNames would wrap it in a helper the page lacks).
    setInterval(() => {
      frame++;
      context.fillStyle = frame % 2 ? '#ffffff' : '#eeeeee';
      context.fillRect(0, 0, 640, 360);
      context.fillStyle = '#000000';
      context.font = '32px sans-serif';
      context.fillText(`slide ${frame}`, 40, 80);
    }, 100);
    const stream = canvas.captureStream(10);
    const room = window.switchboardRoom as unknown as { publish(stream: MediaStream, options?: { source?: string }): Promise<void> };
    try {
      await room.publish(stream, src === undefined ? {} : { source: src });
      return { ok: true as const, contentHint: stream.getVideoTracks()[0]?.contentHint ?? '' };
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      return { ok: false as const, code: String((error as { code?: string }).code) };
    }
  }, source);
}

/** Sends a raw request on the page's signaling connection (past the SDK's own checks): the server's answer code. */
function rawRequest(page: Page, event: string, payload: unknown): Promise<string> {
  return page.evaluate(
    async ([name, body]) => {
      const room = window.switchboardRoom as unknown as { signal: { request(event: string, payload: unknown): Promise<unknown> } };
      try {
        await room.signal.request(name as string, body);
        return 'ok';
      } catch (error) {
        return String((error as { code?: string }).code);
      }
    },
    [event, payload] as const,
  );
}

/** Audio bytes from `identity` grow on the page (over the mesh link or the SFU). */
async function expectAudioFrom(page: Page, identity: string, label: string): Promise<void> {
  const bytes = () => page.evaluate(async (id) => (await window.switchboardRoom.getParticipantStats()).get(id)?.audioBytes ?? 0, identity);
  await waitFor(async () => (await bytes()) > 0, 30000, `${label}: first audio`);
  const before = await bytes();
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 250));
      return (await bytes()) > before + 2000;
    },
    20000,
    `${label}: audio growing`,
  );
}

/** Video frames from `identity` decode on the page. */
async function expectFramesFrom(page: Page, identity: string, label: string): Promise<void> {
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 250));
      const stats = await page.evaluate(
        async (id) => (await window.switchboardRoom.getParticipantStats()).get(id)?.framesDecoded ?? 0,
        identity,
      );
      return stats > 0;
    },
    45000,
    `${label}: screen frames decoded`,
  );
}

describe('browser e2e: track sources, screen share policy and the guide preset (Chromium, fake media)', function () {
  this.timeout(180000);
  const suite = useChromiumSuite(ENV);
  const errors: string[][] = [];

  /**
   * Four pages: ann and ben (guests, no camera or microphone of their own), a guide (its
   * microphone only, as the demo publishes for it) and a listener.
   */
  async function scenario(room: string, mode: 'mesh' | 'sfu'): Promise<void> {
    const open = (name: string, query: string) =>
      openDemoPage(suite.browser, suite.base, `room=${room}&name=${name}${query}`, undefined, errors);
    const ann = await open('ann', '&video=0&audio=0');
    const ben = await open('ben', '&video=0&audio=0');
    const guide = await open('guide', '&role=guide');
    const listener = await open('lis', '&role=listener');
    const pages = [ann, ben, guide, listener];
    try {
      for (const page of pages) expect(await page.evaluate(() => window.switchboardRoom.mode), 'mode').to.equal(mode);
      const [annId, benId, guideId, listenerId] = (await Promise.all(pages.map(identityOf))) as [string, string, string, string];

      // The guide's microphone reaches everyone, as a microphone.
      for (const [page, label] of [
        [ann, 'ann'],
        [ben, 'ben'],
        [listener, 'listener'],
      ] as const) {
        await expectAudioFrom(page, guideId, `${mode} ${label} from the guide`);
        expect((await seenOn(page, guideId)).received, `${mode} ${label}`).to.deep.equal([{ kind: 'audio', source: 'microphone' }]);
        expect((await seenOn(page, guideId)).announced).to.deep.equal(['microphone']);
      }

      // ann shares a screen: every other page sees a screen track from ann, and decodes it.
      const share = await publishCanvas(ann, 'screen');
      expect(share, `${mode}: first share`).to.deep.equal({ ok: true, contentHint: 'detail' });
      for (const [page, label] of [
        [ben, 'ben'],
        [guide, 'guide'],
        [listener, 'listener'],
      ] as const) {
        await expectFramesFrom(page, annId, `${mode} ${label}`);
        const seen = await seenOn(page, annId);
        expect(seen, `${mode} ${label} sees ann's screen`).to.deep.equal({
          announced: ['screen'],
          received: [{ kind: 'video', source: 'screen' }],
        });
      }
      const serverTracks = [...(suite.server.server.rooms.get('dev', room)?.peerByUser(annId)?.tracks.values() ?? [])];
      expect(serverTracks.map((track) => track.source)).to.deep.equal(['screen']);
      if (mode === 'sfu') {
        const producers = suite.server.server.sfu?.get(`dev/${room}`)?.producers() ?? [];
        expect(producers.filter((p) => p.kind === 'video').map((p) => p.source)).to.deep.equal(['screen']);
        const preference = await ann.evaluate(() => {
          const sfu = (window.switchboardRoom as unknown as { sfu: { producers: Map<MediaStreamTrack, { rtpSender?: RTCRtpSender }> } })
            .sfu;
          const [producer] = [...sfu.producers.values()];
          return String((producer?.rtpSender?.getParameters() as { degradationPreference?: string } | undefined)?.degradationPreference);
        });
        expect(preference, 'the screen producer keeps its resolution').to.equal('maintain-resolution');
      } else {
        // The mesh senders keep their resolution under load.
        const preferences = await ann.evaluate(() => {
          const links = (window.switchboardRoom as unknown as { links: Map<string, { pc: RTCPeerConnection }> }).links;
          return [...links.values()].flatMap(({ pc }) =>
            pc
              .getSenders()
              .filter((sender) => sender.track?.kind === 'video')
              .map((sender) => String((sender.getParameters() as { degradationPreference?: string }).degradationPreference)),
          );
        });
        expect(preferences.length, 'one video sender per link').to.equal(3);
        expect(preferences, 'the screen senders keep their resolution').to.deep.equal(Array(3).fill('maintain-resolution'));
      }

      // A second share past max_screen_shares (1): quota_exceeded, and nobody sees it.
      expect(await publishCanvas(ben, 'screen'), `${mode}: second share`).to.deep.equal({ ok: false, code: 'quota_exceeded' });
      expect((await seenOn(ann, benId)).announced).to.deep.equal([]);

      // The guide's camera and screen are refused (the SDK, and the server past it); a listener publishes nothing.
      expect(await publishCanvas(guide, undefined), `${mode}: guide camera`).to.deep.equal({ ok: false, code: 'forbidden' });
      const camera = { track_id: 'cam-1', kind: 'video', source: 'camera' };
      expect(await rawRequest(guide, 'publish_track', camera), `${mode}: guide camera, raw`).to.equal('forbidden');
      expect(await rawRequest(guide, 'publish_track', { ...camera, source: 'screen' }), `${mode}: guide screen, raw`).to.equal('forbidden');
      expect(await publishCanvas(listener, 'screen'), `${mode}: listener`).to.deep.equal({ ok: false, code: 'forbidden' });
      expect(await rawRequest(listener, 'publish_track', { track_id: 'mic-1', kind: 'audio', source: 'microphone' })).to.equal('forbidden');

      // Malformed sources: payload_invalid from the SDK and from the server.
      expect(await publishCanvas(ben, 'window'), `${mode}: malformed`).to.deep.equal({ ok: false, code: 'payload_invalid' });
      expect(await rawRequest(ben, 'publish_track', { ...camera, source: 'window' })).to.equal('payload_invalid');
      expect(await rawRequest(ben, 'publish_track', { ...camera, source: 'microphone' })).to.equal('payload_invalid');

      // Nothing refused reached anyone: the guide still sends its microphone only, the listener nothing, ben nothing.
      expect((await seenOn(ann, guideId)).announced).to.deep.equal(['microphone']);
      expect((await seenOn(ann, listenerId)).announced).to.deep.equal([]);
      expect((await seenOn(guide, benId)).received).to.deep.equal([]);
      expect(errors.flat().filter((line) => /uncaught|TypeError/i.test(line))).to.deep.equal([]);
    } finally {
      for (const page of pages) await page.close();
    }
  }

  it('in a mesh room', async () => {
    await scenario('sources-mesh', 'mesh');
  });

  it('in an SFU room', async () => {
    await storeSfuRoom(suite.server, 'sources-sfu', 'dev');
    await scenario('sources-sfu', 'sfu');
  });
});

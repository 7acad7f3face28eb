/**
 * Issue 18: attachTrack / detachTrack, the SDK's helpers that show a track in a media element
 * (LiveKit's track.attach()/detach()), in Chromium with fake media, in a mesh room and in a
 * room on the SFU: a remote video attached to a new element decodes frames there, the same
 * element takes a replacement track of the same kind, audio gets an <audio> element, and
 * detaching empties the element. The demo pages show no remote video of their own (?tiles=0):
 * the test's element is the track's only one.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', ROOM_EMPTY_TIMEOUT_MS: '2000' };

interface AttachResult {
  created: string;
  videoWidth: number;
  sameElementForAnotherTrack: boolean;
  streamTracks: number;
  audioElement: string;
  detachedFrom: number;
  srcObjectAfterDetach: boolean;
  attachedAfterDetach: number;
}

/** On `page`: attach the first remote participant's video and audio, check them, then detach. */
function exercise(page: Page): Promise<AttachResult> {
  return page.evaluate(async () => {
    const sdk = (await import('/sdk/esm/switchboard.js' as string)) as {
      attachTrack(track: MediaStreamTrack, element?: HTMLMediaElement): HTMLVideoElement | HTMLAudioElement;
      detachTrack(track: MediaStreamTrack, element?: HTMLMediaElement): HTMLMediaElement[];
      attachedElements(track: MediaStreamTrack): HTMLMediaElement[];
    };
    const remote = [...window.switchboardRoom.participants.values()][0] as unknown as { tracks: Map<string, MediaStreamTrack> };
    const tracks = [...remote.tracks.values()];
    const video = tracks.find((t) => t.kind === 'video' && t.readyState === 'live');
    const audio = tracks.find((t) => t.kind === 'audio' && t.readyState === 'live');
    if (!video || !audio) throw new Error(`remote tracks: ${tracks.map((t) => `${t.kind}:${t.readyState}`).join(', ')}`);
    const element = sdk.attachTrack(video) as HTMLVideoElement;
    // In view whatever the page's layout: the SDK's adaptive stream pauses a video nobody can see.
    Object.assign(element.style, { position: 'fixed', top: '0', left: '0', width: '320px', height: '240px', zIndex: '10' });
    document.body.append(element);
    const deadline = Date.now() + 15_000;
    while (element.videoWidth === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const videoWidth = element.videoWidth;
    // A replacement video track (a canvas) in the same element: it replaces the remote one there.
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 48;
    const other = canvas.captureStream(5).getVideoTracks()[0] as MediaStreamTrack;
    const same = sdk.attachTrack(other, element) === element;
    const streamTracks = (element.srcObject as MediaStream).getTracks().length;
    sdk.detachTrack(other, element);
    sdk.attachTrack(video, element);
    const audioElement = sdk.attachTrack(audio);
    const detachedFrom = sdk.detachTrack(video).length;
    sdk.detachTrack(audio);
    other.stop();
    return {
      created: element.tagName,
      videoWidth,
      sameElementForAnotherTrack: same,
      streamTracks,
      audioElement: audioElement.tagName,
      detachedFrom,
      srcObjectAfterDetach: element.srcObject !== null,
      attachedAfterDetach: sdk.attachedElements(video).length,
    };
  });
}

describe('browser e2e: attachTrack and detachTrack (issue 18)', function () {
  this.timeout(120_000);
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

  for (const topology of ['mesh', 'sfu'] as const) {
    it(`shows a remote track in an element and takes it out again (${topology})`, async () => {
      const t: TestServer = await startServer(topology === 'sfu' ? SFU_ENV : { ROOM_EMPTY_TIMEOUT_MS: '2000' });
      const pages: Page[] = [];
      try {
        const base = t.url.replace('127.0.0.1', 'localhost');
        const roomId = `attach-${topology}`;
        pages.push(
          await openDemoPage(browser as Browser, base, `room=${roomId}&name=ann&res=320x240&tiles=0`, { width: 800, height: 500 }),
        );
        if (topology === 'sfu') {
          const live = t.server.rooms.all().find((r) => r.id === roomId);
          if (!live) throw new Error('the live room');
          t.server.rooms.updateConfig(live, { mode_policy: 'sfu' });
          await (pages[0] as Page).waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 30_000 });
        }
        pages.push(
          await openDemoPage(browser as Browser, base, `room=${roomId}&name=ben&res=320x240&tiles=0`, { width: 800, height: 500 }),
        );
        const ann = pages[0] as Page;
        await ann.waitForFunction(
          () => {
            const p = [...window.switchboardRoom.participants.values()][0] as unknown as
              { tracks: Map<string, MediaStreamTrack> } | undefined;
            const kinds = new Set([...(p?.tracks.values() ?? [])].filter((t) => t.readyState === 'live').map((t) => t.kind));
            return kinds.has('audio') && kinds.has('video');
          },
          undefined,
          { timeout: 30_000 },
        );
        if (topology === 'sfu') expect(await ann.evaluate(() => window.switchboardRoom.mode)).to.equal('sfu');
        const result = await exercise(ann);
        expect(result).to.deep.include({
          created: 'VIDEO',
          sameElementForAnotherTrack: true,
          streamTracks: 1,
          audioElement: 'AUDIO',
          detachedFrom: 1,
          srcObjectAfterDetach: false,
          attachedAfterDetach: 0,
        });
        expect(result.videoWidth, 'the attached remote video decodes').to.be.greaterThan(0);
      } finally {
        for (const page of pages) await page.close().catch(() => undefined);
        await t.close();
      }
    });
  }
});

import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { identityOf, openDemoPage, useChromiumSuite } from '../helpers/browser.js';
import { waitFor } from '../helpers/server.js';
import { decodedSize, setTileHidden, showVideoOf } from '../helpers/tiles.js';
import type { SfuRoom } from '../../server/sfu/SfuService.js';

const SFU_ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '1',
  SFU_LISTEN_IP: '127.0.0.1',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
};

/**
 * The room of five pages, each sending its 1280x720 camera as three layers (720p, 360p,
 * 180p). SIMULCAST_PAGES=3 runs a lighter room on a machine too busy for five encoders (a
 * starved encoder drops its top layer, which the test would read as a missing layer).
 */
const PAGES = Number(process.env.SIMULCAST_PAGES ?? 5);

describe('browser e2e: simulcast and adaptive stream on the SFU (Chromium, fake 1280x720 camera)', function () {
  this.timeout(300000);
  const suite = useChromiumSuite(SFU_ENV);
  const pages: Page[] = [];
  after(async () => {
    for (const page of pages) await page.close().catch(() => undefined);
  });

  /** Creates the room through the API, pinned to the SFU, so the pages go straight there. */
  async function createSfuRoom(room: string): Promise<void> {
    const secret = /api_secret=(\S+)/.exec(suite.server.server.config.bootNotices.join('\n'))?.[1];
    const response = await fetch(`${suite.server.url}/api/v1/rooms`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ room_id: room, mode: 'sfu' }),
    });
    expect(response.status, await response.clone().text()).to.equal(201);
  }

  it('publishes three layers; a 160x90 tile gets the lowest, a 1280x720 tile the highest; a hidden tile pauses its consumer', async () => {
    const room = 'simulcast';
    await createSfuRoom(room);
    for (let i = 1; i <= PAGES; i++)
      pages.push(
        await openDemoPage(suite.browser, suite.base, `room=${room}&name=s${i}&res=1280x720&audio=0&tiles=0`, { width: 1280, height: 800 }),
      );
    const [small, large, sender] = pages as [Page, Page, Page];
    const ids = await Promise.all(pages.map((page) => page.evaluate(() => window.switchboardRoom.localParticipant.id)));
    const senderIdentity = await identityOf(sender);
    let sfuRoom: SfuRoom | undefined;
    await waitFor(
      () => {
        sfuRoom = suite.server.server.sfu?.get(`dev/${room}`);
        return ids.every((id) => sfuRoom?.producerEncodings(id).some((p) => p.kind === 'video'));
      },
      60000,
      'a video producer of every page on the router',
    );

    // Every page publishes three layers: quarter, half and full resolution, each capped.
    for (const id of ids) {
      const video = sfuRoom?.producerEncodings(id).find((p) => p.kind === 'video');
      expect(
        video?.encodings.map((e) => e.scaleResolutionDownBy),
        `encodings of ${id}`,
      ).to.deep.equal([4, 2, 1]);
      expect(video?.encodings.map((e) => e.maxBitrate)).to.deep.equal([100_000, 300_000, 900_000]);
    }
    const producerId = sfuRoom?.producerEncodings(ids[2] as string).find((p) => p.kind === 'video')?.id as string;

    // The sender's video shown at 160x90 on one page, at 1280x720 on another.
    for (const [page, size] of [
      [small, [160, 90]],
      [large, [1280, 720]],
    ] as const)
      await waitFor(() => showVideoOf(page, senderIdentity, 'tile', size[0], size[1]), 60000, 'the sender’s video track on the page');

    const state = (peer: number) => sfuRoom?.consumerState(ids[peer] as string, producerId);
    // Bandwidth estimation ramps up over seconds before the 720p layer fits the downlink.
    const shownAt = Date.now();
    await waitFor(
      async () => state(0)?.currentLayers?.spatialLayer === 0 && (await decodedSize(small, 'tile')).width === 320,
      60000,
      'the lowest layer (320x180) on the small tile',
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message}: consumer ${JSON.stringify(state(0))}, decoded ${JSON.stringify(await decodedSize(small, 'tile'))}`,
      );
    });
    await waitFor(
      async () => state(1)?.currentLayers?.spatialLayer === 2 && (await decodedSize(large, 'tile')).width === 1280,
      90000,
      'the highest layer (1280x720) on the large tile',
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message}: consumer ${JSON.stringify(state(1))}, decoded ${JSON.stringify(await decodedSize(large, 'tile'))}`,
      );
    });
    const layersMs = Date.now() - shownAt;
    expect(state(0)?.preferredLayers?.spatialLayer, 'preferred layer of the small tile').to.equal(0);
    expect(state(1)?.preferredLayers?.spatialLayer, 'preferred layer of the large tile').to.equal(2);
    const smallDecoded = await decodedSize(small, 'tile');
    const largeDecoded = await decodedSize(large, 'tile');
    console.log(
      `      small tile: layer ${state(0)?.currentLayers?.spatialLayer}, decoded ${smallDecoded.width}x${smallDecoded.height}; large tile: layer ${state(1)?.currentLayers?.spatialLayer}, decoded ${largeDecoded.width}x${largeDecoded.height}; both reached ${layersMs} ms after the tiles were shown`,
    );

    // Hidden: the SFU stops forwarding (consumer paused); shown again: it resumes and frames flow.
    const hiddenAt = Date.now();
    await setTileHidden(small, 'tile', true);
    await waitFor(() => state(0)?.paused === true, 10000, 'the hidden tile’s consumer paused');
    const pausedMs = Date.now() - hiddenAt;
    expect(state(1)?.paused, 'the large tile’s consumer').to.equal(false);
    const unhiddenAt = Date.now();
    await setTileHidden(small, 'tile', false);
    await waitFor(() => state(0)?.paused === false, 10000, 'the consumer resumed once the tile shows again');
    const resumedMs = Date.now() - unhiddenAt;
    const before = (await decodedSize(small, 'tile')).frames;
    await waitFor(async () => (await decodedSize(small, 'tile')).frames > before + 5, 20000, 'frames again on the small tile');
    console.log(`      hidden -> consumer paused on the server in ${pausedMs} ms; shown -> resumed in ${resumedMs} ms, frames again`);

    // A tile toggled over and over: every resume asks the sender for a key frame of that layer,
    // and the SFU lets one request through per SFU_KEYFRAME_REQUEST_DELAY_MS (1 s) per layer
    // (PLI and FIR the router sent the sender's lowest layer, from the producer's stats).
    const keyFrameRequests = async (): Promise<number> => {
      const producer = (sfuRoom as unknown as { findProducer(id: string): { getStats(): Promise<unknown[]> } }).findProducer(producerId);
      const stats = (await producer.getStats()) as Array<{ rid?: string; pliCount?: number; firCount?: number }>;
      return stats.filter((s) => s.rid === 'r0').reduce((sum, s) => sum + (s.pliCount ?? 0) + (s.firCount ?? 0), 0);
    };
    const toggles = 12;
    const requestsBefore = await keyFrameRequests();
    const toggledAt = Date.now();
    for (let i = 0; i < toggles; i++) {
      await setTileHidden(small, 'tile', true);
      await waitFor(() => state(0)?.paused === true, 10000, 'paused while toggling');
      await setTileHidden(small, 'tile', false);
      await waitFor(() => state(0)?.paused === false, 10000, 'resumed while toggling');
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const toggledSeconds = (Date.now() - toggledAt) / 1000;
    const requests = (await keyFrameRequests()) - requestsBefore;
    console.log(
      `      ${toggles} hide/show toggles in ${toggledSeconds.toFixed(1)} s: ${requests} key frame requests to the lowest layer's sender`,
    );
    expect(requests, 'at most one key frame request per second per layer reaches the sender').to.be.at.most(Math.ceil(toggledSeconds) + 1);

    // Detached from every element: paused too.
    await small.evaluate(() => {
      const video = document.getElementById('tile') as HTMLVideoElement;
      const track = (video.srcObject as MediaStream).getVideoTracks()[0] as MediaStreamTrack;
      window.switchboardSdk?.detachTrack(track);
    });
    await waitFor(() => state(0)?.paused === true, 10000, 'the detached track’s consumer paused');
  });
});

import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, identityOf, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** The SDK's Room as these tests read it in a page (private parts included, to see what went over the wire). */
interface DevicePageRoom {
  state: string;
  mode: string;
  localParticipant: { identity: string };
  participants: Map<string, { selfMuted: { audio: boolean; video: boolean } }>;
  cameraTrack: MediaStreamTrack | null;
  microphoneTrack: MediaStreamTrack | null;
  isCameraEnabled: boolean;
  isMicrophoneEnabled: boolean;
  links: Map<string, { counters: { offersSent: number; answersSent: number; descriptionsReceived: number } }>;
  sfu: { producers: Map<MediaStreamTrack, { id: string; kind: string; paused: boolean }> } | null;
  setCameraEnabled(enabled: boolean): Promise<void>;
  setMicrophoneEnabled(enabled: boolean): Promise<void>;
  switchDevice(kind: string, deviceId: string): Promise<void>;
  getParticipantStats(): Promise<Map<string, { framesDecoded: number; videoBytes: number }>>;
}

declare global {
  interface Window {
    deviceLog: Array<string[]>;
  }
}

const SFU_ENV = {
  SFU_ENABLED: 'true',
  SFU_WORKERS: '1',
  SFU_LISTEN_IP: '127.0.0.1',
  ROOM_EMPTY_TIMEOUT_MS: '2000',
};

const room = (page: Page, which: 'demo' | 'own') =>
  page.evaluateHandle((w) => (w === 'demo' ? window.switchboardRoom : (window as unknown as { ownRoom: unknown }).ownRoom), which);

/** Runs `fn` on the page's Room. */
async function onRoom<R, A = undefined>(
  page: Page,
  which: 'demo' | 'own',
  fn: (room: DevicePageRoom, arg: A) => R | Promise<R>,
  arg?: A,
): Promise<R> {
  const handle = await room(page, which);
  try {
    return (await handle.evaluate(fn as never, arg as never)) as R;
  } finally {
    await handle.dispose();
  }
}

/** SDP exchanges so far over every mesh link, and the SFU producers (id, kind, paused): a renegotiation changes one of them. */
function negotiation(page: Page, which: 'demo' | 'own'): Promise<{ descriptions: number; producers: string[] }> {
  return onRoom(page, which, (r) => ({
    descriptions: [...r.links.values()].reduce(
      (n, l) => n + l.counters.offersSent + l.counters.answersSent + l.counters.descriptionsReceived,
      0,
    ),
    producers: r.sfu ? [...r.sfu.producers.values()].map((p) => `${p.kind}:${p.id}`).sort() : [],
  }));
}

/** Frames decoded on `page` from `identity` (both paths). */
function framesFrom(page: Page, which: 'demo' | 'own', identity: string): Promise<number> {
  return onRoom(page, which, async (r, id) => (await r.getParticipantStats()).get(id)?.framesDecoded ?? 0, identity);
}

async function expectFramesGrowing(page: Page, which: 'demo' | 'own', identity: string, what: string): Promise<void> {
  const before = await framesFrom(page, which, identity);
  await waitFor(async () => (await framesFrom(page, which, identity)) > before + 10, 20000, what);
}

/**
 * The camera and microphone API of the SDK (issue 18) in Chromium with fake devices, in a mesh
 * room and in an SFU room: a Room made with `new Room()` and listened to before connect, the
 * first setCameraEnabled capturing, the own mute seen by the other page (TrackMuted/Unmuted,
 * tracks disabled, SFU producers paused) and by the muting page's own Room (TrackMuted/Unmuted
 * with room.localParticipant), and switchDevice replacing the sent track without
 * renegotiation. Chromium's fake devices give one camera: a switch to the same device checks the
 * mechanics (a new track, the old one stopped, frames going on), and a switch to a red canvas
 * (through RoomOptions.getUserMedia) checks that the other page really shows the new source.
 */
describe('devices and own mute in Chromium (fake media)', function () {
  this.timeout(180000);
  let browser: Browser | null = null;

  before(async function () {
    if (browserUnavailableReason()) return this.skip();
    buildSdk();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const topology of ['mesh', 'sfu'] as const) {
    describe(`a ${topology} room`, () => {
      let t: TestServer;
      const pages: Page[] = [];

      beforeEach(async () => {
        t = await startServer(topology === 'sfu' ? SFU_ENV : { ROOM_EMPTY_TIMEOUT_MS: '2000' });
      });
      afterEach(async () => {
        for (const page of pages.splice(0)) await page.close();
        await t.close();
      });

      it('listeners before connect, setCameraEnabled, own mute seen by the other, switchDevice without renegotiation', async () => {
        const base = t.url.replace('127.0.0.1', 'localhost');
        const roomId = `devices-${topology}`;
        // A: the demo page, publishing the fake camera and microphone it captured itself.
        const a = await openDemoPage(browser as Browser, base, `room=${roomId}&name=alice&res=320x240`);
        pages.push(a);
        const aId = await identityOf(a);
        if (topology === 'sfu') {
          // On the SFU from its first participant: the mode policy pinned to sfu (the demo's tenant is the config's first).
          const live = t.server.rooms.all().find((r) => r.id === roomId);
          expect(live, 'the live room').to.not.equal(undefined);
          t.server.rooms.updateConfig(live as NonNullable<typeof live>, { mode_policy: 'sfu' });
          await a
            .waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 30000 })
            .catch(async (error: Error) => {
              const state = await a.evaluate(
                () => `mode ${window.switchboardRoom.mode}, error: ${document.getElementById('error')?.textContent}`,
              );
              throw new Error(`${error.message}: ${state}`);
            });
        }

        // B: its own Room on the demo's origin (no join), made with new Room() and listened to before connect.
        const b = await (browser as Browser).newPage();
        pages.push(b);
        await b.goto(`${base}/`);
        // A string, not a function: the test runner's transpiler would name inner functions with a helper the page lacks.
        await b.evaluate(`(async () => {
          const sdk = await import('/sdk/esm/switchboard.js');
          const canvas = document.createElement('canvas');
          canvas.width = 320;
          canvas.height = 240;
          const context = canvas.getContext('2d');
          setInterval(() => {
            context.fillStyle = 'rgb(255, 0, 0)';
            context.fillRect(0, 0, canvas.width, canvas.height);
          }, 50);
          const red = canvas.captureStream(15);
          const log = [];
          window.deviceLog = log;
          const ownRoom = new sdk.Room({
            getUserMedia: (constraints) =>
              constraints.video?.deviceId?.exact === 'red-canvas'
                ? Promise.resolve(new MediaStream([red.getVideoTracks()[0].clone()]))
                : navigator.mediaDevices.getUserMedia(constraints),
          });
          ownRoom.on(sdk.RoomEvent.ParticipantJoined, (p) => log.push(['joined', p.identity, ownRoom.state]));
          ownRoom.on(sdk.RoomEvent.TrackSubscribed, (track, p) => log.push(['track', p.identity, track.kind]));
          const side = (p) => (p === ownRoom.localParticipant ? 'local' : 'remote');
          ownRoom.on(sdk.RoomEvent.TrackMuted, (p, kind) => log.push(['muted', p.identity, kind, side(p)]));
          ownRoom.on(sdk.RoomEvent.TrackUnmuted, (p, kind) => log.push(['unmuted', p.identity, kind, side(p)]));
          window.ownRoom = ownRoom;
          const response = await fetch('/dev/token', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ room: ${JSON.stringify(roomId)}, name: 'bob', user: 'bob', role: 'guest' }),
          });
          const { token } = await response.json();
          await ownRoom.connect(location.origin, token);
          log.push(['connected']);
        })()`);
        const log = () => b.evaluate(() => window.deviceLog);
        expect((await log()).slice(0, 2)).to.deep.equal([['joined', aId, 'connected'], ['connected']]);
        await waitFor(
          async () => (await log()).filter((e) => e[0] === 'track' && e[1] === aId).length === 2,
          30000,
          "alice's two tracks on bob",
        );
        await expectFramesGrowing(b, 'own', aId, "alice's video decoding on bob");

        // B's first setCameraEnabled(true) captures the fake camera and publishes it.
        await onRoom(b, 'own', (r) => r.setCameraEnabled(true));
        expect(await onRoom(b, 'own', (r) => [r.isCameraEnabled, r.cameraTrack?.readyState])).to.deep.equal([true, 'live']);
        await expectFramesGrowing(a, 'demo', 'bob', "bob's video decoding on alice");
        const before = { a: await negotiation(a, 'demo'), b: await negotiation(b, 'own') };
        // A's own mute events, as the demo's Room emits them (its own and bob's).
        await onRoom(a, 'demo', (r) => {
          const events: string[][] = [];
          (window as unknown as { muteLog: string[][] }).muteLog = events;
          const room = r as unknown as {
            localParticipant: unknown;
            on(
              event: string,
              listener: (p: { identity: string; selfMuted: { audio: boolean; video: boolean } }, kind: string) => void,
            ): void;
          };
          for (const event of ['trackMuted', 'trackUnmuted'])
            room.on(event, (p, kind) =>
              events.push([
                event,
                p.identity,
                kind,
                p === room.localParticipant ? 'local' : 'remote',
                String(p.selfMuted[kind as 'audio']),
              ]),
            );
        });
        const muteLogA = () => a.evaluate(() => (window as unknown as { muteLog: string[][] }).muteLog);

        // A mutes and unmutes its microphone: B hears it; the track is disabled meanwhile, the SFU producer paused.
        await onRoom(a, 'demo', (r) => r.setMicrophoneEnabled(false));
        // A's own TrackMuted, by the time the call resolved (the local participant, its selfMuted set).
        expect(await muteLogA()).to.deep.equal([['trackMuted', aId, 'audio', 'local', 'true']]);
        await waitFor(async () => (await log()).some((e) => e[0] === 'muted'), 10000, 'TrackMuted on bob');
        expect(
          await onRoom(a, 'demo', (r) => ({
            enabled: r.microphoneTrack?.enabled,
            paused: r.sfu ? [...r.sfu.producers.values()].filter((p) => p.kind === 'audio').map((p) => p.paused) : null,
          })),
        ).to.deep.equal({ enabled: false, paused: topology === 'sfu' ? [true] : null });
        expect(await onRoom(b, 'own', (r, id) => r.participants.get(id)?.selfMuted, aId)).to.deep.equal({ audio: true, video: false });
        await onRoom(a, 'demo', (r) => r.setMicrophoneEnabled(true));
        await waitFor(async () => (await log()).some((e) => e[0] === 'unmuted'), 10000, 'TrackUnmuted on bob');
        expect((await log()).filter((e) => e[0] === 'muted' || e[0] === 'unmuted')).to.deep.equal([
          ['muted', aId, 'audio', 'remote'],
          ['unmuted', aId, 'audio', 'remote'],
        ]);
        expect(await onRoom(a, 'demo', (r) => r.microphoneTrack?.enabled)).to.equal(true);

        // B turns its camera off: B's own Room says so (local TrackMuted); A sees it muted; on the SFU no video reaches A any more.
        await onRoom(b, 'own', (r) => r.setCameraEnabled(false));
        expect((await log()).at(-1), "bob's own TrackMuted").to.deep.equal(['muted', 'bob', 'video', 'local']);
        expect(
          await onRoom(b, 'own', (r) => (r as unknown as { localParticipant: { selfMuted: unknown } }).localParticipant.selfMuted),
        ).to.deep.equal({
          audio: false,
          video: true,
        });
        await a.waitForFunction(
          () => (window.switchboardRoom as unknown as DevicePageRoom).participants.get('bob')?.selfMuted.video === true,
        );
        expect(await onRoom(b, 'own', (r) => [r.isCameraEnabled, r.cameraTrack?.enabled])).to.deep.equal([false, false]);
        if (topology === 'sfu') {
          await new Promise((resolve) => setTimeout(resolve, 500));
          const paused = await framesFrom(a, 'demo', 'bob');
          await new Promise((resolve) => setTimeout(resolve, 1500));
          expect(await framesFrom(a, 'demo', 'bob'), 'frames from a paused producer').to.be.at.most(paused + 2);
        }
        await onRoom(b, 'own', (r) => r.setCameraEnabled(true));
        expect((await log()).at(-1), "bob's own TrackUnmuted").to.deep.equal(['unmuted', 'bob', 'video', 'local']);
        await a.waitForFunction(
          () => (window.switchboardRoom as unknown as DevicePageRoom).participants.get('bob')?.selfMuted.video === false,
        );
        // A's Room: its own mute and unmute as local events, bob's camera as remote ones.
        expect(await muteLogA()).to.deep.equal([
          ['trackMuted', aId, 'audio', 'local', 'true'],
          ['trackUnmuted', aId, 'audio', 'local', 'false'],
          ['trackMuted', 'bob', 'video', 'remote', 'true'],
          ['trackUnmuted', 'bob', 'video', 'remote', 'false'],
        ]);
        await expectFramesGrowing(a, 'demo', 'bob', "bob's video again on alice");

        // A switches its camera to the same fake device: a new track, the old one stopped, frames go on.
        const switched = await onRoom(a, 'demo', async (r) => {
          const old = r.cameraTrack as MediaStreamTrack;
          await r.switchDevice('videoinput', old.getSettings().deviceId as string);
          return { oldState: old.readyState, changed: r.cameraTrack !== old, newState: r.cameraTrack?.readyState };
        });
        expect(switched).to.deep.equal({ oldState: 'ended', changed: true, newState: 'live' });
        await expectFramesGrowing(b, 'own', aId, "alice's video after her switch");

        // B switches to the red canvas: A's tile of B turns red.
        await onRoom(b, 'own', (r) => r.switchDevice('videoinput', 'red-canvas'));
        const centre = () =>
          a.evaluate(() => {
            const video = document.querySelector('.tile[data-identity="bob"] video') as HTMLVideoElement | null;
            if (!video || video.videoWidth === 0) return null;
            const canvas = document.createElement('canvas');
            canvas.width = video.videoWidth;
            canvas.height = video.videoHeight;
            const context = canvas.getContext('2d') as CanvasRenderingContext2D;
            context.drawImage(video, 0, 0);
            return [...context.getImageData(Math.floor(canvas.width / 2), Math.floor(canvas.height / 2), 1, 1).data.slice(0, 3)];
          });
        let pixel: number[] | null = null;
        await waitFor(
          async () => {
            pixel = await centre();
            return pixel !== null && (pixel[0] as number) > 180 && (pixel[1] as number) < 80 && (pixel[2] as number) < 80;
          },
          20000,
          "bob's tile on alice turning red",
        ).catch((error: Error) => {
          throw new Error(`${error.message} (last centre pixel ${JSON.stringify(pixel)})`);
        });

        // No renegotiation: the same SDP exchanges, the same producers.
        expect({ a: await negotiation(a, 'demo'), b: await negotiation(b, 'own') }).to.deep.equal(before);
        await onRoom(b, 'own', async (r) => {
          await (r as unknown as { leave(): Promise<void> }).leave();
        });
      });
    });
  }
});

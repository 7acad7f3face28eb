/**
 * The React bindings as integrators get them: `npm pack` of client-sdk/ and client-sdk/react/,
 * both installed with react, react-dom, vite and @vitejs/plugin-react into a fresh app in a
 * temporary folder outside the repository, type-checked with `tsc --strict`, built with Vite,
 * served as static files, and two Chromium pages of that React app in one room through a live
 * server: each lists the other (useParticipants), shows its video (useTracks, <VideoTrack>),
 * gets its data messages, all of them and those of one topic (useSendData, useDataMessages),
 * shows both participants' connection quality (useConnectionQuality) and a tone's publisher as
 * the active speaker (useActiveSpeakers),
 * and sees its camera turned off (useLocalMedia; TrackMuted), all read from the rendered DOM;
 * then new `serverUrl` and `token` props on a mounted RoomProvider: it leaves its Room and
 * connects a new one as another user, and the other page sees the first leave and the new one join.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, failOnPageErrors, launchBrowser, pageErrors } from '../helpers/browser.js';
import { installedVersion, npmInstall, npmPack, ROOT, run, STRICT_APP_TSCONFIG, timed } from '../helpers/packedApp.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { serveStatic, type StaticServer } from '../helpers/staticServer.js';

const SDK_DIR = join(ROOT, 'client-sdk');
const REACT_DIR = join(SDK_DIR, 'react');

/** The app: joins the room of ?token= on ?server= through RoomProvider, turns its camera on, renders what the hooks give. */
const APP_MAIN = `import { StrictMode, useEffect, useRef, useState, type ReactElement } from 'react';
import { createRoot } from 'react-dom/client';
import { ConnectionState, Room, RoomEvent, type DataPayload } from '@switchboard/client';
import {
  AudioTrack,
  RoomProvider,
  VideoTrack,
  isLocalParticipant,
  type Participant,
  useConnectionState,
  useActiveSpeakers,
  useConnectionQuality,
  useDataMessages,
  useLocalMedia,
  useParticipants,
  useRoom,
  useSendData,
  useTracks,
} from '@switchboard/react';

const params = new URLSearchParams(location.search);
const serverUrl = params.get('server') ?? '';
const token = params.get('token') ?? '';
/** What #swap changes the provider's props to (?server2=, ?token2=). */
const swapped = { serverUrl: params.get('server2') ?? serverUrl, token: params.get('token2') ?? token };

declare global {
  interface Window {
    /** Every Room the provider handed down, in order (StrictMode's first one included). */
    seenRooms: Room[];
    /** Joins and leaves the app's own Room (?provider=room) saw. */
    participantLog: string[][];
  }
}
window.seenRooms = [];
window.participantLog = [];

const text = (payload: DataPayload): string => (typeof payload === 'string' ? payload : JSON.stringify(payload));

/** A participant's connection quality (useConnectionQuality), as an attribute of an empty span. */
function Quality({ participant }: { participant: Participant }): ReactElement {
  return <span className="quality" data-identity={participant.identity} data-quality={useConnectionQuality(participant)} />;
}

function Call(): ReactElement {
  const room = useRoom();
  const speakers = useActiveSpeakers();
  const state = useConnectionState();
  const participants = useParticipants();
  const videos = useTracks({ kind: 'video' });
  const audios = useTracks({ kind: 'audio' });
  const messages = useDataMessages();
  const chat = useDataMessages({ topic: 'chat' });
  const send = useSendData();
  const media = useLocalMedia();
  /** The Room whose camera this component turned on (a new Room from the provider gets it too). */
  const cameraStarted = useRef<Room | null>(null);

  useEffect(() => {
    window.seenRooms.push(room);
  }, [room]);

  useEffect(() => {
    if (state !== ConnectionState.Connected || cameraStarted.current === room) return;
    cameraStarted.current = room;
    void media.setCameraEnabled(true);
  }, [state, media, room]);

  return (
    <main>
      <p id="state">{state}</p>
      <p id="local-media" data-camera={String(media.isCameraEnabled)} data-pending={String(media.pending)}>
        {media.error ? media.error.message : ''}
      </p>
      <button id="toggle-camera" onClick={() => void media.toggleCamera()}>
        camera
      </button>
      <button id="send" onClick={() => void send(\`hello from \${room.localParticipant?.identity ?? '?'}\`)}>
        send
      </button>
      <button id="send-chat" onClick={() => void send(\`chat from \${room.localParticipant?.identity ?? '?'}\`, { topic: 'chat' })}>
        chat
      </button>
      <button
        id="tone"
        onClick={() => {
          // A 440 Hz tone published as a microphone: this participant speaks.
          const context = new AudioContext();
          const destination = context.createMediaStreamDestination();
          const oscillator = context.createOscillator();
          oscillator.connect(destination);
          oscillator.start();
          void room.publish(destination.stream);
        }}
      >
        tone
      </button>
      <p id="speakers">{speakers.map((p) => p.identity).join(',')}</p>
      <VideoTrack id="self" track={media.cameraTrack} />
      <ul id="participants">
        {participants.map((participant) => (
          <li key={participant.identity} data-identity={participant.identity} data-local={String(isLocalParticipant(participant))}>
            {participant.name}
            <Quality participant={participant} />
          </li>
        ))}
      </ul>
      <div id="videos">
        {videos.map((ref) => (
          <VideoTrack key={ref.track.id} track={ref} data-identity={ref.participant.identity} data-muted={String(ref.muted)} />
        ))}
        {audios.map((ref) => (
          <AudioTrack key={ref.track.id} track={ref} />
        ))}
      </div>
      <ul id="messages">
        {messages.map((message, i) => (
          <li key={i} data-from={message.from.identity} data-topic={message.info.topic ?? ''}>
            {text(message.payload)}
          </li>
        ))}
      </ul>
      <ul id="chat">
        {chat.map((message, i) => (
          <li key={i} data-from={message.from.identity}>
            {text(message.payload)}
          </li>
        ))}
      </ul>
    </main>
  );
}

/** Quality measured every second (the default is 10 s). */
const options = { statsIntervalMs: 1000 };
const appRoom = params.get('provider') === 'room' ? new Room(options) : null;
appRoom?.on(RoomEvent.ParticipantJoined, (p) => window.participantLog.push(['joined', p.identity]));
appRoom?.on(RoomEvent.ParticipantLeft, (p) => window.participantLog.push(['left', p.identity]));
let appRoomError = '';
appRoom?.connect(serverUrl, token).catch((e: unknown) => {
  appRoomError = String(e);
});

/**
 * The provider's own Room (serverUrl and token; #swap changes both props to ?server2= and
 * ?token2=), or with ?provider=room a Room the app connects itself.
 */
function App(): ReactElement {
  const [error, setError] = useState<string | null>(null);
  const [connection, setConnection] = useState({ serverUrl, token });
  if (appRoom) return <RoomProvider room={appRoom}>{appRoomError ? <p id="error">{appRoomError}</p> : <Call />}</RoomProvider>;
  return (
    <RoomProvider
      serverUrl={connection.serverUrl}
      token={connection.token}
      options={options}
      onError={(e) => setError(\`\${e.code}: \${e.message}\`)}
    >
      <button id="swap" onClick={() => setConnection(swapped)}>
        swap
      </button>
      {error ? <p id="error">{error}</p> : <Call />}
    </RoomProvider>
  );
}

const container = document.getElementById('root');
if (!container) throw new Error('no #root');
createRoot(container).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
`;

const APP_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Switchboard React package test</title>
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/src/main.tsx"></script>
  </body>
</html>
`;

/** What the test reads of the app's globals (declared in APP_MAIN). */
interface ReactAppWindow {
  seenRooms: { localParticipant: { identity: string } | null; state: string }[];
  participantLog: string[][];
}

const VITE_CONFIG = `import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({ plugins: [react()] });
`;

const APP_TSCONFIG = { ...STRICT_APP_TSCONFIG, compilerOptions: { ...STRICT_APP_TSCONFIG.compilerOptions, jsx: 'react-jsx' } };

describe('React package: @switchboard/react in a fresh Vite app (issue 18)', function () {
  this.timeout(300_000);
  let workDir = '';
  let appDir = '';
  let built = false;

  before(async function () {
    workDir = mkdtempSync(join(tmpdir(), 'switchboard-react-package-'));
    appDir = join(workDir, 'app');
    // Each prepack builds its package (the core first: the React package's types import its types).
    const core = await timed('npm pack @switchboard/client', () => npmPack(SDK_DIR, workDir));
    const react = await timed('npm pack @switchboard/react', () => npmPack(REACT_DIR, workDir));
    expect(react.files, 'files in the React tarball').to.have.members([
      'package.json',
      'README.md',
      'dist/switchboard-react.js',
      'dist/switchboard-react.js.map',
      'dist/switchboard-react.d.ts',
    ]);

    mkdirSync(join(appDir, 'src'), { recursive: true });
    const app = {
      name: 'switchboard-react-package-consumer',
      private: true,
      type: 'module',
      dependencies: {
        '@switchboard/client': `file:../${core.filename}`,
        '@switchboard/react': `file:../${react.filename}`,
        react: installedVersion('react'),
        'react-dom': installedVersion('react-dom'),
      },
      devDependencies: {
        '@types/react': installedVersion('@types/react'),
        '@types/react-dom': installedVersion('@types/react-dom'),
        '@vitejs/plugin-react': installedVersion('@vitejs/plugin-react'),
        typescript: installedVersion('typescript'),
        vite: installedVersion('vite'),
      },
    };
    writeFileSync(join(appDir, 'package.json'), JSON.stringify(app, null, 2));
    writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify(APP_TSCONFIG, null, 2));
    writeFileSync(join(appDir, 'vite.config.js'), VITE_CONFIG);
    writeFileSync(join(appDir, 'index.html'), APP_HTML);
    writeFileSync(join(appDir, 'src', 'main.tsx'), APP_MAIN);
    await timed('npm install (two tarballs, react, vite, typescript; from the npm cache)', () => npmInstall(appDir));
  });

  after(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('refers to nothing outside the package: its code imports only React and the core, its types too', () => {
    const installed = join(appDir, 'node_modules', '@switchboard', 'react');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg['peerDependencies']).to.deep.equal({ '@switchboard/client': '0.1.0', react: '>=18' });
    expect(pkg['sideEffects']).to.equal(false);
    const esm = readFileSync(join(installed, 'dist', 'switchboard-react.js'), 'utf8');
    const imported = [...esm.matchAll(/\b(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]);
    expect([...new Set(imported)].sort()).to.deep.equal(['@switchboard/client', 'react', 'react/jsx-runtime']);
    const types = readFileSync(join(installed, 'dist', 'switchboard-react.d.ts'), 'utf8');
    const typeImports = [...types.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
    expect([...new Set(typeImports)].sort(), 'modules the types import').to.deep.equal(['@switchboard/client', 'react']);
    expect(types, 'an import() type').not.to.match(/\bimport\(\s*['"]/);
    const map = JSON.parse(readFileSync(join(installed, 'dist', 'switchboard-react.js.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.filter((source) => source.startsWith('../') || source.startsWith('/'))).to.deep.equal([]);
  });

  it('type-checks with tsc --strict (moduleResolution bundler and nodenext)', async () => {
    const tsc = join(appDir, 'node_modules', 'typescript', 'bin', 'tsc');
    await timed('tsc --strict --noEmit (bundler)', () => run(process.execPath, [tsc, '--strict', '--noEmit', '-p', '.'], appDir));
    await timed('tsc --strict --noEmit (nodenext)', () =>
      run(process.execPath, [tsc, '--strict', '--noEmit', '-p', '.', '--module', 'nodenext', '--moduleResolution', 'nodenext'], appDir),
    );
  });

  it('builds with vite and @vitejs/plugin-react', async () => {
    const vite = join(appDir, 'node_modules', 'vite', 'bin', 'vite.js');
    await timed('vite build', () => run(process.execPath, [vite, 'build', '--logLevel', 'warn'], appDir));
    // And with React's development build, where StrictMode mounts every component twice: the
    // provider's first Room is left before its connect settles, and a second one connects.
    writeFileSync(join(appDir, '.env.development'), 'NODE_ENV=development\n');
    await timed('vite build (development)', () =>
      run(process.execPath, [vite, 'build', '--mode', 'development', '--outDir', 'dist-dev', '--logLevel', 'warn'], appDir),
    );
    const devAssets = readdirSync(join(appDir, 'dist-dev', 'assets')).filter((file) => file.endsWith('.js'));
    expect(
      devAssets.some((file) =>
        readFileSync(join(appDir, 'dist-dev', 'assets', file), 'utf8').includes('Each child in a list should have a unique'),
      ),
      "React's development build in dist-dev",
    ).to.equal(true);
    expect(readFileSync(join(appDir, 'dist', 'index.html'), 'utf8')).to.match(/assets\/index-[\w-]+\.js/);
    built = true;
  });

  describe('in Chromium (fake media)', function () {
    let t: TestServer | undefined;
    let site: StaticServer | undefined;
    let devSite: StaticServer | undefined;
    let browser: Browser | undefined;
    const errors: string[][] = [];

    before(async function () {
      const reason = browserUnavailableReason();
      if (reason) {
        console.log(`      skipped: ${reason}`);
        this.skip();
      }
      if (!built) throw new Error('the app was not built (see the vite build test)');
      t = await startServer({ ROOM_EMPTY_TIMEOUT_MS: '2000' });
      site = await serveStatic(join(appDir, 'dist'));
      devSite = await serveStatic(join(appDir, 'dist-dev'));
      browser = await timed('launch Chromium', () => launchBrowser());
    });
    after(async () => {
      await browser?.close();
      await site?.close();
      await devSite?.close();
      await t?.close();
    });

    /** A page of the app as `user`; with `swapTo`, its #swap button moves the provider to that user, on the server's other URL. */
    async function openApp(user: string, provider: 'props' | 'room', swapTo?: string): Promise<Page> {
      const page = await (browser as Browser).newPage({ viewport: { width: 640, height: 480 } });
      failOnPageErrors(page, user);
      errors.push(pageErrors(page));
      const server = t as TestServer;
      const token = server.mint({ room: 'react', user, name: `${user} (name)` });
      const query = new URLSearchParams({ server: server.url, token, provider });
      if (swapTo) {
        query.set('token2', server.mint({ room: 'react', user: swapTo, name: `${swapTo} (name)` }));
        // The same server under another host name: a serverUrl change as well as a token change.
        const other = new URL(server.url);
        other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
        query.set('server2', other.origin);
      }
      await page.goto(`${((provider === 'props' ? devSite : site) as StaticServer).url}/?${query}`);
      // "disconnected" is not an end here: it is also the state of the provider's fresh Room
      // before its connect starts (StrictMode leaves the first Room and renders a new one).
      await page.waitForSelector('#state:text-is("connected"), #error', { timeout: 30_000 }).catch(() => undefined);
      expect((await page.locator('#error').allTextContents()).join(''), `${user}: the error the app rendered`).to.equal('');
      expect(await page.locator('#state').textContent(), `${user}: connection state`).to.equal('connected');
      return page;
    }

    /** The video element of `identity` on the page: its decoded width and the data-muted the app rendered. */
    const remoteVideo = (page: Page, identity: string) =>
      page.evaluate((id) => {
        const video = document.querySelector<HTMLVideoElement>(`#videos video[data-identity="${id}"]`);
        return video ? { width: video.videoWidth, muted: video.dataset['muted'], attached: video.srcObject !== null } : null;
      }, identity);

    // ann's page lets RoomProvider create and connect its Room (serverUrl, token), in React's
    // development build (StrictMode mounts twice); ben's hands it a Room of its own (room).
    it("two pages list each other, show each other's video, get each other's data, and see a camera turned off", async () => {
      const [ann, ben] = await timed('open two pages (join, camera on)', async () => [
        await openApp('ann', 'props', 'cat'),
        await openApp('ben', 'room'),
      ]);
      const pages: [Page, string, string][] = [
        [ann, 'ann', 'ben'],
        [ben, 'ben', 'ann'],
      ];
      const pageErrorsText = () => errors.flat().join('; ');

      await timed('participant lists', async () => {
        for (const [page, self, other] of pages) {
          await page.waitForSelector(`#participants li[data-identity="${other}"]`, { timeout: 15_000 });
          const rows = await page.$$eval('#participants li', (items) =>
            items.map((li) => ({ identity: li.getAttribute('data-identity'), local: li.getAttribute('data-local'), name: li.textContent })),
          );
          expect(rows, `${self}'s participant list`).to.deep.equal([
            { identity: self, local: 'true', name: `${self} (name)` },
            { identity: other, local: 'false', name: `${other} (name)` },
          ]);
        }
      });

      await timed('video decoded both ways in <VideoTrack>', () =>
        waitFor(
          async () => {
            for (const [page, , other] of pages) if (((await remoteVideo(page, other))?.width ?? 0) === 0) return false;
            return true;
          },
          30_000,
          `a decoded <video> of the other on both pages (page errors: ${pageErrorsText()})`,
        ),
      );
      for (const [page, self, other] of pages) {
        const video = await remoteVideo(page, other);
        expect(video?.width, `${self}: videoWidth of ${other}`).to.be.greaterThan(0);
        expect(video?.muted, `${self}: ${other}'s video is not muted`).to.equal('false');
        expect(await page.locator('#local-media').getAttribute('data-camera'), `${self}: camera on`).to.equal('true');
        expect(
          await page.evaluate(() => document.querySelector<HTMLVideoElement>('#self')?.videoWidth ?? 0),
          `${self}: self-view`,
        ).to.be.greaterThan(0);
      }

      await timed('connection quality of both participants on both pages (useConnectionQuality)', () =>
        waitFor(
          async () => {
            for (const [page] of pages) {
              const shown = await page.$$eval('#participants .quality', (spans) => spans.map((span) => span.getAttribute('data-quality')));
              if (shown.length !== 2 || !shown.every((q) => q === 'excellent' || q === 'good')) return false;
            }
            return true;
          },
          20_000,
          'both pages show excellent or good for both participants',
        ),
      );
      await timed('a tone on ann: both pages list ann as the active speaker (useActiveSpeakers)', async () => {
        expect(await ben.locator('#speakers').textContent(), 'nobody speaks before').to.equal('');
        await ann.click('#tone');
        for (const [page] of pages) await page.waitForSelector('#speakers:text-is("ann")', { timeout: 15_000 });
      });

      await timed('data messages both ways, one without a topic and one on "chat" (useSendData, useDataMessages)', async () => {
        for (const [page] of pages) await page.click('#send');
        for (const [page] of pages) await page.click('#send-chat');
        for (const [page, , other] of pages) await page.waitForSelector(`#chat li[data-from="${other}"]`, { timeout: 15_000 });
      });
      await new Promise((r) => setTimeout(r, 300));
      const listed = (page: Page, list: string) =>
        page.$$eval(`#${list} li`, (items) =>
          items.map((li) => ({ from: li.getAttribute('data-from'), topic: li.getAttribute('data-topic'), text: li.textContent })),
        );
      for (const [page, self, other] of pages) {
        expect(await listed(page, 'messages'), `${self}'s messages (every topic)`).to.deep.equal([
          { from: other, topic: '', text: `hello from ${other}` },
          { from: other, topic: 'chat', text: `chat from ${other}` },
        ]);
        expect(await listed(page, 'chat'), `${self}'s messages on "chat"`).to.deep.equal([
          { from: other, topic: null, text: `chat from ${other}` },
        ]);
      }

      await timed('camera off on ann: ann sees it off, ben sees her video muted (TrackMuted)', async () => {
        await ann.click('#toggle-camera');
        await ann.waitForSelector('#local-media[data-camera="false"][data-pending="false"]', { state: 'attached', timeout: 10_000 });
        await ben.waitForSelector('#videos video[data-identity="ann"][data-muted="true"]', { timeout: 10_000 });
      });
      expect(
        await ann.evaluate(
          () => (document.querySelector<HTMLVideoElement>('#self')?.srcObject as MediaStream | null)?.getVideoTracks()[0]?.enabled,
        ),
      ).to.equal(false);
      expect((await remoteVideo(ann, 'ben'))?.muted, 'ben is still on').to.equal('false');
      await timed('camera on again', async () => {
        await ann.click('#toggle-camera');
        await ann.waitForSelector('#local-media[data-camera="true"][data-pending="false"]', { state: 'attached', timeout: 10_000 });
        await ben.waitForSelector('#videos video[data-identity="ann"][data-muted="false"]', { timeout: 10_000 });
      });

      const participantRows = (page: Page) =>
        page.$$eval('#participants li', (items) =>
          items.map((li) => ({ identity: li.getAttribute('data-identity'), local: li.getAttribute('data-local') })),
        );
      await timed(
        "new serverUrl and token props on ann's provider: ann leaves (her <VideoTrack> detached on ben), cat joins on the new Room",
        async () => {
          // Keep ann's video element on ben's page: once React removes it, its srcObject must be cleared.
          await ben.evaluate(() => {
            (window as unknown as { annVideo: Element | null }).annVideo = document.querySelector('#videos video[data-identity="ann"]');
          });
          const logBefore = await ben.evaluate(() => (window as unknown as ReactAppWindow).participantLog.length);
          await ann.click('#swap');
          await ben.waitForSelector('#participants li[data-identity="ann"]', { state: 'detached', timeout: 15_000 });
          await ben.waitForSelector('#videos video[data-identity="ann"]', { state: 'detached', timeout: 15_000 });
          const detached = await ben.evaluate(() => {
            const video = (window as unknown as { annVideo: HTMLVideoElement | null }).annVideo;
            return video !== null && !video.isConnected && video.srcObject === null;
          });
          expect(detached, "ann's removed <video>: srcObject null").to.equal(true);
          await ann.waitForSelector('#participants li[data-identity="cat"][data-local="true"]', { timeout: 15_000 });
          await ann.waitForSelector('#participants li[data-identity="ben"]', { timeout: 15_000 });
          expect(await ann.locator('#state').textContent(), 'the new Room').to.equal('connected');
          expect(await participantRows(ann), "the page's list after the swap").to.deep.equal([
            { identity: 'cat', local: 'true' },
            { identity: 'ben', local: 'false' },
          ]);
          await ben.waitForSelector('#participants li[data-identity="cat"]', { timeout: 15_000 });
          expect(await participantRows(ben), "ben's list").to.deep.equal([
            { identity: 'ben', local: 'true' },
            { identity: 'cat', local: 'false' },
          ]);
          // ben's Room: ann left, then cat joined (not the other way round, nothing else).
          expect(
            (await ben.evaluate(() => (window as unknown as ReactAppWindow).participantLog)).slice(logBefore),
            "ben's joins and leaves",
          ).to.deep.equal([
            ['left', 'ann'],
            ['joined', 'cat'],
          ]);
          // Every Room the provider handed down before is disconnected (ann's among them); the last is cat's, connected.
          const rooms = await ann.evaluate(() =>
            (window as unknown as ReactAppWindow).seenRooms.map((room) => ({
              identity: room.localParticipant?.identity ?? null,
              state: room.state,
            })),
          );
          const last = rooms.at(-1);
          expect(last, 'the Room in use').to.deep.equal({ identity: 'cat', state: 'connected' });
          expect(
            rooms.filter((room) => room !== last && room.state !== 'disconnected'),
            `Rooms before the last still up: ${JSON.stringify(rooms)}`,
          ).to.deep.equal([]);
          expect(rooms.filter((room) => room.identity === 'ann').length, "ann's Room among them").to.be.greaterThan(0);
          // The new Room carries media: cat's camera (turned on by the app for the new Room) decodes on ben.
          await waitFor(async () => ((await remoteVideo(ben, 'cat'))?.width ?? 0) > 0, 30_000, "cat's video decoded on ben").catch(
            async (error: Error) => {
              const media = await ann.evaluate(() => {
                const element = document.querySelector('#local-media');
                return `camera ${element?.getAttribute('data-camera')}, error "${element?.textContent ?? ''}"`;
              });
              throw new Error(`${error.message} (cat's page: ${media}; page errors: ${pageErrorsText()})`);
            },
          );
          expect(await ann.locator('#local-media').getAttribute('data-camera'), "cat's camera on").to.equal('true');
        },
      );

      await timed('cat leaves (the page closes): ben lists cat no more', async () => {
        await ann.close();
        await ben.waitForSelector('#participants li[data-identity="cat"]', { state: 'detached', timeout: 15_000 });
      });
      await ben.close();
    });
  });
});

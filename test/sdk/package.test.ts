/**
 * The SDK as integrators get it: `npm pack` of client-sdk/, installed with vite and typescript
 * into a fresh app in a temporary folder outside the repository, type-checked with
 * `tsc --strict`, built with Vite, served as static files, and two Chromium pages of that app
 * exchanging video and a data message through a live server.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, failOnPageErrors, launchBrowser, pageErrors } from '../helpers/browser.js';
import { installedVersion, npmInstall, npmPack, ROOT, run, STRICT_APP_TSCONFIG, timed } from '../helpers/packedApp.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { serveStatic, type StaticServer } from '../helpers/staticServer.js';

const SDK_DIR = join(ROOT, 'client-sdk');

/** The app: a page that joins the room of ?token= on ?server=, publishes its camera and records data messages. */
const APP_MAIN = `import { Room, RoomEvent, type DataPayload, type RemoteParticipant } from '@switchboard/client';

interface AppState {
  status: 'connecting' | 'connected' | 'failed';
  error?: string;
  identity?: string;
  received: { from: string; payload: string }[];
  room?: Room;
}

declare global {
  interface Window {
    app: AppState;
  }
}

const app: AppState = { status: 'connecting', received: [] };
window.app = app;

function showVideo(track: MediaStreamTrack, participant: RemoteParticipant): void {
  if (track.kind !== 'video') return;
  const video = document.createElement('video');
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  video.dataset['identity'] = participant.identity;
  video.srcObject = new MediaStream([track]);
  document.getElementById('videos')?.append(video);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const server = params.get('server');
  const token = params.get('token');
  if (!server || !token) throw new Error('?server= and ?token= are required');
  const room = await Room.connect(server, token);
  app.room = room;
  app.identity = room.localParticipant?.identity;
  room.on(RoomEvent.TrackSubscribed, showVideo);
  room.on(RoomEvent.Data, (payload: DataPayload, participant: RemoteParticipant) => {
    if (typeof payload === 'string') app.received.push({ from: participant.identity, payload });
  });
  await room.publish(await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false }));
  app.status = 'connected';
}

main().catch((error: unknown) => {
  app.status = 'failed';
  app.error = String(error);
});
`;

const APP_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Switchboard package test</title>
  </head>
  <body>
    <div id="videos"></div>
    <script type="module" src="/src/main.ts"></script>
  </body>
</html>
`;

/** What the test reads inside a page of the app. */
interface PageApp {
  status: string;
  error?: string;
  identity?: string;
  received: { from: string; payload: string }[];
  room?: {
    send(payload: string): void;
    getParticipantStats(): Promise<Map<string, { framesDecoded: number }>>;
  };
}
type AppWindow = { app: PageApp };

describe('SDK package: the npm tarball in a fresh Vite app (issue 18)', function () {
  this.timeout(300_000);
  let workDir = '';
  let appDir = '';
  let built = false;

  before(async function () {
    workDir = mkdtempSync(join(tmpdir(), 'switchboard-sdk-package-'));
    appDir = join(workDir, 'app');
    // prepack builds client-sdk/dist first.
    const tarball = await timed('npm pack (prepack builds the package)', () => npmPack(SDK_DIR, workDir));
    expect(tarball.files, 'files in the tarball').to.have.members([
      'package.json',
      'README.md',
      'dist/switchboard.js',
      'dist/switchboard.js.map',
      'dist/switchboard.d.ts',
      'dist/switchboard.iife.js',
      'dist/switchboard.iife.js.map',
    ]);

    mkdirSync(join(appDir, 'src'), { recursive: true });
    const app = {
      name: 'switchboard-package-consumer',
      private: true,
      type: 'module',
      dependencies: { '@switchboard/client': `file:../${tarball.filename}` },
      devDependencies: { typescript: installedVersion('typescript'), vite: installedVersion('vite') },
    };
    writeFileSync(join(appDir, 'package.json'), JSON.stringify(app, null, 2));
    writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify(STRICT_APP_TSCONFIG, null, 2));
    writeFileSync(join(appDir, 'index.html'), APP_HTML);
    writeFileSync(join(appDir, 'src', 'main.ts'), APP_MAIN);
    await timed('npm install (tarball, vite, typescript; from the npm cache)', () => npmInstall(appDir));
  });

  after(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('refers to nothing outside the package: its code imports only its dependencies, its types nothing', () => {
    const installed = join(appDir, 'node_modules', '@switchboard', 'client');
    const esm = readFileSync(join(installed, 'dist', 'switchboard.js'), 'utf8');
    const imported = [...esm.matchAll(/\b(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]);
    expect([...new Set(imported)].sort()).to.deep.equal(['mediasoup-client', 'socket.io-client']);
    expect(esm, 'mediasoup-client is a dynamic import').to.match(/import\("mediasoup-client"\)/);
    const types = readFileSync(join(installed, 'dist', 'switchboard.d.ts'), 'utf8');
    expect(types, 'an import or re-export in the types').not.to.match(/^[ \t]*(import|export)\b[^;\n]*\bfrom\s*['"]/m);
    expect(types, 'an import() type').not.to.match(/\bimport\(\s*['"]/);
    const map = JSON.parse(readFileSync(join(installed, 'dist', 'switchboard.js.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.filter((source) => source.startsWith('../') || source.startsWith('/'))).to.deep.equal([]);
  });

  it('type-checks with tsc --strict (moduleResolution bundler and nodenext)', async () => {
    const tsc = join(appDir, 'node_modules', 'typescript', 'bin', 'tsc');
    await timed('tsc --strict --noEmit (bundler)', () => run(process.execPath, [tsc, '--strict', '--noEmit', '-p', '.'], appDir));
    await timed('tsc --strict --noEmit (nodenext)', () =>
      run(process.execPath, [tsc, '--strict', '--noEmit', '-p', '.', '--module', 'nodenext', '--moduleResolution', 'nodenext'], appDir),
    );
  });

  it('builds with vite: mediasoup-client in a chunk of its own', async () => {
    const vite = join(appDir, 'node_modules', 'vite', 'bin', 'vite.js');
    await timed('vite build', () => run(process.execPath, [vite, 'build', '--logLevel', 'warn'], appDir));
    const assets = readdirSync(join(appDir, 'dist', 'assets')).filter((file) => file.endsWith('.js'));
    const html = readFileSync(join(appDir, 'dist', 'index.html'), 'utf8');
    const entry = assets.find((file) => html.includes(file));
    expect(entry, 'entry chunk named in index.html').to.be.a('string');
    const sizes = assets.map((file) => `${file} ${(statSync(join(appDir, 'dist', 'assets', file)).size / 1024).toFixed(1)} KiB`);
    console.log(`      built: ${sizes.join(', ')}`);
    // The lazy chunk: mediasoup-client's handlers are not in the entry, another chunk has them.
    const marker = /Chrome111/;
    expect(readFileSync(join(appDir, 'dist', 'assets', entry as string), 'utf8')).not.to.match(marker);
    expect(assets.some((file) => marker.test(readFileSync(join(appDir, 'dist', 'assets', file), 'utf8')))).to.equal(true);
    built = true;
  });

  describe('in Chromium (fake media)', function () {
    let t: TestServer | undefined;
    let site: StaticServer | undefined;
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
      browser = await timed('launch Chromium', () => launchBrowser());
    });
    after(async () => {
      await browser?.close();
      await site?.close();
      await t?.close();
    });

    async function openApp(user: string): Promise<Page> {
      const page = await (browser as Browser).newPage({ viewport: { width: 640, height: 480 } });
      failOnPageErrors(page, user);
      errors.push(pageErrors(page));
      const token = (t as TestServer).mint({ room: 'packaged', user, name: user });
      const query = new URLSearchParams({ server: (t as TestServer).url, token });
      await page.goto(`${(site as StaticServer).url}/?${query}`);
      await page.waitForFunction(() => (window as unknown as AppWindow).app.status !== 'connecting', undefined, { timeout: 30_000 });
      const { status, error } = await page.evaluate(() => ({
        status: (window as unknown as AppWindow).app.status,
        error: (window as unknown as AppWindow).app.error,
      }));
      expect(status, `${user}: ${error ?? ''}`).to.equal('connected');
      return page;
    }

    /** Decoded video frames per remote identity, from the SDK's getParticipantStats. */
    async function framesDecoded(page: Page): Promise<Record<string, number>> {
      return page.evaluate(async () => {
        const stats = await (window as unknown as AppWindow).app.room?.getParticipantStats();
        return Object.fromEntries([...(stats ?? new Map<string, { framesDecoded: number }>())].map(([id, s]) => [id, s.framesDecoded]));
      });
    }

    it("two pages of the app decode each other's video and receive each other's data message", async () => {
      const [ann, ben] = await timed('open two pages (join, publish)', async () => [await openApp('ann'), await openApp('ben')]);
      const pages: [Page, string, string][] = [
        [ann, 'ann', 'ben'],
        [ben, 'ben', 'ann'],
      ];
      await timed('video decoded both ways', () =>
        waitFor(
          async () => {
            for (const [page, , other] of pages) if (((await framesDecoded(page))[other] ?? 0) === 0) return false;
            return true;
          },
          30_000,
          `decoded video on both pages (page errors: ${errors.flat().join('; ')})`,
        ),
      );
      for (const [page, , other] of pages) expect((await framesDecoded(page))[other], `frames decoded from ${other}`).to.be.greaterThan(0);

      await timed('data message both ways', async () => {
        for (const [page, self] of pages)
          await page.evaluate((text) => (window as unknown as AppWindow).app.room?.send(text), `hello from ${self}`);
        await waitFor(
          async () =>
            (await Promise.all(pages.map(([page]) => page.evaluate(() => (window as unknown as AppWindow).app.received.length)))).every(
              (n) => n >= 1,
            ),
          15_000,
          'a data message on both pages',
        );
      });
      await new Promise((r) => setTimeout(r, 300));
      for (const [page, , other] of pages)
        expect(await page.evaluate(() => (window as unknown as AppWindow).app.received)).to.deep.equal([
          { from: other, payload: `hello from ${other}` },
        ]);
      for (const [page] of pages) await page.close();
    });
  });
});

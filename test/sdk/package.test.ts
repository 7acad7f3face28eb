/**
 * The SDK as integrators get it: `npm pack` of client-sdk/, installed with vite and typescript
 * into a fresh app in a temporary folder outside the repository, type-checked with
 * `tsc --strict`, built with Vite, served as static files, and two Chromium pages of that app
 * exchanging video and a binary data message (64 KiB of seeded pseudo-random bytes, compared
 * byte for byte by the receiving page) through a live server.
 */
import { createHash } from 'node:crypto';
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

/** Size of the binary message each page sends. */
const BINARY_BYTES = 64 * 1024;

/**
 * `length` pseudo-random bytes from `seed` (xorshift32). The app has the same function (APP_MAIN):
 * the test checks that the sender's copy gives these bytes (their SHA-256) before trusting the
 * receiver's byte-for-byte comparison against its own copy.
 */
function seededBytes(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/**
 * The app: a page that joins the room of ?token= on ?server=, publishes its camera, sends a
 * binary message on demand (the seed in its topic), and checks each binary message it receives
 * against the bytes that seed gives, every byte.
 */
const APP_MAIN = `import { Room, RoomEvent, type DataInfo, type DataPayload, type RemoteParticipant } from '@switchboard/client';

/** What this page made of a binary message it received. */
interface ReceivedBytes {
  from: string;
  topic: string | undefined;
  /** The payload arrived as a Uint8Array. */
  binary: boolean;
  length: number;
  sha256: string;
  /** Bytes that differ from those the seed in the topic gives (-1: no seed, nothing compared). */
  mismatches: number;
  firstMismatch: number;
}

interface AppState {
  status: 'connecting' | 'connected' | 'failed';
  error?: string;
  identity?: string;
  received: ReceivedBytes[];
  /** SHA-256 of what this page sent, by seed. */
  sent: Record<string, string>;
  sendBytes?: (seed: number, length: number) => Promise<void>;
  room?: Room;
}

declare global {
  interface Window {
    app: AppState;
  }
}

const app: AppState = { status: 'connecting', received: [], sent: {} };
window.app = app;

/** length pseudo-random bytes from seed (xorshift32), as the test computes them. */
function seededBytes(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  // A copy: digest takes an ArrayBuffer-backed view, and DataPayload's Uint8Array may be on any buffer.
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function check(payload: DataPayload, participant: RemoteParticipant, info: DataInfo): Promise<ReceivedBytes> {
  const binary = payload instanceof Uint8Array;
  const bytes = binary ? payload : new TextEncoder().encode(JSON.stringify(payload));
  const seed = /^bytes:(\\d+)$/.exec(info.topic ?? '')?.[1];
  let mismatches = -1;
  let firstMismatch = -1;
  if (seed !== undefined) {
    const expected = seededBytes(Number(seed), bytes.length);
    mismatches = 0;
    for (let i = 0; i < bytes.length; i++)
      if (bytes[i] !== expected[i]) {
        if (mismatches === 0) firstMismatch = i;
        mismatches++;
      }
  }
  return { from: participant.identity, topic: info.topic, binary, length: bytes.length, sha256: await sha256(bytes), mismatches, firstMismatch };
}

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
  room.on(RoomEvent.Data, (payload: DataPayload, participant: RemoteParticipant, info: DataInfo) => {
    void check(payload, participant, info).then((result) => app.received.push(result));
  });
  app.sendBytes = async (seed: number, length: number) => {
    const bytes = seededBytes(seed, length);
    app.sent[String(seed)] = await sha256(bytes);
    await room.send(bytes, { topic: \`bytes:\${seed}\` });
  };
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
  received: {
    from: string;
    topic: string | undefined;
    binary: boolean;
    length: number;
    sha256: string;
    mismatches: number;
    firstMismatch: number;
  }[];
  sent: Record<string, string>;
  sendBytes(seed: number, length: number): Promise<void>;
  room?: {
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

    it("two pages of the app decode each other's video and receive each other's 64 KiB binary message, byte-identical", async () => {
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

      // Each page its own seed: the receiver regenerates the sender's bytes from the seed in the topic.
      const seeds: Record<string, number> = { ann: 0x9e3779b9, ben: 0x2545f491 };
      const expectedSha = (who: string) =>
        createHash('sha256')
          .update(seededBytes(seeds[who] as number, BINARY_BYTES))
          .digest('hex');
      await timed(`${BINARY_BYTES / 1024} KiB binary message both ways`, async () => {
        for (const [page, self] of pages)
          await page.evaluate(([seed, length]) => (window as unknown as AppWindow).app.sendBytes(seed, length), [
            seeds[self] as number,
            BINARY_BYTES,
          ] as const);
        await waitFor(
          async () =>
            (await Promise.all(pages.map(([page]) => page.evaluate(() => (window as unknown as AppWindow).app.received.length)))).every(
              (n) => n >= 1,
            ),
          15_000,
          'a binary message on both pages',
        );
      });
      await new Promise((r) => setTimeout(r, 300));
      for (const [page, self, other] of pages) {
        const { sent, received } = await page.evaluate(() => ({
          sent: (window as unknown as AppWindow).app.sent,
          received: (window as unknown as AppWindow).app.received,
        }));
        // The app's generator and the test's give the same bytes.
        expect(sent, `${self}: SHA-256 of what it sent`).to.deep.equal({ [String(seeds[self])]: expectedSha(self) });
        expect(received, `${self}: what it received`).to.deep.equal([
          {
            from: other,
            topic: `bytes:${seeds[other]}`,
            binary: true,
            length: BINARY_BYTES,
            sha256: expectedSha(other),
            mismatches: 0,
            firstMismatch: -1,
          },
        ]);
        console.log(
          `      ${self} received ${received[0]?.length} bytes from ${other}, sha256 ${received[0]?.sha256.slice(0, 16)}…, 0 differing`,
        );
      }
      for (const [page] of pages) await page.close();
    });
  });
});

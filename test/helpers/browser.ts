/** Debian's Chromium driven by playwright-core, with fake camera and microphone. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import './page-globals.js';
import { startServer, type TestServer } from './server.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests cannot run here, or null when they can. */
export function browserUnavailableReason(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium; scripts/setup.sh does it)`;
}

/**
 * As root, Chromium runs its audio threads at real-time priority (SCHED_RR), which an ordinary
 * user's browser does not get; with several pages on two cores they starve every other thread
 * (signaling sockets lost for missed pings, SDP answers taking seconds). Root runs it through
 * scripts/chromium-without-realtime.sh (setpriv without CAP_SYS_NICE): normal priority, as a user's.
 */
const WITHOUT_REALTIME = fileURLToPath(new URL('../../scripts/chromium-without-realtime.sh', import.meta.url));

function chromiumExecutable(): string {
  const root = process.getuid?.() === 0;
  return root && existsSync('/usr/bin/setpriv') && existsSync(WITHOUT_REALTIME) ? WITHOUT_REALTIME : CHROMIUM;
}

/** What a suite adds to the usual Chromium flags. */
export interface BrowserLaunchOptions {
  /** More command-line flags. */
  extraArgs?: string[];
}

export async function launchBrowser(options: BrowserLaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumExecutable(),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      // Background pages must keep encoding and decoding at full rate.
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      // Each window of Chromium 156 preloads two omnibox-popup WebUI pages in a renderer of its
      // own (4-6% of a core each, steady, with five pages open): nobody types in an address bar here.
      '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup',
      ...(options.extraArgs ?? []),
    ],
  });
}

/** Builds the browser SDK bundle (dist/sdk) that the demo page loads. */
export function buildSdk(): void {
  const result = spawnSync(process.execPath, ['scripts/build-sdk.mjs'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`SDK build failed: ${result.stderr}`);
}

export function artifactPath(name: string): string {
  mkdirSync('test-artifacts', { recursive: true });
  return `test-artifacts/${name}`;
}

/** Collects console errors of a page, for failure messages. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  return errors;
}

/** Uncaught exceptions (pageerror) of the pages opened through openDemoPage, not yet reported. */
const uncaughtPageErrors: string[] = [];

/** Records a page's uncaught exceptions; the root afterEach below fails the running test on them. */
export function failOnPageErrors(page: Page, label: string): void {
  page.on('pageerror', (error) => uncaughtPageErrors.push(`${label}: ${error.stack ?? error.message}`));
}

/** Takes (and clears) the uncaught page exceptions recorded so far. */
export function takeUncaughtPageErrors(): string[] {
  return uncaughtPageErrors.splice(0);
}

// Root hooks, registered when a spec loads this module (bench/ loads it outside mocha). An
// uncaught exception in a page fails the test it happened in: the hook's error() fails that
// test and lets the suite go on, where a throwing afterEach would skip the suite's other tests.
if (typeof afterEach === 'function' && typeof after === 'function') {
  afterEach(function () {
    const errors = takeUncaughtPageErrors();
    if (errors.length > 0) (this.test as Mocha.Hook).error(new Error(`uncaught exception in a page:\n${errors.join('\n')}`));
  });
  // Exceptions after the last test (pages closing in an after hook) still fail the run.
  after(() => {
    const errors = takeUncaughtPageErrors();
    if (errors.length > 0) throw new Error(`uncaught exception in a page after the last test:\n${errors.join('\n')}`);
  });
}

/** The identity of the page's local participant. */
export async function identityOf(page: Page): Promise<string> {
  return page.evaluate(() => window.switchboardRoom.localParticipant.identity);
}

/** Inbound RTP bytes per remote identity and kind, read in the page from the SDK's room. */
export async function inboundBytes(page: Page): Promise<Record<string, { audio: number; video: number }>> {
  return page.evaluate(async () => {
    const room = (window as unknown as { switchboardRoom: { getLinkStats(): Promise<Map<string, RTCStatsReport>> } }).switchboardRoom;
    const result: Record<string, { audio: number; video: number }> = {};
    for (const [identity, report] of await room.getLinkStats()) {
      const totals = { audio: 0, video: 0 };
      report.forEach((stat: { type: string; kind?: string; bytesReceived?: number }) => {
        if (stat.type === 'inbound-rtp' && (stat.kind === 'audio' || stat.kind === 'video')) totals[stat.kind] += stat.bytesReceived ?? 0;
      });
      result[identity] = totals;
    }
    return result;
  });
}

/** Opens the demo page with a query (room, name, options) and waits until its room is connected. */
export async function openDemoPage(
  browser: Browser,
  base: string,
  query: string,
  viewport = { width: 1280, height: 800 },
  errors?: string[][],
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  failOnPageErrors(page, query);
  if (errors) errors.push(pageErrors(page));
  await page.goto(`${base}/?${query}`);
  await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 30000 });
  return page;
}

/** What useChromiumSuite set up for a suite: its server, its Chromium, and the server's URL under localhost (the pages' origin). */
export interface ChromiumSuite {
  server: TestServer;
  browser: Browser;
  base: string;
}

/**
 * Registers the hooks of a suite of Chromium pages against one server: skips the suite (saying
 * why) where Chromium cannot run, builds the SDK bundle, starts a server with `env` and launches
 * Chromium; closes both after. The fields are set once the suite's `before` ran.
 */
export function useChromiumSuite(env: Record<string, string>): ChromiumSuite {
  const suite = {} as ChromiumSuite;
  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    suite.server = await startServer(env);
    suite.base = suite.server.url.replace('127.0.0.1', 'localhost');
    suite.browser = await launchBrowser();
  });
  after(async () => {
    await suite.browser?.close();
    await suite.server?.close();
  });
  return suite;
}

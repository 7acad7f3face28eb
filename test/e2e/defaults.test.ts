import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../helpers/clusterProcess.js';
import { capturedLogger } from '../helpers/logs.js';
import { browserUnavailableReason, buildSdk, identityOf, launchBrowser, openDemoPage } from '../helpers/browser.js';
import { freeSfuPort } from '../helpers/ports.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** Frames of each remote participant's video decoded over the SFU, read in the page. */
function sfuFrames(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () =>
    Object.fromEntries(
      [...(await window.switchboardRoom.getParticipantStats())].map(([identity, stats]) => [identity, stats.framesByPath.sfu]),
    ),
  );
}

/** Every other page's video decodes on this page over the SFU, and keeps decoding. */
async function expectSfuVideoFromAll(page: Page, others: string[]): Promise<void> {
  await waitFor(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const frames = await sfuFrames(page);
      return others.every((identity) => (frames[identity] ?? 0) > 0);
    },
    60000,
    `SFU video from ${others.join(', ')} on ${await identityOf(page)}`,
  ).catch(async (error: Error) => {
    throw new Error(
      `${error.message}; frames over the SFU: ${JSON.stringify(await sfuFrames(page))}; page error: ${await page.textContent('#error')}`,
    );
  });
  const before = await sfuFrames(page);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = await sfuFrames(page);
  for (const identity of others)
    expect((after[identity] ?? 0) - (before[identity] ?? 0), `new SFU frames from ${identity}`).to.be.greaterThan(3);
}

/**
 * `npm start` as the README runs it, on the embedded defaults; only the ports are ephemeral
 * (METRICS_PORT too: a free one, so /metrics keeps its own listener as by default).
 * Resolves with the HTTP port it printed.
 */
async function npmStart(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  // SFU_PORT: free ports for the default one worker per core, on the default 0.0.0.0.
  const sfuPort = String(await freeSfuPort(availableParallelism(), '0.0.0.0'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    PORT: '0',
    TURN_PORT: '0',
    METRICS_PORT: String(await freePort()),
    SFU_PORT: sfuPort,
  };
  if (process.env.MEDIASOUP_WORKER_BIN) env.MEDIASOUP_WORKER_BIN = process.env.MEDIASOUP_WORKER_BIN;
  // Its own process group: npm runs the server as a child, and the whole group is stopped at the end.
  const child = spawn('npm', ['start'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not listen within 60 s:\n${output}`)), 60000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const port = /switchboard listening on \S+:(\d+)/.exec(output)?.[1];
      if (port) {
        clearTimeout(timer);
        resolve({ child, port: Number(port), output: () => output });
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code}:\n${output}`));
    });
  });
}

/** Stops npm and the server it started (SIGTERM to the process group, as a terminal's Ctrl-C would), and waits for npm. */
async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-(child.pid as number), 'SIGTERM');
  await exited;
}

describe("browser e2e: a newcomer's run (npm start on its defaults)", function () {
  this.timeout(240000);
  let browser: Browser | null = null;
  const pages: Page[] = [];

  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    // npm start serves the built server: build what the checkout has now.
    const build = spawnSync('npm', ['run', '-s', 'build'], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
    browser = await launchBrowser();
  });
  afterEach(async () => {
    for (const page of pages.splice(0)) await page.close().catch(() => undefined);
  });
  after(async () => browser?.close());

  it("five demo tabs on `npm start` defaults: the room is promoted and every tab plays every other tab's video over the SFU", async () => {
    const server = await npmStart();
    try {
      const base = `http://localhost:${server.port}`;
      for (let i = 1; i <= 5; i++) pages.push(await openDemoPage(browser as Browser, base, `room=newcomer&name=u${i}&audio=0`));
      for (const page of pages)
        await page.waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 60000, polling: 250 });
      const identities = await Promise.all(pages.map(identityOf));
      for (const [index, page] of pages.entries())
        await expectSfuVideoFromAll(
          page,
          identities.filter((_, i) => i !== index),
        );
      for (const page of pages) expect(await page.textContent('#error')).to.equal('');
    } finally {
      await stop(server.child);
    }
  });

  it('a page whose SFU transport cannot connect shows an error, and the server logs it', async () => {
    buildSdk();
    const { lines, logger } = capturedLogger();
    // Candidates on 127.0.0.2, where nothing listens: ICE cannot succeed.
    const t: TestServer = await startServer(
      {
        SFU_ENABLED: 'true',
        SFU_WORKERS: '1',
        SFU_LISTEN_IP: '127.0.0.1',
        SFU_ANNOUNCED_IP: '127.0.0.2',
        MESH_THRESHOLD: '1',
        SFU_TRANSPORT_CONNECT_TIMEOUT_MS: '3000',
      },
      { logger },
    );
    try {
      for (let i = 1; i <= 2; i++) pages.push(await openDemoPage(browser as Browser, t.url, `room=nomedia&name=v${i}&audio=0`));
      for (const page of pages) {
        await page.waitForFunction(() => /unavailable|media_failed/.test(document.getElementById('error')?.textContent ?? ''), undefined, {
          timeout: 30000,
          polling: 250,
        });
      }
      await waitFor(
        () => lines.some((line) => line.includes('an SFU transport did not connect')),
        10000,
        'the server to log the transport',
      );
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).to.match(/switchboard_sfu_transport_failures_total [1-9]/);
    } finally {
      await t.close();
    }
  });
});

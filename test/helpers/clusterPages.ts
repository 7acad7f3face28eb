/**
 * Chromium pages of the demo in cluster tests (owner death, drain): three node processes and a
 * browser for a suite, a room claimed on one node, opening a page and waiting for its room,
 * decoded video per remote and when it grows again, and a node's rooms by mode.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { io as ioClient, type Socket } from 'socket.io-client';
import { browserUnavailableReason, buildSdk, failOnPageErrors, launchBrowser, pageErrors } from './browser.js';
import { startNodeProcesses, type NodeProcess } from './clusterProcess.js';
import { freeSfuPort } from './ports.js';
import { redisUnavailable, startRedis, type RedisServer } from './redis.js';
import { waitFor } from './server.js';

/** Frames decoded per remote identity on a page, over every path (mesh links and SFU consumers) or the current SFU session's only. */
export function framesOf(page: Page, path: 'all' | 'sfu'): Promise<Record<string, number>> {
  return page.evaluate(
    async (which) =>
      Object.fromEntries(
        [...(await window.switchboardRoom.getParticipantStats())].map(([id, s]) => [
          id,
          which === 'sfu' ? s.framesByPath.sfu : s.framesDecoded,
        ]),
      ),
    path,
  );
}

/**
 * Sample by sample, per page: the first time every one of `count` remotes' decoded frames grew
 * by more than a couple of frames since the previous sample (NaN: not within timeoutMs). A page
 * is sampled only while `eligible` says so.
 */
export async function timeUntilFlowing(
  pages: Page[],
  count: number,
  path: 'all' | 'sfu',
  timeoutMs: number,
  eligible: (i: number) => Promise<boolean> = async () => true,
): Promise<number[]> {
  const step = 2;
  const at: Array<number | null> = pages.map(() => null);
  let previous: Array<Record<string, number> | null> = pages.map(() => null);
  const deadline = Date.now() + timeoutMs;
  while (at.some((t) => t === null) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 400)); // getStats on several busy pages is not free: poll gently
    const sampledAt = Date.now();
    const now = await Promise.all(pages.map(async (page, i) => (at[i] === null && (await eligible(i)) ? framesOf(page, path) : null)));
    now.forEach((byId, i) => {
      if (byId === null || at[i] !== null) return;
      const before = previous[i];
      const grown = Object.entries(byId).filter(([id, f]) => before?.[id] !== undefined && f > (before[id] as number) + step);
      if (Object.keys(byId).length === count && grown.length === count) at[i] = sampledAt;
    });
    previous = now;
  }
  return at.map((t) => t ?? NaN);
}

/**
 * Opens the demo page at `${base}/?${query}` and waits until its room is connected; a page that
 * does not connect says why. `initScript` runs in the page before its own scripts.
 */
export async function openClusterPage(
  browser: Browser,
  base: string,
  query: string,
  options: { viewport?: { width: number; height: number }; initScript?: string } = {},
): Promise<Page> {
  const page = await browser.newPage({ viewport: options.viewport ?? { width: 960, height: 600 } });
  failOnPageErrors(page, query);
  const errors = pageErrors(page);
  if (options.initScript) await page.addInitScript(options.initScript);
  await page.goto(`${base}/?${query}`);
  try {
    await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 30_000 });
  } catch (error) {
    const shown = await page.evaluate(() => document.getElementById('error')?.textContent ?? '').catch(() => '');
    await page.close();
    throw new Error(
      `${query} on ${base} did not connect: ${(error as Error).message}; page error: ${shown}; console: ${errors.join(' | ')}`,
    );
  }
  return page;
}

/** A node's switchboard_rooms_active by mode. */
export async function roomsActive(node: NodeProcess): Promise<{ mesh: number; sfu: number }> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const read = (mode: string) => Number(new RegExp(`^switchboard_rooms_active\\{mode="${mode}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { mesh: read('mesh'), sfu: read('sfu') };
}

/**
 * Claims `room` on `node`: a connection there (token from the dev route, not joined) holds the
 * room's lease until it closes, so the pages that come next are sent to that node.
 */
export async function anchorRoom(node: NodeProcess, room: string): Promise<Socket> {
  const minted = await fetch(`${node.url}/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ room, name: 'anchor', user: 'anchor' }),
  });
  if (minted.status !== 201) throw new Error(`dev token on ${node.url}: ${minted.status}`);
  const socket = ioClient(node.url, {
    auth: { token: ((await minted.json()) as { token: string }).token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/**
 * Waits until every node's demo page allows connecting to every node (its CSP names them): the
 * nodes list each other once per heartbeat, and a page served before a node was listed cannot
 * follow its room there (see CSP_CONNECT_SRC). Tests start from a formed cluster.
 */
async function clusterFormed(nodes: readonly NodeProcess[]): Promise<void> {
  const hosts = nodes.map((node) => new URL(node.url).host);
  await waitFor(
    async () => {
      const policies = await Promise.all(
        nodes.map(async (node) => (await fetch(`${node.url}/`)).headers.get('content-security-policy') ?? ''),
      );
      return policies.every((policy) => hosts.every((host) => policy.includes(`ws://${host}`)));
    },
    10_000,
    'every node listing every node (demo CSP)',
  );
}

export interface BrowserCluster {
  readonly redis: RedisServer;
  /** Nodes a, b, c (ids node-a, node-b, node-c). */
  readonly nodes: NodeProcess[];
  readonly browser: Browser;
}

/**
 * Registers the hooks of a suite of three Switchboard node processes on one redis-server (the
 * Redis store, the dev tenant declared in a config file so the demo's /dev/token mints for it,
 * the SFU on with one worker and its own free SFU_PORT per node, TURN off, MESH_THRESHOLD 4) and
 * a Chromium. Skips the suite, saying why, without chromium or redis-server. `env` is added to
 * every node's settings.
 */
export function useBrowserCluster(name: string, options: { env?: Record<string, string> } = {}): () => BrowserCluster {
  let redis: RedisServer | undefined;
  let nodes: NodeProcess[] = [];
  let browser: Browser | undefined;
  let configDir: string | undefined;

  before(async function () {
    const unavailable = redisUnavailable() ?? browserUnavailableReason();
    if (unavailable) {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
    buildSdk();
    redis = await startRedis();
    configDir = mkdtempSync(join(tmpdir(), `${name}-`));
    const configFile = join(configDir, 'config.json');
    const tenant = { tenant_id: 'dev', api_key: `${name}-api-key`, api_secret: `${name}-tenant-secret-0123456789-0123456789` };
    writeFileSync(configFile, JSON.stringify({ tenants: [tenant] }));
    // Single-port media: one UDP+TCP port per node (one worker each), free when the suite starts.
    const sfuPorts: number[] = [];
    while (sfuPorts.length < 3) {
      const port = await freeSfuPort(1, '127.0.0.1');
      if (!sfuPorts.includes(port)) sfuPorts.push(port);
    }
    const env = (i: number): Record<string, string> => ({
      REDIS_URL: (redis as RedisServer).url,
      STORE: 'redis',
      CONFIG_FILE: configFile,
      DEV_TOKEN_ROUTE: 'true',
      SIGNING_KEYS: `k1:${name}-signing-secret-0123456789-0123456789`,
      ADMIN_API_KEY: `${name}-admin-key-0123456789-0123456789`,
      TURN_ENABLED: 'false',
      SFU_ENABLED: 'true',
      SFU_WORKERS: '1',
      SFU_LISTEN_IP: '127.0.0.1',
      SFU_PORT: String(sfuPorts[i]),
      MESH_THRESHOLD: '4',
      ...options.env,
    });
    nodes = await startNodeProcesses(['a', 'b', 'c'].map((id, i) => ({ id: `node-${id}`, env: env(i) })));
    await clusterFormed(nodes);
    browser = await launchBrowser();
  });

  after(async function () {
    await browser?.close();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  return () => {
    if (!redis || !browser) throw new Error(`${name}: the browser cluster is not started (only inside the suite's tests)`);
    return { redis, nodes, browser };
  };
}

/**
 * METRICS_PORT: /metrics on a listener of its own (loopback by default), 404 on the public port;
 * METRICS_PORT=0 serves it on PORT as before; a METRICS_PORT in use stops the boot with an error
 * naming it. Real servers, real HTTP.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { testConfig } from '../../config/index.js';
import { createServer } from '../../server/index.js';
import { freePort } from '../helpers/clusterProcess.js';
import { startServer, TEST_KID, TEST_SECRET, type TestServer } from '../helpers/server.js';

/** A TCP listener holding a port on 127.0.0.1 (a port in use). */
async function holdPort(): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, server };
}

/** Whether a request to `url` is refused (nothing listens on its port). */
async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(3000) });
    return false;
  } catch (error) {
    return /ECONNREFUSED/.test(String((error as { cause?: unknown }).cause ?? error));
  }
}

describe('metrics listener (METRICS_PORT)', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('on its own port: /metrics is served there and answers 404 on the main port; /health and /ready stay on the main port', async () => {
    const port = await freePort();
    t = await startServer({ METRICS_PORT: String(port) });
    expect(t.server.metricsUrl).to.equal(`http://127.0.0.1:${port}/metrics`);
    await t.join({ room: 'scraped', user: 'alice' });

    const scraped = await fetch(t.server.metricsUrl);
    expect(scraped.status).to.equal(200);
    expect(scraped.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await scraped.text()).to.match(/^switchboard_peers_active 1$/m);

    const onMain = await fetch(`${t.url}/metrics`);
    expect(onMain.status).to.equal(404);
    expect(await onMain.json()).to.deep.equal({ error: { code: 'not_found', message: 'no such route' } });
    expect((await fetch(`${t.url}/health`)).status).to.equal(200);
    expect((await fetch(`${t.url}/ready`)).status).to.equal(200);
    // The metrics listener serves nothing else.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).to.equal(404);
    expect((await fetch(t.server.metricsUrl, { method: 'POST' })).status).to.equal(404);
  });

  it('closes with the server: neither port answers after close()', async () => {
    const port = await freePort();
    const server = await startServer({ METRICS_PORT: String(port) });
    const { metricsUrl } = server.server;
    expect((await fetch(metricsUrl)).status).to.equal(200);
    // An open keep-alive scrape connection does not hold the shutdown.
    await server.close();
    expect(await refused(metricsUrl), 'metrics port closed').to.equal(true);
    expect(await refused(`${server.url}/health`), 'main port closed').to.equal(true);
  });

  it('METRICS_PORT=0 serves /metrics on the main port, as before', async () => {
    t = await startServer({ METRICS_PORT: '0' });
    expect(t.server.metricsUrl).to.equal(`${t.url}/metrics`);
    const response = await fetch(`${t.url}/metrics`);
    expect(response.status).to.equal(200);
    expect(await response.text()).to.include('switchboard_sockets_connected');
  });

  it('a METRICS_PORT in use stops createServer with an error naming METRICS_PORT, and a later boot on it works once it is free', async () => {
    const held = await holdPort();
    const config = testConfig({ SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`, METRICS_PORT: String(held.port) });
    try {
      let failure: unknown;
      await createServer(config).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.include(`METRICS_PORT ${held.port}`).and.include('in use');
    } finally {
      await new Promise((resolve) => held.server.close(resolve));
    }
    // Nothing of the failed boot holds the port.
    const server = await createServer(config);
    try {
      expect(server.metricsUrl).to.equal(`http://127.0.0.1:${held.port}/metrics`);
      expect((await fetch(server.metricsUrl)).status).to.equal(200);
    } finally {
      await server.close();
    }
  });

  it('a boot that fails after the metrics listener bound (PORT in use) closes that listener again', async () => {
    const held = await holdPort();
    const metricsPort = await freePort();
    try {
      const config = testConfig({ SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`, PORT: String(held.port), METRICS_PORT: String(metricsPort) });
      let failure: unknown;
      await createServer(config).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.include('EADDRINUSE');
      expect(await refused(`http://127.0.0.1:${metricsPort}/metrics`)).to.equal(true);
    } finally {
      await new Promise((resolve) => held.server.close(resolve));
    }
  });

  it('the server process exits 1 with one line naming METRICS_PORT when the port is in use', async function () {
    this.timeout(30000);
    const held = await holdPort();
    try {
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
          env: {
            PATH: process.env.PATH ?? '',
            PORT: '0',
            HOST: '127.0.0.1',
            METRICS_PORT: String(held.port),
            TURN_ENABLED: 'false',
            SFU_ENABLED: 'false',
            LOG_LEVEL: 'warn',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the server did not exit:\n${err}`));
        }, 25000);
        child.on('exit', (exitCode) => {
          clearTimeout(timer);
          resolve({ code: exitCode, stderr: err });
        });
      });
      expect(code).to.equal(1);
      expect(stderr).to.match(new RegExp(`^switchboard: cannot start: .*METRICS_PORT ${held.port}: the port is in use`, 'm'));
    } finally {
      await new Promise((resolve) => held.server.close(resolve));
    }
  });
});

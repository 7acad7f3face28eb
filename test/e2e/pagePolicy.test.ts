/**
 * The page's Content-Security-Policy and the SDK: a browser refuses a WebSocket to an origin
 * connect-src does not name and reports it like any failed connection, so without help the SDK
 * would see an unreachable node and retry forever (as a demo page loaded before a cluster node
 * joined did, following its room there). The SDK reads the page's `securitypolicyviolation`
 * events and says so: `connection_failed` naming the policy. CSP_CONNECT_SRC adds sources to
 * the demo page's connect-src, and with it the same connection goes through.
 *
 * Three single nodes: `rooms` serves the room; `strict` serves the page with the default policy
 * (connect-src 'self'); `allowing` serves it with CSP_CONNECT_SRC=ws://127.0.0.1:*. Each page
 * imports the SDK from its own server and connects to `rooms` with a token minted there.
 */
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { browserUnavailableReason, buildSdk, failOnPageErrors, launchBrowser } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface ConnectOutcome {
  connected: boolean;
  code: string | null;
  message: string | null;
  state: string;
}

describe('browser e2e: the page Content-Security-Policy and cross-origin nodes', function () {
  this.timeout(90_000);
  let browser: Browser | undefined;
  const servers: TestServer[] = [];

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
    for (const server of servers) await server.close();
  });

  async function start(env: Record<string, string> = {}): Promise<TestServer> {
    const server = await startServer(env);
    servers.push(server);
    return server;
  }

  /** On a page served by `pageServer` (its demo page, not joined), Room.connect to `rooms`. */
  async function connectFrom(
    pageServer: TestServer,
    rooms: TestServer,
    user: string,
  ): Promise<{ outcome: ConnectOutcome; policy: string }> {
    const page = await (browser as Browser).newPage();
    failOnPageErrors(page, user);
    try {
      const response = await page.goto(`${pageServer.url.replace('127.0.0.1', 'localhost')}/`);
      const policy = (await response?.headerValue('content-security-policy')) ?? '';
      const token = rooms.mint({ room: 'policy', user });
      const outcome = await page.evaluate(
        async ({ url, token }) => {
          const sdk = (await import('/sdk/esm/switchboard.js' as string)) as {
            Room: new (options: Record<string, unknown>) => {
              connect(url: string, token: string): Promise<void>;
              leave(): Promise<void>;
              state: string;
            };
          };
          const room = new sdk.Room({ requestTimeoutMs: 5_000 });
          try {
            await room.connect(url, token);
            await room.leave();
            return { connected: true, code: null, message: null, state: room.state };
          } catch (error) {
            const failed = error as { code?: string; message?: string };
            return { connected: false, code: failed.code ?? null, message: failed.message ?? null, state: room.state };
          }
        },
        { url: rooms.url, token },
      );
      return { outcome, policy };
    } finally {
      await page.close();
    }
  }

  it("a connection the page's connect-src refuses fails with connection_failed naming the policy", async () => {
    const rooms = await start();
    const strict = await start();
    const { outcome, policy } = await connectFrom(strict, rooms, 'strict-user');
    expect(policy, "the strict page's policy").to.match(/default-src 'self'/);
    expect(policy).to.not.include('connect-src');
    expect(outcome.connected, JSON.stringify(outcome)).to.equal(false);
    expect(outcome.code).to.equal('connection_failed');
    expect(outcome.message).to.include('Content-Security-Policy (connect-src)');
    expect(outcome.message).to.include(rooms.url);
    expect(outcome.state).to.equal('disconnected');
  });

  it('CSP_CONNECT_SRC adds sources to the demo page connect-src, and the same connection goes through', async () => {
    const rooms = await start();
    const allowing = await start({ CSP_CONNECT_SRC: 'ws://127.0.0.1:*' });
    const { outcome, policy } = await connectFrom(allowing, rooms, 'allowed-user');
    expect(/connect-src ([^;]*)/.exec(policy)?.[1], "the allowing page's connect-src").to.equal("'self' ws://127.0.0.1:*");
    expect(outcome, JSON.stringify(outcome)).to.deep.include({ connected: true, code: null });
  });
});

/** Shared by the TURN tests: settings and server start-up (the address table is test/net/addressTable.ts). */
import type { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { createLogger } from '../../server/logger.js';
import { TurnServer } from '../../turn/TurnServer.js';
import type { TransportAddress, TurnClient } from '../helpers/stun.js';

export const TURN_SECRET = 'turn-test-secret-0123456789-0123456789';
export const TURN_REALM = 'switchboard.test';

/**
 * TURN settings for a relay on 127.0.0.1, port 0, with `env` on top. TURN_UDP_IO from the
 * environment of the run applies (`TURN_UDP_IO=dgram npm test -- test/turn/*.test.ts` runs
 * the TURN tests on dgram); unset, the relay chooses (native where the addon is built).
 */
export function turnSettings(env: Record<string, string> = {}) {
  return testConfig({
    ...(process.env.TURN_UDP_IO ? { TURN_UDP_IO: process.env.TURN_UDP_IO } : {}),
    TURN_ENABLED: 'true',
    TURN_PORT: '0',
    TURN_LISTEN_IP: '127.0.0.1',
    TURN_RELAY_IP: '127.0.0.1',
    TURN_SECRET,
    TURN_REALM,
    ...env,
  }).turn;
}

/** Starts a TurnServer (silent logger); close it in after(). */
export async function startTurn(env: Record<string, string> = {}): Promise<TurnServer> {
  const server = new TurnServer({ config: turnSettings(env), logger: createLogger('silent') });
  await server.start();
  return server;
}

/** Resolves when `check` passes, polling every 20 ms; rejects after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The thread of relay worker `index` of a started TurnServer (to kill it, as a crash would). */
export function relayThread(server: TurnServer, index = 0): Worker | undefined {
  return (server as unknown as { workers: Array<{ thread?: Worker }> }).workers[index]?.thread;
}

/**
 * Two allocations of this server relay to each other: `a` permits `b`'s relayed address and
 * sends a Send indication (b gets ChannelData on the channel it bound to `a`), `b` answers with
 * ChannelData (a gets a Data indication from `b`'s relayed address).
 */
export async function expectRelayBothWays(
  a: { c: TurnClient; relayed: TransportAddress },
  b: { c: TurnClient; relayed: TransportAddress },
  channel = 0x4000,
): Promise<void> {
  expect((await a.c.createPermission(b.relayed.address)).isSuccess).to.equal(true);
  expect((await b.c.channelBind(channel, a.relayed)).isSuccess).to.equal(true);
  a.c.sendIndication(b.relayed, Buffer.from('a to b'));
  expect(await b.c.nextData()).to.deep.equal({ kind: 'channel', channel, data: Buffer.from('a to b') });
  b.c.sendChannelData(channel, Buffer.from('b to a'));
  expect(await a.c.nextData()).to.deep.equal({ kind: 'indication', peer: b.relayed, data: Buffer.from('b to a') });
}

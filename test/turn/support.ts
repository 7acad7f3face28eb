/** Shared by the TURN tests: address samples of every denied class, and server start-up. */
import { testConfig } from '../../config/index.js';
import { createLogger } from '../../server/logger.js';
import type { AddressClass } from '../../turn/PeerPolicy.js';
import { TurnServer } from '../../turn/TurnServer.js';

export const TURN_SECRET = 'turn-test-secret-0123456789-0123456789';
export const TURN_REALM = 'switchboard.test';

/** TURN settings for a relay on 127.0.0.1, port 0, with `env` on top. */
export function turnSettings(env: Record<string, string> = {}) {
  return testConfig({
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

/** One representative address per denied class, with the CIDR that allow-lists it. */
export const DENIED_SAMPLES: Array<{ address: string; cls: AddressClass; cidr: string }> = [
  { address: '0.0.0.0', cls: 'unspecified', cidr: '0.0.0.0/8' },
  { address: '0.1.2.3', cls: 'unspecified', cidr: '0.0.0.0/8' },
  { address: '127.0.0.1', cls: 'loopback', cidr: '127.0.0.0/8' },
  { address: '127.255.0.9', cls: 'loopback', cidr: '127.0.0.0/8' },
  { address: '10.0.0.1', cls: 'private', cidr: '10.0.0.0/8' },
  { address: '10.255.255.254', cls: 'private', cidr: '10.0.0.0/8' },
  { address: '172.16.0.1', cls: 'private', cidr: '172.16.0.0/12' },
  { address: '172.31.255.254', cls: 'private', cidr: '172.16.0.0/12' },
  { address: '192.168.1.1', cls: 'private', cidr: '192.168.0.0/16' },
  { address: '100.64.0.1', cls: 'cgnat', cidr: '100.64.0.0/10' },
  { address: '100.127.255.254', cls: 'cgnat', cidr: '100.64.0.0/10' },
  { address: '169.254.169.254', cls: 'link-local', cidr: '169.254.0.0/16' },
  { address: '169.254.0.1', cls: 'link-local', cidr: '169.254.0.0/16' },
  { address: '224.0.0.1', cls: 'multicast', cidr: '224.0.0.0/4' },
  { address: '239.255.255.250', cls: 'multicast', cidr: '224.0.0.0/4' },
  { address: '255.255.255.255', cls: 'reserved', cidr: '240.0.0.0/4' },
  { address: '::', cls: 'unspecified', cidr: '::/128' },
  { address: '::1', cls: 'loopback', cidr: '::1/128' },
  { address: 'fc00::1', cls: 'private', cidr: 'fc00::/7' },
  { address: 'fd12:3456:789a::1', cls: 'private', cidr: 'fc00::/7' },
  { address: 'fe80::1', cls: 'link-local', cidr: 'fe80::/10' },
  { address: 'febf:ffff::1', cls: 'link-local', cidr: 'fe80::/10' },
  { address: 'ff02::1', cls: 'multicast', cidr: 'ff00::/8' },
  { address: 'ff0e::fb', cls: 'multicast', cidr: 'ff00::/8' },
];

/** IPv4-mapped (and other IPv4-carrying IPv6) forms of denied addresses. */
export const MAPPED_SAMPLES: Array<{ address: string; cls: AddressClass }> = [
  { address: '::ffff:127.0.0.1', cls: 'loopback' },
  { address: '::ffff:7f00:1', cls: 'loopback' },
  { address: '0:0:0:0:0:ffff:7f00:0001', cls: 'loopback' },
  { address: '::ffff:0.0.0.0', cls: 'unspecified' },
  { address: '::ffff:10.1.2.3', cls: 'private' },
  { address: '::ffff:172.16.9.9', cls: 'private' },
  { address: '::ffff:192.168.0.1', cls: 'private' },
  { address: '::ffff:100.64.1.1', cls: 'cgnat' },
  { address: '::ffff:169.254.169.254', cls: 'link-local' },
  { address: '::ffff:a9fe:a9fe', cls: 'link-local' },
  { address: '::ffff:224.0.0.251', cls: 'multicast' },
  { address: '::ffff:255.255.255.255', cls: 'reserved' },
  // IPv4-compatible (deprecated), NAT64 and 6to4 carry IPv4 addresses too.
  { address: '::127.0.0.1', cls: 'loopback' },
  { address: '::a9fe:a9fe', cls: 'link-local' },
  { address: '64:ff9b::a9fe:a9fe', cls: 'link-local' },
  { address: '64:ff9b::10.0.0.1', cls: 'private' },
  { address: '2002:7f00:1::', cls: 'loopback' },
  { address: '2002:c0a8:101::1', cls: 'private' },
];

/**
 * Interop: Debian's coturn, started with use-auth-secret and the same secret (and the peer
 * policy turn/README.md recommends), passes the TURN backend contract with credentials from
 * turn/credentials.ts, so an operator can replace the bundled relay by config alone
 * (TURN_ENABLED=false + TURN_EXTERNAL_URLS). Skipped, with the reason printed, where coturn
 * is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { buildIceServers } from '../../turn/credentials.js';
import { AttrType, Method, TurnClient, UdpPeer, type TransportAddress } from '../helpers/stun.js';
import { CONTRACT_SETTINGS, describeTurnContract, type TurnBackend } from './contract.js';

const SECRET = 'coturn-interop-secret-0123456789-0123456789';
const REALM = 'switchboard.interop';

/** The denied-peer-ip lines of turn/README.md. */
const README_DENIED_PEERS = [
  '0.0.0.0-0.255.255.255',
  '10.0.0.0-10.255.255.255',
  '100.64.0.0-100.127.255.255',
  '169.254.0.0-169.254.255.255',
  '172.16.0.0-172.31.255.255',
  '192.168.0.0-192.168.255.255',
  '240.0.0.0-255.255.255.255',
  '::ffff:0.0.0.0-::ffff:255.255.255.255',
  '64:ff9b::-64:ff9b::ffff:ffff',
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
];

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Skips the calling suite (saying why) when coturn's turnserver is not on PATH. */
function skipWithoutCoturn(context: Mocha.Context): void {
  const probe = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (!probe.error) return;
  console.log(`      skipped: coturn's turnserver is not installed (${(probe.error as NodeJS.ErrnoException).code}); apt-get install -y coturn`);
  context.skip();
}

/** Starts turnserver on an ephemeral 127.0.0.1 port, without a config file, state in a temp dir. */
async function startCoturn(): Promise<TurnBackend> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-coturn-'));
  const port = await freeUdpPort();
  const args = [
    '-n', // no configuration file: everything is on this command line
    '--listening-ip=127.0.0.1',
    `--listening-port=${port}`,
    '--relay-ip=127.0.0.1',
    '--use-auth-secret',
    `--static-auth-secret=${SECRET}`,
    `--realm=${REALM}`,
    '--no-tls',
    '--no-dtls',
    '--no-tcp',
    '--no-tcp-relay',
    '--no-cli',
    `--user-quota=${CONTRACT_SETTINGS.userQuota}`,
    '--no-multicast-peers',
    ...README_DENIED_PEERS.map((range) => `--denied-peer-ip=${range}`),
    `--allowed-peer-ip=${CONTRACT_SETTINGS.allowedPeer}`,
    // coturn refuses loopback peers before it looks at allowed-peer-ip.
    '--allow-loopback-peers',
    `--log-file=${join(dir, 'turn.log')}`,
    '--simple-log',
    `--pidfile=${join(dir, 'turn.pid')}`,
    `--userdb=${join(dir, 'turndb')}`,
  ];
  const child = spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once it answers a STUN Binding request (the client retransmits for ~12 s).
  const probe = await TurnClient.open({ address: '127.0.0.1', port });
  const ready = await Promise.race([probe.request(Method.Binding, [], { sign: false }).then(() => true), exited.then(() => false)]).catch(() => false);
  await probe.close();
  if (!ready) {
    await close();
    throw new Error(`coturn did not come up on 127.0.0.1:${port}:\n${output.slice(-2000)}`);
  }
  return { address: '127.0.0.1', port, secret: SECRET, realm: REALM, close };
}

describeTurnContract('coturn (use-auth-secret, static-auth-secret = TURN_SECRET)', async function () {
  this.timeout(60_000);
  skipWithoutCoturn(this);
  return startCoturn();
});

describe('switching to coturn by config alone', function () {
  this.timeout(60_000);
  let coturn: TurnBackend | undefined;
  const closers: Array<() => Promise<void>> = [];

  before(async function () {
    skipWithoutCoturn(this);
    coturn = await startCoturn();
  });

  after(async () => {
    for (const close of closers.splice(0)) await close();
    await coturn?.close();
  });

  it('relays for the ice_servers a TURN_ENABLED=false config hands out', async () => {
    const port = coturn?.port as number;
    const turn = testConfig({ TURN_ENABLED: 'false', TURN_SECRET: SECRET, TURN_EXTERNAL_URLS: `turn:127.0.0.1:${port}?transport=udp` }).turn;
    const servers = buildIceServers(turn, 'bob');
    expect(servers).to.have.length(1);
    const [external] = servers;
    expect(external?.urls).to.deep.equal([`turn:127.0.0.1:${port}?transport=udp`]);
    const c = await TurnClient.open({ address: '127.0.0.1', port }, { username: external?.username as string, credential: external?.credential as string });
    closers.push(() => c.close());
    const res = await c.allocate();
    expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
    const relayed = res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
    const p = await UdpPeer.open();
    closers.push(() => p.close());
    expect((await c.channelBind(0x4000, p.address)).isSuccess).to.equal(true);
    c.sendChannelData(0x4000, Buffer.from('through coturn'));
    expect((await p.next()).data.toString()).to.equal('through coturn');
    p.send(Buffer.from('and back'), relayed);
    expect(await c.nextData()).to.deep.equal({ kind: 'channel', channel: 0x4000, data: Buffer.from('and back') });
  });
});

/**
 * Interop: Debian's coturn, started with use-auth-secret and the same secret (and the peer
 * policy turn/README.md recommends), passes the TURN backend contract with credentials from
 * turn/credentials.ts, so an operator can replace the bundled relay by config alone
 * (TURN_ENABLED=false + TURN_EXTERNAL_URLS); over UDP and over TCP. Skipped, with the reason
 * printed, where coturn is not installed.
 */
import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { buildIceServers } from '../../turn/credentials.js';
import { coturnUnavailableReason, startCoturn as startSharedCoturn } from '../helpers/coturn.js';
import { AttrType, TurnClient, UdpPeer, type TransportAddress } from '../helpers/stun.js';
import { CONTRACT_SETTINGS, describeTurnContract, type TurnBackend } from './contract.js';

const SECRET = 'coturn-interop-secret-0123456789-0123456789';
const REALM = 'switchboard.interop';

/** Skips the calling suite (saying why) when coturn's turnserver is not on PATH. */
function skipWithoutCoturn(context: Mocha.Context): void {
  const reason = coturnUnavailableReason();
  if (!reason) return;
  console.log(`      skipped: ${reason}`);
  context.skip();
}

function startCoturn(tcp = false): Promise<TurnBackend> {
  return startSharedCoturn({
    secret: SECRET,
    realm: REALM,
    userQuota: CONTRACT_SETTINGS.userQuota,
    allowedPeer: CONTRACT_SETTINGS.allowedPeer,
    tcp,
  });
}

describeTurnContract('coturn (use-auth-secret, static-auth-secret = TURN_SECRET)', async function () {
  this.timeout(60_000);
  skipWithoutCoturn(this);
  return startCoturn();
});

describeTurnContract('coturn over TCP (the reference for the bundled relay over TCP)', async function () {
  this.timeout(60_000);
  skipWithoutCoturn(this);
  return { ...(await startCoturn(true)), clientTransport: { protocol: 'tcp' } };
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
    const turn = testConfig({
      TURN_ENABLED: 'false',
      TURN_SECRET: SECRET,
      TURN_EXTERNAL_URLS: `turn:127.0.0.1:${port}?transport=udp`,
    }).turn;
    const servers = buildIceServers(turn, 'bob');
    expect(servers).to.have.length(1);
    const [external] = servers;
    expect(external?.urls).to.deep.equal([`turn:127.0.0.1:${port}?transport=udp`]);
    const c = await TurnClient.open(
      { address: '127.0.0.1', port },
      { username: external?.username as string, credential: external?.credential as string },
    );
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

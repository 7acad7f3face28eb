/**
 * What the bundled relay does beyond the shared contract (test/turn/contract.ts, which holds
 * both backends to 420, REQUESTED-ADDRESS-FAMILY and EVEN-PORT reservations): the IPv6 side of
 * REQUESTED-ADDRESS-FAMILY, how long a reserved port is held, EVEN-PORT pairs at the edge of the
 * port range, and the Binding and value checks coturn answers differently or not at all.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { expect } from 'chai';
import { createTurnCredentials } from '../../turn/credentials.js';
import type { TurnServer } from '../../turn/TurnServer.js';
import { AttrType, attrs, integrityValid, Method, TurnClient, type StunResponse, type TransportAddress } from '../helpers/stun.js';
import { startTurn, TURN_SECRET } from './support.js';

/** Resolves true when `port` can be bound on `address` (and releases it again). */
async function udpPortFree(port: number, address = '127.0.0.1'): Promise<boolean> {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const bound = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind({ port, address, exclusive: true }, () => resolve(true));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return bound;
}

describe('TurnServer interop', function () {
  this.timeout(30_000);

  const clients: TurnClient[] = [];
  let users = 0;

  async function client(server: TurnServer, address = '127.0.0.1'): Promise<TurnClient> {
    const c = await TurnClient.open({ address, port: server.port }, createTurnCredentials(TURN_SECRET, `interop-${++users}`, 600));
    clients.push(c);
    return c;
  }

  function expectError(res: StunResponse, code: number, c: TurnClient, what: string): void {
    expect(res.errorCode, what).to.equal(code);
    expect(integrityValid(res.raw, c.integrityKey as Buffer), `${what}: signed`).to.equal(true);
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  describe('on an IPv4 relay', () => {
    let server: TurnServer;
    before(async () => {
      server = await startTurn({ TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8' });
    });
    after(async () => {
      await server?.close();
    });

    it('holds the reserved port until the token is used or the reserving allocation ends, and repeats the token to a retransmission', async () => {
      const rtp = await client(server);
      expect((await rtp.challenge()).errorCode).to.equal(401);
      const tid = Buffer.from('0123456789ab');
      const request = rtp.buildRequest(Method.Allocate, [attrs.requestedTransport(), attrs.evenPort(true)], tid);
      const first = await rtp.exchange(tid, request);
      expect(first.isSuccess, `allocate: ${first.errorCode}`).to.equal(true);
      const port = (first.xorAddress(AttrType.XorRelayedAddress) as TransportAddress).port;
      const token = first.attr(AttrType.ReservationToken) as Buffer;
      expect(token).to.have.length(8);
      const again = await rtp.exchange(tid, request);
      expect(again.attr(AttrType.ReservationToken)).to.deep.equal(token);
      expect(again.xorAddress(AttrType.XorRelayedAddress)?.port).to.equal(port);

      // Nobody else gets the reserved port meanwhile.
      expect(await udpPortFree(port + 1)).to.equal(false);
      expect((await rtp.refresh(0)).isSuccess).to.equal(true);
      // The reservation ended with the allocation that made it.
      expect(await udpPortFree(port + 1)).to.equal(true);
      const rtcp = await client(server);
      await rtcp.challenge();
      expectError(await rtcp.allocate([attrs.reservationToken(token)]), 404, rtcp, 'token of a released allocation');
    });

    it('answers an empty CHANGE-REQUEST in a Binding, and 420 for one asking for another address or port (no RFC 5780)', async () => {
      const c = await client(server);
      const plain = await c.request(Method.Binding, [attrs.raw(0x0003, Buffer.alloc(4))], { sign: false });
      expect(plain.isSuccess).to.equal(true);
      expect(plain.xorAddress(AttrType.XorMappedAddress)).to.deep.equal(c.localAddress);
      const change = await c.request(Method.Binding, [attrs.raw(0x0003, Buffer.from([0, 0, 0, 0x06]))], { sign: false });
      expect(change.errorCode).to.equal(420);
      expect(change.unknownAttributes).to.deep.equal([0x0003]);
    });

    it('answers 400 to a truncated XOR-PEER-ADDRESS and to a second CHANNEL-NUMBER, and binds nothing', async () => {
      const c = await client(server);
      expect((await c.allocate()).isSuccess).to.equal(true);
      expectError(
        await c.request(Method.CreatePermission, [attrs.raw(AttrType.XorPeerAddress, Buffer.from([0, 1, 0, 0]))]),
        400,
        c,
        'short XOR-PEER-ADDRESS',
      );
      const peer = { address: '127.0.0.1', port: 40_000 };
      const twice = await c.request(Method.ChannelBind, (tid) => [
        attrs.channelNumber(0x4000),
        attrs.channelNumber(0x4001),
        attrs.xorPeerAddress(peer, tid),
      ]);
      expectError(twice, 400, c, 'two CHANNEL-NUMBERs');
      // Neither channel was bound to the peer: 0x4001 can take it.
      expect((await c.channelBind(0x4001, peer)).isSuccess).to.equal(true);
    });
  });

  it('answers EVEN-PORT with the R bit with 508 when no even port has a free successor, and still gives a plain even port', async () => {
    let low = 0;
    for (let tries = 0; tries < 20 && low === 0; tries++) {
      const candidate = 50_001 + 2 * randomInt(5_000);
      if ((await udpPortFree(candidate)) && (await udpPortFree(candidate + 1))) low = candidate;
    }
    expect(low, 'a free odd/even port pair').to.be.greaterThan(0);
    // One even port (low + 1), whose successor is outside the range.
    const server = await startTurn({ TURN_MIN_PORT: String(low), TURN_MAX_PORT: String(low + 1) });
    try {
      const pair = await client(server);
      await pair.challenge();
      expectError(await pair.allocate([attrs.evenPort(true)]), 508, pair, 'R bit');
      const single = await client(server);
      await single.challenge();
      const res = await single.allocate([attrs.evenPort(false)]);
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      expect(res.xorAddress(AttrType.XorRelayedAddress)?.port).to.equal(low + 1);
      expect((await single.refresh(0)).isSuccess).to.equal(true);
    } finally {
      await server.close();
    }
  });

  it('allocates on an IPv6 relay for REQUESTED-ADDRESS-FAMILY IPv6, and answers IPv4 with 440', async function () {
    if (!(await udpPortFree(0, '::1'))) {
      console.log('      skipped: no IPv6 loopback (::1) on this host');
      this.skip();
    }
    const server = await startTurn({ TURN_LISTEN_IP: '::1', TURN_RELAY_IP: '::1' });
    try {
      const v4 = await client(server, '::1');
      await v4.challenge();
      expectError(await v4.allocate([attrs.requestedAddressFamily(0x01)]), 440, v4, 'IPv4 from an IPv6 relay');
      const v6 = await client(server, '::1');
      await v6.challenge();
      const res = await v6.allocate([attrs.requestedAddressFamily(0x02)]);
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      expect(res.xorAddress(AttrType.XorRelayedAddress)?.address).to.equal('0:0:0:0:0:0:0:1');
      expectError(await v6.request(Method.Refresh, [attrs.lifetime(600), attrs.requestedAddressFamily(0x01)]), 443, v6, 'Refresh IPv4');
    } finally {
      await server.close();
    }
  });
});

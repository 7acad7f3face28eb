/**
 * The contract every TURN backend Switchboard hands out must meet, run against the bundled
 * relay (TurnServer.contract.test.ts) and coturn (coturn.test.ts): REST API credentials from
 * turn/credentials.ts, 401 for missing, expired and forged ones, data relayed both ways
 * (ChannelData and Send/Data indications), denied peers refused with 403, the per-user quota,
 * and an answer to every request: 420 with UNKNOWN-ATTRIBUTES, REQUESTED-ADDRESS-FAMILY
 * (RFC 6156), EVEN-PORT with RESERVATION-TOKEN (RFC 5766 §6.2), 400 for unsupported methods
 * and malformed values, with the codes coturn 4.6.1 answers. A backend may be reached over UDP
 * (the default), TCP or TLS (TurnBackend.clientTransport): the same suite then runs over a
 * stream, with the allocation bound to the connection.
 */
import { expect } from 'chai';
import { createTurnCredentials } from '../../turn/credentials.js';
import {
  AttrType,
  integrityValid,
  Method,
  StreamTurnClient,
  TurnClient,
  UdpPeer,
  attrs,
  type StreamTransport,
  type StunResponse,
  type TransportAddress,
  type TurnClientBase,
} from '../helpers/stun.js';

export interface TurnBackend {
  /** Where clients send (127.0.0.1). */
  address: string;
  /** The port for the clients' transport (the TLS port for TLS). */
  port: number;
  /** How clients reach it: over TCP or TLS; UDP when absent. */
  clientTransport?: StreamTransport;
  secret: string;
  realm: string;
  close(): Promise<void>;
}

/** What a backend must be started with for the contract to hold. */
export const CONTRACT_SETTINGS = {
  /** Allocations per user. */
  userQuota: 2,
  /** Relaying to 127.0.0.1 allowed (the test peers live there); the classes below denied. */
  allowedPeer: '127.0.0.1',
};

/** IPv4 peers every backend must refuse (coturn: the denied-peer-ip ranges of turn/README.md). */
export const CONTRACT_DENIED_PEERS = [
  '10.0.0.1',
  '172.16.0.1',
  '192.168.1.1',
  '100.64.0.1',
  '169.254.169.254',
  '224.0.0.1',
  '0.1.2.3',
  '240.0.0.1',
];

/**
 * Registers the contract suite. `start` runs in before() and may call `this.skip()` (after
 * printing why) when the backend is unavailable.
 */
export function describeTurnContract(name: string, start: (this: Mocha.Context) => Promise<TurnBackend>): void {
  describe(`TURN backend contract: ${name}`, function () {
    this.timeout(30_000);

    let backend: TurnBackend | undefined;
    const clients: TurnClientBase[] = [];
    const retired: TurnClientBase[] = [];
    const peers: UdpPeer[] = [];

    before(async function () {
      backend = await start.call(this);
    });

    afterEach(async () => {
      // Release allocations so the per-user quota starts clean in the next test.
      await Promise.all(clients.map((c) => (c.integrityKey ? c.refresh(0).catch(() => undefined) : undefined)));
      // The sockets stay bound until the suite ends: a later client given a closed one's port
      // would share its 5-tuple with an allocation the backend may still hold (coturn answers
      // 437 Allocation Mismatch), a collision of the test, not of the backend.
      retired.push(...clients.splice(0));
      await Promise.all(peers.splice(0).map((p) => p.close()));
    });

    after(async () => {
      await Promise.all(retired.splice(0).map((c) => c.close()));
      await backend?.close();
    });

    function server(): TurnBackend {
      if (!backend) throw new Error('backend not started');
      return backend;
    }

    async function client(credentials?: { username: string; credential: string }): Promise<TurnClientBase> {
      const { address, port, clientTransport } = server();
      const c = clientTransport
        ? await StreamTurnClient.open({ address, port }, clientTransport, credentials)
        : await TurnClient.open({ address, port }, credentials);
      clients.push(c);
      return c;
    }

    async function peer(): Promise<UdpPeer> {
      const p = await UdpPeer.open();
      peers.push(p);
      return p;
    }

    let users = 0;
    function credentials(): { username: string; credential: string } {
      return createTurnCredentials(server().secret, `user-${++users}`, 600);
    }

    async function allocated(): Promise<{ c: TurnClientBase; relayed: TransportAddress }> {
      const c = await client(credentials());
      const res = await c.allocate();
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      return { c, relayed: res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
    }

    /** A client that has its key (from the 401 challenge) but no allocation yet. */
    async function challenged(c?: TurnClientBase): Promise<TurnClientBase> {
      const ready = c ?? (await client(credentials()));
      expect((await ready.challenge()).errorCode).to.equal(401);
      return ready;
    }

    function expectError(res: StunResponse, code: number, c: TurnClientBase, what: string): void {
      expect(res.errorCode, what).to.equal(code);
      expect(integrityValid(res.raw, c.integrityKey as Buffer), `${what}: signed`).to.equal(true);
    }

    const UNKNOWN = attrs.raw(0x7fff, Buffer.alloc(4));

    it('challenges an unauthenticated Allocate with 401, REALM and NONCE', async () => {
      const c = await client();
      const res = await c.request(Method.Allocate, [attrs.requestedTransport()], { sign: false });
      expect(res.errorCode).to.equal(401);
      expect(res.string(AttrType.Realm)).to.equal(server().realm);
      expect(res.string(AttrType.Nonce)).to.be.a('string').and.not.equal('');
    });

    it('allocates with credentials from turn/credentials.ts, answering with signed relayed and mapped addresses', async () => {
      const c = await client(createTurnCredentials(server().secret, 'alice', 600));
      const res = await c.allocate();
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      expect(res.xorAddress(AttrType.XorRelayedAddress)?.address).to.equal('127.0.0.1');
      expect(res.xorAddress(AttrType.XorMappedAddress)).to.deep.equal(c.localAddress);
      expect(res.uint32(AttrType.Lifetime)).to.be.greaterThan(0);
      expect(integrityValid(res.raw, c.integrityKey as Buffer)).to.equal(true);
    });

    it('refuses expired and forged credentials with 401', async () => {
      const good = createTurnCredentials(server().secret, 'alice', 600);
      const bad = [
        createTurnCredentials(server().secret, 'alice', -60),
        createTurnCredentials('not-the-secret-0123456789-0123456789', 'alice', 600),
        { ...good, username: good.username.replace(':alice', ':mallory') },
      ];
      for (const credentials of bad) {
        const c = await client(credentials);
        expect((await c.allocate()).errorCode, credentials.username).to.equal(401);
      }
    });

    it('relays ChannelData both ways after ChannelBind', async () => {
      const { c, relayed } = await allocated();
      const p = await peer();
      const bind = await c.channelBind(0x4000, p.address);
      expect(bind.isSuccess, `ChannelBind: ${bind.errorCode}`).to.equal(true);
      for (const size of [3, 120, 1000]) {
        const payload = Buffer.alloc(size, size & 0xff);
        c.sendChannelData(0x4000, payload);
        const got = await p.next();
        expect(got.data.equals(payload)).to.equal(true);
        expect(got.from).to.deep.equal(relayed);
        p.send(payload, relayed);
        expect(await c.nextData()).to.deep.equal({ kind: 'channel', channel: 0x4000, data: payload });
      }
    });

    it('relays Send indications and answers with Data indications', async () => {
      const { c, relayed } = await allocated();
      const p = await peer();
      expect((await c.createPermission(CONTRACT_SETTINGS.allowedPeer)).isSuccess).to.equal(true);
      c.sendIndication(p.address, Buffer.from('send'));
      expect((await p.next()).data.toString()).to.equal('send');
      p.send(Buffer.from('data'), relayed);
      expect(await c.nextData()).to.deep.equal({ kind: 'indication', peer: p.address, data: Buffer.from('data') });
    });

    it('refuses permissions and channels towards denied peers with 403', async () => {
      const { c } = await allocated();
      let channel = 0x4000;
      for (const address of CONTRACT_DENIED_PEERS) {
        expect((await c.createPermission(address)).errorCode, address).to.equal(403);
        expect((await c.channelBind(channel++, { address, port: 5000 })).errorCode, address).to.equal(403);
      }
    });

    it('refuses allocation N+1 of one user with 486', async () => {
      const credentials = createTurnCredentials(server().secret, 'quota', 600);
      const live: TurnClientBase[] = [];
      for (let i = 0; i < CONTRACT_SETTINGS.userQuota; i++) {
        const c = await client(credentials);
        expect((await c.allocate()).isSuccess, `allocation ${i + 1}`).to.equal(true);
        live.push(c);
      }
      const extra = await client(credentials);
      expect((await extra.allocate()).errorCode).to.equal(486);
      for (const c of live) expect((await c.refresh(0)).isSuccess).to.equal(true);
    });

    it('answers an Allocate with unknown comprehension-required attributes: 401 without credentials, then 420 listing them', async () => {
      const c = await client(credentials());
      const unknown = [UNKNOWN, attrs.raw(0x7ffe, Buffer.alloc(0))];
      const unauthenticated = await c.request(Method.Allocate, [attrs.requestedTransport(), ...unknown], { sign: false });
      expect(unauthenticated.errorCode).to.equal(401);
      expect(unauthenticated.string(AttrType.Nonce)).to.be.a('string');
      await challenged(c);
      const res = await c.allocate(unknown);
      expectError(res, 420, c, 'Allocate');
      expect(res.unknownAttributes).to.deep.equal([0x7fff, 0x7ffe]);
      // Nothing was allocated: the same 5-tuple allocates once it leaves them out.
      expect((await c.allocate()).isSuccess).to.equal(true);
    });

    it('answers 420 on Binding, Refresh, CreatePermission and ChannelBind, counting attributes of other methods as unknown', async () => {
      const { c } = await allocated();
      const p = await peer();
      const peerAddress = (tid: Buffer) => attrs.xorPeerAddress({ address: CONTRACT_SETTINGS.allowedPeer, port: 0 }, tid);
      const binding = await c.request(Method.Binding, [UNKNOWN], { sign: false });
      expect(binding.errorCode).to.equal(420);
      expect(binding.unknownAttributes).to.deep.equal([0x7fff]);
      const requests: Array<[string, Promise<StunResponse>, number]> = [
        ['Refresh', c.request(Method.Refresh, [attrs.lifetime(600), UNKNOWN]), 0x7fff],
        ['CreatePermission', c.request(Method.CreatePermission, (tid) => [peerAddress(tid), UNKNOWN]), 0x7fff],
        [
          'ChannelBind',
          c.request(Method.ChannelBind, (tid) => [attrs.channelNumber(0x4000), attrs.xorPeerAddress(p.address, tid), UNKNOWN]),
          0x7fff,
        ],
        ['Refresh with EVEN-PORT', c.request(Method.Refresh, [attrs.evenPort(false)]), AttrType.EvenPort],
        [
          'CreatePermission with LIFETIME',
          c.request(Method.CreatePermission, (tid) => [peerAddress(tid), attrs.lifetime(600)]),
          AttrType.Lifetime,
        ],
      ];
      for (const [what, pending, type] of requests) {
        const res = await pending;
        expectError(res, 420, c, what);
        expect(res.unknownAttributes, what).to.deep.equal([type]);
      }
      // The refused ChannelBind bound nothing: the channel is still free.
      expect((await c.channelBind(0x4000, p.address)).isSuccess).to.equal(true);
    });

    it('allocates with REQUESTED-ADDRESS-FAMILY IPv4, answers IPv6 and undefined families with 440, and a Refresh naming IPv6 with 443', async () => {
      for (const family of [0x02, 0x07]) {
        const c = await challenged();
        expectError(await c.allocate([attrs.requestedAddressFamily(family)]), 440, c, `family ${family}`);
      }
      const c = await challenged();
      const res = await c.allocate([attrs.requestedAddressFamily(0x01)]);
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      expect(res.xorAddress(AttrType.XorRelayedAddress)?.address).to.equal('127.0.0.1');
      expectError(await c.request(Method.Refresh, [attrs.lifetime(600), attrs.requestedAddressFamily(0x02)]), 443, c, 'Refresh IPv6');
      expect((await c.request(Method.Refresh, [attrs.lifetime(600), attrs.requestedAddressFamily(0x01)])).isSuccess).to.equal(true);
    });

    it('reserves the next port for EVEN-PORT with the R bit, and allocates it for the RESERVATION-TOKEN', async () => {
      const rtpCredentials = credentials();
      const rtp = await client(rtpCredentials);
      const first = await rtp.allocate([attrs.evenPort(true)]);
      expect(first.isSuccess, `allocate: ${first.errorCode}`).to.equal(true);
      expect(integrityValid(first.raw, rtp.integrityKey as Buffer)).to.equal(true);
      const rtpAddress = first.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
      expect(rtpAddress.port % 2).to.equal(0);
      const token = first.attr(AttrType.ReservationToken) as Buffer;
      expect(token).to.have.length(8);

      // The RTCP allocation: another 5-tuple of the same user.
      const rtcp = await client(rtpCredentials);
      const second = await rtcp.allocate([attrs.reservationToken(token)]);
      expect(second.isSuccess, `allocate with token: ${second.errorCode}`).to.equal(true);
      const rtcpAddress = second.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
      expect(rtcpAddress).to.deep.equal({ address: rtpAddress.address, port: rtpAddress.port + 1 });
      const p = await peer();
      expect((await rtcp.channelBind(0x4000, p.address)).isSuccess).to.equal(true);
      rtcp.sendChannelData(0x4000, Buffer.from('rtcp'));
      const got = await p.next();
      expect(got.data.toString()).to.equal('rtcp');
      expect(got.from).to.deep.equal(rtcpAddress);
      p.send(Buffer.from('rtcp back'), rtcpAddress);
      expect(await rtcp.nextData()).to.deep.equal({ kind: 'channel', channel: 0x4000, data: Buffer.from('rtcp back') });

      // A token is good for one allocation.
      const late = await challenged();
      expectError(await late.allocate([attrs.reservationToken(token)]), 404, late, 'spent token');
    });

    it('refuses RESERVATION-TOKEN with EVEN-PORT or of the wrong length (400), and a token it never gave (404, as coturn)', async () => {
      const token = Buffer.from('0123456789abcdef', 'hex');
      const cases: Array<[string, Parameters<TurnClientBase['allocate']>[0], number]> = [
        ['EVEN-PORT, then RESERVATION-TOKEN', [attrs.evenPort(false), attrs.reservationToken(token)], 400],
        ['RESERVATION-TOKEN, then EVEN-PORT', [attrs.reservationToken(token), attrs.evenPort(true)], 400],
        ['4-byte token', [attrs.reservationToken(token.subarray(0, 4))], 400],
        ['REQUESTED-ADDRESS-FAMILY with a token', [attrs.requestedAddressFamily(0x01), attrs.reservationToken(token)], 400],
        ['unknown token', [attrs.reservationToken(token)], 404],
      ];
      for (const [what, extra, code] of cases) {
        const c = await challenged();
        expectError(await c.allocate(extra), code, c, what);
      }
    });

    it('answers request methods it does not serve: 401 without credentials, 400 with them', async () => {
      const { c } = await allocated();
      expect((await c.request(0x050, [], { sign: false })).errorCode).to.equal(401);
      for (const method of [0x050, Method.Send, Method.Data]) {
        expectError(await c.request(method, []), 400, c, `method 0x${method.toString(16)}`);
      }
    });

    it('answers malformed attribute values with 400', async () => {
      const c = await challenged();
      expectError(await c.allocate([attrs.raw(AttrType.Lifetime, Buffer.alloc(0))]), 400, c, 'Allocate: empty LIFETIME');
      expectError(
        await c.request(Method.Allocate, [attrs.raw(AttrType.RequestedTransport, Buffer.alloc(0))]),
        400,
        c,
        'Allocate: empty REQUESTED-TRANSPORT',
      );
      expect((await c.allocate()).isSuccess).to.equal(true);
      expectError(await c.request(Method.Refresh, [attrs.raw(AttrType.Lifetime, Buffer.alloc(0))]), 400, c, 'Refresh: empty LIFETIME');
      const p = await peer();
      const bind = await c.request(Method.ChannelBind, (tid) => [
        attrs.raw(AttrType.ChannelNumber, Buffer.alloc(0)),
        attrs.xorPeerAddress(p.address, tid),
      ]);
      expectError(bind, 400, c, 'ChannelBind: empty CHANNEL-NUMBER');
    });

    it('accepts a Refresh with LIFETIME 0 (deallocation)', async () => {
      const { c } = await allocated();
      const res = await c.refresh(0);
      expect(res.isSuccess).to.equal(true);
      expect(res.uint32(AttrType.Lifetime)).to.equal(0);
      expect(integrityValid(res.raw, c.integrityKey as Buffer)).to.equal(true);
    });
  });
}

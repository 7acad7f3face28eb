/**
 * The bundled TURN server over real UDP sockets on 127.0.0.1, driven by the raw STUN/TURN
 * client in test/helpers/stun.ts: lifecycle, authentication, allocations, relaying
 * (ChannelData and Send/Data indications, both directions), quotas and metrics.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { createLogger } from '../../server/logger.js';
import { createTurnCredentials, type TurnCredentials } from '../../turn/credentials.js';
import { TurnServer } from '../../turn/TurnServer.js';
import {
  AttrType,
  attrs,
  Class,
  encodeStun,
  integrityValid,
  longTermKey,
  Method,
  TurnClient,
  UdpPeer,
  type TransportAddress,
} from '../helpers/stun.js';
import { expectRelayBothWays, relayThread, startTurn, TURN_REALM, TURN_SECRET, turnSettings, waitFor } from './support.js';

const CHANNEL = 0x4000;

describe('TurnServer', function () {
  this.timeout(30_000);

  const clients: TurnClient[] = [];
  const peers: UdpPeer[] = [];

  function creds(userId = 'alice', ttlS = 600): TurnCredentials {
    return createTurnCredentials(TURN_SECRET, userId, ttlS);
  }

  async function client(server: TurnServer, credentials?: { username: string; credential: string }): Promise<TurnClient> {
    const c = await TurnClient.open({ address: '127.0.0.1', port: server.port }, credentials);
    clients.push(c);
    return c;
  }

  async function peer(address = '127.0.0.1'): Promise<UdpPeer> {
    const p = await UdpPeer.open(address);
    peers.push(p);
    return p;
  }

  /** A client with a live allocation; returns it and its relayed address. */
  async function allocated(server: TurnServer, userId = 'alice'): Promise<{ c: TurnClient; relayed: TransportAddress }> {
    const c = await client(server, creds(userId));
    const res = await c.allocate();
    expect(res.errorCode, 'allocate').to.equal(undefined);
    return { c, relayed: res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  describe('lifecycle', () => {
    it('listens on an ephemeral port with TURN_PORT=0 and closes idempotently', async () => {
      const server = await startTurn();
      try {
        expect(server.port).to.be.within(1, 65535);
        // Something answers there: a STUN Binding request (no auth needed) gets our address back.
        const c = await client(server);
        const res = await c.request(Method.Binding, [], { sign: false });
        expect(res.isSuccess).to.equal(true);
        expect(res.xorAddress(AttrType.XorMappedAddress)).to.deep.equal(c.localAddress);
        expect(server.iceServers('alice')[0]?.urls).to.deep.equal([
          `turn:127.0.0.1:${server.portFor('alice')}?transport=udp`,
          `turn:127.0.0.1:${server.portFor('alice')}?transport=tcp`,
        ]);
      } finally {
        await Promise.all([server.close(), server.close()]);
        await server.close();
      }
    });

    it('rejects start() when the port is taken, and when TURN is disabled', async () => {
      const squatter = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => squatter.bind(0, '127.0.0.1', () => resolve()));
      const taken = squatter.address().port;
      const server = new TurnServer({
        config: turnSettings({ TURN_PORT: String(taken), TURN_WORKERS: '1' }),
        logger: createLogger('silent'),
      });
      // Two workers, the second one's port taken: start() fails and the first worker stops too
      // (its port is free again). The relay range moves off the ephemeral ports the ports came from.
      const below = taken - 1;
      const probe = dgram.createSocket('udp4');
      const belowFree = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        probe.bind(below, '127.0.0.1', () => resolve(true));
      });
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const pair = new TurnServer({
        config: turnSettings({ TURN_PORT: String(below), TURN_WORKERS: '2', TURN_MIN_PORT: '1024', TURN_MAX_PORT: '2047' }),
        logger: createLogger('silent'),
      });
      try {
        let error: Error | undefined;
        await server.start().catch((e: Error) => (error = e));
        expect(error?.message).to.match(/EADDRINUSE/);
        if (belowFree) {
          let pairError: Error | undefined;
          await pair.start().catch((e: Error) => (pairError = e));
          expect(pairError?.message, "the second worker's port is taken").to.match(/EADDRINUSE/);
          const again = dgram.createSocket('udp4');
          await new Promise<void>((resolve, reject) => {
            again.once('error', reject);
            again.bind(below, '127.0.0.1', () => resolve());
          });
          await new Promise<void>((resolve) => again.close(() => resolve()));
        } else console.log(`      port ${below} was busy: the two-worker case is not run`);
      } finally {
        await Promise.all([server.close(), pair.close()]);
        await new Promise<void>((resolve) => squatter.close(() => resolve()));
      }
      const disabled = new TurnServer({ config: testConfig({ TURN_ENABLED: 'false' }).turn, logger: createLogger('silent') });
      let error: Error | undefined;
      await disabled.start().catch((e: Error) => (error = e));
      expect(error?.message).to.match(/TURN_ENABLED/);
      await disabled.close();
    });
    it('restarts a dead relay worker on the same port', async () => {
      const server = await startTurn();
      try {
        const port = server.port;
        // Simulate a crash: kill the worker thread from outside.
        const worker = relayThread(server);
        expect(worker, 'the relay runs in a worker thread').to.be.instanceOf(Worker);
        await worker?.terminate();
        const c = await client(server, creds('alice'));
        await waitFor(
          async () => (await c.allocate().catch(() => undefined))?.isSuccess === true,
          'an allocation on the restarted relay',
          20_000,
        );
        expect(server.port).to.equal(port);
        expect(server.stats().activeAllocations).to.equal(1);
      } finally {
        await server.close();
      }
    });

    it('logs refusals by reason, without credentials', async () => {
      const lines: string[] = [];
      const logger = createLogger('debug', { write: (line: string) => void lines.push(line) });
      const server = new TurnServer({ config: turnSettings({ TURN_MAX_ALLOCATIONS_PER_USER: '1' }), logger });
      await server.start();
      const secrets: string[] = [TURN_SECRET];
      try {
        const good = creds('log-user');
        const forged = { ...good, credential: createTurnCredentials('wrong-secret-0123456789-0123456789', 'log-user', 600).credential };
        const expired = creds('log-user', -5);
        secrets.push(good.username, good.credential, forged.credential, expired.username, expired.credential);
        const owner = await client(server, good);
        expect((await owner.allocate()).isSuccess).to.equal(true);
        expect((await owner.createPermission('169.254.169.254')).errorCode).to.equal(403);
        expect((await (await client(server, good)).allocate()).errorCode).to.equal(486);
        expect((await (await client(server, forged)).allocate()).errorCode).to.equal(401);
        expect((await (await client(server, expired)).allocate()).errorCode).to.equal(401);
        secrets.push(owner.nonce as string);
        const reasons = (): unknown[] => lines.map((l) => JSON.parse(l) as { reason?: string }).map((l) => l.reason);
        await waitFor(
          () => ['peer_forbidden', 'quota_user', 'credentials_invalid', 'credentials_expired'].every((r) => reasons().includes(r)),
          'one log line per refusal reason',
        );
        const forbidden = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reason === 'peer_forbidden');
        expect(forbidden).to.include({ level: 40, module: 'turn', user: 'log-user', peer: '169.254.169.254', class: 'link-local' });
      } finally {
        await server.close();
      }
      const all = lines.join('\n');
      for (const secret of secrets) expect(all, 'a credential, nonce or the secret in the logs').to.not.include(secret);
    });
  });

  describe('authentication', () => {
    let server: TurnServer;
    before(async () => {
      server = await startTurn();
    });
    after(async () => {
      await server?.close();
    });

    it('answers an unauthenticated Allocate with 401, REALM and a fresh random NONCE', async () => {
      const c = await client(server);
      const first = await c.request(Method.Allocate, [attrs.requestedTransport()], { sign: false });
      const second = await c.request(Method.Allocate, [attrs.requestedTransport()], { sign: false });
      for (const res of [first, second]) {
        expect(res.message.cls).to.equal(Class.Error);
        expect(res.errorCode).to.equal(401);
        expect(res.string(AttrType.Realm)).to.equal(TURN_REALM);
        expect(res.string(AttrType.Nonce)).to.match(/^[0-9a-f]{56}$/);
        expect(res.attr(AttrType.MessageIntegrity)).to.equal(undefined);
      }
      expect(first.string(AttrType.Nonce)).to.not.equal(second.string(AttrType.Nonce));
    });

    it('allocates with valid REST API credentials: XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME, signed', async () => {
      const c = await client(server, creds('alice'));
      const res = await c.allocate();
      expect(res.isSuccess, `error ${res.errorCode}`).to.equal(true);
      const relayed = res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
      expect(relayed.address).to.equal('127.0.0.1');
      expect(relayed.port).to.be.within(49152, 65535);
      expect(res.xorAddress(AttrType.XorMappedAddress)).to.deep.equal(c.localAddress);
      expect(res.uint32(AttrType.Lifetime)).to.equal(600);
      expect(integrityValid(res.raw, c.integrityKey as Buffer)).to.equal(true);
      await waitFor(() => server.stats().activeAllocations >= 1, 'activeAllocations');
    });

    it('refuses expired credentials with 401 (and a new challenge)', async () => {
      const before = server.stats().refusals.credentials_expired;
      const c = await client(server, creds('alice', -5));
      const res = await c.allocate();
      expect(res.errorCode).to.equal(401);
      expect(res.string(AttrType.Realm)).to.equal(TURN_REALM);
      expect(res.string(AttrType.Nonce)).to.match(/^[0-9a-f]{56}$/);
      await waitFor(() => server.stats().refusals.credentials_expired > before, 'credentials_expired counted');
    });

    it('refuses forged credentials with 401: another secret, a changed user id, a changed expiry', async () => {
      const before = server.stats().refusals.credentials_invalid;
      const good = creds('alice');
      const forgeries = [
        createTurnCredentials('some-other-secret-0123456789-0123456789', 'alice', 600),
        { ...good, username: good.username.replace(':alice', ':mallory') },
        { ...good, username: `${good.expiresAt + 86_400}:alice` },
      ];
      for (const forged of forgeries) {
        const c = await client(server, forged);
        const res = await c.allocate();
        expect(res.errorCode, forged.username).to.equal(401);
        expect(res.string(AttrType.Nonce)).to.match(/^[0-9a-f]{56}$/);
      }
      await waitFor(() => server.stats().refusals.credentials_invalid >= before + 3, 'credentials_invalid counted');
    });

    it('has no static users and no "none" auth', async () => {
      for (const credentials of [
        { username: 'username', credential: 'password' },
        { username: 'alice', credential: '' },
      ]) {
        const c = await client(server, credentials);
        expect((await c.allocate()).errorCode).to.equal(401);
      }
    });

    it('authenticates every request, not just Allocate', async () => {
      const { c } = await allocated(server);
      const unsigned = await c.request(Method.CreatePermission, (tid) => [attrs.xorPeerAddress({ address: '1.0.0.9', port: 0 }, tid)], {
        sign: false,
      });
      expect(unsigned.errorCode).to.equal(401);
      const refresh = await c.request(Method.Refresh, [attrs.lifetime(600)], { sign: false });
      expect(refresh.errorCode).to.equal(401);
      // Valid credentials of another user, on this allocation's 5-tuple: 441 Wrong Credentials.
      const mallory = creds('mallory');
      const tid = randomBytes(12);
      const raw = encodeStun(
        {
          method: Method.Refresh,
          cls: Class.Request,
          transactionId: tid,
          attributes: [
            attrs.lifetime(600),
            attrs.username(mallory.username),
            attrs.realm(c.realm as string),
            attrs.nonce(c.nonce as string),
          ],
        },
        { key: longTermKey(mallory.username, c.realm as string, mallory.credential) },
      );
      expect((await c.exchange(tid, raw)).errorCode).to.equal(441);
      // The owner still can (a public peer: this server has the default policy).
      expect((await c.createPermission('1.0.0.9')).isSuccess).to.equal(true);
    });

    it('stops accepting requests once the credentials expire, even on a live allocation', async () => {
      const c = await client(server, creds('shortlived', 6));
      const res = await c.allocate();
      expect(res.isSuccess, `error ${res.errorCode}`).to.equal(true);
      await waitFor(async () => (await c.refresh(600)).errorCode === 401, 'a 401 on Refresh after the credentials expire', 15_000);
    });

    it('ignores unknown comprehension-optional attributes instead of dropping the request', async () => {
      const c = await client(server, creds('alice'));
      const res = await c.allocate([attrs.raw(0xc057, Buffer.from([0, 1, 0, 0])), attrs.software('test-client')]);
      expect(res.isSuccess, `error ${res.errorCode}`).to.equal(true);
    });

    it('accepts requests carrying FINGERPRINT and answers with one', async () => {
      const c = await client(server, creds('alice'));
      expect((await c.allocate()).isSuccess).to.equal(true);
      const res = await c.request(Method.Refresh, [attrs.lifetime(600)], { fingerprint: true });
      expect(res.isSuccess).to.equal(true);
      expect(res.message.attributes.at(-1)?.type).to.equal(AttrType.Fingerprint);
    });
  });

  describe('allocations and relaying', () => {
    let server: TurnServer;
    before(async () => {
      server = await startTurn({ TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8', TURN_MAX_ALLOCATION_LIFETIME_S: '900' });
    });
    after(async () => {
      await server?.close();
    });

    it("relays ChannelData to the peer and the peer's answer back as ChannelData", async () => {
      const { c, relayed } = await allocated(server);
      const p = await peer();
      const bind = await c.channelBind(CHANNEL, p.address);
      expect(bind.isSuccess, `error ${bind.errorCode}`).to.equal(true);
      expect(integrityValid(bind.raw, c.integrityKey as Buffer)).to.equal(true);
      const before = server.stats();

      for (const [size, pad] of [
        [1, true],
        [5, false],
        [100, true],
        [1199, false],
        [1200, true],
      ] as const) {
        const payload = randomBytes(size);
        c.sendChannelData(CHANNEL, payload, pad);
        const got = await p.next();
        expect(got.data.equals(payload), `client -> peer, ${size} bytes`).to.equal(true);
        expect(got.from).to.deep.equal(relayed);

        const answer = randomBytes(size);
        p.send(answer, relayed);
        const back = await c.nextData();
        expect(back.kind).to.equal('channel');
        if (back.kind !== 'channel') return;
        expect(back.channel).to.equal(CHANNEL);
        expect(back.data.equals(answer), `peer -> client, ${size} bytes`).to.equal(true);
      }
      await waitFor(() => server.stats().relayedPackets >= before.relayedPackets + 10, 'relayedPackets');
      const after = server.stats();
      expect(after.relayedBytes - before.relayedBytes).to.equal(2 * (1 + 5 + 100 + 1199 + 1200));
    });

    it('relays Send indications and answers with Data indications naming the peer', async () => {
      const { c, relayed } = await allocated(server);
      const p = await peer();
      expect((await c.createPermission('127.0.0.1')).isSuccess).to.equal(true);
      c.sendIndication(p.address, Buffer.from('via send indication'));
      const got = await p.next();
      expect(got.data.toString()).to.equal('via send indication');
      expect(got.from).to.deep.equal(relayed);
      p.send(Buffer.from('via data indication!'), relayed);
      const back = await c.nextData();
      expect(back).to.deep.equal({ kind: 'indication', peer: p.address, data: Buffer.from('via data indication!') });
    });

    it('uses ChannelData only for the bound peer port, Data indications for other ports of a permitted IP', async () => {
      const { c, relayed } = await allocated(server);
      const bound = await peer();
      const other = await peer();
      expect((await c.channelBind(CHANNEL + 1, bound.address)).isSuccess).to.equal(true);
      other.send(Buffer.from('from other'), relayed);
      expect(await c.nextData()).to.deep.equal({ kind: 'indication', peer: other.address, data: Buffer.from('from other') });
      bound.send(Buffer.from('from bound'), relayed);
      expect(await c.nextData()).to.deep.equal({ kind: 'channel', channel: CHANNEL + 1, data: Buffer.from('from bound') });
    });

    it('drops data without a permission or channel, in both directions', async () => {
      const { c, relayed } = await allocated(server);
      const p = await peer();
      const before = server.stats().refusals;
      // Nothing permitted yet: these must not arrive.
      c.sendIndication(p.address, Buffer.from('too early'));
      c.sendChannelData(CHANNEL, Buffer.from('unbound channel'));
      p.send(Buffer.from('unsolicited'), relayed);
      await waitFor(() => {
        const now = server.stats().refusals;
        return now.no_permission >= before.no_permission + 2 && now.peer_not_permitted >= before.peer_not_permitted + 1;
      }, 'the three drops to be counted');
      // Datagrams are ordered on loopback per socket pair: the first thing through is the permitted one.
      expect((await c.createPermission('127.0.0.1')).isSuccess).to.equal(true);
      c.sendIndication(p.address, Buffer.from('permitted'));
      expect((await p.next()).data.toString()).to.equal('permitted');
      p.send(Buffer.from('answer'), relayed);
      expect((await c.nextData()).data.toString()).to.equal('answer');
    });

    it('relays between two allocations of this server (relay to relay)', async () => {
      const a = await allocated(server, 'alice');
      const b = await allocated(server, 'bob');
      await expectRelayBothWays(a, b);
    });

    it('caps the lifetime at TURN_MAX_ALLOCATION_LIFETIME_S, refreshes, and deallocates on LIFETIME 0', async () => {
      const c = await client(server, creds('alice'));
      const res = await c.allocate([attrs.lifetime(99_999)]);
      expect(res.uint32(AttrType.Lifetime)).to.equal(900);
      const active = server.stats().activeAllocations;
      expect((await c.refresh(99_999)).uint32(AttrType.Lifetime)).to.equal(900);
      expect((await c.refresh(700)).uint32(AttrType.Lifetime)).to.equal(700);
      // node-turn's own Refresh would have deleted the allocation; it must still be there.
      expect((await c.createPermission('127.0.0.1')).isSuccess).to.equal(true);
      const gone = await c.refresh(0);
      expect(gone.isSuccess).to.equal(true);
      expect(gone.uint32(AttrType.Lifetime)).to.equal(0);
      await waitFor(() => server.stats().activeAllocations === active - 1, 'the allocation to be released');
      expect((await c.createPermission('127.0.0.1')).errorCode).to.equal(437);
    });

    it('answers an Allocate retransmission with the same allocation, a new Allocate on the 5-tuple with 437', async () => {
      const c = await client(server, creds('alice'));
      const first = await c.allocate();
      expect(first.isSuccess).to.equal(true);
      const tid = randomBytes(12);
      expect((await c.exchange(tid, c.buildRequest(Method.Allocate, [attrs.requestedTransport()], tid))).errorCode).to.equal(437);
      // A retransmission (same transaction id) of the original request gets the original answer.
      const originalTid = first.message.transactionId;
      const again = await c.exchange(originalTid, c.buildRequest(Method.Allocate, [attrs.requestedTransport()], originalTid));
      expect(again.isSuccess).to.equal(true);
      expect(again.xorAddress(AttrType.XorRelayedAddress)).to.deep.equal(first.xorAddress(AttrType.XorRelayedAddress));
    });

    it('survives hostile input: port 0 peers, truncated and garbage datagrams', async () => {
      const { c, relayed } = await allocated(server);
      expect((await c.channelBind(0x4000, { address: '127.0.0.1', port: 0 })).errorCode).to.equal(403);
      expect((await c.createPermission('127.0.0.1')).isSuccess).to.equal(true);
      c.sendIndication({ address: '127.0.0.1', port: 0 }, Buffer.from('port zero'));
      for (const junk of [
        Buffer.from([0x40]),
        Buffer.from([0x40, 0x00, 0xff, 0xff, 1]),
        Buffer.from([0x00, 0x16, 0x00, 0x08]),
        randomBytes(19),
        Buffer.alloc(20),
        randomBytes(1500),
      ]) {
        c.sendRaw(junk);
      }
      const truncated = Buffer.from(c.buildRequest(Method.Refresh, [attrs.lifetime(600)], randomBytes(12)).subarray(0, 30));
      truncated.writeUInt16BE(200, 2);
      c.sendRaw(truncated);
      // Still the same relay, same allocation.
      const p = await peer();
      expect((await c.channelBind(0x4001, p.address)).isSuccess).to.equal(true);
      c.sendChannelData(0x4001, Buffer.from('still here'));
      expect((await p.next()).data.toString()).to.equal('still here');
      p.send(Buffer.from('and answering'), relayed);
      expect((await c.nextData()).data.toString()).to.equal('and answering');
    });

    it('honours EVEN-PORT with an even relay port', async () => {
      for (let i = 0; i < 3; i++) {
        const c = await client(server, creds('alice'));
        const res = await c.allocate([attrs.raw(AttrType.EvenPort, Buffer.from([0x00]))]);
        expect(res.isSuccess, `error ${res.errorCode}`).to.equal(true);
        expect((res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress).port % 2).to.equal(0);
        expect((await c.refresh(0)).isSuccess).to.equal(true);
      }
    });

    it('refuses relaying transports other than UDP (442) and a missing REQUESTED-TRANSPORT (400)', async () => {
      const c = await client(server, creds('alice'));
      expect((await c.challenge()).errorCode).to.equal(401);
      expect((await c.request(Method.Allocate, [attrs.requestedTransport(6)])).errorCode).to.equal(442);
      expect((await c.request(Method.Allocate, [])).errorCode).to.equal(400);
      expect((await c.allocate()).isSuccess).to.equal(true);
    });
  });

  describe('quotas', () => {
    let server: TurnServer;
    before(async () => {
      server = await startTurn({ TURN_MAX_ALLOCATIONS_PER_USER: '2', TURN_MAX_ALLOCATIONS: '4' });
    });
    after(async () => {
      await server?.close();
    });

    it('answers allocation N+1 for one user with 486, other users unaffected, and frees the slot on release', async () => {
      const before = server.stats().refusals.quota_user;
      const first = await client(server, creds('quota-user'));
      expect((await first.allocate()).isSuccess).to.equal(true);
      const second = await client(server, creds('quota-user'));
      expect((await second.allocate()).isSuccess).to.equal(true);
      const third = await client(server, creds('quota-user'));
      const refused = await third.allocate();
      expect(refused.errorCode).to.equal(486);
      expect(integrityValid(refused.raw, third.integrityKey as Buffer)).to.equal(true);
      await waitFor(() => server.stats().refusals.quota_user === before + 1, 'quota_user counted');

      const other = await client(server, creds('someone-else'));
      expect((await other.allocate()).isSuccess).to.equal(true);

      expect((await first.refresh(0)).isSuccess).to.equal(true);
      const retry = await client(server, creds('quota-user'));
      expect((await retry.allocate()).isSuccess).to.equal(true);
      for (const c of [second, other, retry]) expect((await c.refresh(0)).isSuccess).to.equal(true);
    });

    it('answers with 486 once TURN_MAX_ALLOCATIONS are live, whoever asks', async () => {
      await waitFor(() => server.stats().activeAllocations === 0, 'a clean slate');
      const live: TurnClient[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await client(server, creds(`user-${i}`));
        expect((await c.allocate()).isSuccess).to.equal(true);
        live.push(c);
      }
      const extra = await client(server, creds('user-4'));
      expect((await extra.allocate()).errorCode).to.equal(486);
      await waitFor(() => server.stats().refusals.quota_total >= 1, 'quota_total counted');
      expect(server.stats().activeAllocations).to.equal(4);
      for (const c of live) expect((await c.refresh(0)).isSuccess).to.equal(true);
      await waitFor(() => server.stats().activeAllocations === 0, 'all released');
    });
  });
});

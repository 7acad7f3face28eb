/**
 * The contract every TURN backend Switchboard hands out must meet, run against the bundled
 * relay (TurnServer.contract.test.ts) and coturn (coturn.test.ts): REST API credentials from
 * turn/credentials.ts, 401 for missing, expired and forged ones, data relayed both ways
 * (ChannelData and Send/Data indications), denied peers refused with 403, the per-user quota.
 */
import { expect } from 'chai';
import { createTurnCredentials } from '../../turn/credentials.js';
import { AttrType, integrityValid, Method, TurnClient, UdpPeer, attrs, type TransportAddress } from '../helpers/stun.js';

export interface TurnBackend {
  /** Where clients send (127.0.0.1). */
  address: string;
  port: number;
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
export const CONTRACT_DENIED_PEERS = ['10.0.0.1', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254', '224.0.0.1', '0.1.2.3', '240.0.0.1'];

/**
 * Registers the contract suite. `start` runs in before() and may call `this.skip()` (after
 * printing why) when the backend is unavailable.
 */
export function describeTurnContract(name: string, start: (this: Mocha.Context) => Promise<TurnBackend>): void {
  describe(`TURN backend contract: ${name}`, function () {
    this.timeout(30_000);

    let backend: TurnBackend | undefined;
    const clients: TurnClient[] = [];
    const peers: UdpPeer[] = [];

    before(async function () {
      backend = await start.call(this);
    });

    afterEach(async () => {
      // Release allocations so the per-user quota starts clean in the next test.
      await Promise.all(clients.map((c) => (c.integrityKey ? c.refresh(0).catch(() => undefined) : undefined)));
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(peers.splice(0).map((p) => p.close()));
    });

    after(async () => {
      await backend?.close();
    });

    function server(): TurnBackend {
      if (!backend) throw new Error('backend not started');
      return backend;
    }

    async function client(credentials?: { username: string; credential: string }): Promise<TurnClient> {
      const c = await TurnClient.open({ address: server().address, port: server().port }, credentials);
      clients.push(c);
      return c;
    }

    async function peer(): Promise<UdpPeer> {
      const p = await UdpPeer.open();
      peers.push(p);
      return p;
    }

    let users = 0;
    async function allocated(): Promise<{ c: TurnClient; relayed: TransportAddress }> {
      const c = await client(createTurnCredentials(server().secret, `user-${++users}`, 600));
      const res = await c.allocate();
      expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
      return { c, relayed: res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
    }

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
      const live: TurnClient[] = [];
      for (let i = 0; i < CONTRACT_SETTINGS.userQuota; i++) {
        const c = await client(credentials);
        expect((await c.allocate()).isSuccess, `allocation ${i + 1}`).to.equal(true);
        live.push(c);
      }
      const extra = await client(credentials);
      expect((await extra.allocate()).errorCode).to.equal(486);
      for (const c of live) expect((await c.refresh(0)).isSuccess).to.equal(true);
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

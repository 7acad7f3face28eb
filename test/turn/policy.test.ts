/**
 * The peer policy as a client meets it: CreatePermission, ChannelBind and Send towards every
 * denied address of the shared table (test/net/addressTable.ts) get 403 (or are dropped, for Send) under the default policy, and go
 * through once TURN_ALLOWED_PEER_CIDRS lists the range.
 */
import dgram from 'node:dgram';
import { expect } from 'chai';
import { createTurnCredentials } from '../../turn/credentials.js';
import { canonicalIp, classifyAddress, interfaceAddresses } from '../../turn/PeerPolicy.js';
import type { TurnServer } from '../../turn/TurnServer.js';
import { AttrType, integrityValid, TurnClient, UdpPeer, type TransportAddress } from '../helpers/stun.js';
import { DENIED_CASES } from '../net/addressTable.js';
import { startTurn, TURN_SECRET, waitFor } from './support.js';

// A public address: this server's own addresses are refused even outside the denied ranges.
const EXTERNAL_IP = '1.0.0.7';

describe('TURN peer policy over the wire', function () {
  this.timeout(30_000);

  const clients: TurnClient[] = [];
  const peers: UdpPeer[] = [];

  async function allocated(server: TurnServer, host = '127.0.0.1'): Promise<{ c: TurnClient; relayed: TransportAddress }> {
    const c = await TurnClient.open({ address: host, port: server.port }, createTurnCredentials(TURN_SECRET, 'policy-user', 600));
    clients.push(c);
    const res = await c.allocate();
    expect(res.isSuccess, `allocate: ${res.errorCode}`).to.equal(true);
    return { c, relayed: res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  describe('default policy', () => {
    let server: TurnServer;
    let c: TurnClient;
    before(async () => {
      server = await startTurn({ TURN_EXTERNAL_IP: EXTERNAL_IP });
    });
    beforeEach(async () => {
      ({ c } = await allocated(server));
    });
    after(async () => {
      await server?.close();
    });

    it('refuses CreatePermission to every denied address of the table (IPv4-carrying IPv6 forms included) with a signed 403', async () => {
      for (const { address, verdict } of DENIED_CASES) {
        const res = await c.createPermission(address);
        expect(res.errorCode, `${address} (${verdict})`).to.equal(403);
        expect(integrityValid(res.raw, c.integrityKey as Buffer)).to.equal(true);
      }
    });

    it('refuses ChannelBind to every denied address of the table with 403', async () => {
      let channel = 0x4000;
      for (const { address, verdict } of DENIED_CASES) {
        const res = await c.channelBind(channel++, { address, port: 5000 });
        expect(res.errorCode, `${address} (${verdict})`).to.equal(403);
      }
    });

    it('drops Send indications towards denied peers and counts them', async () => {
      const before = server.stats().refusals.peer_forbidden;
      const targets = ['127.0.0.1', '10.0.0.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', '64:ff9b::7f00:1', '198.51.100.1'];
      for (const address of targets) c.sendIndication({ address, port: 9 }, Buffer.from('x'));
      await waitFor(() => server.stats().refusals.peer_forbidden >= before + targets.length, 'peer_forbidden counted');
    });

    it('is all or nothing: one denied peer in a CreatePermission installs none', async () => {
      expect((await c.createPermission('1.0.0.9', '10.0.0.1')).errorCode).to.equal(403);
      const before = server.stats().refusals.no_permission;
      c.sendIndication({ address: '1.0.0.9', port: 9 }, Buffer.from('x'));
      await waitFor(() => server.stats().refusals.no_permission === before + 1, 'no_permission counted');
    });

    it("denies the server's own address except its relay ports (relay to relay stays possible)", async () => {
      expect((await c.createPermission(EXTERNAL_IP)).isSuccess).to.equal(true);
      expect((await c.channelBind(0x4000, { address: EXTERNAL_IP, port: 22 })).errorCode).to.equal(403);
      expect((await c.channelBind(0x4001, { address: EXTERNAL_IP, port: server.port })).errorCode).to.equal(403);
      expect((await c.channelBind(0x4002, { address: EXTERNAL_IP, port: 50000 })).isSuccess).to.equal(true);
      const before = server.stats().refusals.peer_forbidden;
      c.sendIndication({ address: EXTERNAL_IP, port: 8080 }, Buffer.from('x'));
      await waitFor(() => server.stats().refusals.peer_forbidden === before + 1, 'peer_forbidden counted for a non-relay port');
    });

    it("denies this host's interface addresses", async function () {
      const own = interfaceAddresses().find((a) => !a.includes(':') && classifyAddress(a) === null);
      if (!own) {
        console.log('      skipped: this host has no interface address outside the denied classes');
        this.skip();
      }
      expect((await c.createPermission(own as string)).errorCode).to.equal(403);
    });

    it('allows public peers', async () => {
      expect((await c.createPermission('1.0.0.9', '8.8.8.8')).isSuccess).to.equal(true);
      expect((await c.channelBind(0x4000, { address: '1.0.0.9', port: 3478 })).isSuccess).to.equal(true);
    });
  });

  describe('with TURN_ALLOWED_PEER_CIDRS', () => {
    const v4 = DENIED_CASES.filter((s) => !s.address.includes(':'));

    it('accepts every denied IPv4 address once its range is allow-listed, and relays there', async () => {
      const cidrs = [...new Set(v4.map((s) => s.cidr))].join(',');
      const server = await startTurn({ TURN_ALLOWED_PEER_CIDRS: cidrs });
      try {
        const { c, relayed } = await allocated(server);
        let channel = 0x4000;
        for (const { address, verdict } of v4) {
          expect((await c.createPermission(address)).isSuccess, `${address} (${verdict})`).to.equal(true);
          expect((await c.channelBind(channel++, { address, port: 5000 })).isSuccess, `${address} (${verdict})`).to.equal(true);
        }
        const p = await UdpPeer.open();
        peers.push(p);
        c.sendIndication(p.address, Buffer.from('allowed'));
        expect((await p.next()).data.toString()).to.equal('allowed');
        p.send(Buffer.from('back'), relayed);
        expect((await c.nextData()).data.toString()).to.equal('back');
      } finally {
        await server.close();
      }
    });

    it('accepts every denied IPv6 address (IPv4-carrying forms included) once allow-listed, on an IPv6 relay, and relays there', async function () {
      const probe = dgram.createSocket('udp6');
      const hasIpv6 = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        probe.bind(0, '::1', () => resolve(true));
      });
      probe.close();
      if (!hasIpv6) {
        console.log('      skipped: no IPv6 loopback (::1) on this host');
        this.skip();
      }
      const cidrs = [...new Set(DENIED_CASES.map((s) => s.cidr))].join(',');
      const server = await startTurn({ TURN_LISTEN_IP: '::1', TURN_RELAY_IP: '::1', TURN_ALLOWED_PEER_CIDRS: cidrs });
      try {
        const { c, relayed } = await allocated(server, '::1');
        expect(canonicalIp(relayed.address)).to.equal('::1');
        for (const { address, verdict } of DENIED_CASES.filter((s) => s.address.includes(':'))) {
          expect((await c.createPermission(address)).isSuccess, `${address} (${verdict})`).to.equal(true);
        }
        // IPv4 peers cannot be reached from an IPv6 relay: 443 Peer Address Family Mismatch.
        expect((await c.createPermission('1.0.0.9')).errorCode).to.equal(443);
        // Data flows over IPv6 both ways, as ChannelData and as Send/Data indications.
        const p = await UdpPeer.open('::1');
        peers.push(p);
        expect((await c.channelBind(0x4000, p.address)).isSuccess).to.equal(true);
        c.sendChannelData(0x4000, Buffer.from('v6 channel'));
        expect((await p.next()).data.toString()).to.equal('v6 channel');
        p.send(Buffer.from('v6 back'), { address: '::1', port: relayed.port });
        expect(await c.nextData()).to.deep.equal({ kind: 'channel', channel: 0x4000, data: Buffer.from('v6 back') });
        const q = await UdpPeer.open('::1');
        peers.push(q);
        c.sendIndication(q.address, Buffer.from('v6 send'));
        expect((await q.next()).data.toString()).to.equal('v6 send');
        q.send(Buffer.from('v6 data'), { address: '::1', port: relayed.port });
        const back = await c.nextData();
        expect(back.kind).to.equal('indication');
        if (back.kind === 'indication') {
          expect(back.peer.port).to.equal(q.address.port);
          expect(back.data.toString()).to.equal('v6 data');
        }
      } finally {
        await server.close();
      }
    });
  });
});

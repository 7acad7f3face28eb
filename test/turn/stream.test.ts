/**
 * The bundled relay over TCP and TLS, beyond the backend contract: RFC 5766 §11.5 framing
 * (messages split over reads, several in one read, ChannelData padding both ways), what closes
 * a connection (garbage, an oversized frame, silence, a stalled TLS handshake, the connection
 * caps) without harming the server, allocations bound to their connection, a TCP client
 * relaying to a UDP client, the listeners' start-up errors, and a renewed certificate taken
 * up without a restart.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { createLogger } from '../../server/logger.js';
import { createTurnCredentials } from '../../turn/credentials.js';
import type { TurnServer } from '../../turn/TurnServer.js';
import { TurnCounters } from '../../turn/TurnCounters.js';
import { TurnRelay } from '../../turn/TurnRelay.js';
import { TurnServer as TurnServerClass } from '../../turn/TurnServer.js';
import {
  AttrType,
  attrs,
  encodeChannelData,
  encodeSendIndication,
  Method,
  StreamTurnClient,
  TurnClient,
  UdpPeer,
  type StreamTransport,
  type TransportAddress,
  type TurnClientBase,
} from '../helpers/stun.js';
import { createSelfSignedCert, opensslUnavailableReason, type SelfSignedCert } from '../helpers/tlsCert.js';
import { relayThread, startTurn, TURN_SECRET, turnSettings, waitFor } from './support.js';

const CHANNEL = 0x4000;
const IDLE_MS = 400;

describe('TurnServer over TCP and TLS', function () {
  this.timeout(30_000);

  let cert: SelfSignedCert | undefined;
  let server: TurnServer;
  const clients: TurnClientBase[] = [];
  const peers: UdpPeer[] = [];
  const sockets: net.Socket[] = [];

  before(async function () {
    const reason = opensslUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    cert = createSelfSignedCert();
    server = await startTurn({
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.1/32',
      TURN_TLS_PORT: '0',
      TURN_TLS_CERT: cert.certPath,
      TURN_TLS_KEY: cert.keyPath,
      TURN_TCP_IDLE_TIMEOUT_MS: String(IDLE_MS),
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(peers.splice(0).map((p) => p.close()));
    for (const socket of sockets.splice(0)) socket.destroy();
  });

  after(async () => {
    await server?.close();
    cert?.remove();
  });

  function transportOf(protocol: 'tcp' | 'tls'): { port: number; transport: StreamTransport } {
    return protocol === 'tcp'
      ? { port: server.port, transport: { protocol: 'tcp' } }
      : { port: server.tlsPort, transport: { protocol: 'tls', ca: cert?.certPem as string } };
  }

  async function streamClient(protocol: 'tcp' | 'tls', userId = 'alice'): Promise<StreamTurnClient> {
    const { port, transport } = transportOf(protocol);
    const c = await StreamTurnClient.open({ address: '127.0.0.1', port }, transport, createTurnCredentials(TURN_SECRET, userId, 600));
    clients.push(c);
    return c;
  }

  async function peer(): Promise<UdpPeer> {
    const p = await UdpPeer.open();
    peers.push(p);
    return p;
  }

  /** A raw TCP connection to the TURN port (no client logic at all). */
  async function rawTcp(port = server.port): Promise<{ socket: net.Socket; closed: Promise<void> }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => undefined);
    sockets.push(socket);
    return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
  }

  /** The server still serves: a fresh TCP client allocates. */
  async function expectServerAlive(): Promise<void> {
    const c = await streamClient('tcp', 'alive');
    expect((await c.allocate()).isSuccess, 'a new client allocates').to.equal(true);
    await c.close();
  }

  for (const protocol of ['tcp', 'tls'] as const) {
    describe(`framing over ${protocol.toUpperCase()}`, () => {
      it('answers a request written one byte at a time', async () => {
        const c = await streamClient(protocol);
        const tid = randomBytes(12);
        const request = c.buildRequest(Method.Binding, [], tid);
        const answered = c.awaitResponse(tid, () => undefined);
        for (const byte of request) {
          c.sendRaw(Buffer.from([byte]));
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        const res = await answered;
        expect(res.isSuccess).to.equal(true);
        expect(res.xorAddress(AttrType.XorMappedAddress)).to.deep.equal(c.localAddress);
      });

      it('answers every request of a write that holds several, and one split across writes', async () => {
        const c = await streamClient(protocol);
        const ids = [randomBytes(12), randomBytes(12), randomBytes(12)];
        const requests = ids.map((tid) => c.buildRequest(Method.Binding, [attrs.software('x'.repeat(tid[0] as number))], tid));
        const answers = ids.map((tid) => c.awaitResponse(tid, () => undefined));
        const all = Buffer.concat(requests);
        // Two writes: the first ends in the middle of the second request's header.
        const cut = (requests[0] as Buffer).length + 3;
        c.sendRaw(all.subarray(0, cut));
        await new Promise((resolve) => setTimeout(resolve, 20));
        c.sendRaw(all.subarray(cut));
        for (const res of await Promise.all(answers)) expect(res.isSuccess).to.equal(true);
      });

      it('reads padded ChannelData from the client and pads ChannelData to it (RFC 5766 §11.5)', async () => {
        const c = await streamClient(protocol);
        const allocation = await c.allocate();
        expect(allocation.isSuccess, `allocate: ${allocation.errorCode}`).to.equal(true);
        const relayed = allocation.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
        const p = await peer();
        expect((await c.channelBind(CHANNEL, p.address)).isSuccess).to.equal(true);
        // Sizes 1..4 need every amount of padding; sent in one write, they are only read right if the padding is skipped.
        const payloads = [1, 2, 3, 4, 5].map((size) => Buffer.alloc(size, size));
        c.sendRaw(Buffer.concat(payloads.map((payload) => encodeChannelData(CHANNEL, payload, true))));
        for (const payload of payloads) {
          const got = await p.next();
          expect(got.data.equals(payload), `${payload.length} bytes to the peer`).to.equal(true);
          expect(got.from).to.deep.equal(relayed);
        }
        // Towards the client: the test client cuts frames expecting padding, so unpadded frames would come out garbled.
        for (const payload of payloads) p.send(payload, relayed);
        for (const payload of payloads) expect(await c.nextData()).to.deep.equal({ kind: 'channel', channel: CHANNEL, data: payload });
      });
    });
  }

  describe('closing connections', () => {
    it('closes a connection that sends bytes that are not TURN, counts it, and keeps serving', async () => {
      const before = server.stats().refusals.stream_malformed;
      const { socket, closed } = await rawTcp();
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await closed;
      const { socket: second, closed: secondClosed } = await rawTcp();
      // A STUN header whose length is not a multiple of 4.
      second.write(Buffer.from('000100050000000000000000000000000000000000', 'hex'));
      await secondClosed;
      await waitFor(() => server.stats().refusals.stream_malformed >= before + 2, 'stream_malformed counted');
      await expectServerAlive();
    });

    it('closes a connection announcing a message over the size limit before it arrives', async () => {
      const before = server.stats().refusals.stream_malformed;
      const { socket, closed } = await rawTcp();
      // ChannelData announcing 60,000 bytes: refused on its header alone.
      socket.write(Buffer.from([0x40, 0x00, 0xea, 0x60]));
      await closed;
      await waitFor(() => server.stats().refusals.stream_malformed === before + 1, 'stream_malformed counted');
    });

    it('closes a silent connection, and one that trickles a message byte by byte, after TURN_TCP_IDLE_TIMEOUT_MS', async () => {
      const before = server.stats().refusals.stream_idle;
      const silent = await rawTcp();
      const slow = await rawTcp();
      const request = (await streamClient('tcp')).buildRequest(Method.Binding, [attrs.software('x'.repeat(400))], randomBytes(12));
      let sent = 0;
      const trickle = setInterval(() => {
        if (sent < request.length) slow.socket.write(request.subarray(sent, ++sent));
      }, 50);
      const started = Date.now();
      try {
        await Promise.all([silent.closed, slow.closed]);
      } finally {
        clearInterval(trickle);
      }
      expect(Date.now() - started).to.be.within(IDLE_MS - 50, IDLE_MS + 5_000);
      expect(sent, 'the trickled request was not complete').to.be.below(request.length);
      await waitFor(() => server.stats().refusals.stream_idle >= before + 2, 'stream_idle counted');
    });

    it('closes a TLS handshake that stalls, and counts a failed one', async () => {
      const before = server.stats().refusals;
      const stalled = await rawTcp(server.tlsPort);
      await stalled.closed;
      const plain = await rawTcp(server.tlsPort);
      plain.socket.write(Buffer.from('000100000000000000000000000000000000000000000000', 'hex'));
      await plain.closed;
      await waitFor(() => server.stats().refusals.stream_idle >= before.stream_idle + 1, 'stalled handshake counted as idle');
      await waitFor(() => server.stats().refusals.tls_handshake >= before.tls_handshake + 1, 'failed handshake counted');
      await expectServerAlive();
    });

    it('keeps a connection that holds an allocation open past the idle timeout', async () => {
      const c = await streamClient('tcp');
      expect((await c.allocate()).isSuccess).to.equal(true);
      const ended = c.ended.then(() => 'closed');
      const waited = new Promise((resolve) => setTimeout(() => resolve('open'), IDLE_MS * 3));
      expect(await Promise.race([ended, waited])).to.equal('open');
      expect((await c.refresh(600)).isSuccess).to.equal(true);
    });
  });

  describe('allocations bound to their connection', () => {
    for (const protocol of ['tcp', 'tls'] as const) {
      it(`frees the allocation and its relay port when the ${protocol.toUpperCase()} connection closes`, async () => {
        const before = server.stats().activeAllocations;
        const c = await streamClient(protocol, `bound-${protocol}`);
        const res = await c.allocate();
        expect(res.isSuccess).to.equal(true);
        const relayed = res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
        const p = await peer();
        expect((await c.createPermission('127.0.0.1')).isSuccess).to.equal(true);
        c.sendIndication(p.address, Buffer.from('before'));
        expect((await p.next()).data.toString()).to.equal('before');
        await waitFor(() => server.stats().activeAllocations === before + 1, 'the allocation counted');
        await c.drop();
        await waitFor(() => server.stats().activeAllocations === before, 'the allocation freed');
        // The relay port is closed: a datagram to it reaches no one (and is not counted as relayed).
        const relayedBefore = server.stats().relayedPackets;
        p.send(Buffer.from('after'), relayed);
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(server.stats().relayedPackets).to.equal(relayedBefore);
      });
    }

    it('counts TCP and TLS connections while they are open', async () => {
      const tcp = await streamClient('tcp');
      const tls = await streamClient('tls');
      await waitFor(() => server.stats().connections.tcp >= 1 && server.stats().connections.tls >= 1, 'connections counted');
      await tcp.close();
      await tls.close();
      await waitFor(() => server.stats().connections.tcp === 0 && server.stats().connections.tls === 0, 'connections gone');
    });

    it('answers a Send indication and a Binding in one write, and relays between a TCP client and a UDP client', async () => {
      const overTcp = await streamClient('tcp', 'tcp-side');
      const overUdp = await TurnClient.open(
        { address: '127.0.0.1', port: server.port },
        createTurnCredentials(TURN_SECRET, 'udp-side', 600),
      );
      clients.push(overUdp);
      const a = await overTcp.allocate();
      const b = await overUdp.allocate();
      const relayedA = a.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
      const relayedB = b.xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
      expect((await overTcp.createPermission('127.0.0.1')).isSuccess).to.equal(true);
      expect((await overUdp.channelBind(CHANNEL, relayedA)).isSuccess).to.equal(true);
      // A Send indication and a Binding request coalesced in one write: both are served.
      const tid = randomBytes(12);
      const binding = overTcp.awaitResponse(tid, () => undefined);
      overTcp.sendRaw(
        Buffer.concat([encodeSendIndication(relayedB, Buffer.from('tcp to udp')), overTcp.buildRequest(Method.Binding, [], tid)]),
      );
      expect((await binding).isSuccess).to.equal(true);
      expect(await overUdp.nextData()).to.deep.equal({ kind: 'channel', channel: CHANNEL, data: Buffer.from('tcp to udp') });
      overUdp.sendChannelData(CHANNEL, Buffer.from('udp to tcp'));
      expect(await overTcp.nextData()).to.deep.equal({ kind: 'indication', peer: relayedB, data: Buffer.from('udp to tcp') });
    });
  });

  describe('connection caps and start-up', () => {
    it('refuses connections over TURN_MAX_CONNECTIONS_PER_IP and counts them', async () => {
      const capped = await startTurn({ TURN_MAX_CONNECTIONS_PER_IP: '2' });
      try {
        const open = [
          await StreamTurnClient.open({ address: '127.0.0.1', port: capped.port }, { protocol: 'tcp' }),
          await StreamTurnClient.open({ address: '127.0.0.1', port: capped.port }, { protocol: 'tcp' }),
        ];
        clients.push(...open);
        await waitFor(() => capped.stats().connections.tcp === 2, 'two connections');
        const third = await StreamTurnClient.open({ address: '127.0.0.1', port: capped.port }, { protocol: 'tcp' });
        clients.push(third);
        expect(await third.ended).to.deep.equal({ byServer: true });
        expect(capped.stats().refusals.stream_limit).to.equal(1);
        for (const c of open) expect((await c.request(Method.Binding, [], { sign: false })).isSuccess).to.equal(true);
      } finally {
        await capped.close();
      }
    });

    it('refuses TLS connections over TURN_TLS_HANDSHAKES_PER_MIN from one IP before their handshake, and counts them; TCP and other IPs are not held to it', async function () {
      if (!cert) return this.skip();
      const limited = await startTurn({
        TURN_TLS_PORT: '0',
        TURN_TLS_CERT: cert.certPath,
        TURN_TLS_KEY: cert.keyPath,
        TURN_TLS_HANDSHAKES_PER_MIN: '2',
      });
      const tls = (localAddress?: string): StreamTransport => ({ protocol: 'tls', ca: cert?.certPem as string, localAddress });
      try {
        // Two handshakes in the minute, each closed again: the limit counts handshakes, not open connections.
        for (let i = 0; i < 2; i++) {
          const served = await StreamTurnClient.open({ address: '127.0.0.1', port: limited.tlsPort }, tls());
          expect((await served.request(Method.Binding, [], { sign: false })).isSuccess, `handshake ${i + 1}`).to.equal(true);
          await served.close();
        }
        let refused: unknown;
        await StreamTurnClient.open({ address: '127.0.0.1', port: limited.tlsPort }, tls()).then(
          (client) => clients.push(client),
          (error: unknown) => (refused = error),
        );
        expect(refused, 'the third handshake from 127.0.0.1').to.be.instanceOf(Error);
        expect(limited.stats().refusals.stream_limit).to.equal(1);
        expect(limited.stats().refusals.tls_handshake, 'refused before the handshake started').to.equal(0);
        // TCP from the same address, and TLS from another one, are served.
        const overTcp = await StreamTurnClient.open({ address: '127.0.0.1', port: limited.port }, { protocol: 'tcp' });
        const fromElsewhere = await StreamTurnClient.open({ address: '127.0.0.1', port: limited.tlsPort }, tls('127.0.0.2'));
        clients.push(overTcp, fromElsewhere);
        expect(fromElsewhere.localAddress.address).to.equal('127.0.0.2');
        for (const c of [overTcp, fromElsewhere]) expect((await c.request(Method.Binding, [], { sign: false })).isSuccess).to.equal(true);
        expect(limited.stats().refusals.stream_limit).to.equal(1);
      } finally {
        await limited.close();
      }
    });

    it('with every connection slot taken (TURN_MAX_ALLOCATIONS), closes the oldest connection without an allocation for a new one; refuses when all hold one', async () => {
      const full = await startTurn({ TURN_MAX_ALLOCATIONS: '2' });
      const at = { address: '127.0.0.1', port: full.port };
      const credentials = (user: string) => createTurnCredentials(TURN_SECRET, user, 600);
      try {
        const allocating = await StreamTurnClient.open(at, { protocol: 'tcp' }, credentials('holder'));
        const idle = await StreamTurnClient.open(at, { protocol: 'tcp' });
        clients.push(allocating, idle);
        expect((await allocating.allocate()).isSuccess, 'allocation over TCP').to.equal(true);
        await waitFor(() => full.stats().connections.tcp === 2, 'two connections');

        // A third client: the idle one makes room, the allocating one stays.
        const newcomer = await StreamTurnClient.open(at, { protocol: 'tcp' }, credentials('newcomer'));
        clients.push(newcomer);
        expect(await idle.ended, 'the idle connection').to.deep.equal({ byServer: true });
        await waitFor(() => full.stats().refusals.stream_evicted === 1, 'the eviction counted');
        expect((await newcomer.allocate()).isSuccess, "the newcomer's allocation").to.equal(true);
        expect((await allocating.request(Method.Binding, [], { sign: false })).isSuccess, 'the allocating connection is served').to.equal(
          true,
        );

        // Both hold an allocation now: a fourth is refused.
        const refused = await StreamTurnClient.open(at, { protocol: 'tcp' });
        clients.push(refused);
        expect(await refused.ended).to.deep.equal({ byServer: true });
        await waitFor(() => full.stats().refusals.stream_limit === 1, 'the refusal counted');
        expect(full.stats().connections.tcp).to.equal(2);
      } finally {
        await full.close();
      }
    });

    it('serves TCP on the UDP port number, not at all with TURN_TCP=false', async () => {
      const udpOnly = await startTurn({ TURN_TCP: 'false' });
      try {
        let error: NodeJS.ErrnoException | undefined;
        await StreamTurnClient.open({ address: '127.0.0.1', port: udpOnly.port }, { protocol: 'tcp' }).catch(
          (e: NodeJS.ErrnoException) => (error = e),
        );
        expect(error?.code).to.equal('ECONNREFUSED');
        expect(udpOnly.iceServers('u')[0]?.urls).to.deep.equal([`turn:127.0.0.1:${udpOnly.portFor('u')}?transport=udp`]);
      } finally {
        await udpOnly.close();
      }
    });

    it('names the listener that cannot start: TCP on a taken TURN_PORT, TLS on a taken TURN_TLS_PORT', async () => {
      const squatter = net.createServer();
      await new Promise<void>((resolve) => squatter.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
      const taken = (squatter.address() as net.AddressInfo).port;
      try {
        for (const [env, pattern] of [
          [{ TURN_PORT: String(taken) }, new RegExp(`TURN_PORT: cannot listen on tcp 127\\.0\\.0\\.1:${taken}: EADDRINUSE`)],
          [
            { TURN_TLS_PORT: String(taken), TURN_TLS_CERT: cert?.certPath as string, TURN_TLS_KEY: cert?.keyPath as string },
            new RegExp(`TURN_TLS_PORT: cannot listen on tls 127\\.0\\.0\\.1:${taken}: EADDRINUSE`),
          ],
        ] as const) {
          const failing = new TurnServerClass({ config: turnSettings(env), logger: createLogger('silent') });
          let error: Error | undefined;
          await failing.start().catch((e: Error) => (error = e));
          await failing.close();
          expect(error?.message).to.match(pattern);
        }
      } finally {
        await new Promise<void>((resolve) => squatter.close(() => resolve()));
      }
    });

    it('serves a renewed certificate to new TLS connections without a restart; live ones stay', async () => {
      const renewed = createSelfSignedCert();
      const files = createSelfSignedCert();
      const lines: string[] = [];
      const relay = new TurnRelay({
        settings: turnSettings({ TURN_TLS_PORT: '0', TURN_TLS_CERT: files.certPath, TURN_TLS_KEY: files.keyPath }),
        counters: new TurnCounters(),
        log: (_level, _fields, msg) => void lines.push(msg),
        certificateCheckMs: 50,
      });
      try {
        const { tlsPort } = await relay.start();
        const before = await StreamTurnClient.open({ address: '127.0.0.1', port: tlsPort }, { protocol: 'tls', ca: files.certPem });
        clients.push(before);
        // The key first: until its certificate follows, the pair does not load and the old one stays.
        copyFileSync(renewed.keyPath, files.keyPath);
        await waitFor(() => lines.includes('turn TLS certificate not reloaded; the previous one stays'), 'the mismatched pair refused');
        copyFileSync(renewed.certPath, files.certPath);
        await waitFor(() => lines.includes('turn TLS certificate reloaded'), 'the renewed pair loaded');
        const after = await StreamTurnClient.open({ address: '127.0.0.1', port: tlsPort }, { protocol: 'tls', ca: renewed.certPem });
        clients.push(after);
        for (const c of [before, after]) expect((await c.request(Method.Binding, [], { sign: false })).isSuccess).to.equal(true);
        let refused: Error | undefined;
        await StreamTurnClient.open({ address: '127.0.0.1', port: tlsPort }, { protocol: 'tls', ca: files.certPem }).catch(
          (e: Error) => (refused = e),
        );
        expect(refused?.message, 'the old certificate is no longer served').to.match(/self[- ]signed|certificate/i);
      } finally {
        await relay.close();
        renewed.remove();
        files.remove();
      }
    });

    it('a relay restarted while its TLS files do not load serves UDP and TCP, and opens TLS on its port once they do', async () => {
      const files = createSelfSignedCert();
      const broken = createSelfSignedCert();
      const stray = createSelfSignedCert();
      // Settings are checked at boot, when the files were a valid pair.
      const settings = turnSettings({ TURN_TLS_PORT: '0', TURN_TLS_CERT: files.certPath, TURN_TLS_KEY: files.keyPath });
      copyFileSync(broken.keyPath, files.keyPath); // a key renewed before its certificate
      const lines: string[] = [];
      // The TLS port the crashed worker had: a free one.
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
      const tlsPort = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const relay = new TurnRelay({
        settings,
        counters: new TurnCounters(),
        log: (_level, _fields, msg) => void lines.push(msg),
        tlsPort,
        certificateCheckMs: 50,
        waitForCertificate: true,
      });
      try {
        const started = await relay.start();
        expect(started.tlsPort, 'no TLS yet').to.equal(0);
        expect(lines).to.include('turn TLS waits for a certificate that loads; UDP and TCP serve');
        const tcp = await StreamTurnClient.open({ address: '127.0.0.1', port: started.port }, { protocol: 'tcp' });
        clients.push(tcp);
        expect((await tcp.request(Method.Binding, [], { sign: false })).isSuccess, 'TCP serves').to.equal(true);
        copyFileSync(broken.certPath, files.certPath); // its certificate follows: the pair loads
        await waitFor(() => lines.includes('turn TLS listening: the certificate loads now'), 'TLS opened');
        const tls = await StreamTurnClient.open({ address: '127.0.0.1', port: tlsPort }, { protocol: 'tls', ca: broken.certPem });
        clients.push(tls);
        expect((await tls.request(Method.Binding, [], { sign: false })).isSuccess, 'TLS serves on its port').to.equal(true);
      } finally {
        await relay.close();
      }
      // Without waitForCertificate (a start at boot) the same broken pair is an error.
      copyFileSync(stray.keyPath, files.keyPath);
      const atBoot = new TurnRelay({ settings, counters: new TurnCounters(), log: () => undefined });
      let error: Error | undefined;
      await atBoot.start().catch((e: Error) => (error = e));
      expect(error?.message).to.match(/TURN_TLS_CERT\/TURN_TLS_KEY: cannot load the certificate and key/);
      for (const cert of [files, broken, stray]) cert.remove();
    });

    it('restarts a dead relay worker on the same UDP, TCP and TLS ports', async () => {
      const restarted = await startTurn({
        TURN_TLS_PORT: '0',
        TURN_TLS_CERT: cert?.certPath as string,
        TURN_TLS_KEY: cert?.keyPath as string,
      });
      try {
        const ports = { port: restarted.port, tlsPort: restarted.tlsPort };
        await relayThread(restarted)?.terminate();
        await waitFor(
          async () => {
            const c = await StreamTurnClient.open({ address: '127.0.0.1', port: ports.tlsPort }, transportOf('tls').transport).catch(
              () => null,
            );
            if (!c) return false;
            clients.push(c);
            return (await c.request(Method.Binding, [], { sign: false }).catch(() => null))?.isSuccess === true;
          },
          'TLS served again',
          20_000,
        );
        expect({ port: restarted.port, tlsPort: restarted.tlsPort }).to.deep.equal(ports);
        const tcp = await StreamTurnClient.open({ address: '127.0.0.1', port: ports.port }, { protocol: 'tcp' });
        clients.push(tcp);
        expect((await tcp.request(Method.Binding, [], { sign: false })).isSuccess).to.equal(true);
      } finally {
        await restarted.close();
      }
    });
  });
});

/**
 * Two real WebRTC peers (@roamhq/wrtc, libwebrtc) forced to relay through the bundled TURN
 * server with the ice_servers the server hands out (the two users on two relay workers): the data channel carries 1 MB and
 * the selected candidate pair is relay on both ends.
 */
import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { createLogger } from '../../server/logger.js';
import { relayWorkerFor } from '../../turn/credentials.js';
import { TurnServer } from '../../turn/TurnServer.js';
import { selectedPairTypes, sendBulk, WrtcPeerConnection } from '../helpers/wrtc.js';

const SECRET = 'wrtc-test-secret-0123456789-0123456789';
const TOTAL_BYTES = 1024 * 1024;

/** Resolves when `check` passes, polling; rejects after `timeoutMs`. */
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('TURN with real WebRTC peers (relay only)', function () {
  this.timeout(90_000);

  let server: TurnServer;
  const peers: RTCPeerConnection[] = [];

  before(async () => {
    const config = testConfig({
      TURN_ENABLED: 'true',
      TURN_PORT: '0',
      TURN_WORKERS: '2',
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_SECRET: SECRET,
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
    });
    server = new TurnServer({ config: config.turn, logger: createLogger('silent') });
    await server.start();
  });

  afterEach(() => {
    for (const pc of peers.splice(0)) pc.close();
  });

  after(async () => {
    await server?.close();
  });

  it('moves 1 MB over a data channel on a relay-relay candidate pair', async () => {
    // Two relay workers, the two users on different ones: relay to relay crosses threads.
    const userB = ['bob', 'carol', 'dave', 'erin'].find((user) => relayWorkerFor(user, 2) !== relayWorkerFor('alice', 2)) as string;
    const iceServersA = server.iceServers('alice');
    const iceServersB = server.iceServers(userB);
    expect(iceServersA[0]?.urls).to.deep.equal([
      `turn:127.0.0.1:${server.portFor('alice')}?transport=udp`,
      `turn:127.0.0.1:${server.portFor('alice')}?transport=tcp`,
    ]);
    expect(server.portFor(userB)).to.not.equal(server.portFor('alice'));

    const a = new WrtcPeerConnection({ iceServers: iceServersA, iceTransportPolicy: 'relay' });
    const b = new WrtcPeerConnection({ iceServers: iceServersB, iceTransportPolicy: 'relay' });
    peers.push(a, b);
    // Direct in-process signaling: candidates and descriptions handed over as they appear.
    a.onicecandidate = ({ candidate }) => {
      if (candidate) void b.addIceCandidate(candidate);
    };
    b.onicecandidate = ({ candidate }) => {
      if (candidate) void a.addIceCandidate(candidate);
    };

    let received = 0;
    const done = new Promise<void>((resolve) => {
      b.ondatachannel = ({ channel }) => {
        channel.binaryType = 'arraybuffer';
        channel.onmessage = ({ data }) => {
          received += (data as ArrayBuffer).byteLength;
          if (received >= TOTAL_BYTES) resolve();
        };
      };
    });

    const channel = a.createDataChannel('bulk', { ordered: true });
    channel.binaryType = 'arraybuffer';
    const opened = new Promise<void>((resolve) => (channel.onopen = () => resolve()));

    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription as RTCSessionDescriptionInit);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription as RTCSessionDescriptionInit);
    await opened;

    await sendBulk(channel, TOTAL_BYTES);
    await done;
    expect(received).to.equal(TOTAL_BYTES);

    let types: { local?: string; remote?: string } = {};
    await waitFor(
      async () => {
        types = await selectedPairTypes(a);
        return types.local !== undefined;
      },
      10_000,
      'a selected candidate pair in getStats',
    );
    expect(types).to.deep.equal({ local: 'relay', remote: 'relay' });
    const typesB = await selectedPairTypes(b);
    expect(typesB).to.deep.equal({ local: 'relay', remote: 'relay' });

    const stats = server.stats();
    expect(stats.relayedBytes).to.be.greaterThan(TOTAL_BYTES);
    expect(stats.activeAllocations).to.be.at.least(2);
  });
});

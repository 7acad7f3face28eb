/**
 * The bundled TURN server end to end through the hub: two @roamhq/wrtc peers forced to relay,
 * using the ice_servers of their own join acks, move 1 MB over a data channel negotiated through
 * Switchboard, on a relay-relay candidate pair.
 */
import { expect } from 'chai';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { selectedPairTypes, sendBulk, sendOffer, wirePeer } from '../helpers/wrtc.js';

const TOTAL_BYTES = 1024 * 1024;

describe('bundled TURN through the hub (relay only)', function () {
  this.timeout(90_000);
  let t: TestServer;
  const peers: RTCPeerConnection[] = [];

  before(async () => {
    t = await startServer({
      TURN_ENABLED: 'true',
      TURN_PORT: '0',
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_SECRET: 'hub-turn-secret-0123456789-0123456789',
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
    });
  });
  after(async () => {
    for (const pc of peers) pc.close();
    await t?.close();
  });

  it('join acks carry TURN credentials for the bundled relay, which carries 1 MB relay-relay', async () => {
    const a = await t.join({ room: 'turn', user: 'alice' });
    const b = await t.join({ room: 'turn', user: 'bob' });
    const [server] = a.ack.ice_servers;
    // Each user is given the port of one relay worker (TURN_WORKERS: one per core by default).
    const port = t.server.turn?.portFor('alice');
    expect(server?.urls).to.deep.equal([`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`]);
    expect(server?.username).to.match(/^\d+:alice$/);
    expect(server?.credential).to.be.a('string');
    expect(b.ack.ice_servers[0]?.username).to.match(/^\d+:bob$/);

    const pcA = wirePeer(a.client, b.ack.self.id, a.ack.ice_servers, 'relay');
    const pcB = wirePeer(b.client, a.ack.self.id, b.ack.ice_servers, 'relay');
    peers.push(pcA, pcB);
    let received = 0;
    const done = new Promise<void>((resolve) => {
      pcB.ondatachannel = ({ channel }) => {
        channel.binaryType = 'arraybuffer';
        channel.onmessage = ({ data }) => {
          received += (data as ArrayBuffer).byteLength;
          if (received >= TOTAL_BYTES) resolve();
        };
      };
    });
    const channel = pcA.createDataChannel('bulk');
    const opened = new Promise<void>((resolve) => (channel.onopen = () => resolve()));
    await sendOffer(a.client, pcA, b.ack.self.id);
    await opened;
    await sendBulk(channel, TOTAL_BYTES);
    await done;
    expect(received).to.equal(TOTAL_BYTES);
    let types: { local?: string; remote?: string } = {};
    await waitFor(async () => (types = await selectedPairTypes(pcA)).local !== undefined, 10_000, 'selected pair');
    expect(types).to.deep.equal({ local: 'relay', remote: 'relay' });
    expect(await selectedPairTypes(pcB)).to.deep.equal({ local: 'relay', remote: 'relay' });

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const relayed = Number(/^switchboard_turn_relayed_bytes_total (\d+)/m.exec(metrics)?.[1]);
    expect(relayed).to.be.greaterThan(TOTAL_BYTES);
    expect(metrics).to.match(/^switchboard_turn_allocations_active [1-9]/m);
  });
});

import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, SwitchboardError, type DataInfo, type DataPayload } from '../../client-sdk/src/index.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };

const pattern = Uint8Array.from({ length: 256 * 1024 }, (_, i) => (i * 7 + (i >> 8) * 13) & 0xff);

/** `length` bytes that differ along the message and from message to message: the first four and every 4 KiB hold n. */
const bytesOf = (n: number, length: number): Uint8Array => {
  const bytes = pattern.slice(0, length);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at + 4 <= length; at += 4096) view.setUint32(at, n);
  return bytes;
};

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);

interface Received {
  from: string;
  payload: DataPayload;
  info: DataInfo;
}

describe('SDK binary data over the mesh (@roamhq/wrtc): binary frames, topics, backpressure, size limit', function () {
  this.timeout(120_000);
  let t: TestServer;
  const rooms: Room[] = [];

  const connect = async (room: string, user: string): Promise<Room> => {
    const r = await Room.connect(t.url, t.mint({ room, user, role: 'guest' }), { webrtc, statsIntervalMs: 0 });
    rooms.push(r);
    return r;
  };

  /** Two bots linked, with what bob receives. */
  const pair = async (room: string) => {
    const alice = await connect(room, 'alice');
    const bob = await connect(room, 'bob');
    const received: Received[] = [];
    bob.on(RoomEvent.Data, (payload, participant, info) => received.push({ from: participant.identity, payload, info }));
    await waitFor(() => alice.participants.has('bob'), 10_000, 'alice sees bob');
    // The link is up once a first message arrives.
    await alice.send('ping');
    await waitFor(() => received.length === 1, 20_000, 'first message over the link');
    received.length = 0;
    return { alice, bob, received };
  };

  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    for (const r of rooms.splice(0)) await r.leave();
    await t.close();
  });

  it('a 64 KiB binary message arrives byte-identical, as a Uint8Array, with its topic; text and JSON still arrive as before', async () => {
    const { alice, received } = await pair('binary-64k');
    const bytes = bytesOf(7, 64 * 1024);
    await alice.send(bytes, { topic: 'file' });
    await alice.send('text', { topic: 'chat' });
    await alice.send({ n: 1, nested: [true, null] });
    await waitFor(() => received.length === 3, 20_000, 'three messages');
    const [binary, text, json] = received as [Received, Received, Received];
    expect(binary.payload).to.be.instanceOf(Uint8Array);
    expect(sameBytes(binary.payload as Uint8Array, bytes), 'byte-identical').to.equal(true);
    expect(binary.info).to.include({ reliable: true, topic: 'file' });
    expect([text.payload, text.info.topic]).to.deep.equal(['text', 'chat']);
    expect(json.payload).to.deep.equal({ n: 1, nested: [true, null] });
    expect(json.info.topic).to.equal(undefined);
  });

  it('a 50 MB send loop awaiting send() keeps what the sender buffers under 4 MiB, and every message arrives once, in order, intact', async () => {
    const { alice, received } = await pair('binary-loop');
    const count = 800;
    const size = 64 * 1024;
    let maxBuffered = 0;
    let maxInFlight = 0;
    const sample = () => (maxBuffered = Math.max(maxBuffered, alice.bufferedDataBytes));
    const sampler = setInterval(sample, 5);
    const started = Date.now();
    for (let n = 1; n <= count; n++) {
      await alice.send(bytesOf(n, size));
      sample();
      // Sent and not yet received, wherever it is (SDK, channel, SCTP, the network, bob's side).
      maxInFlight = Math.max(maxInFlight, (n - received.length) * size);
    }
    const sentMs = Date.now() - started;
    await waitFor(() => received.length >= count, 90_000, `${count} messages (have ${received.length})`);
    clearInterval(sampler);
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `      ${((count * size) / 1e6).toFixed(1)} MB: sent in ${(sentMs / 1000).toFixed(1)} s, received in ${seconds.toFixed(1)} s (${((count * size * 8) / seconds / 1e6).toFixed(0)} Mbit/s); sender buffered at most ${(maxBuffered / 1024).toFixed(0)} KiB (SDK queue + bufferedAmount); at most ${(maxInFlight / 1024 / 1024).toFixed(1)} MiB sent and not received`,
    );
    expect(maxBuffered, 'bytes queued in the SDK plus bufferedAmount of the channels').to.be.below(4 * 1024 * 1024);
    // What SCTP holds beyond bufferedAmount (usrsctp's send buffer) is bounded too: the loop runs at the receiver's pace.
    expect(maxInFlight, 'sent and not yet received').to.be.below(16 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(received, 'no duplicates').to.have.length(count);
    const numbers = received.map(({ payload }) => new DataView((payload as Uint8Array).buffer).getUint32(0));
    expect(numbers).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    for (const { payload } of received.filter((_, i) => i % 97 === 0)) {
      const n = new DataView((payload as Uint8Array).buffer).getUint32(0);
      expect(sameBytes(payload as Uint8Array, bytesOf(n, size)), `message ${n} intact`).to.equal(true);
    }
  });

  it('fire and forget (not awaiting) still delivers everything in order', async () => {
    const { alice, received } = await pair('binary-forget');
    for (let n = 1; n <= 100; n++) void alice.send(bytesOf(n, 64 * 1024));
    await waitFor(() => received.length >= 100, 60_000, `100 messages (have ${received.length})`);
    const numbers = received.map(({ payload }) => new DataView((payload as Uint8Array).buffer).getUint32(0));
    expect(numbers).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  // With the place held (the default), alice rejoins under her peer id and her link stays up. Without it
  // (RESUME_GRACE_MS=0) the link is rebuilt and bob sees her leave: what a hole held back then is
  // delivered at once, the hole skipped (README, sync), so messages in flight on the old link can be
  // lost in a loop this fast (seen: 34 of 400). Not covered here.
  it('an awaited binary loop through a signaling drop (the place held): every message once, in order, intact', async () => {
    const { alice, received } = await pair('binary-drop');
    const count = 400;
    const size = 16 * 1024;
    const states: ConnectionState[] = [];
    alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
    for (let n = 1; n <= count; n++) {
      if (n === count / 2) t.server.rooms.get('t1', 'binary-drop')?.peerByUser('alice')?.socket.conn.close();
      // A mesh room takes data while it reconnects; a send in the instant between leaving and rejoining throws not_connected.
      for (;;) {
        try {
          await alice.send(bytesOf(n, size));
          break;
        } catch (error) {
          if ((error as SwitchboardError).code !== 'not_connected') throw error;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => states.at(-1) === ConnectionState.Connected && states.length > 1, 20_000, 'alice reconnected');
    await waitFor(() => received.length >= count, 40_000, `${count} messages`).catch((error: unknown) => {
      const numbers = received.map(({ payload }) => new DataView((payload as Uint8Array).buffer).getUint32(0));
      throw new Error(`${String(error)}; bob has ${numbers.length}, last ${numbers.at(-1)}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const numbers = received.map(({ payload }) => new DataView((payload as Uint8Array).buffer).getUint32(0));
    expect(numbers).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    for (const { payload } of received) {
      const n = new DataView((payload as Uint8Array).buffer).getUint32(0);
      expect(sameBytes(payload as Uint8Array, bytesOf(n, size)), `message ${n} intact`).to.equal(true);
    }
    console.log(`      states of alice: ${states.join(' -> ')}`);
  });

  it('an oversized message is refused with payload_too_large, nothing sent; the link goes on', async () => {
    const { alice, received } = await pair('binary-oversize');
    const refused = (payload: DataPayload, options = {}) => {
      try {
        void alice.send(payload, options);
      } catch (error) {
        return error;
      }
      return null;
    };
    for (const payload of [new Uint8Array(256 * 1024), new Uint8Array(1024 * 1024), 'x'.repeat(300 * 1024)]) {
      const error = refused(payload);
      expect(error).to.be.instanceOf(SwitchboardError);
      expect((error as SwitchboardError).code).to.equal('payload_too_large');
    }
    expect((refused('x', { topic: 't'.repeat(129) }) as SwitchboardError).code).to.equal('payload_invalid');
    expect(alice.bufferedDataBytes, 'nothing queued or buffered').to.equal(0);
    const fits = bytesOf(1, 255 * 1024);
    await alice.send(fits);
    await waitFor(() => received.length === 1, 20_000, 'the message that fits');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).to.have.length(1);
    expect(sameBytes(received[0]?.payload as Uint8Array, fits)).to.equal(true);
    expect(received[0]?.info.seq, 'refused messages took no sequence number (ping was 1)').to.equal(2);
  });
});

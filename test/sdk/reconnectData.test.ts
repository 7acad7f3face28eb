/**
 * Reliable data across a signaling drop (issue 17: an owner node killed drops every socket of
 * its rooms at once) after which the peer comes back under a new id (no place held, or it
 * expired): what a mesh link lost when it was torn down arrives once the link is rebuilt, even
 * when its sender sends nothing more.
 */
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, type DataPayload } from '../../client-sdk/src/index.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };

describe('SDK: reliable data across a signaling drop', function () {
  this.timeout(60_000);
  let t: TestServer;
  const rooms: Room[] = [];

  beforeEach(async () => {
    // No held place: alice comes back under a new id, so her link is torn down and rebuilt (a
    // resumed id keeps the link, and nothing is lost with it).
    t = await startServer({ RESUME_GRACE_MS: '0' });
  });
  afterEach(async () => {
    for (const room of rooms.splice(0)) await room.leave();
    await t.close();
  });

  it('messages lost with the torn-down link reach the peer after the rebuild, with no later message to reveal them', async () => {
    const alice = await Room.connect(t.url, t.mint({ room: 'tail', user: 'alice' }), { webrtc, statsIntervalMs: 0 });
    rooms.push(alice);
    const bob = await Room.connect(t.url, t.mint({ room: 'tail', user: 'bob' }), { webrtc, statsIntervalMs: 0 });
    rooms.push(bob);
    const got: number[] = [];
    bob.on(RoomEvent.Data, (payload: DataPayload) => got.push((payload as { n: number }).n));
    alice.send({ n: 1 });
    await waitFor(() => got.length === 1, 15_000, 'first message');

    // Messages 2 and 3 are still in flight on alice's link when signaling drops: lost with the link.
    const link = (alice as unknown as { links: Map<string, { send(text: string, reliable: boolean): void }> }).links.values().next().value;
    if (!link) throw new Error('no link');
    link.send = () => undefined;
    alice.send({ n: 2 });
    alice.send({ n: 3 });

    const states: ConnectionState[] = [];
    alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
    t.server.rooms.get('t1', 'tail')?.peerByUser('alice')?.socket.conn.close();
    await waitFor(() => states.at(-1) === ConnectionState.Connected, 15_000, 'alice reconnected');
    await waitFor(() => got.length === 3, 10_000, 'the messages lost with the old link').catch((error: unknown) => {
      throw new Error(`${String(error)}; bob got ${JSON.stringify(got)}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(got).to.deep.equal([1, 2, 3]);
  });
});

import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import {
  ConnectionState,
  Room,
  RoomEvent,
  type ReconnectContext,
  type RoomOptions,
  type SwitchboardError,
} from '../../client-sdk/src/index.js';
import { call } from '../api/helpers.js';
import { emitAck, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

/** A WebRTC implementation that remembers every peer connection it made (also in `all`, for the final clean-up). */
function trackedWebrtc(all: RTCPeerConnection[]): { webrtc: NonNullable<RoomOptions['webrtc']>; pcs: RTCPeerConnection[] } {
  const pcs: RTCPeerConnection[] = [];
  // wrtc's own description getters race its signaling thread (a native crash): the helper's subclass serves them from JavaScript.
  const Base = WrtcPeerConnection as unknown as typeof RTCPeerConnection;
  class Tracked extends Base {
    constructor(configuration?: RTCConfiguration) {
      super(configuration);
      pcs.push(this);
      all.push(this);
    }
  }
  return { webrtc: { RTCPeerConnection: Tracked as unknown as typeof RTCPeerConnection }, pcs };
}

/** What a Room went through: its connection states and the errors it emitted. */
function watch(room: Room): { states: ConnectionState[]; errors: SwitchboardError[] } {
  const seen = { states: [] as ConnectionState[], errors: [] as SwitchboardError[] };
  room.on(RoomEvent.ConnectionStateChanged, (state) => seen.states.push(state));
  room.on(RoomEvent.Error, (error) => seen.errors.push(error));
  return seen;
}

/**
 * The SDK's terminal paths: each ends the Room (state disconnected, links closed, no reconnect
 * attempt) and tells the application why through the error event. Reconnecting is what the
 * SDK does after any other drop (see the heal test in bots.test.ts), so "never reconnecting"
 * is the behaviour under test, not a default.
 */
describe('SDK terminal paths (@roamhq/wrtc)', function () {
  this.timeout(30000);
  let t: TestServer;
  const rooms: Room[] = [];
  const allPcs: RTCPeerConnection[] = [];

  const connect = async (
    room: string,
    user: string,
    options: RoomOptions = {},
  ): Promise<{ room: Room; pcs: RTCPeerConnection[]; token: string }> => {
    const { webrtc, pcs } = trackedWebrtc(allPcs);
    const token = t.mint({ room, user });
    const r = await Room.connect(t.url, token, { webrtc, statsIntervalMs: 0, ...options });
    rooms.push(r);
    return { room: r, pcs, token };
  };
  /** Every peer connection of a Room is closed. */
  const expectClosed = (pcs: RTCPeerConnection[], who: string): void => {
    expect(
      pcs.map((pc) => pc.signalingState),
      `${who}'s peer connections`,
    ).to.deep.equal(pcs.map(() => 'closed'));
  };
  /** Two SDK rooms that see each other, with a mesh link between them. */
  const pair = async (roomId: string) => {
    const alice = await connect(roomId, 'alice');
    const bob = await connect(roomId, 'bob');
    // Connected links: the tests below are about the end, not the negotiation.
    const connected = (pcs: RTCPeerConnection[]) => pcs.some((pc) => pc.connectionState === 'connected');
    await waitFor(() => alice.room.participants.has('bob') && connected(alice.pcs) && connected(bob.pcs), 15000, 'alice and bob linked');
    return { alice, bob };
  };

  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    for (const r of rooms.splice(0)) await r.leave();
    for (const pc of allPcs.splice(0)) pc.close();
    await t.close();
  });

  it('kicked by a room admin: error forbidden with the reason, disconnected, no reconnect, links closed', async () => {
    const { alice, bob } = await pair('kick');
    const seen = watch(bob.room);
    const left = new Promise<string>((resolve) => alice.room.once(RoomEvent.ParticipantLeft, (p) => resolve(p.identity)));
    const admin = await t.join({ room: 'kick', user: 'admin', role: 'host', grants: { hidden: true } });
    expect(await emitAck(admin.client, 'admin:kick', { peer_id: bob.room.localParticipant?.id, reason: 'spam' })).to.deep.equal({
      ok: true,
    });
    await waitFor(() => bob.room.state === ConnectionState.Disconnected, 10000, 'bob disconnected');
    expect(seen.states).to.deep.equal([ConnectionState.Disconnected]);
    expect(seen.errors.map((e) => [e.code, e.message])).to.deep.equal([['forbidden', 'kicked: spam']]);
    expect(await left).to.equal('bob');
    expectClosed(bob.pcs, 'bob');
    expect(alice.room.state).to.equal(ConnectionState.Connected);
  });

  it('room closed by the API: both rooms end with "room closed: deleted", no reconnect, links closed', async () => {
    const { alice, bob } = await pair('closing');
    const seenA = watch(alice.room);
    const seenB = watch(bob.room);
    const deleted = await call(t, 'DELETE', '/api/v1/rooms/closing', { secret: 'secret-t1' });
    expect(deleted.status).to.equal(204);
    await waitFor(
      () => alice.room.state === ConnectionState.Disconnected && bob.room.state === ConnectionState.Disconnected,
      10000,
      'both disconnected',
    );
    for (const [who, seen, pcs] of [
      ['alice', seenA, alice.pcs],
      ['bob', seenB, bob.pcs],
    ] as const) {
      expect(seen.states, who).to.deep.equal([ConnectionState.Disconnected]);
      expect(
        seen.errors.map((e) => [e.code, e.message]),
        who,
      ).to.deep.equal([['not_connected', 'room closed: deleted']]);
      expectClosed(pcs, who);
    }
    expect(t.server.rooms.get('t1', 'closing')).to.equal(undefined);
  });

  it('a room closed while its links still negotiate reports the close once, and no late error of the signals it cut', async () => {
    const alice = await connect('midway', 'alice', { requestTimeoutMs: 500 });
    const seen = watch(alice.room);
    await connect('midway', 'bob', { requestTimeoutMs: 500 });
    // No wait for the links: offers and candidates are still on their way.
    const deleted = await call(t, 'DELETE', '/api/v1/rooms/midway', { secret: 'secret-t1' });
    expect(deleted.status).to.equal(204);
    await waitFor(() => alice.room.state === ConnectionState.Disconnected, 10000, 'alice disconnected');
    // Longer than the request timeout: a cut request would have reported by now.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(seen.errors.map((e) => [e.code, e.message])).to.deep.equal([['not_connected', 'room closed: deleted']]);
  });

  it('token revoked: error token_revoked, disconnected, no reconnect, links closed; the other participant stays', async () => {
    const { alice, bob } = await pair('revoke');
    const seen = watch(bob.room);
    const left = new Promise<string>((resolve) => alice.room.once(RoomEvent.ParticipantLeft, (p) => resolve(p.identity)));
    const { jti } = jwt.decode(bob.token) as { jti: string };
    const revoked = await call(t, 'POST', '/api/v1/tokens/revoke', { secret: 'secret-t1', body: { jti } });
    expect(revoked.status, JSON.stringify(revoked.body)).to.equal(200);
    await waitFor(() => bob.room.state === ConnectionState.Disconnected, 10000, 'bob disconnected');
    expect(seen.states).to.deep.equal([ConnectionState.Disconnected]);
    // Once: from the server's error event, not again when the socket drops.
    expect(seen.errors.map((e) => e.code)).to.deep.equal(['token_revoked']);
    expect(await left).to.equal('bob');
    expectClosed(bob.pcs, 'bob');
    expect(alice.room.state).to.equal(ConnectionState.Connected);
  });

  it('gives up reconnecting when the policy says so: reconnecting, then disconnected, after the attempts it allowed', async () => {
    const contexts: ReconnectContext[] = [];
    const reconnectPolicy = {
      nextRetryDelayInMs: (context: ReconnectContext) => {
        contexts.push(context);
        return context.retryCount < 2 ? 50 : null;
      },
    };
    const solo = await connect('gone', 'solo', { reconnectPolicy, requestTimeoutMs: 3000 });
    const seen = watch(solo.room);
    // The server vanishes without closing its rooms (a crash, a network cut): no room_closed,
    // and nothing listens any more, so every attempt fails.
    await new Promise<void>((resolve) => t.server.io.close(() => resolve()));
    await waitFor(() => solo.room.state === ConnectionState.Disconnected, 20000, 'gave up');
    expect(seen.states).to.deep.equal([ConnectionState.Reconnecting, ConnectionState.Disconnected]);
    expect(contexts.map((c) => c.retryCount)).to.deep.equal([0, 1, 2]);
    expect(contexts[0]?.reason).to.be.a('string').and.not.equal('');
    expect(contexts.every((c) => c.reason === contexts[0]?.reason)).to.equal(true);
    // Connection failures are not terminal codes: the policy alone ended it, without an error event.
    expect(seen.errors.map((e) => e.code)).to.deep.equal([]);
    expectClosed(solo.pcs, 'solo');
  });
});

import wrtc from '@roamhq/wrtc';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import {
  ConnectionState,
  DisconnectReason,
  Room,
  RoomEvent,
  SwitchboardError,
  type RemoteParticipant,
  type RoomOptions,
} from '../../client-sdk/src/index.js';
import { call } from '../api/helpers.js';
import { collect, emitAck, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection as unknown as typeof RTCPeerConnection };

/** What a Room went through: its connection states, errors and Disconnected reasons. */
function watch(room: Room): { states: ConnectionState[]; errors: string[]; reasons: DisconnectReason[] } {
  const seen = { states: [] as ConnectionState[], errors: [] as string[], reasons: [] as DisconnectReason[] };
  room.on(RoomEvent.ConnectionStateChanged, (state) => seen.states.push(state));
  room.on(RoomEvent.Error, (error) => seen.errors.push(error.code));
  room.on(RoomEvent.Disconnected, (reason) => seen.reasons.push(reason));
  return seen;
}

async function rejection(promise: Promise<unknown>): Promise<SwitchboardError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(SwitchboardError);
    return error as SwitchboardError;
  }
  throw new Error('expected a rejection');
}

/**
 * The Room's life as an application drives it (issue 18): listeners attached before connect,
 * one connect per Room, Disconnected with its reason, and a participant's own mute as the
 * others see it. Peers on raw sockets stand in for other participants where media is not
 * the point (a wrtc media source in a closing peer connection can crash the process).
 */
describe('SDK Room lifecycle and self-mute (@roamhq/wrtc)', function () {
  this.timeout(30000);
  let t: TestServer;
  const rooms: Room[] = [];

  const room = (options: RoomOptions = {}): Room => {
    const created = new Room({ webrtc, statsIntervalMs: 0, ...options });
    rooms.push(created);
    return created;
  };
  /** A participant on a raw socket, joined with metadata. */
  const rawJoin = async (roomId: string, user: string, metadata: Record<string, unknown> = {}) => {
    const client: TestClient = await t.connect(t.mint({ room: roomId, user }));
    const ack = await emitAck(client, 'join', { metadata });
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
    return { client, id: (ack as unknown as { self: { id: string } }).self.id };
  };

  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    for (const r of rooms.splice(0)) await r.leave();
    await t.close();
  });

  it('a listener attached before connect sees the participants already there, with their data, once connected and before connect resolves', async () => {
    const bob = await rawJoin('early', 'bob', { role: 'speaker' });
    expect((await emitAck(bob.client, 'mute', { kind: 'video', muted: true })).ok).to.equal(true);
    const alice = room();
    const joined: Array<{ identity: string; metadata: unknown; selfMuted: unknown; state: ConnectionState; resolved: boolean }> = [];
    let resolved = false;
    alice.on(RoomEvent.ParticipantJoined, (participant) =>
      joined.push({
        identity: participant.identity,
        metadata: participant.metadata,
        selfMuted: participant.selfMuted,
        state: alice.state,
        resolved,
      }),
    );
    const states: ConnectionState[] = [];
    alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
    expect(alice.state).to.equal(ConnectionState.Connecting);
    await alice.connect(t.url, t.mint({ room: 'early', user: 'alice' }));
    resolved = true;
    expect(states).to.deep.equal([ConnectionState.Connected]);
    expect(joined).to.deep.equal([
      { identity: 'bob', metadata: { role: 'speaker' }, selfMuted: { audio: false, video: true }, state: 'connected', resolved: false },
    ]);
    expect(alice.participants.get('bob')?.id).to.equal(bob.id);

    // One who joins afterwards is announced as before; nobody twice.
    await rawJoin('early', 'carol');
    await waitFor(() => joined.length === 2, 5000, 'carol announced');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(joined.map((j) => [j.identity, j.resolved])).to.deep.equal([
      ['bob', false],
      ['carol', true],
    ]);
  });

  it('Room.connect (the shorthand) still resolves with the participants there, and its later listeners get no announcement of them', async () => {
    await rawJoin('short', 'bob');
    const alice = await Room.connect(t.url, t.mint({ room: 'short', user: 'alice' }), { webrtc, statsIntervalMs: 0 });
    rooms.push(alice);
    const joined: string[] = [];
    alice.on(RoomEvent.ParticipantJoined, (participant) => joined.push(participant.identity));
    expect(alice.state).to.equal(ConnectionState.Connected);
    expect([...alice.participants.keys()]).to.deep.equal(['bob']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(joined).to.deep.equal([]);
  });

  it('a Room connects once: a second connect rejects with invalid_state, after success and after failure', async () => {
    const alice = room();
    const token = t.mint({ room: 'once', user: 'alice' });
    await alice.connect(t.url, token);
    const second = await rejection(alice.connect(t.url, token));
    expect(second.code).to.equal('invalid_state');
    expect(alice.state).to.equal(ConnectionState.Connected);

    const refused = room();
    const seen = watch(refused);
    const failed = await rejection(refused.connect(t.url, 'not-a-token'));
    expect(failed.code).to.equal('token_invalid');
    expect(seen.states).to.deep.equal([ConnectionState.Disconnected]);
    expect(seen.reasons).to.deep.equal([DisconnectReason.JoinFailed]);
    expect((await rejection(refused.connect(t.url, token))).code).to.equal('invalid_state');
  });

  it('without a WebRTC implementation connect rejects with webrtc_unavailable', async () => {
    const bare = new Room({ statsIntervalMs: 0 });
    expect((await rejection(bare.connect(t.url, t.mint({ room: 'bare', user: 'alice' })))).code).to.equal('webrtc_unavailable');
    expect(bare.state).to.equal(ConnectionState.Disconnected);
  });

  it('leave() during connect resolves once the join on its way is undone: a new Room of the same identity right after is not replaced by it', async () => {
    const token = t.mint({ room: 'leave-while-joining', user: 'strict' });
    for (let round = 0; round < 5; round++) {
      const joins: string[] = [];
      const onJoin = (_room: unknown, peer: { userId: string; id: string }) => {
        if (peer.userId === 'strict') joins.push(peer.id);
      };
      const stopWatching = t.server.rooms.on('peer_joined', onJoin);
      try {
        // What React's StrictMode does with a provider's Room: connect, leave at once, connect a new one.
        const first = room();
        const seen = watch(first);
        const connecting = first.connect(t.url, token).catch((error: SwitchboardError) => error.code);
        await first.leave();
        const joinsWhenLeft = joins.length;
        expect(await connecting, 'the first connect, undone').to.be.oneOf([undefined, 'not_connected']);
        expect(seen.reasons, 'the first Room ended once, by its leave').to.deep.equal([DisconnectReason.ClientInitiated]);

        const second = room();
        const secondSeen = watch(second);
        await second.connect(t.url, token);
        await new Promise((r) => setTimeout(r, 300));
        expect(joins.length, 'no join of the first Room landed after its leave resolved').to.equal(joinsWhenLeft + 1);
        expect(second.state, `round ${round}: ${JSON.stringify(secondSeen)}`).to.equal(ConnectionState.Connected);
        expect(secondSeen.reasons).to.deep.equal([]);
        const live = t.server.rooms.get('t1', 'leave-while-joining');
        expect([...(live?.peers.values() ?? [])].map((peer) => peer.id)).to.deep.equal([second.localParticipant?.id]);
        await second.leave();
      } finally {
        stopWatching();
      }
    }
  });

  describe('Disconnected, once, with the reason', () => {
    const connected = async (roomId: string, user: string, options: RoomOptions = {}) => {
      const r = room(options);
      const seen = watch(r);
      const token = t.mint({ room: roomId, user });
      await r.connect(t.url, token);
      return { room: r, seen, token };
    };
    const ended = (r: Room) => waitFor(() => r.state === ConnectionState.Disconnected, 10000, 'disconnected');

    it('leave: client_initiated', async () => {
      const { room: alice, seen } = await connected('bye', 'alice');
      await alice.leave();
      await alice.leave();
      expect(seen.states).to.deep.equal([ConnectionState.Connected, ConnectionState.Disconnected]);
      expect(seen.reasons).to.deep.equal([DisconnectReason.ClientInitiated]);
    });

    it('kicked by a room admin: kicked', async () => {
      const { room: bob, seen } = await connected('kick', 'bob');
      const admin = await t.join({ room: 'kick', user: 'admin', role: 'host', grants: { hidden: true } });
      expect((await emitAck(admin.client, 'admin:kick', { peer_id: bob.localParticipant?.id, reason: 'spam' })).ok).to.equal(true);
      await ended(bob);
      expect(seen.reasons).to.deep.equal([DisconnectReason.Kicked]);
      expect(seen.errors).to.deep.equal(['forbidden']);
    });

    it('room deleted through the API: room_closed', async () => {
      const { room: alice, seen } = await connected('closing', 'alice');
      expect((await call(t, 'DELETE', '/api/v1/rooms/closing', { secret: 'secret-t1' })).status).to.equal(204);
      await ended(alice);
      expect(seen.reasons).to.deep.equal([DisconnectReason.RoomClosed]);
    });

    it('server shut down (no other node): reconnecting with reason server_shutdown; without a reconnect policy: server_shutdown', async () => {
      const { room: alice } = await connected('shutdown', 'alice');
      const { room: bob, seen } = await connected('shutdown', 'bob', { reconnectPolicy: null });
      const reconnecting = new Promise<string>((resolve) => alice.once(RoomEvent.Reconnecting, resolve));
      await t.server.close();
      await ended(bob);
      expect(seen.reasons).to.deep.equal([DisconnectReason.ServerShutdown]);
      // A shutdown is not final: the SDK waits for the server to come back (see test/sdk/serverRestart.test.ts).
      expect(await reconnecting).to.equal('server_shutdown');
      expect(alice.state).to.equal(ConnectionState.Reconnecting);
      await alice.leave();
    });

    it('token revoked: token_revoked', async () => {
      const { room: alice, seen, token } = await connected('revoke', 'alice');
      const { jti } = jwt.decode(token) as { jti: string };
      expect((await call(t, 'POST', '/api/v1/tokens/revoke', { secret: 'secret-t1', body: { jti } })).status).to.equal(200);
      await ended(alice);
      expect(seen.reasons).to.deep.equal([DisconnectReason.TokenRevoked]);
    });

    it('server gone, the policy gives up: reconnect_failed; with no policy: connection_lost', async () => {
      const policy = { nextRetryDelayInMs: ({ retryCount }: { retryCount: number }) => (retryCount < 1 ? 50 : null) };
      const { room: retrying, seen: seenRetrying } = await connected('gone', 'alice', { reconnectPolicy: policy, requestTimeoutMs: 2000 });
      const { room: once, seen: seenOnce } = await connected('gone', 'bob', { reconnectPolicy: null });
      await new Promise<void>((resolve) => t.server.io.close(() => resolve()));
      await ended(retrying);
      await ended(once);
      expect(seenRetrying.reasons).to.deep.equal([DisconnectReason.ReconnectFailed]);
      expect(seenOnce.reasons).to.deep.equal([DisconnectReason.ConnectionLost]);
      expect(seenOnce.states).to.deep.equal([ConnectionState.Connected, ConnectionState.Disconnected]);
    });
  });

  describe('own mute', () => {
    it('the others get TrackMuted/TrackUnmuted from the mute event; late joiners read it from the join', async () => {
      const alice = room();
      await alice.connect(t.url, t.mint({ room: 'mute', user: 'alice' }));
      const bob = await rawJoin('mute', 'bob');
      await waitFor(() => alice.participants.has('bob'), 5000, 'bob seen');
      const events: Array<[string, string, string]> = [];
      alice.on(RoomEvent.TrackMuted, (p, kind) => events.push(['muted', p.identity, kind]));
      alice.on(RoomEvent.TrackUnmuted, (p, kind) => events.push(['unmuted', p.identity, kind]));

      expect(await emitAck(bob.client, 'mute', { kind: 'audio', muted: true })).to.deep.equal({ ok: true });
      await waitFor(() => events.length === 1, 5000, 'TrackMuted');
      expect(alice.participants.get('bob')?.selfMuted).to.deep.equal({ audio: true, video: false });
      // Not the admin's mute.
      expect(alice.participants.get('bob')?.muted).to.deep.equal({ audio: false, video: false });

      const late = await t.join({ room: 'mute', user: 'dave' });
      const bobInfo = late.ack.peers.find((p) => p.user_id === 'bob');
      expect(bobInfo?.self_muted).to.deep.equal({ audio: true, video: false });
      expect(late.ack.peers.find((p) => p.user_id === 'alice')).to.not.have.property('self_muted');

      expect(await emitAck(bob.client, 'mute', { kind: 'audio', muted: false })).to.deep.equal({ ok: true });
      await waitFor(() => events.length === 2, 5000, 'TrackUnmuted');
      expect(events).to.deep.equal([
        ['muted', 'bob', 'audio'],
        ['unmuted', 'bob', 'audio'],
      ]);
      expect(alice.participants.get('bob')?.selfMuted).to.deep.equal({ audio: false, video: false });
    });

    it('an unchanged state is not broadcast; a token without canPublish is refused', async () => {
      const bob = await rawJoin('quiet', 'bob');
      const watcher = await t.join({ room: 'quiet', user: 'watcher' });
      const updates = collect(watcher.client, 'peer_updated');
      expect((await emitAck(bob.client, 'mute', { kind: 'video', muted: true })).ok).to.equal(true);
      expect((await emitAck(bob.client, 'mute', { kind: 'video', muted: true })).ok).to.equal(true);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(updates).to.have.length(1);
      expect(updates[0]).to.include({ id: bob.id });
      expect((updates[0] as { self_muted: unknown }).self_muted).to.deep.equal({ audio: false, video: true });

      const viewer = await t.join({ room: 'quiet', user: 'viewer', grants: { canPublish: false } });
      const refused = await emitAck(viewer.client, 'mute', { kind: 'audio', muted: true });
      expect(refused.ok).to.equal(false);
      expect((refused as { error: { code: string } }).error.code).to.equal('forbidden');
    });

    it('answers payload_invalid to a malformed mute, and not_in_room before a join', async () => {
      const bob = await rawJoin('bad', 'bob');
      for (const payload of [
        { kind: 'screen', muted: true },
        { kind: 'audio', muted: 'yes' },
        { kind: 'audio' },
        { kind: 'audio', muted: true, extra: 1 },
        'audio',
        null,
      ]) {
        const answer = await emitAck(bob.client, 'mute', payload);
        expect(answer.ok, JSON.stringify(payload)).to.equal(false);
        expect((answer as { error: { code: string } }).error.code, JSON.stringify(payload)).to.equal('payload_invalid');
      }
      const lone = await t.connect(t.mint({ room: 'bad', user: 'lone' }));
      const early = await emitAck(lone, 'mute', { kind: 'audio', muted: true });
      expect((early as { error: { code: string } }).error.code).to.equal('not_in_room');
    });

    it('the SDK: setMicrophoneEnabled(false) mutes its tracks and tells the room; the first enable captures through options.getUserMedia', async () => {
      const source = new wrtc.nonstandard.RTCAudioSource();
      const captured: MediaStreamTrack[] = [];
      const getUserMedia = async (constraints: MediaStreamConstraints): Promise<MediaStream> => {
        expect(constraints).to.deep.equal({ audio: true });
        const track = source.createTrack() as unknown as MediaStreamTrack;
        captured.push(track);
        return new wrtc.MediaStream([track]) as unknown as MediaStream;
      };
      // Alone in the room (a watcher on a raw socket): no peer connection carries the wrtc track.
      const alice = room({ getUserMedia });
      await alice.connect(t.url, t.mint({ room: 'sdk-mute', user: 'alice' }));
      const watcher = await t.join({ room: 'sdk-mute', user: 'watcher', grants: { hidden: true } });
      const updates = collect<{ self_muted?: unknown; tracks?: Array<{ track_id: string; kind: string; source: string }> }>(
        watcher.client,
        'peer_updated',
      );
      try {
        expect(alice.isMicrophoneEnabled).to.equal(false);
        await alice.setMicrophoneEnabled(true);
        expect(captured).to.have.length(1);
        expect(alice.microphoneTrack).to.equal(captured[0]);
        expect(alice.isMicrophoneEnabled).to.equal(true);
        // The capture is announced as the microphone (publish_track) before its media.
        await waitFor(() => updates.length === 1, 5000, 'peer_updated (track announced)');
        const announced = updates[0]?.tracks?.map(({ track_id, kind, source }) => ({ track_id, kind, source }));
        expect(announced).to.deep.equal([{ track_id: captured[0]?.id, kind: 'audio', source: 'microphone' }]);
        await alice.setMicrophoneEnabled(false);
        expect(captured[0]?.enabled).to.equal(false);
        expect(alice.isMicrophoneEnabled).to.equal(false);
        await waitFor(() => updates.length === 2, 5000, 'peer_updated');
        expect(updates[1]?.self_muted).to.deep.equal({ audio: true, video: false });
        await alice.setMicrophoneEnabled(true);
        // Unmuted, not captured again.
        expect(captured).to.have.length(1);
        expect(captured[0]?.enabled).to.equal(true);
        await waitFor(() => updates.length === 3, 5000, 'peer_updated');
        expect(updates[2]).to.not.have.property('self_muted');
      } finally {
        await alice.leave();
        // Captured by the room: stopped by its leave.
        expect(captured[0]?.readyState).to.equal('ended');
      }
    });

    it('the SDK emits TrackMuted/TrackUnmuted for its own participant when it mutes itself, not for an admin mute nor an unchanged state', async () => {
      const source = new wrtc.nonstandard.RTCAudioSource();
      const captured: MediaStreamTrack[] = [];
      const getUserMedia = async (): Promise<MediaStream> => {
        const track = source.createTrack() as unknown as MediaStreamTrack;
        captured.push(track);
        return new wrtc.MediaStream([track]) as unknown as MediaStream;
      };
      // Alone in the room (the watcher and the admin are hidden raw sockets): no peer connection carries the wrtc track.
      const alice = room({ getUserMedia });
      await alice.connect(t.url, t.mint({ room: 'local-mute', user: 'alice' }));
      const watcher = await t.join({ room: 'local-mute', user: 'watcher', grants: { hidden: true } });
      const updates = collect<{ self_muted?: unknown }>(watcher.client, 'peer_updated');
      /** Each event as the listener saw it: the participant, the kind, its selfMuted then, and the microphone track's enabled then. */
      const events: Array<{ event: string; local: boolean; identity: string; kind: string; selfMuted: unknown; enabled: unknown }> = [];
      const record = (event: string) => (p: RemoteParticipant | NonNullable<Room['localParticipant']>, kind: 'audio' | 'video') =>
        events.push({
          event,
          local: p === alice.localParticipant,
          identity: p.identity,
          kind,
          selfMuted: { ...p.selfMuted },
          enabled: alice.microphoneTrack?.enabled,
        });
      alice.on(RoomEvent.TrackMuted, record('muted'));
      alice.on(RoomEvent.TrackUnmuted, record('unmuted'));
      const byAdmin: Array<[string, boolean]> = [];
      alice.on(RoomEvent.MutedByAdmin, (kind, muted) => byAdmin.push([kind, muted]));
      try {
        expect(alice.localParticipant?.selfMuted).to.deep.equal({ audio: false, video: false });
        // The first enable captures: nothing was muted, so nothing is told.
        await alice.setMicrophoneEnabled(true);
        expect(events).to.deep.equal([]);

        await alice.setMicrophoneEnabled(false);
        // Emitted by the time the call resolves, with the track already disabled.
        expect(events).to.deep.equal([
          { event: 'muted', local: true, identity: 'alice', kind: 'audio', selfMuted: { audio: true, video: false }, enabled: false },
        ]);
        expect(alice.localParticipant?.selfMuted).to.deep.equal({ audio: true, video: false });
        // Unchanged: no event, nothing broadcast.
        await alice.setMicrophoneEnabled(false);
        expect(events).to.have.length(1);
        // The camera with nothing captured: the state alone, told the same way.
        await alice.setCameraEnabled(false);

        // A room admin's mute is MutedByAdmin, not TrackMuted.
        const admin = await t.join({ room: 'local-mute', user: 'admin', role: 'host', grants: { hidden: true } });
        const aliceId = alice.localParticipant?.id;
        expect((await emitAck(admin.client, 'admin:mute', { peer_id: aliceId, kind: 'audio', muted: true })).ok).to.equal(true);
        await waitFor(() => byAdmin.length === 1, 5000, 'mutedByAdmin');
        expect((await emitAck(admin.client, 'admin:mute', { peer_id: aliceId, kind: 'audio', muted: false })).ok).to.equal(true);
        await waitFor(() => byAdmin.length === 2, 5000, 'unmuted by admin');

        await alice.setMicrophoneEnabled(true);
        expect(events.map((e) => [e.event, e.local, e.kind, e.selfMuted, e.enabled])).to.deep.equal([
          ['muted', true, 'audio', { audio: true, video: false }, false],
          ['muted', true, 'video', { audio: true, video: true }, false],
          ['unmuted', true, 'audio', { audio: false, video: true }, true],
        ]);
        expect(alice.localParticipant?.selfMuted).to.deep.equal({ audio: false, video: true });
        // The room heard the same changes (the admin's mutes come as peer_updated too, with the same
        // self_muted; so does the microphone's announcement, publish_track, before any mute).
        const told = () =>
          updates.map((u) => JSON.stringify(u.self_muted ?? null)).filter((state, i, all) => state !== (i === 0 ? 'null' : all[i - 1]));
        await waitFor(() => told().length === 3, 5000, 'peer_updated');
        expect(told().map((state) => JSON.parse(state) as unknown)).to.deep.equal([
          { audio: true, video: false },
          { audio: true, video: true },
          { audio: false, video: true },
        ]);
      } finally {
        await alice.leave();
      }
    });

    it('the own mute outlives a drop: the held place keeps it, or the SDK tells it again on its rejoin', async () => {
      await t.close();
      t = await startServer({ RESUME_GRACE_MS: '5000' });
      const alice = room();
      await alice.connect(t.url, t.mint({ room: 'drop-mute', user: 'alice' }));
      const watcher = await t.join({ room: 'drop-mute', user: 'watcher', grants: { hidden: true } });
      const updates = collect<{ self_muted?: unknown }>(watcher.client, 'peer_updated');
      // Muted with nothing captured: the state alone.
      await alice.setMicrophoneEnabled(false);
      await waitFor(() => updates.length === 1, 5000, 'peer_updated');
      const id = alice.localParticipant?.id;
      const states: ConnectionState[] = [];
      alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
      (alice as unknown as { signal: { socket: { io: { engine: { close(): void } } } } }).signal.socket.io.engine.close();
      await waitFor(() => states.at(-1) === ConnectionState.Connected, 10000, 'rejoined');
      expect(alice.localParticipant?.id, 'the same peer id (resumed)').to.equal(id);
      await waitFor(
        () => t.server.rooms.get('t1', 'drop-mute')?.peers.get(id as string)?.selfMuted.audio === true,
        5000,
        'the resumed peer muted',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Nobody was told it unmuted meanwhile.
      expect(updates.map((u) => u.self_muted)).to.deep.equal(updates.map(() => ({ audio: true, video: false })));
    });

    it('the SDK tells its own mute again when it rejoins under a new id (no place held)', async () => {
      await t.close();
      t = await startServer({ RESUME_GRACE_MS: '0' });
      const alice = room();
      await alice.connect(t.url, t.mint({ room: 'new-id', user: 'alice' }));
      await alice.setCameraEnabled(false);
      const id = alice.localParticipant?.id;
      const states: ConnectionState[] = [];
      alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
      (alice as unknown as { signal: { socket: { io: { engine: { close(): void } } } } }).signal.socket.io.engine.close();
      await waitFor(() => states.at(-1) === ConnectionState.Connected, 10000, 'rejoined');
      const newId = alice.localParticipant?.id as string;
      expect(newId).to.not.equal(id);
      await waitFor(() => t.server.rooms.get('t1', 'new-id')?.peers.get(newId)?.selfMuted.video === true, 5000, 'told again');
    });

    it('in Node without getUserMedia, the camera and microphone reject with media_unavailable', async () => {
      const alice = room();
      await alice.connect(t.url, t.mint({ room: 'no-media', user: 'alice' }));
      expect((await rejection(alice.setCameraEnabled(true))).code).to.equal('media_unavailable');
      expect((await rejection(alice.setMicrophoneEnabled(true))).code).to.equal('media_unavailable');
      const denied = room({
        getUserMedia: () => Promise.reject(Object.assign(new Error('Permission denied'), { name: 'NotAllowedError' })),
      });
      await denied.connect(t.url, t.mint({ room: 'no-media', user: 'bob' }));
      const error = await rejection(denied.setCameraEnabled(true));
      expect([error.code, error.message]).to.deep.equal([
        'media_unavailable',
        'could not capture video: NotAllowedError: Permission denied',
      ]);
      // A switch with nothing captured only picks the device for the next enable.
      await alice.switchDevice('videoinput', 'some-camera');
      expect(alice.cameraTrack).to.equal(null);
    });
  });
});

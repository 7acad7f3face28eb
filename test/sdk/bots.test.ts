import wrtc from '@roamhq/wrtc';
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, SwitchboardError, type DataPayload } from '../../client-sdk/src/index.js';
import { emitAck, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { withoutCandidates, WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };

describe('SDK with Node bots (@roamhq/wrtc)', function () {
  this.timeout(30000);
  let t: TestServer;
  const rooms: Room[] = [];

  const connect = async (room: string, user: string, role: 'guest' | 'listener' | 'host' = 'guest', extra = {}) => {
    const r = await Room.connect(t.url, t.mint({ room, user, role }), { webrtc, statsIntervalMs: 0, ...extra });
    rooms.push(r);
    return r;
  };

  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    for (const r of rooms.splice(0)) await r.leave();
    await t.close();
  });

  it('two bots exchange reliable data both ways, exactly once, and see each other join and leave', async () => {
    const alice = await connect('bots', 'alice');
    const joined: string[] = [];
    alice.on(RoomEvent.ParticipantJoined, (p) => joined.push(p.identity));
    const received: Array<[string, DataPayload]> = [];
    alice.on(RoomEvent.Data, (payload, from) => received.push([from.identity, payload]));

    const bob = await connect('bots', 'bob');
    const bobReceived: Array<[string, DataPayload]> = [];
    bob.on(RoomEvent.Data, (payload, from) => bobReceived.push([from.identity, payload]));
    expect([...bob.participants.keys()]).to.deep.equal(['alice']);
    await waitFor(() => joined.includes('bob'), 5000, 'participantJoined');

    // Sent at once: the reliable channel queues until it opens.
    bob.send('hello alice');
    bob.send({ n: 1, nested: { ok: true } });
    bob.send(new Uint8Array([1, 2, 3]));
    alice.send('hello bob');
    await waitFor(() => received.length === 3 && bobReceived.length === 1, 15000, 'data');
    await new Promise((r) => setTimeout(r, 200));
    expect(received).to.deep.equal([
      ['bob', 'hello alice'],
      ['bob', { n: 1, nested: { ok: true } }],
      ['bob', new Uint8Array([1, 2, 3])],
    ]);
    expect(bobReceived).to.deep.equal([['alice', 'hello bob']]);

    const left = new Promise<string>((resolve) => alice.once(RoomEvent.ParticipantLeft, (p) => resolve(p.identity)));
    await bob.leave();
    expect(await left).to.equal('bob');
    expect(alice.participants.size).to.equal(0);
  });

  it('recovers reliable messages lost on the path: the receiver asks the sender to resend (sync)', async () => {
    const alice = await connect('sync', 'alice');
    const bob = await connect('sync', 'bob');
    const got: number[] = [];
    bob.on(RoomEvent.Data, (payload) => got.push((payload as { n: number }).n));
    alice.send({ n: 1 });
    await waitFor(() => got.length === 1, 15000, 'first message');
    // Lose messages 2 and 3 on alice's only path to bob, as a path retired mid-migration would.
    const link = (alice as unknown as { links: Map<string, { send(text: string, reliable: boolean): void }> }).links.values().next().value;
    if (!link) throw new Error('no link');
    const send = link.send.bind(link);
    const dropped = new Set<string>();
    const batched: string[] = [];
    link.send = (text, reliable) => {
      const lost = /"n":([23])\}/.exec(text)?.[1];
      if (text.startsWith('{"b":')) batched.push(text);
      if (lost && !dropped.has(lost))
        dropped.add(lost); // the first copy only: the resend goes through
      else send(text, reliable);
    };
    for (let n = 2; n <= 5; n++) alice.send({ n });
    await waitFor(() => got.length === 5, 5000, 'the lost messages, resent');
    expect([...dropped]).to.deep.equal(['2', '3']);
    expect(got).to.deep.equal([1, 2, 3, 4, 5]);
    // The resends and the answer went as one batch message (a few SCTP chunks, not one per message).
    expect(batched.length, 'batched resends').to.be.greaterThan(0);
    expect(
      (JSON.parse(batched[0] as string) as { b: string[] }).b.map(
        (inner) => (JSON.parse(inner) as { d?: { n: number }; c?: string }).d?.n ?? (JSON.parse(inner) as { c: string }).c,
      ),
    ).to.include.members([2, 3, 'synced']);
  });

  it('disables its tracks of the kind a room admin muted, and enables them again on unmute', async () => {
    const guest = await connect('muted', 'guest');
    const source = new wrtc.nonstandard.RTCAudioSource();
    const track = source.createTrack();
    try {
      await guest.publish(track);
      const events: Array<[string, boolean]> = [];
      guest.on(RoomEvent.MutedByAdmin, (kind, muted) => events.push([kind, muted]));
      // A hidden admin: no peer connection to it carries the track (the wrtc audio source then
      // never meets a closing peer connection).
      const admin = await t.join({ room: 'muted', user: 'admin', role: 'host', grants: { hidden: true } });
      const guestId = guest.localParticipant?.id;
      expect((await emitAck(admin.client, 'admin:mute', { peer_id: guestId, kind: 'audio', muted: true })).ok).to.equal(true);
      await waitFor(() => events.length === 1, 5000, 'mutedByAdmin');
      expect(events).to.deep.equal([['audio', true]]);
      expect(track.enabled).to.equal(false);
      expect(guest.localParticipant?.muted).to.deep.equal({ audio: true, video: false });
      expect((await emitAck(admin.client, 'admin:mute', { peer_id: guestId, kind: 'audio', muted: false })).ok).to.equal(true);
      await waitFor(() => events.length === 2, 5000, 'unmuted');
      expect(track.enabled).to.equal(true);
    } finally {
      await guest.leave();
      track.stop();
    }
  });

  it('delivers to chosen identities only with send(..., {to})', async () => {
    const a = await connect('to', 'a');
    const b = await connect('to', 'b');
    const c = await connect('to', 'c');
    const got = { b: [] as DataPayload[], c: [] as DataPayload[] };
    b.on(RoomEvent.Data, (p) => got.b.push(p));
    c.on(RoomEvent.Data, (p) => got.c.push(p));
    a.send('for b only', { to: ['b'] });
    a.send('for all');
    await waitFor(() => got.b.length === 2 && got.c.length === 1, 15000, 'targeted data');
    expect(got.b).to.deep.equal(['for b only', 'for all']);
    expect(got.c).to.deep.equal(['for all']);
  });

  it('refuses publish and data without the grants, with code forbidden', async () => {
    const listener = await connect('grants', 'l', 'listener');
    const track = { id: 'fake', kind: 'audio' } as unknown as MediaStreamTrack;
    const error = await listener.publish(track).then(
      () => null,
      (e: SwitchboardError) => e,
    );
    expect(error).to.be.instanceOf(SwitchboardError);
    expect(error?.code).to.equal('forbidden');
  });

  it('reports link quality to the server, which keeps it per peer and in metrics', async () => {
    await connect('quality', 'a', 'guest', { statsIntervalMs: 300 });
    const b = await connect('quality', 'b', 'guest', { statsIntervalMs: 300 });
    b.send('warm up');
    const peerA = () => t.server.rooms.get('t1', 'quality')?.peerByUser('a');
    await waitFor(
      () => (peerA()?.quality?.links.length ?? 0) > 0 && peerA()?.quality?.links[0]?.rtt_ms !== undefined,
      15000,
      'quality report',
    );
    const link = peerA()?.quality?.links[0];
    expect(link?.peer_id).to.equal(b.localParticipant?.id);
    expect(link?.candidate_type).to.equal('host');
    expect(link?.rtt_ms).to.be.a('number').and.at.least(0);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).to.match(/switchboard_client_rtt_seconds_count\{candidate_type="host"\} [1-9]/);
  });

  it('rejects connect with the server code on a bad token', async () => {
    const error = await Room.connect(t.url, 'garbage', { webrtc }).then(
      () => null,
      (e: SwitchboardError) => e,
    );
    expect(error?.code).to.equal('token_invalid');
  });

  it('heals after the server drops its socket: rejoins and data flows again', async () => {
    const alice = await connect('heal', 'alice');
    let refreshed = 0;
    const bob = await connect('heal', 'bob', 'guest', {
      tokenRefresher: async () => {
        refreshed++;
        return t.mint({ room: 'heal', user: 'bob' });
      },
    });
    const states: ConnectionState[] = [];
    bob.on(RoomEvent.ConnectionStateChanged, (s) => states.push(s));
    const received: DataPayload[] = [];
    alice.on(RoomEvent.Data, (p) => received.push(p));
    bob.send('before');
    await waitFor(() => received.length === 1, 15000, 'first message');

    // Server-side drop of bob's socket (what a network blip or a proxy restart looks like).
    const bobPeer = t.server.rooms.get('t1', 'heal')?.peerByUser('bob');
    bobPeer?.socket.conn.close();
    await waitFor(() => states.includes(ConnectionState.Reconnecting), 5000, 'reconnecting');
    await waitFor(() => bob.state === ConnectionState.Connected, 10000, 'reconnected');
    bob.send('after');
    await waitFor(() => received.length === 2, 15000, 'message after healing');
    expect(received).to.deep.equal(['before', 'after']);
    expect(alice.participants.get('bob')?.id).to.equal(bob.localParticipant?.id);
    expect(refreshed, 'token refresher calls').to.be.at.least(1);
  });

  it('replaces a mesh link whose connection never starts ICE, ICE restarts included (both sides get new connections)', async function () {
    this.timeout(90000);
    // Each bot's first connection behaves like the stuck Chromium connections seen in CI: no
    // candidate ever reaches its ICE agent (none announced, the peer's ignored), so ICE stays new.
    const stuckFirst = () => {
      let created = 0;
      const stuck: RTCPeerConnection[] = [];
      const Base = WrtcPeerConnection;
      class FirstStuck extends Base {
        constructor(configuration?: RTCConfiguration) {
          super(configuration);
          if (created++ > 0) return;
          stuck.push(this);
          const dispatch = this.dispatchEvent.bind(this);
          this.dispatchEvent = (event: Event) => (event.type === 'icecandidate' ? true : dispatch(event));
          this.addIceCandidate = async () => undefined;
          const setRemote = this.setRemoteDescription.bind(this);
          this.setRemoteDescription = (d: RTCSessionDescriptionInit) => setRemote({ type: d.type, sdp: withoutCandidates(d.sdp) });
        }
      }
      return { webrtc: { RTCPeerConnection: FirstStuck as unknown as typeof RTCPeerConnection }, stuck };
    };
    const a = stuckFirst();
    const b = stuckFirst();
    const alice = await connect('stuck', 'alice', 'guest', { webrtc: a.webrtc });
    const received: string[] = [];
    alice.on(RoomEvent.Data, (payload) => received.push(String(payload)));
    const bob = await connect('stuck', 'bob', 'guest', { webrtc: b.webrtc });
    bob.send('through the second connection');
    await waitFor(() => received.length === 1, 60000, 'data after the link was replaced');
    expect(received).to.deep.equal(['through the second connection']);
    // Both first connections were given up (closed), and the links now run on new ones.
    expect(a.stuck[0]?.connectionState).to.equal('closed');
    expect(b.stuck[0]?.connectionState).to.equal('closed');
    const links = (room: Room) =>
      (room as unknown as { links: Map<string, { pc: RTCPeerConnection; counters: { iceRestarts: number } }> }).links;
    const bobLink = [...links(bob).values()][0];
    expect(bobLink?.pc).to.not.equal(b.stuck[0]);
    expect(bobLink?.pc.connectionState).to.equal('connected');
    expect([...links(alice).values()][0]?.pc).to.not.equal(a.stuck[0]);
  });
});

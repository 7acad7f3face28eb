/**
 * Issue 18, calls survive restarts: a mesh of three @roamhq/wrtc SDK peers on a server that
 * shuts down (room_closed server_shutdown, as on SIGTERM) and starts again on the same port
 * about a second later. A shutdown is not final for the SDK: every peer reports Reconnecting
 * (reason server_shutdown), rejoins by itself once the server is back (within 10 s), reports
 * Reconnected, and reliable data sent after the return arrives exactly once and in order.
 */
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, type DataPayload } from '../../client-sdk/src/index.js';
import { freePort } from '../helpers/clusterProcess.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };
const BACK_WITHIN_MS = 10_000;

interface Member {
  name: string;
  room: Room;
  received: Map<string, number[]>;
  events: string[];
}

describe('SDK: a server restart does not end the call (issue 18)', function () {
  this.timeout(60_000);
  let t: TestServer | undefined;
  const members: Member[] = [];

  after(async () => {
    await Promise.all(members.map((m) => m.room.leave()));
    await t?.close();
  });

  it('every peer is back in the room within 10 s of the restart, without a new Room; data after the return exactly once', async () => {
    const port = String(await freePort());
    const env = { PORT: port, TURN_ENABLED: 'false' };
    t = await startServer(env);
    const url = t.url;
    const server = t;
    for (const name of ['alice', 'bob', 'carol']) {
      const room = await Room.connect(url, server.mint({ room: 'restart', user: name, ttlS: 3600 }), { webrtc, statsIntervalMs: 0 });
      const member: Member = { name, room, received: new Map(), events: [] };
      room.on(RoomEvent.Data, (payload: DataPayload, participant) => {
        const n = (payload as { n: number }).n;
        member.received.set(participant.identity, [...(member.received.get(participant.identity) ?? []), n]);
      });
      room.on(RoomEvent.Reconnecting, (reason) => member.events.push(`reconnecting ${reason}`));
      room.on(RoomEvent.Reconnected, () => member.events.push('reconnected'));
      room.on(RoomEvent.Disconnected, (reason) => member.events.push(`disconnected ${reason}`));
      members.push(member);
    }
    await waitFor(() => members.every((m) => m.room.participants.size === 2), 10_000, 'everyone sees everyone');

    // SIGTERM's path: rooms get room_closed (server_shutdown), then the server closes.
    await server.close();
    const downAt = Date.now();
    await waitFor(() => members.every((m) => m.room.state === ConnectionState.Reconnecting), 5_000, 'every peer reconnecting');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t = await startServer(env);
    expect(t.url).to.equal(url);
    await waitFor(() => members.every((m) => m.room.state === ConnectionState.Connected), BACK_WITHIN_MS, 'every peer back');
    const backMs = Date.now() - downAt;
    console.log(`      every peer back in the room ${backMs} ms after the shutdown (the server was down ~1 s)`);
    expect(backMs).to.be.lessThan(BACK_WITHIN_MS);
    await waitFor(() => members.every((m) => m.room.participants.size === 2), 10_000, 'everyone sees everyone again');
    for (const member of members) {
      expect(member.events, member.name).to.deep.equal(['reconnecting server_shutdown', 'reconnected']);
    }

    // Data after the return: numbered messages, each exactly once and in order at every other peer.
    const COUNT = 50;
    for (let n = 1; n <= COUNT; n++) for (const member of members) member.room.send({ n });
    const expected = Array.from({ length: COUNT }, (_, k) => k + 1);
    await waitFor(
      () => members.every((m) => members.every((o) => o === m || (m.received.get(o.name)?.filter((n) => n >= 1).length ?? 0) >= COUNT)),
      15_000,
      'the messages sent after the return',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const member of members)
      for (const other of members)
        if (other !== member) expect(member.received.get(other.name), `${other.name} -> ${member.name}`).to.deep.equal(expected);
  });
});

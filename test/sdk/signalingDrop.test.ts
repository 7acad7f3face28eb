/**
 * Issue 18, calls survive drops: a mesh of three @roamhq/wrtc SDK peers, one of which reaches
 * the server through a proxy that is cut for 5 s (its signaling connection drops and cannot come
 * back meanwhile). The server holds its place; the SDK rejoins with resume under the same peer
 * id. Nobody sees a participant leave or join, the mesh links are the same connections before
 * and after, and reliable data sent by everyone throughout (during the cut too) arrives exactly
 * once and in order.
 */
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, type DataPayload } from '../../client-sdk/src/index.js';
import { startCutProxy, type CutProxy } from '../helpers/cutProxy.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };
const CUT_MS = 5_000;

interface Member {
  name: string;
  room: Room;
  sent: number;
  received: Map<string, number[]>;
  events: string[];
}

const linksOf = (room: Room): Map<string, RTCPeerConnection> =>
  new Map([...(room as unknown as { links: Map<string, { pc: RTCPeerConnection }> }).links].map(([id, link]) => [id, link.pc]));

describe('SDK: a signaling drop leaves a mesh call alone (issue 18)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let proxy: CutProxy;
  const members: Member[] = [];

  before(async () => {
    t = await startServer({ RESUME_GRACE_MS: '15000', TURN_ENABLED: 'false' });
    proxy = await startCutProxy(t.url);
  });
  after(async () => {
    await Promise.all(members.map((m) => m.room.leave()));
    await proxy.close();
    await t.close();
  });

  it('a peer cut off for 5 s comes back under its id: no leave or join anywhere, the same links, data exactly once', async () => {
    for (const name of ['alice', 'bob', 'carol']) {
      const url = name === 'bob' ? proxy.url : t.url;
      const room = await Room.connect(url, t.mint({ room: 'drop', user: name }), { webrtc, statsIntervalMs: 0 });
      const member: Member = { name, room, sent: 0, received: new Map(), events: [] };
      room.on(RoomEvent.Data, (payload: DataPayload, participant) => {
        member.received.set(participant.identity, [...(member.received.get(participant.identity) ?? []), Number(payload)]);
      });
      members.push(member);
    }
    await waitFor(
      () => members.every((m) => [...linksOf(m.room).values()].filter((pc) => pc.connectionState === 'connected').length === 2),
      20_000,
      'mesh up',
    );
    for (const member of members) {
      member.room.on(RoomEvent.ParticipantLeft, (p) => member.events.push(`left ${p.identity}`));
      member.room.on(RoomEvent.ParticipantJoined, (p) => member.events.push(`joined ${p.identity}`));
      member.room.on(RoomEvent.ConnectionStateChanged, (state) => member.events.push(`state ${state}`));
    }
    const ids = members.map((m) => m.room.localParticipant?.id);
    const linksBefore = members.map((m) => linksOf(m.room));
    const sender = setInterval(() => {
      for (const member of members) member.room.send(String(++member.sent));
    }, 20);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const bob = members[1] as Member;
      proxy.cut();
      await waitFor(() => bob.room.state === ConnectionState.Reconnecting, 5_000, 'bob reconnecting');
      await new Promise((resolve) => setTimeout(resolve, CUT_MS));
      expect(t.server.rooms.get('t1', 'drop')?.expected.has(ids[1] as string), "bob's place is held").to.equal(true);
      proxy.restore();
      await waitFor(() => bob.room.state === ConnectionState.Connected, 20_000, 'bob back');
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      clearInterval(sender);
    }

    for (const [i, member] of members.entries()) {
      const expected = member.name === 'bob' ? ['state reconnecting', 'state connected'] : [];
      expect(member.events, member.name).to.deep.equal(expected);
      expect(member.room.localParticipant?.id, `${member.name} kept its id`).to.equal(ids[i]);
      for (const [id, pc] of linksOf(member.room))
        expect(pc, `${member.name}'s link to ${id} is the same connection`).to.equal(linksBefore[i]?.get(id));
    }
    await waitFor(
      () => members.every((m) => members.every((o) => o === m || (m.received.get(o.name)?.length ?? 0) >= o.sent)),
      15_000,
      'all data delivered',
    );
    for (const member of members)
      for (const other of members) {
        if (other === member) continue;
        expect(member.received.get(other.name), `${other.name} -> ${member.name}`).to.deep.equal(
          Array.from({ length: other.sent }, (_, k) => k + 1),
        );
      }
    const room = t.server.rooms.get('t1', 'drop');
    expect(room?.connectedCount).to.equal(3);
    expect(room?.expected.size).to.equal(0);
  });
});

/**
 * Issue 17, drain, through the SDK: three @roamhq/wrtc peers in a mesh room on node A, which
 * drains. Each SDK follows room_moved to node B under its old peer id: the mesh links are the
 * same RTCPeerConnections before and after, nobody sees a participant leave or join, the
 * connection state stays Connected, and reliable data sent throughout arrives exactly once.
 */
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent, type DataPayload } from '../../client-sdk/src/index.js';
import { useCluster } from '../helpers/cluster.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';
import { waitUntil } from './nodes.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };

interface Member {
  name: string;
  room: Room;
  sent: number;
  received: Map<string, number[]>;
  seen: string[];
}

/** The RTCPeerConnection of each link, by remote peer id. */
const linksOf = (room: Room): Map<string, RTCPeerConnection> =>
  new Map([...(room as unknown as { links: Map<string, { pc: RTCPeerConnection }> }).links].map(([id, link]) => [id, link.pc]));

describe('Cluster: an SDK mesh room follows its room to another node (issue 17, drain)', function () {
  this.timeout(60_000);
  const suite = useCluster();

  it('keeps every mesh link and delivers data exactly once; no leave, no join, no state change', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '8000', SHUTDOWN_TIMEOUT_MS: '5000', TURN_ENABLED: 'false' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const members: Member[] = [];
    try {
      for (const name of ['alice', 'bob', 'carol']) {
        const room = await Room.connect(a.url, cluster.mint({ room: 'sdk-move', user: name }), { webrtc, statsIntervalMs: 0 });
        const member: Member = { name, room, sent: 0, received: new Map(), seen: [] };
        room.on(RoomEvent.Data, (payload: DataPayload, participant) => {
          const list = member.received.get(participant.identity) ?? [];
          list.push(Number(payload));
          member.received.set(participant.identity, list);
        });
        members.push(member);
      }
      await waitUntil(
        () => members.every((m) => [...linksOf(m.room).values()].filter((pc) => pc.connectionState === 'connected').length === 2),
        'mesh up',
        20_000,
      );
      for (const member of members) {
        member.room.on(RoomEvent.ParticipantLeft, (p) => member.seen.push(`left ${p.identity}`));
        member.room.on(RoomEvent.ParticipantJoined, (p) => member.seen.push(`joined ${p.identity}`));
        member.room.on(RoomEvent.ConnectionStateChanged, (state) => member.seen.push(`state ${state}`));
        member.room.on(RoomEvent.Moved, (url) => member.seen.push(`moved ${url}`));
      }
      const linksBefore = members.map((m) => linksOf(m.room));
      const ids = members.map((m) => m.room.localParticipant?.id);

      const sender = setInterval(() => {
        for (const member of members) member.room.send(String(++member.sent));
      }, 20);
      await new Promise((resolve) => setTimeout(resolve, 300));
      a.running = false;
      const closing = a.server.close();
      await waitUntil(() => members.every((m) => m.seen.includes(`moved ${b.url}`)), 'every SDK moved', 10_000);
      await closing;
      await new Promise((resolve) => setTimeout(resolve, 500));
      clearInterval(sender);

      for (const [i, member] of members.entries()) {
        expect(member.seen, member.name).to.deep.equal([`moved ${b.url}`]);
        expect(member.room.state).to.equal(ConnectionState.Connected);
        expect(member.room.localParticipant?.id, 'the same peer id').to.equal(ids[i]);
        const after = linksOf(member.room);
        expect([...after.keys()].sort()).to.deep.equal([...(linksBefore[i] as Map<string, RTCPeerConnection>).keys()].sort());
        for (const [id, pc] of after) expect(pc, `${member.name}'s link to ${id} is the same connection`).to.equal(linksBefore[i]?.get(id));
      }
      // Every message of every sender arrives exactly once, in order.
      await waitUntil(
        () => members.every((m) => members.every((o) => o === m || (m.received.get(o.name)?.length ?? 0) === o.sent)),
        'all data delivered',
        10_000,
      );
      for (const member of members)
        for (const other of members) {
          if (other === member) continue;
          expect(member.received.get(other.name), `${member.name} from ${other.name}`).to.deep.equal(
            Array.from({ length: other.sent }, (_, k) => k + 1),
          );
        }
      // The room is b's now, with all three participants.
      const moved = b.server.rooms.all().find((room) => room.id === 'sdk-move');
      expect(moved?.connectedCount).to.equal(3);
    } finally {
      await Promise.all(members.map((m) => m.room.leave()));
    }
  });
});

/**
 * Review of the SDK's leave() racing a rejoin: leave() while a room_moved join (Room.move) or a
 * reconnection (Room.reconnect) is in flight. The rejoin completes after the teardown and
 * installs a new signaling connection that nobody closes: the participant stays joined on the
 * server (a ghost the others keep seeing) although the app left and got Disconnected.
 */
import { expect } from 'chai';
import { ConnectionState, Room, RoomEvent } from '../../client-sdk/src/index.js';
import { useCluster } from '../helpers/cluster.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';
import { waitUntil } from '../cluster/nodes.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Internals = {
  signal: { socket: { on(event: string, listener: () => void): void; connected: boolean; io: { engine: { close(): void } } } } | null;
};

describe('review: SDK leave() during a rejoin', function () {
  this.timeout(40_000);

  describe('during a reconnection (single node)', function () {
    let t: TestServer | undefined;
    afterEach(async () => t?.close());

    it('leave() while the reconnection is joining leaves no participant behind on the server', async function () {
      t = await startServer({ RESUME_GRACE_MS: '5000', TURN_ENABLED: 'false' });
      const server = t;
      const token = server.mint({ room: 'r', user: 'alice' });
      const bob = await Room.connect(server.url, server.mint({ room: 'r', user: 'bob' }), { webrtc, statsIntervalMs: 0 });
      // tokenRefresher runs in reconnect() after its `leaving` check and before establish(): the app leaves right then.
      const alice: Room = await Room.connect(server.url, token, {
        webrtc,
        statsIntervalMs: 0,
        reconnectPolicy: { nextRetryDelayInMs: () => 0 },
        tokenRefresher: async () => {
          void alice.leave();
          return token;
        },
      });
      const states: string[] = [];
      alice.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
      // The signaling transport drops (the client sees it: a network cut).
      (alice as unknown as Internals).signal?.socket.io.engine.close();
      await waitUntil(() => states.includes(ConnectionState.Disconnected), 'alice left (Disconnected)', 5_000);
      await sleep(1_500);
      const room = server.server.rooms.get('t1', 'r');
      const aliceInRoom = [...(room?.peers.values() ?? [])].some((peer) => peer.userId === 'alice');
      expect(
        { state: alice.state, aliceInRoom, socketOpen: Boolean((alice as unknown as Internals).signal?.socket.connected), states },
        'after leave(): Disconnected, not in the room, no socket',
      ).to.deep.equal({
        state: ConnectionState.Disconnected,
        aliceInRoom: false,
        socketOpen: false,
        states: [ConnectionState.Reconnecting, ConnectionState.Disconnected],
      });
      await bob.leave();
    });
  });

  describe('during a move (cluster drain)', function () {
    const suite = useCluster();

    it('leave() as room_moved arrives leaves no participant behind on the new node', async function () {
      const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '4000', SHUTDOWN_TIMEOUT_MS: '3000', TURN_ENABLED: 'false' });
      const [a, b] = cluster.nodes;
      if (!a || !b) throw new Error('two nodes');
      const alice = await Room.connect(a.url, cluster.mint({ room: 'mv', user: 'alice' }), { webrtc, statsIntervalMs: 0 });
      const bob = await Room.connect(a.url, cluster.mint({ room: 'mv', user: 'bob' }), { webrtc, statsIntervalMs: 0 });
      // Registered after the SDK's own room_moved listener: Room.move() has started when this runs.
      (alice as unknown as Internals).signal?.socket.on('room_moved', () => void alice.leave());
      a.running = false;
      const closing = a.server.close();
      await waitUntil(() => alice.state === ConnectionState.Disconnected, 'alice left', 10_000);
      await sleep(1_500);
      const room = b.server.rooms.get('t1', 'mv');
      const aliceOnB = [...(room?.peers.values() ?? [])].some((peer) => peer.userId === 'alice');
      const bobSeesAlice = [...bob.participants.values()].some((p) => p.identity === 'alice');
      await bob.leave();
      await closing;
      expect({ aliceOnB, bobSeesAlice }, 'alice left: she is neither joined on the new node nor listed by bob').to.deep.equal({
        aliceOnB: false,
        bobSeesAlice: false,
      });
    });
  });
});

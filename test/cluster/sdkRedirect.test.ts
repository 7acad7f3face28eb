import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Server as SocketIoServer } from 'socket.io';
import { Room, RoomEvent, SwitchboardError, type DataPayload } from '../../client-sdk/src/index.js';
import { connectSignal } from '../../client-sdk/src/RoomSignaling.js';
import { useCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const webrtc = { RTCPeerConnection: WrtcPeerConnection };

/** A Socket.IO server that refuses every handshake with wrong_node towards `target()`, counting the attempts. */
async function redirector(target: () => string): Promise<{ url: string; attempts: number; close(): Promise<void> }> {
  const http: HttpServer = createHttpServer();
  const io = new SocketIoServer(http);
  const state = {
    url: '',
    attempts: 0,
    close: () => new Promise<void>((resolve) => io.close(() => resolve())),
  };
  io.use((_socket, next) => {
    state.attempts++;
    const ws_url = target();
    next(Object.assign(new Error('wrong_node'), { data: { code: 'wrong_node', message: `go to ${ws_url}`, ws_url } }));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return state;
}

describe('SDK in a cluster: one redirect followed, never a second (issue 17)', function () {
  this.timeout(30_000);

  it('a second wrong_node is not followed: a clear wrong_node SwitchboardError, one attempt per node', async function () {
    const first = await redirector(() => second.url);
    const second = await redirector(() => first.url);
    try {
      let failure: unknown;
      try {
        await connectSignal(first.url, 'any-token', { requestTimeoutMs: 5000 });
      } catch (error) {
        failure = error;
      }
      expect(failure).to.be.instanceOf(SwitchboardError);
      expect((failure as SwitchboardError).code).to.equal('wrong_node');
      expect((failure as SwitchboardError).message).to.match(/redirected twice/);
      expect([first.attempts, second.attempts]).to.deep.equal([1, 1]);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  describe('against real nodes', function () {
    const rooms: Room[] = [];

    // Registered before useCluster's: the rooms leave before the nodes close.
    afterEach(async function () {
      for (const room of rooms.splice(0)) await room.leave();
    });

    const suite = useCluster();

    it("connectSignal follows one redirect to the room's node", async function () {
      const cluster = await suite.start(2);
      const [a, b] = cluster.nodes;
      if (!a || !b) throw new Error('two nodes');
      const owner = await connectSignal(a.url, cluster.mint({ room: 'sdk' }), { requestTimeoutMs: 5000 });
      await owner.signal.request('join', {});
      const follower = await connectSignal(b.url, cluster.mint({ room: 'sdk' }), { requestTimeoutMs: 5000 });
      try {
        expect(follower.url).to.equal(a.url);
        expect(follower.signal.socket.connected).to.equal(true);
      } finally {
        owner.signal.close();
        follower.signal.close();
      }
    });

    it('Room.connect through a node that does not own the room lands on the owner, and data flows both ways', async function () {
      const cluster = await suite.start(2);
      const [a, b] = cluster.nodes;
      if (!a || !b) throw new Error('two nodes');
      const alice = await Room.connect(a.url, cluster.mint({ room: 'bots', user: 'alice' }), { webrtc, statsIntervalMs: 0 });
      rooms.push(alice);
      const bob = await Room.connect(b.url, cluster.mint({ room: 'bots', user: 'bob' }), { webrtc, statsIntervalMs: 0 });
      rooms.push(bob);
      expect([...bob.participants.keys()]).to.deep.equal(['alice']);
      const atAlice: DataPayload[] = [];
      const atBob: DataPayload[] = [];
      alice.on(RoomEvent.Data, (payload) => atAlice.push(payload));
      bob.on(RoomEvent.Data, (payload) => atBob.push(payload));
      bob.send('hello alice');
      alice.send('hello bob');
      await waitFor(() => atAlice.length === 1 && atBob.length === 1, 15_000, 'data both ways');
      expect([atAlice, atBob]).to.deep.equal([['hello alice'], ['hello bob']]);
    });

    it("when the room's node goes away, the Room reconnects through the URL it was given and the room is served there", async function () {
      const cluster = await suite.start(2);
      const [a, b] = cluster.nodes;
      if (!a || !b) throw new Error('two nodes');
      const owner = await connectSignal(a.url, cluster.mint({ room: 'survive', user: 'alice' }), { requestTimeoutMs: 5000 });
      await owner.signal.request('join', {});
      // Given b's URL, redirected to a.
      const bob = await Room.connect(b.url, cluster.mint({ room: 'survive', user: 'bob' }), { webrtc, statsIntervalMs: 0 });
      rooms.push(bob);
      const states: string[] = [];
      bob.on(RoomEvent.ConnectionStateChanged, (state) => states.push(state));
      await cluster.stopNode(0);
      await waitFor(() => states.at(-1) === 'connected', 15_000, 'bob reconnected');
      expect(states).to.include('reconnecting');
      expect(a.server.rooms.get('t1', 'survive')).to.equal(undefined);
      expect(b.server.rooms.get('t1', 'survive')?.peerByUser('bob')).to.not.equal(undefined);
      owner.signal.close();
    });
  });
});

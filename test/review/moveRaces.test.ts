/**
 * Review of drain moves: what an admin does to a room while it moves (between room_moved and
 * the clients' resume on the new node). Raw Socket.IO clients against in-process nodes.
 */
import { expect } from 'chai';
import { callNode, useCluster, type TestCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from '../cluster/nodes.js';

type Client = Awaited<ReturnType<TestCluster['connect']>>;

interface Watched {
  client: Client;
  id: string;
  events: Array<{ event: string; payload: unknown }>;
}

const named = (watched: Watched, event: string): unknown[] => watched.events.filter((e) => e.event === event).map((e) => e.payload);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('review: admin actions during a drain move', function () {
  this.timeout(30_000);
  const suite = useCluster();

  async function joinOnA(cluster: TestCluster, room: string, user: string, role: 'guest' | 'host' = 'guest'): Promise<Watched> {
    const a = cluster.nodes[0];
    if (!a) throw new Error('node a');
    const client = await cluster.connect(a.url, { token: cluster.mint({ room, user, role }) });
    const events: Watched['events'] = [];
    client.onAny((event: string, payload: unknown) => events.push({ event, payload }));
    const ack = (await emitAck(client, 'join', {})) as { ok: boolean; self: { id: string } };
    if (!ack.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
    return { client, id: ack.self.id, events };
  }

  async function resumeOnB(cluster: TestCluster, room: string, user: string, id: string, role: 'guest' | 'host' = 'guest') {
    const b = cluster.nodes[1];
    if (!b) throw new Error('node b');
    const client = await cluster.connect(b.url, { token: cluster.mint({ room, user, role }) });
    return (await emitAck(client, 'join', { resume: { peer_id: id } })) as {
      ok: boolean;
      self: { id: string };
      peers: Array<{ id: string }>;
    };
  }

  it('a kick by a room admin still on the old node reaches the kicked client (kicked) and frees its place on the new node', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '3000', RESUME_GRACE_MS: '10000' });
    const [a] = cluster.nodes;
    if (!a) throw new Error('node');
    const host = await joinOnA(cluster, 'kick-move', 'host', 'host');
    const bob = await joinOnA(cluster, 'kick-move', 'bob');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(host, 'room_moved').length === 1 && named(bob, 'room_moved').length === 1, 'room_moved');
    // The host acts before following the room (its SDK is still on the old connection).
    const kick = (await emitAck(host.client, 'admin:kick', { peer_id: bob.id })) as { ok: boolean };
    expect(kick.ok).to.equal(true);
    await sleep(300);
    const hostBack = await resumeOnB(cluster, 'kick-move', 'host', host.id, 'host');
    host.client.disconnect();
    expect(
      { bobHeardKicked: named(bob, 'kicked').length, bobListedOnB: hostBack.peers.some((p) => p.id === bob.id) },
      'bob is told he was kicked, and the new node does not keep his place',
    ).to.deep.equal({ bobHeardKicked: 1, bobListedOnB: false });
    await closing;
  });

  it('an HTTP kick during the move (routed to the new owner) removes a participant that has not followed yet', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '3000', RESUME_GRACE_MS: '10000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('nodes');
    const alice = await joinOnA(cluster, 'kick-http', 'alice');
    const bob = await joinOnA(cluster, 'kick-http', 'bob');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(bob, 'room_moved').length === 1, 'room_moved');
    const kicked = await callNode(b, 'DELETE', '/api/v1/rooms/kick-http/participants/bob', { secret: 'secret-t1' });
    const bobBack = await resumeOnB(cluster, 'kick-http', 'bob', bob.id).catch(() => null);
    alice.client.disconnect();
    bob.client.disconnect();
    await closing;
    expect(
      { status: kicked.status, bobResumed: bobBack?.ok === true && bobBack.self.id === bob.id },
      'the kick is applied; bob cannot take his place back',
    ).to.deep.equal({
      status: 204,
      bobResumed: false,
    });
  });

  it('a room DELETEd during the move closes it for the clients still on the old node (room_closed)', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '3000', RESUME_GRACE_MS: '10000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('nodes');
    const alice = await joinOnA(cluster, 'del-move', 'alice');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(alice, 'room_moved').length === 1, 'room_moved');
    const deleted = await callNode(b, 'DELETE', '/api/v1/rooms/del-move', { secret: 'secret-t1' });
    expect(deleted.status).to.equal(204);
    await sleep(500);
    const closed = named(alice, 'room_closed');
    const stillServedOnA = a.server.rooms.get('t1', 'del-move') !== undefined;
    alice.client.disconnect();
    await closing;
    expect({ closed, stillServedOnA }, 'alice hears room_closed; the old node stops serving the deleted room').to.deep.equal({
      closed: [{ reason: 'deleted' }],
      stillServedOnA: false,
    });
  });
});

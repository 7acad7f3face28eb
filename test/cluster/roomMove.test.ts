/**
 * Issue 17, drain: a draining node's rooms move to another node. The lease is handed over
 * (epoch+1), the target holds a place for every participant, the clients get room_moved and
 * take their places back under their old peer ids (join with `resume`), and nobody sees a leave
 * or a join. Raw Socket.IO clients against in-process nodes on a real redis-server.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { useCluster, type TestCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

type Client = Awaited<ReturnType<TestCluster['connect']>>;

interface Watched {
  client: Client;
  events: Array<{ event: string; payload: unknown }>;
}

function watch(client: Client): Watched {
  const events: Watched['events'] = [];
  client.onAny((event: string, payload: unknown) => events.push({ event, payload }));
  return { client, events };
}

const named = (watched: Watched, event: string): unknown[] => watched.events.filter((e) => e.event === event).map((e) => e.payload);

async function join(client: Client, payload: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const ack = (await emitAck(client, 'join', payload)) as Record<string, unknown>;
  if (ack.ok !== true) throw new Error(`join refused: ${JSON.stringify(ack)}`);
  return ack;
}

const selfId = (ack: Record<string, unknown>): string => (ack.self as { id: string }).id;
const peerIds = (ack: Record<string, unknown>): string[] => (ack.peers as Array<{ id: string }>).map((p) => p.id).sort();

describe('Cluster: a draining node moves its rooms (issue 17, drain)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  async function roomOnA(cluster: TestCluster, users: string[], room = 'moving'): Promise<Array<Watched & { id: string }>> {
    const [a] = cluster.nodes;
    if (!a) throw new Error('node a');
    const joined = [];
    for (const user of users) {
      const watched = watch(await cluster.connect(a.url, { token: cluster.mint({ room, user }) }));
      joined.push({ ...watched, id: selfId(await join(watched.client)) });
    }
    return joined;
  }

  it('hands the lease over with a higher epoch, tells every client room_moved, and the clients take their places back unseen', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '8000', SHUTDOWN_TIMEOUT_MS: '5000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const [alice, bob] = await roomOnA(cluster, ['alice', 'bob']);
    if (!alice || !bob) throw new Error('two clients');
    const redis = new Redis(suite.redis.url, { lazyConnect: true });
    await redis.connect();
    try {
      const leaseKey = (await redis.keys('*lease*moving*'))[0];
      if (!leaseKey) throw new Error('no lease key for the room');
      const before = await redis.get(leaseKey);
      expect(before).to.match(new RegExp(`^${a.id}:\\d+$`));

      // What the clients hear from here on.
      alice.events.length = 0;
      bob.events.length = 0;
      a.running = false;
      const closing = a.server.close();
      await waitUntil(() => named(alice, 'room_moved').length === 1 && named(bob, 'room_moved').length === 1, 'room_moved on both');
      expect(named(alice, 'room_moved')[0]).to.deep.equal({ ws_url: b.url });
      const after = await redis.get(leaseKey);
      expect(after?.startsWith(`${b.id}:`)).to.equal(true);
      expect(Number(after?.split(':').pop())).to.be.greaterThan(Number(before?.split(':').pop()));

      // Alice moves first: her old id is given back, and bob's place is in the room.
      const alice2 = watch(await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'alice' }) }));
      const ackA = await join(alice2.client, { resume: { peer_id: alice.id } });
      expect(selfId(ackA)).to.equal(alice.id);
      expect(peerIds(ackA)).to.deep.equal([bob.id]);
      alice.client.disconnect();

      const bob2 = watch(await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'bob' }) }));
      const ackB = await join(bob2.client, { resume: { peer_id: bob.id } });
      expect(selfId(ackB)).to.equal(bob.id);
      expect(peerIds(ackB)).to.deep.equal([alice.id]);
      bob.client.disconnect();

      // Signals flow between the old ids on the new node.
      const delivered = new Promise((resolve) => bob2.client.once('signal', resolve));
      const sent = await emitAck(alice2.client, 'signal', { to: bob.id, candidate: { candidate: '' } });
      expect(sent.ok).to.equal(true);
      expect(await delivered).to.deep.equal({ from: alice.id, candidate: { candidate: '' } });

      // The drain ends once both clients left a's room, well before SHUTDOWN_DRAIN_MS.
      const started = Date.now();
      await closing;
      expect(Date.now() - started).to.be.lessThan(4_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const watched of [alice, bob, alice2, bob2]) {
        expect(named(watched, 'room_closed'), 'no room_closed').to.deep.equal([]);
        expect(named(watched, 'peer_left'), 'no peer_left').to.deep.equal([]);
        expect(named(watched, 'peer_joined'), 'no peer_joined').to.deep.equal([]);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('gives up a place nobody takes back within RESUME_GRACE_MS: the others see that participant leave', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '3000', RESUME_GRACE_MS: '600' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const [alice, bob] = await roomOnA(cluster, ['alice', 'bob']);
    if (!alice || !bob) throw new Error('two clients');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(alice, 'room_moved').length === 1, 'room_moved');
    const alice2 = watch(await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'alice' }) }));
    await join(alice2.client, { resume: { peer_id: alice.id } });
    await waitUntil(() => named(alice2, 'peer_left').length === 1, 'peer_left for bob', 3_000);
    expect(named(alice2, 'peer_left')[0]).to.deep.equal({ id: bob.id, user_id: 'bob', reason: 'timeout' });
    alice.client.disconnect();
    bob.client.disconnect();
    await closing;
  });

  it('never gives a place to another user, and a user coming back without its id replaces its place (the others see it leave and join anew)', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '3000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const [alice, bob, carol] = await roomOnA(cluster, ['alice', 'bob', 'carol']);
    if (!alice || !bob || !carol) throw new Error('three clients');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(carol, 'room_moved').length === 1, 'room_moved');

    const alice2 = watch(await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'alice' }) }));
    await join(alice2.client, { resume: { peer_id: alice.id } });
    // Carol claims bob's id: she gets a new one, bob's place stays, and her own place goes (she came back anew).
    const carol2 = watch(await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'carol' }) }));
    const ackC = await join(carol2.client, { resume: { peer_id: bob.id } });
    expect(selfId(ackC)).to.not.equal(bob.id);
    expect(selfId(ackC)).to.not.equal(carol.id);
    expect(peerIds(ackC)).to.deep.equal([alice.id, bob.id].sort());
    await waitUntil(() => named(alice2, 'peer_joined').length === 1, 'alice sees carol join anew');
    expect(named(alice2, 'peer_left')).to.deep.equal([{ id: carol.id, user_id: 'carol', reason: 'duplicate_identity' }]);
    expect((named(alice2, 'peer_joined')[0] as { id: string }).id).to.equal(selfId(ackC));

    // A malformed resume is refused at the boundary.
    const bob2 = await cluster.connect(b.url, { token: cluster.mint({ room: 'moving', user: 'bob' }) });
    const refused = (await emitAck(bob2, 'join', { resume: { peer_id: 'not-an-id' } })) as { ok: boolean; error?: { code: string } };
    expect(refused.ok).to.equal(false);
    expect(refused.error?.code).to.equal('payload_invalid');
    const ackB = await join(bob2, { resume: { peer_id: bob.id } });
    expect(selfId(ackB)).to.equal(bob.id);
    for (const watched of [alice, bob, carol]) watched.client.disconnect();
    await closing;
  });

  it('a room on the SFU moves onto a router of the new node, ready before its clients arrive', async function () {
    const cluster = await suite.start(2, {
      SHUTDOWN_DRAIN_MS: '3000',
      SHUTDOWN_TIMEOUT_MS: '3000',
      SFU_ENABLED: 'true',
      SFU_WORKERS: '1',
      SFU_LISTEN_IP: '127.0.0.1',
      MESH_THRESHOLD: '1',
    });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const [alice, bob] = await roomOnA(cluster, ['alice', 'bob'], 'sfu-room');
    if (!alice || !bob) throw new Error('two clients');
    await waitUntil(() => named(alice, 'mode_changed').length > 0, 'the room is promoted');
    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => named(alice, 'room_moved').length === 1, 'room_moved');
    const alice2 = await cluster.connect(b.url, { token: cluster.mint({ room: 'sfu-room', user: 'alice' }) });
    const ack = await join(alice2, { resume: { peer_id: alice.id } });
    expect((ack.room as { mode: string }).mode).to.equal('sfu');
    expect(ack.sfu, 'the join ack carries the new router').to.be.an('object');
    alice.client.disconnect();
    bob.client.disconnect();
    await closing;
  });
});

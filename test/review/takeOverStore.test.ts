/**
 * Review of owner-death take-over (RoomSnapshots + RoomMoves.adopt): the snapshot a previous
 * owner left in Redis is adopted without looking at the stored room, so what the tenant did
 * through the API while nobody owned the room (delete it, lock it) is undone by the next join.
 *
 * The owner "dies" here as a node closing without SHUTDOWN_DRAIN_MS while another node serves
 * (README: leases released, sockets disconnected, the room continues on another node); a
 * kill -9 leaves the same snapshot behind.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { sha256Hex } from '../../config/index.js';
import { callNode, connectFollowing, useCluster, type ConnectRefusal, type TestCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from '../cluster/nodes.js';

async function addTenant(cluster: TestCluster, tenantId: string): Promise<void> {
  const first = cluster.nodes[0];
  if (!first) throw new Error('node');
  await first.server.store.tenants.create({
    tenant_id: tenantId,
    name: tenantId,
    api_key: `key-${tenantId}`,
    api_secret_sha256: sha256Hex(`secret-${tenantId}`),
    limits: { ...first.server.config.defaultTenantLimits, auto_create_rooms: false },
    webhook: null,
    created_at: new Date(),
  });
}

/** Joins `room` of tenant t2 as `user` through node 0 (following a redirect); returns the node url and peer id. */
async function joinRoom(cluster: TestCluster, room: string, user: string, role: 'guest' | 'host' = 'guest') {
  const first = cluster.nodes[0];
  if (!first) throw new Error('node');
  const token = cluster.mint({ tenant: 't2', room, user, role });
  const { client, url } = await connectFollowing(cluster, first.url, { token });
  const ack = (await emitAck(client, 'join', {})) as { ok: boolean; self: { id: string } };
  if (!ack.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
  return { client, url, id: ack.self.id };
}

/** Tries to connect and join as `user`; resolves with the join's outcome (a code, or 'joined'). */
async function tryJoin(cluster: TestCluster, room: string, user: string): Promise<string> {
  const first = cluster.nodes.find((node) => node.running);
  if (!first) throw new Error('no running node');
  const token = cluster.mint({ tenant: 't2', room, user });
  let client;
  try {
    ({ client } = await connectFollowing(cluster, first.url, { token }));
  } catch (error) {
    return (error as ConnectRefusal).data?.code ?? (error as Error).message;
  }
  const ack = (await emitAck(client, 'join', {})) as { ok: boolean; error?: { code: string } };
  return ack.ok ? 'joined' : (ack.error?.code ?? 'refused');
}

describe('review: take-over from a snapshot ignores the stored room', function () {
  this.timeout(30_000);
  const suite = useCluster();

  async function ownerGone(cluster: TestCluster, room: string): Promise<number> {
    const redis = new Redis(suite.redis.url, { lazyConnect: true });
    await redis.connect();
    try {
      await waitUntil(async () => (await redis.keys(`*cluster:room:t2:${room}`)).length > 0, 'the owner wrote the room snapshot');
      const lease = (await redis.keys(`*cluster:lease:t2:${room}`))[0];
      const owner = lease ? await redis.get(lease) : null;
      const index = cluster.nodes.findIndex((node) => owner?.startsWith(`${node.id}:`));
      if (index < 0) throw new Error('no owner');
      await cluster.stopNode(index);
      expect((await redis.keys(`*cluster:room:t2:${room}`)).length, 'the snapshot outlives its owner').to.equal(1);
      return index;
    } finally {
      redis.disconnect();
    }
  }

  it('a room DELETEd through the API while its owner was gone is not brought back by the next join', async function () {
    const cluster = await suite.start(2, { RESUME_GRACE_MS: '5000' });
    await addTenant(cluster, 't2');
    const [n0] = cluster.nodes;
    if (!n0) throw new Error('node');
    expect((await callNode(n0, 'POST', '/api/v1/rooms', { secret: 'secret-t2', body: { room_id: 'stored' } })).status).to.equal(201);
    await joinRoom(cluster, 'stored', 'alice');
    const dead = await ownerGone(cluster, 'stored');
    const survivor = cluster.nodes[1 - dead];
    if (!survivor) throw new Error('survivor');
    const deleted = await callNode(survivor, 'DELETE', '/api/v1/rooms/stored', { secret: 'secret-t2' });
    expect(deleted.status).to.equal(204);
    // The tenant does not auto-create rooms and the room is deleted: a join must be refused.
    expect(await tryJoin(cluster, 'stored', 'bob')).to.equal('room_not_found');
  });

  it('a room locked through the API while its owner was gone stays locked after the take-over', async function () {
    const cluster = await suite.start(2, { RESUME_GRACE_MS: '5000' });
    await addTenant(cluster, 't2');
    const [n0] = cluster.nodes;
    if (!n0) throw new Error('node');
    expect((await callNode(n0, 'POST', '/api/v1/rooms', { secret: 'secret-t2', body: { room_id: 'lockme' } })).status).to.equal(201);
    await joinRoom(cluster, 'lockme', 'alice');
    const dead = await ownerGone(cluster, 'lockme');
    const survivor = cluster.nodes[1 - dead];
    if (!survivor) throw new Error('survivor');
    const locked = await callNode(survivor, 'PUT', '/api/v1/rooms/lockme', { secret: 'secret-t2', body: { locked: true } });
    expect(locked.status, JSON.stringify(locked.body)).to.equal(200);
    expect(locked.body.locked).to.equal(true);
    // Eve was never in the room: a locked room refuses her.
    expect(await tryJoin(cluster, 'lockme', 'eve')).to.equal('room_locked');
  });

  it('a participant who left just before its owner went away does not come back as a held place (stale snapshot)', async function () {
    const cluster = await suite.start(2, { RESUME_GRACE_MS: '5000' });
    await addTenant(cluster, 't2');
    const [n0] = cluster.nodes;
    if (!n0) throw new Error('node');
    expect((await callNode(n0, 'POST', '/api/v1/rooms', { secret: 'secret-t2', body: { room_id: 'stale' } })).status).to.equal(201);
    const alice = await joinRoom(cluster, 'stale', 'alice');
    const bob = await joinRoom(cluster, 'stale', 'bob');
    // Both are in the snapshot; bob then leaves for good (participant_left is sent), and the owner goes away at once.
    const redis = new Redis(suite.redis.url, { lazyConnect: true });
    await redis.connect();
    try {
      await waitUntil(async () => ((await redis.get(`sb:cluster:room:t2:stale`)) ?? '').includes('"bob"'), 'bob in the snapshot');
      const lease = await redis.get('sb:cluster:lease:t2:stale');
      const ownerIndex = cluster.nodes.findIndex((node) => lease?.startsWith(`${node.id}:`));
      const left = (await emitAck(bob.client, 'leave')) as { ok: boolean };
      expect(left.ok).to.equal(true);
      await cluster.stopNode(ownerIndex);
    } finally {
      redis.disconnect();
    }
    alice.client.close();
    const survivor = cluster.nodes.find((node) => node.running);
    if (!survivor) throw new Error('survivor');
    const carol = await cluster.connect(survivor.url, { token: cluster.mint({ tenant: 't2', room: 'stale', user: 'carol' }) });
    const ack = (await emitAck(carol, 'join', {})) as { ok: boolean; peers: Array<{ user_id: string }> };
    expect(ack.ok).to.equal(true);
    expect(
      ack.peers.map((p) => p.user_id),
      'bob left: he is not in the room any more',
    ).to.not.include('bob');
  });
});

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../../config/index.js';
import { assertNodeId, ClusterKeys, roomKey } from '../../server/cluster/keys.js';
import { connectFollowing, startCluster, useCluster, type ConnectRefusal } from '../helpers/cluster.js';
import { redisUnavailable, startRedis } from '../helpers/redis.js';
import { emitAck, expectConnectError, startServer, type TestClient } from '../helpers/server.js';

const SIGNALS = 500;

/** Sends `count` candidates from one client to a peer, each acknowledged before the next is sent. */
async function sendSignals(from: TestClient, to: string, count: number, tag: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    const ack = await emitAck(from, 'signal', { to, candidate: { candidate: `${tag}:${i}` } });
    if (!ack.ok) throw new Error(`signal ${i} refused: ${ack.error.code}`);
  }
}

/** The candidates a client receives, in arrival order. */
function received(client: TestClient): string[] {
  const seen: string[] = [];
  client.on('signal', (message) => {
    if (message.candidate) seen.push(message.candidate.candidate);
  });
  return seen;
}

describe('cluster: a room lives on one node; clients that reach another are redirected (issue 17)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('two clients through different nodes: the second gets wrong_node with the owner ws_url, follows it, and 500 signals each way arrive in order, once', async function () {
    const cluster = await suite.start(2, { RATE_LIMIT_EVENTS_PER_SEC: '100000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const alice = await cluster.connect(a.url, { token: cluster.mint({ room: 'call', user: 'alice' }) });
    const aliceJoin = await emitAck(alice, 'join', {});
    expect(aliceJoin.ok).to.equal(true);

    const bobToken = cluster.mint({ room: 'call', user: 'bob' });
    const refusal = await expectConnectError(cluster.connect(b.url, { token: bobToken }));
    expect(refusal.message).to.equal('wrong_node');
    expect(refusal.data).to.deep.include({ code: 'wrong_node', ws_url: a.url });
    expect((refusal as ConnectRefusal).data?.message)
      .to.be.a('string')
      .and.not.equal('');

    const followed = await connectFollowing(cluster, b.url, { token: bobToken });
    expect(followed).to.include({ url: a.url, redirected: true });
    const bob = followed.client;
    const bobJoin = await emitAck(bob, 'join', {});
    expect(bobJoin.ok, JSON.stringify(bobJoin)).to.equal(true);
    const aliceId = (aliceJoin as unknown as { self: { id: string } }).self.id;
    const bobId = (bobJoin as unknown as { self: { id: string } }).self.id;

    const atAlice = received(alice);
    const atBob = received(bob);
    await Promise.all([sendSignals(alice, bobId, SIGNALS, 'a'), sendSignals(bob, aliceId, SIGNALS, 'b')]);
    const expected = (tag: string) => Array.from({ length: SIGNALS }, (_, i) => `${tag}:${i}`);
    // Acks come after the relay's emit on the same node: give the last frames a moment to land.
    for (let i = 0; i < 50 && (atAlice.length < SIGNALS || atBob.length < SIGNALS); i++) await new Promise((r) => setTimeout(r, 20));
    expect(atBob).to.deep.equal(expected('a'));
    expect(atAlice).to.deep.equal(expected('b'));
  });

  it('anonymous/demo rooms are placed the same way: wrong_node towards the owner', async function () {
    const cluster = await suite.start(2, { ANONYMOUS_ROOMS: 'true', ANONYMOUS_TENANT: 't1' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const first = await cluster.connect(a.url, { room: 'demo', name: 'Ann' });
    expect((await emitAck(first, 'join', {})).ok).to.equal(true);
    const refusal = await expectConnectError(cluster.connect(b.url, { room: 'demo', name: 'Ben' }));
    expect(refusal.data).to.deep.include({ code: 'wrong_node', ws_url: a.url });
    const followed = await connectFollowing(cluster, b.url, { room: 'demo', name: 'Ben' });
    expect((await emitAck(followed.client, 'join', {})).ok).to.equal(true);
  });

  it('a room with no live owner is claimed by the node the client reached', async function () {
    const cluster = await suite.start(2);
    const [, b] = cluster.nodes;
    if (!b) throw new Error('two nodes');
    const client = await cluster.connect(b.url, { token: cluster.mint({ room: 'fresh' }) });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    const owner = await b.server.cluster?.leases.owner(roomKey('t1', 'fresh'));
    expect(owner?.owner).to.equal(b.id);
  });

  it('a node that closes releases its leases: another node claims its rooms at once', async function () {
    const cluster = await suite.start(2);
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const client = await cluster.connect(a.url, { token: cluster.mint({ room: 'moving' }) });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    const raw = new Redis(suite.redis.url);
    try {
      const lease = new ClusterKeys().lease(roomKey('t1', 'moving'));
      expect(await raw.get(lease)).to.match(new RegExp(`^${a.id}:\\d+$`));
      await cluster.stopNode(0);
      expect(await raw.get(lease)).to.equal(null);
      // No wait for a TTL: the next connection, on the other node, is accepted there.
      const again = await cluster.connect(b.url, { token: cluster.mint({ room: 'moving' }) });
      expect((await emitAck(again, 'join', {})).ok).to.equal(true);
      expect(await raw.get(lease)).to.match(new RegExp(`^${b.id}:\\d+$`));
    } finally {
      raw.disconnect();
    }
  });

  it('a lease lost to another node: the room stops here at once, without room_closed; the client is sent to the new owner', async function () {
    const cluster = await suite.start(2);
    const [a, b] = cluster.nodes;
    if (!a?.server.cluster || !b) throw new Error('two nodes');
    const token = cluster.mint({ room: 'taken', user: 'carol' });
    const client = await cluster.connect(a.url, { token });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    const closedEvents: unknown[] = [];
    client.on('room_closed', (event) => closedEvents.push(event));
    const finished: string[] = [];
    a.server.rooms.on('room_finished', (room) => finished.push(room.key));
    const disconnected = new Promise<string>((resolve) => client.once('disconnect', (reason) => resolve(String(reason))));

    // Node b takes the room over with a higher epoch (as after a partition): a's next renewal finds out.
    const key = roomKey('t1', 'taken');
    const epoch = a.server.cluster.leases.epochOf(key) ?? 0;
    const raw = new Redis(suite.redis.url);
    try {
      await raw.set(new ClusterKeys().lease(key), `${b.id}:${epoch + 1}`, 'PX', 10_000);
    } finally {
      raw.disconnect();
    }
    await a.server.cluster.leases.renewNow();
    expect(await disconnected).to.equal('io server disconnect');
    expect(a.server.rooms.get('t1', 'taken')).to.equal(undefined);
    expect(closedEvents).to.deep.equal([]);
    expect(finished).to.deep.equal([]);
    await a.server.sessions.flush();
    const [session] = (await a.server.store.sessions.list('t1', { room_id: 'taken', limit: 10 })).items;
    expect(session).to.deep.include({ user_id: 'carol', disconnect_reason: 'moved' });

    const refusal = await expectConnectError(cluster.connect(a.url, { token }));
    expect(refusal.data).to.deep.include({ code: 'wrong_node', ws_url: b.url });
  });

  it('a connection whose join never comes does not keep the lease: it is released a grace period after the socket left', async function () {
    const cluster = await suite.start(1);
    const [a] = cluster.nodes;
    if (!a?.server.cluster) throw new Error('one cluster node');
    const key = roomKey('t1', 'idle');
    const client = await cluster.connect(a.url, { token: cluster.mint({ room: 'idle' }) });
    expect(a.server.cluster.leases.epochOf(key)).to.be.a('number');
    client.close();
    // The grace is 5 s by default.
    for (let i = 0; i < 400 && a.server.cluster.leases.epochOf(key) !== null; i++) await new Promise((r) => setTimeout(r, 25));
    expect(a.server.cluster.leases.epochOf(key)).to.equal(null);
    expect(await a.server.cluster.leases.owner(key)).to.equal(null);
  });
});

describe('cluster: settings', function () {
  it('the cluster is on exactly when REDIS_URL is set; heartbeat and lease timings parse; NODE_ID is a cluster node id', function () {
    expect(loadConfig({}).cluster).to.deep.include({ enabled: false, heartbeatMs: 1000, roomLeaseMs: 10_000, nodeTtlMs: 3000 });
    const clustered = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379',
      CLUSTER_HEARTBEAT_MS: '200',
      ROOM_LEASE_MS: '3000',
      NODE_ID: 'eu-1.a',
    });
    expect(clustered.cluster).to.deep.include({
      enabled: true,
      redisUrl: 'redis://127.0.0.1:6379',
      heartbeatMs: 200,
      nodeTtlMs: 600,
      roomLeaseMs: 3000,
    });
    expect(assertNodeId(clustered.nodeId)).to.equal('eu-1.a');
    for (const bad of ['a:b', 'a%b', 'x'.repeat(65), 'é']) {
      expect(() => loadConfig({ NODE_ID: bad }), bad).to.throw(ConfigError);
      expect(() => assertNodeId(bad), bad).to.throw();
    }
    expect(() => loadConfig({ CLUSTER_HEARTBEAT_MS: '10' })).to.throw(ConfigError, /CLUSTER_HEARTBEAT_MS/);
    expect(() => loadConfig({ ROOM_LEASE_MS: 'soon' })).to.throw(ConfigError, /ROOM_LEASE_MS/);
  });
});

describe('cluster: REDIS_URL unset keeps the single node', function () {
  it('no cluster, the token ws_url is PUBLIC_URL, joins need no Redis', async function () {
    const t = await startServer({ PUBLIC_URL: 'https://rtc.example.com' });
    try {
      expect(t.server.cluster).to.equal(null);
      expect(await t.server.gateway.wsUrlFor('t1', 'r')).to.equal('https://rtc.example.com');
      const { ack } = await t.join({ room: 'solo' });
      expect(ack.room.id).to.equal('solo');
      // An unknown token is still refused as before (no wrong_node on a single node).
      expect((await expectConnectError(t.connect('nope'))).message).to.equal('token_invalid');
    } finally {
      await t.close();
    }
  });
});

describe('cluster: Redis unreachable (issue 17)', function () {
  this.timeout(30_000);

  it('a room this node owns keeps working and accepts joins; a claim that cannot be answered is refused with unavailable, within seconds', async function () {
    const unavailable = redisUnavailable();
    if (unavailable) this.skip();
    const redis = await startRedis();
    // The in-memory store keeps records here, so only the cluster depends on Redis.
    const cluster = await startCluster(redis.url, 1, { STORE: 'memory' });
    try {
      const [a] = cluster.nodes;
      if (!a) throw new Error('one node');
      const alice = await cluster.connect(a.url, { token: cluster.mint({ room: 'kept', user: 'alice' }) });
      const aliceJoin = await emitAck(alice, 'join', {});
      expect(aliceJoin.ok).to.equal(true);
      await redis.stop();

      const bob = await cluster.connect(a.url, { token: cluster.mint({ room: 'kept', user: 'bob' }) });
      const bobJoin = await emitAck(bob, 'join', {});
      expect(bobJoin.ok, JSON.stringify(bobJoin)).to.equal(true);
      const aliceId = (aliceJoin as unknown as { self: { id: string } }).self.id;
      const atAlice = received(alice);
      await sendSignals(bob, aliceId, 20, 'b');
      for (let i = 0; i < 50 && atAlice.length < 20; i++) await new Promise((r) => setTimeout(r, 20));
      expect(atAlice).to.have.length(20);

      const started = Date.now();
      const refusal = await expectConnectError(cluster.connect(a.url, { token: cluster.mint({ room: 'new-room' }) }));
      expect(refusal.message).to.equal('unavailable');
      expect(refusal.data?.message).to.match(/cluster/);
      expect(Date.now() - started).to.be.below(6000);
    } finally {
      await Promise.all(cluster.nodes.map((_, i) => cluster.stopNode(i)));
      await redis.stop();
    }
  });
});

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { closeRedisConnection, createRedisConnection } from '../../server/cluster/connection.js';
import { ClusterKeys } from '../../server/cluster/keys.js';
import { NodeRegistry } from '../../server/cluster/NodeRegistry.js';
import { redisUnavailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { delay, FAST, FAST_CONNECTION, freshPrefix, startNode, waitUntil, type TestNode } from './nodes.js';

describe('cluster: NodeRegistry', function () {
  let server: RedisServer;
  let raw: Redis;
  let nodes: TestNode[] = [];
  let prefix: string;

  before(async function () {
    const unavailable = redisUnavailable();
    if (unavailable) {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
    server = await startRedis();
    raw = new Redis(server.url);
  });

  after(async function () {
    raw?.disconnect();
    await server?.stop();
  });

  beforeEach(function () {
    prefix = freshPrefix();
  });

  afterEach(async function () {
    await Promise.all(nodes.map((node) => node.close()));
    nodes = [];
  });

  const start = async (id: string, load: number): Promise<TestNode> => {
    const node = await startNode(server.url, id, { prefix, load });
    nodes.push(node);
    return node;
  };

  it('refuses node ids that cannot be key segments', function () {
    for (const nodeId of ['', 'a:b', 'a b', 'x'.repeat(65), 'ü', 'a%3A']) {
      expect(() => new NodeRegistry({ nodeId, url: 'http://x', wsUrl: 'ws://x', load: () => 0, redis: raw })).to.throw(/node id/);
    }
  });

  it('lists every live node with its entry; the load callback is read on every heartbeat', async function () {
    const a = await start('node-a', 5);
    await start('node-b', 2);
    const live = await a.registry.liveNodes();
    expect(live.map((node) => node.id)).to.deep.equal(['node-a', 'node-b']);
    expect(live[0]).to.include({ id: 'node-a', url: 'http://node-a.test', ws_url: 'ws://node-a.test', load: 5, state: 'serving' });
    expect(Date.parse(live[0]!.started_at)).to.be.closeTo(Date.now(), 10_000);
    expect(await a.registry.node('node-b')).to.include({ id: 'node-b', load: 2 });
    expect(await a.registry.node('node-z')).to.equal(null);

    a.load = 11;
    await waitUntil(async () => (await a.registry.node('node-a'))?.load === 11, 'the new load is in the entry', 2_000);
  });

  it('leastLoaded: the serving node with the lowest load; exclude and draining nodes are skipped', async function () {
    const a = await start('node-a', 5);
    const b = await start('node-b', 1);
    const c = await start('node-c', 3);
    expect((await a.registry.leastLoaded())?.id).to.equal('node-b');
    expect((await a.registry.leastLoaded({ exclude: ['node-b'] }))?.id).to.equal('node-c');

    // Draining is visible as soon as setState resolves, without waiting for a heartbeat.
    await b.registry.setState('draining');
    expect((await a.registry.node('node-b'))?.state).to.equal('draining');
    expect((await a.registry.leastLoaded())?.id).to.equal('node-c');
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.include('node-b');

    await c.registry.setState('draining');
    await a.registry.setState('draining');
    expect(await a.registry.leastLoaded()).to.equal(null);

    await b.registry.setState('serving');
    expect((await a.registry.leastLoaded())?.id).to.equal('node-b');
  });

  it('a node whose heartbeats stop (no cleanup) expires after its TTL and leaves the index', async function () {
    const a = await start('node-a', 0);
    const b = await start('node-b', 0);
    const index = new ClusterKeys(prefix).nodes();
    expect(await raw.zcard(index)).to.equal(2);

    // kill -9 of b's heartbeat path: its connection drops, nothing is removed.
    const killedAt = Date.now();
    b.registryRedis.disconnect();
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.deep.equal(['node-a', 'node-b']);
    await waitUntil(async () => (await a.registry.node('node-b')) === null, 'node-b expired', 3_000);
    expect(Date.now() - killedAt).to.be.at.most(FAST.nodeTtlMs + 500);
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.deep.equal(['node-a']);
    // The listing pruned b from the index.
    expect(await raw.zrange(index, 0, -1)).to.deep.equal(['node-a']);
    // a's own entry lives on through its heartbeats, long past one TTL.
    await delay(FAST.nodeTtlMs * 2);
    expect(await a.registry.node('node-a')).to.not.equal(null);
  });

  it('stop() removes the entry at once; a stopped node is not listed', async function () {
    const a = await start('node-a', 0);
    const b = await start('node-b', 0);
    await b.registry.stop();
    expect(await a.registry.node('node-b')).to.equal(null);
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.deep.equal(['node-a']);
    expect(await raw.zrange(new ClusterKeys(prefix).nodes(), 0, -1)).to.deep.equal(['node-a']);
  });

  it('start() rejects when Redis cannot be reached, and then no heartbeat runs', async function () {
    const redis = createRedisConnection('redis://127.0.0.1:1', { ...FAST_CONNECTION, name: 'nowhere' });
    const registry = new NodeRegistry({ nodeId: 'node-x', url: 'http://x', wsUrl: 'ws://x', load: () => 0, redis, prefix });
    const started = Date.now();
    let failure: unknown = null;
    await registry.start().catch((error: unknown) => (failure = error));
    expect(failure).to.be.an('error');
    expect(Date.now() - started).to.be.below(3_000);
    expect(registry.running).to.equal(false);
    await closeRedisConnection(redis);
  });
});

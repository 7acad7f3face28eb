import { expect } from 'chai';
import { closeRedisConnection, createRedisConnection } from '../../server/cluster/connection.js';
import { NodeRegistry } from '../../server/cluster/NodeRegistry.js';
import { delay, FAST, FAST_CONNECTION, waitUntil, type TestNode } from './nodes.js';
import { clusterSuite } from './setup.js';

describe('cluster: NodeRegistry', function () {
  const suite = clusterSuite();
  const start = (id: string, load: number): Promise<TestNode> => suite.startNode(id, { load });

  it('refuses node ids that cannot be key segments', function () {
    for (const nodeId of ['', 'a:b', 'a b', 'x'.repeat(65), 'ü', 'a%3A']) {
      expect(() => new NodeRegistry({ nodeId, url: 'http://x', wsUrl: 'ws://x', load: () => 0, redis: suite.raw })).to.throw(/node id/);
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
    const index = suite.keys.nodes();
    expect(await suite.raw.zcard(index)).to.equal(2);

    // kill -9 of b's heartbeat path: its connection drops, nothing is removed.
    const killedAt = Date.now();
    b.registryRedis.disconnect();
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.deep.equal(['node-a', 'node-b']);
    await waitUntil(async () => (await a.registry.node('node-b')) === null, 'node-b expired', 3_000);
    expect(Date.now() - killedAt).to.be.at.most(FAST.nodeTtlMs + 500);
    expect((await a.registry.liveNodes()).map((node) => node.id)).to.deep.equal(['node-a']);
    // The listing pruned b from the index.
    expect(await suite.raw.zrange(index, 0, -1)).to.deep.equal(['node-a']);
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
    expect(await suite.raw.zrange(suite.keys.nodes(), 0, -1)).to.deep.equal(['node-a']);
  });

  it('start() rejects when Redis cannot be reached, and then no heartbeat runs', async function () {
    const redis = createRedisConnection('redis://127.0.0.1:1', { ...FAST_CONNECTION, name: 'nowhere' });
    const registry = new NodeRegistry({ nodeId: 'node-x', url: 'http://x', wsUrl: 'ws://x', load: () => 0, redis, prefix: suite.prefix });
    const started = Date.now();
    let failure: unknown = null;
    await registry.start().catch((error: unknown) => (failure = error));
    expect(failure).to.be.an('error');
    expect(Date.now() - started).to.be.below(3_000);
    expect(registry.running).to.equal(false);
    await closeRedisConnection(redis);
  });
});

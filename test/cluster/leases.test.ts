import { expect } from 'chai';
import { ClusterKeys, parseRoomKey, roomKey, type RoomKey } from '../../server/cluster/keys.js';
import { RoomLeases, type ClaimResult } from '../../server/cluster/RoomLeases.js';
import { FAST, rejection, waitUntil, type TestNode } from './nodes.js';
import { clusterSuite } from './setup.js';

describe('cluster: room keys', function () {
  it('are tenant-scoped and unambiguous, and parse back', function () {
    expect(roomKey('t1', 'r')).to.not.equal(roomKey('t2', 'r'));
    // ":" inside ids cannot make two pairs share a key.
    expect(roomKey('a:b', 'c')).to.not.equal(roomKey('a', 'b:c'));
    expect(parseRoomKey(roomKey('a:b', 'c/é %'))).to.deep.equal({ tenantId: 'a:b', roomId: 'c/é %' });
    expect(() => roomKey('', 'r')).to.throw();
  });

  it('live under <prefix>cluster:, apart from the Redis store keys', function () {
    const keys = new ClusterKeys('sb:');
    const key = roomKey('t', 'r');
    for (const name of [keys.lease(key), keys.epoch(key), keys.node('n1'), keys.nodes(), keys.busChannel('n1')]) {
      expect(name.startsWith('sb:cluster:')).to.equal(true, name);
    }
  });
});

describe('cluster: RoomLeases', function () {
  const suite = clusterSuite();
  const start = (id: string, options: { leaseTtlMs?: number; renewIntervalMs?: number } = {}): Promise<TestNode> =>
    suite.startNode(id, options);

  /** The lease value Redis holds for a room. */
  const leaseOf = (key: RoomKey) => suite.raw.get(suite.keys.lease(key));

  it('3 nodes x 20 concurrent claims of one room, 20 times: one owner each time, every other claim answered with it', async function () {
    const cluster = [await start('n1'), await start('n2'), await start('n3')];
    const ownersSeen = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const key = roomKey('tenant', `race-${round}`);
      // 60 claims sent in a random order, so any node may be first.
      const order = cluster.flatMap((node) => Array.from({ length: 20 }, () => node)).sort(() => Math.random() - 0.5);
      const claims = order.map((node) => ({ claimer: node.id, result: node.leases.claim(key) }));
      const results = await Promise.all(claims.map(async ({ claimer, result }) => ({ claimer, result: await result })));

      const owners = new Set(results.filter(({ result }) => result.mine).map(({ result }) => result.owner));
      expect(owners.size, `round ${round}: owners`).to.equal(1);
      const [owner] = owners;
      const epochs = new Set(results.map(({ result }) => result.epoch));
      expect(epochs.size, `round ${round}: epochs`).to.equal(1);
      const [epoch] = epochs;
      for (const { claimer, result } of results) {
        expect(result.owner).to.equal(owner);
        expect(result.mine).to.equal(claimer === owner);
        if (!result.mine) expect(result.ws_url).to.equal(`ws://${owner}.test`);
      }
      expect(await leaseOf(key)).to.equal(`${owner}:${epoch}`);
      const holders = cluster.filter((node) => node.leases.epochOf(key) !== null).map((node) => node.id);
      expect(holders).to.deep.equal([owner]);
      ownersSeen.add(owner!);
    }
    // The winner is whichever node's script Redis ran first.
    console.log(`      owners over 20 rounds: ${[...ownersSeen].sort().join(', ')}`);
  });

  it('a claim of a room already ours keeps its epoch; owner() names the holder and its entry', async function () {
    const a = await start('node-a');
    const key = roomKey('t', 'r');
    expect(await a.leases.owner(key)).to.equal(null);
    const first = await a.leases.claim(key);
    const again = await a.leases.claim(key);
    expect(first).to.deep.equal({ mine: true, owner: 'node-a', epoch: first.epoch });
    expect(again).to.deep.equal(first);
    const owner = await a.leases.owner(key);
    expect(owner).to.deep.include({ owner: 'node-a', epoch: first.epoch });
    expect(owner?.node?.ws_url).to.equal('ws://node-a.test');
    expect(a.leases.held()).to.deep.equal([{ roomKey: key, epoch: first.epoch }]);
  });

  it('renewal keeps a held lease alive well past its TTL', async function () {
    const a = await start('node-a');
    const key = roomKey('t', 'r');
    const { epoch } = await a.leases.claim(key);
    await new Promise((resolve) => setTimeout(resolve, FAST.leaseTtlMs * 2.5));
    expect(await leaseOf(key)).to.equal(`node-a:${epoch}`);
    const ttl = await suite.raw.pttl(suite.keys.lease(key));
    expect(ttl).to.be.within(FAST.leaseTtlMs - FAST.renewIntervalMs * 2, FAST.leaseTtlMs);
    expect(a.events).to.deep.equal([]);
  });

  it('dead owner: once its registry entry expires another node takes the room over with a higher epoch, without waiting for the lease TTL; the old owner fires lost', async function () {
    // A long lease: the take-over must come from the registry's expiry, not the lease's.
    const a = await start('node-a', { leaseTtlMs: 20_000, renewIntervalMs: 300 });
    const b = await start('node-b', { leaseTtlMs: 20_000, renewIntervalMs: 300 });
    const key = roomKey('t', 'r');
    const claimedByA = await a.leases.claim(key);
    expect(claimedByA.mine).to.equal(true);

    // kill -9 of a's heartbeats: no cleanup; its lease stays in Redis with 20 s to live.
    const killedAt = Date.now();
    a.registryRedis.disconnect();
    const whileAlive = await b.leases.claim(key);
    expect(whileAlive).to.deep.include({ mine: false, owner: 'node-a', epoch: claimedByA.epoch });

    let takeover: ClaimResult | null = null;
    await waitUntil(
      async () => {
        takeover = await b.leases.claim(key);
        return takeover.mine;
      },
      'node-b owns the room',
      5_000,
    );
    const tookMs = Date.now() - killedAt;
    expect(tookMs).to.be.at.most(FAST.nodeTtlMs + 1_000);
    expect(takeover!.owner).to.equal('node-b');
    expect(takeover!.epoch).to.be.greaterThan(claimedByA.epoch);
    expect(await leaseOf(key)).to.equal(`node-b:${takeover!.epoch}`);

    // a's next renewal finds node-b's higher epoch: lost, and a holds nothing.
    await waitUntil(() => a.events.some((event) => event.event === 'lost'), 'node-a fires lost', 2_000);
    expect(a.events.filter((event) => event.event === 'lost')).to.deep.equal([
      { event: 'lost', roomKey: key, epoch: claimedByA.epoch, by: 'node-b' },
    ]);
    expect(a.leases.held()).to.deep.equal([]);
    expect(b.leases.held()).to.deep.equal([{ roomKey: key, epoch: takeover!.epoch }]);
  });

  it('fencing: after a hand-over A -> B, a stale holder of the old epoch is refused: its renewal fires lost, its release deletes nothing; B holds epoch + 1', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const key = roomKey('t', 'r');
    const { epoch } = await a.leases.claim(key);

    // A second view of node-a that missed the hand-over's answer (it still believes it holds `epoch`).
    const staleA = new RoomLeases({ registry: a.registry, redis: a.redis, leaseTtlMs: 60_000, renewIntervalMs: 30_000 });
    const staleLost: { by: string | null; epoch: number }[] = [];
    staleA.on('lost', (_key, info) => staleLost.push(info));
    staleA.start();
    try {
      expect(await staleA.claim(key)).to.deep.equal({ mine: true, owner: 'node-a', epoch });

      const handed = await a.leases.handOver(key, 'node-b');
      expect(handed).to.deep.equal({ owner: 'node-b', epoch: epoch + 1 });
      expect(a.leases.held()).to.deep.equal([]);
      expect(await leaseOf(key)).to.equal(`node-b:${epoch + 1}`);
      // The target adopts the lease by claiming it: ours, at the handed epoch.
      expect(await b.leases.claim(key)).to.deep.equal({ mine: true, owner: 'node-b', epoch: epoch + 1 });

      await staleA.renewNow();
      expect(staleLost).to.deep.equal([{ by: 'node-b', epoch }]);
      expect(staleA.held()).to.deep.equal([]);
      expect(await staleA.release(key)).to.equal(false);
      // The compare-and-set release of the old epoch cannot delete the new owner's lease.
      expect(await a.redis.sbcRelease(suite.keys.lease(key), `node-a:${epoch}`)).to.equal(0);
      expect(await leaseOf(key)).to.equal(`node-b:${epoch + 1}`);
      // a's own leases saw no loss: it gave the room away.
      expect(a.events).to.deep.equal([]);
    } finally {
      await staleA.stop();
    }
  });

  it('hand-over is refused to a dead or draining node and when the room is not ours; the room stays ours', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const key = roomKey('t', 'r');
    const { epoch } = await a.leases.claim(key);

    expect((await rejection(a.leases.handOver(key, 'node-gone'))).code).to.equal('unavailable');
    await b.registry.setState('draining');
    expect((await rejection(a.leases.handOver(key, 'node-b'))).code).to.equal('unavailable');
    expect((await rejection(a.leases.handOver(roomKey('t', 'other'), 'node-b'))).code).to.equal('conflict');
    expect((await rejection(a.leases.handOver(key, 'node-a'))).code).to.equal('payload_invalid');
    expect(a.leases.held()).to.deep.equal([{ roomKey: key, epoch }]);
    expect(await leaseOf(key)).to.equal(`node-a:${epoch}`);
    // Still renewed.
    await a.leases.renewNow();
    expect(a.events).to.deep.equal([]);
  });

  it('release frees the room at once; the next claim by another node gets a higher epoch', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const key = roomKey('t', 'r');
    const { epoch } = await a.leases.claim(key);
    expect(await a.leases.release(key)).to.equal(true);
    expect(await a.leases.release(key)).to.equal(false);
    expect(await leaseOf(key)).to.equal(null);
    const claimed = await b.leases.claim(key);
    expect(claimed.mine).to.equal(true);
    expect(claimed.epoch).to.be.greaterThan(epoch);
  });

  it('a lease that simply expired (renewals stopped) is claimed by another node with a higher epoch', async function () {
    const a = await start('node-a');
    const b = await start('node-b');
    const key = roomKey('t', 'r');
    const { epoch } = await a.leases.claim(key);
    await a.leases.stop();
    expect((await b.leases.claim(key)).mine).to.equal(false);
    await waitUntil(async () => (await leaseOf(key)) === null, 'the lease expired', FAST.leaseTtlMs + 2_000);
    const claimed = await b.leases.claim(key);
    expect(claimed).to.deep.include({ mine: true, owner: 'node-b' });
    expect(claimed.epoch).to.equal(epoch + 1);
  });

  it('claim() refuses before start() and on a node that is not registered', async function () {
    const a = await start('node-a');
    const idle = new RoomLeases({ registry: a.registry, redis: a.redis });
    expect((await rejection(idle.claim(roomKey('t', 'r')))).code).to.equal('unavailable');
    await a.registry.stop();
    expect((await rejection(a.leases.claim(roomKey('t', 'r')))).code).to.equal('unavailable');
  });
});

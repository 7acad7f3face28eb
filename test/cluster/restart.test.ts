import { expect } from 'chai';
import { roomKey, type RoomKey } from '../../server/cluster/keys.js';
import type { ClaimResult } from '../../server/cluster/RoomLeases.js';
import { AppError } from '../../server/errors.js';
import { capturedLogger } from '../helpers/logs.js';
import { delay, FAST, waitUntil, type TestNode } from './nodes.js';
import { clusterSuite } from './setup.js';

describe('cluster: a Redis restart (SIGKILL, then a new empty redis-server on the same port)', function () {
  this.timeout(30_000);
  const suite = clusterSuite({ raw: 'tolerant' });

  const leaseValues = async (rooms: readonly RoomKey[]): Promise<(string | null)[]> => {
    try {
      return await suite.raw.mget(rooms.map((key) => suite.keys.lease(key)));
    } catch {
      return rooms.map(() => 'unreachable');
    }
  };

  it('held leases come back with their owners and epochs within a few renewal periods; no room has two owners; a later claim gets a higher epoch', async function () {
    const { logger, lines } = capturedLogger('info');
    const nodes: TestNode[] = [];
    for (const id of ['node-a', 'node-b', 'node-c']) nodes.push(await suite.startNode(id, { logger }));
    const [a, b] = nodes as [TestNode, TestNode, TestNode];

    // Each node owns 4 rooms.
    const owned = new Map<RoomKey, { owner: TestNode; epoch: number }>();
    for (const node of nodes) {
      for (let i = 0; i < 4; i++) {
        const key = roomKey('tenant', `${node.id}-room-${i}`);
        const claimed = await node.leases.claim(key);
        expect(claimed.mine).to.equal(true);
        owned.set(key, { owner: node, epoch: claimed.epoch });
      }
    }
    const rooms = [...owned.keys()];
    const expected = rooms.map((key) => `${owned.get(key)!.owner.id}:${owned.get(key)!.epoch}`);
    expect(await leaseValues(rooms)).to.deep.equal(expected);

    await suite.server.kill();
    // While Redis is down: rooms stay held, and a claim fails fast with a clear code.
    const started = Date.now();
    let failure: unknown = null;
    await a.leases.claim(roomKey('tenant', 'new-room')).catch((error: unknown) => (failure = error));
    expect(failure).to.be.instanceOf(AppError);
    expect((failure as AppError).code).to.equal('unavailable');
    expect(Date.now() - started).to.be.below(3_000);
    // Down for longer than a lease TTL: every held lease becomes uncertain, none is dropped.
    await delay(FAST.leaseTtlMs + FAST.renewIntervalMs * 2);
    for (const node of nodes) {
      expect(node.leases.held().length).to.equal(4);
      const uncertain = node.events.filter((event) => event.event === 'uncertain').map((event) => event.roomKey);
      expect(uncertain.sort()).to.deep.equal(rooms.filter((key) => owned.get(key)!.owner === node).sort());
    }

    await suite.server.restart();
    const restartedAt = Date.now();
    await waitUntil(async () => JSON.stringify(await leaseValues(rooms)) === JSON.stringify(expected), 'every lease is back', 5_000);
    const backMs = Date.now() - restartedAt;
    console.log(`      leases back ${backMs} ms after redis-server accepted connections again`);
    // One renewal period, plus the reconnection delay and a loaded machine's slack.
    expect(backMs).to.be.below(FAST.renewIntervalMs * 4 + 1_000);

    // Every room is held by exactly its owner, at its epoch; nobody fired lost.
    for (const key of rooms) {
      const holders = nodes.filter((node) => node.leases.epochOf(key) !== null);
      expect(holders.map((node) => node.id)).to.deep.equal([owned.get(key)!.owner.id]);
      expect(holders[0]!.leases.epochOf(key)).to.equal(owned.get(key)!.epoch);
      // The fencing counter came back with the lease.
      expect(Number(await suite.raw.get(suite.keys.epoch(key)))).to.equal(owned.get(key)!.epoch);
    }
    for (const node of nodes) {
      expect(node.events.filter((event) => event.event === 'lost')).to.deep.equal([]);
      expect(node.events.filter((event) => event.event === 'reasserted').length).to.equal(4);
    }
    await waitUntil(
      () => nodes.every((node) => node.events.filter((event) => event.event === 'confirmed').length === 4),
      'every uncertain lease is confirmed again',
      3_000,
    );

    // The registry is back too: a claim from another node is answered with the owner.
    const aRoom = rooms.find((key) => owned.get(key)!.owner === a)!;
    await waitUntil(async () => (await b.registry.node('node-a')) !== null, 'node-a is registered again', 2_000);
    expect(await b.leases.claim(aRoom)).to.deep.include({ mine: false, owner: 'node-a', epoch: owned.get(aRoom)!.epoch });
    // Once node-a lets it go, node-b's claim gets an epoch above the re-asserted one.
    expect(await a.leases.release(aRoom)).to.equal(true);
    const reclaimed = await b.leases.claim(aRoom);
    expect(reclaimed.mine).to.equal(true);
    expect(reclaimed.epoch).to.equal(owned.get(aRoom)!.epoch + 1);

    // One loss line and one recovery line per connection; never a password (the URL has none here, but the lines name the server).
    const parsed = lines.map((line) => JSON.parse(line) as { level: number; msg: string; connection?: string });
    const lossLines = parsed.filter((line) => line.msg === 'redis connection lost; reconnecting');
    const restoredLines = parsed.filter((line) => line.msg === 'redis connection restored');
    expect(lossLines.length).to.equal(6);
    expect(restoredLines.length).to.equal(6);
    expect(new Set(lossLines.map((line) => line.connection)).size).to.equal(6);
  });

  it('a room whose lease vanished is claimed by another node before its owner re-asserts it: the claimer gets a higher epoch, the old owner fires lost, one owner remains', async function () {
    // node-a renews rarely, so node-b's claim surely comes first; the test renews it by hand.
    const a = await suite.startNode('node-a', { leaseTtlMs: 60_000, renewIntervalMs: 20_000 });
    const b = await suite.startNode('node-b');
    const key = roomKey('tenant', 'contested');
    const claimedByA = await a.leases.claim(key);

    await suite.server.restart();
    // The lease and its counter are gone with Redis' data; node-b claims once it is registered again.
    await waitUntil(async () => (await b.registry.node('node-b').catch(() => null)) !== null, 'node-b is registered again', 5_000);
    let claimedByB: ClaimResult | null = null;
    await waitUntil(
      async () => {
        claimedByB = await b.leases.claim(key).catch(() => null);
        return claimedByB !== null;
      },
      'node-b can claim',
      5_000,
    );
    expect(claimedByB).to.deep.include({ mine: true, owner: 'node-b' });
    // The counter started again from Redis' clock: above every epoch handed out before the restart.
    expect(claimedByB!.epoch).to.be.greaterThan(claimedByA.epoch);

    await a.leases.renewNow();
    expect(a.events.filter((event) => event.event === 'lost')).to.deep.equal([
      { event: 'lost', roomKey: key, epoch: claimedByA.epoch, by: 'node-b' },
    ]);
    expect(a.leases.held()).to.deep.equal([]);
    expect(b.leases.held()).to.deep.equal([{ roomKey: key, epoch: claimedByB!.epoch }]);
    expect(await suite.raw.get(suite.keys.lease(key))).to.equal(`node-b:${claimedByB!.epoch}`);
  });
});

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { useCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

describe("cluster review (issue 17): a tenant's max_rooms holds across nodes", function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('with max_rooms 2, a third room is refused with quota_exceeded whichever node it lands on; a room already live still takes joins', async function () {
    const cluster = await suite.start(2);
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const stored = await a.server.store.tenants.get('t1');
    if (!stored) throw new Error('tenant t1');
    await a.server.store.tenants.update('t1', { limits: { ...stored.limits, max_rooms: 2 } });
    const join = async (url: string, room: string, user: string) => {
      const client = await cluster.connect(url, { token: cluster.mint({ room, user }) });
      return emitAck(client, 'join', {});
    };
    expect((await join(a.url, 'one', 'u1')).ok).to.equal(true);
    expect((await join(b.url, 'two', 'u2')).ok).to.equal(true);
    // Both rooms are in the tenant's live-room set (written just after each room started).
    const raw = new Redis(suite.redis.url);
    try {
      await waitUntil(async () => (await raw.zcard('sb:cluster:live:t1')) === 2, 'both rooms are listed');
    } finally {
      raw.disconnect();
    }
    const third = await join(b.url, 'three', 'u3');
    expect(third.ok).to.equal(false);
    if (!third.ok) expect(third.error.code).to.equal('quota_exceeded');
    const fourth = await join(a.url, 'four', 'u4');
    expect(fourth.ok).to.equal(false);
    if (!fourth.ok) expect(fourth.error.code).to.equal('quota_exceeded');
    // Joining a room that is live (on its owner) is not a new room.
    expect((await join(b.url, 'two', 'u5')).ok).to.equal(true);
  });
});

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { roomKey } from '../../server/cluster/keys.js';
import { callNode, useCluster, type ConnectRefusal } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

describe('cluster review (issue 17): the HTTP API while Redis is unreachable', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('POST /api/v1/tokens answers 503 unavailable (a clear code to retry on), not 500 internal, within seconds', async function () {
    const cluster = await suite.start(1);
    const [a] = cluster.nodes;
    if (!a) throw new Error('one node');
    const ok = await callNode(a, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'r', user_name: 'alice' } });
    expect(ok.status).to.equal(201);

    await suite.redis.kill();
    const started = Date.now();
    const answer = await callNode(a, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'r', user_name: 'alice' } });
    expect(Date.now() - started).to.be.below(8_000);
    expect(answer.status).to.equal(503);
    expect((answer.body.error as { code: string }).code).to.equal('unavailable');
    expect(JSON.stringify(answer.body)).to.not.match(/127\.0\.0\.1|redis:/);
  });
});

describe('cluster review (issue 17): Redis back after a restart', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('leases are written again as soon as the connection is back, not at the next renewal tick (no window for a second owner)', async function () {
    // Renewals every 20 s: only a renewal on reconnection brings the lease back within seconds.
    const cluster = await suite.start(1, { ROOM_LEASE_MS: '60000' });
    const [a] = cluster.nodes;
    if (!a?.server.cluster) throw new Error('one cluster node');
    const alice = await cluster.connect(a.url, { token: cluster.mint({ room: 'call', user: 'alice' }) });
    expect((await emitAck(alice, 'join', {})).ok).to.equal(true);
    const lease = a.server.cluster.registry.keys.lease(roomKey('t1', 'call'));

    await suite.redis.restart();
    const raw = new Redis(suite.redis.url, { maxRetriesPerRequest: 1 });
    try {
      await waitUntil(async () => (await raw.get(lease)) !== null, 'the lease is back in Redis', 3_000);
      expect(await raw.get(lease)).to.match(new RegExp(`^${a.id}:\\d+$`));
    } finally {
      raw.disconnect();
    }
  });
});

describe('cluster review (issue 17): what a refused client is told while Redis is unreachable', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('a claim that cannot be made answers unavailable without the Redis client error text', async function () {
    // The in-memory store (a MongoDB store in production): the handshake reaches the claim.
    const cluster = await suite.start(1, { STORE: 'memory' });
    const [a] = cluster.nodes;
    if (!a) throw new Error('one node');
    await suite.redis.kill();
    const refusal = await cluster.connect(a.url, { token: cluster.mint({ room: 'new-room' }) }).then(
      () => null,
      (error: ConnectRefusal) => error,
    );
    expect(refusal?.data?.code).to.equal('unavailable');
    expect(refusal?.data?.message).to.not.match(/maxRetriesPerRequest|ECONNREFUSED|127\.0\.0\.1|Connection is closed|timed out/i);
  });
});

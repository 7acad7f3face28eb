/**
 * What a caller reads when Redis is down under the cluster: `unavailable` with a message of the
 * server's own (what failed, try again), never the Redis client's error text, which may name
 * internal hosts and ports. The nodes keep their records in memory (STORE=memory), so the HTTP
 * API authenticates its caller without Redis and the failure is the cluster's.
 */
import { expect } from 'chai';
import { sha256Hex } from '../../config/index.js';
import { roomKey } from '../../server/cluster/keys.js';
import { AppError } from '../../server/errors.js';
import { callNode, useCluster, type ClusterNode, type HttpAnswer } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';

/** Redis client texts that must not reach a caller. */
const LEAKS = ['ECONNREFUSED', 'Connection is closed', 'max retries', 'timed out', 'maxRetriesPerRequest'];

describe('cluster: Redis errors reach callers without their text', function () {
  this.timeout(30_000);
  const suite = useCluster();

  /** Two nodes on their own memory stores, tenant t1 on both; a room `held` joined on node A. */
  async function roomOnA(): Promise<{ a: ClusterNode; b: ClusterNode }> {
    const cluster = await suite.start(2, { STORE: 'memory' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    await b.server.store.tenants.create({
      tenant_id: 't1',
      name: 't1',
      api_key: 'key-t1',
      api_secret_sha256: sha256Hex('secret-t1'),
      limits: { ...b.server.config.defaultTenantLimits },
      webhook: null,
      created_at: new Date(),
    });
    const client = await cluster.connect(a.url, { token: cluster.mint({ room: 'held', user: 'alice' }) });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    return { a, b };
  }

  const expectClean = (message: string, what: string): void => {
    const port = String(suite.redis.port);
    expect(message, what).to.not.include(port);
    expect(message, what).to.not.include('127.0.0.1');
    for (const leak of LEAKS) expect(message.toLowerCase(), what).to.not.include(leak.toLowerCase());
    expect(message, what).to.match(/try again/);
  };

  const expectUnavailable = (answer: HttpAnswer, what: string): void => {
    const error = answer.body.error as { code: string; message: string };
    expect(answer.status, `${what}: ${JSON.stringify(answer.body)}`).to.equal(503);
    expect(error.code, what).to.equal('unavailable');
    expectClean(error.message, what);
  };

  it('HTTP API: the participants of a room another node owns, and the live room listing, answer unavailable without the Redis error text', async function () {
    const { b } = await roomOnA();
    await suite.redis.kill();
    const api = (path: string) => callNode(b, 'GET', path, { secret: 'secret-t1' });
    expectUnavailable(await api('/api/v1/rooms/held/participants'), 'participants through B');
    expectUnavailable(await api('/api/v1/rooms?live=true'), 'live room listing through B');
  });

  it('bus, registry and leases: unavailable without the Redis error text, which stays the error cause', async function () {
    const { a, b } = await roomOnA();
    const cluster = b.server.cluster!;
    await suite.redis.kill();
    const failures: [string, Promise<unknown>][] = [
      ['bus request', cluster.bus.request(a.id, 'live-rooms.get', { tenant_id: 't1', room_id: 'held' })],
      ['node listing', cluster.registry.liveNodes()],
      ['node entry', cluster.registry.node(a.id)],
      ['owner lookup', cluster.leases.owner(roomKey('t1', 'held'))],
    ];
    for (const [what, attempt] of failures) {
      const error = await attempt.then(
        () => expect.fail(`${what} succeeded with Redis down`),
        (failure: unknown) => failure,
      );
      expect(error, what).to.be.instanceOf(AppError);
      expect((error as AppError).code, what).to.equal('unavailable');
      expectClean((error as AppError).message, what);
      expect((error as AppError).cause, `${what}: the Redis error is kept as the cause`).to.be.instanceOf(Error);
    }
  });
});

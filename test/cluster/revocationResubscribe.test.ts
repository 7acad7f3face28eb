/**
 * A revocation published while a node's adapter subscriber is disconnected never reaches that
 * node through pub/sub (Redis keeps nothing for a disconnected subscriber). Once the subscriber
 * is back, the node checks the tokens of its live sockets against the store and closes the
 * revoked ones as any revocation does.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { callNode, useCluster } from '../helpers/cluster.js';
import { emitAck, nextEvent, waitFor } from '../helpers/server.js';

/** How long the killed subscriber waits before reconnecting (the test's retry strategy). */
const DOWN_MS = 1_500;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('cluster: a revocation published while a node’s adapter subscriber was disconnected', function () {
  this.timeout(30_000);
  const suite = useCluster();
  let killer: Redis | undefined;

  afterEach(function () {
    killer?.disconnect();
    killer = undefined;
  });

  it('closes that node’s sockets of the token with token_revoked within a few seconds of the subscriber reconnecting', async function () {
    const cluster = await suite.start(2);
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const minted = await callNode(b, 'POST', '/api/v1/tokens', {
      secret: 'secret-t1',
      body: { room_id: 'guarded', user_id: 'alice', user_name: 'Alice' },
    });
    expect(minted.status).to.equal(201);
    const alice = await cluster.connect(a.url, { token: minted.body.token });
    expect((await emitAck(alice, 'join', {})).ok).to.equal(true);
    const bob = await cluster.connect(a.url, { token: cluster.mint({ room: 'guarded', user: 'bob' }) });
    expect((await emitAck(bob, 'join', {})).ok).to.equal(true);

    // A's adapter subscriber loses its connection and comes back only after DOWN_MS.
    const subscriber = (a.server.cluster as unknown as { adapterSubscriber: Redis }).adapterSubscriber;
    const retryStrategy = subscriber.options.retryStrategy;
    subscriber.options.retryStrategy = () => DOWN_MS;
    try {
      killer = new Redis(suite.redis.url);
      const clients = String(await killer.client('LIST'));
      const line = clients.split('\n').find((entry) => entry.includes(` name=switchboard:${a.id}:adapter-sub `));
      const id = line ? /(?:^|\s)id=(\d+)/.exec(line)?.[1] : undefined;
      if (!id) throw new Error(`no adapter subscriber connection of ${a.id} in CLIENT LIST:\n${clients}`);
      const back = new Promise<number>((resolve) => subscriber.once('ready', () => resolve(Date.now())));
      expect(await killer.client('KILL', 'ID', id)).to.equal(1);
      await waitFor(() => subscriber.status !== 'ready', 2_000, "A's adapter subscriber is disconnected");

      // Revoked through B while A cannot hear it: the store write succeeds (its connection is another one).
      const error = nextEvent<{ code: string }>(alice, 'error', DOWN_MS + 5_000);
      const disconnected = nextEvent<string>(alice, 'disconnect', DOWN_MS + 5_000);
      const left = nextEvent<{ user_id: string; reason: string }>(bob, 'peer_left', DOWN_MS + 5_000);
      const revoked = await callNode(b, 'POST', '/api/v1/tokens/revoke', { secret: 'secret-t1', body: { jti: minted.body.jti } });
      expect(revoked.status).to.equal(200);
      await delay(300);
      expect(subscriber.status, 'the subscriber is still down when the revocation was published').to.not.equal('ready');
      expect(alice.connected, 'the published revocation did not reach A').to.equal(true);

      const readyAt = await back;
      expect(await disconnected).to.equal('io server disconnect');
      const afterReadyMs = Date.now() - readyAt;
      expect((await error).code).to.equal('token_revoked');
      expect(await left).to.deep.include({ user_id: 'alice', reason: 'revoked' });
      expect(afterReadyMs, 'closed soon after the subscriber was back').to.be.below(3_000);
      console.log(`      alice closed ${afterReadyMs} ms after A's adapter subscriber was ready again`);
      // Another token's socket is left alone.
      await delay(200);
      expect(bob.connected).to.equal(true);
    } finally {
      subscriber.options.retryStrategy = retryStrategy;
    }
  });
});

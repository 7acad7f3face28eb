import { expect } from 'chai';
import { callNode, useCluster } from '../helpers/cluster.js';
import { emitAck, expectConnectError, nextEvent } from '../helpers/server.js';

describe('cluster: a revocation issued on any node reaches the sockets of every node (issue 17)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('revoked on node C: the socket held by node A is closed within 1 s, peers see reason revoked, and it cannot come back', async function () {
    const cluster = await suite.start(3);
    const [a, , c] = cluster.nodes;
    if (!a || !c) throw new Error('three nodes');
    const minted = await callNode(c, 'POST', '/api/v1/tokens', {
      secret: 'secret-t1',
      body: { room_id: 'guarded', user_id: 'alice', user_name: 'Alice' },
    });
    expect(minted.status).to.equal(201);
    const alice = await cluster.connect(a.url, { token: minted.body.token });
    expect((await emitAck(alice, 'join', {})).ok).to.equal(true);
    const bob = await cluster.connect(a.url, { token: cluster.mint({ room: 'guarded', user: 'bob' }) });
    expect((await emitAck(bob, 'join', {})).ok).to.equal(true);

    const error = nextEvent<{ code: string }>(alice, 'error', 2000);
    const disconnected = nextEvent<string>(alice, 'disconnect', 2000);
    const left = nextEvent<{ user_id: string; reason: string }>(bob, 'peer_left', 2000);
    const started = Date.now();
    const revoked = await callNode(c, 'POST', '/api/v1/tokens/revoke', { secret: 'secret-t1', body: { jti: minted.body.jti } });
    expect(revoked.status).to.equal(200);
    expect(await disconnected).to.equal('io server disconnect');
    expect(Date.now() - started).to.be.below(1000);
    expect((await error).code).to.equal('token_revoked');
    expect(await left).to.deep.include({ user_id: 'alice', reason: 'revoked' });
    for (const node of cluster.nodes) {
      expect((await expectConnectError(cluster.connect(node.url, { token: minted.body.token }))).message).to.equal('token_revoked');
    }
    expect(bob.connected).to.equal(true);
  });
});

import { expect } from 'chai';
import { connectFollowing, useCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

describe('cluster review (issue 17): a draining node and the rooms it still holds', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('during SHUTDOWN_DRAIN_MS a client of a room the draining node still holds is admitted there, not bounced between the nodes', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '5000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const alice = await cluster.connect(a.url, { token: cluster.mint({ room: 'call', user: 'alice' }) });
    expect((await emitAck(alice, 'join', {})).ok).to.equal(true);

    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => a.server.cluster?.registry.currentState === 'draining', 'node a drains');

    // Bob reaches node b: the room's lease is still a's (it is released at the end of the drain).
    const bob = await connectFollowing(cluster, b.url, { token: cluster.mint({ room: 'call', user: 'bob' }) });
    expect(bob.url).to.equal(a.url);
    await closing;
  });
});

import { expect } from 'chai';
import { connectFollowing, useCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

describe('cluster review (issue 17): a draining node and the rooms it still holds', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('during SHUTDOWN_DRAIN_MS a room of the draining node is served by the node it moved to: a client reaching either node lands there once, not bounced between them', async function () {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '5000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const alice = await cluster.connect(a.url, { token: cluster.mint({ room: 'call', user: 'alice' }) });
    expect((await emitAck(alice, 'join', {})).ok).to.equal(true);
    const moved = new Promise<unknown>((resolve) => alice.once('room_moved', resolve));

    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => a.server.cluster?.registry.currentState === 'draining', 'node a drains');
    expect(await moved).to.deep.equal({ ws_url: b.url });

    // Alice is still connected to a (she moves when she likes); bob, through either node, is served by b.
    const bob = await connectFollowing(cluster, b.url, { token: cluster.mint({ room: 'call', user: 'bob' }) });
    expect(bob.url).to.equal(b.url);
    expect(bob.redirected).to.equal(false);
    const carol = await connectFollowing(cluster, a.url, { token: cluster.mint({ room: 'call', user: 'carol' }) });
    expect(carol.url).to.equal(b.url);
    alice.disconnect();
    await closing;
  });
});

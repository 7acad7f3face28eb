/**
 * Issue 18: a participant's own mute (the `mute` event) moves with its room. A draining node
 * hands the room over; the new node's held place carries `self_muted`, so the others see it
 * in their join acks there, and the participant gets it back with its place.
 */
import { expect } from 'chai';
import { useCluster } from '../helpers/cluster.js';
import { emitAck } from '../helpers/server.js';
import { waitUntil } from './nodes.js';

describe('Cluster: the own mute moves with the room (issue 18)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it('a held place on the new node shows self_muted, and the resumed peer keeps it', async () => {
    const cluster = await suite.start(2, { SHUTDOWN_DRAIN_MS: '8000', SHUTDOWN_TIMEOUT_MS: '5000' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    const join = async (url: string, user: string, payload: Record<string, unknown> = {}) => {
      const client = await cluster.connect(url, { token: cluster.mint({ room: 'muted-move', user }) });
      const ack = (await emitAck(client, 'join', payload)) as Record<string, unknown>;
      if (ack.ok !== true) throw new Error(`join refused: ${JSON.stringify(ack)}`);
      return {
        client,
        ack: ack as unknown as { self: { id: string; self_muted?: unknown }; peers: Array<{ id: string; self_muted?: unknown }> },
      };
    };
    const alice = await join(a.url, 'alice');
    const bob = await join(a.url, 'bob');
    expect(await emitAck(alice.client, 'mute', { kind: 'video', muted: true })).to.deep.equal({ ok: true });
    const moved: unknown[] = [];
    bob.client.on('room_moved', (message: unknown) => moved.push(message));

    a.running = false;
    const closing = a.server.close();
    await waitUntil(() => moved.length === 1, 'room_moved');
    // Bob moves first: alice's place on the new node carries her own mute.
    const bob2 = await join(b.url, 'bob', { resume: { peer_id: bob.ack.self.id } });
    const alicePlace = bob2.ack.peers.find((p) => p.id === alice.ack.self.id);
    expect(alicePlace?.self_muted).to.deep.equal({ audio: false, video: true });
    bob.client.disconnect();
    // Alice takes her place back, still muted.
    const alice2 = await join(b.url, 'alice', { resume: { peer_id: alice.ack.self.id } });
    expect(alice2.ack.self.id).to.equal(alice.ack.self.id);
    expect(alice2.ack.self.self_muted).to.deep.equal({ audio: false, video: true });
    alice.client.disconnect();
    await closing;
    alice2.client.disconnect();
    bob2.client.disconnect();
  });
});

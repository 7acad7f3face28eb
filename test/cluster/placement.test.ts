import { expect } from 'chai';
import { roomKey } from '../../server/cluster/keys.js';
import { CLUSTER_ADMIN_KEY, callNode, useCluster } from '../helpers/cluster.js';
import { emitAck, expectConnectError } from '../helpers/server.js';

describe('cluster: placement, shared state and shared limits across nodes (issue 17)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  it("POST /api/v1/tokens on a node that does not own the room answers the owner's ws_url, and claims nothing", async function () {
    const cluster = await suite.start(3);
    const [a, b, c] = cluster.nodes;
    if (!a || !b || !c) throw new Error('three nodes');
    const client = await cluster.connect(a.url, { token: cluster.mint({ room: 'placed' }) });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    for (const node of [b, c]) {
      const minted = await callNode(node, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'placed', user_name: 'x' } });
      expect(minted.status, JSON.stringify(minted.body)).to.equal(201);
      expect(minted.body.ws_url).to.equal(a.url);
    }
    // A room nobody owns: some live node's URL, and still nobody owns it.
    const free = await callNode(b, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'nobody', user_name: 'x' } });
    expect([a.url, b.url, c.url]).to.include(free.body.ws_url);
    expect(await b.server.cluster?.leases.owner(roomKey('t1', 'nobody'))).to.equal(null);
  });

  it('a room with no owner is placed on the least loaded node', async function () {
    const cluster = await suite.start(2);
    const [a, b] = cluster.nodes;
    if (!a?.server.cluster || !b?.server.cluster) throw new Error('two cluster nodes');
    // Load node a with two sockets; the next free room goes to b, whichever node is asked.
    for (const room of ['busy-1', 'busy-2']) await cluster.connect(a.url, { token: cluster.mint({ room }) });
    await a.server.cluster.registry.beat();
    for (const node of [a, b]) {
      const minted = await callNode(node, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'next', user_name: 'x' } });
      expect(minted.body.ws_url).to.equal(b.url);
    }
  });

  it("tenant created and token minted through node A's API, join on node B, session visible through node C's API", async function () {
    const cluster = await suite.start(3);
    const [a, b, c] = cluster.nodes;
    if (!a || !b || !c) throw new Error('three nodes');
    const created = await callNode(a, 'POST', '/api/v1/tenants', { secret: CLUSTER_ADMIN_KEY, body: { name: 'acme' } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const secret = String(created.body.api_secret);
    const minted = await callNode(a, 'POST', '/api/v1/tokens', {
      secret,
      body: { room_id: 'audit', user_id: 'alice', user_name: 'Alice' },
    });
    expect(minted.status, JSON.stringify(minted.body)).to.equal(201);
    const client = await cluster.connect(b.url, { token: minted.body.token });
    expect((await emitAck(client, 'join', {})).ok).to.equal(true);
    await b.server.sessions.flush();
    const sessions = await callNode(c, 'GET', '/api/v1/sessions?room_id=audit', { secret });
    expect(sessions.status, JSON.stringify(sessions.body)).to.equal(200);
    const list = sessions.body.sessions as { user_id: string; room_id: string; disconnected_at: string | null }[];
    expect(list.map((s) => [s.user_id, s.room_id, s.disconnected_at])).to.deep.equal([['alice', 'audit', null]]);
  });

  it('handshake and token limits hold across nodes: attempts spread over two nodes are counted together', async function () {
    const cluster = await suite.start(2, { RATE_LIMIT_HANDSHAKES_PER_MIN: '4', RATE_LIMIT_TOKENS_PER_MIN: '3' });
    const [a, b] = cluster.nodes;
    if (!a || !b) throw new Error('two nodes');
    // Four rooms, so no attempt is redirected: each node accepts two, then the fifth is refused on either.
    for (const [i, node] of [a, b, a, b].entries()) await cluster.connect(node.url, { token: cluster.mint({ room: `r${i}` }) });
    for (const node of [a, b]) {
      const refused = await expectConnectError(cluster.connect(node.url, { token: cluster.mint({ room: 'r9' }) }));
      expect(refused.message).to.equal('rate_limited');
    }
    const mint = (node: typeof a) =>
      callNode(node, 'POST', '/api/v1/tokens', { secret: 'secret-t1', body: { room_id: 'limited', user_name: 'x' } });
    expect([(await mint(a)).status, (await mint(b)).status, (await mint(a)).status, (await mint(b)).status]).to.deep.equal([
      201, 201, 201, 429,
    ]);
  });
});

import { expect } from 'chai';
import { callNode, useCluster, type ClusterNode, type TestCluster } from '../helpers/cluster.js';
import { emitAck, expectConnectError, nextEvent, type TestClient } from '../helpers/server.js';

describe('cluster: the room API of any node acts on the room where it runs (issue 17)', function () {
  this.timeout(30_000);
  const suite = useCluster();

  const api = (node: ClusterNode, method: string, path: string, body?: unknown) =>
    callNode(node, method, path, { secret: 'secret-t1', body });

  /** Three nodes; the users join `roomId` through node A (the first to connect claims the room there). */
  async function roomOnA(
    roomId: string,
    users: string[],
    hidden: string[] = [],
  ): Promise<{ cluster: TestCluster; nodes: ClusterNode[]; clients: TestClient[]; tokens: string[] }> {
    const cluster = await suite.start(3);
    const clients: TestClient[] = [];
    const tokens: string[] = [];
    for (const user of [...users, ...hidden]) {
      const token = cluster.mint({ room: roomId, user, grants: hidden.includes(user) ? { hidden: true } : {} });
      const client = await cluster.connect(cluster.nodes[0]?.url ?? '', { token });
      expect((await emitAck(client, 'join', {})).ok, `${user} joins on A`).to.equal(true);
      clients.push(client);
      tokens.push(token);
    }
    return { cluster, nodes: cluster.nodes, clients, tokens };
  }

  it('kick issued through node C’s API closes the socket held by node A within 1 s with reason kicked; the token cannot come back', async function () {
    const { cluster, nodes, clients, tokens } = await roomOnA('kickme', ['alice', 'bob']);
    const [a, b, c] = nodes;
    const [alice, bob] = clients;
    const bobToken = tokens[1];
    if (!a || !b || !c || !alice || !bob || !bobToken) throw new Error('three nodes, two clients');

    const kicked = nextEvent<{ reason: string }>(bob, 'kicked', 2000);
    const gone = nextEvent<string>(bob, 'disconnect', 2000);
    const left = nextEvent<{ user_id: string; reason: string }>(alice, 'peer_left', 2000);
    const started = Date.now();
    expect((await api(c, 'DELETE', '/api/v1/rooms/kickme/participants/bob')).status).to.equal(204);
    expect(await kicked).to.deep.equal({ reason: 'kicked' });
    await gone;
    expect(Date.now() - started).to.be.below(1000);
    expect(await left).to.deep.include({ user_id: 'bob', reason: 'kicked' });
    expect(alice.connected).to.equal(true);

    // The kick ran on A: A's room lost bob; the other nodes never had the room.
    expect(a.server.rooms.get('t1', 'kickme')?.peerByUser('bob')).to.equal(undefined);
    expect(b.server.rooms.get('t1', 'kickme')).to.equal(undefined);
    expect(c.server.rooms.get('t1', 'kickme')).to.equal(undefined);

    // Its token is revoked everywhere; a second kick is peer_not_found, from any node.
    for (const node of nodes) {
      expect((await expectConnectError(cluster.connect(node.url, { token: bobToken }))).message).to.equal('token_revoked');
    }
    const again = await api(b, 'DELETE', '/api/v1/rooms/kickme/participants/bob');
    expect(again.status).to.equal(404);
    expect((again.body.error as { code: string }).code).to.equal('peer_not_found');
  });

  it('participants, the room and the live listing read through nodes B and C are node A’s', async function () {
    const { nodes } = await roomOnA('listed', ['alice', 'bob'], ['recorder']);
    const [a, b, c] = nodes;
    if (!a || !b || !c) throw new Error('three nodes');

    const onA = await api(a, 'GET', '/api/v1/rooms/listed/participants?include_hidden=true');
    expect(onA.status).to.equal(200);
    const users = (onA.body.participants as { user_id: string; hidden: boolean }[]).map((p) => [p.user_id, p.hidden]);
    expect(users).to.deep.equal([
      ['alice', false],
      ['bob', false],
      ['recorder', true],
    ]);
    for (const node of [b, c]) {
      expect(await api(node, 'GET', '/api/v1/rooms/listed/participants?include_hidden=true')).to.deep.equal(onA);
      const visible = await api(node, 'GET', '/api/v1/rooms/listed/participants');
      expect((visible.body.participants as { user_id: string }[]).map((p) => p.user_id)).to.deep.equal(['alice', 'bob']);

      const room = await api(node, 'GET', '/api/v1/rooms/listed');
      expect(room.status).to.equal(200);
      expect(room.body).to.deep.include({ room_id: 'listed', live: true, stored: false, current_mode: 'mesh', num_participants: 3 });
      expect(room.body).to.deep.equal((await api(a, 'GET', '/api/v1/rooms/listed')).body);

      const listing = await api(node, 'GET', '/api/v1/rooms?live=true');
      expect(listing.status).to.equal(200);
      const rooms = listing.body.rooms as { room_id: string; num_participants: number }[];
      expect(rooms.map((r) => [r.room_id, r.num_participants])).to.deep.equal([['listed', 3]]);
    }
    expect((await api(b, 'GET', '/api/v1/rooms/nowhere/participants')).status).to.equal(404);
  });

  it('PUT through node B locks the live room on A at once (peers get room_updated); DELETE through C closes it (room_closed, deleted)', async function () {
    const { cluster, nodes, clients } = await roomOnA('changing', ['alice']);
    const [a, b, c] = nodes;
    const [alice] = clients;
    if (!a || !b || !c || !alice) throw new Error('three nodes, one client');

    const updated = nextEvent<{ config: { locked: boolean; max_participants: number } }>(alice, 'room_updated', 2000);
    const put = await api(b, 'PUT', '/api/v1/rooms/changing', { locked: true, max_participants: 5 });
    expect(put.status).to.equal(200);
    expect(put.body).to.deep.include({ room_id: 'changing', stored: true, live: true, locked: true, max_participants: 5 });
    expect((await updated).config).to.deep.include({ locked: true, max_participants: 5 });
    expect(a.server.rooms.get('t1', 'changing')?.config.locked).to.equal(true);
    // The lock holds on A: a guest is refused there.
    const guest = await cluster.connect(a.url, { token: cluster.mint({ room: 'changing', user: 'guest' }) });
    const refused = await emitAck(guest, 'join', {});
    expect(refused.ok ? null : refused.error.code).to.equal('room_locked');

    const closed = nextEvent<{ reason: string }>(alice, 'room_closed', 2000);
    expect((await api(c, 'DELETE', '/api/v1/rooms/changing')).status).to.equal(204);
    expect((await closed).reason).to.equal('deleted');
    expect(a.server.rooms.get('t1', 'changing')).to.equal(undefined);
    expect((await api(b, 'GET', '/api/v1/rooms/changing')).status).to.equal(404);
    expect((await api(c, 'DELETE', '/api/v1/rooms/changing')).status).to.equal(404);
  });
});

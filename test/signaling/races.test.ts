import { expect } from 'chai';
import WebSocket from 'ws';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import { call } from '../api/helpers.js';
import { PollingSession } from '../helpers/engineio.js';
import { holdNextCall } from '../helpers/heldCall.js';
import { emitAck, nextEvent, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

/** Every peer of every live room holds a connected socket that knows it as its peer. */
function expectNoGhosts(t: TestServer, tenantId: string, roomId: string, expectedSize: number): void {
  const room = t.server.rooms.get(tenantId, roomId);
  expect(room?.size ?? 0, 'participants').to.equal(expectedSize);
  for (const peer of room?.peers.values() ?? []) {
    expect(peer.socket.connected, `peer ${peer.id} socket connected`).to.equal(true);
    expect(peer.socket.data.peer).to.equal(peer);
  }
}

describe('concurrent requests on one socket', () => {
  let t: TestServer;
  afterEach(async () => t?.close());

  it('answers the second of two joins in one polling POST with already_joined and leaves no ghost', async () => {
    t = await startServer();
    const token = t.mint({ room: 'twice', user: 'alice' });
    const session = await PollingSession.connect(t.url, { token });
    await session.send(['420["join",{}]', '421["join",{}]']);
    const acks = await session.acks([0, 1]);
    const results = [acks.get(0), acks.get(1)] as Array<{ ok: boolean; error?: { code: string } }>;
    expect(results.filter((ack) => ack.ok)).to.have.length(1);
    expect(results.find((ack) => !ack.ok)?.error?.code).to.equal('already_joined');
    expectNoGhosts(t, 't1', 'twice', 1);

    // The transport closes without a leave: the peer leaves the room (its place is held for a resume, not a peer).
    await session.close();
    await waitFor(() => (t.server.rooms.get('t1', 'twice')?.connectedCount ?? 0) === 0, 5000, 'the peer to leave');
    const sessions = await t.server.store.sessions.list('t1', { limit: 10 });
    expect(sessions.items).to.have.length(1);
    await waitFor(
      async () => (await t.server.store.sessions.list('t1', { limit: 10 })).items.every((s) => s.disconnected_at !== null),
      5000,
      'the session to close',
    );
  });

  it('answers the second of two joins sent back to back over WebSocket with already_joined', async () => {
    t = await startServer();
    for (let round = 0; round < 5; round++) {
      const token = t.mint({ room: 'frames', user: `u${round}` });
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      const acks = new Map<number, { ok: boolean; error?: { code: string } }>();
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        if (text.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
        else if (text.startsWith('40')) {
          ws.send('420["join",{}]');
          ws.send('421["join",{}]');
        } else if (text.startsWith('43')) {
          const match = /^43(\d+)(.*)$/s.exec(text);
          if (match)
            acks.set(
              Number(match[1]),
              (JSON.parse(match[2] ?? 'null') as Array<{ ok: boolean; error?: { code: string } }>)[0] ?? { ok: false },
            );
        }
      });
      await waitFor(() => acks.size === 2, 5000, 'both acks');
      expect([...acks.values()].filter((ack) => ack.ok)).to.have.length(1);
      expect([...acks.values()].find((ack) => !ack.ok)?.error?.code).to.equal('already_joined');
      expectNoGhosts(t, 't1', 'frames', round + 1);
    }
  });

  it('a join refused by a stored locked room leaves no live room behind', async () => {
    t = await startServer();
    const now = new Date();
    await t.server.store.rooms.create({
      tenant_id: 't1',
      room_id: 'locked',
      name: 'locked',
      description: '',
      max_participants: null,
      mesh_threshold: null,
      max_screen_shares: null,
      mode: 'auto',
      locked: true,
      metadata: {},
      expires_at: null,
      created_at: now,
      updated_at: now,
    });
    const client = await t.connect(t.mint({ room: 'locked', user: 'bob' }));
    const ack = await emitAck(client, 'join', {});
    expect(ack.ok ? 'ok' : ack.error.code).to.equal('room_locked');
    await waitFor(() => t.server.rooms.liveRoomCount('t1') === 0, 5000, 'the refused room to close');
  });
});

const jtiOf = (token: string): string =>
  (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;

describe('revocations while the store answers', () => {
  let t: TestServer;
  let store: MemoryStore;
  beforeEach(async () => {
    store = new MemoryStore();
    t = await startServer({}, { store });
  });
  afterEach(async () => t?.close());

  it('a token revoked while its handshake waits for the store does not stay connected', async () => {
    const token = t.mint({ room: 'handshake', user: 'carol' });
    // The handshake reads the tenant after its revocation check: the revocation lands in between.
    const held = holdNextCall(store.tenants, 'get', (id) => id === 't1');
    const connecting = t.connect(token);
    await held.reached;
    expect((await call(t, 'POST', '/api/v1/tokens/revoke', { secret: 'secret-t1', body: { jti: jtiOf(token) } })).status).to.equal(200);
    held.release();
    const client = await connecting.catch(() => null);
    if (client) await waitFor(() => client.disconnected, 3000, 'the revoked socket to be disconnected');
    expect(t.server.io.sockets.sockets.size, 'server sockets').to.equal(0);
  });

  it('admin:kick also ends a session the target reopened with the same token while the revocation was written', async () => {
    const host = await t.join({ room: 'kick', user: 'host', role: 'host' });
    const token = t.mint({ room: 'kick', user: 'guest' });
    const first = await t.connect(token);
    expect((await emitAck(first, 'join', {})).ok).to.equal(true);
    const target = t.server.rooms.get('t1', 'kick')?.peerByUser('guest');

    const held = holdNextCall(store.tokens, 'revoke');
    const kick = emitAck(host.client, 'admin:kick', { peer_id: target?.id });
    await held.reached;
    const again = await t.connect(token);
    expect((await emitAck(again, 'join', {})).ok, 'rejoin before the revocation is written').to.equal(true);
    held.release();
    expect(await kick).to.deep.equal({ ok: true });

    await waitFor(() => again.disconnected, 3000, 'the reopened session of the kicked token to end');
    const room = t.server.rooms.get('t1', 'kick');
    expect([...(room?.peers.values() ?? [])].map((peer) => peer.userId)).to.deep.equal(['host']);
  });

  it('admin:kick leaves alone a session the target opened with a new token while the revocation was written', async () => {
    const host = await t.join({ room: 'kick2', user: 'host', role: 'host' });
    const first = await t.join({ room: 'kick2', user: 'guest' });
    const held = holdNextCall(store.tokens, 'revoke');
    const kick = emitAck(host.client, 'admin:kick', { peer_id: first.ack.self.id });
    await held.reached;
    // The integrator's backend minted a new token for that user: the kick was of the old one.
    const fresh: TestClient = (await t.join({ room: 'kick2', user: 'guest' })).client;
    const kicked = nextEvent(fresh, 'kicked', 500).then(
      () => true,
      () => false,
    );
    held.release();
    expect(await kick).to.deep.equal({ ok: true });
    expect(await kicked, 'new session kicked').to.equal(false);
    expect(fresh.connected).to.equal(true);
    expect(t.server.rooms.get('t1', 'kick2')?.peerByUser('guest')?.socket.connected).to.equal(true);
  });
});

describe('SFU promotions racing closes and demotions (real mediasoup)', function () {
  this.timeout(30000);
  let t: TestServer;
  const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1' };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  afterEach(async () => t?.close());

  it('a room closed while its promotion waits for mediasoup leaves the router of the room reopened under its name alone', async () => {
    t = await startServer(SFU_ENV);
    expect((await call(t, 'POST', '/api/v1/rooms', { secret: 'secret-t1', body: { room_id: 'pinned', mode: 'sfu' } })).status).to.equal(
      201,
    );
    const worker = t.server.sfu?.pool.leastLoaded()?.worker;
    if (!worker) throw new Error('no SFU worker');
    const held = holdNextCall(worker, 'createRouter', () => true, true);
    const first = await t.join({ room: 'pinned', user: 'first' });
    await held.reached;
    first.client.close();
    await waitFor(() => t.server.rooms.get('t1', 'pinned') === undefined, 3000, 'the emptied room to close');
    const second = await t.join({ room: 'pinned', user: 'second' });
    await waitFor(() => t.server.rooms.get('t1', 'pinned')?.mode === 'sfu', 5000, 'the reopened room on the SFU');
    held.release();
    await sleep(200);
    const ack = await emitAck(second.client, 'sfu:create_transport', { direction: 'recv' });
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  });

  it('a room promoted again soon after a demotion keeps its router when the demoted one retires', async () => {
    t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '2', DEMOTE_DELAY_MS: '100', SFU_MIGRATION_TIMEOUT_MS: '1000' });
    const mode = () => t.server.rooms.get('t1', 'again')?.mode;
    const a = await t.join({ room: 'again', user: 'a' });
    const b = await t.join({ room: 'again', user: 'b' });
    const c = await t.join({ room: 'again', user: 'c' });
    await waitFor(() => mode() === 'sfu', 5000, 'promotion');
    b.client.close();
    c.client.close();
    await waitFor(() => mode() === 'mesh', 5000, 'demotion');
    const demotedAt = Date.now();
    await t.join({ room: 'again', user: 'd' });
    await t.join({ room: 'again', user: 'e' });
    await waitFor(() => mode() === 'sfu', 5000, 'the second promotion');
    // The demoted router is kept for the migration timeout plus 5 s.
    await sleep(demotedAt + 6_500 - Date.now());
    const ack = await emitAck(a.client, 'sfu:create_transport', { direction: 'recv' });
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  });
});

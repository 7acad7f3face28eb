import { expect } from 'chai';
import { collect, emitAck, expectConnectError, nextEvent, startServer, type TestServer } from '../helpers/server.js';
import { call, createTenant, joinVia, sleep, storeContents, tokenRecordCount, type ApiTenant } from './helpers.js';

describe('api: tenant isolation', () => {
  let t: TestServer;
  let a: ApiTenant;
  let b: ApiTenant;
  beforeEach(async () => {
    t = await startServer();
    a = await createTenant(t, { name: 'A' });
    b = await createTenant(t, { name: 'B' });
  });
  afterEach(async () => {
    await t.close();
  });

  it("B can neither list, read, change, delete nor kick anything of A's", async () => {
    expect(
      (await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'secret-room', metadata: { plan: 'gold' } } }))
        .status,
    ).to.equal(201);
    const alice = await joinVia(t, a, { room_id: 'secret-room', user_id: 'alice' });
    const kicked = collect(alice.client, 'kicked');
    const closed = collect(alice.client, 'room_closed');
    const updated = collect(alice.client, 'room_updated');

    const asB = (method: string, path: string, body?: unknown) => call(t, method, path, { secret: b.api_secret, body });
    expect((await asB('GET', '/api/v1/rooms')).body).to.deep.equal({ rooms: [], next_cursor: null });
    const matrix: [string, string, unknown, number, string][] = [
      ['GET', '/api/v1/rooms/secret-room', undefined, 404, 'not_found'],
      ['PUT', '/api/v1/rooms/secret-room', { locked: true }, 404, 'not_found'],
      ['DELETE', '/api/v1/rooms/secret-room', undefined, 404, 'not_found'],
      ['GET', '/api/v1/rooms/secret-room/participants', undefined, 404, 'not_found'],
      ['DELETE', '/api/v1/rooms/secret-room/participants/alice', undefined, 404, 'peer_not_found'],
    ];
    for (const [method, path, body, status, code] of matrix) {
      const response = await asB(method, path, body);
      expect(response.status, `${method} ${path}`).to.equal(status);
      expect(response.body.error.code, `${method} ${path}`).to.equal(code);
      expect(JSON.stringify(response.body)).to.not.include('gold');
    }
    // Revocation is scoped to the caller: B's revocation of A's jti is B's alone (200, as for any jti unknown to B).
    expect((await asB('POST', '/api/v1/tokens/revoke', { jti: alice.minted.jti })).status).to.equal(200);
    const sessions = await asB('GET', '/api/v1/sessions');
    expect(sessions.body.sessions).to.deep.equal([]);
    const usage = await asB(
      'GET',
      `/api/v1/usage?from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 3600_000).toISOString()}`,
    );
    expect(usage.body.by_room).to.deep.equal([]);

    // Nothing happened to A's room or participant.
    await sleep(150);
    expect(kicked).to.deep.equal([]);
    expect(closed).to.deep.equal([]);
    expect(updated).to.deep.equal([]);
    expect(alice.client.connected).to.equal(true);
    expect(await t.server.store.tokens.isRevoked(a.tenant_id, alice.minted.jti)).to.equal(false);
    const room = await call(t, 'GET', '/api/v1/rooms/secret-room', { secret: a.api_secret });
    expect(room.body).to.deep.include({ locked: false, live: true, num_participants: 1 });
    expect((await call(t, 'GET', '/api/v1/sessions', { secret: a.api_secret })).body.sessions).to.have.length(1);
  });

  it('A\'s room "x" and B\'s room "x" are different rooms with no cross-talk', async () => {
    expect((await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'x', max_participants: 1 } })).status).to.equal(
      201,
    );
    expect((await call(t, 'POST', '/api/v1/rooms', { secret: b.api_secret, body: { room_id: 'x', locked: false } })).status).to.equal(201);
    const alice = await joinVia(t, a, { room_id: 'x', user_id: 'same-user' });
    const aliceJoins = collect(alice.client, 'peer_joined');
    const aliceSignals = collect(alice.client, 'signal');
    // A's room is full at 1; B's "x" is not affected by A's limit.
    const bob = await joinVia(t, b, { room_id: 'x', user_id: 'same-user' });
    expect(bob.ack.peers).to.deep.equal([]);
    const carol = await joinVia(t, b, { room_id: 'x', user_id: 'carol' });
    expect(carol.ack.peers.map((p) => p.user_id)).to.deep.equal(['same-user']);
    const signal = await emitAck(bob.client, 'signal', { to: alice.ack.self.id, candidate: { candidate: '' } });
    expect(signal.ok === false && signal.error.code).to.equal('peer_not_found');

    // Locking, kicking and deleting B's "x" leave A's "x" alone.
    expect((await call(t, 'PUT', '/api/v1/rooms/x', { secret: b.api_secret, body: { locked: true } })).status).to.equal(200);
    expect((await call(t, 'DELETE', '/api/v1/rooms/x/participants/same-user', { secret: b.api_secret })).status).to.equal(204);
    const closed = nextEvent(carol.client, 'room_closed');
    expect((await call(t, 'DELETE', '/api/v1/rooms/x', { secret: b.api_secret })).status).to.equal(204);
    await closed;
    await sleep(150);
    expect(alice.client.connected).to.equal(true);
    expect(aliceJoins).to.deep.equal([]);
    expect(aliceSignals).to.deep.equal([]);
    const roomA = await call(t, 'GET', '/api/v1/rooms/x', { secret: a.api_secret });
    expect(roomA.body).to.deep.include({ max_participants: 1, locked: false, live: true, num_participants: 1 });
    expect(roomA.body.participants.map((p: { user_id: string }) => p.user_id)).to.deep.equal(['same-user']);
    expect(await t.server.store.tokens.isRevoked(a.tenant_id, alice.minted.jti)).to.equal(false);
    expect(await t.server.store.tokens.isRevoked(b.tenant_id, bob.minted.jti)).to.equal(true);
  });

  it("A revoking B's CLI-minted jti neither disconnects B nor refuses B's token; B can still revoke it", async () => {
    // Minted with the signing key (as the CLI does): no record of it in the store.
    const cli = t.server.tokens.mint({
      tenantId: b.tenant_id,
      roomId: 'cli',
      userId: 'bot',
      name: 'bot',
      grants: t.server.config.roles.guest as never,
      ttlS: 600,
    });
    const bot = await t.connect(cli.token);
    expect((await emitAck(bot, 'join', {})).ok).to.equal(true);
    const errors = collect(bot, 'error');

    const byA = await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: cli.jti } });
    expect(byA.status).to.equal(200);
    await sleep(200);
    expect(bot.connected, "A's revocation must not disconnect B's socket").to.equal(true);
    expect(errors).to.deep.equal([]);
    expect(await t.server.store.tokens.isRevoked(b.tenant_id, cli.jti)).to.equal(false);
    const again = await t.connect(cli.token);
    expect(again.connected, "B's token still connects").to.equal(true);
    again.close();

    const gone = nextEvent(bot, 'disconnect');
    expect((await call(t, 'POST', '/api/v1/tokens/revoke', { secret: b.api_secret, body: { jti: cli.jti } })).status).to.equal(200);
    await gone;
    expect((await expectConnectError(t.connect(cli.token))).message).to.equal('token_revoked');
  });
});

describe('api: operator injection and malformed input', () => {
  let t: TestServer;
  let a: ApiTenant;
  beforeEach(async () => {
    t = await startServer();
    a = await createTenant(t, { name: 'A' });
  });
  afterEach(async () => {
    await t.close();
  });

  it('refuses operator objects, $-keys and wrong types in bodies with 400 payload_invalid and mints nothing', async () => {
    const before = tokenRecordCount(t.server.store);
    const bodies: unknown[] = [
      { room_id: { $ne: null }, user_name: 'x' },
      { room_id: 'r', user_name: { $gt: '' } },
      { room_id: 'r', user_id: { $regex: '.*' }, user_name: 'x' },
      { room_id: ['r'], user_name: 'x' },
      { room_id: 'r', user_name: ['x'] },
      { room_id: 'r', user_name: 'x', metadata: { $where: 'sleep(1000)' } },
      { room_id: 'r', user_name: 'x', metadata: { nested: { $set: { admin: true } } } },
      { room_id: 'r', user_name: 'x', metadata: { 'a.b': 1 } },
      { room_id: 'r', user_name: 'x', metadata: ['not', 'an', 'object'] },
      { room_id: 'r', user_name: 'x', metadata: { big: 'x'.repeat(5000) } },
      { room_id: 'r', user_name: 'x', grants: { roomAdmin: 'yes' } },
      { room_id: 'r', user_name: 'x', grants: { $set: { roomAdmin: true } } },
      { room_id: 'r', user_name: 'x', role: 'constructor' },
      { room_id: 'r', user_name: 'x', role: 'superuser' },
      { room_id: 'r', user_name: 'x', duration: -5 },
      { room_id: 'r', user_name: 'x', duration: '3600' },
      { room_id: 'r', user_name: 'x', tid: 'other-tenant' },
      { room_id: '$where', user_name: 'x' },
      { room_id: 'r', user_name: 'x', $where: '1' },
      [{ room_id: 'r', user_name: 'x' }],
      'room_id=r',
      null,
    ];
    for (const body of bodies) {
      const response = await call(t, 'POST', '/api/v1/tokens', { secret: a.api_secret, body });
      expect(response.status, JSON.stringify(body).slice(0, 80)).to.equal(400);
      expect(response.body.error.code).to.equal('payload_invalid');
      expect(response.body).to.not.have.property('token');
    }
    const proto = await call(t, 'POST', '/api/v1/tokens', {
      secret: a.api_secret,
      rawBody: '{"room_id":"r","user_name":"x","metadata":{"__proto__":{"admin":true}}}',
    });
    expect(proto.status).to.equal(400);
    expect(tokenRecordCount(t.server.store)).to.equal(before);

    const rooms: unknown[] = [
      { room_id: { $gt: '' } },
      { room_id: 'r', metadata: { $inc: 1 } },
      { room_id: 'r', max_participants: { $gt: 0 } },
      { room_id: 'r', mode: 'mesh', $set: {} },
      { room_id: 'r', expires_at: 'tomorrow' },
    ];
    for (const body of rooms) {
      const response = await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body });
      expect(response.status, JSON.stringify(body)).to.equal(400);
      expect(response.body.error.code).to.equal('payload_invalid');
    }
    expect(await t.server.store.rooms.count(a.tenant_id)).to.equal(0);
    const put = await call(t, 'PUT', '/api/v1/rooms/r', { secret: a.api_secret, body: { locked: { $ne: false } } });
    expect(put.body.error.code).to.equal('payload_invalid');
    const revoke = await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: { $ne: null } } });
    expect(revoke.body.error.code).to.equal('payload_invalid');
    expect(storeContents(t.server.store)).to.not.match(/\$(ne|gt|where|set|inc|regex)/);
  });

  it('refuses operator-shaped, repeated and unknown query parameters', async () => {
    await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'visible' } });
    for (const path of [
      '/api/v1/sessions?room_id[$gt]=',
      '/api/v1/sessions?room_id[$ne]=x',
      '/api/v1/sessions?room_id=a&room_id=b',
      '/api/v1/sessions?room_id=%24where',
      '/api/v1/sessions?limit=1000',
      '/api/v1/sessions?limit=abc',
      '/api/v1/sessions?from=yesterday',
      '/api/v1/sessions?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z',
      '/api/v1/sessions?__proto__=x',
      '/api/v1/rooms?limit[$gt]=1',
      '/api/v1/rooms?cursor=not%20a%20cursor',
      '/api/v1/rooms?cursor=bm90LWpzb24',
      '/api/v1/rooms?anything=1',
      '/api/v1/usage?from=2020-01-01T00:00:00Z',
      '/api/v1/usage?from[$gt]=0&to=2030-01-01T00:00:00Z',
      '/api/v1/rooms/visible/participants?include_hidden[$ne]=false',
    ]) {
      const response = await call(t, 'GET', path, { secret: a.api_secret });
      expect(response.status, path).to.equal(400);
      expect(response.body.error.code, path).to.equal('payload_invalid');
      expect(JSON.stringify(response.body), path).to.not.include('visible');
    }
    for (const [method, path] of [
      ['GET', '/api/v1/rooms/%24gt'],
      ['GET', '/api/v1/rooms/a%20b'],
      ['PUT', `/api/v1/rooms/${'x'.repeat(200)}`],
      ['DELETE', '/api/v1/rooms/visible/participants/%7B%22%24ne%22%3Anull%7D'],
    ] as const) {
      const response = await call(t, method, path, { secret: a.api_secret, ...(method === 'PUT' ? { body: { locked: true } } : {}) });
      expect(response.status, path).to.equal(400);
      expect(response.body.error.code, path).to.equal('payload_invalid');
    }
  });
});

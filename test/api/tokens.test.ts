import { expect } from 'chai';
import { sha256Hex } from '../../config/index.js';
import { emitAck, expectConnectError, nextEvent, startServer, type TestServer } from '../helpers/server.js';
import { call, createTenant, joinVia, mintToken, type ApiTenant } from './helpers.js';

describe('api: tokens', () => {
  let t: TestServer;
  let a: ApiTenant;
  beforeEach(async () => {
    t = await startServer({ STUN_URLS: 'stun:stun.example.com:3478' });
    a = await createTenant(t, { name: 'A', limits: { max_token_lifetime_s: 7200 } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('mints a token with the documented fields, records only its hash, and the token joins', async () => {
    const before = Date.now();
    const response = await call(t, 'POST', '/api/v1/tokens', {
      secret: a.api_secret,
      body: { room_id: 'standup', user_id: 'alice', user_name: 'Alice', metadata: { color: 'blue' } },
    });
    expect(response.status).to.equal(201);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    const body = response.body;
    expect(body).to.include({ room_id: 'standup', user_id: 'alice', user_name: 'Alice', ws_url: t.server.config.http.publicUrl });
    // TURN is off in this test server: only the configured STUN servers, without credentials.
    expect(body.ice_servers).to.deep.equal([{ urls: ['stun:stun.example.com:3478'] }]);
    const ttl = (Date.parse(body.expires_at) - before) / 1000;
    expect(ttl).to.be.within(3598, 3601);
    expect(body.grants).to.deep.equal(t.server.config.roles.guest);

    const identity = t.server.tokens.verify(body.token);
    expect(identity).to.deep.include({ tenantId: a.tenant_id, roomId: 'standup', userId: 'alice', name: 'Alice', jti: body.jti });
    expect(identity.metadata).to.deep.equal({ color: 'blue' });
    const record = await t.server.store.tokens.get(a.tenant_id, body.jti);
    expect(record).to.deep.include({
      jti: body.jti,
      tenant_id: a.tenant_id,
      room_id: 'standup',
      user_id: 'alice',
      token_sha256: sha256Hex(body.token),
      revoked_at: null,
    });

    const client = await t.connect(body.token);
    const ack = await emitAck(client, 'join', {});
    expect(ack.ok).to.equal(true);
  });

  it('generates user ids, caps duration by the tenant limit, applies roles and explicit grants', async () => {
    const generated = await mintToken(t, a, { room_id: 'r' });
    expect(generated.user_id).to.match(/^u_[A-Za-z0-9_-]+$/);
    const other = await mintToken(t, a, { room_id: 'r' });
    expect(other.user_id).to.not.equal(generated.user_id);
    expect(other.jti).to.not.equal(generated.jti);

    const capped = await mintToken(t, a, { room_id: 'r', duration: 30 * 24 * 3600 });
    expect((Date.parse(capped.expires_at) - Date.now()) / 1000).to.be.within(7190, 7201);
    const short = await mintToken(t, a, { room_id: 'r', duration: 120 });
    expect((Date.parse(short.expires_at) - Date.now()) / 1000).to.be.within(110, 121);

    const host = await call(t, 'POST', '/api/v1/tokens', { secret: a.api_secret, body: { room_id: 'r', user_name: 'h', role: 'host' } });
    expect(host.body.grants).to.deep.equal(t.server.config.roles.host);
    const hostNoAdmin = await call(t, 'POST', '/api/v1/tokens', {
      secret: a.api_secret,
      body: { room_id: 'r', user_name: 'h', role: 'host', grants: { roomAdmin: false } },
    });
    expect(hostNoAdmin.body.grants).to.deep.equal({ ...t.server.config.roles.host, roomAdmin: false });
    const explicit = await call(t, 'POST', '/api/v1/tokens', {
      secret: a.api_secret,
      body: { room_id: 'r', user_name: 'e', grants: { roomJoin: true, canSubscribe: true } },
    });
    expect(explicit.body.grants).to.deep.equal({
      roomJoin: true,
      canSubscribe: true,
      canPublish: false,
      canPublishData: false,
      roomAdmin: false,
      hidden: false,
      canUpdateOwnMetadata: false,
    });
    expect(t.server.tokens.verify(explicit.body.token).grants).to.deep.equal(explicit.body.grants);
  });

  it('revokes: the live socket is gone within a second and reconnecting fails with token_revoked', async () => {
    const alice = await joinVia(t, a, { room_id: 'rv', user_id: 'alice' });
    const bob = await joinVia(t, a, { room_id: 'rv', user_id: 'bob' });
    const left = nextEvent<{ user_id: string; reason: string }>(bob.client, 'peer_left');
    const error = nextEvent<{ code: string }>(alice.client, 'error');
    const disconnected = nextEvent(alice.client, 'disconnect');
    const response = await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: alice.minted.jti } });
    expect(response.status).to.equal(200);
    expect(response.body).to.deep.equal({ jti: alice.minted.jti, revoked: true });
    await disconnected;
    expect((await error).code).to.equal('token_revoked');
    expect(await left).to.deep.include({ user_id: 'alice', reason: 'revoked' });
    const refused = await expectConnectError(t.connect(alice.minted.token));
    expect(refused.message).to.equal('token_revoked');
    expect(bob.client.connected).to.equal(true);
    // Idempotent.
    expect((await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: alice.minted.jti } })).status).to.equal(
      200,
    );
  });

  it('revokes a jti minted outside the API (CLI) for the calling tenant', async () => {
    const token = t.server.tokens.mint({
      tenantId: a.tenant_id,
      roomId: 'cli',
      userId: 'bot',
      name: 'bot',
      grants: t.server.config.roles.guest as never,
      ttlS: 600,
    });
    const client = await t.connect(token.token);
    const gone = nextEvent(client, 'disconnect');
    expect((await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: token.jti } })).status).to.equal(200);
    await gone;
    expect((await expectConnectError(t.connect(token.token))).message).to.equal('token_revoked');
  });
});

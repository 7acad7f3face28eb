import { expect } from 'chai';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import { emitAck, expectConnectError, signRaw, startServer, validClaims, type TestServer } from '../helpers/server.js';

describe('handshake authentication', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer({ CORS_ORIGINS: 'https://app.example.com' });
  });
  after(async () => {
    await t.close();
  });

  async function refusedWith(token: string | undefined, code: string, options = {}): Promise<void> {
    const error = await expectConnectError(t.connect(token, options));
    expect(error.message, error.data?.message).to.equal(code);
    expect(error.data?.code).to.equal(code);
    expect(error.data?.message).to.be.a('string').and.not.empty;
  }

  it('admits a valid token; join acks self, room (mesh, config), peers and ice_servers', async () => {
    const client = await t.connect(t.mint({ room: 'auth-ok', user: 'alice', name: 'Alice' }));
    const ack = await emitAck(client, 'join', { metadata: { color: 'blue' } });
    expect(ack.ok).to.equal(true);
    if (!ack.ok) return;
    const self = ack.self as Record<string, unknown>;
    expect(self).to.include({ user_id: 'alice', name: 'Alice' });
    expect(self.id).to.match(/^p_/);
    expect(self.metadata).to.deep.equal({ color: 'blue' });
    expect(ack.room).to.deep.include({ id: 'auth-ok', mode: 'mesh' });
    expect((ack.room as { config: object }).config).to.include.keys('max_participants', 'mesh_threshold', 'mode_policy', 'locked');
    expect(ack.peers).to.deep.equal([]);
    expect(ack.ice_servers).to.be.an('array');
  });

  it('accepts a token that expired within the 30 s clock tolerance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const client = await t.connect(signRaw(validClaims({ iat: now - 100, exp: now - 10 })));
    expect(client.connected).to.equal(true);
  });

  it('refuses a missing token with token_missing', () => refusedWith(undefined, 'token_missing'));
  it('refuses garbage with token_invalid', () => refusedWith('not-a-jwt', 'token_invalid'));
  it('refuses a non-string token with token_missing', async () => {
    const error = await expectConnectError(t.connect(undefined, { auth: { token: { $ne: null } } }));
    expect(error.message).to.equal('token_missing');
  });
  it('refuses a bad signature', () =>
    refusedWith(signRaw(validClaims(), { secret: 'another-secret-that-is-long-enough-xxxx' }), 'token_invalid'));
  it('refuses alg "none"', () => {
    const none = jwt.sign(validClaims(), '', { algorithm: 'none', keyid: 'k1' } as jwt.SignOptions);
    return refusedWith(none, 'token_invalid');
  });
  it('refuses HS512 even with the right secret (algorithm pinned)', () =>
    refusedWith(signRaw(validClaims(), { algorithm: 'HS512' }), 'token_invalid'));
  it('refuses an unknown kid', () => refusedWith(signRaw(validClaims(), { keyid: 'nope' }), 'token_invalid'));
  it('refuses a token without kid', () => {
    const token = jwt.sign(validClaims(), 'test-secret-0123456789-0123456789-abcdef', { algorithm: 'HS256' });
    return refusedWith(token, 'token_invalid');
  });
  it('refuses a token expired beyond the tolerance with token_expired', () => {
    const now = Math.floor(Date.now() / 1000);
    return refusedWith(signRaw(validClaims({ iat: now - 200, exp: now - 60 })), 'token_expired');
  });
  it('refuses nbf in the future', () => refusedWith(signRaw(validClaims({ nbf: Math.floor(Date.now() / 1000) + 120 })), 'token_invalid'));
  it('refuses a wrong issuer', () => refusedWith(signRaw(validClaims({ iss: 'someone-else' })), 'token_invalid'));
  it('refuses a wrong audience', () => refusedWith(signRaw(validClaims({ aud: 'other-app' })), 'token_invalid'));
  it('refuses a token without exp', () => refusedWith(signRaw(validClaims({ exp: undefined })), 'token_invalid'));
  it('refuses a token without jti', () => refusedWith(signRaw(validClaims({ jti: undefined })), 'token_invalid'));
  it('refuses a token without iss or aud', async () => {
    await refusedWith(signRaw(validClaims({ iss: undefined })), 'token_invalid');
    await refusedWith(signRaw(validClaims({ aud: undefined })), 'token_invalid');
  });
  it('refuses a lifetime beyond the maximum', () => {
    const now = Math.floor(Date.now() / 1000);
    return refusedWith(signRaw(validClaims({ iat: now, exp: now + 30 * 24 * 3600 })), 'token_invalid');
  });
  it('refuses a token without the roomJoin grant with forbidden', () =>
    refusedWith(signRaw(validClaims({ grants: { canPublish: true } })), 'forbidden'));
  it('refuses a token of an unknown tenant', () => refusedWith(signRaw(validClaims({ tid: 'ghost' })), 'token_invalid'));

  it('refuses a token in the query string, even alongside a valid auth token', async () => {
    const token = t.mint({ room: 'q' });
    await refusedWith(undefined, 'token_invalid', { query: { token } });
    await refusedWith(token, 'token_invalid', { query: { access_token: token } });
    await refusedWith(token, 'token_invalid', { query: { x: token } });
  });

  it('refuses a revoked jti, and disconnects its live sockets at once', async () => {
    const token = t.mint({ room: 'revoke' });
    const { jti, exp } = jwt.decode(token) as { jti: string; exp: number };
    const client = await t.connect(token);
    const disconnected = new Promise<string>((resolve) => client.once('disconnect', resolve));
    const errorEvent = new Promise<{ code: string }>((resolve) => client.once('error', resolve));
    await t.server.store.tokens.revoke('t1', jti, new Date(exp * 1000));
    t.server.gateway.disconnectToken('t1', jti);
    expect((await errorEvent).code).to.equal('token_revoked');
    expect(await disconnected).to.equal('io server disconnect');
    await refusedWith(token, 'token_revoked');
  });

  it('refuses a foreign Origin with 403 before the handshake', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${t.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'https://evil.example.com' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    expect(status).to.equal(403);
    const error = await expectConnectError(t.connect(t.mint({ room: 'o' }), { extraHeaders: { origin: 'https://evil.example.com' } }));
    expect(error.message).to.match(/websocket error|xhr poll error/);
  });

  it('admits an allowed Origin', async () => {
    const client = await t.connect(t.mint({ room: 'o2' }), { extraHeaders: { origin: 'https://app.example.com' } });
    expect(client.connected).to.equal(true);
  });
});

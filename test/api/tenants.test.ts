import { expect } from 'chai';
import { sha256Hex } from '../../config/index.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminKey, call, createTenant, mintToken, storeContents } from './helpers.js';

describe('api: tenants and credentials', () => {
  let t: TestServer;
  afterEach(async () => {
    await t?.close();
  });

  it('creates a tenant with the admin key; the secret is shown once and only its hash is stored', async () => {
    t = await startServer();
    const response = await call(t, 'POST', '/api/v1/tenants', {
      secret: adminKey(t),
      body: { name: 'Acme', limits: { max_rooms: 5, auto_create_rooms: false } },
    });
    expect(response.status).to.equal(201);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    const { tenant_id, api_key, api_secret, limits } = response.body;
    expect(api_secret).to.match(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(api_key).to.match(/^ak_/);
    expect(limits).to.deep.equal({ ...t.server.config.defaultTenantLimits, max_rooms: 5, auto_create_rooms: false });
    expect(response.body).to.not.have.property('api_secret_sha256');

    const stored = await t.server.store.tenants.get(tenant_id);
    expect(stored?.api_secret_sha256).to.equal(sha256Hex(api_secret));
    expect(storeContents(t.server.store)).to.not.include(api_secret);

    // The secret works as the tenant credential.
    const rooms = await call(t, 'GET', '/api/v1/rooms', { secret: api_secret });
    expect(rooms.status).to.equal(200);
    expect(rooms.body).to.deep.equal({ rooms: [], next_cursor: null });
  });

  it('keeps neither API secrets nor tokens in any store record', async () => {
    t = await startServer();
    const a = await createTenant(t, { name: 'a', webhook: { url: 'https://hooks.example.com/x' } });
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) tokens.push((await mintToken(t, a, { room_id: 'r', user_id: `u${i}` })).token);
    const contents = storeContents(t.server.store);
    expect(contents).to.include(a.tenant_id);
    expect(contents).to.not.include(a.api_secret);
    for (const token of tokens) {
      expect(contents).to.not.include(token);
      expect(contents).to.not.include(token.split('.')[2] as string);
      expect(contents).to.include(sha256Hex(token));
    }
  });

  it('answers 401 unauthorized for a missing, malformed or wrong tenant secret', async () => {
    t = await startServer();
    const a = await createTenant(t);
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Basic ${a.api_secret}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${a.api_secret}x` },
      { authorization: `Bearer ${'x'.repeat(5000)}` },
    ]) {
      const response = await call(t, 'GET', '/api/v1/rooms', { headers });
      expect(response.status, JSON.stringify(headers).slice(0, 80)).to.equal(401);
      expect(response.body.error.code).to.equal('unauthorized');
      expect(response.headers.get('www-authenticate')).to.match(/^Bearer/);
    }
    // The admin key is not a tenant secret, nor the api_key.
    expect((await call(t, 'GET', '/api/v1/rooms', { secret: adminKey(t) })).status).to.equal(401);
    expect((await call(t, 'GET', '/api/v1/rooms', { secret: a.api_key })).status).to.equal(401);
  });

  it('refuses admin routes without or with a wrong key (401), and a tenant secret is not an admin key', async () => {
    t = await startServer();
    const a = await createTenant(t);
    for (const secret of [undefined, 'wrong-key', a.api_secret, `${adminKey(t)}x`]) {
      const response = await call(t, 'POST', '/api/v1/tenants', { secret, body: { name: 'evil' } });
      expect(response.status).to.equal(401);
      expect(response.body.error.code).to.equal('unauthorized');
    }
  });

  it('answers 403 forbidden on admin routes when no admin key is configured', async () => {
    t = await startServer({ NODE_ENV: 'production', CORS_ORIGINS: 'http://localhost' });
    expect(t.server.config.auth.adminApiKey).to.equal(undefined);
    const response = await call(t, 'POST', '/api/v1/tenants', { secret: 'anything-at-all', body: { name: 'x' } });
    expect(response.status).to.equal(403);
    expect(response.body.error.code).to.equal('forbidden');
  });

  it('validates the tenant body strictly', async () => {
    t = await startServer();
    for (const body of [
      {},
      { name: { $ne: null } },
      { name: 'x', extra: 1 },
      { name: 'x', limits: { max_rooms: 0 } },
      { name: 'x', limits: { $set: 1 } },
      { name: ['x'] },
    ]) {
      const response = await call(t, 'POST', '/api/v1/tenants', { secret: adminKey(t), body });
      expect(response.status, JSON.stringify(body)).to.equal(400);
      expect(response.body.error.code).to.equal('payload_invalid');
    }
    const malformed = await call(t, 'POST', '/api/v1/tenants', { secret: adminKey(t), rawBody: '{"name":' });
    expect(malformed.body.error.code).to.equal('payload_invalid');
  });

  it('rate-limits the admin API per IP with 429 and Retry-After', async () => {
    t = await startServer({}, { apiRateLimits: { adminPerIpPerMinute: 3 } });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await call(t, 'POST', '/api/v1/tenants', { secret: i % 2 ? 'wrong' : adminKey(t), body: { name: `t${i}` } });
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 3)).to.deep.equal([201, 401, 201]);
    expect(statuses.slice(3)).to.deep.equal([429, 429]);
    expect(last?.body.error.code).to.equal('rate_limited');
    expect(Number(last?.headers.get('retry-after'))).to.be.within(1, 60);
  });

  it('rate-limits token minting per tenant with 429 and Retry-After; other tenants are unaffected', async () => {
    t = await startServer({}, { apiRateLimits: { tokensPerTenantPerMinute: 3 } });
    const a = await createTenant(t, { name: 'a' });
    const b = await createTenant(t, { name: 'b' });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await call(t, 'POST', '/api/v1/tokens', { secret: a.api_secret, body: { room_id: 'r', user_name: 'x' } });
      statuses.push(last.status);
    }
    expect(statuses).to.deep.equal([201, 201, 201, 429]);
    expect(last?.body.error.code).to.equal('rate_limited');
    expect(Number(last?.headers.get('retry-after'))).to.be.within(1, 60);
    const revoke = await call(t, 'POST', '/api/v1/tokens/revoke', { secret: a.api_secret, body: { jti: 'abcdefgh-1234' } });
    expect(revoke.status).to.equal(429);
    const other = await call(t, 'POST', '/api/v1/tokens', { secret: b.api_secret, body: { room_id: 'r', user_name: 'x' } });
    expect(other.status).to.equal(201);
  });

  it('lets a tenant set, read and remove its webhook; non-http(s) and private URLs are refused', async () => {
    t = await startServer();
    const a = await createTenant(t);
    const set = await call(t, 'PUT', '/api/v1/webhook', { secret: a.api_secret, body: { url: 'https://hooks.example.com/sb' } });
    expect(set.status).to.equal(200);
    expect(set.body.url).to.equal('https://hooks.example.com/sb');
    expect(set.body.secret).to.match(/^whsec_/);
    expect(set.headers.get('cache-control')).to.equal('no-store');
    const read = await call(t, 'GET', '/api/v1/webhook', { secret: a.api_secret });
    expect(read.body).to.deep.equal({ webhook: { url: 'https://hooks.example.com/sb' } });

    for (const url of [
      'ftp://example.com/x',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'http://127.0.0.1:9/x',
      'http://[::1]/x',
      'http://10.1.2.3/x',
      'http://169.254.169.254/latest',
      'http://[::ffff:127.0.0.1]/x',
      'http://localhost:8080/x',
      'https://user:pass@example.com/x',
      'not a url',
    ]) {
      const refused = await call(t, 'PUT', '/api/v1/webhook', { secret: a.api_secret, body: { url } });
      expect(refused.status, url).to.equal(400);
      expect(refused.body.error.code).to.equal('payload_invalid');
    }
    const refusedAtCreation = await call(t, 'POST', '/api/v1/tenants', {
      secret: adminKey(t),
      body: { name: 'x', webhook: { url: 'gopher://x' } },
    });
    expect(refusedAtCreation.status).to.equal(400);

    expect((await call(t, 'DELETE', '/api/v1/webhook', { secret: a.api_secret })).status).to.equal(204);
    expect((await call(t, 'GET', '/api/v1/webhook', { secret: a.api_secret })).body).to.deep.equal({ webhook: null });
  });
});

/**
 * HTTP access logs: one line per request with method, path (no query), status, duration and
 * request id; probes only when they fail; and no token, API secret, admin key or cookie in the
 * raw log output, wherever the caller put it, at info and at trace level.
 */
import { expect } from 'chai';
import { adminKey, call, createTenant, mintToken } from '../api/helpers.js';
import { capturedLogger } from '../helpers/logs.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface AccessLine {
  level: number;
  module: string;
  msg: string;
  req: { id: string; method: string; path: string; ip?: string };
  res: { status: number };
  duration_ms: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function accessLines(lines: string[]): AccessLine[] {
  return lines.map((line) => JSON.parse(line) as AccessLine).filter((line) => line.module === 'access');
}

/** Waits for the access line of a finished request (written on the response's 'finish'). */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('HTTP access log', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('writes one line per request: method, path without the query, status, duration, the request id', async () => {
    const { logger, lines } = capturedLogger('info');
    t = await startServer({ LOG_LEVEL: 'info' }, { logger });
    const tenant = await createTenant(t);
    const response = await call(t, 'GET', '/api/v1/rooms?limit=5', {
      secret: tenant.api_secret,
      headers: { 'x-request-id': 'req-1234.abcd' },
    });
    expect(response.status).to.equal(200);
    expect(response.headers.get('x-request-id')).to.equal('req-1234.abcd');
    const missing = await fetch(`${t.url}/no/such/route?x=1`);
    expect(missing.headers.get('x-request-id')).to.match(UUID);
    await settle();

    const logged = accessLines(lines);
    const rooms = logged.filter((line) => line.req.path === '/api/v1/rooms' && line.req.method === 'GET');
    expect(rooms).to.have.length(1);
    const [line] = rooms as [AccessLine];
    expect(line).to.deep.include({ level: 30, msg: 'GET /api/v1/rooms 200' });
    expect(line.req).to.deep.include({ id: 'req-1234.abcd', method: 'GET', path: '/api/v1/rooms', ip: '127.0.0.1' });
    expect(line.res).to.deep.equal({ status: 200 });
    expect(line.duration_ms).to.be.a('number').and.at.least(0);
    const notFound = logged.find((entry) => entry.req.path === '/no/such/route');
    expect(notFound?.res.status).to.equal(404);
    expect(notFound?.req.id).to.equal(missing.headers.get('x-request-id'));
    // The creation of the tenant above was logged too: one line per request.
    expect(logged.filter((entry) => entry.req.path === '/api/v1/tenants')).to.have.length(1);
  });

  it('leaves /health, /ready and /metrics out unless they fail', async () => {
    const { logger, lines } = capturedLogger('info');
    t = await startServer({ LOG_LEVEL: 'info', METRICS_PORT: '0' }, { logger });
    for (const path of ['/health', '/ready', '/metrics']) expect((await fetch(`${t.url}${path}`)).status, path).to.equal(200);
    expect((await fetch(`${t.url}/health`, { method: 'POST' })).status).to.equal(404);
    await fetch(`${t.url}/api/v1/rooms`);
    await settle();
    const logged = accessLines(lines).map((line) => line.msg);
    expect(logged).to.deep.equal(['POST /health 404', 'GET /api/v1/rooms 401']);
  });

  it('does not echo or log a malformed X-Request-Id; a new id replaces it', async () => {
    const { logger, lines } = capturedLogger('info');
    t = await startServer({ LOG_LEVEL: 'info' }, { logger });
    const malformed = ['has spaces and <angle> brackets', 'x'.repeat(65), 'quote"and{brace}'];
    for (const given of malformed) {
      const response = await fetch(`${t.url}/health`, { method: 'POST', headers: { 'x-request-id': given } });
      expect(response.headers.get('x-request-id'), given).to.match(UUID);
    }
    await settle();
    const all = lines.join('');
    expect(accessLines(lines)).to.have.length(malformed.length);
    for (const given of malformed) expect(all).to.not.include(given);
  });

  it('ACCESS_LOG=false writes no access line (request ids are still given)', async () => {
    const { logger, lines } = capturedLogger('info');
    t = await startServer({ LOG_LEVEL: 'info', ACCESS_LOG: 'false' }, { logger });
    const response = await fetch(`${t.url}/no/such/route`);
    expect(response.status).to.equal(404);
    expect(response.headers.get('x-request-id')).to.match(UUID);
    await settle();
    expect(lines.length).to.be.greaterThan(0);
    expect(accessLines(lines)).to.deep.equal([]);
  });

  for (const level of ['info', 'trace']) {
    it(`never writes a token, API secret, admin key or cookie, wherever the request carried it (LOG_LEVEL=${level})`, async () => {
      const { logger, lines } = capturedLogger(level);
      t = await startServer({ LOG_LEVEL: level }, { logger });
      const admin = adminKey(t);
      const tenant = await createTenant(t);
      const minted = await mintToken(t, tenant, { room_id: 'logs', user_id: 'alice' });
      const jwt = minted.token;
      const signature = jwt.split('.')[2] as string;

      // A JWT as the bearer credential, in the query (two names), in a cookie, and an API secret in an X-Api-Key header.
      const query = `token=${jwt}&access_token=${jwt}&api_secret=${tenant.api_secret}&admin_key=${admin}`;
      const inQuery = await call(t, 'GET', `/api/v1/rooms?${query}`, {
        secret: jwt,
        headers: { cookie: `session=${jwt}; admin=${admin}`, 'x-api-key': tenant.api_secret, 'x-api-secret': tenant.api_secret },
      });
      expect(inQuery.status).to.equal(401);
      // A JWT and secrets in a JSON body (a refused one and an accepted one).
      const inBody = await call(t, 'POST', '/api/v1/tokens/revoke', {
        secret: tenant.api_secret,
        body: { jti: minted.jti, token: jwt, api_secret: tenant.api_secret, admin_key: admin },
      });
      expect(inBody.status, JSON.stringify(inBody.body)).to.be.oneOf([200, 204, 400]);
      const badJson = await call(t, 'POST', '/api/v1/tokens', {
        secret: tenant.api_secret,
        rawBody: `{"token":"${jwt}","api_secret":"${tenant.api_secret}"`,
      });
      expect(badJson.status).to.equal(400);
      // A JWT as a path segment and as a (malformed) X-Request-Id; the admin key on the admin API and on a tenant route.
      await call(t, 'GET', `/api/v1/rooms/${jwt}`, { secret: tenant.api_secret, headers: { 'x-request-id': jwt } });
      const created = await call(t, 'POST', '/api/v1/tenants', { secret: admin, body: { name: 'second' } });
      expect(created.status).to.equal(201);
      const newSecret = (created.body as { api_secret: string }).api_secret;
      await call(t, 'GET', '/api/v1/rooms', { secret: admin });
      // The socket handshake with the token in the query string (refused) and in auth.
      await t.connect(jwt, { query: { token: jwt } }).catch(() => undefined);
      await settle();

      const all = lines.join('');
      const logged = accessLines(lines);
      expect(logged.length, 'access lines').to.be.at.least(7);
      expect(
        logged.map((line) => line.req.path),
        JSON.stringify(logged.map((l) => l.msg)),
      ).to.include('/api/v1/rooms/[redacted]');
      for (const [what, secret] of Object.entries({
        jwt,
        signature,
        'tenant API secret': tenant.api_secret,
        'admin key': admin,
        'new tenant API secret': newSecret,
      }))
        expect(all, what).to.not.include(secret);
      // Nor any header or query value by name.
      expect(all).to.not.match(/access_token|x-api-key|"cookie"|"authorization"|api_secret=/i);
    });
  }
});

import { expect } from 'chai';
import { INFRASTRUCTURE_ROUTES, openApiPath } from '../../server/http/openapi.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { call } from './helpers.js';

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
}

/** Every (method, path) express has a route for, read from the app's router stack. */
function expressRoutes(t: TestServer): { method: string; path: string }[] {
  const app = t.server.app as unknown as { router: { stack: Layer[] } };
  const routes: { method: string; path: string }[] = [];
  for (const layer of app.router.stack) {
    if (!layer.route) continue;
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const path of paths)
      for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') routes.push({ method, path });
  }
  return routes;
}

describe('api: OpenAPI document', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    await t.close();
  });

  it('is served at /api/v1/openapi.json as OpenAPI 3.1', async () => {
    const response = await call(t, 'GET', '/api/v1/openapi.json');
    expect(response.status).to.equal(200);
    expect(response.body.openapi).to.equal('3.1.0');
    expect(response.body.components.securitySchemes).to.have.keys(['tenantSecret', 'adminKey']);
    const token = response.body.paths['/api/v1/tokens'].post;
    expect(token.requestBody.content['application/json'].schema.required).to.include.members(['room_id', 'user_name']);
    expect(token.requestBody.content['application/json'].schema.additionalProperties).to.equal(false);
    expect(token.responses).to.include.keys(['201', '400', '401', '429']);
    expect(response.body.paths['/api/v1/rooms/{roomId}'].get.parameters[0]).to.deep.include({ name: 'roomId', in: 'path', required: true });
  });

  it('documents every route registered in express, and every documented route exists', async () => {
    const document = (await call(t, 'GET', '/api/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const registered = expressRoutes(t);
    expect(registered.length).to.be.greaterThan(15);
    for (const { method, path } of registered) {
      expect(document.paths[openApiPath(path)]?.[method], `${method.toUpperCase()} ${path} is not in the OpenAPI document`).to.be.an(
        'object',
      );
    }
    // The other direction: documented API routes are all served (metrics and dev routes may be off by config).
    const served = new Set(registered.map(({ method, path }) => `${method} ${openApiPath(path)}`));
    const optional = new Set(INFRASTRUCTURE_ROUTES.map((r) => `${r.method} ${r.path}`));
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const method of Object.keys(operations)) {
        const key = `${method} ${path}`;
        if (!optional.has(key)) expect(served.has(key), `${key} is documented but not served`).to.equal(true);
      }
    }
  });
});

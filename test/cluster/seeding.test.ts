/**
 * Seeding the tenants of CONFIG_FILE when several nodes boot at once against one Redis: every
 * node upserts them, so all boot, and a restart with rotated credentials or changed limits in
 * the file applies them (old credentials refused, new ones accepted, the tenant's webhook kept).
 *
 * Servers are built with createServer rather than startServer (test/helpers/server.ts): that
 * helper also creates tenant "t1" with a plain create, which the second server on the same
 * Redis would find taken.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { sha256Hex, testConfig } from '../../config/index.js';
import { createServer, type SwitchboardServer } from '../../server/index.js';
import type { TenantLimits } from '../../server/store/Store.js';
import { capturedLogger } from '../helpers/logs.js';
import { redisUnavailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { TEST_KID, TEST_SECRET } from '../helpers/server.js';

const TENANT_ID = 'acme';
/** How many times two nodes boot together from an empty Redis. */
const ROUNDS = 5;

interface DeclaredTenant {
  api_key: string;
  api_secret: string;
  limits: Partial<TenantLimits>;
}

interface LogLine {
  level: number;
  msg: string;
  tenant?: string;
  changed?: string[];
}

interface Node {
  server: SwitchboardServer;
  /** The node's log lines, parsed. */
  logs(): LogLine[];
  /** The raw log text, to check that no credential leaked into it. */
  text(): string;
}

const declaration = (limits: Partial<TenantLimits>): DeclaredTenant => ({
  api_key: `ak_${randomBytes(8).toString('hex')}`,
  api_secret: `sk_${randomBytes(24).toString('hex')}`,
  limits,
});

/** One call to a node's HTTP API with a tenant secret. */
async function api(
  node: Node,
  method: string,
  path: string,
  secret: string,
  body?: unknown,
): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const response = await fetch(`${node.server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, never>) : {} };
}

const unavailable = redisUnavailable();

describe('cluster: seeding declared tenants when nodes boot together', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  let dir: string;
  let nodes: Node[] = [];

  before(async function () {
    if (unavailable) {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
    redis = await startRedis();
    raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await raw.connect();
    dir = mkdtempSync(join(tmpdir(), 'sb-seeding-'));
  });

  after(async function () {
    raw?.disconnect();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async function () {
    // The servers use the store's default key prefix: each test starts from an empty Redis.
    await raw.flushdb();
  });

  afterEach(async function () {
    await stopAll();
  });

  async function stopAll(): Promise<void> {
    await Promise.all(nodes.map((node) => node.server.close()));
    nodes = [];
  }

  /** Writes CONFIG_FILE declaring the tenant; returns its path. */
  function writeConfigFile(tenant: DeclaredTenant): string {
    const file = join(dir, `switchboard-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(file, JSON.stringify({ tenants: [{ tenant_id: TENANT_ID, name: 'Acme', ...tenant }] }));
    return file;
  }

  /** Boots `count` nodes at the same time from one config file; every boot must succeed. */
  async function bootTogether(configFile: string, count: number): Promise<Node[]> {
    const booted = await Promise.allSettled(
      Array.from({ length: count }, async (_, i): Promise<Node> => {
        const { logger, lines } = capturedLogger('info');
        const config = testConfig({
          SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`,
          STORE: 'redis',
          REDIS_URL: redis.url,
          CONFIG_FILE: configFile,
          NODE_ID: `node-${i}-${randomBytes(3).toString('hex')}`,
        });
        const server = await createServer(config, { logger });
        return { server, logs: () => lines.map((line) => JSON.parse(line) as LogLine), text: () => lines.join('') };
      }),
    );
    const started = booted.filter((result) => result.status === 'fulfilled').map((result) => result.value);
    nodes.push(...started);
    const failures = booted.filter((result) => result.status === 'rejected').map((result) => String(result.reason));
    expect(failures, 'every node boots').to.deep.equal([]);
    return started;
  }

  const seedingLines = (group: readonly Node[], message: RegExp): LogLine[] =>
    group.flatMap((node) => node.logs()).filter((line) => line.tenant === TENANT_ID && message.test(line.msg));

  it(`two nodes booting at the same time both start and the tenant is created once (${ROUNDS} rounds)`, async function () {
    for (let round = 0; round < ROUNDS; round++) {
      await raw.flushdb();
      const tenant = declaration({ max_rooms: 5 });
      const group = await bootTogether(writeConfigFile(tenant), 2);
      expect(seedingLines(group, /^declared tenant created/), `round ${round}`).to.have.lengthOf(1);
      expect(seedingLines(group, /^declared tenant updated/), `round ${round}`).to.deep.equal([]);
      for (const node of group) {
        expect((await api(node, 'GET', '/api/v1/rooms', tenant.api_secret)).status, `round ${round}`).to.equal(200);
      }
      await stopAll();
    }
  });

  it('a restart with a rotated key and secret and changed limits applies them: old credentials 401, new ones work, webhook kept', async function () {
    const before = declaration({ max_rooms: 5, max_participants: 20 });
    const first = await bootTogether(writeConfigFile(before), 2);
    const [one, two] = first as [Node, Node];
    // The tenant sets its webhook through the API; the file does not declare it.
    const webhookUrl = 'https://hooks.example.com/acme';
    expect((await api(one, 'PUT', '/api/v1/webhook', before.api_secret, { url: webhookUrl })).status).to.equal(200);
    expect((await api(two, 'GET', '/api/v1/webhook', before.api_secret)).body).to.deep.equal({ webhook: { url: webhookUrl } });
    const createdAt = (await one.server.store.tenants.get(TENANT_ID))?.created_at;
    await stopAll();

    const after = declaration({ max_rooms: 1, max_participants: 10 });
    const second = await bootTogether(writeConfigFile(after), 2);

    // Exactly one node applied the change (the other found it applied) and said which fields changed.
    const updates = seedingLines(second, /^declared tenant updated/);
    expect(updates.map((line) => line.changed)).to.deep.equal([['api_key', 'api_secret_sha256', 'limits']]);
    expect(updates[0]?.msg).to.include('api_key').and.include('api_secret_sha256').and.include('limits');
    expect(seedingLines(second, /^declared tenant created/)).to.deep.equal([]);
    for (const node of [...first, ...second]) {
      for (const value of [before.api_key, before.api_secret, after.api_key, after.api_secret]) {
        expect(node.text()).to.not.include(value);
      }
      for (const value of [sha256Hex(before.api_secret), sha256Hex(after.api_secret)]) expect(node.text()).to.not.include(value);
    }

    for (const node of second) {
      const refused = await api(node, 'GET', '/api/v1/rooms', before.api_secret);
      expect(refused.status).to.equal(401);
      expect(refused.body.error?.code).to.equal('unauthorized');
      expect((await api(node, 'GET', '/api/v1/rooms', after.api_secret)).status).to.equal(200);
      expect((await api(node, 'GET', '/api/v1/webhook', after.api_secret)).body).to.deep.equal({ webhook: { url: webhookUrl } });
    }
    const [three, four] = second as [Node, Node];
    const stored = await three.server.store.tenants.get(TENANT_ID);
    expect(stored?.limits).to.include({ max_rooms: 1, max_participants: 10 });
    expect(stored?.created_at).to.deep.equal(createdAt);
    expect(await three.server.store.tenants.getByApiKey(before.api_key)).to.equal(null);
    expect((await three.server.store.tenants.getByApiKey(after.api_key))?.tenant_id).to.equal(TENANT_ID);

    // The new limits hold over HTTP on both nodes.
    const tooBig = await api(three, 'POST', '/api/v1/rooms', after.api_secret, { room_id: 'big', max_participants: 11 });
    expect(tooBig.status).to.equal(403);
    expect(tooBig.body.error?.message).to.include('max_participants exceeds the tenant limit (10)');
    expect((await api(three, 'POST', '/api/v1/rooms', after.api_secret, { room_id: 'one', max_participants: 10 })).status).to.equal(201);
    const full = await api(four, 'POST', '/api/v1/rooms', after.api_secret, { room_id: 'two' });
    expect(full.status).to.equal(403);
    expect(full.body.error?.message).to.include('room limit reached (1)');
  });

  it('a restart with an unchanged file changes nothing and logs no update', async function () {
    const tenant = declaration({ max_rooms: 3 });
    const file = writeConfigFile(tenant);
    await bootTogether(file, 2);
    await stopAll();
    const again = await bootTogether(file, 2);
    expect(seedingLines(again, /^declared tenant (created|updated)/)).to.deep.equal([]);
    expect((await api(again[0] as Node, 'GET', '/api/v1/rooms', tenant.api_secret)).status).to.equal(200);
  });
});

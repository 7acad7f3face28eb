import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { testConfig } from '../../config/index.js';
import { AppError } from '../../server/errors.js';
import { createServer } from '../../server/index.js';
import { describeRedisUrl } from '../../server/cluster/connection.js';
import { RedisStore, type RedisStoreOptions } from '../../server/store/RedisStore.js';
import type { RoomRecord, TenantRecord, TokenRecord } from '../../server/store/Store.js';
import { settlesWithin, withBlackHole } from '../helpers/deadlines.js';
import { redisUnavailable, startRedis, type RedisServer } from '../helpers/redis.js';
import { startServer, TEST_KID, TEST_SECRET, type TestServer } from '../helpers/server.js';
import { expectAppError, freshId, roomRecord, sessionRecord, storeContract, tenantRecord, tokenRecord } from './contract.js';

/** A prefix no other store of this run uses. */
const freshPrefix = (): string => `sbtest-${randomBytes(4).toString('hex')}:`;

/** Every key under a prefix (SCAN: test inspection only; the store itself never scans). */
async function keysUnder(raw: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

describe('RedisStore without a server', function () {
  it('refuses a URL that is not redis:// or rediss://', function () {
    expect(() => new RedisStore('http://127.0.0.1:6379')).to.throw(/redis:\/\//);
  });

  it('names the server in messages without its credentials', function () {
    expect(describeRedisUrl('redis://user:hunter2@cache.example.com:6380/2?x=1')).to.equal('redis://cache.example.com:6380');
    expect(describeRedisUrl('rediss://:pw@10.0.0.5')).to.equal('rediss://10.0.0.5');
  });

  it('fails fast, not hanging, when used before init(); ping() is false', async function () {
    const store = new RedisStore('redis://127.0.0.1:1');
    const outcome = await settlesWithin(store.rooms.get('t', 'r'), 1000);
    expect(String((outcome.error as Error).message)).to.match(/^\[RedisStore:rooms\.get\] store is not initialized/);
    expect(await store.ping()).to.equal(false);
  });

  it('init() on a port nobody listens on rejects at once with a clear error that hides the credentials; a later init() tries again', async function () {
    const store = new RedisStore('redis://switchboard:hunter2@127.0.0.1:1/0', { connectTimeoutMs: 500 });
    const outcome = await settlesWithin(store.init(), 5000);
    const message = String((outcome.error as Error).message);
    expect(message).to.match(/^\[RedisStore:init\] cannot use redis:\/\/127\.0\.0\.1:1: /);
    expect(message).to.not.include('hunter2');
    expect((await settlesWithin(store.init(), 5000)).error).to.be.an('error');
    expect(await store.ping()).to.equal(false);
    await store.close();
  });

  it('init() gives up on a server that accepts connections but never answers', async function () {
    await withBlackHole(async (port) => {
      const store = new RedisStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 300, commandTimeoutMs: 300 });
      const init = await settlesWithin(store.init(), 5000);
      expect(String((init.error as Error).message)).to.include('[RedisStore:init]');
      expect(await store.ping()).to.equal(false);
      await store.close();
    });
  });

  it('close() is idempotent whether or not init() ran, and init() after close() rejects', async function () {
    const store = new RedisStore('redis://127.0.0.1:1');
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(await store.ping()).to.equal(false);
    const outcome = await settlesWithin(store.init(), 1000);
    expect(String((outcome.error as Error).message)).to.include('closed');
  });
});

const unavailable = redisUnavailable();

if (unavailable) {
  describe('RedisStore on a real redis-server', function () {
    it('runs the store contract against Redis', function () {
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    });
  });
} else {
  describe('RedisStore on a real redis-server', function () {
    this.timeout(30_000);
    let redis: RedisServer;
    let raw: Redis;
    const stores: RedisStore[] = [];

    const newStore = (options: RedisStoreOptions = {}): RedisStore => {
      const store = new RedisStore(redis.url, { keyPrefix: freshPrefix(), ...options });
      stores.push(store);
      return store;
    };

    before(async function () {
      redis = await startRedis();
      raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await raw.connect();
    });

    after(async function () {
      await Promise.all(stores.map((store) => store.close()));
      raw?.disconnect();
      await redis?.stop();
    });

    storeContract('RedisStore', async () => newStore());

    it('runs on redis-server 7 or later', async function () {
      const info = await raw.info('server');
      expect(Number(/^redis_version:(\d+)/m.exec(info)?.[1])).to.be.at.least(7);
    });

    describe('two stores (two nodes) on one Redis', function () {
      let a: RedisStore;
      let b: RedisStore;

      before(async function () {
        const keyPrefix = freshPrefix();
        a = newStore({ keyPrefix });
        b = newStore({ keyPrefix });
        await Promise.all([a.init(), b.init()]);
      });

      it("each sees the other's writes: tenants, rooms, tokens and sessions", async function () {
        const tenant = tenantRecord();
        await a.tenants.create(tenant);
        expect(await b.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
        expect(await b.tenants.getByApiKey(tenant.api_key)).to.deep.equal(tenant);
        expect(await b.tenants.getBySecretHash(tenant.api_secret_sha256)).to.deep.equal(tenant);
        const renamed = await b.tenants.update(tenant.tenant_id, { name: 'Renamed' });
        expect(await a.tenants.get(tenant.tenant_id)).to.deep.equal(renamed);

        const room = roomRecord(tenant.tenant_id, 'shared');
        await b.rooms.create(room);
        expect(await a.rooms.get(tenant.tenant_id, 'shared')).to.deep.equal(room);
        expect((await a.rooms.list(tenant.tenant_id, 10)).items).to.deep.equal([room]);
        expect(await a.rooms.count(tenant.tenant_id)).to.equal(1);
        expect(await a.rooms.delete(tenant.tenant_id, 'shared')).to.equal(true);
        expect(await b.rooms.get(tenant.tenant_id, 'shared')).to.equal(null);

        const token = tokenRecord(tenant.tenant_id);
        await a.tokens.record(token);
        await b.tokens.revoke(tenant.tenant_id, token.jti, token.expires_at);
        expect(await a.tokens.isRevoked(tenant.tenant_id, token.jti)).to.equal(true);

        const t0 = new Date(Date.now() - 60_000);
        const session = sessionRecord(tenant.tenant_id, 'shared', t0);
        await a.sessions.open(session);
        await b.sessions.changeMode(session.session_id, 'sfu', new Date(t0.getTime() + 10_000));
        await b.sessions.close(session.session_id, new Date(t0.getTime() + 30_000), 'left');
        const [listed] = (await a.sessions.list(tenant.tenant_id, { limit: 10 })).items;
        expect(listed).to.deep.include({ disconnect_reason: 'left', duration_ms: 30_000 });
        expect(listed?.segments.map((segment) => segment.mode)).to.deep.equal(['mesh', 'sfu']);
      });

      it('concurrent creates of one tenant, api key, room, token or session from both give exactly one success and a conflict', async function () {
        const outcome = async (attempts: [Promise<void>, Promise<void>]): Promise<void> => {
          const settled = await Promise.allSettled(attempts);
          const fulfilled = settled.filter((result) => result.status === 'fulfilled');
          const rejected = settled.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
          expect(fulfilled).to.have.lengthOf(1);
          expect(rejected).to.have.lengthOf(1);
          expect(rejected[0]?.reason).to.be.instanceOf(AppError).with.property('code', 'conflict');
        };
        for (let round = 0; round < 20; round++) {
          const tenantId = freshId('tenant');
          await outcome([
            a.tenants.create(tenantRecord({ tenant_id: tenantId })),
            b.tenants.create(tenantRecord({ tenant_id: tenantId, name: 'Other' })),
          ]);
          const apiKey = freshId('key');
          await outcome([a.tenants.create(tenantRecord({ api_key: apiKey })), b.tenants.create(tenantRecord({ api_key: apiKey }))]);
          await outcome([a.rooms.create(roomRecord(tenantId, 'race')), b.rooms.create(roomRecord(tenantId, 'race', { name: 'other' }))]);
          const token = tokenRecord(tenantId);
          await outcome([a.tokens.record(token), b.tokens.record({ ...token, user_id: 'other' })]);
          const session = sessionRecord(tenantId, 'race', new Date());
          await outcome([a.sessions.open(session), b.sessions.open({ ...session, room_id: 'other' })]);
          expect(await a.rooms.count(tenantId)).to.equal(1);
        }
      });

      it('concurrent upserts of one declared tenant from both succeed, one creating; rotations from both leave one set of lookups', async function () {
        for (let round = 0; round < 20; round++) {
          const tenant = tenantRecord();
          const [fromA, fromB] = await Promise.all([a.tenants.upsert(tenant), b.tenants.upsert({ ...tenant, created_at: new Date() })]);
          expect([fromA?.created, fromB?.created].filter(Boolean)).to.have.lengthOf(1);
          expect(await b.tenants.get(tenant.tenant_id)).to.deep.equal(fromA?.created ? tenant : await a.tenants.get(tenant.tenant_id));

          const rotations = ['a', 'b'].map((node) => ({
            ...tenant,
            name: node,
            api_key: freshId('key'),
            api_secret_sha256: freshId('hash'),
          }));
          await Promise.all([a.tenants.upsert(rotations[0] as TenantRecord), b.tenants.upsert(rotations[1] as TenantRecord)]);
          const stored = await a.tenants.get(tenant.tenant_id);
          for (const declared of [tenant, ...rotations]) {
            const expected = declared.name === stored?.name ? tenant.tenant_id : undefined;
            expect((await b.tenants.getByApiKey(declared.api_key))?.tenant_id).to.equal(expected);
            expect((await b.tenants.getBySecretHash(declared.api_secret_sha256))?.tenant_id).to.equal(expected);
          }
        }
      });

      it('concurrent updates of different fields of one room from both keep both changes', async function () {
        const tenantId = freshId('tenant');
        await a.rooms.create(roomRecord(tenantId, 'r'));
        await Promise.all([a.rooms.update(tenantId, 'r', { name: 'from a' }), b.rooms.update(tenantId, 'r', { locked: true })]);
        expect(await a.rooms.get(tenantId, 'r')).to.deep.include({ name: 'from a', locked: true });
      });

      it("a session closed by one node stays closed for the other; closeLost of one node leaves the other's live sessions", async function () {
        const tenantId = freshId('tenant');
        const nodeA = freshId('node');
        const nodeB = freshId('node');
        const t0 = new Date(Date.now() - 60_000);
        const onA = sessionRecord(tenantId, 'r', t0, { node_id: nodeA });
        const onB = sessionRecord(tenantId, 'r', t0, { node_id: nodeB });
        await a.sessions.open(onA);
        await b.sessions.open(onB);
        // Node A restarts: its session was lost, B's is live.
        expect(await a.sessions.closeLost(nodeA, new Date())).to.be.at.least(1);
        await a.sessions.touch([onA.session_id, onB.session_id], new Date());
        const items = (await b.sessions.list(tenantId, { limit: 10 })).items;
        expect(items.find((s) => s.session_id === onA.session_id)).to.deep.include({
          disconnect_reason: 'lost',
          disconnected_at: onA.last_seen_at,
        });
        expect(items.find((s) => s.session_id === onB.session_id)?.disconnected_at).to.equal(null);
      });
    });

    describe('keys', function () {
      it("all carry the store's prefix, and every record key the tenant id; no key holds a plain secret", async function () {
        const keyPrefix = freshPrefix();
        const store = newStore({ keyPrefix });
        await store.init();
        const tenant = {
          ...tenantRecord({ webhook: { url: 'https://hooks.example.com/k', secret: 'whsec-k' } }),
          api_secret: 'plain-secret',
        } as TenantRecord;
        const tenantId = tenant.tenant_id;
        await store.tenants.create(tenant);
        await store.rooms.create({ ...roomRecord(tenantId, 'room/with:colon'), token: 'plain-token' } as RoomRecord);
        await store.tokens.record({ ...tokenRecord(tenantId), token: 'plain-token' } as TokenRecord);
        await store.tokens.revoke(tenantId, freshId('jti'), new Date(Date.now() + 60_000));
        const session = sessionRecord(tenantId, 'room/with:colon', new Date());
        await store.sessions.open(session);

        const keys = await keysUnder(raw, keyPrefix);
        expect(keys.length).to.be.greaterThan(8);
        const space = `${keyPrefix}t:${tenantId}:`;
        const global = keys.filter((key) => !key.startsWith(space));
        // Lookups that arrive without a tenant: they hold ids only.
        expect(global.map((key) => key.slice(keyPrefix.length).split(':')[0])).to.have.members([
          'tenant-key',
          'tenant-secret',
          'session',
          'sessions',
          'node',
        ]);
        expect(keys).to.include.members([
          `${space}tenant`,
          `${space}rooms`,
          `${space}room:room%2Fwith%3Acolon`,
          `${space}session:${session.session_id}`,
          `${space}sessions`,
          `${space}sessions:room:room%2Fwith%3Acolon`,
          `${space}sessions:open`,
        ]);
        for (const key of keys) {
          const type = await raw.type(key);
          const dump = type === 'hash' ? JSON.stringify(await raw.hgetall(key)) : type === 'string' ? ((await raw.get(key)) ?? '') : '';
          expect(dump, key).to.not.match(/plain-secret|plain-token/);
          if (type === 'hash')
            expect(
              Object.keys(await raw.hgetall(key)).filter((field) => /^(api_)?secret$|^token$/.test(field)),
              key,
            ).to.deep.equal([]);
        }
      });

      it('a rotating upsert deletes the old api key and secret lookups and leaves exactly the new ones', async function () {
        const keyPrefix = freshPrefix();
        const store = newStore({ keyPrefix });
        await store.init();
        const tenant = tenantRecord();
        await store.tenants.upsert(tenant);
        const rotated = { ...tenant, api_key: freshId('key'), api_secret_sha256: randomBytes(32).toString('hex') };
        await store.tenants.upsert(rotated);
        expect(await keysUnder(raw, keyPrefix)).to.deep.equal(
          [
            store.keys.tenant(tenant.tenant_id),
            store.keys.tenantByApiKey(rotated.api_key),
            store.keys.tenantBySecretHash(rotated.api_secret_sha256),
          ].sort(),
        );
        expect(await raw.get(store.keys.tenantByApiKey(rotated.api_key))).to.equal(tenant.tenant_id);
      });

      it('gives token records a TTL of exp + token grace', async function () {
        const store = newStore({ tokenGraceMs: 45_000 });
        await store.init();
        const tenantId = freshId('tenant');
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        const jti = freshId('jti');
        const exp = new Date(Date.now() + 120_000);
        await store.tokens.revoke(tenantId, jti, exp);
        expect(await raw.pexpiretime(store.keys.token(tenantId, token.jti))).to.equal(token.expires_at.getTime() + 45_000);
        expect(await raw.pexpiretime(store.keys.token(tenantId, jti))).to.equal(exp.getTime() + 45_000);
        // A revocation never shortens a record's life.
        await store.tokens.revoke(tenantId, token.jti, new Date(Date.now() + 1000));
        expect(await raw.pexpiretime(store.keys.token(tenantId, token.jti))).to.equal(token.expires_at.getTime() + 45_000);
      });

      it('stores with different prefixes on one Redis do not see each other', async function () {
        const one = newStore();
        const two = newStore();
        await Promise.all([one.init(), two.init()]);
        const tenant = tenantRecord();
        await one.tenants.create(tenant);
        expect(await two.tenants.get(tenant.tenant_id)).to.equal(null);
        await two.tenants.create(tenant);
      });
    });

    describe('when Redis goes away', function () {
      it('ping() turns false and operations fail with a clear error within a bounded time, never hanging', async function () {
        const own = await startRedis();
        try {
          const storeOnOwn = new RedisStore(own.url, { keyPrefix: freshPrefix(), connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
          stores.push(storeOnOwn);
          await storeOnOwn.init();
          const tenant = tenantRecord();
          await storeOnOwn.tenants.create(tenant);
          expect(await storeOnOwn.ping()).to.equal(true);
          await own.stop();
          expect(own.running).to.equal(false);

          const ping = await settlesWithin(storeOnOwn.ping(), 3000);
          expect(ping.value).to.equal(false);
          const operations: Promise<unknown>[] = [
            storeOnOwn.tenants.get(tenant.tenant_id),
            storeOnOwn.rooms.create(roomRecord(tenant.tenant_id, 'r')),
            storeOnOwn.sessions.list(tenant.tenant_id, { limit: 5 }),
          ];
          for (const operation of operations) {
            const outcome = await settlesWithin(operation, 5000);
            expect(outcome.error).to.be.an('error').and.not.be.instanceOf(AppError);
            expect(String((outcome.error as Error).message)).to.match(
              new RegExp(`^\\[RedisStore:[a-z.A-Z]+\\] redis://127\\.0\\.0\\.1:${own.port} failed: `),
            );
          }
          const closed = await settlesWithin(storeOnOwn.close(), 3000);
          expect(closed.error).to.equal(undefined);
        } finally {
          await own.stop();
        }
      });
    });

    describe('end to end: two servers on one Redis', function () {
      let first: TestServer | undefined;
      let second: Awaited<ReturnType<typeof createServer>> | undefined;

      after(async function () {
        await first?.close();
        await second?.close();
      });

      it('a tenant and room created over HTTP on one server are read over HTTP on another', async function () {
        // Both servers use the default key prefix, so they start from an empty database.
        await raw.flushdb();
        const env = { STORE: 'redis', REDIS_URL: redis.url };
        first = await startServer(env);
        expect(first.server.store.kind).to.equal('redis');
        const admin = first.server.config.auth.adminApiKey as string;
        const api = async (base: string, method: string, path: string, secret: string, body?: unknown) => {
          const response = await fetch(`${base}${path}`, {
            method,
            headers: { authorization: `Bearer ${secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          return { status: response.status, body: (await response.json()) as Record<string, unknown> };
        };
        const created = await api(first.url, 'POST', '/api/v1/tenants', admin, { name: 'Acme' });
        expect(created.status, JSON.stringify(created.body)).to.equal(201);
        const secret = created.body.api_secret as string;
        const room = await api(first.url, 'POST', '/api/v1/rooms', secret, {
          room_id: 'standup',
          name: 'Daily standup',
          metadata: { team: 'rtc' },
        });
        expect(room.status, JSON.stringify(room.body)).to.equal(201);

        second = await createServer(testConfig({ SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`, ...env }));
        expect(second.store.kind).to.equal('redis');
        const read = await api(second.url, 'GET', '/api/v1/rooms/standup', secret);
        expect(read.status, JSON.stringify(read.body)).to.equal(200);
        expect(read.body).to.deep.include({ room_id: 'standup', name: 'Daily standup' });
        const listed = await api(second.url, 'GET', '/api/v1/rooms', secret);
        expect((listed.body.rooms as { room_id: string }[]).map((r) => r.room_id)).to.deep.equal(['standup']);
        // The keys are the default prefix's, under the new tenant's id.
        const keys = await keysUnder(raw, 'sb:');
        expect(keys).to.include(`sb:t:${created.body.tenant_id as string}:room:standup`);
        await expectAppError(second.store.rooms.create(roomRecord(created.body.tenant_id as string, 'standup')), 'conflict');
        // A conflict found in Redis answers 409 like any other store's.
        const again = await api(second.url, 'POST', '/api/v1/rooms', secret, { room_id: 'standup' });
        expect(again.status, JSON.stringify(again.body)).to.equal(409);
      });
    });
  });
}

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { AppError } from '../../server/errors.js';
import { databaseNameOf, MongoStore } from '../../server/store/MongoStore.js';
import type { RoomRecord, TenantRecord, TokenRecord } from '../../server/store/Store.js';
import { settlesWithin, withBlackHole } from '../helpers/deadlines.js';
import { expectAppError, freshId, roomRecord, sessionRecord, storeContract, tenantRecord, tokenRecord } from './contract.js';

/** Nothing listens on port 1: connecting is refused at once, like a database that is down. */
const UNREACHABLE = 'mongodb://127.0.0.1:1/switchboard';
const SKIP_REASON = 'MONGODB_URI is not set: no MongoDB server can be installed on this machine';

/** The same server and options with another database; keeps authSource when credentials rely on the path. */
function withDatabase(uri: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/)([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(uri);
  if (!match) throw new Error('MONGODB_URI is not a mongodb:// URI');
  const [, scheme, authority, originalDb, query] = match;
  const params = new URLSearchParams(query ?? '');
  if (authority?.includes('@') && !params.has('authSource')) params.set('authSource', originalDb || 'admin');
  const search = params.toString();
  return `${scheme}${authority}/${database}${search ? `?${search}` : ''}`;
}

type IndexSpec = [Record<string, unknown>, Record<string, unknown>];

function indexesOf(store: MongoStore, model: keyof MongoStore['models']): IndexSpec[] {
  return store.models[model].schema.indexes() as IndexSpec[];
}

function findIndex(specs: IndexSpec[], keys: string[]): IndexSpec | undefined {
  return specs.find(([fields]) => JSON.stringify(Object.keys(fields)) === JSON.stringify(keys));
}

describe('MongoStore without a server', function () {
  const stores: MongoStore[] = [];
  const newStore = (uri = UNREACHABLE, serverSelectionTimeoutMS = 300): MongoStore => {
    const store = new MongoStore(uri, { serverSelectionTimeoutMS });
    stores.push(store);
    return store;
  };

  after(async function () {
    await Promise.all(stores.map((store) => store.close()));
  });

  it('declares the unique indexes and the token TTL index', function () {
    const store = newStore();
    const tenants = indexesOf(store, 'tenants');
    expect(findIndex(tenants, ['tenant_id'])?.[1]).to.include({ unique: true });
    expect(findIndex(tenants, ['api_key'])?.[1]).to.include({ unique: true });
    expect(findIndex(tenants, ['api_secret_sha256'])?.[1]).to.include({ unique: true });
    expect(findIndex(indexesOf(store, 'rooms'), ['tenant_id', 'room_id'])?.[1]).to.include({ unique: true });
    const tokens = indexesOf(store, 'tokens');
    // A jti is unique per tenant only: another tenant's record of it is a different record.
    expect(findIndex(tokens, ['tenant_id', 'jti'])?.[1]).to.include({ unique: true });
    expect(findIndex(tokens, ['jti'])).to.equal(undefined);
    // TTL on purge_at (exp + clock tolerance), not on expires_at: a revocation lasts while the token verifies.
    expect(findIndex(tokens, ['purge_at'])?.[1]).to.include({ expireAfterSeconds: 0 });
    expect(findIndex(tokens, ['expires_at'])).to.equal(undefined);
    const sessions = indexesOf(store, 'sessions');
    expect(findIndex(sessions, ['session_id'])?.[1]).to.include({ unique: true });
    // Compound keys serve (tenant, room, time) and (tenant, time) queries; session_id breaks ties for paging.
    expect(findIndex(sessions, ['tenant_id', 'room_id', 'connected_at', 'session_id'])).to.not.equal(undefined);
    expect(findIndex(sessions, ['tenant_id', 'connected_at', 'session_id'])).to.not.equal(undefined);
    // Overlap queries (usage, sessions?from=) bound both ends from one index.
    expect(findIndex(sessions, ['tenant_id', 'ended_at', 'connected_at'])).to.not.equal(undefined);
  });

  it('uses the database the URI names, else "switchboard" (never the driver\'s "test")', function () {
    expect(databaseNameOf('mongodb+srv://user:pw@cluster0.example.net/?retryWrites=true&w=majority')).to.equal('switchboard');
    expect(databaseNameOf('mongodb://127.0.0.1:27017')).to.equal('switchboard');
    expect(databaseNameOf('mongodb://127.0.0.1:27017/')).to.equal('switchboard');
    expect(databaseNameOf('mongodb://a:1,b:2/app?replicaSet=rs0')).to.equal('app');
    expect(databaseNameOf('mongodb://u:p@h/my%2Ddb?authSource=admin')).to.equal('my-db');
  });

  it("uses its own connection, never mongoose's global one", async function () {
    const store = newStore();
    const mongoose = (await import('mongoose')).default;
    expect(store.connection).to.not.equal(mongoose.connection);
    for (const model of Object.values(store.models)) expect(model.db).to.equal(store.connection);
  });

  it('has strictQuery on every schema and drops unknown fields from filters', function () {
    const store = newStore();
    for (const model of Object.values(store.models)) expect(model.schema.get('strictQuery')).to.equal(true);
    const cast = store.models.rooms.find({ tenant_id: 't', not_a_field: { $exists: true } }).cast() as Record<string, unknown>;
    expect(cast).to.deep.equal({ tenant_id: 't' });
  });

  it('has sanitizeFilter on: an operator object in a filter is matched as a value, so it cannot cast', async function () {
    const store = newStore();
    expect(store.connection.get('sanitizeFilter')).to.equal(true);
    // Bypassing the store's own string checks on purpose: sanitizeFilter wraps the object in
    // $eq, the string path cannot cast it, and the query fails before reaching any server.
    const injected = store.models.rooms.findOne({ tenant_id: 't', room_id: { $ne: null } }).exec();
    const outcome = await settlesWithin(injected, 1000);
    expect(outcome.error).to.be.an('error').with.property('name', 'CastError');
    expect(String((outcome.error as Error).message)).to.include('$ne');
  });

  it('refuses operator objects, bad limits and bad cursors before any query (payload_invalid)', async function () {
    const store = newStore();
    const injected = { $gt: '' } as unknown as string;
    await expectAppError(store.tenants.getByApiKey(injected), 'payload_invalid');
    await expectAppError(store.rooms.get('t', injected), 'payload_invalid');
    await expectAppError(store.rooms.delete(injected, 'x'), 'payload_invalid');
    await expectAppError(store.tokens.isRevoked('t', injected), 'payload_invalid');
    await expectAppError(store.tokens.isRevoked(injected, 'j'), 'payload_invalid');
    await expectAppError(store.sessions.touch([injected], new Date()), 'payload_invalid');
    await expectAppError(store.sessions.closeLost(injected, new Date()), 'payload_invalid');
    await expectAppError(
      store.sessions.list('t', { limit: 10, cursor: Buffer.from('[1e20,"x"]').toString('base64url') }),
      'payload_invalid',
    );
    await expectAppError(store.sessions.list('t', { limit: 10, room_id: injected }), 'payload_invalid');
    await expectAppError(store.rooms.list('t', 0), 'payload_invalid');
    await expectAppError(store.rooms.list('t', 10, 'garbage'), 'payload_invalid');
    await expectAppError(store.sessions.changeMode('s', 'p2p' as never, new Date()), 'payload_invalid');
    await expectAppError(store.sessions.usage('t', new Date('nope'), new Date()), 'payload_invalid');
  });

  it('tenants.upsert refuses operator objects in ids before any query (payload_invalid)', async function () {
    const store = newStore();
    const injected = { $gt: '' } as unknown as string;
    await expectAppError(store.tenants.upsert(tenantRecord({ tenant_id: injected })), 'payload_invalid');
    await expectAppError(store.tenants.upsert(tenantRecord({ api_key: injected })), 'payload_invalid');
    await expectAppError(store.tenants.upsert(tenantRecord({ api_secret_sha256: injected })), 'payload_invalid');
  });

  describe('tenants.upsert against a stubbed model (the contract suite runs it on a real server)', function () {
    interface Call {
      filter: unknown;
      update: unknown;
      options: Record<string, unknown>;
    }
    /** Replaces the tenants model's findOneAndUpdate: each call takes the next reply (a document, null, or an error to throw). */
    function stubFindOneAndUpdate(store: MongoStore, replies: (TenantRecord | null | Error)[]): Call[] {
      const calls: Call[] = [];
      const model = store.models.tenants as unknown as { findOneAndUpdate: (...args: unknown[]) => { lean: () => Promise<unknown> } };
      model.findOneAndUpdate = (filter, update, options) => {
        calls.push({ filter, update, options: options as Record<string, unknown> });
        const reply = replies.shift();
        return {
          lean: async () => {
            if (reply instanceof Error) throw reply;
            return reply === undefined ? null : structuredClone(reply);
          },
        };
      };
      return calls;
    }
    const duplicateKey = (message: string, fields: Record<string, unknown> = {}): Error =>
      Object.assign(new Error(`E11000 duplicate key error collection: switchboard.tenants ${message}`), { code: 11000, ...fields });

    it('is one findOneAndUpdate that sets the declared fields and sets webhook and created_at only on insert', async function () {
      const store = newStore();
      const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/m', secret: 'whsec-m' } });
      const calls = stubFindOneAndUpdate(store, [null]);
      expect(await store.tenants.upsert(tenant)).to.deep.equal({ created: true, changed: [] });
      expect(calls).to.have.lengthOf(1);
      expect(calls[0]?.filter).to.deep.equal({ tenant_id: tenant.tenant_id });
      expect(calls[0]?.update).to.deep.equal({
        $set: { name: tenant.name, api_key: tenant.api_key, api_secret_sha256: tenant.api_secret_sha256, limits: tenant.limits },
        $setOnInsert: { webhook: tenant.webhook, created_at: tenant.created_at },
      });
      expect(calls[0]?.options).to.include({ upsert: true, returnDocument: 'before' });
    });

    it('names the declared fields that differ from the document as it was before the write', async function () {
      const store = newStore();
      const stored = tenantRecord();
      const declared = { ...stored, name: 'Renamed', api_key: freshId('key'), limits: { ...stored.limits, max_rooms: 1 } };
      stubFindOneAndUpdate(store, [stored]);
      expect(await store.tenants.upsert(declared)).to.deep.equal({ created: false, changed: ['name', 'api_key', 'limits'] });
    });

    it('runs again when a concurrent upsert inserted the tenant_id first (by keyPattern or by the index in the message)', async function () {
      const tenant = tenantRecord();
      for (const raced of [
        duplicateKey('index: tenant_id_1 dup key: { tenant_id: "x" }', { keyPattern: { tenant_id: 1 } }),
        duplicateKey('index: tenant_id_1 dup key: { tenant_id: "x" }'),
      ]) {
        const store = newStore();
        const calls = stubFindOneAndUpdate(store, [raced, tenant]);
        expect(await store.tenants.upsert(tenant)).to.deep.equal({ created: false, changed: [] });
        expect(calls).to.have.lengthOf(2);
      }
    });

    it("is a conflict, without a retry, when the api key or secret hash is another tenant's", async function () {
      for (const taken of [
        duplicateKey('index: api_key_1 dup key: { api_key: "k" }', { keyPattern: { api_key: 1 } }),
        duplicateKey('index: api_secret_sha256_1 dup key: { api_secret_sha256: "h" }'),
      ]) {
        const store = newStore();
        const calls = stubFindOneAndUpdate(store, [taken, null]);
        await expectAppError(store.tenants.upsert(tenantRecord()), 'conflict');
        expect(calls).to.have.lengthOf(1);
      }
    });
  });

  it('fails fast, not hanging, when used before init()', async function () {
    const store = newStore();
    const outcome = await settlesWithin(store.rooms.get('t', 'r'), 1000);
    expect(outcome.error).to.be.an('error');
    expect(outcome.error).to.not.be.instanceOf(AppError);
  });

  it('ping() is false before init(), on an unreachable server, and never throws', async function () {
    const store = newStore();
    expect(await store.ping()).to.equal(false);
    const init = await settlesWithin(store.init(), 3000);
    expect(init.error).to.be.an('error');
    const ping = await settlesWithin(store.ping(), 3000);
    expect(ping.value).to.equal(false);
  });

  it('init() rejects (does not wait out server selection) with a clear error that names the host but not the credentials', async function () {
    const store = newStore('mongodb://switchboard:hunter2@127.0.0.1:1/switchboard?authSource=admin');
    const outcome = await settlesWithin(store.init(), 10_000);
    const message = String((outcome.error as Error).message);
    expect(message).to.match(/^\[MongoStore:init\] cannot connect to mongodb:\/\/127\.0\.0\.1:1: /);
    expect(message).to.not.include('hunter2');
    // A later init() tries again rather than replaying a stale failure forever.
    const again = await settlesWithin(store.init(), 3000);
    expect(again.error).to.be.an('error');
  });

  it('init() and ping() give up on a server that accepts connections but never answers', async function () {
    await withBlackHole(async (port) => {
      const store = newStore(`mongodb://127.0.0.1:${port}/switchboard`, 500);
      const init = await settlesWithin(store.init(), 3000);
      expect(String((init.error as Error).message)).to.include('[MongoStore:init]');
      expect((await settlesWithin(store.ping(), 3000)).value).to.equal(false);
      await store.close();
    });
  });

  it('close() is idempotent whether or not init() ever ran, and init() after close() rejects', async function () {
    const store = newStore();
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(await store.ping()).to.equal(false);
    const outcome = await settlesWithin(store.init(), 1000);
    expect(String((outcome.error as Error).message)).to.include('closed');
  });

  it('refuses a URI that is not mongodb:// or mongodb+srv://', function () {
    expect(() => new MongoStore('http://127.0.0.1:27017')).to.throw(/mongodb:\/\//);
  });
});

const mongodbUri = process.env.MONGODB_URI;

if (mongodbUri) {
  describe('MongoStore on a real server (MONGODB_URI)', function () {
    this.timeout(30_000);
    const database = `switchboard_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
    const uri = withDatabase(mongodbUri, database);

    after(async function () {
      const store = new MongoStore(uri);
      try {
        await store.init();
        await store.connection.dropDatabase();
      } finally {
        await store.close();
      }
    });

    storeContract('MongoStore', async () => new MongoStore(uri, { serverSelectionTimeoutMS: 5000 }));

    it('keeps sanitizeFilter on after connecting: an operator object reaching a model matches as a value', async function () {
      const store = new MongoStore(uri);
      try {
        await store.init();
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        await store.rooms.create(roomRecord(tenant.tenant_id, 'x'));
        const injected = store.models.rooms.findOne({ tenant_id: tenant.tenant_id, room_id: { $ne: null } }).lean();
        const outcome = await settlesWithin(injected, 5000);
        expect(outcome.value, 'the operator must not match the room').to.equal(undefined);
        expect(outcome.error).to.be.an('error').with.property('name', 'CastError');
      } finally {
        await store.close();
      }
    });

    it('stores no secret-like field, version key or plain secret in the raw documents', async function () {
      const store = new MongoStore(uri);
      try {
        await store.init();
        const tenant = {
          ...tenantRecord({ webhook: { url: 'https://hooks.example.com/r', secret: 'whsec-raw' } }),
          api_secret: 'plain-secret',
        } as TenantRecord;
        await store.tenants.create(tenant);
        await store.rooms.create({ ...roomRecord(tenant.tenant_id, 'r'), token: 'plain-token' } as RoomRecord);
        await store.tokens.record({ ...tokenRecord(tenant.tenant_id), token: 'plain-token' } as TokenRecord);
        await store.tokens.revoke(tenant.tenant_id, freshId('jti'), new Date(Date.now() + 60_000));
        await store.sessions.open(sessionRecord(tenant.tenant_id, 'r', new Date()));
        for (const model of Object.values(store.models)) {
          const raw = await model.collection.find({ tenant_id: tenant.tenant_id }).toArray();
          expect(raw.length, model.modelName).to.be.greaterThan(0);
          for (const doc of raw) {
            const keys = Object.keys(doc);
            expect(keys).to.not.include('__v');
            const secretLike = keys.filter(
              (key) => !key.endsWith('_sha256') && /^(secret|token|password)|(secret|token|password)$/i.test(key),
            );
            expect(secretLike).to.deep.equal([]);
            expect(JSON.stringify(doc)).to.not.match(/plain-secret|plain-token/);
          }
        }
      } finally {
        await store.close();
      }
    });

    it('drops the indexes of earlier versions and fills purge_at, ended_at and last_seen_at of their records', async function () {
      // A database of its own: the contract's records (one jti under two tenants) would break the old unique index.
      const legacyUri = withDatabase(mongodbUri, `${database}_legacy`);
      const store = new MongoStore(legacyUri);
      try {
        await store.init();
        const tenantId = freshId('tenant');
        const exp = new Date(Date.now() + 60_000);
        const connected = new Date(Date.now() - 3_600_000);
        const tokens = store.models.tokens.collection;
        const sessions = store.models.sessions.collection;
        await tokens.createIndex({ jti: 1 }, { unique: true, name: 'jti_1' });
        await tokens.createIndex({ expires_at: 1 }, { expireAfterSeconds: 0, name: 'expires_at_1' });
        await tokens.insertOne({
          jti: freshId('jti'),
          tenant_id: tenantId,
          room_id: '',
          user_id: '',
          token_sha256: '',
          expires_at: exp,
          revoked_at: new Date(),
          created_at: new Date(),
        });
        await sessions.insertOne({
          session_id: freshId('s'),
          tenant_id: tenantId,
          room_id: 'r',
          connected_at: connected,
          disconnected_at: null,
          segments: [{ mode: 'mesh', from: connected, to: null }],
          current_mode: 'mesh',
        });
        await store.close();
        const again = new MongoStore(legacyUri);
        try {
          await again.init();
          const names = (await again.models.tokens.collection.indexes()).map((index) => index.name);
          expect(names).to.not.include.members(['jti_1', 'expires_at_1']);
          const token = await again.models.tokens.collection.findOne({ tenant_id: tenantId });
          expect(token?.purge_at).to.deep.equal(new Date(exp.getTime() + 30_000));
          const session = await again.models.sessions.collection.findOne({ tenant_id: tenantId });
          expect(session).to.deep.include({ last_seen_at: connected });
          expect(session?.ended_at).to.be.instanceOf(Date);
          // Last seen at connection, an hour ago: it counts as ended there, not up to now.
          expect(await again.sessions.usage(tenantId, new Date(connected.getTime() - 60_000), new Date())).to.deep.equal([]);
          await again.connection.dropDatabase();
        } finally {
          await again.close();
        }
      } finally {
        await store.close();
      }
    });

    it('migrate(): a changed TTL stops init() with the hint, is planned by dryRun, changed by collMod, and init() then boots', async function () {
      const migrationUri = withDatabase(mongodbUri, `${database}_migrate`);
      const old = new MongoStore(migrationUri);
      try {
        await old.init();
        const tokens = old.models.tokens.collection;
        // An earlier version's TTL on purge_at, an index added by hand, and a unique index that is no longer unique.
        await tokens.dropIndex('purge_at_1');
        await tokens.createIndex({ purge_at: 1 }, { expireAfterSeconds: 3600 });
        await tokens.createIndex({ created_at: 1 });
        await old.models.rooms.collection.dropIndex('tenant_id_1_room_id_1');
        await old.models.rooms.collection.createIndex({ tenant_id: 1, room_id: 1 });
      } finally {
        await old.close();
      }
      const blocked = new MongoStore(migrationUri);
      try {
        const error = await blocked.init().then(
          () => null,
          (e: unknown) => e as Error,
        );
        expect(error?.message).to.match(/cannot declare indexes: .*switchboard migrate.*MONGODB_MIGRATE=true/);
      } finally {
        await blocked.close();
      }
      const store = new MongoStore(migrationUri);
      try {
        const planned = await store.migrate({ dryRun: true });
        expect(planned.map((p) => [p.collection, p.change.action, p.change.name]).sort()).to.deep.equal([
          ['rooms', 'rebuild', 'tenant_id_1_room_id_1'],
          ['tokens', 'drop', 'created_at_1'],
          ['tokens', 'ttl', 'purge_at_1'],
        ]);
        expect((await store.models.tokens.collection.indexes()).find((i) => i.name === 'purge_at_1')?.expireAfterSeconds).to.equal(3600);
        const applied = await store.migrate();
        expect(applied).to.have.length(3);
        const tokenIndexes = await store.models.tokens.collection.indexes();
        expect(tokenIndexes.find((i) => i.name === 'purge_at_1')?.expireAfterSeconds).to.equal(0);
        expect(tokenIndexes.map((i) => i.name)).to.not.include('created_at_1');
        expect((await store.models.rooms.collection.indexes()).find((i) => i.name === 'tenant_id_1_room_id_1')?.unique).to.equal(true);
        expect(await store.migrate({ dryRun: true })).to.deep.equal([]);
      } finally {
        await store.close();
      }
      const booted = new MongoStore(migrationUri);
      try {
        await booted.init();
        expect(await booted.ping()).to.equal(true);
        await booted.connection.dropDatabase();
      } finally {
        await booted.close();
      }
    });

    it('stores purge_at = exp + token grace on every token record (the TTL field)', async function () {
      const store = new MongoStore(uri, { tokenGraceMs: 45_000 });
      try {
        await store.init();
        const tenantId = freshId('tenant');
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        const cliJti = freshId('jti');
        const exp = new Date(Date.now() + 120_000);
        await store.tokens.revoke(tenantId, cliJti, exp);
        const raw = store.models.tokens.collection;
        expect((await raw.findOne({ tenant_id: tenantId, jti: token.jti }))?.purge_at).to.deep.equal(
          new Date(token.expires_at.getTime() + 45_000),
        );
        expect((await raw.findOne({ tenant_id: tenantId, jti: cliJti }))?.purge_at).to.deep.equal(new Date(exp.getTime() + 45_000));
      } finally {
        await store.close();
      }
    });

    it('creates the declared indexes in the database', async function () {
      const store = new MongoStore(uri);
      try {
        await store.init();
        const tokens = await store.models.tokens.collection.indexes();
        expect(tokens.find((index) => index.key.purge_at === 1)).to.include({ expireAfterSeconds: 0 });
        expect(tokens.find((index) => index.key.tenant_id === 1 && index.key.jti === 1)).to.include({ unique: true });
        // The indexes of earlier versions (global jti, TTL at exp) are gone.
        expect(tokens.map((index) => JSON.stringify(index.key))).to.not.include.members(['{"jti":1}', '{"expires_at":1}']);
        const sessions = await store.models.sessions.collection.indexes();
        expect(sessions.map((index) => JSON.stringify(index.key))).to.include('{"tenant_id":1,"ended_at":1,"connected_at":1}');
        const rooms = await store.models.rooms.collection.indexes();
        expect(rooms.find((index) => index.key.tenant_id === 1 && index.key.room_id === 1)).to.include({ unique: true });
        const tenants = await store.models.tenants.collection.indexes();
        expect(tenants.filter((index) => index.unique).map((index) => Object.keys(index.key)[0])).to.include.members([
          'tenant_id',
          'api_key',
        ]);
      } finally {
        await store.close();
      }
    });
  });
} else {
  describe('MongoStore on a real server (MONGODB_URI)', function () {
    it('runs the store contract against MongoDB', function () {
      console.log(`      skipped: ${SKIP_REASON}`);
      this.skip();
    });
  });
}

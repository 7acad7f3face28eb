/**
 * The one contract every Store implementation must pass (MemoryStore, MongoStore).
 * `makeStore` returns a new store that is not yet initialized, with the default options
 * (token grace, session staleness); the suite calls init().
 * Every test uses fresh ids (random suffixes), so the suite can run against a shared
 * database that already holds other data.
 */
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import type { RoomMode } from '../../protocol/events.js';
import { AppError } from '../../server/errors.js';
import {
  DEFAULT_SESSION_STALE_MS,
  DEFAULT_TOKEN_GRACE_MS,
  type RoomRecord,
  type SessionRecord,
  type Store,
  type TenantRecord,
  type TokenRecord,
  type UsageRow,
} from '../../server/store/Store.js';

const MINUTE = 60_000;

/** A fresh id; the random part keeps runs against a shared database apart. */
export const freshId = (prefix: string): string => `${prefix}-${randomUUID()}`;

const minutesAfter = (base: Date, minutes: number): Date => new Date(base.getTime() + minutes * MINUTE);

/** Awaits `promise` and asserts it rejected with an AppError of `code`. */
export async function expectAppError(promise: Promise<unknown>, code: AppError['code']): Promise<AppError> {
  let error: unknown;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  expect(error, `expected AppError ${code}`).to.be.instanceOf(AppError);
  expect((error as AppError).code).to.equal(code);
  return error as AppError;
}

export function tenantRecord(overrides: Partial<TenantRecord> = {}): TenantRecord {
  return {
    tenant_id: freshId('tenant'),
    name: 'Acme',
    api_key: freshId('key'),
    api_secret_sha256: randomBytes(32).toString('hex'),
    limits: { max_rooms: 10, max_participants: 50, mesh_threshold: 4, max_token_lifetime_s: 86_400, auto_create_rooms: true },
    webhook: null,
    created_at: new Date('2024-01-02T03:04:05.678Z'),
    ...overrides,
  };
}

export function roomRecord(tenantId: string, roomId: string, overrides: Partial<RoomRecord> = {}): RoomRecord {
  const created = new Date(Date.now() - 10 * MINUTE);
  return {
    tenant_id: tenantId,
    room_id: roomId,
    name: `Room ${roomId}`,
    description: '',
    max_participants: null,
    mesh_threshold: null,
    max_screen_shares: null,
    mode: 'auto',
    locked: false,
    metadata: {},
    expires_at: null,
    created_at: created,
    updated_at: created,
    ...overrides,
  };
}

export function tokenRecord(tenantId: string, overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    jti: freshId('jti'),
    tenant_id: tenantId,
    room_id: 'room-1',
    user_id: 'user-1',
    token_sha256: 'b'.repeat(64),
    expires_at: new Date(Date.now() + 60 * MINUTE),
    revoked_at: null,
    created_at: new Date(),
    ...overrides,
  };
}

export function sessionRecord(tenantId: string, roomId: string, connectedAt: Date, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    session_id: freshId('session'),
    tenant_id: tenantId,
    room_id: roomId,
    user_id: 'user-1',
    jti: freshId('jti'),
    peer_id: freshId('peer'),
    address: '127.0.0.1',
    node_id: 'node-test',
    connected_at: connectedAt,
    // Seen just now: open sessions are live unless a test says otherwise.
    last_seen_at: new Date(),
    disconnected_at: null,
    duration_ms: null,
    disconnect_reason: null,
    segments: [{ mode: 'mesh', from: connectedAt, to: null }],
    ...overrides,
  };
}

/** Key paths (a.b.c) of every field in a record, nested objects and arrays included. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || value instanceof Date) return [];
  const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item] as const) : Object.entries(value);
  return entries.flatMap(([key, child]) => [`${prefix}${key}`, ...keyPaths(child, `${prefix}${key}.`)]);
}

/**
 * Field names that start or end with secret/token/password/credential (api_secret, token,
 * access_token, password_plain; not max_token_lifetime_s). Only *_sha256 hashes may, plus
 * the webhook HMAC key, which must be kept to sign (see Store.ts).
 */
function secretLikeFields(record: object): string[] {
  return keyPaths(record).filter((path) => {
    const key = path.split('.').at(-1) ?? '';
    if (!/^(secret|token|password|credential)|(secret|token|password|credential)$/i.test(key)) return false;
    return !key.endsWith('_sha256') && path !== 'webhook.secret';
  });
}

/** An operator object where a string id belongs: the call must refuse it or match nothing. */
const INJECTED = { $ne: null } as unknown as string;

/** Resolves with the call's value, or with `refused` when it rejected with payload_invalid. */
async function refusedOr<T>(promise: Promise<T>): Promise<T | 'refused'> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof AppError && error.code === 'payload_invalid') return 'refused';
    throw error;
  }
}

function usageOf(rows: UsageRow[], roomId: string, mode: RoomMode): number | undefined {
  return rows.find((row) => row.room_id === roomId && row.mode === mode)?.participant_minutes;
}

export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, function () {
    let store: Store;

    before(async function () {
      store = await makeStore();
      await store.init();
    });

    after(async function () {
      await store?.close();
    });

    /** Creates a fresh tenant and returns its id. */
    async function newTenant(overrides: Partial<TenantRecord> = {}): Promise<string> {
      const tenant = tenantRecord(overrides);
      await store.tenants.create(tenant);
      return tenant.tenant_id;
    }

    /** Reads every page of a room listing. */
    async function allRooms(tenantId: string, limit: number): Promise<{ pages: RoomRecord[][]; lastNext: string | null }> {
      const pages: RoomRecord[][] = [];
      let cursor: string | null = null;
      do {
        const page = await store.rooms.list(tenantId, limit, cursor);
        pages.push(page.items);
        cursor = page.next;
        expect(pages.length, 'pagination must terminate').to.be.below(100);
      } while (cursor !== null);
      return { pages, lastNext: cursor };
    }

    describe('lifecycle', function () {
      it('ping() is true once initialized, and init() may be called again', async function () {
        expect(await store.ping()).to.equal(true);
        await store.init();
        expect(await store.ping()).to.equal(true);
      });

      it('close() is idempotent (sequential and concurrent) and ping() is false afterwards', async function () {
        const other = await makeStore();
        await other.init();
        expect(await other.ping()).to.equal(true);
        await Promise.all([other.close(), other.close()]);
        await other.close();
        expect(await other.ping()).to.equal(false);
      });
    });

    describe('tenants', function () {
      it('create then get returns the same record', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/x', secret: 'whsec-1' } });
        await store.tenants.create(tenant);
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
      });

      it('get of an unknown tenant is null', async function () {
        expect(await store.tenants.get(freshId('nobody'))).to.equal(null);
      });

      it('getByApiKey finds the tenant, and null for an unknown key', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        expect(await store.tenants.getByApiKey(tenant.api_key)).to.deep.equal(tenant);
        expect(await store.tenants.getByApiKey(freshId('key'))).to.equal(null);
      });

      it('getBySecretHash finds the tenant, and null for an unknown hash', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        expect(await store.tenants.getBySecretHash(tenant.api_secret_sha256)).to.deep.equal(tenant);
        expect(await store.tenants.getBySecretHash(randomBytes(32).toString('hex'))).to.equal(null);
      });

      it('a duplicate tenant_id is a conflict and leaves the first record intact', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        await expectAppError(store.tenants.create(tenantRecord({ tenant_id: tenant.tenant_id, name: 'Other' })), 'conflict');
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
      });

      it('a duplicate api_secret_sha256 is a conflict and creates nothing', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        const intruder = tenantRecord({ api_secret_sha256: tenant.api_secret_sha256 });
        await expectAppError(store.tenants.create(intruder), 'conflict');
        expect(await store.tenants.get(intruder.tenant_id)).to.equal(null);
        expect((await store.tenants.getBySecretHash(tenant.api_secret_sha256))?.tenant_id).to.equal(tenant.tenant_id);
      });

      it('a duplicate api_key is a conflict and creates nothing', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        const intruder = tenantRecord({ api_key: tenant.api_key });
        await expectAppError(store.tenants.create(intruder), 'conflict');
        expect(await store.tenants.get(intruder.tenant_id)).to.equal(null);
        expect((await store.tenants.getByApiKey(tenant.api_key))?.tenant_id).to.equal(tenant.tenant_id);
      });

      it('update changes name, limits and webhook and returns the new record', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        const limits = {
          max_rooms: 1,
          max_participants: 2,
          mesh_threshold: 3,
          max_token_lifetime_s: 60,
          auto_create_rooms: false,
          max_screen_shares: 4,
        };
        const webhook = { url: 'https://hooks.example.com/y', secret: 'whsec-2' };
        const updated = await store.tenants.update(tenant.tenant_id, { name: 'Renamed', limits, webhook });
        expect(updated).to.deep.equal({ ...tenant, name: 'Renamed', limits, webhook });
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(updated);
        const cleared = await store.tenants.update(tenant.tenant_id, { webhook: null });
        expect(cleared?.webhook).to.equal(null);
        expect(cleared?.name).to.equal('Renamed');
      });

      it('update leaves undefined fields and fields outside the patch type unchanged', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        const sneaky = { name: undefined, tenant_id: 'hijack', api_key: 'hijack', api_secret_sha256: 'f'.repeat(64) } as never;
        expect(await store.tenants.update(tenant.tenant_id, sneaky)).to.deep.equal(tenant);
        expect(await store.tenants.getByApiKey('hijack')).to.equal(null);
      });

      it('update of an unknown tenant is null', async function () {
        expect(await store.tenants.update(freshId('nobody'), { name: 'x' })).to.equal(null);
      });
    });

    describe('tenants.upsert (declared tenants)', function () {
      const newLimits = { max_rooms: 3, max_participants: 7, mesh_threshold: 2, max_token_lifetime_s: 600, auto_create_rooms: false };
      const newSecretHash = (): string => randomBytes(32).toString('hex');

      /** The tenant each lookup finds, by id (null: none). */
      async function lookups(apiKey: string, secretHash: string): Promise<{ byKey: string | null; bySecret: string | null }> {
        const byKey = await store.tenants.getByApiKey(apiKey);
        const bySecret = await store.tenants.getBySecretHash(secretHash);
        return { byKey: byKey?.tenant_id ?? null, bySecret: bySecret?.tenant_id ?? null };
      }

      it('creates an absent tenant as given, found by its api key and secret hash', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/u', secret: 'whsec-u' } });
        expect(await store.tenants.upsert(tenant)).to.deep.equal({ created: true, changed: [] });
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
        expect(await lookups(tenant.api_key, tenant.api_secret_sha256)).to.deep.equal({
          byKey: tenant.tenant_id,
          bySecret: tenant.tenant_id,
        });
      });

      it('sets the declared name and limits, names what changed, and keeps the webhook and created_at', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/v', secret: 'whsec-v' } });
        await store.tenants.create(tenant);
        const declared = { ...tenant, name: 'Renamed', limits: newLimits, webhook: null, created_at: new Date() };
        expect(await store.tenants.upsert(declared)).to.deep.equal({ created: false, changed: ['name', 'limits'] });
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal({ ...tenant, name: 'Renamed', limits: newLimits });
      });

      it('reports no change when the stored tenant already matches the declaration', async function () {
        const tenant = tenantRecord();
        await store.tenants.upsert(tenant);
        expect(await store.tenants.upsert({ ...tenant, limits: { ...tenant.limits } })).to.deep.equal({ created: false, changed: [] });
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
      });

      it('rotates the api key and secret hash: the old ones find nothing, the new ones find the tenant', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/w', secret: 'whsec-w' } });
        await store.tenants.create(tenant);
        const rotated = { ...tenant, api_key: freshId('key'), api_secret_sha256: newSecretHash() };
        expect(await store.tenants.upsert(rotated)).to.deep.equal({ created: false, changed: ['api_key', 'api_secret_sha256'] });
        expect(await lookups(tenant.api_key, tenant.api_secret_sha256)).to.deep.equal({ byKey: null, bySecret: null });
        expect(await lookups(rotated.api_key, rotated.api_secret_sha256)).to.deep.equal({
          byKey: tenant.tenant_id,
          bySecret: tenant.tenant_id,
        });
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(rotated);
        // The old credentials are free again: another tenant may take them.
        const successor = tenantRecord({ api_key: tenant.api_key, api_secret_sha256: tenant.api_secret_sha256 });
        await store.tenants.create(successor);
        expect(await lookups(tenant.api_key, tenant.api_secret_sha256)).to.deep.equal({
          byKey: successor.tenant_id,
          bySecret: successor.tenant_id,
        });
      });

      it("rotating onto another tenant's api key or secret hash is a conflict and changes nothing", async function () {
        const owner = tenantRecord();
        const tenant = tenantRecord();
        await store.tenants.create(owner);
        await store.tenants.create(tenant);
        const ontoKey = { ...tenant, name: 'Taken key', limits: newLimits, api_key: owner.api_key, api_secret_sha256: newSecretHash() };
        await expectAppError(store.tenants.upsert(ontoKey), 'conflict');
        const ontoSecret = { ...tenant, name: 'Taken secret', api_key: freshId('key'), api_secret_sha256: owner.api_secret_sha256 };
        await expectAppError(store.tenants.upsert(ontoSecret), 'conflict');
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);
        expect(await store.tenants.get(owner.tenant_id)).to.deep.equal(owner);
        expect(await lookups(owner.api_key, owner.api_secret_sha256)).to.deep.equal({ byKey: owner.tenant_id, bySecret: owner.tenant_id });
        expect(await lookups(tenant.api_key, tenant.api_secret_sha256)).to.deep.equal({
          byKey: tenant.tenant_id,
          bySecret: tenant.tenant_id,
        });
        expect(await lookups(ontoKey.api_key, ontoSecret.api_secret_sha256)).to.deep.equal({
          byKey: owner.tenant_id,
          bySecret: owner.tenant_id,
        });
        expect(await store.tenants.getBySecretHash(ontoKey.api_secret_sha256)).to.equal(null);
        expect(await store.tenants.getByApiKey(ontoSecret.api_key)).to.equal(null);
      });

      it("creating with another tenant's api key or secret hash is a conflict and creates nothing", async function () {
        const owner = tenantRecord();
        await store.tenants.create(owner);
        const withKey = tenantRecord({ api_key: owner.api_key });
        await expectAppError(store.tenants.upsert(withKey), 'conflict');
        const withSecret = tenantRecord({ api_secret_sha256: owner.api_secret_sha256 });
        await expectAppError(store.tenants.upsert(withSecret), 'conflict');
        expect(await store.tenants.get(withKey.tenant_id)).to.equal(null);
        expect(await store.tenants.get(withSecret.tenant_id)).to.equal(null);
        expect(await store.tenants.getBySecretHash(withKey.api_secret_sha256)).to.equal(null);
        expect(await store.tenants.getByApiKey(withSecret.api_key)).to.equal(null);
        expect(await lookups(owner.api_key, owner.api_secret_sha256)).to.deep.equal({ byKey: owner.tenant_id, bySecret: owner.tenant_id });
      });

      it('concurrent upserts of one declared tenant all succeed and leave one record, created once', async function () {
        const tenant = tenantRecord();
        const results = await Promise.all(Array.from({ length: 4 }, () => store.tenants.upsert({ ...tenant, created_at: new Date() })));
        expect(results.filter((result) => result.created)).to.have.length(1);
        for (const result of results) expect(result.changed).to.deep.equal([]);
        const stored = await store.tenants.get(tenant.tenant_id);
        expect({ ...stored, created_at: null }).to.deep.equal({ ...tenant, created_at: null });
        expect(await lookups(tenant.api_key, tenant.api_secret_sha256)).to.deep.equal({
          byKey: tenant.tenant_id,
          bySecret: tenant.tenant_id,
        });
      });

      it('concurrent rotations to different credentials all succeed; only the stored credentials find the tenant', async function () {
        const tenant = tenantRecord();
        await store.tenants.create(tenant);
        const declarations = Array.from({ length: 4 }, (_, i) => ({
          ...tenant,
          name: `Rotation ${i}`,
          api_key: freshId('key'),
          api_secret_sha256: newSecretHash(),
        }));
        await Promise.all(declarations.map((declared) => store.tenants.upsert(declared)));
        const stored = await store.tenants.get(tenant.tenant_id);
        const winner = declarations.find((declared) => declared.name === stored?.name);
        expect(stored).to.deep.equal(winner);
        for (const declared of [tenant, ...declarations]) {
          const expected = declared === winner ? tenant.tenant_id : null;
          expect(await lookups(declared.api_key, declared.api_secret_sha256)).to.deep.equal({ byKey: expected, bySecret: expected });
        }
      });

      it('keeps nothing of the record passed in beyond the call', async function () {
        const tenant = tenantRecord();
        await store.tenants.upsert(tenant);
        const expected = structuredClone(tenant);
        tenant.limits.max_rooms = 999;
        tenant.name = 'Mutated';
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(expected);
      });
    });

    describe('rooms', function () {
      it('create then get returns the same record, every field type included', async function () {
        const tenantId = await newTenant();
        const room = roomRecord(tenantId, 'r1', {
          description: 'weekly sync',
          max_participants: 12,
          mesh_threshold: 3,
          max_screen_shares: 2,
          mode: 'sfu',
          locked: true,
          metadata: { topic: 'q3', nested: { list: [1, 'two', null, true] } },
          expires_at: new Date(Date.now() + 60 * MINUTE),
        });
        await store.rooms.create(room);
        expect(await store.rooms.get(tenantId, 'r1')).to.deep.equal(room);
      });

      it('get of an unknown room is null', async function () {
        const tenantId = await newTenant();
        expect(await store.rooms.get(tenantId, 'missing')).to.equal(null);
      });

      it('a duplicate (tenant, room_id) is a conflict and leaves the first record intact', async function () {
        const tenantId = await newTenant();
        const room = roomRecord(tenantId, 'dup');
        await store.rooms.create(room);
        await expectAppError(store.rooms.create({ ...room, name: 'second' }), 'conflict');
        expect(await store.rooms.get(tenantId, 'dup')).to.deep.equal(room);
      });

      it('count follows creates and deletes', async function () {
        const tenantId = await newTenant();
        expect(await store.rooms.count(tenantId)).to.equal(0);
        for (const id of ['a', 'b', 'c']) await store.rooms.create(roomRecord(tenantId, id));
        expect(await store.rooms.count(tenantId)).to.equal(3);
        await store.rooms.delete(tenantId, 'b');
        expect(await store.rooms.count(tenantId)).to.equal(2);
      });

      it('list pages through every room exactly once, the last page with next null', async function () {
        const tenantId = await newTenant();
        const ids = ['r07', 'r03', 'r01', 'r06', 'r02', 'r05', 'r04'];
        for (const id of ids) await store.rooms.create(roomRecord(tenantId, id));
        const { pages } = await allRooms(tenantId, 3);
        expect(pages.map((page) => page.length)).to.deep.equal([3, 3, 1]);
        const seen = pages.flat().map((room) => room.room_id);
        expect(seen).to.have.lengthOf(ids.length);
        expect(new Set(seen)).to.deep.equal(new Set(ids));
        // The order is stable: paging yields the same sequence as one big page.
        const whole = await store.rooms.list(tenantId, 100);
        expect(whole.items.map((room) => room.room_id)).to.deep.equal(seen);
        expect(whole.next).to.equal(null);
      });

      it('list with limit equal to the count is one page; an empty tenant has no items', async function () {
        const tenantId = await newTenant();
        for (const id of ['a', 'b']) await store.rooms.create(roomRecord(tenantId, id));
        const page = await store.rooms.list(tenantId, 2);
        expect(page.items).to.have.lengthOf(2);
        expect(page.next).to.equal(null);
        expect(await store.rooms.list(await newTenant(), 5)).to.deep.equal({ items: [], next: null });
      });

      it('list neither repeats nor skips rooms when rooms are deleted and created between pages', async function () {
        const tenantId = await newTenant();
        const ids = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
        for (const id of ids) await store.rooms.create(roomRecord(tenantId, id));
        const first = await store.rooms.list(tenantId, 3);
        const firstIds = first.items.map((room) => room.room_id);
        // Delete a room already returned and one not yet returned; add a new one.
        const returnedVictim = firstIds[0] as string;
        const pendingVictim = ids.find((id) => !firstIds.includes(id)) as string;
        await store.rooms.delete(tenantId, returnedVictim);
        await store.rooms.delete(tenantId, pendingVictim);
        await store.rooms.create(roomRecord(tenantId, 'r0-new'));
        const rest: string[] = [];
        let cursor = first.next;
        while (cursor !== null) {
          const page = await store.rooms.list(tenantId, 3, cursor);
          rest.push(...page.items.map((room) => room.room_id));
          cursor = page.next;
        }
        const survivors = ids.filter((id) => !firstIds.includes(id) && id !== pendingVictim);
        expect(rest.filter((id) => id !== 'r0-new')).to.have.members(survivors);
        expect(rest).to.not.include.members([pendingVictim]);
        expect(
          rest.filter((id) => firstIds.includes(id)),
          'no room repeats',
        ).to.deep.equal([]);
      });

      it('list refuses a malformed cursor and a non-positive limit with payload_invalid', async function () {
        const tenantId = await newTenant();
        await expectAppError(store.rooms.list(tenantId, 10, 'not a cursor!'), 'payload_invalid');
        await expectAppError(store.rooms.list(tenantId, 10, Buffer.from('{"x":1}').toString('base64url')), 'payload_invalid');
        await expectAppError(store.rooms.list(tenantId, 0), 'payload_invalid');
      });

      it('update applies the patch, bumps updated_at and keeps created_at', async function () {
        const tenantId = await newTenant();
        const room = roomRecord(tenantId, 'u1');
        await store.rooms.create(room);
        const patch = {
          name: 'New name',
          description: 'd',
          max_participants: 5,
          mesh_threshold: 2,
          max_screen_shares: 3,
          mode: 'mesh' as const,
          locked: true,
          metadata: { a: 1 },
          expires_at: new Date(Date.now() + 5 * MINUTE),
        };
        const updated = await store.rooms.update(tenantId, 'u1', patch);
        expect(updated).to.not.equal(null);
        expect(updated).to.deep.include(patch);
        expect(updated?.created_at).to.deep.equal(room.created_at);
        expect(updated?.updated_at.getTime()).to.be.greaterThan(room.updated_at.getTime());
        expect(await store.rooms.get(tenantId, 'u1')).to.deep.equal(updated);
        // Back to the defaults: nullable fields accept null.
        const reset = await store.rooms.update(tenantId, 'u1', {
          max_participants: null,
          mesh_threshold: null,
          max_screen_shares: null,
          expires_at: null,
        });
        expect(reset).to.deep.include({
          max_participants: null,
          mesh_threshold: null,
          max_screen_shares: null,
          expires_at: null,
          name: 'New name',
        });
      });

      it('update leaves undefined fields and fields outside RoomPatch unchanged', async function () {
        const tenantId = await newTenant();
        const room = roomRecord(tenantId, 'u2', { name: 'keep' });
        await store.rooms.create(room);
        const sneaky = { name: undefined, room_id: 'moved', tenant_id: 'other', created_at: new Date(0), locked: true } as never;
        const updated = await store.rooms.update(tenantId, 'u2', sneaky);
        expect(updated).to.deep.include({ tenant_id: tenantId, room_id: 'u2', name: 'keep', locked: true, created_at: room.created_at });
        expect(await store.rooms.get(tenantId, 'moved')).to.equal(null);
      });

      it('update of an unknown room is null and creates nothing', async function () {
        const tenantId = await newTenant();
        expect(await store.rooms.update(tenantId, 'ghost', { name: 'x' })).to.equal(null);
        expect(await store.rooms.get(tenantId, 'ghost')).to.equal(null);
      });

      it('delete removes the room once', async function () {
        const tenantId = await newTenant();
        await store.rooms.create(roomRecord(tenantId, 'd1'));
        expect(await store.rooms.delete(tenantId, 'd1')).to.equal(true);
        expect(await store.rooms.get(tenantId, 'd1')).to.equal(null);
        expect(await store.rooms.delete(tenantId, 'd1')).to.equal(false);
        // The id is free again.
        await store.rooms.create(roomRecord(tenantId, 'd1'));
        expect(await store.rooms.count(tenantId)).to.equal(1);
      });
    });

    describe('tenant isolation', function () {
      it('A\'s room "x" and B\'s room "x" are independent records', async function () {
        const a = await newTenant();
        const b = await newTenant();
        const roomA = roomRecord(a, 'x', { name: 'A room', metadata: { owner: 'a' } });
        const roomB = roomRecord(b, 'x', { name: 'B room', metadata: { owner: 'b' } });
        await store.rooms.create(roomA);
        await store.rooms.create(roomB);
        expect(await store.rooms.get(a, 'x')).to.deep.equal(roomA);
        expect(await store.rooms.get(b, 'x')).to.deep.equal(roomB);
        await store.rooms.update(b, 'x', { name: 'B renamed', locked: true });
        expect(await store.rooms.get(a, 'x')).to.deep.equal(roomA);
        expect(await store.rooms.delete(b, 'x')).to.equal(true);
        expect(await store.rooms.get(a, 'x')).to.deep.equal(roomA);
        expect(await store.rooms.count(a)).to.equal(1);
      });

      it("B cannot get, list, count, update or delete A's room", async function () {
        const a = await newTenant();
        const b = await newTenant();
        const roomA = roomRecord(a, 'x');
        await store.rooms.create(roomA);
        expect(await store.rooms.get(b, 'x')).to.equal(null);
        expect(await store.rooms.list(b, 10)).to.deep.equal({ items: [], next: null });
        expect(await store.rooms.count(b)).to.equal(0);
        expect(await store.rooms.update(b, 'x', { name: 'pwned', locked: true })).to.equal(null);
        expect(await store.rooms.delete(b, 'x')).to.equal(false);
        expect(await store.rooms.get(a, 'x')).to.deep.equal(roomA);
        expect(await store.rooms.get(b, 'x'), "update by B must not create B's room").to.equal(null);
      });

      it("tokens.get with the wrong tenant is null; B revoking A's recorded jti revokes it for B only", async function () {
        const a = await newTenant();
        const b = await newTenant();
        const token = tokenRecord(a);
        await store.tokens.record(token);
        expect(await store.tokens.get(b, token.jti)).to.equal(null);
        await store.tokens.revoke(b, token.jti, token.expires_at);
        expect(await store.tokens.isRevoked(a, token.jti)).to.equal(false);
        expect(await store.tokens.isRevoked(b, token.jti)).to.equal(true);
        expect(await store.tokens.get(a, token.jti)).to.deep.equal(token);
      });

      it('a jti minted outside the store (CLI) and revoked by B stays valid for A, and A can still revoke it', async function () {
        const a = await newTenant();
        const b = await newTenant();
        const jti = freshId('jti');
        const expiresAt = new Date(Date.now() + 30 * MINUTE);
        await store.tokens.revoke(b, jti, expiresAt);
        expect(await store.tokens.isRevoked(a, jti)).to.equal(false);
        expect(await store.tokens.get(a, jti)).to.equal(null);
        await store.tokens.revoke(a, jti, expiresAt);
        expect(await store.tokens.isRevoked(a, jti)).to.equal(true);
        expect(await store.tokens.get(a, jti)).to.deep.include({ jti, tenant_id: a });
      });

      it("B's session list and usage never include A's sessions", async function () {
        const a = await newTenant();
        const b = await newTenant();
        const start = new Date(Date.now() - 30 * MINUTE);
        const session = sessionRecord(a, 'x', start);
        await store.sessions.open(session);
        await store.sessions.close(session.session_id, minutesAfter(start, 10), 'left');
        expect(await store.sessions.list(b, { limit: 10 })).to.deep.equal({ items: [], next: null });
        expect(await store.sessions.list(b, { limit: 10, room_id: 'x' })).to.deep.equal({ items: [], next: null });
        expect(await store.sessions.usage(b, minutesAfter(start, -60), minutesAfter(start, 60))).to.deep.equal([]);
        expect((await store.sessions.list(a, { limit: 10 })).items).to.have.lengthOf(1);
      });
    });

    describe('tokens', function () {
      it('record then get returns the same record', async function () {
        const tenantId = await newTenant();
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        expect(await store.tokens.get(tenantId, token.jti)).to.deep.equal(token);
        expect(await store.tokens.get(tenantId, freshId('jti'))).to.equal(null);
      });

      it("a duplicate jti within a tenant is a conflict; another tenant's record of that jti is a separate record", async function () {
        const tenantId = await newTenant();
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        await expectAppError(store.tokens.record({ ...token, user_id: 'other' }), 'conflict');
        const other = { ...token, tenant_id: await newTenant(), user_id: 'other' };
        await store.tokens.record(other);
        expect(await store.tokens.get(tenantId, token.jti)).to.deep.equal(token);
        expect(await store.tokens.get(other.tenant_id, token.jti)).to.deep.equal(other);
      });

      it('isRevoked is false for a recorded token and for an unknown jti', async function () {
        const tenantId = await newTenant();
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        expect(await store.tokens.isRevoked(tenantId, token.jti)).to.equal(false);
        expect(await store.tokens.isRevoked(tenantId, freshId('jti'))).to.equal(false);
      });

      it('revoke of a recorded token marks it once and keeps the rest of the record', async function () {
        const tenantId = await newTenant();
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        const before = Date.now();
        await store.tokens.revoke(tenantId, token.jti, new Date(Date.now() + 999 * MINUTE));
        expect(await store.tokens.isRevoked(tenantId, token.jti)).to.equal(true);
        const revoked = await store.tokens.get(tenantId, token.jti);
        expect(revoked?.revoked_at).to.be.instanceOf(Date);
        expect(revoked?.revoked_at?.getTime()).to.be.at.least(before - 1000);
        expect({ ...revoked, revoked_at: null }).to.deep.equal(token);
        // A second revoke keeps the first revocation time.
        await new Promise((resolve) => setTimeout(resolve, 5));
        await store.tokens.revoke(tenantId, token.jti, token.expires_at);
        expect(await store.tokens.get(tenantId, token.jti)).to.deep.equal(revoked);
      });

      it('revoke of an unknown jti records it as revoked until the given expiry', async function () {
        const tenantId = await newTenant();
        const jti = freshId('jti');
        const expiresAt = new Date(Date.now() + 30 * MINUTE);
        await store.tokens.revoke(tenantId, jti, expiresAt);
        expect(await store.tokens.isRevoked(tenantId, jti)).to.equal(true);
        const record = await store.tokens.get(tenantId, jti);
        expect(record).to.deep.include({ jti, tenant_id: tenantId, expires_at: expiresAt });
        expect(record?.revoked_at).to.be.instanceOf(Date);
        // Minting that jti afterwards is a conflict: the revocation is not overwritten.
        await expectAppError(store.tokens.record(tokenRecord(tenantId, { jti })), 'conflict');
        expect(await store.tokens.isRevoked(tenantId, jti)).to.equal(true);
      });

      it("a revocation outlives its token's exp by the token grace (the verifier's clock tolerance)", async function () {
        const tenantId = await newTenant();
        // Expired a second ago: the token still verifies for the clock tolerance, so it must stay refused.
        const expiresAt = new Date(Date.now() - 1000);
        const recorded = tokenRecord(tenantId, { expires_at: expiresAt });
        await store.tokens.record(recorded);
        await store.tokens.revoke(tenantId, recorded.jti, expiresAt);
        const unknown = freshId('jti');
        await store.tokens.revoke(tenantId, unknown, expiresAt);
        // Writes after the revocation (MemoryStore sweeps expired records on writes).
        await store.tokens.record(tokenRecord(tenantId));
        await store.tokens.revoke(tenantId, freshId('jti'), new Date(Date.now() + MINUTE));
        expect(DEFAULT_TOKEN_GRACE_MS).to.be.greaterThan(1000);
        expect(await store.tokens.isRevoked(tenantId, recorded.jti)).to.equal(true);
        expect(await store.tokens.isRevoked(tenantId, unknown)).to.equal(true);
      });
    });

    describe('sessions', function () {
      async function getSession(tenantId: string, sessionId: string): Promise<SessionRecord | undefined> {
        const page = await store.sessions.list(tenantId, { limit: 1000 });
        return page.items.find((s) => s.session_id === sessionId);
      }

      it('open then list returns the same record', async function () {
        const tenantId = await newTenant();
        const session = sessionRecord(tenantId, 'room', new Date(Date.now() - MINUTE));
        await store.sessions.open(session);
        expect((await store.sessions.list(tenantId, { limit: 10 })).items).to.deep.equal([session]);
      });

      it('a duplicate session_id is a conflict', async function () {
        const tenantId = await newTenant();
        const session = sessionRecord(tenantId, 'room', new Date());
        await store.sessions.open(session);
        await expectAppError(store.sessions.open({ ...session, room_id: 'other' }), 'conflict');
        expect((await store.sessions.list(tenantId, { limit: 10 })).items).to.deep.equal([session]);
      });

      it('changeMode closes the open segment and opens one in the new mode; the same mode is a no-op', async function () {
        const tenantId = await newTenant();
        const t0 = new Date(Date.now() - 20 * MINUTE);
        const session = sessionRecord(tenantId, 'room', t0);
        await store.sessions.open(session);
        await store.sessions.changeMode(session.session_id, 'sfu', minutesAfter(t0, 10));
        await store.sessions.changeMode(session.session_id, 'sfu', minutesAfter(t0, 12));
        await store.sessions.changeMode(session.session_id, 'mesh', minutesAfter(t0, 15));
        expect((await getSession(tenantId, session.session_id))?.segments).to.deep.equal([
          { mode: 'mesh', from: t0, to: minutesAfter(t0, 10) },
          { mode: 'sfu', from: minutesAfter(t0, 10), to: minutesAfter(t0, 15) },
          { mode: 'mesh', from: minutesAfter(t0, 15), to: null },
        ]);
      });

      it('changeMode on a session without segments starts the first one', async function () {
        const tenantId = await newTenant();
        const t0 = new Date(Date.now() - MINUTE);
        const session = sessionRecord(tenantId, 'room', t0, { segments: [] });
        await store.sessions.open(session);
        await store.sessions.changeMode(session.session_id, 'sfu', t0);
        expect((await getSession(tenantId, session.session_id))?.segments).to.deep.equal([{ mode: 'sfu', from: t0, to: null }]);
      });

      it('close records disconnected_at, duration_ms and reason, closes every segment, and happens once', async function () {
        const tenantId = await newTenant();
        const t0 = new Date(Date.now() - 20 * MINUTE);
        const session = sessionRecord(tenantId, 'room', t0);
        await store.sessions.open(session);
        await store.sessions.changeMode(session.session_id, 'sfu', minutesAfter(t0, 10));
        await store.sessions.close(session.session_id, minutesAfter(t0, 15), 'left');
        const expected: SessionRecord = {
          ...session,
          disconnected_at: minutesAfter(t0, 15),
          duration_ms: 15 * MINUTE,
          disconnect_reason: 'left',
          segments: [
            { mode: 'mesh', from: t0, to: minutesAfter(t0, 10) },
            { mode: 'sfu', from: minutesAfter(t0, 10), to: minutesAfter(t0, 15) },
          ],
        };
        expect(await getSession(tenantId, session.session_id)).to.deep.equal(expected);
        // Closed is final: neither a second close nor a mode change alters it.
        await store.sessions.close(session.session_id, minutesAfter(t0, 18), 'kicked');
        await store.sessions.changeMode(session.session_id, 'mesh', minutesAfter(t0, 19));
        expect(await getSession(tenantId, session.session_id)).to.deep.equal(expected);
      });

      it('changeMode and close of an unknown session resolve without effect', async function () {
        const tenantId = await newTenant();
        const session = sessionRecord(tenantId, 'room', new Date(Date.now() - MINUTE));
        await store.sessions.open(session);
        const unknown = freshId('session');
        expect(await store.sessions.changeMode(unknown, 'sfu', new Date())).to.equal(undefined);
        expect(await store.sessions.close(unknown, new Date(), 'left')).to.equal(undefined);
        expect(await store.sessions.touch([unknown], new Date())).to.equal(undefined);
        // Nothing was created under that id, and the tenant's one session is unchanged.
        expect(await store.sessions.list(tenantId, { limit: 10 })).to.deep.equal({ items: [session], next: null });
        await store.sessions.open(sessionRecord(tenantId, 'room', new Date(), { session_id: unknown }));
        expect((await getSession(tenantId, unknown))?.disconnected_at).to.equal(null);
      });

      it('list filters by room_id and by overlap with [from, to)', async function () {
        const tenantId = await newTenant();
        const t0 = new Date('2024-05-01T10:00:00.000Z');
        const from = minutesAfter(t0, 60);
        const to = minutesAfter(t0, 120);
        const make = async (label: string, room: string, start: number, end: number | null): Promise<[string, string]> => {
          const session = sessionRecord(tenantId, room, minutesAfter(t0, start));
          await store.sessions.open(session);
          if (end !== null) await store.sessions.close(session.session_id, minutesAfter(t0, end), 'left');
          return [session.session_id, label];
        };
        const labels = new Map([
          await make('ended-before', 'r1', 0, 30),
          await make('spans-start', 'r1', 30, 70),
          await make('inside', 'r2', 70, 80),
          await make('spans-all', 'r2', 0, 200),
          await make('spans-end', 'r1', 100, 150),
          await make('starts-at-to', 'r1', 120, 130),
          await make('after', 'r2', 130, 140),
          await make('open-before-to', 'r1', 90, null),
          await make('open-after-to', 'r2', 125, null),
        ]);
        const labelsOf = (items: SessionRecord[]): string[] => items.map((s) => labels.get(s.session_id) ?? '?').sort();
        const windowed = await store.sessions.list(tenantId, { limit: 100, from, to });
        expect(labelsOf(windowed.items)).to.deep.equal(['inside', 'open-before-to', 'spans-all', 'spans-end', 'spans-start']);
        const inR1 = await store.sessions.list(tenantId, { limit: 100, from, to, room_id: 'r1' });
        expect(labelsOf(inR1.items)).to.deep.equal(['open-before-to', 'spans-end', 'spans-start']);
        const allR2 = await store.sessions.list(tenantId, { limit: 100, room_id: 'r2' });
        expect(labelsOf(allR2.items)).to.deep.equal(['after', 'inside', 'open-after-to', 'spans-all']);
        const onlyTo = await store.sessions.list(tenantId, { limit: 100, to: minutesAfter(t0, 30) });
        expect(labelsOf(onlyTo.items)).to.deep.equal(['ended-before', 'spans-all']);
        const onlyFrom = await store.sessions.list(tenantId, { limit: 100, from: minutesAfter(t0, 145) });
        expect(labelsOf(onlyFrom.items)).to.deep.equal(['open-after-to', 'open-before-to', 'spans-all', 'spans-end']);
      });

      it('list pages in connected_at order through every session exactly once, ties included', async function () {
        const tenantId = await newTenant();
        const t0 = new Date('2024-06-01T00:00:00.000Z');
        const offsets = [5, 1, 3, 3, 3, 0, 7, 1];
        const opened: string[] = [];
        for (const offset of offsets) {
          const session = sessionRecord(tenantId, 'room', minutesAfter(t0, offset));
          await store.sessions.open(session);
          opened.push(session.session_id);
        }
        const seen: SessionRecord[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.sessions.list(tenantId, { limit: 3, cursor });
          expect(page.items.length).to.be.at.most(3);
          seen.push(...page.items);
          cursor = page.next;
          pages += 1;
          expect(pages).to.be.below(20);
        } while (cursor !== null);
        expect(pages).to.equal(3);
        expect(seen.map((s) => s.session_id)).to.have.members(opened);
        expect(seen).to.have.lengthOf(opened.length);
        const times = seen.map((s) => s.connected_at.getTime());
        expect(times).to.deep.equal([...times].sort((x, y) => x - y));
        // Paging also composes with filters and rejects malformed cursors.
        const r = await store.sessions.list(tenantId, { limit: 2, room_id: 'room', from: t0, to: minutesAfter(t0, 4) });
        expect(r.items).to.have.lengthOf(2);
        const r2 = await store.sessions.list(tenantId, { limit: 2, room_id: 'room', from: t0, to: minutesAfter(t0, 4), cursor: r.next });
        const r3 = r2.next
          ? await store.sessions.list(tenantId, { limit: 2, room_id: 'room', from: t0, to: minutesAfter(t0, 4), cursor: r2.next })
          : { items: [], next: null };
        expect([...r.items, ...r2.items, ...r3.items]).to.have.lengthOf(6); // offsets 0, 1, 1, 3, 3, 3
        expect(r3.next).to.equal(null);
        await expectAppError(store.sessions.list(tenantId, { limit: 2, cursor: 'garbage' }), 'payload_invalid');
        await expectAppError(store.sessions.list(tenantId, { limit: 0 }), 'payload_invalid');
      });

      it('list refuses cursors it did not write (out-of-range time, wrong types or length) with payload_invalid', async function () {
        const tenantId = await newTenant();
        await store.sessions.open(sessionRecord(tenantId, 'room', new Date()));
        const cursorOf = (key: unknown): string => Buffer.from(JSON.stringify(key)).toString('base64url');
        for (const key of [[1e20, 'x'], [1.5, 'x'], [-9e15, 'x'], ['1', 'x'], [1, 2], [1, 'x', 'y'], [1], { 0: 1, 1: 'x' }]) {
          await expectAppError(store.sessions.list(tenantId, { limit: 2, cursor: cursorOf(key) }), 'payload_invalid');
        }
        await expectAppError(store.rooms.list(tenantId, 2, cursorOf([5])), 'payload_invalid');
        // A well-formed key of a real time works.
        expect((await store.sessions.list(tenantId, { limit: 2, cursor: cursorOf([0, '']) })).items).to.have.lengthOf(1);
      });

      it('usage: 10 min in mesh then 5 min in sfu is 10 and 5 participant-minutes', async function () {
        const tenantId = await newTenant();
        const t0 = new Date('2024-07-01T12:00:00.000Z');
        const session = sessionRecord(tenantId, 'standup', t0);
        await store.sessions.open(session);
        await store.sessions.changeMode(session.session_id, 'sfu', minutesAfter(t0, 10));
        await store.sessions.close(session.session_id, minutesAfter(t0, 15), 'left');
        const rows = await store.sessions.usage(tenantId, minutesAfter(t0, -60), minutesAfter(t0, 60));
        expect(rows).to.have.lengthOf(2);
        expect(usageOf(rows, 'standup', 'mesh')).to.be.closeTo(10, 1e-9);
        expect(usageOf(rows, 'standup', 'sfu')).to.be.closeTo(5, 1e-9);
      });

      it('usage sums participants per room and mode and clips to the window', async function () {
        const tenantId = await newTenant();
        const t0 = new Date('2024-07-02T12:00:00.000Z');
        for (const [room, start, end] of [
          ['a', 0, 30],
          ['a', 10, 20],
          ['b', -30, 90],
          ['b', 200, 210], // outside the window
        ] as const) {
          const session = sessionRecord(tenantId, room, minutesAfter(t0, start));
          await store.sessions.open(session);
          await store.sessions.close(session.session_id, minutesAfter(t0, end), 'left');
        }
        const rows = await store.sessions.usage(tenantId, t0, minutesAfter(t0, 60));
        expect(rows.map((row) => `${row.room_id}/${row.mode}`)).to.deep.equal(['a/mesh', 'b/mesh']);
        expect(usageOf(rows, 'a', 'mesh')).to.be.closeTo(30 + 10, 1e-9);
        expect(usageOf(rows, 'b', 'mesh')).to.be.closeTo(60, 1e-9);
        // A window that cuts through a segment counts only the part inside.
        const clipped = await store.sessions.usage(tenantId, minutesAfter(t0, 15), minutesAfter(t0, 25));
        expect(usageOf(clipped, 'a', 'mesh')).to.be.closeTo(10 + 5, 1e-9);
        expect(usageOf(clipped, 'b', 'mesh')).to.be.closeTo(10, 1e-9);
        expect(await store.sessions.usage(tenantId, minutesAfter(t0, 300), minutesAfter(t0, 400))).to.deep.equal([]);
      });

      it('usage counts open sessions up to now', async function () {
        const tenantId = await newTenant();
        const start = new Date(Date.now() - 3 * MINUTE);
        await store.sessions.open(sessionRecord(tenantId, 'live', start));
        const rows = await store.sessions.usage(tenantId, new Date(Date.now() - 60 * MINUTE), new Date(Date.now() + 60 * MINUTE));
        expect(usageOf(rows, 'live', 'mesh')).to.be.closeTo(3, 0.1);
      });

      it('an open session not seen within the staleness bound counts as ended at its last_seen_at (usage and list)', async function () {
        const tenantId = await newTenant();
        const now = Date.now();
        const start = new Date(now - 30 * MINUTE);
        const lastSeen = new Date(now - 20 * MINUTE);
        expect(20 * MINUTE).to.be.greaterThan(DEFAULT_SESSION_STALE_MS);
        const lost = sessionRecord(tenantId, 'crashed', start, { last_seen_at: lastSeen });
        await store.sessions.open(lost);
        await store.sessions.changeMode(lost.session_id, 'sfu', minutesAfter(start, 4));
        const rows = await store.sessions.usage(tenantId, new Date(now - 60 * MINUTE), new Date(now + MINUTE));
        expect(usageOf(rows, 'crashed', 'mesh')).to.be.closeTo(4, 1e-9);
        expect(usageOf(rows, 'crashed', 'sfu')).to.be.closeTo(6, 1e-9);
        const listed = await getSession(tenantId, lost.session_id);
        expect(listed).to.deep.include({ disconnected_at: lastSeen, duration_ms: 10 * MINUTE, disconnect_reason: 'lost' });
        expect(listed?.segments.at(-1)?.to).to.deep.equal(lastSeen);
        // It ended before this window, so the window neither lists nor counts it.
        const later = { from: new Date(now - 10 * MINUTE), to: new Date(now + MINUTE) };
        expect((await store.sessions.list(tenantId, { limit: 10, ...later })).items).to.deep.equal([]);
        expect(await store.sessions.usage(tenantId, later.from, later.to)).to.deep.equal([]);
        // A heartbeat makes it live again: counted up to now.
        await store.sessions.touch([lost.session_id], new Date());
        expect((await getSession(tenantId, lost.session_id))?.disconnected_at).to.equal(null);
        const live = await store.sessions.usage(tenantId, new Date(now - 60 * MINUTE), new Date(now + MINUTE));
        expect(usageOf(live, 'crashed', 'sfu')).to.be.closeTo(26, 0.1);
      });

      it('touch sets last_seen_at of open sessions only', async function () {
        const tenantId = await newTenant();
        const t0 = new Date(Date.now() - 10 * MINUTE);
        const open = sessionRecord(tenantId, 'r', t0, { last_seen_at: t0 });
        const closed = sessionRecord(tenantId, 'r', t0, { last_seen_at: t0 });
        await store.sessions.open(open);
        await store.sessions.open(closed);
        await store.sessions.close(closed.session_id, minutesAfter(t0, 1), 'left');
        const at = new Date(Date.now() - 1000);
        await store.sessions.touch([open.session_id, closed.session_id], at);
        expect((await getSession(tenantId, open.session_id))?.last_seen_at).to.deep.equal(at);
        expect((await getSession(tenantId, closed.session_id))?.last_seen_at).to.deep.equal(t0);
        await store.sessions.touch([], new Date());
      });

      it("closeLost closes this node's open sessions and stale ones of any node at their last_seen_at, and no others", async function () {
        const tenantId = await newTenant();
        const now = new Date();
        const t0 = new Date(now.getTime() - 60 * MINUTE);
        const node = freshId('node');
        const recent = new Date(now.getTime() - 5000);
        const longAgo = minutesAfter(t0, 10);
        const sessions = {
          ownFresh: sessionRecord(tenantId, 'r', t0, { node_id: node, last_seen_at: recent }),
          ownStale: sessionRecord(tenantId, 'r', t0, { node_id: node, last_seen_at: longAgo }),
          otherStale: sessionRecord(tenantId, 'r', t0, { node_id: freshId('node'), last_seen_at: longAgo }),
          otherFresh: sessionRecord(tenantId, 'r', t0, { node_id: freshId('node'), last_seen_at: recent }),
          ownClosed: sessionRecord(tenantId, 'r', t0, { node_id: node, last_seen_at: longAgo }),
        };
        for (const session of Object.values(sessions)) await store.sessions.open(session);
        await store.sessions.close(sessions.ownClosed.session_id, minutesAfter(t0, 5), 'left');
        expect(await store.sessions.closeLost(node, now)).to.be.at.least(3);
        const read = async (key: keyof typeof sessions) => getSession(tenantId, sessions[key].session_id);
        expect(await read('ownFresh')).to.deep.include({
          disconnected_at: recent,
          disconnect_reason: 'lost',
          duration_ms: recent.getTime() - t0.getTime(),
        });
        expect(await read('ownStale')).to.deep.include({ disconnected_at: longAgo, disconnect_reason: 'lost' });
        expect(await read('otherStale')).to.deep.include({ disconnected_at: longAgo, disconnect_reason: 'lost' });
        expect((await read('otherFresh'))?.disconnected_at).to.equal(null);
        expect(await read('ownClosed')).to.deep.include({ disconnected_at: minutesAfter(t0, 5), disconnect_reason: 'left' });
        // Closed for good: a later heartbeat does not reopen it, and usage counts up to last_seen_at.
        await store.sessions.touch([sessions.ownFresh.session_id], new Date());
        expect((await read('ownFresh'))?.disconnected_at).to.deep.equal(recent);
        const rows = await store.sessions.usage(tenantId, t0, new Date(now.getTime() + MINUTE));
        const expected = (recent.getTime() - t0.getTime() + 2 * 10 * MINUTE + 5 * MINUTE) / MINUTE;
        expect(usageOf(rows, 'r', 'mesh')).to.be.closeTo(expected + (Date.now() - t0.getTime()) / MINUTE, 0.05);
      });
    });

    describe('records are copies', function () {
      it('mutating a returned record does not change the store', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/z', secret: 'whsec-3' } });
        await store.tenants.create(tenant);
        const gotTenant = (await store.tenants.get(tenant.tenant_id)) as TenantRecord;
        gotTenant.limits.max_rooms = 999;
        gotTenant.name = 'mutated';
        (gotTenant.webhook as { url: string }).url = 'https://evil.example.com';
        gotTenant.created_at.setTime(0);
        expect(await store.tenants.get(tenant.tenant_id)).to.deep.equal(tenant);

        const room = roomRecord(tenant.tenant_id, 'copy', { metadata: { list: [1, 2] } });
        await store.rooms.create(room);
        const gotRoom = (await store.rooms.get(tenant.tenant_id, 'copy')) as RoomRecord;
        (gotRoom.metadata.list as number[]).push(3);
        gotRoom.locked = true;
        const listed = (await store.rooms.list(tenant.tenant_id, 10)).items[0] as RoomRecord;
        listed.name = 'mutated';
        expect(await store.rooms.get(tenant.tenant_id, 'copy')).to.deep.equal(room);

        const t0 = new Date(Date.now() - MINUTE);
        const session = sessionRecord(tenant.tenant_id, 'copy', t0);
        await store.sessions.open(session);
        const gotSession = (await store.sessions.list(tenant.tenant_id, { limit: 10 })).items[0] as SessionRecord;
        gotSession.segments.push({ mode: 'sfu', from: new Date(), to: null });
        (gotSession.segments[0] as { mode: RoomMode }).mode = 'sfu';
        expect((await store.sessions.list(tenant.tenant_id, { limit: 10 })).items).to.deep.equal([session]);
      });

      it('mutating the record passed in after the call does not change the store', async function () {
        const tenant = tenantRecord();
        const snapshot = structuredClone(tenant);
        await store.tenants.create(tenant);
        tenant.limits.max_rooms = 0;
        tenant.name = 'mutated';
        expect(await store.tenants.get(snapshot.tenant_id)).to.deep.equal(snapshot);

        const t0 = new Date(Date.now() - MINUTE);
        const session = sessionRecord(snapshot.tenant_id, 'r', t0);
        const sessionSnapshot = structuredClone(session);
        await store.sessions.open(session);
        (session.segments[0] as { to: Date | null }).to = new Date();
        session.room_id = 'mutated';
        expect((await store.sessions.list(snapshot.tenant_id, { limit: 10 })).items).to.deep.equal([sessionSnapshot]);
      });
    });

    describe('no secrets in records', function () {
      it('no record has a secret- or token-like field other than *_sha256 hashes (and the webhook HMAC key)', async function () {
        const tenant = tenantRecord({ webhook: { url: 'https://hooks.example.com/s', secret: 'whsec-4' } });
        await store.tenants.create(tenant);
        await store.rooms.create(roomRecord(tenant.tenant_id, 's'));
        const token = tokenRecord(tenant.tenant_id);
        await store.tokens.record(token);
        const revokedJti = freshId('jti');
        await store.tokens.revoke(tenant.tenant_id, revokedJti, new Date(Date.now() + MINUTE));
        await store.sessions.open(sessionRecord(tenant.tenant_id, 's', new Date()));
        const records: object[] = [
          (await store.tenants.get(tenant.tenant_id)) as TenantRecord,
          (await store.rooms.get(tenant.tenant_id, 's')) as RoomRecord,
          (await store.tokens.get(tenant.tenant_id, token.jti)) as TokenRecord,
          (await store.tokens.get(tenant.tenant_id, revokedJti)) as TokenRecord,
          ...(await store.sessions.list(tenant.tenant_id, { limit: 10 })).items,
        ];
        for (const record of records) expect(secretLikeFields(record), JSON.stringify(record)).to.deep.equal([]);
      });

      it('a secret or token spread into a record by mistake is not stored', async function () {
        const plainSecret = `sk_live_${randomUUID()}`;
        const plainToken = `eyJ.${randomUUID()}`;
        const tenant = { ...tenantRecord(), api_secret: plainSecret } as TenantRecord;
        await store.tenants.create(tenant);
        const token = { ...tokenRecord(tenant.tenant_id), token: plainToken } as TokenRecord;
        await store.tokens.record(token);
        const room = { ...roomRecord(tenant.tenant_id, 'leak'), token: plainToken } as RoomRecord;
        await store.rooms.create(room);
        const session = { ...sessionRecord(tenant.tenant_id, 'leak', new Date()), token: plainToken } as SessionRecord;
        await store.sessions.open(session);
        const stored = JSON.stringify([
          await store.tenants.get(tenant.tenant_id),
          await store.tenants.getByApiKey(tenant.api_key),
          await store.tokens.get(tenant.tenant_id, token.jti),
          await store.rooms.get(tenant.tenant_id, 'leak'),
          await store.rooms.list(tenant.tenant_id, 10),
          await store.sessions.list(tenant.tenant_id, { limit: 10 }),
        ]);
        expect(stored).to.not.include(plainSecret);
        expect(stored).to.not.include(plainToken);
      });
    });

    describe('operator objects where ids belong', function () {
      it('are refused with payload_invalid or match nothing, and change nothing', async function () {
        const tenantId = await newTenant();
        const room = roomRecord(tenantId, 'target');
        await store.rooms.create(room);
        const token = tokenRecord(tenantId);
        await store.tokens.record(token);
        await store.tokens.revoke(tenantId, freshId('jti'), new Date(Date.now() + MINUTE));
        await store.sessions.open(sessionRecord(tenantId, 'target', new Date()));

        const nothing = (value: unknown): boolean => value === 'refused' || value === null || value === false;
        expect(nothing(await refusedOr(store.tenants.get(INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.tenants.getByApiKey(INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.tenants.getBySecretHash(INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.tenants.update(INJECTED, { name: 'pwned' })))).to.equal(true);
        expect(nothing(await refusedOr(store.rooms.get(tenantId, INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.rooms.get(INJECTED, 'target')))).to.equal(true);
        expect(nothing(await refusedOr(store.rooms.update(tenantId, INJECTED, { locked: true })))).to.equal(true);
        expect(nothing(await refusedOr(store.rooms.delete(tenantId, INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.tokens.get(tenantId, INJECTED)))).to.equal(true);
        expect(nothing(await refusedOr(store.tokens.isRevoked(INJECTED, token.jti)))).to.equal(true);
        expect(nothing(await refusedOr(store.tokens.isRevoked(tenantId, INJECTED)))).to.equal(true);
        const listed = await refusedOr(store.rooms.list(INJECTED, 10));
        expect(listed === 'refused' || listed.items.length === 0).to.equal(true);
        const counted = await refusedOr(store.rooms.count(INJECTED));
        expect(counted === 'refused' || counted === 0).to.equal(true);
        const sessions = await refusedOr(store.sessions.list(INJECTED, { limit: 10 }));
        expect(sessions === 'refused' || sessions.items.length === 0).to.equal(true);
        const byRoom = await refusedOr(store.sessions.list(tenantId, { limit: 10, room_id: INJECTED }));
        expect(byRoom === 'refused' || byRoom.items.length === 0).to.equal(true);
        const usage = await refusedOr(store.sessions.usage(INJECTED, new Date(0), new Date(Date.now() + MINUTE)));
        expect(usage === 'refused' || usage.length === 0).to.equal(true);

        expect(await store.rooms.get(tenantId, 'target')).to.deep.equal(room);
        expect(await store.tokens.get(tenantId, token.jti)).to.deep.equal(token);
      });
    });
  });
}

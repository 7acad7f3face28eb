import { expect } from 'chai';
import { MongoStore } from '../../server/store/MongoStore.js';
import {
  defaultIndexName,
  describeIndexChange,
  planIndexChanges,
  type DeclaredIndex,
  type ExistingIndex,
} from '../../server/store/mongoIndexPlan.js';

/** What listIndexes would answer for a collection built from these declarations. */
function asExisting(declared: DeclaredIndex[]): ExistingIndex[] {
  return [
    { v: 2, key: { _id: 1 }, name: '_id_' },
    ...declared.map(([key, options = {}]) => ({ v: 2, key, name: defaultIndexName(key), ...options })),
  ];
}

describe('store: MongoDB index migration plan', () => {
  // The schemas of a real MongoStore (constructing one does not connect).
  const store = new MongoStore('mongodb://127.0.0.1:1/plan');
  after(() => store.close());
  const declaredTokens = store.models.tokens.schema.indexes() as DeclaredIndex[];
  const declaredSessions = store.models.sessions.schema.indexes() as DeclaredIndex[];

  it('plans nothing when the indexes are the declared ones (each collection of the store)', () => {
    for (const model of Object.values(store.models)) {
      const declared = model.schema.indexes() as DeclaredIndex[];
      expect(declared.length, model.collection.collectionName).to.be.greaterThan(0);
      expect(planIndexChanges(asExisting(declared), declared), model.collection.collectionName).to.deep.equal([]);
    }
    // unique: false and an absent unique are the same index to MongoDB.
    expect(planIndexChanges([{ name: 'a_1', key: { a: 1 }, unique: false }], [[{ a: 1 }, {}]])).to.deep.equal([]);
  });

  it('creates every declared index of a new collection, with MongoDB default names', () => {
    const plan = planIndexChanges([], declaredTokens);
    expect(plan.map((c) => c.action)).to.deep.equal(declaredTokens.map(() => 'create'));
    expect(plan.map((c) => c.name)).to.include.members(['tenant_id_1_jti_1', 'purge_at_1']);
  });

  it('changes a TTL in place with collMod (the IndexOptionsConflict createIndexes stops on)', () => {
    const existing = asExisting(declaredTokens).map((index) =>
      index.name === 'purge_at_1' ? { ...index, expireAfterSeconds: 3600 } : index,
    );
    const plan = planIndexChanges(existing, declaredTokens);
    expect(plan).to.deep.equal([{ action: 'ttl', name: 'purge_at_1', key: { purge_at: 1 }, from: 3600, to: 0 }]);
    expect(describeIndexChange('tokens', plan[0]!)).to.equal(
      'tokens: change TTL of purge_at_1 {"purge_at":1} from 3600 s to 0 s (collMod)',
    );
  });

  it('drops the legacy token indexes and undeclared ones, never _id_', () => {
    const existing = [
      ...asExisting(declaredTokens),
      { v: 2, key: { jti: 1 }, name: 'jti_1', unique: true },
      { v: 2, key: { expires_at: 1 }, name: 'expires_at_1', expireAfterSeconds: 0 },
    ];
    const plan = planIndexChanges(existing, declaredTokens);
    expect(plan).to.deep.equal([
      { action: 'drop', name: 'jti_1', key: { jti: 1 } },
      { action: 'drop', name: 'expires_at_1', key: { expires_at: 1 } },
    ]);
    expect(planIndexChanges([{ name: '_id_', key: { _id: 1 } }], [])).to.deep.equal([]);
  });

  it('rebuilds an index whose other options changed, or that gains or loses a TTL; drops before it creates', () => {
    const declared: DeclaredIndex[] = [
      [{ tenant_id: 1, jti: 1 }, { unique: true }],
      [{ purge_at: 1 }, { expireAfterSeconds: 0 }],
      [{ created_at: 1 }, {}],
    ];
    const existing: ExistingIndex[] = [
      { name: 'tenant_id_1_jti_1', key: { tenant_id: 1, jti: 1 } }, // not unique yet
      { name: 'purge_at_1', key: { purge_at: 1 } }, // no TTL yet
      { name: 'created_at_1', key: { created_at: 1 }, expireAfterSeconds: 60 }, // TTL to remove
      { name: 'jti_1_tenant_id_1', key: { jti: 1, tenant_id: 1 } }, // field order differs: another index
    ];
    const plan = planIndexChanges(existing, declared);
    expect(plan.map((c) => [c.action, c.name])).to.deep.equal([
      ['rebuild', 'tenant_id_1_jti_1'],
      ['rebuild', 'purge_at_1'],
      ['rebuild', 'created_at_1'],
      ['drop', 'jti_1_tenant_id_1'],
    ]);
    expect(plan[0]).to.deep.include({ changed: ['unique'], options: { unique: true } });
    expect(plan[1]).to.deep.include({ changed: ['expireAfterSeconds'] });
    expect(describeIndexChange('tokens', plan[0]!)).to.equal(
      'tokens: rebuild index tenant_id_1_jti_1 {"tenant_id":1,"jti":1} (changed: unique)',
    );
  });

  it('creates a missing declared index next to kept ones, under its declared name when it has one', () => {
    const existing = asExisting(declaredSessions).filter((index) => index.name !== 'ended_at_1_last_seen_at_1');
    expect(planIndexChanges(existing, declaredSessions)).to.deep.equal([
      { action: 'create', name: 'ended_at_1_last_seen_at_1', key: { ended_at: 1, last_seen_at: 1 }, options: {} },
    ]);
    expect(planIndexChanges([], [[{ a: 1 }, { name: 'by_a' }]])[0]).to.deep.include({ action: 'create', name: 'by_a' });
  });
});

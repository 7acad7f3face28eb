/**
 * The index migration of the MongoDB store, as a plan computed from the indexes a collection
 * has (listIndexes) and the ones its schema declares (schema.indexes()). Like mongoose's
 * syncIndexes it drops what is not declared (never _id_) and creates what is missing; unlike
 * it, an index whose only change is its TTL is altered in place with collMod (no rebuild, the
 * documents stay covered), and any other option change is a drop and re-create. Pure: no I/O.
 */

/** An index key: field -> 1, -1 or a kind ("text", "2dsphere", ...), in order. */
export type IndexKey = Record<string, number | string>;

/** An index as listIndexes returns it (v, ns and unknown options ignored). */
export interface ExistingIndex {
  name: string;
  key: IndexKey;
  [option: string]: unknown;
}

/** An index as a mongoose schema declares it: [fields, options]. */
export type DeclaredIndex = [IndexKey, Record<string, unknown>?];

export type IndexChange =
  /** Not declared any more: dropped. */
  | { action: 'drop'; name: string; key: IndexKey }
  /** Same key, other options (unique, sparse, partial filter, collation, a TTL added or removed): dropped and created again. */
  | { action: 'rebuild'; name: string; key: IndexKey; options: Record<string, unknown>; changed: string[] }
  /** Same key, only expireAfterSeconds differs: collMod. */
  | { action: 'ttl'; name: string; key: IndexKey; from: number; to: number }
  /** Declared and missing: created. */
  | { action: 'create'; name: string; key: IndexKey; options: Record<string, unknown> };

/** Options that make two indexes on one key different indexes to MongoDB (createIndex refuses to change them). */
const COMPARED_OPTIONS = ['unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression', 'collation', 'hidden'] as const;

/** MongoDB's default index name: field_direction pairs joined by "_" (e.g. tenant_id_1_jti_1). */
export function defaultIndexName(key: IndexKey): string {
  return Object.entries(key)
    .map(([field, direction]) => `${field}_${String(direction)}`)
    .join('_');
}

/** One string per key: field order matters ({a:1,b:1} is not {b:1,a:1}). */
function keyId(key: IndexKey): string {
  return JSON.stringify(
    Object.entries(key).map(([field, direction]) => [field, typeof direction === 'number' ? Math.sign(direction) : direction]),
  );
}

/** An option as MongoDB compares it: unique/sparse/hidden false is the same as absent. */
function normalized(name: (typeof COMPARED_OPTIONS)[number], value: unknown): unknown {
  if ((name === 'unique' || name === 'sparse' || name === 'hidden') && value === false) return undefined;
  return value;
}

/** Deep equality of JSON-like option values, key order ignored. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a).sort();
  const bKeys = Object.keys(b).sort();
  if (aKeys.length !== bKeys.length || aKeys.some((k, i) => k !== bKeys[i])) return false;
  return aKeys.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** The compared options in which an existing index differs from a declared one. */
function changedOptions(existing: ExistingIndex, declared: Record<string, unknown>): string[] {
  return COMPARED_OPTIONS.filter((name) => !sameValue(normalized(name, existing[name]), normalized(name, declared[name])));
}

/**
 * The changes that bring `existing` to `declared`, drops first (a rebuilt or new index may
 * reuse a dropped one's name), then TTL changes, then creations. Empty when they agree.
 */
export function planIndexChanges(existing: readonly ExistingIndex[], declared: readonly DeclaredIndex[]): IndexChange[] {
  const wanted = new Map<string, { key: IndexKey; options: Record<string, unknown> }>();
  for (const [key, options = {}] of declared) wanted.set(keyId(key), { key, options });

  const drops: IndexChange[] = [];
  const ttl: IndexChange[] = [];
  const creates: IndexChange[] = [];
  const present = new Set<string>();
  for (const index of existing) {
    if (index.name === '_id_') continue;
    const id = keyId(index.key);
    const target = wanted.get(id);
    if (!target || present.has(id)) {
      drops.push({ action: 'drop', name: index.name, key: index.key });
      continue;
    }
    present.add(id);
    const changed = changedOptions(index, target.options);
    if (changed.length === 0) continue;
    const from = index.expireAfterSeconds;
    const to = target.options.expireAfterSeconds;
    if (changed.length === 1 && changed[0] === 'expireAfterSeconds' && typeof from === 'number' && typeof to === 'number') {
      ttl.push({ action: 'ttl', name: index.name, key: index.key, from, to });
    } else {
      drops.push({ action: 'rebuild', name: index.name, key: target.key, options: target.options, changed });
    }
  }
  for (const [id, { key, options }] of wanted) {
    if (!present.has(id))
      creates.push({ action: 'create', name: typeof options.name === 'string' ? options.name : defaultIndexName(key), key, options });
  }
  return [...drops, ...ttl, ...creates];
}

/** One line per change, for logs and `switchboard migrate`. */
export function describeIndexChange(collection: string, change: IndexChange): string {
  const key = JSON.stringify(change.key);
  switch (change.action) {
    case 'drop':
      return `${collection}: drop index ${change.name} ${key} (not declared)`;
    case 'rebuild':
      return `${collection}: rebuild index ${change.name} ${key} (changed: ${change.changed.join(', ')})`;
    case 'ttl':
      return `${collection}: change TTL of ${change.name} ${key} from ${change.from} s to ${change.to} s (collMod)`;
    case 'create':
      return `${collection}: create index ${change.name} ${key}`;
  }
}

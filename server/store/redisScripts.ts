/**
 * The Redis store's Lua scripts: every write that must check and change several keys at once
 * runs as one script, which Redis executes atomically. Scripts never decode or re-encode a
 * record: hash fields hold JSON values written by the store, and a script only compares,
 * copies or sets whole field values (the one exception appends an element to the JSON array
 * of a session's segments, whose text always ends in "]").
 *
 * A script touches only the keys it is given (KEYS), so it is valid on any Redis 7.
 */
import type { Redis, Result } from 'ioredis';

type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS tenant, by-api-key, by-secret; ARGV tenant id, then field/value pairs. 1 created, 0 taken. */
    sbCreateTenant(...args: Arg[]): Result<number, Context>;
    /**
     * KEYS tenant, by-api-key, by-secret (the declared ones), by-api-key, by-secret (of the stored
     * record as the caller read it; the declared ones when it read none); ARGV tenant id, the
     * stored api_key and api_secret_sha256 as read (JSON texts, "" for none), the count of
     * declared field/value arguments, the declared pairs, then the pairs set only on create.
     * ["created"], ["updated", the hash's name/value pairs before the update], ["conflict"], or
     * ["stale"] when the stored credentials are no longer those read (nothing changed).
     */
    sbUpsertTenant(...args: Arg[]): Result<string[], Context>;
    /** KEYS hash; ARGV field/value pairs. The whole hash after the update, or null when it does not exist. */
    sbUpdateHash(...args: Arg[]): Result<string[] | null, Context>;
    /** KEYS room, room ids; ARGV room id, then field/value pairs. 1 created, 0 taken. */
    sbCreateRoom(...args: Arg[]): Result<number, Context>;
    /** KEYS token; ARGV purge at (ms), then field/value pairs. 1 recorded, 0 taken. */
    sbRecordToken(...args: Arg[]): Result<number, Context>;
    /** KEYS token; ARGV purge at (ms), revoked_at, then field/value pairs of a new record. */
    sbRevokeToken(...args: Arg[]): Result<number, Context>;
    /** KEYS locator, session, tenant list, room list, tenant open, tenant closed, all open, node open; ARGV locator, member, session id, last_seen_at, disconnected_at or "", then field/value pairs. 1 opened, 0 taken. */
    sbOpenSession(...args: Arg[]): Result<number, Context>;
    /** KEYS session; ARGV mode (JSON), segment (JSON). 1 changed, 0 not. */
    sbChangeMode(...args: Arg[]): Result<number, Context>;
    /** KEYS session, tenant open, tenant closed, all open, node open; ARGV at (ms, or "" for its last_seen_at), reason (JSON), member, session id. 1 closed, 0 not. */
    sbCloseSession(...args: Arg[]): Result<number, Context>;
    /** KEYS session, tenant open, all open; ARGV at (ms), member, session id. 1 touched, 0 not open. */
    sbTouchSession(...args: Arg[]): Result<number, Context>;
  }
}

/** The JSON text a hash field holds for null. */
const NULL = "'null'";

const SCRIPTS = {
  sbCreateTenant: {
    numberOfKeys: 3,
    lua: `
      if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then return 0 end
      redis.call('HSET', KEYS[1], unpack(ARGV, 2))
      redis.call('SET', KEYS[2], ARGV[1])
      redis.call('SET', KEYS[3], ARGV[1])
      return 1`,
  },
  // The old lookups are named by the caller (a script touches only its KEYS), so the script
  // first checks that the record still holds the credentials they were derived from. A lookup
  // held by another tenant refuses the whole upsert before anything is written.
  sbUpsertTenant: {
    numberOfKeys: 5,
    lua: `
      local stored = redis.call('HMGET', KEYS[1], 'api_key', 'api_secret_sha256')
      if (stored[1] or '') ~= ARGV[2] or (stored[2] or '') ~= ARGV[3] then return {'stale'} end
      for i = 2, 3 do
        local owner = redis.call('GET', KEYS[i])
        if owner and owner ~= ARGV[1] then return {'conflict'} end
      end
      if not stored[1] then
        redis.call('HSET', KEYS[1], unpack(ARGV, 5))
        redis.call('SET', KEYS[2], ARGV[1])
        redis.call('SET', KEYS[3], ARGV[1])
        return {'created'}
      end
      local before = redis.call('HGETALL', KEYS[1])
      redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + tonumber(ARGV[4])))
      redis.call('DEL', KEYS[4], KEYS[5])
      redis.call('SET', KEYS[2], ARGV[1])
      redis.call('SET', KEYS[3], ARGV[1])
      return {'updated', unpack(before)}`,
  },
  sbUpdateHash: {
    numberOfKeys: 1,
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 0 then return false end
      if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
      return redis.call('HGETALL', KEYS[1])`,
  },
  sbCreateRoom: {
    numberOfKeys: 2,
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
      redis.call('HSET', KEYS[1], unpack(ARGV, 2))
      redis.call('ZADD', KEYS[2], 0, ARGV[1])
      return 1`,
  },
  // A purge time already past deletes the record at once: such a token no longer verifies.
  sbRecordToken: {
    numberOfKeys: 1,
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
      redis.call('HSET', KEYS[1], unpack(ARGV, 2))
      redis.call('PEXPIREAT', KEYS[1], ARGV[1])
      return 1`,
  },
  // An existing record keeps its first revoked_at, and lives at least until this purge time (GT).
  sbRevokeToken: {
    numberOfKeys: 1,
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 0 then
        redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2], unpack(ARGV, 3))
        redis.call('PEXPIREAT', KEYS[1], ARGV[1])
      else
        redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[2])
        redis.call('PEXPIREAT', KEYS[1], ARGV[1], 'GT')
      end
      return 1`,
  },
  sbOpenSession: {
    numberOfKeys: 8,
    lua: `
      if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
      redis.call('SET', KEYS[1], ARGV[1])
      redis.call('HSET', KEYS[2], unpack(ARGV, 6))
      redis.call('ZADD', KEYS[3], 0, ARGV[2])
      redis.call('ZADD', KEYS[4], 0, ARGV[2])
      if ARGV[5] == '' then
        redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
        redis.call('ZADD', KEYS[7], ARGV[4], ARGV[3])
        redis.call('SADD', KEYS[8], ARGV[3])
      else
        redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
      end
      return 1`,
  },
  // Only a connected session not already in this mode changes; the open segment ends where the
  // appended one starts (segments' "to" is derived on read).
  sbChangeMode: {
    numberOfKeys: 1,
    lua: `
      if redis.call('HGET', KEYS[1], 'disconnected_at') ~= ${NULL} then return 0 end
      if redis.call('HGET', KEYS[1], 'current_mode') == ARGV[1] then return 0 end
      local segments = redis.call('HGET', KEYS[1], 'segments')
      if segments == '[]' then
        segments = '[' .. ARGV[2] .. ']'
      else
        segments = string.sub(segments, 1, -2) .. ',' .. ARGV[2] .. ']'
      end
      redis.call('HSET', KEYS[1], 'segments', segments, 'current_mode', ARGV[1])
      return 1`,
  },
  // Only the first close counts. The session leaves the open indexes and enters the closed one.
  sbCloseSession: {
    numberOfKeys: 5,
    lua: `
      if redis.call('HGET', KEYS[1], 'disconnected_at') ~= ${NULL} then return 0 end
      local at = ARGV[1]
      if at == '' then at = redis.call('HGET', KEYS[1], 'last_seen_at') end
      redis.call('HSET', KEYS[1], 'disconnected_at', at, 'disconnect_reason', ARGV[2], 'current_mode', ${NULL})
      redis.call('ZREM', KEYS[2], ARGV[3])
      redis.call('ZADD', KEYS[3], at, ARGV[3])
      redis.call('ZREM', KEYS[4], ARGV[4])
      redis.call('SREM', KEYS[5], ARGV[4])
      return 1`,
  },
  sbTouchSession: {
    numberOfKeys: 3,
    lua: `
      if redis.call('HGET', KEYS[1], 'disconnected_at') ~= ${NULL} then return 0 end
      redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1])
      redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[2])
      redis.call('ZADD', KEYS[3], 'XX', ARGV[1], ARGV[3])
      return 1`,
  },
} as const;

/** Declares the scripts on a client (EVALSHA, loading a script again when Redis lost it). */
export function defineScripts(redis: Redis): void {
  for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys, lua });
}

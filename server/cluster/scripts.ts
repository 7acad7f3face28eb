/**
 * The cluster's Lua scripts. Redis runs each one atomically, so every check-then-write on the
 * registry and the leases below sees and changes one consistent state.
 *
 * Time inside scripts is Redis' own clock (TIME), never a node's, so expiries written by
 * different nodes compare correctly whatever the nodes' clock skew.
 *
 * Fencing counters (cluster:epoch:<room>) start at Redis' time in ms when they are created,
 * then only grow. A counter lost with Redis' data (a restart without persistence) or expired
 * therefore starts again above every epoch handed out before it (as long as a room changes
 * owner less than once per millisecond on average and Redis' clock does not go back).
 *
 * Some scripts derive a node's registry key from a lease's owner (ARGV carries the key
 * prefix), so they need a standalone Redis (or a Sentinel-managed primary), not Redis Cluster:
 * the same restriction as the Redis store's.
 */
import type { Redis, Result } from 'ioredis';

type Arg = string | number;

/** A script's reply: Lua tables become arrays, numbers integers, strings strings, false null. */
export type ScriptReply = (string | number | null | ScriptReply)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** KEYS node entry, nodes index; ARGV node id, entry JSON, TTL (ms). Writes the entry and its expiry; prunes the index. */
    sbcBeat(...args: Arg[]): Result<number, Context>;
    /** KEYS nodes index; ARGV node key prefix. The JSON entries of live nodes; prunes the index. */
    sbcLiveNodes(...args: Arg[]): Result<string[], Context>;
    /** KEYS lease, counter; ARGV node id, lease TTL, node key prefix, counter TTL. {-1} unregistered, {1, owner, epoch} ours, {0, owner, epoch, entry} another live node's. */
    sbcClaim(...args: Arg[]): Result<ScriptReply, Context>;
    /** numkeys, KEYS own entry, nodes index, then (lease, counter) per room; ARGV node id, lease TTL, counter TTL, own entry JSON or "", entry TTL, then each room's epoch. Per room: status, value. */
    sbcRenew(...args: Arg[]): Result<ScriptReply, Context>;
    /** KEYS lease; ARGV "<node>:<epoch>". 1 deleted, 0 not ours. */
    sbcRelease(...args: Arg[]): Result<number, Context>;
    /** KEYS lease, counter; ARGV "<node>:<epoch>", epoch, target node id, lease TTL, node key prefix, counter TTL. {1, epoch}, {0} not ours, {-1} target not live, {-2} target not serving. */
    sbcHandOver(...args: Arg[]): Result<ScriptReply, Context>;
    /** KEYS lease; ARGV node key prefix. {} no lease, else {lease value, owner's entry JSON or null}. */
    sbcOwner(...args: Arg[]): Result<ScriptReply, Context>;
  }
}

/** Helpers every script may use (Redis 7 runs Lua 5.1; integers are written with %d, never as floats). */
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
-- "<node>:<epoch>" -> node, epoch (nil, nil when malformed)
local function split(value)
  local node, epoch = string.match(value, '^(.+):(%d+)$')
  return node, tonumber(epoch)
end
-- The counter becomes at least floor, and lives for ttl ms more.
local function keep_counter_at_least(key, floor, ttl)
  local counter = tonumber(redis.call('GET', key))
  if counter == nil or counter < floor then
    redis.call('SET', key, int(floor), 'PX', ttl)
  else
    redis.call('PEXPIRE', key, ttl)
  end
end
-- The next epoch of a room: above the counter (seeded from Redis' time when missing) and above floor.
local function next_epoch(key, floor, ttl)
  local counter = tonumber(redis.call('GET', key))
  if counter == nil then counter = now_ms() end
  if counter < floor then counter = floor end
  counter = counter + 1
  redis.call('SET', key, int(counter), 'PX', ttl)
  return int(counter)
end
`;

const SCRIPTS = {
  sbcBeat: {
    numberOfKeys: 2,
    lua: `
      local now = now_ms()
      redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
      redis.call('ZADD', KEYS[2], int(now + tonumber(ARGV[3])), ARGV[1])
      redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now))
      return 1`,
  },
  sbcLiveNodes: {
    numberOfKeys: 1,
    lua: `
      redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now_ms()))
      local entries = {}
      for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
        local entry = redis.call('GET', ARGV[1] .. id)
        if entry then entries[#entries + 1] = entry end
      end
      return entries`,
  },
  // Ours when: no lease, a malformed one, one whose owner has no registry entry (dead: taken
  // over at once, without waiting for the lease's TTL), or one already ours (same epoch).
  // A node claims only while its own registry entry exists, so nobody takes it for dead.
  sbcClaim: {
    numberOfKeys: 2,
    lua: `
      if redis.call('EXISTS', ARGV[3] .. ARGV[1]) == 0 then return {-1} end
      local floor = 0
      local current = redis.call('GET', KEYS[1])
      if current then
        local owner, epoch = split(current)
        if owner == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          keep_counter_at_least(KEYS[2], epoch, ARGV[4])
          return {1, owner, int(epoch)}
        end
        if owner then
          local entry = redis.call('GET', ARGV[3] .. owner)
          if entry then return {0, owner, int(epoch), entry} end
          floor = epoch
        end
      end
      local epoch = next_epoch(KEYS[2], floor, ARGV[4])
      redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
      return {1, ARGV[1], epoch}`,
  },
  // Per room, status then value:
  //   1, epoch  renewed (the lease names this node; its epoch is the value)
  //   2, epoch  re-asserted: the lease was missing and the counter was not above our epoch
  //   0, owner  lost: another node holds it ("" when it is missing but a higher epoch was handed out)
  // A re-assertion also writes this node's registry entry when it is missing (Redis came back
  // empty), so no other node takes a re-asserted lease's owner for dead.
  sbcRenew: {
    lua: `
      local out = {}
      local reasserted = false
      for i = 1, (#KEYS - 2) / 2 do
        local lease, counter_key = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
        local epoch = tonumber(ARGV[5 + i])
        local current = redis.call('GET', lease)
        if current then
          local owner, held = split(current)
          if owner == ARGV[1] then
            redis.call('PEXPIRE', lease, ARGV[2])
            keep_counter_at_least(counter_key, held, ARGV[3])
            out[#out + 1] = 1
            out[#out + 1] = int(held)
          else
            out[#out + 1] = 0
            out[#out + 1] = owner or ''
          end
        else
          local counter = tonumber(redis.call('GET', counter_key))
          if counter ~= nil and counter > epoch then
            out[#out + 1] = 0
            out[#out + 1] = ''
          else
            redis.call('SET', lease, ARGV[1] .. ':' .. int(epoch), 'PX', ARGV[2])
            redis.call('SET', counter_key, int(epoch), 'PX', ARGV[3])
            reasserted = true
            out[#out + 1] = 2
            out[#out + 1] = int(epoch)
          end
        end
      end
      if reasserted and ARGV[4] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then
        redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
        redis.call('ZADD', KEYS[2], int(now_ms() + tonumber(ARGV[5])), ARGV[1])
      end
      return out`,
  },
  sbcRelease: {
    numberOfKeys: 1,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
      redis.call('DEL', KEYS[1])
      return 1`,
  },
  sbcHandOver: {
    numberOfKeys: 2,
    lua: `
      if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
      local entry = redis.call('GET', ARGV[5] .. ARGV[3])
      if not entry then return {-1} end
      local ok, node = pcall(cjson.decode, entry)
      if not ok or type(node) ~= 'table' or node.state ~= 'serving' then return {-2} end
      local epoch = next_epoch(KEYS[2], tonumber(ARGV[2]), ARGV[6])
      redis.call('SET', KEYS[1], ARGV[3] .. ':' .. epoch, 'PX', ARGV[4])
      return {1, epoch}`,
  },
  sbcOwner: {
    numberOfKeys: 1,
    lua: `
      local current = redis.call('GET', KEYS[1])
      if not current then return {} end
      local owner = split(current)
      local entry = false
      if owner then entry = redis.call('GET', ARGV[1] .. owner) end
      return {current, entry}`,
  },
} as const;

const defined = new WeakSet<Redis>();

/** Declares the cluster's scripts on a client once (EVALSHA, loading a script again when Redis lost it, e.g. after a restart). */
export function defineClusterScripts(redis: Redis): void {
  if (defined.has(redis)) return;
  defined.add(redis);
  for (const [name, script] of Object.entries(SCRIPTS)) {
    const numberOfKeys = 'numberOfKeys' in script ? script.numberOfKeys : undefined;
    redis.defineCommand(name, { lua: PRELUDE + script.lua, ...(numberOfKeys === undefined ? {} : { numberOfKeys }) });
  }
}

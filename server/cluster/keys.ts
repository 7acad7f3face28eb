/**
 * The cluster's key layout in Redis. Every key starts with the prefix ("sb:" by default, the
 * Redis store's too) followed by "cluster:", a segment the store never uses (its keys start
 * with t:, tenant-key:, tenant-secret:, session:, sessions:open or node:; see
 * server/store/redisKeys.ts), so cluster keys and store keys never collide.
 *
 *   cluster:node:<N>             string  node N's registry entry (JSON NodeInfo); PX = the registry TTL
 *   cluster:nodes                zset    node ids scored by their entry's expiry (Redis server ms); an index, pruned on read
 *   cluster:lease:<room key>     string  "<owner node id>:<epoch>"; PX = the lease TTL
 *   cluster:epoch:<room key>     string  the room's fencing counter (INCR); outlives its lease (PX = 2 x the lease TTL)
 *   cluster:room:<room key>      string  the owner's snapshot of a live room (JSON: settings, mode, participants), for
 *                                        the node that takes the room over when its owner dies; PX = the snapshot TTL
 *   cluster:bus:<N>              channel pub/sub messages (requests and replies) addressed to node N
 *
 * Invariants: a node id matches NODE_ID_PATTERN (no ":" and no "%", so "<node>:<epoch>" splits
 * at its last ":" and a node id is its own key segment); a room key is
 * `encodeURIComponent(tenant):encodeURIComponent(room)`, so two different (tenant, room) pairs
 * never share a key and a key never spans two tenants.
 */

/** Node ids: short, printable, and safe inside key names and "<node>:<epoch>" lease values. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** The default prefix of every key (the Redis store's default too; the "cluster:" segment keeps them apart). */
export const DEFAULT_CLUSTER_PREFIX = 'sb:';

/** A room's cluster-wide name: its tenant and id, percent-encoded, joined by ":". Build it with roomKey(). */
export type RoomKey = string & { readonly __roomKey: unique symbol };

/** Throws when `id` cannot be a node id. */
export function assertNodeId(id: string): string {
  if (!NODE_ID_PATTERN.test(id)) throw new Error(`node id must match ${NODE_ID_PATTERN.source}, got ${JSON.stringify(id)}`);
  return id;
}

function part(id: string): string {
  if (typeof id !== 'string' || id.length === 0) throw new Error('tenant and room ids must be non-empty strings');
  // encodeURIComponent throws on a lone surrogate: such an id has no key.
  return encodeURIComponent(id);
}

/** The tenant-scoped key of a room. */
export function roomKey(tenantId: string, roomId: string): RoomKey {
  return `${part(tenantId)}:${part(roomId)}` as RoomKey;
}

/** The tenant and room a key names (the inverse of roomKey). */
export function parseRoomKey(key: RoomKey): { tenantId: string; roomId: string } {
  const [tenant, room, ...rest] = key.split(':');
  if (tenant === undefined || room === undefined || rest.length > 0) throw new Error(`not a room key: ${JSON.stringify(key)}`);
  return { tenantId: decodeURIComponent(tenant), roomId: decodeURIComponent(room) };
}

/** The names of the cluster's keys and channels under one prefix. */
export class ClusterKeys {
  /** Every cluster key starts with this. */
  readonly space: string;

  constructor(readonly prefix: string = DEFAULT_CLUSTER_PREFIX) {
    this.space = `${prefix}cluster:`;
  }

  /** The registry entry of a node is this followed by the node id (scripts build it from a lease's owner). */
  get nodePrefix(): string {
    return `${this.space}node:`;
  }

  node(nodeId: string): string {
    return `${this.nodePrefix}${assertNodeId(nodeId)}`;
  }

  nodes(): string {
    return `${this.space}nodes`;
  }

  lease(key: RoomKey): string {
    return `${this.space}lease:${key}`;
  }

  epoch(key: RoomKey): string {
    return `${this.space}epoch:${key}`;
  }

  roomSnapshot(key: RoomKey): string {
    return `${this.space}room:${key}`;
  }

  busChannel(nodeId: string): string {
    return `${this.space}bus:${assertNodeId(nodeId)}`;
  }
}

import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { Config } from '../../config/index.js';
import type { VerifiedToken } from '../../server/auth/TokenService.js';
import { roomKey } from '../../server/cluster/keys.js';
import { ClusterLiveRooms, type LiveRoomKinds } from '../../server/cluster/LiveRooms.js';
import type { Peer } from '../../server/rooms/Peer.js';
import type { Room } from '../../server/rooms/Room.js';
import { RoomManager } from '../../server/rooms/RoomManager.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import type { TenantRecord } from '../../server/store/Store.js';
import { holdNextCall } from '../helpers/heldCall.js';
import { capturedLogger } from '../helpers/logs.js';
import { startRedisOrSkip, type RedisServer } from '../helpers/redis.js';
import { delay, freshPrefix, rejection, startBus, startNode, waitUntil, type TestBus, type TestNode } from './nodes.js';

/** Another subsystem's requests on the same bus: ClusterLiveRooms takes a bus of more kinds than its own. */
type OtherKinds = { 'other.ping': { payload: { n: number }; answer: number } };
type Kinds = LiveRoomKinds & OtherKinds;
/** Whatever a misbehaving or forged sender may put on the wire. */
type AnyKinds = Record<string, { payload: unknown; answer: unknown }>;

const TIMEOUT_MS = 400;

const defaults: Config['rooms'] = {
  meshThreshold: 4,
  demoteDelayMs: 10_000,
  maxParticipants: 100,
  maxScreenShares: 1,
  emptyTimeoutMs: 20_000,
  resumeGraceMs: 15_000,
};

const tenant: TenantRecord = {
  tenant_id: 'tn_live',
  name: 'live',
  api_key: 'key',
  api_secret_sha256: 'sha',
  limits: { max_rooms: 100, max_participants: 50, mesh_threshold: 4, max_token_lifetime_s: 3600, auto_create_rooms: true },
  webhook: null,
  created_at: new Date(),
};

/** What a handshake verified for a user of a room. */
function identityOf(roomId: string, userId: string, hidden = false): VerifiedToken {
  return {
    jti: `jti-${roomId}-${userId}`,
    tenantId: tenant.tenant_id,
    roomId,
    userId,
    name: `Name ${userId}`,
    grants: {
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canPublishData: true,
      roomAdmin: false,
      hidden,
      canUpdateOwnMetadata: true,
    },
    metadata: { user: userId },
    issuedAt: new Date(),
    expiresAt: new Date(Date.now() + 3_600_000),
  };
}

interface LiveNode {
  id: string;
  node: TestNode;
  bus: TestBus<Kinds>;
  rooms: RoomManager;
  live: ClusterLiveRooms;
  /** Every disconnectToken(tenant, jti) this node ran. */
  disconnected: string[];
  /** Every peer_left this node's rooms emitted: "<room>/<user>:<reason>:<exit>". */
  left: string[];
  updated: string[];
  close(): Promise<void>;
}

describe('cluster: LiveRooms across nodes', function () {
  let server: RedisServer;
  let raw: Redis;
  let prefix: string;
  let store: MemoryStore;
  let started: { close(): Promise<void> }[] = [];
  const { logger } = capturedLogger('warn');

  before(async function () {
    server = await startRedisOrSkip(this);
    raw = new Redis(server.url);
  });

  after(async function () {
    raw?.disconnect();
    await server?.stop();
  });

  beforeEach(function () {
    prefix = freshPrefix();
    store = new MemoryStore();
  });

  afterEach(async function () {
    for (const item of started.reverse()) await item.close();
    started = [];
  });

  /** A node: registry, leases, bus, a RoomManager on the shared store, and its ClusterLiveRooms (started). */
  async function startLiveNode(id: string): Promise<LiveNode> {
    const node = await startNode(server.url, id, { prefix, logger });
    const bus = await startBus<Kinds>(server.url, id, prefix, { logger });
    const rooms = new RoomManager({ store, defaults, logger });
    const disconnected: string[] = [];
    const left: string[] = [];
    const updated: string[] = [];
    rooms.on('peer_left', (room, peer, reason, exit) => left.push(`${room.id}/${peer.userId}:${reason}:${exit}`));
    rooms.on('room_updated', (room) => updated.push(`${room.id}:${JSON.stringify(room.config)}`));
    const live = new ClusterLiveRooms({
      rooms,
      store,
      disconnectToken: (tenantId, jti) => disconnected.push(`${tenantId}/${jti}`),
      nodeId: id,
      leases: node.leases,
      bus: bus.bus,
      redis: node.redis,
      prefix,
      timeoutMs: TIMEOUT_MS,
      logger,
    });
    live.start();
    const liveNode: LiveNode = {
      id,
      node,
      bus,
      rooms,
      live,
      disconnected,
      left,
      updated,
      close: async () => {
        live.stop();
        rooms.closeAll('shutdown');
        await bus.close();
        await node.close();
      },
    };
    started.push(liveNode);
    return liveNode;
  }

  /** Claims the room's lease on `owner` and joins the users there (the model: every socket of a room is on its owner). */
  async function joinOn(owner: LiveNode, roomId: string, users: string[], hidden: string[] = []): Promise<Room> {
    const claim = await owner.node.leases.claim(roomKey(tenant.tenant_id, roomId));
    expect(claim.mine, `${owner.id} owns ${roomId}`).to.equal(true);
    let room: Room | undefined;
    for (const userId of [...users, ...hidden]) {
      const identity = identityOf(roomId, userId, hidden.includes(userId));
      const admitted = await owner.rooms.admit({
        connection: { handshake: { address: '127.0.0.1' }, data: { identity } },
        identity,
        tenant,
        metadata: undefined,
        confirm: () => undefined,
      });
      room = admitted.room;
    }
    if (!room) throw new Error('no users');
    return room;
  }

  const peerOf = (room: Room, userId: string): Peer => {
    const peer = room.peerByUser(userId);
    if (!peer) throw new Error(`${userId} is not in ${room.id}`);
    return peer;
  };

  it('get, participants and summaries asked on B come from the owner A, equal to what A shows itself', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const room = await joinOn(a, 'r1', ['alice', 'bob'], ['recorder']);
    room.mode = 'sfu';

    const onA = await a.live.get(tenant.tenant_id, 'r1');
    const onB = await b.live.get(tenant.tenant_id, 'r1');
    expect(onB).to.deep.equal(onA);
    expect(onB?.mode).to.equal('sfu');
    expect(onB?.num_participants).to.equal(3);
    expect(onB?.participants.map((p) => [p.user_id, p.hidden])).to.deep.equal([
      ['alice', false],
      ['bob', false],
      ['recorder', true],
    ]);
    expect(onB?.participants[0]).to.include({ id: peerOf(room, 'alice').id, name: 'Name alice' });
    expect(onB?.participants[0]?.metadata).to.deep.equal({ user: 'alice' });
    // B has no live room of its own: the answer came through the bus.
    expect(b.rooms.get(tenant.tenant_id, 'r1')).to.equal(undefined);

    const summaries = await b.live.summaries(tenant.tenant_id, ['r1', 'nowhere']);
    expect([...summaries.keys()]).to.deep.equal(['r1']);
    expect(summaries.get('r1')).to.deep.include({ room_id: 'r1', mode: 'sfu', num_participants: 3 });

    // A room that is live nowhere (no lease) is not live on any node; its owner's own answer is local.
    expect(await b.live.get(tenant.tenant_id, 'nowhere')).to.equal(null);
    expect(await a.live.get(tenant.tenant_id, 'r1')).to.not.equal(null);
  });

  it('kick issued on B runs on A: token revoked, peer kicked there, its sockets disconnected by A; errors keep their codes', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const room = await joinOn(a, 'r1', ['alice', 'bob']);
    const bob = peerOf(room, 'bob');

    await b.live.kick(tenant.tenant_id, 'r1', 'bob');
    expect(room.peerByUser('bob')).to.equal(undefined);
    expect(a.left).to.deep.equal(['r1/bob:kicked:kicked']);
    expect(a.disconnected).to.deep.equal([`${tenant.tenant_id}/${bob.jti}`]);
    expect(b.disconnected).to.deep.equal([]);
    expect(await store.tokens.isRevoked(tenant.tenant_id, bob.jti)).to.equal(true);

    expect((await rejection(b.live.kick(tenant.tenant_id, 'r1', 'bob'))).code).to.equal('peer_not_found');
    expect((await rejection(b.live.kick(tenant.tenant_id, 'nowhere', 'bob'))).code).to.equal('peer_not_found');
  });

  it('a stored room change applied on B updates the live room on A (room_updated there) and answers with A’s room', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const room = await joinOn(a, 'r1', ['alice']);

    const after = await b.live.apply(tenant.tenant_id, 'r1', { config: { locked: true, max_participants: 7 } });
    expect(room.config).to.include({ locked: true, max_participants: 7, mesh_threshold: 4, mode_policy: 'auto' });
    expect(a.updated).to.have.length(1);
    expect(after?.config).to.deep.equal(room.config);
    expect(after?.participants.map((p) => p.user_id)).to.deep.equal(['alice']);

    // Nothing really changed: no room_updated.
    await b.live.apply(tenant.tenant_id, 'r1', { config: { locked: true } });
    expect(a.updated).to.have.length(1);

    // The expiry travels too: A closes its room when it comes.
    const finished = new Promise<string>((resolve) => a.rooms.on('room_finished', (_room, reason) => resolve(reason)));
    await b.live.apply(tenant.tenant_id, 'r1', { config: {}, expiresAt: new Date(Date.now() + 300) });
    expect(await finished).to.equal('expired');
    expect(a.rooms.get(tenant.tenant_id, 'r1')).to.equal(undefined);

    expect(await b.live.apply(tenant.tenant_id, 'nowhere', { config: { locked: true } })).to.equal(null);
  });

  it('close issued on B closes the room on A; a join on A that read the record before then reads it again', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const room = await joinOn(a, 'r1', ['alice']);
    const reasons: string[] = [];
    a.rooms.on('room_finished', (_room, reason) => reasons.push(reason));

    expect(await b.live.close(tenant.tenant_id, 'r1', 'deleted')).to.equal(true);
    expect(room.closed).to.equal(true);
    expect(reasons).to.deep.equal(['deleted']);
    expect(a.left).to.deep.equal(['r1/alice:deleted:room_closed']);
    expect(await b.live.close(tenant.tenant_id, 'r1', 'deleted')).to.equal(false);

    // A stored room, deleted on B while a join on A has read it: the join reads again and finds nothing.
    await store.rooms.create({
      tenant_id: tenant.tenant_id,
      room_id: 'stored',
      name: 'stored',
      description: '',
      max_participants: null,
      mesh_threshold: null,
      max_screen_shares: null,
      mode: 'auto',
      locked: false,
      metadata: {},
      expires_at: null,
      created_at: new Date(),
      updated_at: new Date(),
    });
    const strict = { ...tenant, limits: { ...tenant.limits, auto_create_rooms: false } };
    await a.node.leases.claim(roomKey(tenant.tenant_id, 'stored'));
    const held = holdNextCall(store.rooms, 'get', (_tenantId, roomId) => roomId === 'stored', true);
    const identity = identityOf('stored', 'late');
    const join = a.rooms.admit({
      connection: { handshake: { address: '127.0.0.1' }, data: { identity } },
      identity,
      tenant: strict,
      metadata: undefined,
      confirm: () => undefined,
    });
    await held.reached;
    expect(await store.rooms.delete(tenant.tenant_id, 'stored')).to.equal(true);
    expect(await b.live.close(tenant.tenant_id, 'stored', 'deleted')).to.equal(false);
    held.release();
    expect((await rejection(join)).code).to.equal('room_not_found');
    expect(a.rooms.get(tenant.tenant_id, 'stored')).to.equal(undefined);
  });

  it('the owner does not answer in time (alive in the registry, stuck) -> unavailable within the timeout; owner not listening -> unavailable at once', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    await joinOn(a, 'r1', ['alice']);
    // A's store write never completes: its kick handler hangs.
    const held = holdNextCall(store.tokens, 'revoke');
    const began = Date.now();
    const error = await rejection(b.live.kick(tenant.tenant_id, 'r1', 'alice'));
    const took = Date.now() - began;
    expect(error.code).to.equal('unavailable');
    expect(took).to.be.within(TIMEOUT_MS - 20, TIMEOUT_MS + 400);
    held.release();

    // A's bus is gone while its registry entry and lease still stand.
    await a.bus.bus.close();
    const quick = Date.now();
    expect((await rejection(b.live.get(tenant.tenant_id, 'r1'))).code).to.equal('unavailable');
    expect(Date.now() - quick).to.be.below(TIMEOUT_MS);
    expect(b.bus.bus.pendingCount).to.equal(0);
  });

  it('an owner that died (no registry entry) owns nothing: the room is not live; get, close and kick answer as for any room not live', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    await joinOn(a, 'r1', ['alice']);
    // A stops without releasing its lease: the lease stands until its TTL, its holder is dead.
    a.live.stop();
    await a.bus.bus.close();
    await a.node.registry.stop();
    const lease = await b.node.leases.owner(roomKey(tenant.tenant_id, 'r1'));
    expect(lease?.owner).to.equal('node-a');
    expect(lease?.node).to.equal(null);

    expect(await b.live.get(tenant.tenant_id, 'r1')).to.equal(null);
    expect(await b.live.close(tenant.tenant_id, 'r1', 'deleted')).to.equal(false);
    expect((await rejection(b.live.kick(tenant.tenant_id, 'r1', 'alice'))).code).to.equal('peer_not_found');
    expect((await b.live.summaries(tenant.tenant_id, ['r1'])).size).to.equal(0);
  });

  it('malformed or forged payloads are refused with payload_invalid, and a malformed answer is internal', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const room = await joinOn(a, 'r1', ['alice']);
    const forger = await startBus<AnyKinds>(server.url, 'node-x', prefix, { logger });
    started.push(forger);
    const send = (kind: string, payload: unknown) => rejection(forger.bus.request('node-a', kind, payload, { timeoutMs: 2_000 }));

    for (const [kind, payload] of [
      ['live-rooms.kick', { tenant_id: tenant.tenant_id, room_id: 'r1' }],
      ['live-rooms.kick', { tenant_id: tenant.tenant_id, room_id: 'r1', user_id: 'alice', extra: 1 }],
      ['live-rooms.kick', { tenant_id: tenant.tenant_id, room_id: 5, user_id: 'alice' }],
      ['live-rooms.get', 'r1'],
      ['live-rooms.get', null],
      ['live-rooms.close', { tenant_id: tenant.tenant_id, room_id: 'r1', reason: '' }],
      ['live-rooms.apply', { tenant_id: tenant.tenant_id, room_id: 'r1', config: { locked: 'yes' } }],
      ['live-rooms.apply', { tenant_id: tenant.tenant_id, room_id: 'r1', config: { $set: { locked: true } } }],
      ['live-rooms.apply', { tenant_id: tenant.tenant_id, room_id: 'r1', config: {}, expires_at: 'tomorrow' }],
      ['live-rooms.summaries', { tenant_id: tenant.tenant_id, room_ids: Array.from({ length: 1001 }, (_, i) => `r${i}`) }],
      ['live-rooms.summaries', { tenant_id: 'x'.repeat(1000), room_ids: [] }],
    ] as const) {
      expect((await send(kind, payload)).code, `${kind} ${JSON.stringify(payload).slice(0, 80)}`).to.equal('payload_invalid');
    }
    // Nothing of it reached the room.
    expect(room.peerByUser('alice')).to.not.equal(undefined);
    expect(room.closed).to.equal(false);
    expect(room.config.locked).to.equal(false);
    expect(a.disconnected).to.deep.equal([]);

    // A well-formed request from the same sender works.
    const answer = (await forger.bus.request('node-a', 'live-rooms.get', { tenant_id: tenant.tenant_id, room_id: 'r1' })) as {
      room_id: string;
    };
    expect(answer.room_id).to.equal('r1');

    // An owner answering garbage: the requester refuses the answer.
    a.bus.bus.handle('live-rooms.get', () => ({ room_id: 'r1' }) as never);
    expect((await rejection(b.live.get(tenant.tenant_id, 'r1'))).code).to.equal('internal');
  });

  it('lists a tenant’s live rooms across nodes from the owners’ tenant sets, one request per owner; rooms without a lease are pruned', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    const c = await startLiveNode('node-c');
    await joinOn(a, 'a1', ['u1']);
    await joinOn(a, 'a2', ['u1', 'u2']);
    await joinOn(c, 'c1', ['u1']);
    await joinOn(b, 'b1', ['u1']);
    const setKey = b.live.tenantSetKey(tenant.tenant_id);
    await waitUntil(async () => (await raw.zcard(setKey)) === 4, 'every owner listed its rooms');

    let requests = 0;
    for (const node of [a, c]) {
      const inner = node.live.local;
      node.bus.bus.handle(
        'live-rooms.summaries',
        async (p) => {
          requests++;
          return [...(await inner.summaries(p.tenant_id, p.room_ids)).values()];
        },
        { parse: (rawPayload) => rawPayload as LiveRoomKinds['live-rooms.summaries']['payload'] },
      );
    }
    // A listed id whose room is live nowhere (its owner died and its lease expired).
    await raw.zadd(setKey, 0, 'ghost');
    const ids = await b.live.roomIds(tenant.tenant_id);
    expect(ids).to.deep.equal(['a1', 'a2', 'b1', 'c1', 'ghost']);
    const summaries = await b.live.summaries(tenant.tenant_id, ids);
    expect([...summaries.keys()].sort()).to.deep.equal(['a1', 'a2', 'b1', 'c1']);
    expect(summaries.get('a2')?.num_participants).to.equal(2);
    expect(requests, 'one request to A and one to C').to.equal(2);
    await waitUntil(async () => (await raw.zscore(setKey, 'ghost')) === null, 'the ghost to be pruned');

    // A room that closes leaves the set; the other tenant's set is another key.
    a.rooms.close(a.rooms.get(tenant.tenant_id, 'a1') as Room, 'empty');
    await waitUntil(async () => (await raw.zscore(setKey, 'a1')) === null, 'a1 to leave the set');
    expect(await b.live.roomIds('tn_other')).to.deep.equal([]);
  });

  it('a room moved to another node stays listed when its old owner closes it; resync restores a lost set', async function () {
    const a = await startLiveNode('node-a');
    const b = await startLiveNode('node-b');
    await joinOn(a, 'm1', ['u1']);
    const setKey = a.live.tenantSetKey(tenant.tenant_id);
    await waitUntil(async () => (await raw.zscore(setKey, 'm1')) !== null, 'm1 listed');

    // Hand-over to B (drain); B runs the room, A drops its copy (and a copy that closed would be the same).
    await a.node.leases.handOver(roomKey(tenant.tenant_id, 'm1'), 'node-b');
    await joinOn(b, 'm1', ['u1']);
    a.rooms.drop(a.rooms.get(tenant.tenant_id, 'm1') as Room, 'moved');
    await delay(100);
    expect(await raw.zscore(setKey, 'm1')).to.not.equal(null);
    expect((await a.live.get(tenant.tenant_id, 'm1'))?.participants.map((p) => p.user_id)).to.deep.equal(['u1']);

    // A room dropped while no node holds its lease leaves the set at once.
    await joinOn(a, 'd1', ['u1']);
    await waitUntil(async () => (await raw.zscore(setKey, 'd1')) !== null, 'd1 listed');
    await a.node.leases.release(roomKey(tenant.tenant_id, 'd1'));
    a.rooms.drop(a.rooms.get(tenant.tenant_id, 'd1') as Room, 'lost');
    await waitUntil(async () => (await raw.zscore(setKey, 'd1')) === null, 'd1 to leave the set');

    // Redis lost the set: the owner writes its rooms again.
    await raw.del(setKey);
    await b.live.resync();
    expect(await raw.zrange(setKey, 0, -1)).to.deep.equal(['m1']);
  });
});

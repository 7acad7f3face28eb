/**
 * Issue 17, test 2: six clients join one room at once through three nodes (two per node), with
 * MESH_THRESHOLD=4 and the real mediasoup SFU on every node, 20 times with a fresh room each
 * round. Every round: one lease (one owner) in Redis and in the nodes' held sets, the room and
 * one SFU router on that owner only, every client redirected at most once and ending on the
 * owner, and every client told of the SFU exactly once.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { io as ioClient } from 'socket.io-client';
import type { Grants, ModeChangedMessage } from '../../protocol/events.js';
import { DEFAULT_ROLES, sha256Hex, testConfig } from '../../config/index.js';
import { ClusterKeys, roomKey } from '../../server/cluster/keys.js';
import { createServer, type SwitchboardServer } from '../../server/index.js';
import { Room } from '../../server/rooms/Room.js';
import { FAST_CLUSTER_ENV, type ConnectRefusal } from '../helpers/cluster.js';
import { withFreeSfuPort } from '../helpers/ports.js';
import { startRedisOrSkip, type RedisServer } from '../helpers/redis.js';
import { emitAck, TEST_KID, TEST_SECRET, type TestClient } from '../helpers/server.js';

const NODES = 3;
const CLIENTS = 6;
const ROUNDS = 20;
const THRESHOLD = 4;

interface Node {
  id: string;
  server: SwitchboardServer;
  url: string;
}

interface Joiner {
  client: TestClient;
  /** The node URL the client is connected to. */
  url: string;
  redirected: boolean;
  /** The room's mode in the join ack. */
  ackMode: string;
  modeChanges: ModeChangedMessage[];
}

describe('cluster: six clients join one room at once through three SFU nodes, 20 rounds (issue 17, test 2)', function () {
  this.timeout(180_000);
  let redis: RedisServer | undefined;
  let raw: Redis | undefined;
  const nodes: Node[] = [];
  const clients = new Set<TestClient>();
  const keys = new ClusterKeys();

  before(async function () {
    this.timeout(60_000);
    redis = await startRedisOrSkip(this);
    raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const suffix = randomBytes(3).toString('hex');
    for (let i = 0; i < NODES; i++) {
      const id = `j${i}-${suffix}`;
      const server = await createServer(
        testConfig(
          await withFreeSfuPort({
            SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`,
            ROOM_EMPTY_TIMEOUT_MS: '100',
            REDIS_URL: redis.url,
            ...FAST_CLUSTER_ENV,
            NODE_ID: id,
            MESH_THRESHOLD: String(THRESHOLD),
            // Every handshake of the run comes from 127.0.0.1 and the counter is shared by the nodes.
            RATE_LIMIT_HANDSHAKES_PER_MIN: '100000',
            // Each node its own free SFU_PORT (withFreeSfuPort); TURN stays off (testConfig).
            SFU_ENABLED: 'true',
            SFU_WORKERS: '1',
            SFU_LISTEN_IP: '127.0.0.1',
          }),
        ),
      );
      nodes.push({ id, server, url: server.url });
    }
    const first = nodes[0]!.server;
    // The nodes share the Redis store: one record serves them all.
    await first.store.tenants.create({
      tenant_id: 't1',
      name: 't1',
      api_key: 'key-t1',
      api_secret_sha256: sha256Hex('secret-t1'),
      limits: { ...first.config.defaultTenantLimits },
      webhook: null,
      created_at: new Date(),
    });
  });

  after(async function () {
    this.timeout(30_000);
    for (const client of clients) client.close();
    await Promise.allSettled(nodes.map((node) => node.server.close()));
    raw?.disconnect();
    await redis?.stop();
  });

  const mint = (room: string, user: string): string =>
    nodes[0]!.server.tokens.mint({
      tenantId: 't1',
      roomId: room,
      userId: user,
      name: user,
      grants: { ...DEFAULT_ROLES.guest } as Grants,
      ttlS: 600,
    }).token;

  const connect = (url: string, token: string): Promise<TestClient> => {
    const client: TestClient = ioClient(url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    clients.add(client);
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('connect_error', (error) => {
        client.close();
        clients.delete(client);
        reject(error);
      });
    });
  };

  /** Connects through `url`, following one wrong_node redirect (err.data.ws_url), listens for mode_changed, then joins. */
  const connectAndJoin = async (url: string, token: string): Promise<Joiner> => {
    let client: TestClient;
    let at = url;
    let redirected = false;
    try {
      client = await connect(url, token);
    } catch (error) {
      const refusal = error as ConnectRefusal;
      if (refusal.message !== 'wrong_node' || !refusal.data?.ws_url) throw error;
      at = refusal.data.ws_url;
      redirected = true;
      // A second refusal is thrown as is: one redirect, never a loop.
      client = await connect(at, token);
    }
    const modeChanges: ModeChangedMessage[] = [];
    client.on('mode_changed', (message) => modeChanges.push(message));
    const ack = await emitAck(client, 'join', {});
    if (!ack.ok) throw new Error(`join through ${url} (at ${at}) refused: ${ack.error.code} ${ack.error.message}`);
    const ackMode = (ack as unknown as { room: { mode: string } }).room.mode;
    return { client, url: at, redirected, ackMode, modeChanges };
  };

  /** This room's open routers on a node. */
  const routersOn = (node: Node, key: string): number =>
    [...(node.server.sfu?.roomsByWorker().values() ?? [])].flat().filter((routerKey) => routerKey === key).length;

  const waitUntil = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it('every round: exactly one owner (lease) and one SFU router in the whole cluster; every client hears of the SFU exactly once', async function () {
    const told = { byEvent: 0, byAck: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const room = `burst-${round}-${randomBytes(3).toString('hex')}`;
      const key = Room.keyOf('t1', room);
      const lease = keys.lease(roomKey('t1', room));
      // Two clients through each node, all at once.
      const joiners = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => connectAndJoin(nodes[i % NODES]!.url, mint(room, `r${round}-u${i}`))),
      );
      const where = `round ${round}`;

      // One owner: the lease in Redis names one node, which is the only one holding it.
      const value = await raw!.get(lease);
      const match = /^(.+):(\d+)$/.exec(value ?? '');
      expect(match, `${where}: lease ${String(value)}`).to.not.equal(null);
      const owner = nodes.find((node) => node.id === match![1]);
      expect(owner, `${where}: lease owner ${match![1]} is a node of the cluster`).to.not.equal(undefined);
      const holders = nodes.filter((node) => node.server.cluster!.leases.epochOf(roomKey('t1', room)) !== null);
      expect(
        holders.map((node) => node.id),
        where,
      ).to.deep.equal([owner!.id]);
      expect(owner!.server.cluster!.leases.epochOf(roomKey('t1', room)), where).to.equal(Number(match![2]));

      // Every client is on the owner: the two that reached it directly, the four others after one redirect.
      expect(
        joiners.map((joiner) => joiner.url),
        where,
      ).to.deep.equal(joiners.map(() => owner!.url));
      const direct = joiners.filter((_, i) => nodes[i % NODES] === owner);
      expect(
        direct.map((joiner) => joiner.redirected),
        where,
      ).to.deep.equal([false, false]);
      expect(joiners.filter((joiner) => joiner.redirected).length, where).to.equal(CLIENTS - 2);

      // The room is promoted once on the owner; every client learns it once.
      await waitUntil(
        () => owner!.server.rooms.get('t1', room)?.mode === 'sfu' && joiners.every((j) => j.ackMode === 'sfu' || j.modeChanges.length > 0),
        `${where}: the room is on the SFU and every client knows`,
        10_000,
      );
      // Time for a duplicate or a second router to show up, if any would.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(owner!.server.rooms.get('t1', room)?.size, where).to.equal(CLIENTS);
      for (const node of nodes)
        if (node !== owner) expect(node.server.rooms.get('t1', room), `${where}: room on ${node.id}`).to.equal(undefined);
      expect(
        nodes.map((node) => routersOn(node, key)),
        `${where}: routers per node`,
      ).to.deep.equal(nodes.map((node) => (node === owner ? 1 : 0)));
      for (const [i, joiner] of joiners.entries()) {
        // A client whose join came after the promotion learns the mode from its join ack instead.
        if (joiner.ackMode === 'sfu') {
          told.byAck++;
          expect(joiner.modeChanges, `${where}, client ${i} joined an SFU room`).to.deep.equal([]);
        } else {
          told.byEvent++;
          expect(joiner.ackMode, `${where}, client ${i}`).to.equal('mesh');
          expect(
            joiner.modeChanges.map((message) => message.mode),
            `${where}, client ${i}`,
          ).to.deep.equal(['sfu']);
          expect(joiner.modeChanges[0]?.reason, `${where}, client ${i}`).to.equal('threshold');
        }
      }
      // The (THRESHOLD + 1)th join promotes: at least that many joined a mesh and heard mode_changed(sfu).
      expect(joiners.filter((joiner) => joiner.ackMode === 'mesh').length, where).to.be.at.least(THRESHOLD + 1);

      // Everyone leaves: the room ends on its owner and its router closes.
      for (const joiner of joiners) {
        joiner.client.close();
        clients.delete(joiner.client);
      }
      await waitUntil(
        () => owner!.server.rooms.get('t1', room) === undefined && routersOn(owner!, key) === 0,
        `${where}: the room and its router are gone`,
        10_000,
      );
    }
    console.log(
      `      ${ROUNDS} rounds: ${told.byEvent} clients told by mode_changed(sfu), ${told.byAck} joined after the promotion (join ack mode sfu)`,
    );
  });
});

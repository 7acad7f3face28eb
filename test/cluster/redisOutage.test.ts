/**
 * Issue 17, test 8: redis-server killed with SIGKILL, then started again empty on the same port
 * (no persistence), under three nodes that each own a room whose two clients relay signals
 * without pause. The nodes use what a cluster on Redis uses by default: the Redis store as well.
 *
 * While Redis is down: every room keeps relaying, nothing lost; /health answers 200 on every
 * node; /ready answers 503 with checks.store false (the store lives in that Redis: a load
 * balancer stops sending new clients, rooms in progress are untouched); a connection for a new
 * room is refused with `unavailable`, within seconds, never left hanging.
 * Once Redis is back: within 5 s every room's lease is back in Redis with its owner and epoch,
 * each room is held by exactly one node, relaying never stopped, /ready is 200 again, and a new
 * room can be joined.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ClusterKeys, roomKey } from '../../server/cluster/keys.js';
import { connectFollowing, useCluster, type ClusterNode } from '../helpers/cluster.js';
import { emitAck, expectConnectError, type TestClient } from '../helpers/server.js';

/** One room per node, with two clients signalling each other every SEND_EVERY_MS. */
interface LiveRoom {
  room: string;
  owner: ClusterNode;
  /** The lease value ("<node>:<epoch>") before the outage. */
  lease: string;
  relays: Relay[];
}

/** One direction of a room's traffic: `from` sends numbered candidates to `to`. */
interface Relay {
  sent: number;
  received: number[];
  refused: string[];
  timer: NodeJS.Timeout | null;
}

const SEND_EVERY_MS = 20;
const OUTAGE_MS = 3_000;
const LEASES_BACK_WITHIN_MS = 5_000;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await delay(25);
  }
  return Date.now() - started;
}

/** Starts `from` sending candidates "<tag>:<n>" to the peer `toId`; `to` records the numbers it receives. */
function startRelay(from: TestClient, to: TestClient, toId: string, tag: string): Relay {
  const relay: Relay = { sent: 0, received: [], refused: [], timer: null };
  to.on('signal', (message) => {
    const candidate = message.candidate?.candidate ?? '';
    if (candidate.startsWith(`${tag}:`)) relay.received.push(Number(candidate.slice(tag.length + 1)));
  });
  relay.timer = setInterval(() => {
    const n = relay.sent++;
    from.emit('signal', { to: toId, candidate: { candidate: `${tag}:${n}` } }, (ack: { ok: boolean; error?: { code: string } }) => {
      if (!ack.ok) relay.refused.push(`${n}:${ack.error?.code ?? '?'}`);
    });
  }, SEND_EVERY_MS);
  return relay;
}

function stopRelays(rooms: LiveRoom[]): void {
  for (const relay of rooms.flatMap((room) => room.relays)) {
    if (relay.timer) clearInterval(relay.timer);
    relay.timer = null;
  }
}

async function statusOf(node: ClusterNode, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('cluster: redis-server kill -9 and restart while rooms relay (issue 17, test 8)', function () {
  this.timeout(90_000);
  let raw: Redis | undefined;
  let rooms: LiveRoom[] = [];

  // Registered before useCluster's: the relays stop before the nodes close.
  afterEach(function () {
    stopRelays(rooms);
    rooms = [];
    raw?.disconnect();
    raw = undefined;
  });

  const suite = useCluster();

  it('rooms keep relaying and /health stays 200; new rooms are refused with unavailable; within 5 s of Redis back every lease is back with one owner, and new rooms join again', async function () {
    const c = await suite.start(3, { RATE_LIMIT_HANDSHAKES_PER_MIN: '100000' });
    const keys = new ClusterKeys();
    // Tolerant of the outage: reconnects quickly, never queues a command for long.
    raw = new Redis(suite.redis.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1, commandTimeout: 1_000 });
    raw.on('error', () => undefined);
    const r = raw;

    // One room per node, both clients connected through its node (the first claims it there).
    for (const [i, node] of c.nodes.entries()) {
      const room = `live-${i}`;
      const joined: { client: TestClient; id: string }[] = [];
      for (const user of ['alice', 'bob']) {
        const { client, url } = await connectFollowing(c, node.url, { token: c.mint({ room, user }) });
        expect(url).to.equal(node.url);
        const ack = await emitAck(client, 'join', {});
        expect(ack.ok, JSON.stringify(ack)).to.equal(true);
        joined.push({ client, id: (ack as unknown as { self: { id: string } }).self.id });
      }
      const [alice, bob] = joined as [{ client: TestClient; id: string }, { client: TestClient; id: string }];
      const lease = await r.get(keys.lease(roomKey('t1', room)));
      expect(lease).to.match(new RegExp(`^${node.id}:\\d+$`));
      rooms.push({
        room,
        owner: node,
        lease: lease!,
        relays: [startRelay(alice.client, bob.client, bob.id, `${room}>b`), startRelay(bob.client, alice.client, alice.id, `${room}>a`)],
      });
    }
    const relays = rooms.flatMap((room) => room.relays);
    const receivedCounts = (): number[] => relays.map((relay) => relay.received.length);
    await waitUntil(() => relays.every((relay) => relay.received.length >= 10), 'every relay carries signals', 5_000);
    for (const node of c.nodes) expect((await statusOf(node, '/ready')).status).to.equal(200);

    await suite.redis.kill();
    const killedAt = Date.now();

    // A new room cannot be placed: refused with a clear code, within seconds.
    const refusal = await expectConnectError(c.connect(c.nodes[1]!.url, { token: c.mint({ room: 'during-outage' }) }));
    const refusedMs = Date.now() - killedAt;
    expect(refusal.message, JSON.stringify(refusal.data)).to.equal('unavailable');
    expect(refusal.data?.code).to.equal('unavailable');
    expect(refusedMs).to.be.below(10_000);

    // Down for longer than two lease TTLs: every room keeps relaying, /health stays 200, /ready says what it depends on.
    const readyDuringOutage = new Set<string>();
    while (Date.now() - killedAt < OUTAGE_MS) {
      const before = receivedCounts();
      for (const node of c.nodes) {
        expect((await statusOf(node, '/health')).status, `/health of ${node.id} while Redis is down`).to.equal(200);
        const ready = await statusOf(node, '/ready');
        readyDuringOutage.add(`${ready.status} ${JSON.stringify(ready.body.checks)}`);
      }
      await delay(250);
      const after = receivedCounts();
      expect(
        after.map((count, i) => count > before[i]!),
        `every relay moved within ${Date.now() - killedAt} ms of the kill`,
      ).to.deep.equal(relays.map(() => true));
    }
    // The store lives in the Redis that is down: /ready reports it (a load balancer stops sending new clients).
    expect([...readyDuringOutage]).to.deep.equal([`503 ${JSON.stringify({ store: false, sfu: true, accepting: true })}`]);
    // No room was dropped or lost by its owner meanwhile.
    for (const { room, owner } of rooms) {
      expect(owner.server.rooms.get('t1', room)?.size, room).to.equal(2);
      expect(owner.server.cluster!.leases.epochOf(roomKey('t1', room)), room).to.be.a('number');
    }

    await suite.redis.restart();
    const restartedAt = Date.now();
    const leaseKeys = rooms.map(({ room }) => keys.lease(roomKey('t1', room)));
    const expected = rooms.map(({ lease }) => lease);
    const backMs = await waitUntil(
      async () => JSON.stringify(await r.mget(leaseKeys).catch(() => null)) === JSON.stringify(expected),
      'every room lease is back with its owner and epoch',
      LEASES_BACK_WITHIN_MS,
    );
    console.log(`      new room refused after ${refusedMs} ms; leases back ${backMs} ms after redis-server accepted connections again`);
    // One owner per room: the lease's node is the only one holding it, at the lease's epoch.
    for (const { room, owner, lease } of rooms) {
      const key = roomKey('t1', room);
      const holders = c.nodes.filter((node) => node.server.cluster!.leases.epochOf(key) !== null);
      expect(
        holders.map((node) => node.id),
        room,
      ).to.deep.equal([owner.id]);
      expect(`${owner.id}:${owner.server.cluster!.leases.epochOf(key)}`).to.equal(lease);
      for (const node of c.nodes)
        if (node !== owner) expect(node.server.rooms.get('t1', room), `${room} on ${node.id}`).to.equal(undefined);
      expect(owner.server.rooms.get('t1', room)?.size, room).to.equal(2);
    }
    expect(Date.now() - restartedAt).to.be.below(LEASES_BACK_WITHIN_MS + 1_000);

    // Relaying goes on after the restart too.
    const afterRestart = receivedCounts();
    await waitUntil(() => receivedCounts().every((count, i) => count >= afterRestart[i]! + 10), 'relays go on after the restart', 5_000);
    await waitUntil(async () => (await statusOf(c.nodes[0]!, '/ready')).status === 200, '/ready is 200 again', 10_000);

    // A new room joins again. The store's records went with Redis' data (it ran without
    // persistence): the tenant is stored again, as a persisted Redis would have kept it.
    await c.addTenant('t1');
    const { client: newcomer } = await connectFollowing(c, c.nodes[2]!.url, { token: c.mint({ room: 'after-restart' }) });
    const newcomerJoin = await emitAck(newcomer, 'join', {});
    expect(newcomerJoin.ok, JSON.stringify(newcomerJoin)).to.equal(true);
    expect(await r.get(keys.lease(roomKey('t1', 'after-restart')))).to.match(/^.+:\d+$/);

    // Every signal sent arrived, in order, once; none was refused.
    stopRelays(rooms);
    await waitUntil(() => relays.every((relay) => relay.received.length >= relay.sent), 'the last signals arrive', 5_000);
    for (const [i, relay] of relays.entries()) {
      expect(relay.refused, `relay ${i}`).to.deep.equal([]);
      expect(relay.received, `relay ${i}`).to.deep.equal(Array.from({ length: relay.sent }, (_, n) => n));
    }
    console.log(`      signals relayed per direction: ${relays.map((relay) => relay.sent).join(', ')}`);
  });
});

/**
 * The bundled TURN relay across cores (TURN_WORKERS): each worker thread listens on its own
 * port, ice_servers send a user to one of them, the quotas hold over all of them (RelayQuotas
 * in shared memory), allocations in different workers relay to each other, and one worker's
 * crash leaves the others' allocations alone.
 */
import { expect } from 'chai';
import { createTurnCredentials, relayWorkerFor } from '../../turn/credentials.js';
import { RelayQuotas } from '../../turn/RelayQuotas.js';
import type { TurnServer } from '../../turn/TurnServer.js';
import { AttrType, Method, StreamTurnClient, TurnClient, type TransportAddress } from '../helpers/stun.js';
import { expectRelayBothWays, relayThread, startTurn, TURN_SECRET, waitFor } from './support.js';

describe('RelayQuotas (shared by the relay workers)', () => {
  const limits = { maxAllocations: 6, maxAllocationsPerUser: 2, maxConnectionsPerIp: 3 };

  function views(workers: number, maxKeys: number, l = limits): RelayQuotas[] {
    const buffer = RelayQuotas.create(workers, maxKeys);
    return Array.from({ length: workers }, (_, i) => new RelayQuotas(buffer, i, workers, maxKeys, l));
  }

  it('counts a user and the total over every worker', () => {
    const [a, b, c] = views(3, 6) as [RelayQuotas, RelayQuotas, RelayQuotas];
    expect(a.reserveAllocation('alice')).to.equal('ok');
    expect(b.reserveAllocation('alice')).to.equal('ok');
    expect(c.reserveAllocation('alice'), "alice's third, on a third worker").to.equal('quota_user');
    for (const user of ['bob', 'carol', 'dave', 'erin']) expect(c.reserveAllocation(user)).to.equal('ok');
    expect(a.allocations()).to.equal(6);
    expect(b.reserveAllocation('frank')).to.equal('quota_total');
    b.releaseAllocation('alice');
    expect(c.reserveAllocation('alice')).to.equal('ok');
    // A release on a worker that did not count the user changes nothing.
    a.releaseAllocation('bob');
    expect(c.allocations()).to.equal(6);
  });

  it('caps connections per client IP over every worker', () => {
    const [a, b] = views(2, 8) as [RelayQuotas, RelayQuotas];
    expect(a.admitConnection('10.0.0.1')).to.equal(true);
    expect(b.admitConnection('10.0.0.1')).to.equal(true);
    expect(b.admitConnection('10.0.0.1')).to.equal(true);
    expect(a.admitConnection('10.0.0.1')).to.equal(false);
    expect(a.admitConnection('10.0.0.2')).to.equal(true);
    b.releaseConnection('10.0.0.1');
    expect(a.admitConnection('10.0.0.1')).to.equal(true);
  });

  it("forgets a dead worker's counts, and frees the lock it died holding", () => {
    const buffer = RelayQuotas.create(2, 8);
    const a = new RelayQuotas(buffer, 0, 2, 8, limits);
    const b = new RelayQuotas(buffer, 1, 2, 8, limits);
    expect(b.reserveAllocation('alice')).to.equal('ok');
    expect(b.reserveAllocation('alice')).to.equal('ok');
    expect(b.admitConnection('10.0.0.1')).to.equal(true);
    expect(a.reserveAllocation('alice')).to.equal('quota_user');
    // Worker 1 dies inside a critical section: the lock word names it.
    Atomics.store(new Int32Array(buffer), 0, 2);
    a.clearWorker(1);
    expect(a.allocations()).to.equal(0);
    expect(a.reserveAllocation('alice')).to.equal('ok');
    for (let i = 0; i < 3; i++) expect(a.admitConnection('10.0.0.1')).to.equal(true);
  });

  it('refuses a new key in a table half full of keys (a free slot ends every probe run), and takes it once one is released', () => {
    // maxKeys 4: 8 slots.
    const [quotas] = views(1, 4, { ...limits, maxConnectionsPerIp: 64 }) as [RelayQuotas];
    for (let i = 0; i < 4; i++) expect(quotas.admitConnection(`10.0.0.${i}`), `key ${i}`).to.equal(true);
    expect(quotas.admitConnection('10.0.0.4'), 'a fifth key').to.equal(false);
    expect(quotas.admitConnection('10.0.0.1'), 'a known key').to.equal(true);
    quotas.releaseConnection('10.0.0.3');
    expect(quotas.admitConnection('10.0.0.4')).to.equal(true);
  });

  it('stays small at the largest settings the config accepts (TURN_MAX_ALLOCATIONS 1,000,000, 64 workers)', () => {
    // Live allocations are bounded by the relay ports (65,536): each worker's tables hold that many keys at most.
    expect(RelayQuotas.create(64, 1_000_000).byteLength / 2 ** 20, 'MiB').to.be.at.most(256);
    expect(RelayQuotas.create(2, 1000).byteLength / 2 ** 10, 'KiB with the defaults on two cores').to.be.at.most(128);
  });

  it('agrees with a plain map through thousands of random adds and removes in tables that collide', () => {
    // 4 keys per worker in 8 slots, 40 user names: probe runs, wrap-around and backward shifts all happen.
    const many = { maxAllocations: 1_000, maxAllocationsPerUser: 3, maxConnectionsPerIp: 1_000 };
    const workers = views(2, 4, many);
    const model = workers.map(() => new Map<string, number>());
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 20_000; step++) {
      const w = random(2);
      const view = workers[w] as RelayQuotas;
      const counts = model[w] as Map<string, number>;
      const user = `user-${random(40)}`;
      const total = model.reduce((sum, m) => sum + (m.get(user) ?? 0), 0);
      if (random(2) === 0 && counts.size < 4) {
        const expected = total >= 3 ? 'quota_user' : 'ok';
        if (expected === 'ok' || !counts.has(user)) {
          expect(view.reserveAllocation(user), `step ${step}: add ${user}`).to.equal(expected);
          if (expected === 'ok') counts.set(user, (counts.get(user) ?? 0) + 1);
        }
      } else if (counts.has(user)) {
        view.releaseAllocation(user);
        const left = (counts.get(user) as number) - 1;
        if (left === 0) counts.delete(user);
        else counts.set(user, left);
      }
      const expectedTotal = model.reduce((sum, m) => sum + [...m.values()].reduce((a, b) => a + b, 0), 0);
      expect(view.allocations(), `step ${step}: total`).to.equal(expectedTotal);
    }
    // Every counted user is still found with its count: fill each user up to its quota and check the verdicts.
    for (const [w, counts] of model.entries())
      for (const [user] of counts) {
        const total = model.reduce((sum, m) => sum + (m.get(user) ?? 0), 0);
        if (total < 3) expect((workers[w] as RelayQuotas).reserveAllocation(user)).to.equal('ok');
        else expect((workers[w] as RelayQuotas).reserveAllocation(user)).to.equal('quota_user');
      }
  });
});

describe('TURN relay workers (TURN_WORKERS)', function () {
  this.timeout(30_000);

  let server: TurnServer;
  const clients: Array<{ close(): Promise<void> }> = [];

  before(async () => {
    server = await startTurn({
      TURN_WORKERS: '3',
      TURN_MAX_ALLOCATIONS_PER_USER: '2',
      TURN_MAX_ALLOCATIONS: '5',
      TURN_MAX_CONNECTIONS_PER_IP: '2',
      // Relay to relay on loopback (the relay address is 127.0.0.1).
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
    });
  });

  after(async () => {
    await server?.close();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await waitFor(() => server.stats().activeAllocations === 0 && server.stats().connections.tcp === 0, 'every allocation released');
  });

  async function client(worker: number, userId: string): Promise<TurnClient> {
    const c = await TurnClient.open(
      { address: '127.0.0.1', port: server.ports[worker] as number },
      createTurnCredentials(TURN_SECRET, userId, 600),
    );
    clients.push(c);
    return c;
  }

  async function allocated(worker: number, userId: string): Promise<{ c: TurnClient; relayed: TransportAddress }> {
    const c = await client(worker, userId);
    const res = await c.allocate();
    expect(res.errorCode, `allocate of ${userId} on worker ${worker}`).to.equal(undefined);
    return { c, relayed: res.xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
  }

  it('listens on one port per worker, each answering, and hands each user the port of its worker', async () => {
    const ports = server.ports;
    expect(ports).to.have.length(3);
    expect(new Set(ports).size).to.equal(3);
    for (let worker = 0; worker < 3; worker++) {
      const c = await client(worker, 'binding');
      expect((await c.request(Method.Binding, [], { sign: false })).isSuccess, `worker ${worker} answers`).to.equal(true);
    }
    const used = new Set<number>();
    for (let i = 0; i < 30; i++) {
      const userId = `user-${i}`;
      const port = ports[relayWorkerFor(userId, 3)] as number;
      used.add(port);
      expect(server.iceServers(userId)[0]?.urls).to.deep.equal([
        `turn:127.0.0.1:${port}?transport=udp`,
        `turn:127.0.0.1:${port}?transport=tcp`,
      ]);
    }
    expect(used.size, '30 users spread over the 3 workers').to.equal(3);
  });

  it('holds the per-user and the total quota over every worker', async () => {
    await allocated(0, 'alice');
    await allocated(1, 'alice');
    expect((await (await client(2, 'alice')).allocate()).errorCode, "alice's third allocation, on a third worker").to.equal(486);
    await allocated(2, 'bob');
    await allocated(0, 'carol');
    await allocated(1, 'dave');
    expect(server.stats().activeAllocations, 'summed over the workers').to.equal(5);
    expect((await (await client(2, 'erin')).allocate()).errorCode, 'the sixth allocation (TURN_MAX_ALLOCATIONS 5)').to.equal(486);
    expect(server.stats().refusals).to.include({ quota_user: 1, quota_total: 1 });
  });

  it('relays between allocations of different workers, both ways', async () => {
    const a = await allocated(0, 'alice');
    const b = await allocated(1, 'bob');
    await expectRelayBothWays(a, b);
  });

  it('caps TCP connections per client IP over every worker', async () => {
    const first = await StreamTurnClient.open({ address: '127.0.0.1', port: server.ports[0] as number }, { protocol: 'tcp' });
    const second = await StreamTurnClient.open({ address: '127.0.0.1', port: server.ports[1] as number }, { protocol: 'tcp' });
    clients.push(first, second);
    await waitFor(() => server.stats().connections.tcp === 2, 'two connections');
    const third = await StreamTurnClient.open({ address: '127.0.0.1', port: server.ports[2] as number }, { protocol: 'tcp' });
    clients.push(third);
    expect(await third.ended).to.deep.equal({ byServer: true });
    expect(server.stats().refusals.stream_limit).to.equal(1);
    for (const c of [first, second]) expect((await c.request(Method.Binding, [], { sign: false })).isSuccess).to.equal(true);
  });

  it("restarts a crashed worker on its port, frees what it counted, and leaves the other workers' allocations alone", async () => {
    const ports = server.ports;
    const a = await allocated(0, 'alice');
    await allocated(1, 'bob');
    await allocated(1, 'bob');
    expect((await (await client(0, 'bob')).allocate()).errorCode, "bob's quota is full").to.equal(486);
    const onWorker1 = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8'].find((user) => relayWorkerFor(user, 3) === 1) as string;
    await relayThread(server, 1)?.terminate();
    expect(server.portFor(onWorker1), 'while worker 1 is down its users are sent to the next worker').to.equal(ports[2]);
    // bob's allocations died with worker 1: the quota lets him allocate again, here on worker 2.
    await waitFor(async () => (await (await client(2, 'bob')).allocate().catch(() => undefined))?.isSuccess === true, "bob's quota freed");
    const again = await client(1, 'carol');
    await waitFor(async () => (await again.allocate().catch(() => undefined))?.isSuccess === true, 'worker 1 serving again', 20_000);
    expect(server.ports).to.deep.equal(ports);
    expect(server.portFor('bob'), 'worker 1 listens again: its users are sent there').to.equal(ports[relayWorkerFor('bob', 3)] as number);
    // alice's allocation on worker 0 still relays.
    const peer = await TurnClient.open({ address: '127.0.0.1', port: ports[2] as number }, createTurnCredentials(TURN_SECRET, 'peer', 600));
    clients.push(peer);
    const relayedPeer = (await peer.allocate()).xorAddress(AttrType.XorRelayedAddress) as TransportAddress;
    expect((await a.c.createPermission(relayedPeer.address)).isSuccess).to.equal(true);
    expect((await peer.createPermission(a.relayed.address)).isSuccess).to.equal(true);
    a.c.sendIndication(relayedPeer, Buffer.from('still here'));
    expect((await peer.nextData()).data.toString()).to.equal('still here');
  });
});

describe('TURN relay workers behind TURN_EXTERNAL_IP', function () {
  this.timeout(30_000);

  // Across workers a relay-to-relay datagram goes through the kernel to the relay address (or,
  // relays bound to 0.0.0.0, out on loopback) and must still be seen as coming from the external
  // address the clients know.
  for (const [relayIp, workers] of [
    ['127.0.0.1', '2'],
    ['0.0.0.0', '1'],
    ['0.0.0.0', '2'],
  ] as const) {
    it(`relays between two allocations (TURN_RELAY_IP ${relayIp}, TURN_WORKERS=${workers})`, async () => {
      const server = await startTurn({
        TURN_WORKERS: workers,
        TURN_RELAY_IP: relayIp,
        TURN_EXTERNAL_IP: '127.0.0.9',
        TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
      });
      const clients: TurnClient[] = [];
      try {
        const allocate = async (worker: number, userId: string) => {
          const c = await TurnClient.open(
            { address: '127.0.0.1', port: server.ports[worker] as number },
            createTurnCredentials(TURN_SECRET, userId, 600),
          );
          clients.push(c);
          return { c, relayed: (await c.allocate()).xorAddress(AttrType.XorRelayedAddress) as TransportAddress };
        };
        const a = await allocate(0, 'alice');
        const b = await allocate(Number(workers) - 1, 'bob');
        expect(a.relayed.address).to.equal('127.0.0.9');
        expect((await a.c.createPermission('127.0.0.9')).isSuccess).to.equal(true);
        expect((await b.c.createPermission('127.0.0.9')).isSuccess).to.equal(true);
        a.c.sendIndication(b.relayed, Buffer.from('a to b'));
        expect(await b.c.nextData()).to.deep.equal({ kind: 'indication', peer: a.relayed, data: Buffer.from('a to b') });
      } finally {
        await Promise.all(clients.map((c) => c.close()));
        await server.close();
      }
    });
  }
});

describe('TURN relay workers: quota before reservation token', function () {
  this.timeout(20_000);

  it('answers 486 to a user at its quota, also with an unknown RESERVATION-TOKEN; 404 to the token under the quota', async () => {
    const server = await startTurn({ TURN_WORKERS: '1', TURN_MAX_ALLOCATIONS_PER_USER: '1' });
    const clients: TurnClient[] = [];
    const open = async (userId: string) => {
      const c = await TurnClient.open({ address: '127.0.0.1', port: server.port }, createTurnCredentials(TURN_SECRET, userId, 600));
      clients.push(c);
      return c;
    };
    try {
      expect((await (await open('alice')).allocate()).isSuccess).to.equal(true);
      const token = { type: AttrType.ReservationToken, value: Buffer.alloc(8, 7) };
      expect((await (await open('alice')).allocate([token])).errorCode).to.equal(486);
      expect((await (await open('bob')).allocate([token])).errorCode).to.equal(404);
      // The refused token did not keep bob's quota: his next allocation succeeds.
      expect((await (await open('bob')).allocate()).isSuccess).to.equal(true);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
    }
  });
});

/**
 * Property test of the socket protocol: random sequences of join, leave, signal, metadata,
 * stats, admin and SFU requests (and malformed ones) from several clients, sent in concurrent
 * batches against a real server with the SFU on. After each sequence the server's state must
 * match the sockets: membership equals live joined sockets, no quota exceeded, every request
 * answered (never with `internal`), every session of a gone socket closed.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { isErrorCode } from '../../protocol/errors.js';
import { startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

const TENANT = 'prop';
const LIMITS = { max_participants: 3, max_rooms: 1 };
const MAX_TRANSPORTS_PER_PEER = 2;
/** Five users: four in room "p" (u0 may administer it), one in room "q" (over the tenant's one live room). */
const USERS = [
  { user: 'u0', room: 'p', role: 'host' as const },
  { user: 'u1', room: 'p', role: 'guest' as const },
  { user: 'u2', room: 'p', role: 'guest' as const },
  { user: 'u3', room: 'p', role: 'listener' as const },
  { user: 'u4', room: 'q', role: 'guest' as const },
];

type Action =
  | {
      type:
        | 'join'
        | 'join_twice'
        | 'leave'
        | 'stats'
        | 'metadata'
        | 'create_transport'
        | 'garbage'
        | 'unknown'
        | 'reconnect'
        | 'disconnect'
        | 'self_mute';
    }
  | { type: 'signal' | 'kick' | 'mute' | 'resume'; target: number }
  | { type: 'lock'; locked: boolean };
type Command = { client: number; action: Action };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.constantFrom(
    ...(
      [
        'join',
        'join_twice',
        'leave',
        'stats',
        'metadata',
        'create_transport',
        'garbage',
        'unknown',
        'reconnect',
        'disconnect',
        'self_mute',
      ] as const
    ).map((type) => ({ type })),
  ),
  fc.record({
    type: fc.constantFrom('signal' as const, 'kick' as const, 'mute' as const, 'resume' as const),
    target: fc.nat(USERS.length),
  }),
  fc.record({ type: fc.constant('lock' as const), locked: fc.boolean() }),
);
const command: fc.Arbitrary<Command> = fc.record({ client: fc.nat(USERS.length - 1), action });
/** Commands in batches: a batch is sent at once, without waiting for any ack. */
const batches = fc.array(fc.array(command, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 });

type Outcome = { event: string; result: 'ok' | 'disconnected' | 'no answer' | string };

class Harness {
  readonly clients: Array<TestClient | null> = USERS.map(() => null);
  /** Peer ids learnt from join acks (targets for signals, kicks and mutes; a stale id is fine). */
  readonly peerIds: Array<string | null> = USERS.map(() => null);
  readonly outcomes: Outcome[] = [];

  constructor(readonly t: TestServer) {}

  async connect(index: number): Promise<TestClient | null> {
    const { user, room, role } = USERS[index] as (typeof USERS)[number];
    this.clients[index]?.close();
    try {
      this.clients[index] = await this.t.connect(this.t.mint({ tenant: TENANT, room, user, role }));
    } catch {
      this.clients[index] = null; // refused (its token was revoked by a kick): nothing to send on
    }
    return this.clients[index];
  }

  /** Emits with an ack; resolves with its result, "disconnected" if the socket went away first, or "no answer". */
  request(client: TestClient, event: string, ...args: unknown[]): Promise<Outcome> {
    return new Promise((resolve) => {
      const done = (result: string) => {
        clearTimeout(timer);
        client.off('disconnect', onDisconnect);
        resolve({ event, result });
      };
      const onDisconnect = () => done('disconnected');
      const timer = setTimeout(() => done('no answer'), 5000);
      client.on('disconnect', onDisconnect);
      (client as unknown as { emit(event: string, ...args: unknown[]): void }).emit(
        event,
        ...args,
        (ack: { ok: boolean; error?: { code: string }; self?: { id: string } }) => {
          if (event === 'join' && ack.ok && ack.self)
            this.peerIds[USERS.findIndex((u) => u.user === (ack.self as { user_id?: string }).user_id)] = ack.self.id;
          done(ack.ok ? 'ok' : (ack.error?.code ?? 'malformed ack'));
        },
      );
    });
  }

  async run(cmd: Command): Promise<void> {
    const { action: a } = cmd;
    if (a.type === 'reconnect') {
      await this.connect(cmd.client);
      return;
    }
    const client = this.clients[cmd.client];
    if (!client?.connected) return;
    const target = 'target' in a ? (this.peerIds[a.target] ?? 'p_unknown') : 'p_unknown';
    const requests: Array<Promise<Outcome>> = [];
    switch (a.type) {
      case 'join':
        requests.push(this.request(client, 'join', {}));
        break;
      case 'join_twice':
        requests.push(this.request(client, 'join', {}), this.request(client, 'join', {}));
        break;
      case 'leave':
        requests.push(this.request(client, 'leave', {}));
        break;
      case 'stats':
        requests.push(this.request(client, 'stats', { links: [] }));
        break;
      case 'self_mute':
        requests.push(this.request(client, 'mute', { kind: 'video', muted: cmd.client % 2 === 0 }));
        break;
      case 'resume':
        // A join that asks for a peer id back: its own (a place, a live peer) or another user's (never given).
        requests.push(this.request(client, 'join', { resume: { peer_id: target === 'p_unknown' ? 'p_AAAAAAAAAAAA' : target } }));
        break;
      case 'metadata':
        requests.push(this.request(client, 'update_metadata', { metadata: { n: cmd.client } }));
        break;
      case 'create_transport':
        requests.push(this.request(client, 'sfu:create_transport', { direction: 'recv' }));
        break;
      case 'garbage':
        requests.push(
          this.request(client, 'join', 'not an object'),
          this.request(client, 'sfu:consume', { transport_id: 5 }),
          this.request(client, 'signal', { to: target }),
        );
        break;
      case 'unknown':
        requests.push(this.request(client, 'no_such_event', {}));
        break;
      case 'disconnect':
        client.close();
        break;
      case 'signal':
        requests.push(this.request(client, 'signal', { to: target, candidate: { candidate: '' } }));
        break;
      case 'kick':
        requests.push(this.request(client, 'admin:kick', { peer_id: target }));
        break;
      case 'mute':
        requests.push(this.request(client, 'admin:mute', { peer_id: target, kind: 'audio', muted: true }));
        break;
      case 'lock':
        requests.push(this.request(client, 'admin:lock', { locked: a.locked }));
        break;
    }
    this.outcomes.push(...(await Promise.all(requests)));
  }
}

/** The server's live state agrees with its sockets, and no limit is exceeded. */
function expectConsistent(t: TestServer): void {
  const rooms = t.server.rooms.liveRooms(TENANT);
  expect(rooms.length, 'live rooms').to.be.at.most(LIMITS.max_rooms);
  let joined = 0;
  for (const room of rooms) {
    expect(room.size, `participants of ${room.id}`).to.be.at.most(LIMITS.max_participants);
    for (const peer of room.peers.values()) {
      expect(peer.socket.connected, `${peer.userId}'s socket is connected`).to.equal(true);
      expect(peer.socket.data.peer, `${peer.userId}'s socket knows its peer`).to.equal(peer);
      expect(t.server.sfu?.get(room.key)?.transportCount(peer.id) ?? 0, 'transports per peer').to.be.at.most(MAX_TRANSPORTS_PER_PEER);
    }
    // A held place (a dropped connection) is nobody's socket, and never beside a live peer of its user or id.
    for (const place of room.expected.values()) {
      expect(room.peerByUser(place.userId), `${place.userId} is both held and connected`).to.equal(undefined);
      expect(room.peers.has(place.id), `${place.id} is both held and connected`).to.equal(false);
    }
    joined += room.connectedCount;
  }
  // Every connected socket that says it is joined is a member of its room.
  for (const socket of t.server.io.sockets.sockets.values()) {
    const peer = socket.data.peer;
    if (!peer) continue;
    joined--;
    expect(t.server.rooms.getByKey(socket.data.roomKey)?.peers.get(peer.id), `${peer.userId} is in its room`).to.equal(peer);
  }
  expect(joined, 'room members without a joined socket').to.equal(0);
}

describe('socket protocol under random concurrent requests (property)', function () {
  this.timeout(180000);

  it('keeps membership equal to live sockets, within quotas, answers every request and closes every session', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(batches, async (sequence) => {
        runs++;
        const t = await startServer({
          SFU_ENABLED: 'true',
          SFU_WORKERS: '1',
          SFU_LISTEN_IP: '127.0.0.1',
          MESH_THRESHOLD: '2',
          SFU_MAX_TRANSPORTS_PER_PEER: String(MAX_TRANSPORTS_PER_PEER),
        });
        try {
          await t.addTenant(TENANT, LIMITS);
          const harness = new Harness(t);
          for (let i = 0; i < USERS.length; i++) await harness.connect(i);
          for (const batch of sequence) {
            await Promise.all(batch.map((cmd) => harness.run(cmd)));
            expectConsistent(t);
          }
          // Give the server a moment for disconnects it has not processed yet, then check again.
          await new Promise((resolve) => setTimeout(resolve, 50));
          expectConsistent(t);
          for (const outcome of harness.outcomes) {
            expect(outcome.result, `${outcome.event} was answered`).to.not.equal('no answer');
            expect(outcome.result, `${outcome.event} failed with an expected code`).to.not.equal('internal');
            if (outcome.result !== 'ok' && outcome.result !== 'disconnected')
              expect(isErrorCode(outcome.result), `${outcome.event}: ${outcome.result} is a listed code`).to.equal(true);
          }

          for (const client of harness.clients) client?.close();
          await waitFor(() => t.server.rooms.liveRooms(TENANT).every((room) => room.size === 0), 5000, 'every peer gone');
          await waitFor(
            async () => (await t.server.store.sessions.list(TENANT, { limit: 500 })).items.every((s) => s.disconnected_at !== null),
            5000,
            'every session closed',
          );
        } finally {
          await t.close();
        }
      }),
      { numRuns: 60 },
    );
    console.log(`      ${runs} random sequences checked`);
  });
});

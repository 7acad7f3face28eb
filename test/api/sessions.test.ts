import { expect } from 'chai';
import { emitAck, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import { call, createTenant, joinVia, sleep, type ApiTenant } from './helpers.js';

const WIDE = 'from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z';

describe('api: sessions and usage', () => {
  let t: TestServer;
  let a: ApiTenant;
  const as = (path: string) => call(t, 'GET', path, { secret: a.api_secret });

  afterEach(async () => {
    await t.close();
  });

  it('mint -> connect -> join -> leave leaves a session whose duration and usage are right', async () => {
    t = await startServer();
    a = await createTenant(t);
    const from = new Date().toISOString();
    const alice = await joinVia(t, a, { room_id: 'audit', user_id: 'alice' });
    const joinedAt = Date.now();
    await sleep(1200);
    const bob = await joinVia(t, a, { room_id: 'audit', user_id: 'bob' });
    await sleep(600);
    expect((await emitAck(alice.client, 'leave')).ok).to.equal(true);
    const leftAt = Date.now();
    bob.client.close();
    await t.server.sessions.flush();
    await waitFor(async () => (await as('/api/v1/sessions')).body.sessions.every((s: { disconnected_at: string | null }) => s.disconnected_at !== null), 2000, 'closed sessions');

    const sessions = (await as('/api/v1/sessions?room_id=audit')).body.sessions as Record<string, unknown>[];
    expect(sessions.map((s) => s.user_id)).to.deep.equal(['alice', 'bob']);
    const [aliceSession, bobSession] = sessions as [Record<string, any>, Record<string, any>]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(aliceSession).to.deep.include({ room_id: 'audit', user_id: 'alice', jti: alice.minted.jti, peer_id: alice.ack.self.id, disconnect_reason: 'left' });
    expect(aliceSession.address).to.match(/127\.0\.0\.1/);
    expect(aliceSession.duration_ms).to.be.closeTo(leftAt - joinedAt, 150);
    expect(aliceSession.duration_ms).to.equal(Date.parse(aliceSession.disconnected_at) - Date.parse(aliceSession.connected_at));
    expect(aliceSession.segments).to.deep.equal([{ mode: 'mesh', from: aliceSession.connected_at, to: aliceSession.disconnected_at }]);
    expect(bobSession.disconnect_reason).to.equal('left');
    expect(bobSession.duration_ms).to.be.closeTo(600, 200);

    const usage = (await as(`/api/v1/usage?from=${from}&to=${new Date(Date.now() + 1000).toISOString()}`)).body;
    const expectedMinutes = (aliceSession.duration_ms + bobSession.duration_ms) / 60_000;
    expect(usage.participant_minutes).to.be.closeTo(expectedMinutes, 0.002);
    expect(usage.by_mode.mesh).to.be.closeTo(expectedMinutes, 0.002);
    expect(usage.by_mode.sfu).to.equal(0);
    expect(usage.by_room).to.have.length(1);
    expect(usage.by_room[0].room_id).to.equal('audit');
    expect(usage.by_room[0].participant_minutes).to.be.closeTo(expectedMinutes, 0.002);

    // [from, to) clips: a window ending before anyone joined counts nothing.
    const before = (await as(`/api/v1/usage?from=2000-01-01T00:00:00Z&to=${from}`)).body;
    expect(before.participant_minutes).to.equal(0);
    // Filters and pagination.
    expect((await as('/api/v1/sessions?room_id=other')).body.sessions).to.deep.equal([]);
    const page1 = (await as('/api/v1/sessions?limit=1')).body;
    expect(page1.sessions.map((s: { user_id: string }) => s.user_id)).to.deep.equal(['alice']);
    const page2 = (await as(`/api/v1/sessions?limit=1&cursor=${page1.next_cursor}`)).body;
    expect(page2.sessions.map((s: { user_id: string }) => s.user_id)).to.deep.equal(['bob']);
    expect(page2.next_cursor).to.equal(null);
    expect((await as(`/api/v1/sessions?to=${from}`)).body.sessions).to.deep.equal([]);
  });

  it('records time per topology through roomModeChanged and reports usage by mode', async () => {
    t = await startServer();
    a = await createTenant(t);
    const alice = await joinVia(t, a, { room_id: 'modes', user_id: 'alice' });
    await sleep(500);
    const room = t.server.rooms.get(a.tenant_id, 'modes');
    if (!room) throw new Error('room not live');
    // What the topology controller does on a promotion (the SFU is off in these tests).
    room.mode = 'sfu';
    t.server.sessions.roomModeChanged(room);
    room.mode = 'mesh';
    await sleep(700);
    alice.client.close();
    await waitFor(() => room.size === 0);
    await t.server.sessions.flush();
    const [session] = (await as('/api/v1/sessions')).body.sessions;
    expect(session.segments.map((s: { mode: string }) => s.mode)).to.deep.equal(['mesh', 'sfu']);
    expect(session.segments[0].to).to.equal(session.segments[1].from);
    expect(session.segments[1].to).to.equal(session.disconnected_at);
    const usage = (await as(`/api/v1/usage?${WIDE}`)).body;
    expect(usage.by_mode.mesh).to.be.closeTo(500 / 60_000, 0.003);
    expect(usage.by_mode.sfu).to.be.closeTo(700 / 60_000, 0.003);
    expect(usage.by_room[0].by_mode.sfu).to.equal(usage.by_mode.sfu);
  });

  it('never makes a join wait for a slow store write, and keeps each session\'s writes in order', async () => {
    const store = new MemoryStore();
    const open = store.sessions.open;
    const order: string[] = [];
    store.sessions.open = async (record) => {
      await sleep(800);
      order.push(`open ${record.user_id}`);
      return open(record);
    };
    const close = store.sessions.close;
    store.sessions.close = async (id, at, reason) => {
      order.push(`close ${reason}`);
      return close(id, at, reason);
    };
    t = await startServer({}, { store });
    a = await createTenant(t);
    const started = Date.now();
    const alice = await joinVia(t, a, { room_id: 'slow', user_id: 'alice' });
    expect(Date.now() - started).to.be.lessThan(500);
    expect((await emitAck(alice.client, 'leave')).ok).to.equal(true);
    await t.server.sessions.flush();
    expect(order).to.deep.equal(['open alice', 'close left']);
    const [session] = (await as('/api/v1/sessions')).body.sessions;
    expect(session.disconnect_reason).to.equal('left');
  });

  it('survives failing store writes (logged, signaling unaffected)', async () => {
    const store = new MemoryStore();
    store.sessions.open = async () => {
      throw new Error('database down');
    };
    t = await startServer({}, { store });
    a = await createTenant(t);
    const alice = await joinVia(t, a, { room_id: 'down', user_id: 'alice' });
    const bob = await joinVia(t, a, { room_id: 'down', user_id: 'bob' });
    expect(bob.ack.peers.map((p) => p.user_id)).to.deep.equal(['alice']);
    await t.server.sessions.flush();
    expect(alice.client.connected).to.equal(true);
  });
});

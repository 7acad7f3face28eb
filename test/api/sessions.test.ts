import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import { createServer } from '../../server/index.js';
import { emitAck, startServer, TEST_KID, TEST_SECRET, waitFor, type TestServer } from '../helpers/server.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import { call, createTenant, joinVia, sleep, type ApiTenant } from './helpers.js';

const HOUR = 3600_000;
/** A window around now, well inside the 31-day cap. */
const around = (): string => `from=${new Date(Date.now() - HOUR).toISOString()}&to=${new Date(Date.now() + HOUR).toISOString()}`;
const cursorOf = (key: unknown): string => Buffer.from(JSON.stringify(key)).toString('base64url');

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
    await sleep(1200);
    const bobJoining = Date.now();
    const bob = await joinVia(t, a, { room_id: 'audit', user_id: 'bob' });
    await sleep(600);
    expect((await emitAck(alice.client, 'leave')).ok).to.equal(true);
    const leftAt = Date.now();
    bob.client.close();
    await t.server.sessions.flush();
    await waitFor(
      async () => (await as('/api/v1/sessions')).body.sessions.every((s: { disconnected_at: string | null }) => s.disconnected_at !== null),
      5000,
      'closed sessions',
    );
    const closedBy = Date.now();

    const sessions = (await as('/api/v1/sessions?room_id=audit')).body.sessions as Record<string, unknown>[];
    expect(sessions.map((s) => s.user_id)).to.deep.equal(['alice', 'bob']);
    const [aliceSession, bobSession] = sessions as [Record<string, any>, Record<string, any>]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(aliceSession).to.deep.include({
      room_id: 'audit',
      user_id: 'alice',
      jti: alice.minted.jti,
      peer_id: alice.ack.self.id,
      disconnect_reason: 'left',
    });
    expect(aliceSession.address).to.match(/127\.0\.0\.1/);
    // Bounds from the order of events, not from how fast this machine is: alice was joined
    // through both sleeps, and left before her leave was acknowledged.
    expect(aliceSession.duration_ms).to.be.within(1800, leftAt - Date.parse(from));
    expect(aliceSession.duration_ms).to.equal(Date.parse(aliceSession.disconnected_at) - Date.parse(aliceSession.connected_at));
    expect(aliceSession.segments).to.deep.equal([{ mode: 'mesh', from: aliceSession.connected_at, to: aliceSession.disconnected_at }]);
    expect(bobSession.disconnect_reason).to.equal('left');
    expect(bobSession.duration_ms).to.be.within(600, closedBy - bobJoining);

    const usage = (await as(`/api/v1/usage?from=${from}&to=${new Date(Date.now() + 1000).toISOString()}`)).body;
    const expectedMinutes = (aliceSession.duration_ms + bobSession.duration_ms) / 60_000;
    expect(usage.participant_minutes).to.be.closeTo(expectedMinutes, 0.002);
    expect(usage.by_mode.mesh).to.be.closeTo(expectedMinutes, 0.002);
    expect(usage.by_mode.sfu).to.equal(0);
    expect(usage.by_room).to.have.length(1);
    expect(usage.by_room[0].room_id).to.equal('audit');
    expect(usage.by_room[0].participant_minutes).to.be.closeTo(expectedMinutes, 0.002);

    // [from, to) clips: a window ending before anyone joined counts nothing.
    const before = (await as(`/api/v1/usage?from=${new Date(Date.parse(from) - HOUR).toISOString()}&to=${from}`)).body;
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
    // Each segment lasted at least its sleep, and usage is what the segments say (to the API's rounding).
    const spans = session.segments.map((s: { from: string; to: string }) => Date.parse(s.to) - Date.parse(s.from)) as number[];
    expect(spans[0]).to.be.at.least(500);
    expect(spans[1]).to.be.at.least(700);
    const usage = (await as(`/api/v1/usage?${around()}`)).body;
    expect(usage.by_mode.mesh).to.be.closeTo((spans[0] as number) / 60_000, 0.0005);
    expect(usage.by_mode.sfu).to.be.closeTo((spans[1] as number) / 60_000, 0.0005);
    expect(usage.by_room[0].by_mode.sfu).to.equal(usage.by_mode.sfu);
  });

  it("never makes a join wait for a slow store write, and keeps each session's writes in order", async () => {
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
    const alice = await joinVia(t, a, { room_id: 'slow', user_id: 'alice' });
    // The join was answered while its session write was still waiting in the store.
    expect(order).to.deep.equal([]);
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

  it('refuses a window over 31 days and a cursor it never wrote with 400 payload_invalid', async () => {
    t = await startServer();
    a = await createTenant(t);
    await joinVia(t, a, { room_id: 'w', user_id: 'alice' });
    const from = '2030-01-01T00:00:00.000Z';
    const at31Days = new Date(Date.parse(from) + 31 * 24 * HOUR).toISOString();
    const over = new Date(Date.parse(at31Days) + 1).toISOString();
    expect((await as(`/api/v1/usage?from=${from}&to=${at31Days}`)).status).to.equal(200);
    expect((await as(`/api/v1/sessions?from=${from}&to=${at31Days}`)).status).to.equal(200);
    for (const path of [`/api/v1/usage?from=${from}&to=${over}`, `/api/v1/sessions?from=${from}&to=${over}`]) {
      const response = await as(path);
      expect(response.status, path).to.equal(400);
      expect(response.body.error.code, path).to.equal('payload_invalid');
    }
    for (const path of [
      `/api/v1/sessions?cursor=${cursorOf([1e20, 'x'])}`,
      `/api/v1/sessions?cursor=${cursorOf(['1', 'x'])}`,
      `/api/v1/rooms?cursor=${cursorOf([1])}`,
      `/api/v1/rooms?live=true&cursor=${cursorOf([1])}`,
      `/api/v1/rooms?live=true&cursor=${Buffer.from('w').toString('base64url')}`,
    ]) {
      const response = await as(path);
      expect(response.status, path).to.equal(400);
      expect(response.body.error.code, path).to.equal('payload_invalid');
    }
    // The live listing pages with the same cursors as the stored one.
    await joinVia(t, a, { room_id: 'x', user_id: 'bob' });
    const page1 = (await as('/api/v1/rooms?live=true&limit=1')).body;
    expect(page1.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['w']);
    const page2 = (await as(`/api/v1/rooms?live=true&limit=1&cursor=${page1.next_cursor}`)).body;
    expect(page2.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['x']);
  });

  it('retries a failed close write, so a short store outage does not leave the session open', async () => {
    const store = new MemoryStore();
    const close = store.sessions.close;
    let failures = 0;
    store.sessions.close = async (id, at, reason) => {
      if (failures++ === 0) throw new Error('database down');
      return close(id, at, reason);
    };
    t = await startServer({}, { store });
    a = await createTenant(t);
    const alice = await joinVia(t, a, { room_id: 'retry', user_id: 'alice' });
    expect((await emitAck(alice.client, 'leave')).ok).to.equal(true);
    await t.server.sessions.flush();
    expect(failures).to.equal(2);
    const [session] = (await as('/api/v1/sessions')).body.sessions;
    expect(session).to.deep.include({ disconnect_reason: 'left' });
  });

  it('a session whose close was lost ends at its last heartbeat when its node (NODE_ID) starts again', async function () {
    this.timeout(15_000);
    const store = new MemoryStore();
    const env = { NODE_ID: 'node-a', SESSION_HEARTBEAT_MS: '1000' };
    t = await startServer(env, { store });
    a = await createTenant(t);
    const alice = await joinVia(t, a, { room_id: 'crash', user_id: 'alice' });
    await sleep(1300);
    const stored = async () => (await store.sessions.list(a.tenant_id, { limit: 10 })).items;
    const [beating] = await stored();
    expect(beating?.node_id).to.equal('node-a');
    expect(beating!.last_seen_at.getTime() - beating!.connected_at.getTime(), 'a heartbeat refreshed last_seen_at').to.be.at.least(900);
    // The close never reaches the store (as if the process died before writing it).
    const close = store.sessions.close;
    store.sessions.close = () => new Promise<void>(() => {});
    alice.client.close();
    await waitFor(() => t.server.rooms.get(a.tenant_id, 'crash') === undefined || t.server.rooms.get(a.tenant_id, 'crash')?.size === 0);
    const [lost] = await stored();
    expect(lost?.disconnected_at).to.equal(null);
    await t.close();
    store.sessions.close = close;

    // The same store (a MemoryStore keeps its records after close(), like the database that
    // outlives the process) under a new server with the same NODE_ID.
    const restarted = await createServer(testConfig({ SIGNING_KEYS: `${TEST_KID}:${TEST_SECRET}`, ...env }), { store });
    t = { ...t, server: restarted, url: restarted.url, close: () => restarted.close() };
    const [ended] = (await call(t, 'GET', '/api/v1/sessions', { secret: a.api_secret })).body.sessions;
    expect(ended).to.deep.include({ disconnect_reason: 'lost', disconnected_at: lost!.last_seen_at.toISOString() });
    const usage = (await call(t, 'GET', `/api/v1/usage?${around()}`, { secret: a.api_secret })).body;
    expect(usage.participant_minutes).to.be.closeTo((lost!.last_seen_at.getTime() - lost!.connected_at.getTime()) / 60_000, 0.001);
  });
});

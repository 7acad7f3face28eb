import { expect } from 'chai';
import { collect, expectConnectError, nextEvent, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { call, createTenant, joinVia, mintToken, sleep, tryJoin, type ApiTenant } from './helpers.js';

describe('api: rooms', () => {
  let t: TestServer;
  let a: ApiTenant;
  const as = (method: string, path: string, body?: unknown) => call(t, method, path, { secret: a.api_secret, body });

  beforeEach(async () => {
    t = await startServer();
    a = await createTenant(t, { name: 'A', limits: { max_rooms: 3, max_participants: 50 } });
  });
  afterEach(async () => {
    await t.close();
  });

  it('creates, reads, lists (paginated), updates and deletes rooms', async () => {
    const created = await as('POST', '/api/v1/rooms', {
      room_id: 'b-room',
      name: 'Standup',
      description: 'daily',
      max_participants: 10,
      mesh_threshold: 3,
      mode: 'mesh',
      metadata: { team: 'core' },
      expires_at: '2099-01-01T00:00:00Z',
    });
    expect(created.status).to.equal(201);
    expect(created.body).to.deep.include({
      room_id: 'b-room',
      name: 'Standup',
      description: 'daily',
      max_participants: 10,
      mesh_threshold: 3,
      mode: 'mesh',
      locked: false,
      expires_at: '2099-01-01T00:00:00.000Z',
      stored: true,
      live: false,
      current_mode: null,
      num_participants: 0,
    });
    expect(created.body.metadata).to.deep.equal({ team: 'core' });
    expect((await as('POST', '/api/v1/rooms', { room_id: 'b-room' })).body.error.code).to.equal('conflict');
    const defaults = await as('POST', '/api/v1/rooms', { room_id: 'a-room' });
    expect(defaults.body).to.deep.include({ name: 'a-room', max_participants: 50, mesh_threshold: 4, mode: 'auto', expires_at: null });
    await as('POST', '/api/v1/rooms', { room_id: 'c-room' });

    const first = await as('GET', '/api/v1/rooms?limit=2');
    expect(first.body.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['a-room', 'b-room']);
    expect(first.body.next_cursor).to.be.a('string');
    const second = await as('GET', `/api/v1/rooms?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['c-room']);
    expect(second.body.next_cursor).to.equal(null);

    const quota = await as('POST', '/api/v1/rooms', { room_id: 'd-room' });
    expect(quota.status).to.equal(403);
    expect(quota.body.error.code).to.equal('quota_exceeded');
    const tooBig = await as('PUT', '/api/v1/rooms/a-room', { max_participants: 51 });
    expect(tooBig.body.error.code).to.equal('quota_exceeded');
    expect((await as('PUT', '/api/v1/rooms/a-room', { expires_at: '2001-01-01T00:00:00Z' })).body.error.code).to.equal('payload_invalid');
    expect((await as('PUT', '/api/v1/rooms/a-room', {})).body.error.code).to.equal('payload_invalid');

    const updated = await as('PUT', '/api/v1/rooms/b-room', { name: 'Renamed', max_participants: null, metadata: { team: 'web' } });
    expect(updated.status).to.equal(200);
    expect(updated.body).to.deep.include({ name: 'Renamed', max_participants: 50, mesh_threshold: 3, description: 'daily' });
    expect(updated.body.metadata).to.deep.equal({ team: 'web' });
    expect((await as('GET', '/api/v1/rooms/b-room')).body.name).to.equal('Renamed');

    expect((await as('DELETE', '/api/v1/rooms/b-room')).status).to.equal(204);
    expect((await as('GET', '/api/v1/rooms/b-room')).status).to.equal(404);
    expect((await as('DELETE', '/api/v1/rooms/b-room')).status).to.equal(404);
    expect((await as('PUT', '/api/v1/rooms/b-room', { locked: true })).status).to.equal(404);
    expect((await as('POST', '/api/v1/rooms', { room_id: 'd-room' })).status).to.equal(201);
  });

  it('GET shows live participants (visible ones; hidden ones on request) and the current mode', async () => {
    await as('POST', '/api/v1/rooms', { room_id: 'live' });
    const alice = await joinVia(t, a, { room_id: 'live', user_id: 'alice', user_name: 'Alice', metadata: { x: 1 } });
    await joinVia(t, a, { room_id: 'live', user_id: 'rec', role: 'recorder' });
    const room = await as('GET', '/api/v1/rooms/live');
    expect(room.body).to.deep.include({ live: true, current_mode: 'mesh', num_participants: 2 });
    expect(room.body.participants).to.have.length(1);
    expect(room.body.participants[0]).to.deep.include({ id: alice.ack.self.id, user_id: 'alice', name: 'Alice', hidden: false });
    expect(room.body.participants[0].metadata).to.deep.equal({ x: 1 });
    expect(Date.parse(room.body.participants[0].joined_at)).to.be.closeTo(Date.now(), 5000);

    const visible = await as('GET', '/api/v1/rooms/live/participants');
    expect(visible.body.participants.map((p: { user_id: string }) => p.user_id)).to.deep.equal(['alice']);
    const all = await as('GET', '/api/v1/rooms/live/participants?include_hidden=true');
    expect(all.body.participants.map((p: { user_id: string; hidden: boolean }) => [p.user_id, p.hidden])).to.deep.equal([
      ['alice', false],
      ['rec', true],
    ]);
    const list = await as('GET', '/api/v1/rooms');
    expect(list.body.rooms[0]).to.deep.include({ room_id: 'live', live: true, num_participants: 2 });
    expect(list.body.rooms[0]).to.not.have.property('participants');

    // A room created by a join (auto_create_rooms) is visible while live, and a PUT stores it.
    await joinVia(t, a, { room_id: 'adhoc', user_id: 'zed' });
    const adhoc = await as('GET', '/api/v1/rooms/adhoc');
    expect(adhoc.body).to.deep.include({ stored: false, live: true, num_participants: 1 });
    const stored = await as('PUT', '/api/v1/rooms/adhoc', { description: 'now stored' });
    expect(stored.body).to.deep.include({ stored: true, description: 'now stored' });
    expect((await as('GET', '/api/v1/rooms/nothing/participants')).status).to.equal(404);
    expect((await as('GET', '/api/v1/rooms/nothing')).status).to.equal(404);
  });

  it('lists live rooms with live=true (stored or created by a join), in room_id order, paginated, per tenant', async () => {
    const c = await createTenant(t, { name: 'C', limits: { max_rooms: 10, max_participants: 50 } });
    const asC = (path: string) => call(t, 'GET', path, { secret: c.api_secret });
    expect((await call(t, 'POST', '/api/v1/rooms', { secret: c.api_secret, body: { room_id: 'b-stored' } })).status).to.equal(201);
    expect((await call(t, 'POST', '/api/v1/rooms', { secret: c.api_secret, body: { room_id: 'd-idle' } })).status).to.equal(201);
    await joinVia(t, c, { room_id: 'b-stored', user_id: 'u1' });
    await joinVia(t, c, { room_id: 'a-adhoc', user_id: 'u2' });
    await joinVia(t, c, { room_id: 'c:team@x', user_id: 'u3' });
    await joinVia(t, a, { room_id: 'a-other-tenant', user_id: 'u4' });

    const first = await asC('/api/v1/rooms?live=true&limit=2');
    expect(first.status).to.equal(200);
    expect(first.body.rooms.map((r: { room_id: string; stored: boolean; live: boolean }) => [r.room_id, r.stored, r.live])).to.deep.equal([
      ['a-adhoc', false, true],
      ['b-stored', true, true],
    ]);
    expect(first.body.next_cursor).to.be.a('string');
    const second = await asC(`/api/v1/rooms?live=true&limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['c:team@x']);
    expect(second.body.next_cursor).to.equal(null);
    // Without live=true: the stored rooms, live or not.
    const stored = await asC('/api/v1/rooms');
    expect(stored.body.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['b-stored', 'd-idle']);
    // Tenant A sees only its own live room.
    const ofA = await as('GET', '/api/v1/rooms?live=true');
    expect(ofA.body.rooms.map((r: { room_id: string }) => r.room_id)).to.deep.equal(['a-other-tenant']);
    expect((await as('GET', '/api/v1/rooms?live=yes')).status).to.equal(400);
  });

  it('PUT max_participants, locked and mesh_threshold take effect on the live room at once', async () => {
    await as('POST', '/api/v1/rooms', { room_id: 'cfg' });
    const alice = await joinVia(t, a, { room_id: 'cfg', user_id: 'alice' });
    await joinVia(t, a, { room_id: 'cfg', user_id: 'bob' });
    const updates = collect<{ config: { max_participants: number; locked: boolean; mesh_threshold: number } }>(
      alice.client,
      'room_updated',
    );

    const full = await as('PUT', '/api/v1/rooms/cfg', { max_participants: 2 });
    expect(full.body).to.deep.include({ max_participants: 2, live: true });
    const carol = await tryJoin(t, (await mintToken(t, a, { room_id: 'cfg', user_id: 'carol' })).token);
    expect(carol.code).to.equal('room_full');

    await as('PUT', '/api/v1/rooms/cfg', { max_participants: 10, locked: true });
    const dave = await tryJoin(t, (await mintToken(t, a, { room_id: 'cfg', user_id: 'dave' })).token);
    expect(dave.code).to.equal('room_locked');
    // A moderator still gets in.
    const host = await tryJoin(t, (await mintToken(t, a, { room_id: 'cfg', user_id: 'host', role: 'host' })).token);
    expect(host.code).to.equal(null);

    await as('PUT', '/api/v1/rooms/cfg', { locked: false, mesh_threshold: 7 });
    const erin = await tryJoin(t, (await mintToken(t, a, { room_id: 'cfg', user_id: 'erin' })).token);
    expect(erin.code).to.equal(null);
    expect(t.server.rooms.get(a.tenant_id, 'cfg')?.config.mesh_threshold).to.equal(7);

    await waitFor(() => updates.length >= 3, 2000, 'room_updated events');
    expect(updates.map((u) => u.config.max_participants)).to.deep.equal([2, 10, 10]);
    expect(updates.map((u) => u.config.locked)).to.deep.equal([false, true, false]);
    expect(updates[2]?.config.mesh_threshold).to.equal(7);
    // A change that does not touch the live config sends nothing.
    await as('PUT', '/api/v1/rooms/cfg', { description: 'quiet' });
    await sleep(100);
    expect(updates).to.have.length(3);
  });

  it('DELETE closes the live room: every peer gets room_closed (reason deleted)', async () => {
    await as('POST', '/api/v1/rooms', { room_id: 'del' });
    const alice = await joinVia(t, a, { room_id: 'del', user_id: 'alice' });
    const bob = await joinVia(t, a, { room_id: 'del', user_id: 'bob' });
    const closedA = nextEvent<{ reason: string }>(alice.client, 'room_closed');
    const closedB = nextEvent<{ reason: string }>(bob.client, 'room_closed');
    expect((await as('DELETE', '/api/v1/rooms/del')).status).to.equal(204);
    expect(await closedA).to.deep.equal({ reason: 'deleted' });
    expect(await closedB).to.deep.equal({ reason: 'deleted' });
    expect(t.server.rooms.get(a.tenant_id, 'del')).to.equal(undefined);
    expect(await t.server.store.rooms.get(a.tenant_id, 'del')).to.equal(null);
    // A live room that was never stored can be deleted too.
    const zed = await joinVia(t, a, { room_id: 'adhoc', user_id: 'zed' });
    const closedZ = nextEvent<{ reason: string }>(zed.client, 'room_closed');
    expect((await as('DELETE', '/api/v1/rooms/adhoc')).status).to.equal(204);
    expect((await closedZ).reason).to.equal('deleted');
  });

  it('expiry closes the live room with reason expired, and PUT re-arms it', async () => {
    const soon = (ms = 600) => new Date(Date.now() + ms).toISOString();
    await as('POST', '/api/v1/rooms', { room_id: 'exp', expires_at: new Date(Date.now() + 60_000).toISOString() });
    const alice = await joinVia(t, a, { room_id: 'exp', user_id: 'alice' });
    const closed = nextEvent<{ reason: string }>(alice.client, 'room_closed', 10_000);
    const rearmedTo = soon();
    expect((await as('PUT', '/api/v1/rooms/exp', { expires_at: rearmedTo })).status).to.equal(200);
    expect(await closed).to.deep.equal({ reason: 'expired' });
    // Order, not a wall-clock window: closed at the new instant (not before it), long before the
    // old one (the event came within this test's timeout). Timers may fire a few ms early.
    expect(Date.now()).to.be.at.least(Date.parse(rearmedTo) - 20);
    expect(t.server.rooms.get(a.tenant_id, 'exp')).to.equal(undefined);
    // Expired: joins are refused.
    await sleep(100);
    const late = await tryJoin(t, (await mintToken(t, a, { room_id: 'exp', user_id: 'late' })).token);
    expect(late.code).to.equal('room_not_found');

    // Expiry set at creation arms when the room goes live; clearing it disarms.
    // (1.5 s ahead: a join on a loaded machine must still come before the expiry.)
    await as('POST', '/api/v1/rooms', { room_id: 'exp2', expires_at: soon(1500) });
    const bob = await joinVia(t, a, { room_id: 'exp2', user_id: 'bob' });
    const closed2 = nextEvent<{ reason: string }>(bob.client, 'room_closed', 10_000);
    expect(await closed2).to.deep.equal({ reason: 'expired' });

    const disarmed = soon(1500);
    await as('POST', '/api/v1/rooms', { room_id: 'exp3', expires_at: disarmed });
    const carol = await joinVia(t, a, { room_id: 'exp3', user_id: 'carol' });
    const events = collect(carol.client, 'room_closed');
    expect((await as('PUT', '/api/v1/rooms/exp3', { expires_at: null })).status).to.equal(200);
    // Past the instant it would have closed at.
    await sleep(Math.max(0, Date.parse(disarmed) - Date.now()) + 300);
    expect(events).to.deep.equal([]);
    expect(carol.client.connected).to.equal(true);
  });

  it('kicks a participant: kicked, disconnected, token revoked so it cannot rejoin', async () => {
    const alice = await joinVia(t, a, { room_id: 'k', user_id: 'alice' });
    const bob = await joinVia(t, a, { room_id: 'k', user_id: 'bob' });
    const kicked = nextEvent<{ reason: string }>(bob.client, 'kicked');
    const left = nextEvent<{ user_id: string; reason: string }>(alice.client, 'peer_left');
    const gone = nextEvent(bob.client, 'disconnect');
    expect((await as('DELETE', '/api/v1/rooms/k/participants/bob')).status).to.equal(204);
    expect(await kicked).to.deep.equal({ reason: 'kicked' });
    expect(await left).to.deep.include({ user_id: 'bob', reason: 'kicked' });
    await gone;
    expect((await expectConnectError(t.connect(bob.minted.token))).message).to.equal('token_revoked');
    const again = await as('DELETE', '/api/v1/rooms/k/participants/bob');
    expect(again.status).to.equal(404);
    expect(again.body.error.code).to.equal('peer_not_found');
    // A fresh token for the same user may join again (the operator decides).
    expect((await tryJoin(t, (await mintToken(t, a, { room_id: 'k', user_id: 'bob' })).token)).code).to.equal(null);
  });
});

import { expect } from 'chai';
import { collect, emitAck, nextEvent, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';
import { call } from '../api/helpers.js';

describe('rooms and presence', () => {
  let t: TestServer;

  beforeEach(async () => {
    t = await startServer({ MAX_PARTICIPANTS: '3' });
    await t.addTenant('t2');
  });
  afterEach(async () => {
    await t.close();
  });

  it('announces joins and lists existing peers', async () => {
    const a = await t.join({ room: 'r', user: 'alice' });
    const joined = nextEvent<{ user_id: string; id: string }>(a.client, 'peer_joined');
    const b = await t.join({ room: 'r', user: 'bob' });
    expect((await joined).user_id).to.equal('bob');
    expect(b.ack.peers.map((p) => p.user_id)).to.deep.equal(['alice']);
    expect(b.ack.peers[0]?.id).to.equal(a.ack.self.id);
  });

  it('keeps two rooms isolated: neither presence nor signals cross', async () => {
    const a = await t.join({ room: 'one', user: 'alice' });
    const aJoins = collect(a.client, 'peer_joined');
    const aSignals = collect(a.client, 'signal');
    const b = await t.join({ room: 'two', user: 'bob' });
    expect(b.ack.peers).to.deep.equal([]);
    const response = await emitAck(b.client, 'signal', { to: a.ack.self.id, candidate: { candidate: '' } });
    expect(response).to.deep.equal({ ok: false, error: { code: 'peer_not_found', message: 'no such peer in this room' } });
    await new Promise((r) => setTimeout(r, 100));
    expect(aJoins).to.deep.equal([]);
    expect(aSignals).to.deep.equal([]);
  });

  it('keeps tenants isolated: A\'s room "x" and B\'s room "x" are different rooms', async () => {
    const a = await t.join({ room: 'x', user: 'alice', tenant: 't1' });
    const aJoins = collect(a.client, 'peer_joined');
    const b = await t.join({ room: 'x', user: 'bob', tenant: 't2' });
    expect(b.ack.peers).to.deep.equal([]);
    const response = await emitAck(b.client, 'signal', { to: a.ack.self.id, candidate: { candidate: '' } });
    expect(response.ok).to.equal(false);
    expect(t.server.rooms.get('t1', 'x')?.size).to.equal(1);
    expect(t.server.rooms.get('t2', 'x')?.size).to.equal(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(aJoins).to.deep.equal([]);
  });

  it('refuses a join past max participants with room_full', async () => {
    for (const user of ['a', 'b', 'c']) await t.join({ room: 'full', user });
    const client = await t.connect(t.mint({ room: 'full', user: 'd' }));
    const ack = await emitAck(client, 'join', {});
    expect(ack).to.deep.include({ ok: false });
    if (!ack.ok) expect(ack.error.code).to.equal('room_full');
  });

  it('does not list or announce hidden participants', async () => {
    const a = await t.join({ room: 'h', user: 'alice' });
    const aJoins = collect(a.client, 'peer_joined');
    const aLeaves = collect(a.client, 'peer_left');
    const hidden = await t.join({ room: 'h', user: 'recorder', role: 'recorder' });
    expect(hidden.ack.peers.map((p) => p.user_id)).to.deep.equal(['alice']);
    const b = await t.join({ room: 'h', user: 'bob' });
    expect(b.ack.peers.map((p) => p.user_id)).to.deep.equal(['alice']);
    hidden.client.close();
    await waitFor(() => t.server.rooms.get('t1', 'h')?.size === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(aJoins.map((p) => (p as { user_id: string }).user_id)).to.deep.equal(['bob']);
    expect(aLeaves).to.deep.equal([]);
  });

  it('tells the others with peer_left when a peer disconnects or leaves', async () => {
    const a = await t.join({ room: 'l', user: 'alice' });
    const b = await t.join({ room: 'l', user: 'bob' });
    const c = await t.join({ room: 'l', user: 'carol' });
    const left = nextEvent<{ id: string; user_id: string; reason: string }>(a.client, 'peer_left');
    b.client.close();
    expect(await left).to.deep.equal({ id: b.ack.self.id, user_id: 'bob', reason: 'left' });
    const left2 = nextEvent<{ user_id: string; reason: string }>(a.client, 'peer_left');
    expect(await emitAck(c.client, 'leave')).to.deep.equal({ ok: true });
    expect(await left2).to.include({ user_id: 'carol', reason: 'left' });
    const afterLeave = await emitAck(c.client, 'signal', { to: a.ack.self.id, candidate: { candidate: '' } });
    expect(afterLeave.ok === false && afterLeave.error.code).to.equal('not_in_room');
  });

  it('closes an empty room after its grace period, not before', async () => {
    const a = await t.join({ room: 'grace', user: 'alice' });
    a.client.close();
    await waitFor(() => t.server.rooms.get('t1', 'grace')?.size === 0, 2000, 'peer removal');
    expect(t.server.rooms.get('t1', 'grace')).to.not.equal(undefined);
    await waitFor(() => t.server.rooms.get('t1', 'grace') === undefined, 2000, 'room close');
  });

  it('keeps a room whose grace period is interrupted by a new join', async () => {
    const a = await t.join({ room: 'rejoin', user: 'alice' });
    const room = t.server.rooms.get('t1', 'rejoin');
    a.client.close();
    await waitFor(() => room?.size === 0);
    await t.join({ room: 'rejoin', user: 'bob' });
    await new Promise((r) => setTimeout(r, 250));
    expect(t.server.rooms.get('t1', 'rejoin')).to.equal(room);
  });

  it('replaces an older connection of the same user (duplicate identity)', async () => {
    const first = await t.join({ room: 'dup', user: 'alice' });
    const kicked = nextEvent<{ reason: string }>(first.client, 'kicked');
    const second = await t.join({ room: 'dup', user: 'alice' });
    expect((await kicked).reason).to.equal('duplicate_identity');
    expect(second.ack.peers).to.deep.equal([]);
    expect(t.server.rooms.get('t1', 'dup')?.size).to.equal(1);
  });

  it("an older connection's join landing after a newer one's is refused (conflict): the newer connection stays", async () => {
    const older = await t.connect(t.mint({ room: 'late', user: 'alice' }));
    await new Promise((r) => setTimeout(r, 20)); // a later handshake, by the clock's millisecond
    const newer = await t.connect(t.mint({ room: 'late', user: 'alice' }));
    const kicked: unknown[] = [];
    newer.on('kicked', (payload: unknown) => kicked.push(payload));
    expect((await emitAck(newer, 'join', {})).ok).to.equal(true);
    const late = await emitAck(older, 'join', {});
    expect(late.ok === false && late.error.code).to.equal('conflict');
    await new Promise((r) => setTimeout(r, 200));
    expect(kicked, 'the newer connection was not replaced').to.deep.equal([]);
    const room = t.server.rooms.get('t1', 'late');
    expect(room?.size).to.equal(1);
    expect([...(room?.peers.values() ?? [])][0]?.socket.id).to.equal(newer.id);
    // The older connection may still join once the newer one is gone.
    newer.close();
    await waitFor(() => room?.size === 0);
    expect((await emitAck(older, 'join', {})).ok).to.equal(true);
  });

  it('refuses a second join on one socket', async () => {
    const a = await t.join({ room: 'twice', user: 'alice' });
    const again = await emitAck(a.client, 'join', {});
    expect(again.ok === false && again.error.code).to.equal('already_joined');
  });

  it('updates metadata behind canUpdateOwnMetadata and announces it', async () => {
    const host = await t.join({ room: 'meta', user: 'host', role: 'host' });
    const guest = await t.join({ room: 'meta', user: 'guest', role: 'guest' });
    const updated = nextEvent<{ user_id: string; metadata: object }>(guest.client, 'peer_updated');
    const ok = await emitAck(host.client, 'update_metadata', { metadata: { hand: true } });
    expect(ok.ok).to.equal(true);
    expect(await updated).to.deep.include({ user_id: 'host', metadata: { hand: true } });
    const refused = await emitAck(guest.client, 'update_metadata', { metadata: { hand: true } });
    expect(refused.ok === false && refused.error.code).to.equal('forbidden');
  });

  it('lets a roomAdmin lock the room (room_locked for new joins) and kick a peer who then cannot rejoin', async () => {
    const host = await t.join({ room: 'adm', user: 'host', role: 'host' });
    const guestToken = t.mint({ room: 'adm', user: 'guest' });
    const guest = await t.connect(guestToken);
    expect((await emitAck(guest, 'join', {})).ok).to.equal(true);
    const guestPeer = t.server.rooms.get('t1', 'adm')?.peerByUser('guest');

    const refusedLock = await emitAck(guest, 'admin:lock', { locked: true });
    expect(refusedLock.ok === false && refusedLock.error.code).to.equal('forbidden');
    expect(await emitAck(host.client, 'admin:lock', { locked: true })).to.deep.equal({ ok: true, locked: true });
    const late = await t.connect(t.mint({ room: 'adm', user: 'late' }));
    const lateAck = await emitAck(late, 'join', {});
    expect(lateAck.ok === false && lateAck.error.code).to.equal('room_locked');

    const kicked = nextEvent<{ reason: string }>(guest, 'kicked');
    expect(await emitAck(host.client, 'admin:kick', { peer_id: guestPeer?.id, reason: 'spam' })).to.deep.equal({ ok: true });
    expect((await kicked).reason).to.equal('spam');
    const error = await t.connect(guestToken).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(error).to.equal('token_revoked');
  });

  it("lets a roomAdmin mute a peer's audio or video: everyone, the peer included, sees it in peer_updated", async () => {
    const host = await t.join({ room: 'mute', user: 'host', role: 'host' });
    const guest = await t.join({ room: 'mute', user: 'guest' });
    const other = await t.join({ room: 'mute', user: 'other' });
    const guestId = guest.ack.self.id;

    const refused = await emitAck(other.client, 'admin:mute', { peer_id: guestId, kind: 'audio', muted: true });
    expect(refused.ok === false && refused.error.code).to.equal('forbidden');
    const unknown = await emitAck(host.client, 'admin:mute', { peer_id: 'p_nobody', kind: 'audio', muted: true });
    expect(unknown.ok === false && unknown.error.code).to.equal('peer_not_found');
    for (const bad of [
      { peer_id: guestId, kind: 'screen', muted: true },
      { peer_id: guestId, kind: 'audio' },
      { peer_id: { $ne: null }, kind: 'audio', muted: true },
    ]) {
      const ack = await emitAck(host.client, 'admin:mute', bad);
      expect(ack.ok === false && ack.error.code, JSON.stringify(bad)).to.equal('payload_invalid');
    }

    const seenByGuest = nextEvent<{ id: string; muted?: object }>(guest.client, 'peer_updated');
    const seenByOther = nextEvent<{ id: string; muted?: object }>(other.client, 'peer_updated');
    expect(await emitAck(host.client, 'admin:mute', { peer_id: guestId, kind: 'audio', muted: true })).to.deep.equal({ ok: true });
    for (const seen of [await seenByGuest, await seenByOther])
      expect(seen).to.deep.include({ id: guestId, muted: { audio: true, video: false } });
    // A newcomer sees the mute in the join ack's peer list (the room holds 3: one leaves first).
    expect((await emitAck(other.client, 'leave')).ok).to.equal(true);
    const late = await t.join({ room: 'mute', user: 'late' });
    expect(late.ack.peers.find((p) => p.id === guestId)?.muted).to.deep.equal({ audio: true, video: false });

    const unmuted = nextEvent<{ id: string; muted?: object }>(late.client, 'peer_updated');
    expect((await emitAck(host.client, 'admin:mute', { peer_id: guestId, kind: 'audio', muted: false })).ok).to.equal(true);
    expect((await unmuted).muted).to.equal(undefined);
  });

  /** Joins and answers with the client and the ack's error code (null when it joined). */
  const tryJoin = async (room: string, user: string, tenant: string): Promise<{ client: TestClient; code: string | null }> => {
    const client = await t.connect(t.mint({ room, user, tenant }));
    const ack = await emitAck(client, 'join', {});
    return { client, code: ack.ok ? null : ack.error.code };
  };
  const joinCode = async (room: string, user: string, tenant: string): Promise<string | null> => (await tryJoin(room, user, tenant)).code;

  it('with auto_create_rooms false, joins only rooms that are stored (room_not_found otherwise)', async () => {
    await t.addTenant('strict', { auto_create_rooms: false });
    expect(await joinCode('nowhere', 'alice', 'strict')).to.equal('room_not_found');
    expect(t.server.rooms.get('strict', 'nowhere')).to.equal(undefined);
    const stored = await call(t, 'POST', '/api/v1/rooms', { secret: 'secret-strict', body: { room_id: 'stored' } });
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    expect(await joinCode('stored', 'alice', 'strict')).to.equal(null);
    expect(t.server.rooms.get('strict', 'stored')?.size).to.equal(1);
    // Another tenant's stored room of the same id does not count.
    expect(await joinCode('stored', 'bob', 't2')).to.equal(null);
    await t.addTenant('strict2', { auto_create_rooms: false });
    expect(await joinCode('stored', 'carol', 'strict2')).to.equal('room_not_found');
  });

  it('refuses the (max_rooms+1)-th live room with quota_exceeded, and admits a new one once a room closed', async () => {
    await t.addTenant('small', { max_rooms: 2 });
    const first = await t.join({ room: 'r1', user: 'alice', tenant: 'small' });
    await t.join({ room: 'r2', user: 'bob', tenant: 'small' });
    expect(await joinCode('r3', 'carol', 'small')).to.equal('quota_exceeded');
    expect(t.server.rooms.get('small', 'r3')).to.equal(undefined);
    // A live room takes more peers: the quota counts rooms, not joins; other tenants are not affected.
    const dave = await tryJoin('r1', 'dave', 'small');
    expect(dave.code).to.equal(null);
    expect(await joinCode('r3', 'erin', 't2')).to.equal(null);
    // r1 empties, closes after its grace period, and frees its place.
    first.client.close();
    dave.client.close();
    await waitFor(() => t.server.rooms.get('small', 'r1') === undefined, 5000, 'r1 closed');
    expect(await joinCode('r3', 'carol', 'small')).to.equal(null);
    expect(await joinCode('r4', 'frank', 'small')).to.equal('quota_exceeded');
  });
});

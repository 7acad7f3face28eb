/**
 * Review of max_screen_shares (issue 19) on the SFU: races and ways to free a slot while the
 * share goes on. Real server, real Socket.IO clients, a real mediasoup worker; the room allows
 * one screen share (the default).
 */
import { expect } from 'chai';
import { emitAck, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', MESH_THRESHOLD: '1' };
const codeOf = (ack: { ok: boolean; error?: { code: string } }): string => (ack.ok ? 'ok' : (ack.error?.code ?? '?'));

describe('review: max_screen_shares on the SFU', function () {
  this.timeout(30000);
  let t: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  let aliceId = '';
  let bobId = '';

  beforeEach(async () => {
    t = await startServer(SFU_ENV);
    const a = await t.join({ room: 's', user: 'alice' });
    const b = await t.join({ room: 's', user: 'bob' });
    [alice, bob, aliceId, bobId] = [a.client, b.client, a.ack.self.id, b.ack.self.id];
    await waitFor(() => t.server.rooms.get('t1', 's')?.mode === 'sfu', 5000, 'promotion');
  });
  afterEach(async () => {
    await t.close();
  });

  const sendTransport = async (client: TestClient): Promise<string> => {
    const ack = await emitAck(client, 'sfu:create_transport', { direction: 'send' });
    if (!ack.ok) throw new Error(ack.error.code);
    return (ack.transport as { id: string }).id;
  };
  const produceScreen = (client: TestClient, transport: string, ssrc: number, trackId?: string) =>
    emitAck(client, 'sfu:produce', {
      transport_id: transport,
      kind: 'video',
      app_data: { source: 'screen', ...(trackId ? { track_id: trackId } : {}) },
      rtp_parameters: {
        mid: String(ssrc),
        codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }],
        encodings: [{ ssrc }],
        rtcp: { cname: 'x' },
      },
    });
  const screenProducers = (): number =>
    [aliceId, bobId].flatMap((id) => t.server.sfu?.get('t1/s')?.producerEncodings(id) ?? []).filter((p) => p.kind === 'video').length;

  it('lets one of two screen producers sent at once through (two sockets, neither waiting for the other)', async () => {
    const [aliceTransport, bobTransport] = await Promise.all([sendTransport(alice), sendTransport(bob)]);
    const acks = await Promise.all([produceScreen(alice, aliceTransport, 5001), produceScreen(bob, bobTransport, 5002)]);
    expect(acks.map(codeOf).sort()).to.deep.equal(['ok', 'quota_exceeded']);
    expect(screenProducers()).to.equal(1);
  });

  it('refuses a screen announcement made while a screen producer is being created', async () => {
    const aliceTransport = await sendTransport(alice);
    const [produced, announced] = await Promise.all([
      produceScreen(alice, aliceTransport, 5003),
      emitAck(bob, 'publish_track', { track_id: 'bob-screen', kind: 'video', source: 'screen' }),
    ]);
    expect([codeOf(produced), codeOf(announced)].sort()).to.deep.equal(['ok', 'quota_exceeded']);
  });

  it('keeps the slot of a screen producer whose track is announced again as a camera', async () => {
    const aliceTransport = await sendTransport(alice);
    expect(codeOf(await emitAck(alice, 'publish_track', { track_id: 'a-screen', kind: 'video', source: 'screen' }))).to.equal('ok');
    expect(codeOf(await produceScreen(alice, aliceTransport, 5004, 'a-screen'))).to.equal('ok');
    // The producer still sends the screen (source screen); only its announcement changed.
    expect(codeOf(await emitAck(alice, 'publish_track', { track_id: 'a-screen', kind: 'video', source: 'camera' }))).to.equal('ok');
    const second = await emitAck(bob, 'publish_track', { track_id: 'b-screen', kind: 'video', source: 'screen' });
    expect(codeOf(second), 'a second screen share while the first is still produced').to.equal('quota_exceeded');
    const bobTransport = await sendTransport(bob);
    expect(codeOf(await produceScreen(bob, bobTransport, 5005))).to.equal('quota_exceeded');
  });

  it('refuses a second screen producer under the track id of the first (one announcement, two shares)', async () => {
    const aliceTransport = await sendTransport(alice);
    expect(codeOf(await emitAck(alice, 'publish_track', { track_id: 'a-screen', kind: 'video', source: 'screen' }))).to.equal('ok');
    expect(codeOf(await produceScreen(alice, aliceTransport, 5006, 'a-screen'))).to.equal('ok');
    // Another m-section (mid), the same track id: a second screen on the router.
    expect(codeOf(await produceScreen(alice, aliceTransport, 5007, 'a-screen'))).to.equal('quota_exceeded');
    expect(screenProducers()).to.equal(1);
  });

  it('answers a repeated produce of the same m-section (a client retrying) with the same screen producer', async () => {
    const aliceTransport = await sendTransport(alice);
    const [first, again] = await Promise.all([
      produceScreen(alice, aliceTransport, 5008, 'a-screen'),
      produceScreen(alice, aliceTransport, 5008, 'a-screen'),
    ]);
    const later = await produceScreen(alice, aliceTransport, 5008, 'a-screen');
    expect([first, again, later].map(codeOf)).to.deep.equal(['ok', 'ok', 'ok']);
    expect(new Set([first, again, later].map((ack) => (ack as { producer_id?: string }).producer_id)).size).to.equal(1);
    expect(screenProducers()).to.equal(1);
  });
});

describe('review: max_screen_shares and held places (mesh)', function () {
  this.timeout(30000);
  let t: TestServer;
  afterEach(async () => {
    await t.close();
  });

  it('keeps a dropped sharer’s slot while its place is held, gives it back on resume, and frees it when the place is given up', async () => {
    t = await startServer({ RESUME_GRACE_MS: '1500' });
    const alice = await t.join({ room: 'm', user: 'alice' });
    const bob = await t.join({ room: 'm', user: 'bob' });
    const share = (client: TestClient, trackId: string) =>
      emitAck(client, 'publish_track', { track_id: trackId, kind: 'video', source: 'screen' }).then(codeOf);
    expect(await share(alice.client, 'a-screen')).to.equal('ok');

    // Alice's connection drops: her place (and her share) is held.
    alice.client.io.engine.close();
    await waitFor(() => (t.server.rooms.get('t1', 'm')?.expected.size ?? 0) === 1, 5000, 'the held place');
    expect(await share(bob.client, 'b-screen')).to.equal('quota_exceeded');

    // She takes her place back: her share is hers again, still counted.
    const back = await t.connect(t.mint({ room: 'm', user: 'alice' }));
    const resumed = await emitAck(back, 'join', { resume: { peer_id: alice.ack.self.id } });
    expect(codeOf(resumed)).to.equal('ok');
    const self = (resumed as unknown as { self: { id: string; tracks?: Array<{ source: string }> } }).self;
    expect(self.id).to.equal(alice.ack.self.id);
    expect(t.server.rooms.get('t1', 'm')?.peers.get(self.id)?.tracks.get('a-screen')?.source).to.equal('screen');
    expect(await share(bob.client, 'b-screen')).to.equal('quota_exceeded');

    // Dropped again, and not back in time: the place and its share are given up.
    back.io.engine.close();
    await waitFor(() => (t.server.rooms.get('t1', 'm')?.expected.size ?? 0) === 1, 5000, 'the held place');
    await waitFor(() => t.server.rooms.get('t1', 'm')?.expected.size === 0, 5000, 'the place given up');
    expect(await share(bob.client, 'b-screen')).to.equal('ok');
  });
});

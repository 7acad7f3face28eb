/**
 * Track sources on the server (issue 19): the canPublishSources grant at the boundaries (token
 * API, JWT), `publish_track` / `unpublish_track` and the participant info they feed (socket
 * events, join ack, HTTP listing), the room's max_screen_shares, and the source checks of a mesh
 * SDP and of an SFU produce. Real server, real Socket.IO clients, real mediasoup workers.
 */
import { expect } from 'chai';
import type { PeerInfo, SfuProducerInfo, TrackInfo } from '../../protocol/events.js';
import { call, createTenant, joinVia, type ApiTenant } from '../api/helpers.js';
import {
  emitAck,
  expectConnectError,
  nextEvent,
  signRaw,
  startServer,
  validClaims,
  waitFor,
  type TestClient,
  type TestServer,
} from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1' };

type Joined = Awaited<ReturnType<TestServer['join']>>;

const codeOf = (ack: { ok: boolean; error?: { code: string } }): string => (ack.ok ? 'ok' : (ack.error?.code ?? '?'));

/** An SDP with one audio and one video section, each in the given direction. */
function sdp(audio: string, video: string): string {
  return [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=mid:0',
    `a=${audio}`,
    'a=rtpmap:111 opus/48000/2',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    'a=mid:1',
    `a=${video}`,
    'a=rtpmap:96 VP8/90000',
    '',
  ].join('\r\n');
}

describe('track sources: grants, announcements, screen-share policy', function () {
  this.timeout(30000);
  let t: TestServer;
  afterEach(async () => {
    await t.close();
  });

  describe('the canPublishSources grant at the boundaries', () => {
    let a: ApiTenant;
    beforeEach(async () => {
      t = await startServer();
      a = await createTenant(t, { name: 'A' });
    });

    it('mints the built-in guide preset (microphone only) and refuses malformed source lists with payload_invalid', async () => {
      const guide = await call(t, 'POST', '/api/v1/tokens', {
        secret: a.api_secret,
        body: { room_id: 'tour', user_name: 'g', role: 'guide' },
      });
      expect(guide.status, JSON.stringify(guide.body)).to.equal(201);
      expect(guide.body.grants).to.deep.include({
        roomJoin: true,
        canPublish: true,
        canPublishData: true,
        canPublishSources: ['microphone'],
      });
      const listener = await call(t, 'POST', '/api/v1/tokens', {
        secret: a.api_secret,
        body: { room_id: 'tour', user_name: 'l', role: 'listener' },
      });
      expect(listener.body.grants).to.include({ canPublish: false });

      const explicit = await call(t, 'POST', '/api/v1/tokens', {
        secret: a.api_secret,
        body: {
          room_id: 'tour',
          user_name: 's',
          grants: { roomJoin: true, canPublish: true, canPublishSources: ['screen', 'screen_audio'] },
        },
      });
      expect(explicit.status).to.equal(201);
      expect(explicit.body.grants.canPublishSources).to.deep.equal(['screen', 'screen_audio']);

      for (const sources of [['camera', 'window'], ['camera', 'camera'], 'camera', [1], [{ $ne: null }]]) {
        const refused = await call(t, 'POST', '/api/v1/tokens', {
          secret: a.api_secret,
          body: { room_id: 'tour', user_name: 'x', grants: { roomJoin: true, canPublishSources: sources } },
        });
        expect(refused.status, JSON.stringify(sources)).to.equal(400);
        expect(refused.body.error.code, JSON.stringify(sources)).to.equal('payload_invalid');
      }
    });

    it('carries the grant from a JWT into the join ack, and refuses a JWT whose source list is malformed (token_invalid)', async () => {
      const { ack } = await joinVia(t, a, { room_id: 'tour', user_name: 'g', role: 'guide' });
      expect(ack.self.grants.canPublishSources).to.deep.equal(['microphone']);

      const forged = signRaw(validClaims({ grants: { roomJoin: true, canPublish: true, canPublishSources: ['laser'] } }));
      const error = await expectConnectError(t.connect(forged));
      expect(error.message).to.equal('token_invalid');
    });
  });

  describe('publish_track in a mesh room', () => {
    let alice: Joined;
    let bob: Joined;
    beforeEach(async () => {
      t = await startServer();
      alice = await t.join({ room: 'm', user: 'alice' });
      bob = await t.join({ room: 'm', user: 'bob' });
    });

    it('announces each track with its source to the room, to late joiners and in the HTTP participant listing; unpublish removes it', async () => {
      const updated = nextEvent<PeerInfo>(bob.client, 'peer_updated');
      const ack = await emitAck(alice.client, 'publish_track', { track_id: 'screen-1', kind: 'video', source: 'screen' });
      expect(ack).to.deep.equal({ ok: true, track: { track_id: 'screen-1', kind: 'video', source: 'screen' } });
      expect((await updated).tracks).to.deep.equal([{ track_id: 'screen-1', kind: 'video', source: 'screen' }]);
      expect(codeOf(await emitAck(alice.client, 'publish_track', { track_id: 'mic-1', kind: 'audio', source: 'microphone' }))).to.equal(
        'ok',
      );

      const carol = await t.join({ room: 'm', user: 'carol' });
      const seen = carol.ack.peers.find((peer) => peer.user_id === 'alice');
      expect(seen?.tracks).to.deep.equal([
        { track_id: 'screen-1', kind: 'video', source: 'screen' },
        { track_id: 'mic-1', kind: 'audio', source: 'microphone' },
      ]);

      const listing = await call(t, 'GET', '/api/v1/rooms/m/participants', { secret: 'secret-t1' });
      expect(listing.status, JSON.stringify(listing.body)).to.equal(200);
      const listed = (listing.body.participants as Array<{ user_id: string; tracks?: TrackInfo[] }>).find((p) => p.user_id === 'alice');
      expect(listed?.tracks?.map((track) => track.source)).to.deep.equal(['screen', 'microphone']);

      const removed = nextEvent<PeerInfo>(bob.client, 'peer_updated');
      expect(codeOf(await emitAck(alice.client, 'unpublish_track', { track_id: 'screen-1' }))).to.equal('ok');
      expect((await removed).tracks).to.deep.equal([{ track_id: 'mic-1', kind: 'audio', source: 'microphone' }]);
    });

    it('refuses malformed sources with payload_invalid', async () => {
      const bad: unknown[] = [
        { track_id: 't1', kind: 'video', source: 'window' },
        { track_id: 't1', kind: 'video', source: 'microphone' },
        { track_id: 't1', kind: 'audio', source: 'screen' },
        { track_id: 't1', kind: 'video' },
        { kind: 'video', source: 'camera' },
        { track_id: { $ne: null }, kind: 'video', source: 'camera' },
        { track_id: 't1', kind: 'video', source: 'camera', extra: true },
        { track_id: 'x'.repeat(200), kind: 'video', source: 'camera' },
        { track_id: 'a b', kind: 'video', source: 'camera' },
        { track_id: 't1', kind: 'video', source: 'camera', stream_id: '$where' },
      ];
      for (const payload of bad) {
        expect(codeOf(await emitAck(alice.client, 'publish_track', payload)), JSON.stringify(payload)).to.equal('payload_invalid');
      }
      expect(codeOf(await emitAck(alice.client, 'unpublish_track', { track_id: ['a'] }))).to.equal('payload_invalid');
    });

    it('gives the second screen share quota_exceeded (max_screen_shares 1), and lets it through once the first stopped', async () => {
      expect(codeOf(await emitAck(alice.client, 'publish_track', { track_id: 's-a', kind: 'video', source: 'screen' }))).to.equal('ok');
      // The same track announced again is not a second share.
      expect(codeOf(await emitAck(alice.client, 'publish_track', { track_id: 's-a', kind: 'video', source: 'screen' }))).to.equal('ok');
      expect(codeOf(await emitAck(bob.client, 'publish_track', { track_id: 's-b', kind: 'video', source: 'screen' }))).to.equal(
        'quota_exceeded',
      );
      expect(codeOf(await emitAck(alice.client, 'publish_track', { track_id: 's-a2', kind: 'video', source: 'screen' }))).to.equal(
        'quota_exceeded',
      );
      // Other sources are not limited by it.
      expect(codeOf(await emitAck(bob.client, 'publish_track', { track_id: 'c-b', kind: 'video', source: 'camera' }))).to.equal('ok');
      expect(codeOf(await emitAck(bob.client, 'publish_track', { track_id: 'sa-b', kind: 'audio', source: 'screen_audio' }))).to.equal(
        'ok',
      );
      await emitAck(alice.client, 'unpublish_track', { track_id: 's-a' });
      expect(codeOf(await emitAck(bob.client, 'publish_track', { track_id: 's-b', kind: 'video', source: 'screen' }))).to.equal('ok');
    });

    it('refuses a guide any source but its microphone and a listener every source (forbidden), on publish_track and on the SDP', async () => {
      const guide = await t.join({ room: 'm', user: 'guide', role: 'guide' });
      const listener = await t.join({ room: 'm', user: 'listener', role: 'listener' });
      expect(codeOf(await emitAck(guide.client, 'publish_track', { track_id: 'g-mic', kind: 'audio', source: 'microphone' }))).to.equal(
        'ok',
      );
      for (const [kind, source] of [
        ['video', 'camera'],
        ['video', 'screen'],
        ['audio', 'screen_audio'],
      ]) {
        const ack = await emitAck(guide.client, 'publish_track', { track_id: `g-${source}`, kind, source });
        expect(codeOf(ack), source).to.equal('forbidden');
      }
      expect(codeOf(await emitAck(listener.client, 'publish_track', { track_id: 'l-mic', kind: 'audio', source: 'microphone' }))).to.equal(
        'forbidden',
      );

      const to = alice.ack.self.id;
      const relayed = nextEvent<{ from: string }>(alice.client, 'signal');
      const audioOnly = { to, description: { type: 'offer', sdp: sdp('sendrecv', 'recvonly') } };
      expect(codeOf(await emitAck(guide.client, 'signal', audioOnly)), 'guide: audio').to.equal('ok');
      expect((await relayed).from).to.equal(guide.ack.self.id);
      const withVideo = { to, description: { type: 'offer', sdp: sdp('sendrecv', 'sendrecv') } };
      expect(codeOf(await emitAck(guide.client, 'signal', withVideo)), 'guide: video').to.equal('forbidden');
      const answerWithVideo = { to, description: { type: 'answer', sdp: sdp('recvonly', 'sendonly') } };
      expect(codeOf(await emitAck(guide.client, 'signal', answerWithVideo)), 'guide: video answer').to.equal('forbidden');
      expect(codeOf(await emitAck(listener.client, 'signal', audioOnly)), 'listener: audio').to.equal('forbidden');
      const receiveOnly = { to, description: { type: 'offer', sdp: sdp('recvonly', 'recvonly') } };
      expect(codeOf(await emitAck(listener.client, 'signal', receiveOnly)), 'listener: receive only').to.equal('ok');
    });
  });

  describe('max_screen_shares settings', () => {
    it('takes the server default (MAX_SCREEN_SHARES), the tenant limit and the room setting, and validates the room setting', async () => {
      t = await startServer({ MAX_SCREEN_SHARES: '0' });
      const a = await createTenant(t, { name: 'A', limits: { max_screen_shares: 2 } });
      const defaultRoom = await t.join({ room: 'd', user: 'alice' });
      expect(defaultRoom.ack.room.config.max_screen_shares).to.equal(0);
      expect(codeOf(await emitAck(defaultRoom.client, 'publish_track', { track_id: 's', kind: 'video', source: 'screen' }))).to.equal(
        'quota_exceeded',
      );

      const created = await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'talk', max_screen_shares: 1 } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      expect(created.body.max_screen_shares).to.equal(1);
      const other = await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'other' } });
      expect(other.body.max_screen_shares, 'the tenant limit').to.equal(2);
      for (const value of [-1, 101, 1.5, '2']) {
        const refused = await call(t, 'PUT', '/api/v1/rooms/talk', { secret: a.api_secret, body: { max_screen_shares: value } });
        expect(refused.status, String(value)).to.equal(400);
        expect(refused.body.error.code).to.equal('payload_invalid');
      }

      const first = await joinVia(t, a, { room_id: 'talk', user_name: 'one' });
      const second = await joinVia(t, a, { room_id: 'talk', user_name: 'two' });
      expect(codeOf(await emitAck(first.client, 'publish_track', { track_id: 's1', kind: 'video', source: 'screen' }))).to.equal('ok');
      expect(codeOf(await emitAck(second.client, 'publish_track', { track_id: 's2', kind: 'video', source: 'screen' }))).to.equal(
        'quota_exceeded',
      );
      // Raised on the live room: the participants hear it, and the second share goes through.
      const updated = nextEvent<{ config: { max_screen_shares: number } }>(second.client, 'room_updated');
      const raised = await call(t, 'PUT', '/api/v1/rooms/talk', { secret: a.api_secret, body: { max_screen_shares: 2 } });
      expect(raised.status, JSON.stringify(raised.body)).to.equal(200);
      expect((await updated).config.max_screen_shares).to.equal(2);
      expect(codeOf(await emitAck(second.client, 'publish_track', { track_id: 's2', kind: 'video', source: 'screen' }))).to.equal('ok');
    });
  });

  describe('sfu:produce (real mediasoup worker)', () => {
    let host: Joined;
    let guest: Joined;
    let guide: Joined;

    beforeEach(async () => {
      t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '2' });
      host = await t.join({ room: 's', user: 'host', role: 'host' });
      guest = await t.join({ room: 's', user: 'guest' });
      guide = await t.join({ room: 's', user: 'guide', role: 'guide' });
      await waitFor(() => t.server.rooms.get('t1', 's')?.mode === 'sfu', 5000, 'promotion');
    });

    const sendTransport = async (client: TestClient): Promise<string> => {
      const ack = await emitAck(client, 'sfu:create_transport', { direction: 'send' });
      if (!ack.ok) throw new Error(ack.error.code);
      return (ack.transport as { id: string }).id;
    };
    const video = (ssrc: number) => ({
      codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }],
      encodings: [{ ssrc }],
      rtcp: { cname: 'x' },
    });
    const audio = (ssrc: number) => ({
      codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }],
      encodings: [{ ssrc }],
      rtcp: { cname: 'x' },
    });

    it('requires a known source of the right kind in app_data (payload_invalid) and announces producers with it', async () => {
      const transport = await sendTransport(guest.client);
      const bad: unknown[] = [
        undefined,
        {},
        { source: 'window' },
        { source: 'microphone' },
        { source: ['camera'] },
        { source: 'camera', track_id: { $ne: null } },
      ];
      for (const appData of bad) {
        const ack = await emitAck(guest.client, 'sfu:produce', {
          transport_id: transport,
          kind: 'video',
          rtp_parameters: video(1001),
          ...(appData === undefined ? {} : { app_data: appData }),
        });
        expect(codeOf(ack), JSON.stringify(appData)).to.equal('payload_invalid');
      }
      const announced = nextEvent<SfuProducerInfo>(host.client, 'sfu:new_producer');
      const ack = await emitAck(guest.client, 'sfu:produce', {
        transport_id: transport,
        kind: 'video',
        rtp_parameters: video(1002),
        app_data: { source: 'screen', track_id: 'screen-track' },
      });
      expect(codeOf(ack), JSON.stringify(ack)).to.equal('ok');
      expect(await announced).to.deep.include({ peer_id: guest.ack.self.id, kind: 'video', source: 'screen', track_id: 'screen-track' });
      // A late joiner's list of producers carries the source too.
      const late = await t.join({ room: 's', user: 'late' });
      expect(late.ack.sfu?.producers.find((p) => p.kind === 'video')).to.deep.include({ source: 'screen', track_id: 'screen-track' });
    });

    it("lets a guide produce its microphone, refuses its camera and a listener's produce (forbidden)", async () => {
      const transport = await sendTransport(guide.client);
      const mic = await emitAck(guide.client, 'sfu:produce', {
        transport_id: transport,
        kind: 'audio',
        rtp_parameters: audio(2001),
        app_data: { source: 'microphone' },
      });
      expect(codeOf(mic), JSON.stringify(mic)).to.equal('ok');
      for (const [kind, source, parameters] of [
        ['video', 'camera', video(2002)],
        ['video', 'screen', video(2003)],
        ['audio', 'screen_audio', audio(2004)],
      ] as const) {
        const ack = await emitAck(guide.client, 'sfu:produce', {
          transport_id: transport,
          kind,
          rtp_parameters: parameters,
          app_data: { source },
        });
        expect(codeOf(ack), source).to.equal('forbidden');
      }
      const listener = await t.join({ room: 's', user: 'listener', role: 'listener' });
      const listenerTransport = await sendTransport(listener.client).catch(() => 'none');
      const refused = await emitAck(listener.client, 'sfu:produce', {
        transport_id: listenerTransport,
        kind: 'audio',
        rtp_parameters: audio(2005),
        app_data: { source: 'microphone' },
      });
      expect(codeOf(refused)).to.equal('forbidden');
    });

    it('gives a second screen producer quota_exceeded, whether the first was announced or only produced', async () => {
      const guestTransport = await sendTransport(guest.client);
      const hostTransport = await sendTransport(host.client);
      // Produced without publish_track: still counts.
      const first = await emitAck(guest.client, 'sfu:produce', {
        transport_id: guestTransport,
        kind: 'video',
        rtp_parameters: video(3001),
        app_data: { source: 'screen' },
      });
      expect(codeOf(first)).to.equal('ok');
      const second = await emitAck(host.client, 'sfu:produce', {
        transport_id: hostTransport,
        kind: 'video',
        rtp_parameters: video(3002),
        app_data: { source: 'screen', track_id: 'host-screen' },
      });
      expect(codeOf(second)).to.equal('quota_exceeded');
      expect(codeOf(await emitAck(host.client, 'publish_track', { track_id: 'host-screen', kind: 'video', source: 'screen' }))).to.equal(
        'quota_exceeded',
      );
      await emitAck(guest.client, 'sfu:close_producer', { producer_id: (first as unknown as { producer_id: string }).producer_id });

      // Announced first, then produced under the same track id: one share, not two.
      expect(codeOf(await emitAck(host.client, 'publish_track', { track_id: 'host-screen', kind: 'video', source: 'screen' }))).to.equal(
        'ok',
      );
      const announcedThenProduced = await emitAck(host.client, 'sfu:produce', {
        transport_id: hostTransport,
        kind: 'video',
        rtp_parameters: video(3003),
        app_data: { source: 'screen', track_id: 'host-screen' },
      });
      expect(codeOf(announcedThenProduced), JSON.stringify(announcedThenProduced)).to.equal('ok');
      const third = await emitAck(guest.client, 'sfu:produce', {
        transport_id: guestTransport,
        kind: 'video',
        rtp_parameters: video(3004),
        app_data: { source: 'screen' },
      });
      expect(codeOf(third)).to.equal('quota_exceeded');
    });
  });
});

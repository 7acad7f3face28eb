import { expect } from 'chai';
import { spatialLayerFor } from '../../server/sfu/SfuRoom.js';
import { emitAck, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', MESH_THRESHOLD: '2' };

describe('spatialLayerFor: the simulcast layer that covers a rendered size', () => {
  const three = [{ scaleResolutionDownBy: 4 }, { scaleResolutionDownBy: 2 }, { scaleResolutionDownBy: 1 }];
  const hd = { width: 1280, height: 720 };

  it('picks the lowest layer whose resolution covers what the element shows (object-fit contain)', () => {
    expect(spatialLayerFor(three, hd, { width: 160, height: 90 })).to.equal(0);
    expect(spatialLayerFor(three, hd, { width: 320, height: 180 })).to.equal(0);
    expect(spatialLayerFor(three, hd, { width: 640, height: 360 })).to.equal(1);
    expect(spatialLayerFor(three, hd, { width: 641, height: 700 })).to.equal(1); // 10% slack: 640 covers 641
    expect(spatialLayerFor(three, hd, { width: 800, height: 450 })).to.equal(2);
    expect(spatialLayerFor(three, hd, { width: 1280, height: 720 })).to.equal(2);
    expect(spatialLayerFor(three, hd, { width: 3840, height: 2160 })).to.equal(2);
    // A tall, narrow element shows a landscape video at its width.
    expect(spatialLayerFor(three, hd, { width: 300, height: 1000 })).to.equal(0);
  });

  it('sends the top layer when the source size is unknown, and reads a missing scale as halving per layer', () => {
    expect(spatialLayerFor(three, undefined, { width: 160, height: 90 })).to.equal(2);
    expect(spatialLayerFor([{}, {}, {}], hd, { width: 160, height: 90 })).to.equal(0);
    expect(spatialLayerFor([{}, {}, {}], hd, { width: 640, height: 360 })).to.equal(1);
    expect(spatialLayerFor([{ scaleResolutionDownBy: 1 }], hd, { width: 160, height: 90 })).to.equal(0);
  });
});

describe('sfu:consumer_preferences: adaptive stream on the server (real mediasoup worker)', function () {
  this.timeout(30000);
  let t: TestServer;
  let host: Awaited<ReturnType<TestServer['join']>>;
  let guest: Awaited<ReturnType<TestServer['join']>>;
  let videoProducer = '';
  let audioProducer = '';

  const transportOf = async (client: TestClient, direction: 'send' | 'recv'): Promise<string> => {
    const ack = await emitAck(client, 'sfu:create_transport', { direction });
    if (!ack.ok) throw new Error(ack.error.code);
    return (ack.transport as { id: string }).id;
  };
  const producerId = (ack: Awaited<ReturnType<typeof emitAck>>): string => {
    if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.message}`);
    return ack.producer_id as string;
  };

  before(async () => {
    t = await startServer(SFU_ENV);
    host = await t.join({ room: 'a', user: 'host', role: 'host' });
    guest = await t.join({ room: 'a', user: 'guest' });
    await t.join({ room: 'a', user: 'third' });
    await waitFor(() => t.server.rooms.get('t1', 'a')?.mode === 'sfu', 5000, 'promotion');
    const send = await transportOf(guest.client, 'send');
    // Three SSRC-signalled simulcast layers, as a browser's quarter, half and full resolution.
    videoProducer = producerId(
      await emitAck(guest.client, 'sfu:produce', {
        transport_id: send,
        kind: 'video',
        app_data: { source: 'camera' },
        rtp_parameters: {
          mid: '0',
          codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }],
          encodings: [
            { ssrc: 1001, scaleResolutionDownBy: 4, maxBitrate: 100000 },
            { ssrc: 1002, scaleResolutionDownBy: 2, maxBitrate: 300000 },
            { ssrc: 1003, scaleResolutionDownBy: 1, maxBitrate: 900000 },
          ],
          rtcp: { cname: 'g' },
        },
        video_size: { width: 1280, height: 720 },
      }),
    );
    audioProducer = producerId(
      await emitAck(guest.client, 'sfu:produce', {
        transport_id: send,
        kind: 'audio',
        app_data: { source: 'microphone' },
        rtp_parameters: {
          mid: '1',
          codecs: [{ mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc: 2001 }],
          rtcp: { cname: 'g' },
        },
      }),
    );
  });
  after(async () => {
    await t.close();
  });

  const consume = async (client: TestClient, transport: string, producer: string): Promise<string> => {
    const ack = await emitAck(client, 'sfu:consume', {
      transport_id: transport,
      producer_id: producer,
      rtp_capabilities: t.server.sfu?.get('t1/a')?.rtpCapabilities,
    });
    if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.message}`);
    return (ack.consumer as { id: string }).id;
  };
  const preferences = (client: TestClient, payload: unknown) => emitAck(client, 'sfu:consumer_preferences', payload);
  const state = () => t.server.sfu?.get('t1/a')?.consumerState(host.ack.self.id, videoProducer);

  it('records the producer’s three encodings', () => {
    const video = t.server.sfu
      ?.get('t1/a')
      ?.producerEncodings(guest.ack.self.id)
      .find((p) => p.kind === 'video');
    expect(video?.encodings.map((e) => e.scaleResolutionDownBy)).to.deep.equal([4, 2, 1]);
  });

  it('sets the preferred layer from the rendered size, the priority by layer, and pauses a consumer shown nowhere', async () => {
    const recv = await transportOf(host.client, 'recv');
    const consumer = await consume(host.client, recv, videoProducer);
    expect(state()?.type).to.equal('simulcast');
    // Visible before the client resumed it: still paused (its track is not ready yet).
    expect((await preferences(host.client, { consumer_id: consumer, visible: true, width: 160, height: 90 })).ok).to.equal(true);
    expect(state()).to.include({ paused: true, priority: 1 });
    expect(state()?.preferredLayers?.spatialLayer).to.equal(0);
    expect((await emitAck(host.client, 'sfu:resume', { consumer_id: consumer })).ok).to.equal(true);
    expect(state()?.paused).to.equal(false);

    expect((await preferences(host.client, { consumer_id: consumer, visible: true, width: 1280, height: 720 })).ok).to.equal(true);
    expect(state()?.preferredLayers?.spatialLayer).to.equal(2);
    expect(state()?.priority).to.equal(3);
    expect((await preferences(host.client, { consumer_id: consumer, visible: true, width: 640, height: 360 })).ok).to.equal(true);
    expect(state()?.preferredLayers?.spatialLayer).to.equal(1);

    expect((await preferences(host.client, { consumer_id: consumer, visible: false, width: 0, height: 0 })).ok).to.equal(true);
    expect(state()?.paused).to.equal(true);
    // A repeated resume (the SDK asks again after a late answer) does not show a hidden track.
    expect((await emitAck(host.client, 'sfu:resume', { consumer_id: consumer })).ok).to.equal(true);
    expect(state()?.paused).to.equal(true);
    expect((await preferences(host.client, { consumer_id: consumer, visible: true, width: 320, height: 180 })).ok).to.equal(true);
    expect(state()?.paused).to.equal(false);
    expect(state()?.preferredLayers?.spatialLayer).to.equal(0);
  });

  it('refuses malformed payloads (payload_invalid), another peer’s consumer (not_found) and audio consumers (payload_invalid)', async () => {
    const recv = await transportOf(host.client, 'recv');
    const video = await consume(host.client, recv, videoProducer);
    const audio = await consume(host.client, recv, audioProducer);
    const invalid = [
      { consumer_id: video, visible: true, width: 160 },
      { consumer_id: video, visible: 'yes', width: 160, height: 90 },
      { consumer_id: video, visible: true, width: -1, height: 90 },
      { consumer_id: video, visible: true, width: 160.5, height: 90 },
      { consumer_id: video, visible: true, width: 99999, height: 90 },
      { consumer_id: video, visible: true, width: 160, height: 90, spatial_layer: 2 },
      { consumer_id: { $ne: null }, visible: true, width: 160, height: 90 },
    ];
    for (const payload of invalid) {
      const ack = await preferences(host.client, payload);
      expect(ack.ok === false && ack.error.code, JSON.stringify(payload)).to.equal('payload_invalid');
    }
    const foreign = await preferences(guest.client, { consumer_id: video, visible: false, width: 0, height: 0 });
    expect(foreign.ok === false && foreign.error.code).to.equal('not_found');
    const unknown = await preferences(host.client, { consumer_id: 'nope', visible: false, width: 0, height: 0 });
    expect(unknown.ok === false && unknown.error.code).to.equal('not_found');
    const onAudio = await preferences(host.client, { consumer_id: audio, visible: true, width: 160, height: 90 });
    expect(onAudio.ok === false && onAudio.error.code).to.equal('payload_invalid');
  });

  it('refuses a video_size out of bounds on produce (payload_invalid)', async () => {
    const send = await transportOf(host.client, 'send');
    const ack = await emitAck(host.client, 'sfu:produce', {
      transport_id: send,
      kind: 'video',
      app_data: { source: 'camera' },
      rtp_parameters: { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }], encodings: [{ ssrc: 3001 }] },
      video_size: { width: 1280, height: 1e9 },
    });
    expect(ack.ok === false && ack.error.code).to.equal('payload_invalid');
  });
});

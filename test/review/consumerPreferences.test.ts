/**
 * Review of sfu:consumer_preferences (adaptive stream): reports sent one after the other without
 * waiting for acks (a careless client, or the SDK after a timeout) must leave the consumer as
 * the last report says. Real server, real Socket.IO clients, a real mediasoup worker.
 */
import { expect } from 'chai';
import { emitAck, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', MESH_THRESHOLD: '1' };

describe('review: sfu:consumer_preferences sent back to back', function () {
  this.timeout(30000);
  let t: TestServer;
  let viewer: Awaited<ReturnType<TestServer['join']>>;
  let camera: Awaited<ReturnType<TestServer['join']>>;
  let producerId = '';
  let consumerId = '';

  const transportOf = async (client: TestClient, direction: 'send' | 'recv'): Promise<string> => {
    const ack = await emitAck(client, 'sfu:create_transport', { direction });
    if (!ack.ok) throw new Error(ack.error.code);
    return (ack.transport as { id: string }).id;
  };
  const state = () => t.server.sfu?.get('t1/a')?.consumerState(viewer.ack.self.id, producerId);
  const preferences = (visible: boolean, width: number, height: number) =>
    emitAck(viewer.client, 'sfu:consumer_preferences', { consumer_id: consumerId, visible, width, height });

  beforeEach(async () => {
    t = await startServer(SFU_ENV);
    camera = await t.join({ room: 'a', user: 'camera' });
    viewer = await t.join({ room: 'a', user: 'viewer' });
    await waitFor(() => t.server.rooms.get('t1', 'a')?.mode === 'sfu', 5000, 'promotion');
    const produced = await emitAck(camera.client, 'sfu:produce', {
      transport_id: await transportOf(camera.client, 'send'),
      kind: 'video',
      app_data: { source: 'camera' },
      rtp_parameters: {
        mid: '0',
        codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }],
        encodings: [
          { ssrc: 1001, scaleResolutionDownBy: 4 },
          { ssrc: 1002, scaleResolutionDownBy: 2 },
          { ssrc: 1003, scaleResolutionDownBy: 1 },
        ],
        rtcp: { cname: 'c' },
      },
      video_size: { width: 1280, height: 720 },
    });
    if (!produced.ok) throw new Error(produced.error.code);
    producerId = produced.producer_id as string;
    const consumed = await emitAck(viewer.client, 'sfu:consume', {
      transport_id: await transportOf(viewer.client, 'recv'),
      producer_id: producerId,
      rtp_capabilities: t.server.sfu?.get('t1/a')?.rtpCapabilities,
    });
    if (!consumed.ok) throw new Error(consumed.error.code);
    consumerId = (consumed.consumer as { id: string }).id;
  });
  afterEach(async () => {
    await t.close();
  });

  const resume = () => emitAck(viewer.client, 'sfu:resume', { consumer_id: consumerId });

  it('leaves the consumer paused when its resume is followed at once by "not visible"', async () => {
    const acks = await Promise.all([resume(), preferences(false, 0, 0)]);
    expect(acks.map((ack) => ack.ok)).to.deep.equal([true, true]);
    expect(state()?.paused, 'the last word was not visible').to.equal(true);
    expect((await preferences(true, 320, 180)).ok).to.equal(true);
    expect(state()?.paused).to.equal(false);
  });

  it('leaves the consumer paused when "visible" is followed at once by "not visible"', async () => {
    expect((await resume()).ok).to.equal(true);
    for (let round = 0; round < 5; round++) {
      const acks = await Promise.all([preferences(true, 1280, 720), preferences(false, 0, 0)]);
      expect(acks.map((ack) => ack.ok)).to.deep.equal([true, true]);
      expect(state()?.paused, `round ${round}: the last report said not visible`).to.equal(true);
    }
  });

  it('leaves the preferred layer of the last report when two sizes are sent at once', async () => {
    expect((await resume()).ok).to.equal(true);
    for (let round = 0; round < 5; round++) {
      const acks = await Promise.all([preferences(true, 1280, 720), preferences(true, 160, 90)]);
      expect(acks.map((ack) => ack.ok)).to.deep.equal([true, true]);
      expect(state()?.preferredLayers?.spatialLayer, `round ${round}`).to.equal(0);
      expect(state()?.priority, `round ${round}`).to.equal(1);
      expect(state()?.paused).to.equal(false);
    }
  });

  it('does not undo an admin mute: a visible report resumes the consumer, never the muted producer', async () => {
    const host = await t.join({ room: 'a', user: 'host', role: 'host' });
    expect((await emitAck(host.client, 'admin:mute', { peer_id: camera.ack.self.id, kind: 'video', muted: true })).ok).to.equal(true);
    const sfuRoom = t.server.sfu?.get('t1/a');
    await waitFor(() => sfuRoom?.producerPaused(camera.ack.self.id, producerId) === true, 5000, 'the producer paused');
    expect((await resume()).ok).to.equal(true);
    expect((await preferences(false, 0, 0)).ok).to.equal(true);
    expect((await preferences(true, 1280, 720)).ok).to.equal(true);
    expect(state()?.paused).to.equal(false);
    expect(sfuRoom?.producerPaused(camera.ack.self.id, producerId), 'the admin mute holds').to.equal(true);
  });
});

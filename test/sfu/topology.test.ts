import { expect } from 'chai';
import type { ModeChangedMessage, SfuProducerInfo } from '../../protocol/events.js';
import { emitAck, nextEvent, startServer, waitFor, type TestClient, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '2', SFU_LISTEN_IP: '127.0.0.1', DEMOTE_DELAY_MS: '300' };
/** Every media producer says what it is (app_data.source). */
const CAMERA = { source: 'camera' };

type Joined = Awaited<ReturnType<TestServer['join']>>;

describe('SFU topology policy (real mediasoup workers)', function () {
  this.timeout(30000);
  let t: TestServer;

  beforeEach(async () => {
    t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '2' });
  });
  afterEach(async () => {
    await t.close();
  });

  async function joinMany(room: string, users: string[], role: 'guest' | 'listener' = 'guest'): Promise<Joined[]> {
    const joined: Joined[] = [];
    for (const user of users) joined.push(await t.join({ room, user, role }));
    return joined;
  }

  it('stays a mesh at the threshold and is promoted when the count exceeds it', async () => {
    const [a, b] = await joinMany('p', ['a', 'b']);
    expect(t.server.rooms.get('t1', 'p')?.mode).to.equal('mesh');
    const changedA = nextEvent<ModeChangedMessage>((a as Joined).client, 'mode_changed');
    const changedB = nextEvent<ModeChangedMessage>((b as Joined).client, 'mode_changed');
    // The newcomer listens before joining, as the SDK does: mode_changed follows its join ack.
    const c = await t.connect(t.mint({ room: 'p', user: 'c' }));
    const changedC = nextEvent<ModeChangedMessage>(c, 'mode_changed');
    expect((await emitAck(c, 'join', {})).ok).to.equal(true);
    for (const message of await Promise.all([changedA, changedB, changedC])) {
      expect(message.mode).to.equal('sfu');
      expect(message.reason).to.equal('threshold');
      expect((message.sfu?.router_rtp_capabilities as { codecs: unknown[] }).codecs.length).to.be.greaterThan(0);
    }
    expect(t.server.rooms.get('t1', 'p')?.mode).to.equal('sfu');
    // A newcomer into an SFU room learns it from the join ack.
    const d = await t.join({ room: 'p', user: 'd' });
    expect(d.ack.room.mode).to.equal('sfu');
    expect(d.ack.sfu?.router_rtp_capabilities).to.be.an('object');
    // The SFU's queue per slow receiver (SFU_SCTP_SEND_BUFFER_BYTES): the SDK keeps twice that of its data to resend.
    expect(d.ack.sfu?.sctp_send_buffer_bytes).to.equal(8_388_608);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).to.match(/switchboard_migrations_total\{to="sfu",reason="threshold"\} 1/);
    expect(metrics).to.match(/switchboard_rooms_active\{mode="sfu"\} 1/);
  });

  it('demotes after the count stayed at or below threshold-1 for the delay, not before (hysteresis)', async () => {
    const [a, b, c] = await joinMany('h', ['a', 'b', 'c']);
    await waitFor(() => t.server.rooms.get('t1', 'h')?.mode === 'sfu', 5000, 'promotion');
    // Back to the threshold (2): stays on the SFU.
    (c as Joined).client.close();
    await new Promise((r) => setTimeout(r, 600));
    expect(t.server.rooms.get('t1', 'h')?.mode).to.equal('sfu');
    // At threshold-1 (1) for the delay: back to mesh.
    const changed = nextEvent<ModeChangedMessage>((a as Joined).client, 'mode_changed');
    const started = Date.now();
    (b as Joined).client.close();
    const message = await changed;
    expect(message).to.deep.equal({ mode: 'mesh', reason: 'threshold' });
    expect(Date.now() - started).to.be.at.least(250);
  });

  it('cancels a pending demotion when the count rises again', async () => {
    const [a, b] = await joinMany('c', ['a', 'b']);
    const changes: ModeChangedMessage[] = [];
    (a as Joined).client.on('mode_changed', (m) => changes.push(m));
    const c = await t.join({ room: 'c', user: 'c' });
    await waitFor(() => changes.length === 1, 5000, 'promotion seen by a');
    (b as Joined).client.close();
    c.client.close();
    await new Promise((r) => setTimeout(r, 100));
    await joinMany('c', ['d', 'e']);
    await new Promise((r) => setTimeout(r, 600));
    expect(changes.map((m) => m.mode)).to.deep.equal(['sfu']);
    expect(t.server.rooms.get('t1', 'c')?.mode).to.equal('sfu');
  });

  it('re-evaluates at once when the threshold changes on a live room', async () => {
    await joinMany('live', ['a', 'b']);
    const room = t.server.rooms.get('t1', 'live');
    if (!room) throw new Error('no room');
    t.server.rooms.updateConfig(room, { mesh_threshold: 1 });
    await waitFor(() => room.mode === 'sfu', 5000, 'promotion after threshold change');
  });

  it('honours mode pins: sfu at once, mesh whatever the count', async () => {
    const [a] = await joinMany('pin', ['a']);
    const room = t.server.rooms.get('t1', 'pin');
    if (!room) throw new Error('no room');
    const toSfu = nextEvent<ModeChangedMessage>((a as Joined).client, 'mode_changed');
    t.server.rooms.updateConfig(room, { mode_policy: 'sfu' });
    expect((await toSfu).reason).to.equal('pinned');
    await joinMany('pin', ['b', 'c', 'd']);
    const toMesh = nextEvent<ModeChangedMessage>((a as Joined).client, 'mode_changed');
    t.server.rooms.updateConfig(room, { mode_policy: 'mesh' });
    expect(await toMesh).to.deep.equal({ mode: 'mesh', reason: 'pinned' });
  });
});

describe('SFU requests: grants, ownership, validation (real mediasoup workers)', function () {
  this.timeout(30000);
  let t: TestServer;
  let host: Joined;
  let guest: Joined;
  let listener: Joined;

  before(async () => {
    t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '2' });
    host = await t.join({ room: 's', user: 'host', role: 'host' });
    guest = await t.join({ room: 's', user: 'guest' });
    listener = await t.join({ room: 's', user: 'listener', role: 'listener' });
    await waitFor(() => t.server.rooms.get('t1', 's')?.mode === 'sfu', 5000, 'promotion');
  });
  after(async () => {
    await t.close();
  });

  const transportOf = async (client: TestClient, direction: 'send' | 'recv') => {
    const ack = await emitAck(client, 'sfu:create_transport', { direction });
    if (!ack.ok) throw new Error(ack.error.code);
    return ack.transport as {
      id: string;
      iceParameters: unknown;
      iceCandidates: Array<{ ip: string }>;
      dtlsParameters: unknown;
      sctpParameters: unknown;
    };
  };
  const VP8 = { codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }], encodings: [{ ssrc: 1111 }], rtcp: { cname: 'x' } };

  it('creates WebRTC transports on the configured address with ICE, DTLS and SCTP parameters', async () => {
    const transport = await transportOf(host.client, 'send');
    expect(transport.id).to.be.a('string');
    expect(transport.iceParameters).to.have.property('usernameFragment');
    expect(transport.iceCandidates.map((c) => c.ip)).to.include('127.0.0.1');
    expect(transport.dtlsParameters).to.have.property('fingerprints');
    expect(transport.sctpParameters).to.have.property('port');
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).to.match(/switchboard_sfu_request_duration_seconds_count\{event="sfu:create_transport"\} [1-9]/);
  });

  it('produces for a publisher and announces the producer to the others, not to itself', async () => {
    const transport = await transportOf(guest.client, 'send');
    const announced = nextEvent<SfuProducerInfo>(host.client, 'sfu:new_producer');
    const selfSeen: unknown[] = [];
    guest.client.on('sfu:new_producer', (p) => selfSeen.push(p));
    const ack = await emitAck(guest.client, 'sfu:produce', {
      transport_id: transport.id,
      kind: 'video',
      rtp_parameters: VP8,
      app_data: CAMERA,
    });
    expect(ack.ok, JSON.stringify(ack)).to.equal(true);
    const info = await announced;
    expect(info).to.deep.equal({
      peer_id: guest.ack.self.id,
      producer_id: (ack as unknown as { producer_id: string }).producer_id,
      kind: 'video',
      source: 'camera',
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(selfSeen).to.deep.equal([]);
  });

  it("pauses a peer's producers of the kind a room admin muted, including ones created while muted, and resumes them", async () => {
    const transport = await transportOf(guest.client, 'send');
    const guestId = guest.ack.self.id;
    const produce = async (ssrc: number) => {
      const ack = await emitAck(guest.client, 'sfu:produce', {
        transport_id: transport.id,
        kind: 'video',
        rtp_parameters: { ...VP8, encodings: [{ ssrc }] },
        app_data: CAMERA,
      });
      if (!ack.ok) throw new Error(ack.error.code);
      return (ack as unknown as { producer_id: string }).producer_id;
    };
    const sfuRoom = () => t.server.sfu?.get('t1/s');
    const first = await produce(2221);
    expect(sfuRoom()?.producerPaused(guestId, first)).to.equal(false);
    expect((await emitAck(host.client, 'admin:mute', { peer_id: guestId, kind: 'video', muted: true })).ok).to.equal(true);
    await waitFor(() => sfuRoom()?.producerPaused(guestId, first) === true, 5000, 'producer paused');
    const second = await produce(3331);
    expect(sfuRoom()?.producerPaused(guestId, second), 'created while muted').to.equal(true);
    expect((await emitAck(host.client, 'admin:mute', { peer_id: guestId, kind: 'video', muted: false })).ok).to.equal(true);
    await waitFor(
      () => sfuRoom()?.producerPaused(guestId, first) === false && sfuRoom()?.producerPaused(guestId, second) === false,
      5000,
      'producers resumed',
    );
  });

  it('refuses produce without canPublish, produce_data without canPublishData and consume without canSubscribe (forbidden); consume_data only needs a joined peer', async () => {
    const transport = await transportOf(listener.client, 'send');
    const ack = await emitAck(listener.client, 'sfu:produce', {
      transport_id: transport.id,
      kind: 'video',
      rtp_parameters: VP8,
      app_data: CAMERA,
    });
    expect(ack.ok === false && ack.error.code).to.equal('forbidden');

    // Something to consume: a video and a data producer of the guest (who has every grant).
    const guestSend = await transportOf(guest.client, 'send');
    const video = await emitAck(guest.client, 'sfu:produce', {
      transport_id: guestSend.id,
      kind: 'video',
      rtp_parameters: { ...VP8, mid: 'g', encodings: [{ ssrc: 8881 }] },
      app_data: CAMERA,
    });
    const data = await emitAck(guest.client, 'sfu:produce_data', {
      transport_id: guestSend.id,
      sctp_stream_parameters: { streamId: 9, ordered: true },
      label: 'chat',
    });
    expect([video.ok, data.ok], JSON.stringify([video, data])).to.deep.equal([true, true]);
    const videoId = (video as unknown as { producer_id: string }).producer_id;
    const dataId = (data as unknown as { producer_id: string }).producer_id;

    const noData = await t.join({ room: 's', user: 'no-data', grants: { canPublishData: false } });
    const noSubscribe = await t.join({ room: 's', user: 'no-subscribe', grants: { canSubscribe: false } });
    const capabilities = noSubscribe.ack.sfu?.router_rtp_capabilities;
    expect(capabilities, 'join ack of an SFU room').to.be.an('object');
    try {
      const noDataSend = await transportOf(noData.client, 'send');
      const refusedData = await emitAck(noData.client, 'sfu:produce_data', {
        transport_id: noDataSend.id,
        sctp_stream_parameters: { streamId: 1, ordered: true },
      });
      expect(refusedData.ok === false && refusedData.error.code).to.equal('forbidden');
      // The same peer may still produce media (canPublish is its own grant).
      const allowedVideo = await emitAck(noData.client, 'sfu:produce', {
        transport_id: noDataSend.id,
        kind: 'video',
        rtp_parameters: { ...VP8, encodings: [{ ssrc: 8882 }] },
        app_data: CAMERA,
      });
      expect(allowedVideo.ok, JSON.stringify(allowedVideo)).to.equal(true);

      const noSubscribeRecv = await transportOf(noSubscribe.client, 'recv');
      const refusedConsume = await emitAck(noSubscribe.client, 'sfu:consume', {
        transport_id: noSubscribeRecv.id,
        producer_id: videoId,
        rtp_capabilities: capabilities,
      });
      expect(refusedConsume.ok === false && refusedConsume.error.code).to.equal('forbidden');
      // Data is not a subscription (README: consume_data needs a joined peer; the SDK consumes
      // data without canSubscribe, and LiveKit delivers data to every participant).
      const dataConsumer = await emitAck(noSubscribe.client, 'sfu:consume_data', { transport_id: noSubscribeRecv.id, producer_id: dataId });
      expect(dataConsumer.ok, JSON.stringify(dataConsumer)).to.equal(true);

      // Control: the same consume with canSubscribe works, so forbidden above is the grant.
      const listenerRecv = await transportOf(listener.client, 'recv');
      const consumed = await emitAck(listener.client, 'sfu:consume', {
        transport_id: listenerRecv.id,
        producer_id: videoId,
        rtp_capabilities: capabilities,
      });
      expect(consumed.ok, JSON.stringify(consumed)).to.equal(true);
    } finally {
      noData.client.close();
      noSubscribe.client.close();
    }
  });

  it("refuses to touch another peer's transport or consumer (not_found)", async () => {
    const hostTransport = await transportOf(host.client, 'recv');
    const dtls = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AB:CD:EF:01:23:45:67:89' }] };
    const connect = await emitAck(guest.client, 'sfu:connect_transport', { transport_id: hostTransport.id, dtls_parameters: dtls });
    expect(connect.ok === false && connect.error.code).to.equal('not_found');
    const produce = await emitAck(guest.client, 'sfu:produce', {
      transport_id: hostTransport.id,
      kind: 'video',
      rtp_parameters: VP8,
      app_data: CAMERA,
    });
    expect(produce.ok === false && produce.error.code).to.equal('not_found');
    const resume = await emitAck(guest.client, 'sfu:resume', { consumer_id: 'nope' });
    expect(resume.ok === false && resume.error.code).to.equal('not_found');
  });

  it('schema-checks RTP and DTLS parameters', async () => {
    const transport = await transportOf(host.client, 'send');
    const bad: Array<[string, unknown]> = [
      ['sfu:produce', { transport_id: transport.id, kind: 'video', rtp_parameters: { codecs: [] } }],
      ['sfu:produce', { transport_id: transport.id, kind: 'screen', rtp_parameters: VP8 }],
      ['sfu:produce', { transport_id: transport.id, kind: 'video', rtp_parameters: { ...VP8, $where: 'x' } }],
      ['sfu:connect_transport', { transport_id: transport.id, dtls_parameters: { fingerprints: [{ algorithm: 'md5', value: 'AB:CD' }] } }],
      ['sfu:create_transport', { direction: 'sideways' }],
      ['sfu:consume', { transport_id: transport.id, producer_id: { $ne: null }, rtp_capabilities: {} }],
    ];
    for (const [event, payload] of bad) {
      const ack = await emitAck(host.client, event, payload);
      expect(ack.ok === false && ack.error.code, `${event} ${JSON.stringify(payload)}`).to.equal('payload_invalid');
    }
  });

  it('answers a repeated connect, produce or produce_data like the first (a client whose answer came late asks again)', async () => {
    const again = await t.join({ room: 's', user: 'again' });
    const transport = await transportOf(again.client, 'send');
    const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');
    const dtls = { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: fingerprint }] };
    const connects = await Promise.all(
      [1, 2].map(() => emitAck(again.client, 'sfu:connect_transport', { transport_id: transport.id, dtls_parameters: dtls })),
    );
    expect(
      connects.map((ack) => ack.ok),
      JSON.stringify(connects),
    ).to.deep.equal([true, true]);

    const announced: SfuProducerInfo[] = [];
    host.client.on('sfu:new_producer', (info: SfuProducerInfo) => {
      if (info.peer_id === again.ack.self.id) announced.push(info);
    });
    const produce = (mid: string, ssrc: number) =>
      emitAck(again.client, 'sfu:produce', {
        transport_id: transport.id,
        kind: 'video',
        rtp_parameters: { ...VP8, mid, encodings: [{ ssrc }] },
        app_data: CAMERA,
      });
    const idOf = (ack: { ok: boolean }) => {
      expect(ack.ok, JSON.stringify(ack)).to.equal(true);
      return (ack as unknown as { producer_id: string }).producer_id;
    };
    const [first, repeated] = (await Promise.all([produce('0', 5551), produce('0', 5551)])).map(idOf);
    expect(repeated, 'the same m-section asked twice').to.equal(first);
    expect(idOf(await produce('0', 5551)), 'asked a third time, after the first answer').to.equal(first);
    const other = idOf(await produce('1', 6661));
    expect(other).to.not.equal(first);

    const produceData = () =>
      emitAck(again.client, 'sfu:produce_data', {
        transport_id: transport.id,
        sctp_stream_parameters: { streamId: 3, ordered: true },
        label: 'reliable',
      });
    const [data, dataRepeated] = (await Promise.all([produceData(), produceData()])).map(idOf);
    expect(dataRepeated, 'the same SCTP stream asked twice').to.equal(data);

    await waitFor(() => announced.length >= 3, 5000, 'producers announced');
    await new Promise((r) => setTimeout(r, 200));
    expect(announced.map((info) => info.producer_id).sort(), 'each producer announced once').to.deep.equal([first, other, data].sort());

    // A producer that was closed is not answered again: the same m-section produces anew.
    expect((await emitAck(again.client, 'sfu:close_producer', { producer_id: first })).ok).to.equal(true);
    const reproduced = idOf(await produce('0', 7771));
    expect(reproduced).to.not.equal(first);
    again.client.close();
  });

  it('limits transports per peer', async () => {
    const fresh = await t.join({ room: 's', user: 'limits' });
    for (let i = 0; i < 4; i++) await transportOf(fresh.client, 'recv');
    const fifth = await emitAck(fresh.client, 'sfu:create_transport', { direction: 'recv' });
    expect(fifth.ok === false && fifth.error.code).to.equal('quota_exceeded');
    fresh.client.close();
    await waitFor(() => t.server.sfu?.get('t1/s')?.transportCount(fresh.ack.self.id) === 0, 5000, 'transports closed with the peer');
  });
});

describe('SFU worker death (kill -9)', function () {
  this.timeout(30000);
  it('rebuilds the room on a live worker and tells clients to re-migrate; no zombie routers', async () => {
    const t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '1' });
    try {
      const a = await t.join({ room: 'k', user: 'a' });
      const promoted = nextEvent<ModeChangedMessage>(a.client, 'mode_changed');
      await t.join({ room: 'k', user: 'b' });
      expect((await promoted).reason).to.equal('threshold');
      const sfu = t.server.sfu;
      if (!sfu) throw new Error('no sfu');
      const [pid] = [...sfu.roomsByWorker().entries()].find(([, keys]) => keys.includes('t1/k')) ?? [];
      expect(pid).to.be.a('number');
      const rebuilt = nextEvent<ModeChangedMessage>(a.client, 'mode_changed', 10000);
      process.kill(pid as number, 'SIGKILL');
      const message = await rebuilt;
      expect(message.mode).to.equal('sfu');
      expect(message.reason).to.equal('sfu_restart');
      const placement = sfu.roomsByWorker();
      expect([...placement.values()].flat()).to.deep.equal(['t1/k']);
      expect(placement.has(pid as number)).to.equal(false);
      // The dead worker is replaced.
      await waitFor(() => sfu.pool.aliveCount === 2 && !sfu.pool.pids().includes(pid as number), 10000, 'worker replaced');
      const ready = (await (await fetch(`${t.url}/ready`)).json()) as { checks: { sfu: boolean } };
      expect(ready.checks.sfu).to.equal(true);
    } finally {
      await t.close();
    }
  });
});

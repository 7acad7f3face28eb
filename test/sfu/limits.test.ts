import { expect } from 'chai';
import type { ModeChangedMessage } from '../../protocol/events.js';
import { capturedLogger } from '../helpers/logs.js';
import { emitAck, nextEvent, startServer, storeSfuRoom, type TestClient, type TestServer } from '../helpers/server.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1' };
/** Every media producer says what it is (app_data.source). */
const CAMERA = { source: 'camera' };

type Ack = { ok: boolean; error?: { code: string }; [key: string]: unknown };

/** Joins a room pinned to the SFU and waits until the server says it is there. */
async function joinSfu(
  t: TestServer,
  roomId: string,
  user: string,
  tenant = 't1',
): Promise<{ client: TestClient; rtpCapabilities: unknown }> {
  const client = await t.connect(t.mint({ room: roomId, user, tenant }));
  const changed = nextEvent<ModeChangedMessage>(client, 'mode_changed').catch(() => null);
  const ack = (await emitAck(client, 'join', {})) as unknown as Ack & { sfu?: { router_rtp_capabilities: unknown } };
  expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  const caps = ack.sfu?.router_rtp_capabilities ?? (await changed)?.sfu?.router_rtp_capabilities;
  expect(caps, 'router capabilities').to.be.an('object');
  return { client, rtpCapabilities: caps };
}

/** Emits every request at once, without waiting for any ack, then collects the acks. */
function burst(client: TestClient, event: string, payloads: unknown[]): Promise<Ack[]> {
  return Promise.all(payloads.map((payload) => emitAck(client, event, payload) as unknown as Promise<Ack>));
}

const codes = (acks: Ack[]): string[] => acks.map((ack) => (ack.ok ? 'ok' : (ack.error?.code ?? '?')));
const count = (acks: Ack[], code: string): number => codes(acks).filter((c) => c === code).length;

function videoParameters(index: number): Record<string, unknown> {
  return {
    mid: String(index),
    codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, rtcpFeedback: [] }],
    headerExtensions: [],
    encodings: [{ ssrc: 11110000 + index }],
    rtcp: { cname: `c${index}` },
  };
}

async function transport(client: TestClient, direction: 'send' | 'recv'): Promise<string> {
  const ack = (await emitAck(client, 'sfu:create_transport', { direction })) as unknown as Ack & { transport: { id: string } };
  expect(ack.ok, JSON.stringify(ack)).to.equal(true);
  return ack.transport.id;
}

describe('SFU limits under concurrent requests (real mediasoup worker)', function () {
  this.timeout(30000);
  let t: TestServer;
  afterEach(async () => t?.close());

  it('gives one peer no more transports than its limit when it sends many requests without waiting', async () => {
    t = await startServer({ ...SFU_ENV, SFU_MAX_TRANSPORTS_PER_PEER: '4' });
    await storeSfuRoom(t, 'flood');
    const { client } = await joinSfu(t, 'flood', 'alice');
    const acks = await burst(
      client,
      'sfu:create_transport',
      Array.from({ length: 60 }, (_, i) => ({ direction: i % 2 ? 'send' : 'recv' })),
    );
    expect(count(acks, 'ok')).to.equal(4);
    expect(count(acks, 'quota_exceeded')).to.equal(56);
    const peerId = t.server.rooms.get('t1', 'flood')?.peerByUser('alice')?.id ?? '';
    expect(t.server.sfu?.get('t1/flood')?.transportCount(peerId)).to.equal(4);
  });

  it('gives one peer no more producers than its limit when it sends many requests without waiting', async () => {
    t = await startServer({ ...SFU_ENV, SFU_MAX_PRODUCERS_PER_PEER: '3' });
    await storeSfuRoom(t, 'produce');
    const { client } = await joinSfu(t, 'produce', 'alice');
    const transportId = await transport(client, 'send');
    const media = burst(
      client,
      'sfu:produce',
      Array.from({ length: 20 }, (_, i) => ({
        transport_id: transportId,
        kind: 'video',
        rtp_parameters: videoParameters(i),
        app_data: CAMERA,
      })),
    );
    const data = burst(
      client,
      'sfu:produce_data',
      Array.from({ length: 20 }, (_, i) => ({ transport_id: transportId, sctp_stream_parameters: { streamId: i, ordered: true } })),
    );
    const acks = [...(await media), ...(await data)];
    expect(count(acks, 'ok'), codes(acks).join(',')).to.equal(3);
    expect(count(acks, 'quota_exceeded')).to.equal(37);
  });

  it('caps consumers per peer, and answers a repeated consume of one producer with the same consumer', async () => {
    t = await startServer({ ...SFU_ENV, SFU_MAX_CONSUMERS_PER_PEER: '3' });
    await storeSfuRoom(t, 'consume');
    const sender = await joinSfu(t, 'consume', 'sender');
    const sendTransport = await transport(sender.client, 'send');
    const produced = await burst(
      sender.client,
      'sfu:produce',
      [0, 1, 2, 3, 4].map((i) => ({ transport_id: sendTransport, kind: 'video', rtp_parameters: videoParameters(i), app_data: CAMERA })),
    );
    expect(codes(produced)).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'ok']);
    const producerIds = produced.map((ack) => ack.producer_id as string);

    const receiver = await joinSfu(t, 'consume', 'receiver');
    const recvTransport = await transport(receiver.client, 'recv');
    const request = (producerId: string) => ({
      transport_id: recvTransport,
      producer_id: producerId,
      rtp_capabilities: receiver.rtpCapabilities,
    });
    // The same producer asked for many times at once: one consumer, the same answer every time.
    const repeated = await burst(
      receiver.client,
      'sfu:consume',
      Array.from({ length: 10 }, () => request(producerIds[0]!)),
    );
    expect(codes(repeated)).to.deep.equal(Array(10).fill('ok'));
    expect(new Set(repeated.map((ack) => (ack.consumer as { id: string }).id)).size).to.equal(1);
    const others = await burst(receiver.client, 'sfu:consume', producerIds.slice(1).map(request));
    expect(count(others, 'ok')).to.equal(2);
    expect(count(others, 'quota_exceeded')).to.equal(2);
  });

  it('caps SFU transports per tenant, so one tenant cannot take the ports another needs', async () => {
    t = await startServer({ ...SFU_ENV, SFU_MAX_TRANSPORTS_PER_TENANT: '5' });
    await t.addTenant('t2');
    await storeSfuRoom(t, 'big');
    await storeSfuRoom(t, 'other', 't2');
    const a = await joinSfu(t, 'big', 'a');
    const b = await joinSfu(t, 'big', 'b');
    const acks = [
      ...(
        await Promise.all([
          burst(
            a.client,
            'sfu:create_transport',
            Array.from({ length: 4 }, () => ({ direction: 'recv' })),
          ),
          burst(
            b.client,
            'sfu:create_transport',
            Array.from({ length: 4 }, () => ({ direction: 'recv' })),
          ),
        ])
      ).flat(),
    ];
    expect(count(acks, 'ok')).to.equal(5);
    expect(count(acks, 'quota_exceeded')).to.equal(3);
    const other = await joinSfu(t, 'other', 'c', 't2');
    expect(await transport(other.client, 'recv')).to.be.a('string');
    // Transports closed with a leaving peer go back to the tenant's budget.
    a.client.close();
    const c = await joinSfu(t, 'big', 'c');
    const again = await burst(
      c.client,
      'sfu:create_transport',
      Array.from({ length: 4 }, () => ({ direction: 'recv' })),
    );
    expect(count(again, 'ok')).to.be.at.least(1);
    expect(t.server.sfu?.tenantTransports.usedBy('t1')).to.equal(5);
  });

  it('answers unavailable, not internal, when the SFU port range is exhausted (range mode, SFU_PORT=0)', async () => {
    const base = 46000 + Math.floor(Math.random() * 3000);
    t = await startServer({
      ...SFU_ENV,
      SFU_PORT: '0',
      SFU_MIN_PORT: String(base),
      SFU_MAX_PORT: String(base + 2),
      SFU_MAX_TRANSPORTS_PER_TENANT: '100',
    });
    await storeSfuRoom(t, 'ports');
    const acks: Ack[] = [];
    for (const user of ['a', 'b']) {
      const { client } = await joinSfu(t, 'ports', user);
      acks.push(
        ...(await burst(
          client,
          'sfu:create_transport',
          Array.from({ length: 4 }, () => ({ direction: 'recv' })),
        )),
      );
    }
    expect(count(acks, 'ok'), codes(acks).join(',')).to.be.at.most(3);
    expect(count(acks, 'unavailable'), codes(acks).join(',')).to.be.at.least(5);
    expect(count(acks, 'internal')).to.equal(0);
  });

  it("answers not_found for another room's producers, and logs no error for it", async () => {
    const log = capturedLogger();
    t = await startServer(SFU_ENV, { logger: log.logger });
    await storeSfuRoom(t, 'r1');
    await storeSfuRoom(t, 'r2');
    const owner = await joinSfu(t, 'r1', 'owner');
    const sendTransport = await transport(owner.client, 'send');
    const media = (await emitAck(owner.client, 'sfu:produce', {
      transport_id: sendTransport,
      kind: 'video',
      rtp_parameters: videoParameters(0),
      app_data: CAMERA,
    })) as unknown as Ack;
    const data = (await emitAck(owner.client, 'sfu:produce_data', {
      transport_id: sendTransport,
      sctp_stream_parameters: { streamId: 1, ordered: true },
    })) as unknown as Ack;
    expect([media.ok, data.ok]).to.deep.equal([true, true]);

    const intruder = await joinSfu(t, 'r2', 'intruder');
    const recvTransport = await transport(intruder.client, 'recv');
    const consume = (await emitAck(intruder.client, 'sfu:consume', {
      transport_id: recvTransport,
      producer_id: media.producer_id,
      rtp_capabilities: intruder.rtpCapabilities,
    })) as unknown as Ack;
    const consumeData = (await emitAck(intruder.client, 'sfu:consume_data', {
      transport_id: recvTransport,
      producer_id: data.producer_id,
    })) as unknown as Ack;
    expect(codes([consume, consumeData])).to.deep.equal(['not_found', 'not_found']);
    expect(log.errors()).to.deep.equal([]);
  });

  it('answers payload_invalid for parameters mediasoup refuses, and logs no error for them', async () => {
    const log = capturedLogger();
    t = await startServer(SFU_ENV, { logger: log.logger });
    await storeSfuRoom(t, 'params');
    const { client } = await joinSfu(t, 'params', 'alice');
    const sendTransport = await transport(client, 'send');
    const recvTransport = await transport(client, 'recv');
    const first = (await emitAck(client, 'sfu:produce', {
      transport_id: sendTransport,
      kind: 'video',
      rtp_parameters: videoParameters(0),
      app_data: CAMERA,
    })) as unknown as Ack;
    expect(first.ok).to.equal(true);
    const sameSsrc = { ...videoParameters(1), encodings: [{ ssrc: 11110000 }] };
    const unknownCodec = { ...videoParameters(2), codecs: [{ mimeType: 'video/NOPE', payloadType: 101, clockRate: 90000 }] };
    const acks = [
      (await emitAck(client, 'sfu:produce', {
        transport_id: sendTransport,
        kind: 'video',
        rtp_parameters: sameSsrc,
        app_data: CAMERA,
      })) as unknown as Ack,
      (await emitAck(client, 'sfu:produce', {
        transport_id: sendTransport,
        kind: 'video',
        rtp_parameters: unknownCodec,
        app_data: CAMERA,
      })) as unknown as Ack,
      (await emitAck(client, 'sfu:consume', {
        transport_id: recvTransport,
        producer_id: first.producer_id,
        rtp_capabilities: { codecs: [{ kind: 'video' }] },
      })) as unknown as Ack,
    ];
    expect(codes(acks)).to.deep.equal(['payload_invalid', 'payload_invalid', 'payload_invalid']);
    expect(log.errors()).to.deep.equal([]);
  });
});

import { expect } from 'chai';
import { clientEventSchemas, describeIssues } from '../../protocol/schemas.js';
import { emitAck, nextEvent, startServer, type TestServer } from '../helpers/server.js';

describe('payload validation at the socket boundary', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer();
  });
  after(async () => {
    await t.close();
  });

  const bigSdp = 'v=0\r\n' + 'a=x\r\n'.repeat(40_000);
  const malformed: Array<[string, string, unknown[]]> = [
    ['signal: string payload', 'signal', ['hello']],
    ['signal: number payload', 'signal', [42]],
    ['signal: null payload', 'signal', [null]],
    ['signal: array payload', 'signal', [[1, 2]]],
    ['signal: missing to', 'signal', [{ candidate: { candidate: '' } }]],
    ['signal: wrong type of to', 'signal', [{ to: 7, candidate: { candidate: '' } }]],
    ['signal: $-operator as to', 'signal', [{ to: { $ne: null }, candidate: { candidate: '' } }]],
    [
      'signal: both description and candidate',
      'signal',
      [{ to: 'p_x', candidate: { candidate: '' }, description: { type: 'offer', sdp: 'v=0' } }],
    ],
    ['signal: neither description nor candidate', 'signal', [{ to: 'p_x' }]],
    ['signal: unknown description type', 'signal', [{ to: 'p_x', description: { type: 'hack', sdp: 'v=0' } }]],
    ['signal: offer without sdp', 'signal', [{ to: 'p_x', description: { type: 'offer' } }]],
    ['signal: oversized sdp', 'signal', [{ to: 'p_x', description: { type: 'offer', sdp: bigSdp } }]],
    ['signal: extra key', 'signal', [{ to: 'p_x', candidate: { candidate: '' }, evil: true }]],
    ['signal: two payloads', 'signal', [{ to: 'p_x', candidate: { candidate: '' } }, { more: 1 }]],
    ['update_metadata: $-key', 'update_metadata', [{ metadata: { $set: { admin: true } } }]],
    ['update_metadata: nested $-key', 'update_metadata', [{ metadata: { a: { b: { $gt: 1 } } } }]],
    ['update_metadata: dotted key', 'update_metadata', [{ metadata: { 'a.b': 1 } }]],
    ['update_metadata: __proto__ key', 'update_metadata', [JSON.parse('{"metadata":{"__proto__":{"x":1}}}')]],
    ['update_metadata: oversized', 'update_metadata', [{ metadata: { blob: 'x'.repeat(5000) } }]],
    ['update_metadata: not an object', 'update_metadata', [{ metadata: 'str' }]],
    ['admin:lock: wrong type', 'admin:lock', [{ locked: 'yes' }]],
    ['join: metadata array', 'join', [{ metadata: [1] }]],
  ];

  for (const [title, event, args] of malformed) {
    it(`answers payload_invalid to ${title}`, async () => {
      const a = await t.join({ room: 'v', role: 'host' });
      const ack = await emitAck(a.client, event, ...args);
      expect(ack.ok).to.equal(false);
      if (!ack.ok) {
        expect(ack.error.code).to.equal('payload_invalid');
        expect(ack.error.message).to.be.a('string').and.not.empty;
      }
      a.client.close();
    });
  }

  it('relays everyday signals without zod (the quick check) and words a refusal with zod as before', async () => {
    const a = await t.join({ room: 'v-quick', user: 'alice' });
    const b = await t.join({ room: 'v-quick', user: 'bob' });
    const schema = clientEventSchemas.signal;
    let zodCalls = 0;
    const safeParse = schema.safeParse;
    schema.safeParse = ((payload: unknown) => {
      zodCalls++;
      return safeParse(payload);
    }) as typeof schema.safeParse;
    try {
      const everyday = [
        { to: b.ack.self.id, description: { type: 'offer', sdp: 'v=0\r\n' } },
        {
          to: b.ack.self.id,
          candidate: {
            candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host',
            sdpMid: '0',
            sdpMLineIndex: 0,
            usernameFragment: 'abcd',
          },
        },
        { to: b.ack.self.id, candidate: { candidate: '' } },
      ];
      for (const payload of everyday) {
        const relayed = nextEvent(b.client, 'signal');
        expect(await emitAck(a.client, 'signal', payload)).to.deep.equal({ ok: true });
        const { to: _to, ...rest } = payload;
        expect(await relayed).to.deep.equal({ from: a.ack.self.id, ...rest });
      }
      expect(zodCalls).to.equal(0);

      const refused = [
        { to: b.ack.self.id, candidate: { candidate: '', foo: 1 } },
        { to: b.ack.self.id, description: { type: 'offer', sdp: '' } },
        { to: b.ack.self.id, candidate: { candidate: '' }, description: { type: 'rollback' } },
      ];
      for (const payload of refused) {
        const expected = safeParse(payload);
        expect(expected.success).to.equal(false);
        const ack = await emitAck(a.client, 'signal', payload);
        expect(ack).to.deep.equal({ ok: false, error: { code: 'payload_invalid', message: describeIssues(expected.error!) } });
      }
      expect(zodCalls).to.equal(refused.length);
    } finally {
      schema.safeParse = safeParse;
    }
  });

  it('answers an unknown event (its ack when it has one, else an error event) and keeps the socket', async () => {
    const a = await t.join({ room: 'v2' });
    const ack = await emitAck(a.client, 'bogus', {});
    expect(ack.ok ? 'ok' : ack.error.code).to.equal('payload_invalid');
    const error = nextEvent<{ code: string }>(a.client, 'error');
    (a.client as unknown as { emit(event: string, payload: unknown): void }).emit('bogus', {});
    expect((await error).code).to.equal('payload_invalid');
    expect(a.client.connected).to.equal(true);
  });

  it('reports a malformed payload without ack as an error event', async () => {
    const a = await t.join({ room: 'v3' });
    const error = nextEvent<{ code: string }>(a.client, 'error');
    (a.client as unknown as { emit(event: string, payload: unknown): void }).emit('signal', 'garbage');
    expect((await error).code).to.equal('payload_invalid');
  });

  it('drops a packet larger than maxHttpBufferSize by closing only that socket, and keeps serving the others', async () => {
    const a = await t.join({ room: 'v4', user: 'alice' });
    const b = await t.join({ room: 'v4', user: 'bob' });
    const c = await t.join({ room: 'v4', user: 'carol' });
    const disconnected = nextEvent<string>(c.client, 'disconnect');
    c.client.emit('signal', { to: a.ack.self.id, description: { type: 'offer', sdp: 'x'.repeat(600 * 1024) } }, () => undefined);
    expect(await disconnected).to.equal('transport close');
    const relayed = nextEvent(b.client, 'signal');
    expect(await emitAck(a.client, 'signal', { to: b.ack.self.id, candidate: { candidate: '' } })).to.deep.equal({ ok: true });
    await relayed;
  });

  it('keeps serving everyone after a burst of malformed payloads', async () => {
    const a = await t.join({ room: 'v5', user: 'alice' });
    const b = await t.join({ room: 'v5', user: 'bob' });
    for (const [, event, args] of malformed) await emitAck(b.client, event, ...args);
    const relayed = nextEvent(a.client, 'signal');
    expect(await emitAck(b.client, 'signal', { to: a.ack.self.id, candidate: { candidate: '' } })).to.deep.equal({ ok: true });
    await relayed;
  });
});

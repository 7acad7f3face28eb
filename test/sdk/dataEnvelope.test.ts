import { expect } from 'chai';
import {
  batches,
  BATCH_MAX_CHARS,
  decodePayload,
  encodeControl,
  encodeData,
  maxEncodedBytes,
  preparePayload,
  unpack,
  utf8Length,
  type WireMessage,
} from '../../client-sdk/src/DataEnvelope.js';

const header = { epoch: 'ep', reliable: true };
const data = (payload: Parameters<typeof preparePayload>[0], seq: number, topic?: string): WireMessage =>
  encodeData(preparePayload(payload), { ...header, seq, topic });

describe('DataEnvelope: the data wire format', () => {
  it('text and JSON travel as JSON text, bytes as a binary frame; each decodes to what was sent, with its topic', () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 13) & 0xff);
    const messages = [data('héllo "quoted"', 1, 'chat'), data({ a: [1, null, { b: 'c' }] }, 2), data(bytes, 3, 'file')];
    expect(messages.map((m) => typeof m)).to.deep.equal(['string', 'string', 'object']);
    expect((messages[2] as Uint8Array).byteLength, 'no base64: the bytes plus a small header').to.be.below(bytes.byteLength + 64);
    const envelopes = messages.flatMap((m) => unpack(m));
    expect(envelopes.map((e) => [e.q, e.tp, decodePayload(e)])).to.deep.equal([
      [1, 'chat', 'héllo "quoted"'],
      [2, undefined, { a: [1, null, { b: 'c' }] }],
      [3, 'file', bytes],
    ]);
  });

  it('batches keep the order of mixed text and binary messages (a binary batch frame), and text-only batches stay JSON', () => {
    const mixed = [data('a', 1), data(new Uint8Array([1, 2, 3]), 2), encodeControl('synced', { n: 'x' }), data(new Uint8Array(0), 3)];
    const [batch, ...rest] = batches(mixed);
    expect(rest).to.have.length(0);
    expect(batch).to.be.instanceOf(Uint8Array);
    expect(unpack(batch as WireMessage).map((e) => e.c ?? e.q)).to.deep.equal([1, 2, 'synced', 3]);
    expect(decodePayload(unpack(batch as WireMessage)[1] ?? {})).to.deep.equal(new Uint8Array([1, 2, 3]));
    const text = batches([data('a', 1), data('b', 2)]);
    expect(text).to.have.length(1);
    expect(text[0]).to.be.a('string');
    // A message larger than a batch goes alone, in its place.
    const big = data(new Uint8Array(BATCH_MAX_CHARS + 1), 5);
    expect(batches([data('x', 4), big, data('y', 6)]).flatMap((m) => unpack(m).map((e) => e.q))).to.deep.equal([4, 5, 6]);
  });

  it('malformed frames yield nothing and never throw; a batch inside a batch is ignored', () => {
    const frame = data(new Uint8Array([9, 9]), 1) as Uint8Array;
    const broken: WireMessage[] = [
      new Uint8Array(0),
      new Uint8Array([1, 0, 0]),
      frame.slice(0, 6), // header cut short
      Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0x7b]), // header length past the end
      Uint8Array.from([1, 0, 0, 0, 4, 0x6e, 0x75, 0x6c, 0x6c]), // header "null"
      Uint8Array.from([7, 0, 0, 0, 0]), // unknown kind
      'not json',
      '42',
    ];
    for (const message of broken) expect(() => unpack(message)).not.to.throw();
    expect(broken.flatMap((m) => unpack(m))).to.deep.equal([]);
    const inner = batches([data(new Uint8Array([1]), 1), data(new Uint8Array([2]), 2)]);
    const nested = batches([...inner, data(new Uint8Array([3]), 3)]);
    expect(nested.flatMap((m) => unpack(m)).map((e) => e.q)).to.deep.equal([3]);
    // An ArrayBuffer (what a data channel hands over) unpacks like its bytes.
    expect(unpack(frame.slice().buffer).map((e) => e.q)).to.deep.equal([1]);
  });

  it('a binary payload of an older SDK (base64 inside the JSON) still decodes', () => {
    const [envelope] = unpack(JSON.stringify({ e: 'ep', q: 1, r: 1, k: 'b', d: btoa('\u0001\u0002\u00ff') }));
    expect(decodePayload(envelope ?? {})).to.deep.equal(new Uint8Array([1, 2, 255]));
  });

  it('sizes: utf8Length matches TextEncoder, and maxEncodedBytes bounds the encoded message whatever its number', () => {
    const encoder = new TextEncoder();
    for (const text of ['', 'abc', 'é', '€', '😀', 'a😀b€é', '\ud800', 'x\udc00y'])
      expect(utf8Length(text), JSON.stringify(text)).to.equal(encoder.encode(text).length);
    for (const payload of ['héllo', { n: '😀' }, new Uint8Array(300)]) {
      const prepared = preparePayload(payload);
      const bound = maxEncodedBytes(prepared, { ...header, topic: 'tópic', to: ['alice'] });
      const message = encodeData(prepared, { ...header, seq: 123456789, topic: 'tópic', to: ['alice'] });
      const size = typeof message === 'string' ? encoder.encode(message).length : message.byteLength;
      expect(size).to.be.at.most(bound);
      expect(bound - size).to.be.below(16);
    }
  });
});

/** StreamFramer: TURN messages cut out of a TCP or TLS byte stream (RFC 5766 §11.5), whatever the reads. */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { MAX_STREAM_FRAME_BYTES, StreamFramer } from '../../turn/StreamFramer.js';
import { attrs, Class, encodeChannelData, encodeStun, Method } from '../helpers/stun.js';

function binding(software: string): Buffer {
  return encodeStun({ method: Method.Binding, cls: Class.Request, transactionId: randomBytes(12), attributes: [attrs.software(software)] });
}

/** Pushes `chunks` and returns the frames and the first error. */
function run(chunks: Buffer[], framer = new StreamFramer()): { frames: Buffer[]; error: string | null } {
  const frames: Buffer[] = [];
  for (const chunk of chunks) {
    const error = framer.push(chunk, (frame) => frames.push(Buffer.from(frame)));
    if (error) return { frames, error };
  }
  return { frames, error: null };
}

describe('StreamFramer', () => {
  // STUN messages of several sizes and ChannelData needing 3, 2, 1 and 0 bytes of padding.
  const messages = [
    binding('a'),
    encodeChannelData(0x4000, Buffer.alloc(1, 1)),
    binding('bb'.repeat(50)),
    encodeChannelData(0x7ffe, Buffer.alloc(2, 2)),
  ];
  messages.push(encodeChannelData(0x4001, Buffer.alloc(3, 3)), encodeChannelData(0x4002, Buffer.alloc(4, 4)));
  const stream = Buffer.concat(messages);

  it('cuts every message out of one chunk holding them all', () => {
    expect(run([stream])).to.deep.equal({ frames: messages, error: null });
  });

  it('cuts the same messages out of the stream split at every offset, and read one byte at a time', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(run([stream.subarray(0, cut), stream.subarray(cut)]), `cut at ${cut}`).to.deep.equal({ frames: messages, error: null });
    }
    expect(run([...stream].map((byte) => Buffer.from([byte])))).to.deep.equal({ frames: messages, error: null });
  });

  it('holds an incomplete message until the rest arrives', () => {
    const framer = new StreamFramer();
    const message = messages[2] as Buffer;
    expect(run([message.subarray(0, 30)], framer).frames).to.deep.equal([]);
    expect(framer.bufferedBytes).to.equal(30);
    expect(run([message.subarray(30)], framer).frames).to.deep.equal([message]);
    expect(framer.bufferedBytes).to.equal(0);
  });

  it('refuses bytes that cannot start a TURN message', () => {
    const stun = binding('x');
    const badCookie = Buffer.from(stun);
    badCookie.writeUInt32BE(0xdeadbeef, 4);
    const oddLength = Buffer.from(stun);
    oddLength.writeUInt16BE(5, 2);
    for (const [what, bytes] of [
      ['a first byte of 0x80 and above (reserved)', Buffer.from([0x80, 0, 0, 4, 0, 0, 0, 0])],
      ['a STUN header without the magic cookie', badCookie],
      ['a STUN length that is not a multiple of 4', oddLength],
      ['a TLS ClientHello', Buffer.from('160301020001000000', 'hex')],
    ] as const) {
      expect(run([stun, bytes]), what).to.deep.equal({ frames: [stun], error: 'not_turn' });
    }
  });

  it('refuses a message over MAX_STREAM_FRAME_BYTES from its header alone, and takes one at the limit', () => {
    const header = Buffer.from([0x40, 0x00, 0, 0]);
    header.writeUInt16BE(MAX_STREAM_FRAME_BYTES - 4 + 1, 2);
    expect(run([header])).to.deep.equal({ frames: [], error: 'oversized' });
    const atLimit = encodeChannelData(0x4000, Buffer.alloc(MAX_STREAM_FRAME_BYTES - 4));
    expect(run([atLimit]).frames).to.deep.equal([atLimit]);
    expect(run([Buffer.from('GET / HTTP/1.1\r\n')]).error, 'HTTP reads as ChannelData of 21,536 bytes').to.equal('oversized');
  });
});

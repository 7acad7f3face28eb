/**
 * Cuts a TCP or TLS byte stream from a TURN client into messages (RFC 5766 §11.5): a STUN
 * message is 20 bytes of header plus the length in its header; a ChannelData message is 4
 * bytes plus its length, padded to a multiple of 4 over a stream. Chunks may hold part of a
 * message or several; anything that cannot start a message makes the stream unusable (there
 * is no way to find the next message boundary), so the caller closes the connection.
 */
import { MAGIC_COOKIE, STUN_HEADER_BYTES } from './stunWire.js';

/**
 * The largest message a client may send over a stream. WebRTC clients keep RTP and SCTP packets
 * under the path MTU (about 1,200 bytes) and STUN requests are a few hundred bytes; a frame
 * announcing more is taken as a broken or hostile client rather than buffered.
 */
export const MAX_STREAM_FRAME_BYTES = 16 * 1024;

const CHANNEL_DATA_HEADER_BYTES = 4;

/** Why a stream cannot be read any further. */
export type FramingError = 'not_turn' | 'oversized';

export class StreamFramer {
  /** Bytes of an incomplete message, kept until the rest arrives. */
  private pending: Buffer | undefined;

  constructor(private readonly maxFrameBytes: number = MAX_STREAM_FRAME_BYTES) {}

  /** Bytes held for an incomplete message. */
  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }

  /**
   * Appends `chunk` and hands every complete message to `onFrame` (a STUN message exactly, a
   * ChannelData message with its padding). Returns null, or why the stream is malformed: then
   * nothing more should be pushed.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): FramingError | null {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (buf.length - offset >= CHANNEL_DATA_HEADER_BYTES) {
      const size = this.frameSize(buf, offset);
      if (typeof size === 'string') return size;
      if (size === 0 || buf.length - offset < size) break;
      onFrame(buf.subarray(offset, offset + size));
      offset += size;
    }
    if (offset < buf.length) {
      buf = buf.subarray(offset);
      // A copy, so a small remainder does not pin the whole chunk it came in.
      this.pending = offset > 0 ? Buffer.from(buf) : buf;
    }
    return null;
  }

  /** The size of the message starting at `offset`, 0 when more bytes are needed to tell, or the error. */
  private frameSize(buf: Buffer, offset: number): number | FramingError {
    const first = buf[offset] as number;
    const length = buf.readUInt16BE(offset + 2);
    let size: number;
    if (first < 0x40) {
      // RFC 5389 §6: the length of a STUN message is a multiple of 4, and the magic cookie follows.
      if (length % 4 !== 0) return 'not_turn';
      if (buf.length - offset < 8) return 0;
      if (buf.readUInt32BE(offset + 4) !== MAGIC_COOKIE) return 'not_turn';
      size = STUN_HEADER_BYTES + length;
    } else if (first < 0x80) {
      size = CHANNEL_DATA_HEADER_BYTES + length + ((4 - (length & 3)) & 3);
    } else return 'not_turn';
    return size > this.maxFrameBytes ? 'oversized' : size;
  }
}

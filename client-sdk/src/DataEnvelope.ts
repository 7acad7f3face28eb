/** The wire format of data channel messages (mesh links and SFU data producers alike). */

/** What a data message carries: text, JSON, or bytes. */
export type DataPayload = string | Uint8Array | { [key: string]: unknown } | unknown[];

export interface DataInfo {
  reliable: boolean;
  /** The sender's sequence number (per sender, increasing). */
  seq: number;
  /** The topic the sender gave (`send(payload, { topic })`), for apps that multiplex. */
  topic?: string;
}

/**
 * The envelope every data message travels in. Data: kind, sender epoch, sequence (separate
 * spaces for reliable and lossy), targets. Control (`c`): migration hand-shakes between peers.
 */
export interface Envelope {
  k?: 's' | 'j' | 'b';
  /** Sender's random epoch: sequence numbers restart with a new Room instance. */
  e?: string;
  q?: number;
  /** 1 reliable, 0 lossy. */
  r?: 0 | 1;
  /** Target identities; absent means everyone. */
  t?: string[];
  /** The sender's topic, when it gave one. */
  tp?: string;
  /** A batch: whole envelopes (as sent), handled one by one (a sync answer's resends, the backlog flushed when our SFU data producer opens). */
  b?: string[];
  d?: unknown;
  c?: ControlKind;
  /** With sfu-produced: our producer ids on the SFU. */
  p?: string[];
  /** With sfu-produced: 1 while only the media producers are listed (the data producers follow). */
  m?: number;
  /** With sfu-produced (the full list): which of `p` are data producers. */
  dp?: string[];
  /** With sync: the identity of the sender asked to resend (with `e`, its epoch, `q`, from where, and `u`, up to where, exclusive). */
  s?: string;
  u?: number;
  /** With sync and synced: the request's nonce. */
  n?: string;
  /** With synced: the oldest sequence number the sender still holds (older ones are gone for good). */
  o?: number;
}

/**
 * Migration hand-shakes. To the SFU: `sfu-produced` (mesh; the producers to expect from me:
 * first the media ones with m=1, then all, with the data ones in dp), `sfu-media-ready` (mesh;
 * your media reaches me over the SFU, stop sending it on this link), `sfu-data-ready` (mesh; I
 * receive your data over the SFU), `sfu-ready` (mesh; I receive all of you over the SFU, data
 * included), `bye` (mesh; my last data on this link).
 * To the mesh: `mesh-ready` (mesh; I receive you over the mesh), `sfu-bye` (SFU; my last data there).
 */
export type HandOverKind = 'sfu-produced' | 'sfu-media-ready' | 'sfu-data-ready' | 'sfu-ready' | 'bye' | 'mesh-ready' | 'sfu-bye';

/** Requests, answers and tail announcements of the resend protocol (see ReliableDelivery). */
export type SyncKind = 'sync' | 'synced' | 'tail';

export type ControlKind = HandOverKind | SyncKind;

export const isSyncKind = (kind: ControlKind): kind is SyncKind => kind === 'sync' || kind === 'synced' || kind === 'tail';

/** The path a message came over: a mesh link, or the SFU. */
export type DataPath = 'mesh' | 'sfu';

/**
 * What travels on a data channel: text (a JSON envelope, or a batch of them) or a binary frame.
 * Binary frames start with their kind: FRAME_DATA `[1][u32 header length][header JSON][bytes]`
 * (a binary payload; the header is the envelope without `d`), FRAME_BATCH `[2]` then members
 * `[0 text | 1 binary][u32 length][bytes]`. JSON text always starts with `{`.
 */
export type WireMessage = string | Uint8Array;

const FRAME_DATA = 1;
const FRAME_BATCH = 2;

/**
 * The largest message on the wire, envelope included: mediasoup's default maxSctpMessageSize and
 * the max-message-size Chromium and libwebrtc announce (a larger one closes the channel or is
 * dropped by the SFU). Larger sends are refused with `payload_too_large`.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** The longest `topic` (characters). */
export const MAX_TOPIC_LENGTH = 128;

/** At most this many bytes of envelopes in one batch message (SCTP messages up to 256 KiB pass everywhere). */
export const BATCH_MAX_CHARS = 32 * 1024;

/** Bytes a wire message takes on the wire (text counted as characters: its UTF-8 size where that matters is checked by prepare). */
export const wireSize = (message: WireMessage): number => (typeof message === 'string' ? message.length : message.byteLength);

/**
 * Envelopes packed into as few messages as fit BATCH_MAX_CHARS: mediasoup's SCTP association
 * queues a bounded number of chunks for a receiver (usrsctp's per-association chunk limit; 512
 * by its defaults as far as we know) and drops the rest, so 256 resent messages one by one
 * overflow a receiver that is behind, while a batch is a few chunks. One envelope is sent as it
 * is; a batch of text only is JSON (`{b: [...]}`), one with binary frames a FRAME_BATCH.
 */
export function batches(messages: WireMessage[]): WireMessage[] {
  const out: WireMessage[] = [];
  let batch: WireMessage[] = [];
  let size = 0;
  const flush = () => {
    if (batch.length === 1) out.push(batch[0] as WireMessage);
    else if (batch.length > 1)
      out.push(batch.every((m) => typeof m === 'string') ? JSON.stringify({ b: batch }) : encodeBinaryBatch(batch));
    batch = [];
    size = 0;
  };
  for (const message of messages) {
    if (size + wireSize(message) > BATCH_MAX_CHARS) flush();
    batch.push(message);
    size += wireSize(message);
  }
  flush();
  return out;
}

function encodeBinaryBatch(members: WireMessage[]): Uint8Array {
  const parts = members.map((m) => (typeof m === 'string' ? utf8.encode(m) : m));
  const frame = new Uint8Array(1 + parts.reduce((sum, part) => sum + 5 + part.byteLength, 0));
  const view = new DataView(frame.buffer);
  frame[0] = FRAME_BATCH;
  let at = 1;
  parts.forEach((part, i) => {
    frame[at] = typeof members[i] === 'string' ? 0 : 1;
    view.setUint32(at + 1, part.byteLength);
    frame.set(part, at + 5);
    at += 5 + part.byteLength;
  });
  return frame;
}

/**
 * The envelopes of one received message: itself, or the members of its batch (one level only:
 * a batch inside a batch is ignored). Anything malformed yields none.
 */
export function unpack(message: WireMessage | ArrayBuffer, inBatch = false): Envelope[] {
  if (typeof message !== 'string') return unpackBinary(message instanceof Uint8Array ? message : new Uint8Array(message), inBatch);
  let envelope: unknown;
  try {
    envelope = JSON.parse(message);
  } catch {
    return [];
  }
  if (typeof envelope !== 'object' || envelope === null) return [];
  const { b } = envelope as Envelope;
  if (!Array.isArray(b)) return [envelope as Envelope];
  if (inBatch) return [];
  return b.flatMap((inner) => (typeof inner === 'string' ? unpack(inner, true) : []));
}

function unpackBinary(frame: Uint8Array, inBatch: boolean): Envelope[] {
  if (frame.byteLength < 5) return [];
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  try {
    if (frame[0] === FRAME_DATA) {
      const headerLength = view.getUint32(1);
      if (5 + headerLength > frame.byteLength) return [];
      const header: unknown = JSON.parse(utf8Decoder.decode(frame.subarray(5, 5 + headerLength)));
      if (typeof header !== 'object' || header === null || Array.isArray(header)) return [];
      // A copy: the app may keep it, and a batch's members share one buffer.
      return [{ ...(header as Envelope), k: 'b', d: frame.slice(5 + headerLength) }];
    }
    if (frame[0] !== FRAME_BATCH || inBatch) return [];
    const envelopes: Envelope[] = [];
    for (let at = 1; at + 5 <= frame.byteLength;) {
      const length = view.getUint32(at + 1);
      const member = frame.subarray(at + 5, at + 5 + length);
      envelopes.push(...(frame[at] === 0 ? unpack(utf8Decoder.decode(member), true) : unpackBinary(member, true)));
      at += 5 + length;
    }
    return envelopes;
  } catch {
    return [];
  }
}

/** A payload made ready to send: its JSON text or its bytes, copied at send() time (later changes by the app do not travel). */
export interface PreparedPayload {
  kind: 's' | 'j' | 'b';
  /** `d` as JSON text (s, j) or the bytes (b). */
  body: string | Uint8Array;
}

export function preparePayload(payload: DataPayload): PreparedPayload {
  if (payload instanceof Uint8Array) return { kind: 'b', body: payload.slice() };
  const body = JSON.stringify(payload);
  if (body === undefined) throw new TypeError('the payload cannot be serialised as JSON');
  return { kind: typeof payload === 'string' ? 's' : 'j', body };
}

export interface DataHeader {
  epoch: string;
  seq: number;
  reliable: boolean;
  to?: string[];
  topic?: string;
}

const headerText = (kind: PreparedPayload['kind'], header: DataHeader): string => {
  const envelope: Envelope = { e: header.epoch, q: header.seq, r: header.reliable ? 1 : 0 };
  if (header.to) envelope.t = header.to;
  if (header.topic !== undefined) envelope.tp = header.topic;
  envelope.k = kind;
  return JSON.stringify(envelope);
};

/**
 * A data message: `{e, q, r, t?, tp?, k, d}` as JSON text for text and JSON payloads, a
 * FRAME_DATA binary frame (the same header, then the raw bytes) for binary ones.
 */
export function encodeData({ kind, body }: PreparedPayload, header: DataHeader): WireMessage {
  const head = headerText(kind, header);
  if (typeof body === 'string') return `${head.slice(0, -1)},"d":${body}}`;
  const headBytes = utf8.encode(head);
  const frame = new Uint8Array(5 + headBytes.byteLength + body.byteLength);
  frame[0] = FRAME_DATA;
  new DataView(frame.buffer).setUint32(1, headBytes.byteLength);
  frame.set(headBytes, 5);
  frame.set(body, 5 + headBytes.byteLength);
  return frame;
}

/**
 * The most bytes a message of this payload and header can take on the wire, whatever its
 * sequence number: checked against MAX_MESSAGE_BYTES before anything is sent.
 */
export function maxEncodedBytes(prepared: PreparedPayload, header: Omit<DataHeader, 'seq'>): number {
  const head = utf8Length(headerText(prepared.kind, { ...header, seq: Number.MAX_SAFE_INTEGER }));
  if (typeof prepared.body !== 'string') return 5 + head + prepared.body.byteLength;
  return head + 5 + utf8Length(prepared.body);
}

/** UTF-8 bytes of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The payload of a data envelope, as the sender passed it. */
export const decodePayload = (envelope: Envelope): DataPayload => {
  if (envelope.k !== 'b') return envelope.d as DataPayload;
  return envelope.d instanceof Uint8Array ? envelope.d : fromBase64(String(envelope.d));
};

/** A control message's text: `{c, ...fields}`. */
export const encodeControl = (kind: ControlKind, fields: Partial<Envelope> = {}): string => JSON.stringify({ c: kind, ...fields });

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
/** Binary payloads of senders from before binary frames (base64 inside the JSON envelope). */
const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

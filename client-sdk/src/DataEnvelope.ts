/** The wire format of data channel messages (mesh links and SFU data producers alike). */

/** What a data message carries: text, JSON, or bytes. */
export type DataPayload = string | Uint8Array | { [key: string]: unknown } | unknown[];

export interface DataInfo {
  reliable: boolean;
  /** The sender's sequence number (per sender, increasing). */
  seq: number;
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

/** At most this many characters of envelopes in one batch message (SCTP messages up to 256 KiB pass everywhere). */
export const BATCH_MAX_CHARS = 32 * 1024;

/**
 * Envelopes packed into as few messages as fit BATCH_MAX_CHARS ({b: [...]}): mediasoup's SCTP
 * association queues a bounded number of chunks for a receiver (usrsctp's per-association
 * chunk limit; 512 by its defaults as far as we know) and drops the rest, so 256 resent
 * messages one by one overflow a receiver that is behind, while a batch is a few chunks. One
 * envelope is sent as it is.
 */
export function batches(texts: string[]): string[] {
  const out: string[] = [];
  let batch: string[] = [];
  let chars = 0;
  const flush = () => {
    if (batch.length === 1) out.push(batch[0] as string);
    else if (batch.length > 1) out.push(JSON.stringify({ b: batch }));
    batch = [];
    chars = 0;
  };
  for (const text of texts) {
    if (chars + text.length > BATCH_MAX_CHARS) flush();
    batch.push(text);
    chars += text.length;
  }
  flush();
  return out;
}

/**
 * The envelopes of one received message: itself, or the members of its batch (one level only:
 * a batch inside a batch is ignored). Text that is not a JSON object yields none.
 */
export function unpack(text: string, inBatch = false): Envelope[] {
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    return [];
  }
  if (typeof envelope !== 'object' || envelope === null) return [];
  const { b } = envelope as Envelope;
  if (!Array.isArray(b)) return [envelope as Envelope];
  if (inBatch) return [];
  return b.flatMap((inner) => (typeof inner === 'string' ? unpack(inner, true) : []));
}

/** A data message's text: `{e, q, r, t?, k, d}`. */
export function encodeData(payload: DataPayload, header: { epoch: string; seq: number; reliable: boolean; to?: string[] }): string {
  const envelope: Envelope = { e: header.epoch, q: header.seq, r: header.reliable ? 1 : 0 };
  if (header.to) envelope.t = header.to;
  if (typeof payload === 'string') Object.assign(envelope, { k: 's', d: payload });
  else if (payload instanceof Uint8Array) Object.assign(envelope, { k: 'b', d: toBase64(payload) });
  else Object.assign(envelope, { k: 'j', d: payload });
  return JSON.stringify(envelope);
}

/** The payload of a data envelope, as the sender passed it. */
export const decodePayload = (envelope: Envelope): DataPayload =>
  envelope.k === 'b' ? fromBase64(String(envelope.d)) : (envelope.d as DataPayload);

/** A control message's text: `{c, ...fields}`. */
export const encodeControl = (kind: ControlKind, fields: Partial<Envelope> = {}): string => JSON.stringify({ c: kind, ...fields });

const toBase64 = (bytes: Uint8Array): string => {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
};
const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

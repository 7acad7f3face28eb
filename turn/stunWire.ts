/**
 * The few STUN/TURN wire operations the relay does itself, on raw buffers, because they sit
 * on the per-packet path (ChannelData, Send and Data indications) or must run before
 * node-turn sees a request (constant-time MESSAGE-INTEGRITY). node-turn's own parser builds
 * several objects per attribute; these helpers allocate nothing on the hot path but the
 * peer address string. RFC 5389 (STUN) and RFC 5766 (TURN) framing.
 */
import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { SocketAddress } from 'node:net';

export const MAGIC_COOKIE = 0x2112a442;
export const STUN_HEADER_BYTES = 20;

export const StunClass = { request: 0, indication: 1, success: 2, error: 3 } as const;
export const StunMethod = {
  binding: 0x001,
  allocate: 0x003,
  refresh: 0x004,
  send: 0x006,
  data: 0x007,
  createPermission: 0x008,
  channelBind: 0x009,
} as const;

export const Attr = {
  changeRequest: 0x0003,
  username: 0x0006,
  messageIntegrity: 0x0008,
  unknownAttributes: 0x000a,
  channelNumber: 0x000c,
  lifetime: 0x000d,
  xorPeerAddress: 0x0012,
  data: 0x0013,
  realm: 0x0014,
  nonce: 0x0015,
  requestedAddressFamily: 0x0017,
  evenPort: 0x0018,
  requestedTransport: 0x0019,
  dontFragment: 0x001a,
  reservationToken: 0x0022,
  priority: 0x0024,
  fingerprint: 0x8028,
} as const;

/** RFC 5389 §15: types below this must be understood (or the request refused with 420). */
export const COMPREHENSION_OPTIONAL = 0x8000;

/** STUN message type for a method and class (the class bits are interleaved with the method). */
export function stunType(method: number, cls: number): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

export function methodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
}

export function classOf(type: number): number {
  return ((type >> 4) & 1) | ((type >> 7) & 2);
}

export const SEND_INDICATION = stunType(StunMethod.send, StunClass.indication);
const DATA_INDICATION = stunType(StunMethod.data, StunClass.indication);

/** Offsets of the attributes the front door looks at; -1 when absent. */
export interface RequestScan {
  usernameOffset: number;
  usernameLength: number;
  integrityOffset: number;
  fingerprint: boolean;
}

/**
 * Walks a STUN message's attributes (bounded by the header length and the datagram).
 * Attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as RFC 5389 says.
 */
export function scanRequest(buf: Buffer): RequestScan {
  const scan: RequestScan = { usernameOffset: -1, usernameLength: 0, integrityOffset: -1, fingerprint: false };
  const end = Math.min(buf.length, STUN_HEADER_BYTES + buf.readUInt16BE(2));
  let off = STUN_HEADER_BYTES;
  while (off + 4 <= end) {
    const type = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    if (off + 4 + len > end) break;
    if (type === Attr.fingerprint) scan.fingerprint = true;
    else if (scan.integrityOffset < 0) {
      if (type === Attr.username) {
        scan.usernameOffset = off + 4;
        scan.usernameLength = len;
      } else if (type === Attr.messageIntegrity) scan.integrityOffset = off;
    }
    off += 4 + ((len + 3) & ~3);
  }
  return scan;
}

/** Where one attribute's value sits in a datagram. */
export interface AttributeRef {
  type: number;
  /** Offset of the value (after the 4-byte attribute header). */
  offset: number;
  length: number;
}

/**
 * The attributes of a STUN message in order, bounded by the header length and the datagram.
 * Those after MESSAGE-INTEGRITY other than FINGERPRINT are left out: RFC 5389 §15.4 says
 * they are ignored.
 */
export function listAttributes(buf: Buffer): AttributeRef[] {
  const list: AttributeRef[] = [];
  const end = Math.min(buf.length, STUN_HEADER_BYTES + buf.readUInt16BE(2));
  let integrity = false;
  let off = STUN_HEADER_BYTES;
  while (off + 4 <= end) {
    const type = buf.readUInt16BE(off);
    const length = buf.readUInt16BE(off + 2);
    if (off + 4 + length > end) break;
    if (!integrity || type === Attr.fingerprint) list.push({ type, offset: off + 4, length });
    if (type === Attr.messageIntegrity) integrity = true;
    off += 4 + ((length + 3) & ~3);
  }
  return list;
}

/** Checks MESSAGE-INTEGRITY (HMAC-SHA1 over the message up to it) in constant time. */
export function integrityMatches(buf: Buffer, integrityOffset: number, key: Buffer): boolean {
  if (integrityOffset + 24 > buf.length || buf.readUInt16BE(integrityOffset + 2) !== 20) return false;
  // The length field covers everything up to and including MESSAGE-INTEGRITY.
  const length = Buffer.allocUnsafe(2);
  length.writeUInt16BE(integrityOffset - STUN_HEADER_BYTES + 24, 0);
  const mac = createHmac('sha1', key).update(buf.subarray(0, 2)).update(length).update(buf.subarray(4, integrityOffset)).digest();
  return timingSafeEqual(mac, buf.subarray(integrityOffset + 4, integrityOffset + 24));
}

/** A Send indication's peer and the DATA payload's position in the datagram. */
export interface SendIndication {
  address: string;
  port: number;
  dataOffset: number;
  dataLength: number;
}

/** Parses a Send indication; null when XOR-PEER-ADDRESS or DATA is missing or malformed. */
export function parseSendIndication(buf: Buffer): SendIndication | null {
  const end = Math.min(buf.length, STUN_HEADER_BYTES + buf.readUInt16BE(2));
  let peerOffset = -1;
  let peerLength = 0;
  let dataOffset = -1;
  let dataLength = 0;
  let off = STUN_HEADER_BYTES;
  while (off + 4 <= end) {
    const type = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    if (off + 4 + len > end) return null;
    if (type === Attr.xorPeerAddress && peerOffset < 0) {
      peerOffset = off + 4;
      peerLength = len;
    } else if (type === Attr.data && dataOffset < 0) {
      dataOffset = off + 4;
      dataLength = len;
    }
    off += 4 + ((len + 3) & ~3);
  }
  if (peerOffset < 0 || dataOffset < 0) return null;
  const peer = decodeXorAddress(buf, peerOffset, peerLength);
  return peer ? { ...peer, dataOffset, dataLength } : null;
}

/** Decodes an XOR-*-ADDRESS value at `off`; IPv6 is XORed with cookie + transaction id (bytes 4..20). */
export function decodeXorAddress(buf: Buffer, off: number, len: number): { address: string; port: number } | null {
  const family = buf[off + 1];
  const port = buf.readUInt16BE(off + 2) ^ (MAGIC_COOKIE >>> 16);
  if (family === 0x01 && len === 8) {
    const address = `${(buf[off + 4] as number) ^ 0x21}.${(buf[off + 5] as number) ^ 0x12}.${(buf[off + 6] as number) ^ 0xa4}.${(buf[off + 7] as number) ^ 0x42}`;
    return { address, port };
  }
  if (family === 0x02 && len === 20) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push((buf.readUInt16BE(off + 4 + i * 2) ^ buf.readUInt16BE(4 + i * 2)).toString(16));
    return { address: new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address, port };
  }
  return null;
}

/** The XORed address bytes of an XOR-PEER-ADDRESS for IPv4 (the transaction id is not involved). */
export function xorIpv4(address: string): Buffer {
  const out = Buffer.from(address.split('.').map(Number));
  out[0] = (out[0] as number) ^ 0x21;
  out[1] = (out[1] as number) ^ 0x12;
  out[2] = (out[2] as number) ^ 0xa4;
  out[3] = (out[3] as number) ^ 0x42;
  return out;
}

/** Zero padding to the next 4-byte boundary, indexed by the number of bytes needed. */
export const PADDING = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)] as const;

/**
 * Random transaction ids for Data indications, drawn from a pre-filled pool: node-turn asks
 * crypto for 12 random bytes asynchronously per relayed packet.
 */
class TransactionIds {
  private pool = Buffer.allocUnsafe(12 * 4096);
  private next = this.pool.length;

  copyInto(target: Buffer, offset: number): void {
    if (this.next + 12 > this.pool.length) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    this.pool.copy(target, offset, this.next, this.next + 12);
    this.next += 12;
  }
}

const transactionIds = new TransactionIds();

/**
 * The head of a Data indication (header, XOR-PEER-ADDRESS, DATA attribute header) for an
 * IPv4 peer; send it followed by the payload and PADDING[pad].
 */
export function dataIndicationHead(xorAddress: Buffer, port: number, dataLength: number): Buffer {
  const pad = (4 - (dataLength & 3)) & 3;
  const head = Buffer.allocUnsafe(36);
  head.writeUInt16BE(DATA_INDICATION, 0);
  head.writeUInt16BE(12 + 4 + dataLength + pad, 2);
  head.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionIds.copyInto(head, 8);
  head.writeUInt16BE(Attr.xorPeerAddress, 20);
  head.writeUInt16BE(8, 22);
  head.writeUInt16BE(0x0001, 24);
  head.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 26);
  xorAddress.copy(head, 28);
  head.writeUInt16BE(Attr.data, 32);
  head.writeUInt16BE(dataLength, 34);
  return head;
}

/** The head of a Data indication for an IPv6 peer (the address is XORed with the transaction id too). */
export function dataIndicationHeadIpv6(address: Buffer, port: number, dataLength: number): Buffer {
  const pad = (4 - (dataLength & 3)) & 3;
  const head = Buffer.allocUnsafe(48);
  head.writeUInt16BE(DATA_INDICATION, 0);
  head.writeUInt16BE(24 + 4 + dataLength + pad, 2);
  head.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionIds.copyInto(head, 8);
  head.writeUInt16BE(Attr.xorPeerAddress, 20);
  head.writeUInt16BE(20, 22);
  head.writeUInt16BE(0x0002, 24);
  head.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 26);
  for (let i = 0; i < 16; i++) head[28 + i] = (address[i] as number) ^ (head[4 + i] as number);
  head.writeUInt16BE(Attr.data, 44);
  head.writeUInt16BE(dataLength, 46);
  return head;
}

/** The 4-byte ChannelData header (RFC 5766 §11.4); over UDP the padding is optional and omitted. */
export function channelDataHead(channel: number, dataLength: number): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt16BE(channel, 0);
  head.writeUInt16BE(dataLength, 2);
  return head;
}

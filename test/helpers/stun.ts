/**
 * A small raw STUN/TURN client for tests (RFC 5389, RFC 5766), written independently of
 * turn/ so the server is checked against a second reading of the RFCs: message build and
 * parse, long-term credentials (MESSAGE-INTEGRITY), FINGERPRINT, XOR-*-ADDRESS, and
 * ChannelData framing, over a real UDP socket or a TCP or TLS connection.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import tls from 'node:tls';

export const MAGIC_COOKIE = 0x2112a442;

export const Method = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;
export const Class = { Request: 0, Indication: 1, Success: 2, Error: 3 } as const;

export const AttrType = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  Software: 0x8022,
  Fingerprint: 0x8028,
} as const;

export interface TransportAddress {
  address: string;
  port: number;
}

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  cls: number;
  transactionId: Buffer;
  attributes: StunAttribute[];
}

export function encodeType(method: number, cls: number): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

export function decodeType(type: number): { method: number; cls: number } {
  return {
    method: (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80),
    cls: ((type >> 4) & 1) | ((type >> 7) & 2),
  };
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function encodeAttribute(attr: StunAttribute): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(attr.type, 0);
  head.writeUInt16BE(attr.value.length, 2);
  return Buffer.concat([head, attr.value, Buffer.alloc(pad4(attr.value.length))]);
}

/** Encodes a message; with `key`, appends MESSAGE-INTEGRITY; with `fingerprint`, FINGERPRINT. */
export function encodeStun(message: StunMessage, options: { key?: Buffer; fingerprint?: boolean } = {}): Buffer {
  let body = Buffer.concat(message.attributes.map(encodeAttribute));
  const header = Buffer.alloc(20);
  header.writeUInt16BE(encodeType(message.method, message.cls), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  message.transactionId.copy(header, 8);
  if (options.key) {
    header.writeUInt16BE(body.length + 24, 2);
    const mac = createHmac('sha1', options.key)
      .update(Buffer.concat([header, body]))
      .digest();
    body = Buffer.concat([body, encodeAttribute({ type: AttrType.MessageIntegrity, value: mac })]);
  }
  if (options.fingerprint) {
    header.writeUInt16BE(body.length + 8, 2);
    const value = Buffer.alloc(4);
    value.writeUInt32BE((crc32(Buffer.concat([header, body])) ^ 0x5354554e) >>> 0, 0);
    body = Buffer.concat([body, encodeAttribute({ type: AttrType.Fingerprint, value })]);
  }
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** Decodes a STUN message; null when the datagram is not one. */
export function decodeStun(buf: Buffer): StunMessage | null {
  if (buf.length < 20 || (buf[0] as number) >> 6 !== 0 || buf.readUInt32BE(4) !== MAGIC_COOKIE) return null;
  const length = buf.readUInt16BE(2);
  if (20 + length > buf.length) return null;
  const { method, cls } = decodeType(buf.readUInt16BE(0));
  const attributes: StunAttribute[] = [];
  let off = 20;
  while (off + 4 <= 20 + length) {
    const type = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    attributes.push({ type, value: Buffer.from(buf.subarray(off + 4, off + 4 + len)) });
    off += 4 + len + pad4(len);
  }
  return { method, cls, transactionId: Buffer.from(buf.subarray(8, 20)), attributes };
}

/** The long-term credential key: MD5(username ":" realm ":" password). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`).digest();
}

/** Whether the raw message's MESSAGE-INTEGRITY was made with `key`; undefined when it has none. */
export function integrityValid(raw: Buffer, key: Buffer): boolean | undefined {
  let off = 20;
  const end = 20 + raw.readUInt16BE(2);
  while (off + 4 <= end) {
    const type = raw.readUInt16BE(off);
    const len = raw.readUInt16BE(off + 2);
    if (type === AttrType.MessageIntegrity) {
      const header = Buffer.from(raw.subarray(0, 20));
      header.writeUInt16BE(off - 20 + 24, 2);
      const mac = createHmac('sha1', key)
        .update(Buffer.concat([header, raw.subarray(20, off)]))
        .digest();
      return mac.equals(raw.subarray(off + 4, off + 24));
    }
    off += 4 + len + pad4(len);
  }
  return undefined;
}

function addressBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  // Expand IPv6 (with an optional trailing dotted quad) into 16 bytes.
  let text = address;
  let tail = Buffer.alloc(0);
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = Buffer.from(
      text
        .slice(lastColon + 1)
        .split('.')
        .map(Number),
    );
    text = text.slice(0, lastColon + 1) + 'ffff:ffff';
  }
  const [left = '', right] = text.split('::');
  const groups = (s: string): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const all = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length === 4) tail.copy(out, 12);
  return out;
}

/** An XOR-*-ADDRESS value (RFC 5389 §15.2). */
export function xorAddressValue(peer: TransportAddress, transactionId: Buffer): Buffer {
  const bytes = addressBytes(peer.address);
  const value = Buffer.alloc(4 + bytes.length);
  value[1] = bytes.length === 4 ? 0x01 : 0x02;
  value.writeUInt16BE(peer.port ^ (MAGIC_COOKIE >>> 16), 2);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  for (let i = 0; i < bytes.length; i++) value[4 + i] = (bytes[i] as number) ^ (mask[i] as number);
  return value;
}

export function readXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  const bytes = Buffer.from(value.subarray(4));
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] as number) ^ (mask[i] as number);
  if (bytes.length === 4) return { address: [...bytes].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return { address: groups.join(':'), port };
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

/** Attribute builders. */
export const attrs = {
  username: (s: string): StunAttribute => ({ type: AttrType.Username, value: Buffer.from(s) }),
  realm: (s: string): StunAttribute => ({ type: AttrType.Realm, value: Buffer.from(s) }),
  nonce: (s: string): StunAttribute => ({ type: AttrType.Nonce, value: Buffer.from(s) }),
  requestedTransport: (protocol = 17): StunAttribute => ({ type: AttrType.RequestedTransport, value: Buffer.from([protocol, 0, 0, 0]) }),
  lifetime: (seconds: number): StunAttribute => ({ type: AttrType.Lifetime, value: u32(seconds) }),
  channelNumber: (channel: number): StunAttribute => ({
    type: AttrType.ChannelNumber,
    value: Buffer.from([channel >> 8, channel & 0xff, 0, 0]),
  }),
  xorPeerAddress: (peer: TransportAddress, transactionId: Buffer): StunAttribute => ({
    type: AttrType.XorPeerAddress,
    value: xorAddressValue(peer, transactionId),
  }),
  data: (data: Buffer): StunAttribute => ({ type: AttrType.Data, value: data }),
  software: (s: string): StunAttribute => ({ type: AttrType.Software, value: Buffer.from(s) }),
  /** EVEN-PORT (RFC 5766 §14.6); `reserve` sets the R bit (reserve the next port too). */
  evenPort: (reserve: boolean): StunAttribute => ({ type: AttrType.EvenPort, value: Buffer.from([reserve ? 0x80 : 0x00]) }),
  reservationToken: (token: Buffer): StunAttribute => ({ type: AttrType.ReservationToken, value: token }),
  /** REQUESTED-ADDRESS-FAMILY (RFC 6156 §4.1.1): 0x01 IPv4, 0x02 IPv6. */
  requestedAddressFamily: (family: number): StunAttribute => ({
    type: AttrType.RequestedAddressFamily,
    value: Buffer.from([family, 0, 0, 0]),
  }),
  raw: (type: number, value: Buffer): StunAttribute => ({ type, value }),
};

/** ChannelData (RFC 5766 §11.4), padded to 4 bytes as over TCP (a server must accept both). */
export function encodeChannelData(channel: number, data: Buffer, pad = true): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(channel, 0);
  head.writeUInt16BE(data.length, 2);
  return Buffer.concat([head, data, Buffer.alloc(pad ? pad4(data.length) : 0)]);
}

export function decodeChannelData(buf: Buffer): { channel: number; data: Buffer } | null {
  if (buf.length < 4 || (buf[0] as number) >> 6 !== 1) return null;
  const length = buf.readUInt16BE(2);
  if (4 + length > buf.length) return null;
  return { channel: buf.readUInt16BE(0), data: Buffer.from(buf.subarray(4, 4 + length)) };
}

/** A decoded response with accessors. */
export class StunResponse {
  constructor(
    readonly message: StunMessage,
    readonly raw: Buffer,
  ) {}

  get isSuccess(): boolean {
    return this.message.cls === Class.Success;
  }

  /** The ERROR-CODE number (e.g. 401), or undefined on success. */
  get errorCode(): number | undefined {
    const value = this.attr(AttrType.ErrorCode);
    return value ? ((value[2] as number) & 0x07) * 100 + (value[3] as number) : undefined;
  }

  attr(type: number): Buffer | undefined {
    return this.message.attributes.find((a) => a.type === type)?.value;
  }

  string(type: number): string | undefined {
    return this.attr(type)?.toString('utf8');
  }

  /** The attribute types listed in UNKNOWN-ATTRIBUTES (empty when there is none). */
  get unknownAttributes(): number[] {
    const value = this.attr(AttrType.UnknownAttributes) ?? Buffer.alloc(0);
    const types: number[] = [];
    for (let off = 0; off + 2 <= value.length; off += 2) types.push(value.readUInt16BE(off));
    return types;
  }

  uint32(type: number): number | undefined {
    return this.attr(type)?.readUInt32BE(0);
  }

  xorAddress(type: number): TransportAddress | undefined {
    const value = this.attr(type);
    return value ? readXorAddress(value, this.message.transactionId) : undefined;
  }
}

/** What a client receives from the relay besides responses. */
export type RelayedData = { kind: 'channel'; channel: number; data: Buffer } | { kind: 'indication'; peer: TransportAddress; data: Buffer };

export interface TurnCredentialsLike {
  username: string;
  /** The password (RTCIceServer calls it credential). */
  credential: string;
}

interface PendingTransaction {
  resolve: (response: StunResponse) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** RFC 5389 retransmission, stretched for a loaded CI machine: 500 ms doubling to 2 s, ~12 s in all. */
const RTO_MS = 500;
const MAX_RTO_MS = 2000;
const MAX_SENDS = 8;
/** Over TCP and TLS a request is sent once (RFC 5389 §7.2.2); this long without an answer is a failure. */
const STREAM_TRANSACTION_TIMEOUT_MS = 12_000;

/**
 * A TURN client on one 5-tuple, over UDP (TurnClient) or a TCP or TLS connection
 * (StreamTurnClient). `allocate()` runs the long-term credential dance (401 -> REALM/NONCE ->
 * signed request, 438 -> retry with the new nonce); later requests are signed with the same key.
 */
export abstract class TurnClientBase {
  realm: string | undefined;
  nonce: string | undefined;
  private key: Buffer | undefined;
  private readonly pending = new Map<string, PendingTransaction>();
  private readonly inbox: RelayedData[] = [];
  private readonly waiters: Array<(data: RelayedData) => void> = [];
  protected closed = false;

  protected constructor(
    readonly server: TransportAddress,
    private readonly credentials: TurnCredentialsLike | undefined,
    /** Whether requests are retransmitted (UDP) or sent once (TCP, TLS). */
    private readonly retransmits: boolean,
  ) {}

  /** This end of the 5-tuple. */
  abstract get localAddress(): TransportAddress;

  /** Sends bytes as they are (one datagram over UDP; written to the stream over TCP and TLS). */
  abstract sendRaw(buf: Buffer): void;

  /** Closes the socket after sending `release` (a Refresh with LIFETIME 0) when there is one. */
  protected abstract shut(release: Buffer | null): Promise<void>;

  /** The message-integrity key once the server's realm is known. */
  get integrityKey(): Buffer | undefined {
    return this.key;
  }

  /** Sends a request and waits for its response (retransmitting over UDP). Signed once a key is known, unless `sign` is false. */
  async request(
    method: number,
    attributes: StunAttribute[] | ((tid: Buffer) => StunAttribute[]),
    options: { sign?: boolean; fingerprint?: boolean } = {},
  ): Promise<StunResponse> {
    for (let attempt = 0; ; attempt++) {
      const transactionId = randomBytes(12);
      const list = typeof attributes === 'function' ? attributes(transactionId) : attributes;
      const response = await this.exchange(transactionId, this.buildRequest(method, list, transactionId, options));
      // 438 Stale Nonce: take the new nonce and try once more.
      if (response.errorCode === 438 && attempt === 0) {
        this.nonce = response.string(AttrType.Nonce) ?? this.nonce;
        continue;
      }
      return response;
    }
  }

  /** Encodes a request, adding USERNAME, REALM, NONCE and MESSAGE-INTEGRITY once a key is known (unless `sign` is false). */
  buildRequest(
    method: number,
    attributes: StunAttribute[],
    transactionId: Buffer,
    options: { sign?: boolean; fingerprint?: boolean } = {},
  ): Buffer {
    const { credentials, realm, nonce, key } = this;
    const signed = (options.sign ?? true) && key && credentials && realm !== undefined && nonce !== undefined;
    const all = signed ? [...attributes, attrs.username(credentials.username), attrs.realm(realm), attrs.nonce(nonce)] : attributes;
    return encodeStun(
      { method, cls: Class.Request, transactionId, attributes: all },
      { key: signed ? key : undefined, fingerprint: options.fingerprint },
    );
  }

  /** Sends an encoded request with transaction id `transactionId` and waits for the response (retransmitting over UDP). */
  exchange(transactionId: Buffer, raw: Buffer): Promise<StunResponse> {
    return this.awaitResponse(transactionId, () => this.sendRaw(raw));
  }

  /**
   * Waits for the response to `transactionId`, calling `send` to (re)transmit: over UDP with
   * RFC 5389's backoff, over a stream once.
   */
  awaitResponse(transactionId: Buffer, send: () => void): Promise<StunResponse> {
    const id = transactionId.toString('hex');
    return new Promise<StunResponse>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('client closed'));
        return;
      }
      let sends = 0;
      let rto = RTO_MS;
      const fail = (): void => {
        this.pending.delete(id);
        reject(new Error(`no response to STUN transaction ${id}`));
      };
      const transmit = (): void => {
        if (sends >= MAX_SENDS) return fail();
        sends += 1;
        send();
        const entry = this.pending.get(id);
        if (entry) entry.timer = setTimeout(transmit, rto);
        rto = Math.min(rto * 2, MAX_RTO_MS);
      };
      this.pending.set(id, { resolve, reject, timer: undefined });
      if (this.retransmits) transmit();
      else {
        send();
        const entry = this.pending.get(id);
        if (entry) entry.timer = setTimeout(fail, STREAM_TRANSACTION_TIMEOUT_MS);
      }
    });
  }

  /**
   * Allocate with the long-term credential mechanism. Returns the final response (success
   * or error: 401 for bad credentials, 486 for quota, ...).
   */
  async allocate(extra: StunAttribute[] = []): Promise<StunResponse> {
    if (!this.key) {
      const challenge = await this.challenge();
      if (!this.key) return challenge;
    }
    return this.request(Method.Allocate, [attrs.requestedTransport(), ...extra]);
  }

  /**
   * Sends an unsigned Allocate to learn REALM and NONCE from the 401, and derives the key
   * from them. Returns the server's answer (a 401 when all went to plan). With `Method.Refresh`,
   * an unsigned Refresh instead: the way in for a 5-tuple that already has an allocation (made
   * by an earlier socket on the same port), where an Allocate may meet 437 before any 401.
   */
  async challenge(method: number = Method.Allocate): Promise<StunResponse> {
    const response = await this.request(method, method === Method.Allocate ? [attrs.requestedTransport()] : [], { sign: false });
    const realm = response.string(AttrType.Realm);
    const nonce = response.string(AttrType.Nonce);
    if (response.errorCode === 401 && this.credentials && realm !== undefined && nonce !== undefined) {
      this.realm = realm;
      this.nonce = nonce;
      this.key = longTermKey(this.credentials.username, realm, this.credentials.credential);
    }
    return response;
  }

  createPermission(...peers: string[]): Promise<StunResponse> {
    return this.request(Method.CreatePermission, (tid) => peers.map((address) => attrs.xorPeerAddress({ address, port: 0 }, tid)));
  }

  channelBind(channel: number, peer: TransportAddress): Promise<StunResponse> {
    return this.request(Method.ChannelBind, (tid) => [attrs.channelNumber(channel), attrs.xorPeerAddress(peer, tid)]);
  }

  refresh(lifetime?: number): Promise<StunResponse> {
    return this.request(Method.Refresh, lifetime === undefined ? [] : [attrs.lifetime(lifetime)]);
  }

  /** A Send indication (unauthenticated by design). */
  sendIndication(peer: TransportAddress, data: Buffer): void {
    this.sendRaw(encodeSendIndication(peer, data));
  }

  sendChannelData(channel: number, data: Buffer, pad = true): void {
    this.sendRaw(encodeChannelData(channel, data, pad));
  }

  /** The next ChannelData or Data indication from the relay. */
  nextData(timeoutMs = 10_000): Promise<RelayedData> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(deliver);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no relayed data within ${timeoutMs} ms`));
      }, timeoutMs);
      const deliver = (data: RelayedData): void => {
        clearTimeout(timer);
        resolve(data);
      };
      this.waiters.push(deliver);
    });
  }

  /**
   * Closes the socket, first releasing (Refresh, LIFETIME 0, not waiting for the answer) any
   * allocation this client holds: otherwise it outlives the client, and a later client that
   * gets the same ephemeral port from the OS meets it as 437 Allocation Mismatch.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.rejectPending(new Error('client closed'));
    const release = this.key ? this.buildRequest(Method.Refresh, [attrs.lifetime(0)], randomBytes(12)) : null;
    return this.shut(release);
  }

  /** Fails every request still waiting for an answer. */
  protected rejectPending(error: Error): void {
    for (const [, pending] of this.pending) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
  }

  /** One message from the server: a response, a Data indication or ChannelData. */
  protected onMessage(buf: Buffer): void {
    const channelData = decodeChannelData(buf);
    if (channelData) return this.deliver({ kind: 'channel', ...channelData });
    const message = decodeStun(buf);
    if (!message) return;
    if (message.cls === Class.Indication && message.method === Method.Data) {
      const response = new StunResponse(message, buf);
      const peer = response.xorAddress(AttrType.XorPeerAddress);
      const data = response.attr(AttrType.Data);
      if (peer && data) this.deliver({ kind: 'indication', peer, data });
      return;
    }
    const id = message.transactionId.toString('hex');
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    if (pending.timer) clearTimeout(pending.timer);
    pending.resolve(new StunResponse(message, buf));
  }

  private deliver(data: RelayedData): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(data);
    else this.inbox.push(data);
  }
}

/** A Send indication towards `peer` carrying `data`. */
export function encodeSendIndication(peer: TransportAddress, data: Buffer): Buffer {
  const transactionId = randomBytes(12);
  return encodeStun({
    method: Method.Send,
    cls: Class.Indication,
    transactionId,
    attributes: [attrs.xorPeerAddress(peer, transactionId), attrs.data(data)],
  });
}

/** A TURN client on one UDP socket (one 5-tuple). */
export class TurnClient extends TurnClientBase {
  readonly socket: dgram.Socket;

  private constructor(server: TransportAddress, credentials: TurnCredentialsLike | undefined, socket: dgram.Socket) {
    super(server, credentials, true);
    this.socket = socket;
    socket.on('message', (buf) => this.onMessage(buf));
  }

  /**
   * Opens a UDP socket on 127.0.0.1 (or ::1 for an IPv6 server) towards `server`, on
   * `localPort` when given (e.g. to release an allocation another process used), else an ephemeral one.
   */
  static async open(server: TransportAddress, credentials?: TurnCredentialsLike, localPort = 0): Promise<TurnClient> {
    const v6 = isIP(server.address) === 6;
    const socket = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(localPort, v6 ? '::1' : '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new TurnClient(server, credentials, socket);
  }

  get localAddress(): TransportAddress {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  sendRaw(buf: Buffer): void {
    this.socket.send(buf, this.server.port, this.server.address);
  }

  protected shut(release: Buffer | null): Promise<void> {
    return new Promise((resolve) => {
      const shut = () => this.socket.close(() => resolve());
      if (release) this.socket.send(release, this.server.port, this.server.address, shut);
      else shut();
    });
  }
}

/**
 * How a StreamTurnClient connects: plain TCP, or TLS trusting `ca` (the server's self-signed
 * certificate); `localAddress` is where from (127.0.0.1, or ::1 towards IPv6, by default).
 */
export type StreamTransport = ({ protocol: 'tcp' } | { protocol: 'tls'; ca: string; servername?: string }) & { localAddress?: string };

/**
 * A TURN client on one TCP or TLS connection (RFC 5766 §2.1). Messages from the server are cut
 * out of the stream by their length (STUN: 20 + length; ChannelData: 4 + length padded to 4).
 */
export class StreamTurnClient extends TurnClientBase {
  /** Resolves when the connection is closed (by either side), with whether the server closed it first. */
  readonly ended: Promise<{ byServer: boolean }>;
  private readonly socket: net.Socket;
  private received: Buffer = Buffer.alloc(0);

  private constructor(server: TransportAddress, credentials: TurnCredentialsLike | undefined, socket: net.Socket) {
    super(server, credentials, false);
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        const byServer = !this.closed;
        this.closed = true;
        this.rejectPending(new Error('connection closed'));
        resolve({ byServer });
      }),
    );
  }

  /** Connects to `server` (from transport.localAddress) over TCP or TLS; resolves once connected (and the TLS handshake is done). */
  static async open(server: TransportAddress, transport: StreamTransport, credentials?: TurnCredentialsLike): Promise<StreamTurnClient> {
    const localAddress = transport.localAddress ?? (isIP(server.address) === 6 ? '::1' : '127.0.0.1');
    const raw = await new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: server.address, port: server.port, localAddress, noDelay: true }, () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
    if (transport.protocol === 'tcp') return new StreamTurnClient(server, credentials, raw);
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ socket: raw, ca: transport.ca, servername: transport.servername ?? 'localhost' }, () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', (error) => {
        raw.destroy();
        reject(error);
      });
    });
    return new StreamTurnClient(server, credentials, secure);
  }

  get localAddress(): TransportAddress {
    return { address: this.socket.localAddress as string, port: this.socket.localPort as number };
  }

  sendRaw(buf: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(buf);
  }

  /** Closes the connection without a release: the server must free the allocation itself. */
  drop(): Promise<void> {
    this.closed = true;
    this.socket.destroy();
    return this.ended.then(() => undefined);
  }

  protected async shut(release: Buffer | null): Promise<void> {
    if (release && !this.socket.destroyed) this.socket.write(release);
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 2_000);
    await this.ended;
    clearTimeout(timer);
  }

  private onData(chunk: Buffer): void {
    this.received = this.received.length ? Buffer.concat([this.received, chunk]) : chunk;
    for (;;) {
      if (this.received.length < 4) return;
      const length = this.received.readUInt16BE(2);
      const size = (this.received[0] as number) >> 6 === 1 ? 4 + length + pad4(length) : 20 + length;
      if (this.received.length < size) return;
      const message = this.received.subarray(0, size);
      this.received = this.received.subarray(size);
      this.onMessage(message);
    }
  }
}

/** A plain UDP socket standing in for a peer on the far side of the relay. */
export class UdpPeer {
  private readonly inbox: Array<{ data: Buffer; from: TransportAddress }> = [];
  private readonly waiters: Array<(packet: { data: Buffer; from: TransportAddress }) => void> = [];

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (data, rinfo) => {
      const packet = { data, from: { address: rinfo.address, port: rinfo.port } };
      const waiter = this.waiters.shift();
      if (waiter) waiter(packet);
      else this.inbox.push(packet);
    });
  }

  static async open(address = '127.0.0.1'): Promise<UdpPeer> {
    const socket = dgram.createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
    return new UdpPeer(socket);
  }

  get address(): TransportAddress {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  send(data: Buffer, to: TransportAddress): void {
    this.socket.send(data, to.port, to.address);
  }

  next(timeoutMs = 10_000): Promise<{ data: Buffer; from: TransportAddress }> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(deliver);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`peer received nothing within ${timeoutMs} ms`));
      }, timeoutMs);
      const deliver = (packet: { data: Buffer; from: TransportAddress }): void => {
        clearTimeout(timer);
        resolve(packet);
      };
      this.waiters.push(deliver);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

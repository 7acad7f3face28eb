/**
 * Which peers a TURN allocation may relay to. Without this, a TURN server is an open proxy
 * into the network it runs in (cloud metadata at 169.254.169.254, databases on 10/8, the
 * signaling server on localhost). Checked on CreatePermission, ChannelBind and Send.
 */
import { isIP, SocketAddress } from 'node:net';
import os from 'node:os';

/** Why an address is refused; also the `reason` in logs. */
export type AddressClass =
  | 'invalid'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'multicast'
  | 'reserved'
  | 'server';

export type PeerVerdict =
  | {
      allowed: true;
      /** The peer is one of this server's relay addresses: only relay ports may be reached. */
      relayPortsOnly: boolean;
    }
  | { allowed: false; reason: AddressClass };

export interface PeerPolicyOptions {
  /** CIDRs relayed to even when they fall in a denied class (TURN_ALLOWED_PEER_CIDRS). */
  allowedCidrs?: readonly string[];
  /** This server's own addresses (listen, relay, external, interfaces): denied. */
  serverAddresses?: readonly string[];
  /** This server's relay addresses: reachable on relay ports so two relayed peers can meet. */
  relayAddresses?: readonly string[];
  /** The relay port range [min, max] (TURN_MIN_PORT, TURN_MAX_PORT). */
  relayPorts?: readonly [number, number];
  /** Ports of this server that are never relay ports even inside the range (the TURN port). */
  serverPorts?: readonly number[];
}

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
type IpBytes = Uint8Array;

interface Cidr {
  bytes: IpBytes;
  prefix: number;
}

interface ClassRange extends Cidr {
  cls: AddressClass;
}

/**
 * Parses an IPv4 or IPv6 literal (no zone, no brackets) into bytes; null when invalid.
 * IPv4-mapped (::ffff:a.b.c.d) stays 16 bytes; see embeddedIpv4 for the unwrapping.
 */
export function parseIp(text: string): IpBytes | null {
  const family = isIP(text);
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  if (family !== 6) return null;
  let head = text;
  let tail4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail4 = text.slice(lastColon + 1).split('.').map(Number);
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const l = groups(left);
  const r = groups(right);
  const all = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  if (all.length !== 8) return null;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (tail4.length === 4) bytes.set(tail4, 12);
  return bytes;
}

/** The canonical text form (what Node reports in rinfo.address); null when invalid. */
export function canonicalIp(text: string): string | null {
  const family = isIP(text);
  if (family === 0) return null;
  return new SocketAddress({ address: text, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!bytes) return null;
  const prefix = slash < 0 ? bytes.length * 8 : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bytes.length * 8) return null;
  return { bytes, prefix };
}

function inCidr(bytes: IpBytes, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== cidr.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((bytes[full] as number) & mask) === ((cidr.bytes[full] as number) & mask);
}

function ranges(list: Array<[string, AddressClass]>): ClassRange[] {
  return list.map(([text, cls]) => ({ ...(parseCidr(text) as Cidr), cls }));
}

const IPV4_CLASSES = ranges([
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'cgnat'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  // Class E and the limited broadcast 255.255.255.255.
  ['240.0.0.0/4', 'reserved'],
]);

const IPV6_CLASSES = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fc00::/7', 'private'],
  // Deprecated site-local: routed like unique-local where it still exists.
  ['fec0::/10', 'private'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
  // RFC 8215 local-use NAT64: translates into the operator's own networks.
  ['64:ff9b:1::/48', 'private'],
]);

/** IPv6 prefixes that carry an IPv4 address, and where it sits. */
const IPV4_CARRIERS: Array<{ cidr: Cidr; offset: number }> = [
  { cidr: parseCidr('::ffff:0:0/96') as Cidr, offset: 12 }, // IPv4-mapped
  { cidr: parseCidr('::/96') as Cidr, offset: 12 }, // IPv4-compatible (deprecated)
  { cidr: parseCidr('64:ff9b::/96') as Cidr, offset: 12 }, // NAT64 well-known prefix
  { cidr: parseCidr('2002::/16') as Cidr, offset: 2 }, // 6to4
];

/** The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIpv4(bytes: IpBytes): IpBytes | null {
  if (bytes.length !== 16) return null;
  for (const { cidr, offset } of IPV4_CARRIERS) {
    if (!inCidr(bytes, cidr)) continue;
    const v4 = bytes.slice(offset, offset + 4);
    // :: and ::1 are IPv6's own unspecified and loopback, not IPv4-compatible addresses.
    if (offset === 12 && cidr.prefix === 96 && bytes[10] === 0 && v4[0] === 0 && v4[1] === 0 && v4[2] === 0 && (v4[3] as number) <= 1) return null;
    return v4;
  }
  return null;
}

/** The denied class of an address by its range alone (ignoring allow-list and own addresses); null when public. */
export function classifyAddress(text: string): AddressClass | null {
  const bytes = parseIp(text);
  if (!bytes) return 'invalid';
  return classifyBytes(bytes);
}

function classifyBytes(bytes: IpBytes): AddressClass | null {
  const table = bytes.length === 4 ? IPV4_CLASSES : IPV6_CLASSES;
  for (const range of table) if (inCidr(bytes, range)) return range.cls;
  const v4 = embeddedIpv4(bytes);
  return v4 ? classifyBytes(v4) : null;
}

function key(bytes: IpBytes): string {
  return Buffer.from(bytes).toString('hex');
}

/** IPv4-mapped and IPv4-compatible forms are the IPv4 address itself. */
function unwrapMapped(bytes: IpBytes): IpBytes {
  if (bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && ((bytes[10] === 0xff && bytes[11] === 0xff) || (bytes[10] === 0 && bytes[11] === 0))) {
    const v4 = embeddedIpv4(bytes);
    if (v4) return v4;
  }
  return bytes;
}

/**
 * The peer policy: deny loopback, unspecified, private, CGNAT, link-local, multicast,
 * reserved, this server's own addresses and every IPv4-carrying IPv6 form of these, unless
 * allow-listed. A relay address of this server stays reachable on relay ports, so two peers
 * both relayed through this server can still talk (relay to relay).
 */
export class PeerPolicy {
  private readonly allowed: Cidr[];
  private readonly server = new Set<string>();
  private readonly relay = new Set<string>();
  private readonly relayPorts: readonly [number, number];
  private readonly serverPorts: ReadonlySet<number>;

  constructor(options: PeerPolicyOptions = {}) {
    this.allowed = (options.allowedCidrs ?? []).map((text) => {
      const cidr = parseCidr(text);
      if (!cidr) throw new TypeError(`[PeerPolicy] invalid CIDR "${text}"`);
      return cidr;
    });
    for (const address of options.serverAddresses ?? []) {
      const bytes = parseIp(address);
      if (bytes) this.server.add(key(unwrapMapped(bytes)));
    }
    for (const address of options.relayAddresses ?? []) {
      const bytes = parseIp(address);
      if (!bytes) continue;
      this.relay.add(key(unwrapMapped(bytes)));
      this.server.add(key(unwrapMapped(bytes)));
    }
    this.relayPorts = options.relayPorts ?? [0, 65535];
    this.serverPorts = new Set(options.serverPorts ?? []);
  }

  /** Decides whether `address` (and, for ChannelBind and Send, `port`) may be relayed to. */
  check(address: string, port?: number): PeerVerdict {
    const raw = parseIp(address);
    // Port 0 cannot be sent to (and dgram would throw on it).
    if (!raw || port === 0) return { allowed: false, reason: 'invalid' };
    const bytes = unwrapMapped(raw);
    if (this.isAllowListed(raw) || (bytes !== raw && this.isAllowListed(bytes))) return { allowed: true, relayPortsOnly: false };
    const cls = classifyBytes(bytes);
    if (cls) return { allowed: false, reason: cls };
    const id = key(bytes);
    if (this.relay.has(id)) {
      if (port === undefined || this.isRelayPort(port)) return { allowed: true, relayPortsOnly: true };
      return { allowed: false, reason: 'server' };
    }
    if (this.server.has(id)) return { allowed: false, reason: 'server' };
    return { allowed: true, relayPortsOnly: false };
  }

  /** Whether `port` is in the relay range (for peers whose verdict said relayPortsOnly). */
  isRelayPort(port: number): boolean {
    return port >= this.relayPorts[0] && port <= this.relayPorts[1] && !this.serverPorts.has(port);
  }

  private isAllowListed(bytes: IpBytes): boolean {
    for (const cidr of this.allowed) if (inCidr(bytes, cidr)) return true;
    return false;
  }
}

/** Every address of this host's interfaces (the "server's own addresses" beyond config). */
export function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) out.push(info.address.split('%')[0] as string);
  }
  return out;
}

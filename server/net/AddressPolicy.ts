/**
 * Which IP addresses this server may reach on someone else's behalf: TURN peers
 * (turn/PeerPolicy.ts) and webhook receivers (server/webhooks/WebhookUrlPolicy.ts). Both use
 * this one table, so an address one refuses the other refuses too. Refused by default: every
 * special-purpose range that is not globally reachable (the IANA IPv4 and IPv6 Special-Purpose
 * Address Registries), all IPv6 outside 2000::/3, and every IPv6 form that carries a refused
 * IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4). An allow-list of CIDRs reopens
 * ranges for peers or receivers inside the operator's network.
 */
import { BlockList, isIP, SocketAddress } from 'node:net';

/** Why an address is refused. */
export type AddressClass =
  | 'invalid'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmark'
  | 'reserved';

export type AddressVerdict = { allowed: true } | { allowed: false; reason: AddressClass };

export interface AddressPolicyOptions {
  /** CIDRs allowed even when they fall in a refused class (TURN_ALLOWED_PEER_CIDRS, WEBHOOK_ALLOWED_CIDRS). */
  allowedCidrs?: readonly string[];
}

type RangeClass = Exclude<AddressClass, 'invalid'> | 'public';

/**
 * Ranges by class. Classes are checked in this order and the first that holds the address
 * wins, so the globally reachable exceptions come first and 'reserved' (which contains
 * broadcast and benchmark ranges) last.
 */
const RANGES: ReadonlyArray<readonly [RangeClass, readonly string[]]> = [
  // Anycast services inside reserved blocks (PCP, TURN, AMT, AS112, ORCHIDv2, drone ids).
  [
    'public',
    [
      '192.0.0.9/32',
      '192.0.0.10/32',
      '2001:1::1/128',
      '2001:1::2/128',
      '2001:1::3/128',
      '2001:3::/32',
      '2001:4:112::/48',
      '2001:20::/28',
      '2001:30::/28',
    ],
  ],
  // 0.0.0.0/8 is "this network": connecting to 0.0.0.0 reaches the local host.
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  // fec0::/10 is deprecated site-local; 64:ff9b:1::/48 is local-use NAT64 (RFC 8215), which
  // translates into the operator's own IPv4 networks.
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'fec0::/10', '64:ff9b:1::/48']],
  ['cgnat', ['100.64.0.0/10']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['broadcast', ['255.255.255.255/32']],
  ['documentation', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32', '3fff::/20']],
  ['benchmark', ['198.18.0.0/15', '2001:2::/48']],
  // IETF protocol assignments (192.0.0.0/24, 2001::/23 with Teredo at 2001::/32: it tunnels
  // to an obfuscated IPv4 address through third-party relays), the old 6to4 relay anycast,
  // and class E.
  ['reserved', ['192.0.0.0/24', '192.88.99.0/24', '240.0.0.0/4', '2001::/23']],
];

/** IPv6 global unicast; everything else in IPv6 not listed above is unallocated or special. */
const GLOBAL_UNICAST_V6 = blockList(['2000::/3']);

const CLASS_LISTS: ReadonlyArray<readonly [RangeClass, BlockList]> = RANGES.map(([cls, cidrs]) => [cls, blockList(cidrs)] as const);

/** IPv6 prefixes that carry an IPv4 address at a byte offset. IPv4-mapped is handled apart. */
const IPV4_CARRIERS: ReadonlyArray<{ prefix: BlockList; offset: number; name: 'compatible' | 'nat64' | '6to4' }> = [
  { prefix: blockList(['::/96']), offset: 12, name: 'compatible' },
  { prefix: blockList(['64:ff9b::/96']), offset: 12, name: 'nat64' },
  { prefix: blockList(['2002::/16']), offset: 2, name: '6to4' },
];

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) addCidr(list, cidr);
  return list;
}

/** Adds "address/prefix" (or a bare address) to `list`; throws TypeError when it is not a CIDR. */
function addCidr(list: BlockList, text: string): void {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (family === 0 || address.includes('%') || !/^\d{1,3}$/.test(prefixText) || prefix > bits)
    throw new TypeError(`[AddressPolicy] invalid CIDR "${text}"`);
  list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
}

/** Drops an IPv6 zone ("fe80::1%eth0"): the zone names an interface, not another address. */
function withoutZone(text: string): string {
  const percent = text.indexOf('%');
  return percent < 0 ? text : text.slice(0, percent);
}

/**
 * Parses an IPv4 or IPv6 literal (no brackets) into bytes: 4 for IPv4, 16 for IPv6; null when
 * invalid. IPv4-mapped (::ffff:a.b.c.d) stays 16 bytes.
 */
export function parseIp(text: string): Uint8Array | null {
  const family = isIP(text);
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  if (family !== 6) return null;
  let head = withoutZone(text);
  let tail4: number[] = [];
  const lastColon = head.lastIndexOf(':');
  if (head.includes('.', lastColon)) {
    tail4 = head
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = head.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (s: string | undefined): number[] =>
    s
      ? s
          .split(':')
          .filter((g) => g !== '')
          .map((g) => parseInt(g, 16))
      : [];
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
  return new SocketAddress({ address: withoutZone(text), family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/**
 * The address a socket would reach, in canonical form: an IPv4-mapped IPv6 address is its
 * IPv4 address. Null when invalid.
 */
export function hostIdentity(text: string): string | null {
  const canonical = canonicalIp(text);
  if (canonical === null) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
  return mapped ? (mapped[1] as string) : canonical;
}

/** The IPv4 address (dotted) an IPv6 address carries, and how; null when it carries none. */
export function embeddedIpv4(text: string): { ipv4: string; form: 'mapped' | 'compatible' | 'nat64' | '6to4' } | null {
  if (isIP(text) !== 6) return null;
  const identity = hostIdentity(text) as string;
  if (isIP(identity) === 4) return { ipv4: identity, form: 'mapped' };
  const bytes = parseIp(text) as Uint8Array;
  for (const { prefix, offset, name } of IPV4_CARRIERS) {
    if (!prefix.check(identity, 'ipv6')) continue;
    // :: and ::1 are IPv6's own unspecified and loopback, not IPv4-compatible addresses.
    if (name === 'compatible' && bytes[12] === 0 && bytes[13] === 0 && bytes[14] === 0 && (bytes[15] as number) <= 1) return null;
    return { ipv4: Array.from(bytes.subarray(offset, offset + 4)).join('.'), form: name };
  }
  return null;
}

function rangeClass(address: string, type: 'ipv4' | 'ipv6'): RangeClass | null {
  for (const [cls, list] of CLASS_LISTS) if (list.check(address, type)) return cls;
  return null;
}

/**
 * The refused class of an address by its range alone (no allow-list); null when it is
 * globally reachable. An IPv6 address carrying an IPv4 one gets the IPv4 address's class.
 */
export function classifyAddress(text: string): AddressClass | null {
  const family = isIP(text);
  if (family === 0) return 'invalid';
  const address = withoutZone(text);
  if (family === 4) {
    const cls = rangeClass(address, 'ipv4');
    return cls === 'public' ? null : cls;
  }
  const embedded = embeddedIpv4(address);
  if (embedded?.form === 'mapped') return classifyAddress(embedded.ipv4);
  const cls = rangeClass(address, 'ipv6');
  if (cls !== null) return cls === 'public' ? null : cls;
  if (embedded) {
    const inner = classifyAddress(embedded.ipv4);
    if (inner !== null) return inner;
    // NAT64 of a public IPv4 address is how IPv6-only hosts reach it.
    if (embedded.form === 'nat64') return null;
  }
  return GLOBAL_UNICAST_V6.check(address, 'ipv6') ? null : 'reserved';
}

/**
 * The address policy: refuse every class above unless the allow-list holds the address.
 * Consumers add their own rules on top (the TURN relay refuses this server's addresses).
 */
export class AddressPolicy {
  private readonly allowed = new BlockList();

  constructor(options: AddressPolicyOptions = {}) {
    for (const cidr of options.allowedCidrs ?? []) addCidr(this.allowed, cidr);
  }

  /** Whether the allow-list holds `address`; an IPv4-mapped address matches its IPv4 entry and back. */
  isAllowListed(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.allowed.check(withoutZone(address), family === 4 ? 'ipv4' : 'ipv6');
  }

  /** Decides whether this server may connect or relay to `address` (an IP literal). */
  check(address: string): AddressVerdict {
    const cls = classifyAddress(address);
    if (cls === null || (cls !== 'invalid' && this.isAllowListed(address))) return { allowed: true };
    return { allowed: false, reason: cls };
  }
}

/**
 * The one table of addresses and verdicts that the address policy, the TURN peer policy and
 * the webhook URL policy are all tested against, so they cannot disagree.
 */
import { BlockList } from 'node:net';
import type { AddressClass } from '../../server/net/AddressPolicy.js';

export interface AddressCase {
  address: string;
  /** The refusal class under the default policy; null when the address may be reached. */
  verdict: AddressClass | null;
  /** For refused addresses: an allow-list entry that reopens it. */
  cidr?: string;
}

const denied = (verdict: AddressClass, cidr: string, ...addresses: string[]): AddressCase[] =>
  addresses.map((address) => ({ address, verdict, cidr }));
const reachable = (...addresses: string[]): AddressCase[] => addresses.map((address) => ({ address, verdict: null }));

export const ADDRESS_TABLE: readonly AddressCase[] = [
  // IPv4 special-purpose ranges.
  ...denied('unspecified', '0.0.0.0/8', '0.0.0.0', '0.1.2.3'),
  ...denied('loopback', '127.0.0.0/8', '127.0.0.1', '127.255.0.9'),
  ...denied('private', '10.0.0.0/8', '10.0.0.1', '10.255.255.254'),
  ...denied('private', '172.16.0.0/12', '172.16.0.1', '172.31.255.254'),
  ...denied('private', '192.168.0.0/16', '192.168.1.1'),
  ...denied('cgnat', '100.64.0.0/10', '100.64.0.1', '100.127.255.254'),
  ...denied('link-local', '169.254.0.0/16', '169.254.169.254', '169.254.0.1'),
  ...denied('multicast', '224.0.0.0/4', '224.0.0.1', '239.255.255.250'),
  ...denied('broadcast', '255.255.255.255/32', '255.255.255.255'),
  ...denied('documentation', '192.0.2.0/24', '192.0.2.1'),
  ...denied('documentation', '198.51.100.0/24', '198.51.100.7'),
  ...denied('documentation', '203.0.113.0/24', '203.0.113.9'),
  ...denied('benchmark', '198.18.0.0/15', '198.18.0.1', '198.19.255.254'),
  ...denied('reserved', '192.0.0.0/24', '192.0.0.8', '192.0.0.170'),
  ...denied('reserved', '192.88.99.0/24', '192.88.99.1'),
  ...denied('reserved', '240.0.0.0/4', '240.0.0.1', '255.255.255.254'),
  // IPv6 special-purpose ranges.
  ...denied('unspecified', '::/128', '::', '0:0:0:0:0:0:0:0'),
  ...denied('loopback', '::1/128', '::1', '0:0:0:0:0:0:0:1'),
  ...denied('private', 'fc00::/7', 'fc00::1', 'fd12:3456:789a::1'),
  ...denied('private', 'fec0::/10', 'fec0::1'),
  ...denied('private', '64:ff9b:1::/48', '64:ff9b:1::a00:1', '64:ff9b:1:7f00:1::'),
  ...denied('link-local', 'fe80::/10', 'fe80::1', 'febf:ffff::1'),
  ...denied('multicast', 'ff00::/8', 'ff02::1', 'ff0e::fb'),
  ...denied('documentation', '2001:db8::/32', '2001:db8::1'),
  ...denied('documentation', '3fff::/20', '3fff::1'),
  ...denied('benchmark', '2001:2::/48', '2001:2::1'),
  ...denied('reserved', '2001::/32', '2001:0:4136:e378:8000:63bf:3fff:fdd2'), // Teredo
  ...denied('reserved', '2001:10::/28', '2001:10::1'), // ORCHID
  ...denied('reserved', '100::/64', '100::1'), // discard-only
  ...denied('reserved', '4000::/3', '4000::1', '5f00::1'),
  // IPv4-mapped: the IPv4 address itself, so the IPv4 allow-list entry reopens it.
  ...denied('loopback', '127.0.0.0/8', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:0001'),
  ...denied('unspecified', '0.0.0.0/8', '::ffff:0.0.0.0'),
  ...denied('private', '10.0.0.0/8', '::ffff:10.1.2.3'),
  ...denied('private', '172.16.0.0/12', '::ffff:172.16.9.9'),
  ...denied('private', '192.168.0.0/16', '::ffff:192.168.0.1'),
  ...denied('cgnat', '100.64.0.0/10', '::ffff:100.64.1.1'),
  ...denied('link-local', '169.254.0.0/16', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe'),
  ...denied('multicast', '224.0.0.0/4', '::ffff:224.0.0.251'),
  ...denied('broadcast', '255.255.255.255/32', '::ffff:255.255.255.255'),
  ...denied('documentation', '198.51.100.0/24', '::ffff:198.51.100.1'),
  // IPv4-compatible (deprecated): the embedded address's class, else reserved.
  ...denied('loopback', '::/96', '::127.0.0.1', '::7f00:1'),
  ...denied('link-local', '::/96', '::a9fe:a9fe'),
  ...denied('private', '::/96', '::10.0.0.1'),
  ...denied('reserved', '::/96', '::8.8.8.8'),
  // NAT64 well-known prefix: the embedded address's class.
  ...denied('loopback', '64:ff9b::/96', '64:ff9b::7f00:1', '64:ff9b::127.0.0.1'),
  ...denied('link-local', '64:ff9b::/96', '64:ff9b::a9fe:a9fe'),
  ...denied('private', '64:ff9b::/96', '64:ff9b::10.0.0.1', '64:ff9b::c0a8:101'),
  ...denied('documentation', '64:ff9b::/96', '64:ff9b::c000:201'),
  // 6to4: the embedded address's class.
  ...denied('loopback', '2002::/16', '2002:7f00:1::', '2002:7f00:1::1'),
  ...denied('private', '2002::/16', '2002:c0a8:101::1', '2002:a00:1::'),
  ...denied('link-local', '2002::/16', '2002:a9fe:a9fe::1'),
  // Reachable: public addresses, range edges, anycast services inside reserved blocks, and
  // IPv4-carrying forms of public IPv4 addresses.
  ...reachable(
    '8.8.8.8',
    '1.1.1.1',
    '100.63.255.255',
    '100.128.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '169.253.0.1',
    '223.255.255.255',
    '198.17.255.255',
    '198.20.0.0',
    '192.0.3.1',
    '192.0.0.9',
    '192.0.0.10',
  ),
  ...reachable(
    '2001:4860:4860::8888',
    '2606:4700::1111',
    '2001:200::1',
    '2001:3::1',
    '2001:1::1',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ),
];

/** Entries refused under the default policy, each with the allow-list entry that reopens it. */
export const DENIED_CASES = ADDRESS_TABLE.filter((c): c is AddressCase & { verdict: AddressClass; cidr: string } => c.verdict !== null);

/** The address as a URL host: IPv6 in brackets. */
export function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Whether `cidr` holds `address`, by node:net directly (an IPv4 range holds the IPv4-mapped forms too). */
export function inCidr(address: string, cidr: string): boolean {
  const [base, prefix] = cidr.split('/') as [string, string];
  const list = new BlockList();
  list.addSubnet(base, Number(prefix), base.includes(':') ? 'ipv6' : 'ipv4');
  return list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

/**
 * Where webhooks may be sent. Only http(s) URLs without embedded credentials; and, unless the
 * operator allows it, never to loopback, private, carrier-grade NAT, link-local, multicast,
 * unspecified or reserved addresses (IPv4-mapped IPv6 forms included), so a tenant cannot
 * make the server probe its own network (SSRF). The address check runs twice: on the URL when
 * it is configured (IP literals, localhost), and on every resolved address at connect time
 * (the lookup hook below), which also defeats DNS rebinding.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export interface WebhookUrlPolicyOptions {
  /** Allow every address (receivers inside the operator's network). Default false. */
  allowPrivateNetworks?: boolean;
  /** CIDRs exempt from the deny list, e.g. ["10.1.2.0/24"] for one internal receiver. */
  allowedCidrs?: readonly string[];
}

/** Ranges refused by default (RFC 6890 special-purpose and private). */
const DENIED_V4: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const DENIED_V6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
];

const MAX_URL_LENGTH = 2048;

function addCidr(list: BlockList, cidr: string): void {
  const slash = cidr.indexOf('/');
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const family = isIP(address);
  if (family === 0) throw new TypeError(`[WebhookUrlPolicy] "${cidr}" is not a CIDR`);
  const prefix = slash === -1 ? (family === 4 ? 32 : 128) : Number(cidr.slice(slash + 1));
  list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
}

export class WebhookUrlPolicy {
  private readonly denied = new BlockList();
  private readonly allowed = new BlockList();
  private readonly allowAll: boolean;

  constructor(options: WebhookUrlPolicyOptions = {}) {
    this.allowAll = options.allowPrivateNetworks ?? false;
    for (const [address, prefix] of DENIED_V4) this.denied.addSubnet(address, prefix, 'ipv4');
    for (const [address, prefix] of DENIED_V6) this.denied.addSubnet(address, prefix, 'ipv6');
    for (const cidr of options.allowedCidrs ?? []) addCidr(this.allowed, cidr);
  }

  /** True when webhooks may connect to this IP address. */
  isAddressAllowed(address: string): boolean {
    if (this.allowAll) return true;
    const family = isIP(address);
    if (family === 0) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    // BlockList matches IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) against IPv4 rules.
    return this.allowed.check(address, type) || !this.denied.check(address, type);
  }

  /** Checks a URL when a tenant configures it; returns the problem, or null when acceptable. */
  problem(url: string): string | null {
    if (url.length > MAX_URL_LENGTH) return `webhook URL must be at most ${MAX_URL_LENGTH} characters`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'webhook URL is not a valid URL';
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'webhook URL must use http or https';
    if (parsed.username || parsed.password) return 'webhook URL must not carry credentials';
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (!host) return 'webhook URL needs a host';
    if (this.allowAll) return null;
    if (isIP(host) !== 0 && !this.isAddressAllowed(host)) return 'webhook URL points to a private, loopback or reserved address';
    if (host === 'localhost' || host.endsWith('.localhost')) return 'webhook URL points to localhost';
    return null;
  }

  /** A dns lookup for http.request that refuses hosts resolving to a denied address. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, options as LookupOptions, (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const refused = addresses.find((a) => !this.isAddressAllowed(a));
      if (refused !== undefined) {
        callback(Object.assign(new Error(`webhook host ${hostname} resolves to a denied address`), { code: 'EADDRNOTALLOWED' }), '', 0);
        return;
      }
      (callback as (error: null, address: string | LookupAddress[], family?: number) => void)(null, address, family);
    });
  };
}

/**
 * Where webhooks may be sent. Only http(s) URLs without embedded credentials; and, unless the
 * operator allows it, never to an address the shared address policy refuses (loopback,
 * private, link-local, NAT64 and 6to4 forms of these, ...: server/net/AddressPolicy.ts), so a
 * tenant cannot make the server probe its own network (SSRF). The check runs twice: on the URL
 * when it is configured (IP literals in every notation, localhost names), and on every
 * resolved address at connect time (the lookup hook below, whose answer is the address the
 * socket connects to), which also defeats DNS rebinding.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { AddressPolicy } from '../net/AddressPolicy.js';

export interface WebhookUrlPolicyOptions {
  /** Allow every address (receivers inside the operator's network). Default false. */
  allowPrivateNetworks?: boolean;
  /** CIDRs exempt from the deny list, e.g. ["10.1.2.0/24"] for one internal receiver. */
  allowedCidrs?: readonly string[];
}

const MAX_URL_LENGTH = 2048;

/** RFC 6761: localhost and every name under it are loopback, whatever DNS says. */
function isLocalhostName(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

export class WebhookUrlPolicy {
  private readonly addresses: AddressPolicy;
  private readonly allowAll: boolean;

  constructor(options: WebhookUrlPolicyOptions = {}) {
    this.allowAll = options.allowPrivateNetworks ?? false;
    this.addresses = new AddressPolicy({ allowedCidrs: options.allowedCidrs ?? [] });
  }

  /** True when webhooks may connect to this IP address. */
  isAddressAllowed(address: string): boolean {
    if (isIP(address) === 0) return false;
    return this.allowAll || this.addresses.check(address).allowed;
  }

  /** Checks a URL when a tenant configures it (and before each delivery); returns the problem, or null when acceptable. */
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
    // The URL parser already turned numeric IPv4 forms (2130706433, 0x7f.1, 017700000001)
    // into dotted quads and IPv6 into its short form; brackets and trailing dots remain.
    const host = parsed.hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '');
    if (!host) return 'webhook URL needs a host';
    if (this.allowAll) return null;
    if (isIP(host) !== 0) {
      const verdict = this.addresses.check(host);
      return verdict.allowed ? null : `webhook URL points to a denied address (${verdict.reason})`;
    }
    if (isLocalhostName(host)) return 'webhook URL points to a denied address (loopback)';
    return null;
  }

  /** A dns lookup for http.request that refuses hosts resolving to a denied address. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(
      hostname,
      options as LookupOptions,
      (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
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
      },
    );
  };
}

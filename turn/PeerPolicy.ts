/**
 * Which peers a TURN allocation may relay to. Without this, a TURN server is an open proxy
 * into the network it runs in (cloud metadata at 169.254.169.254, databases on 10/8, the
 * signaling server on localhost). Checked on CreatePermission, ChannelBind and Send. The
 * address classes are server/net/AddressPolicy.ts, shared with the webhook URL policy.
 */
import os from 'node:os';
import { AddressPolicy, type AddressClass, hostIdentity } from '../server/net/AddressPolicy.js';

export { canonicalIp, classifyAddress, parseIp, type AddressClass } from '../server/net/AddressPolicy.js';

export type PeerVerdict =
  | {
      allowed: true;
      /** The peer is one of this server's relay addresses: only relay ports may be reached. */
      relayPortsOnly: boolean;
    }
  | { allowed: false; reason: AddressClass | 'server' };

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

/**
 * The peer policy: the shared address policy (loopback, private, link-local, NAT64 and 6to4
 * forms of these, ... refused unless allow-listed), plus this server's own addresses. A relay
 * address of this server stays reachable on relay ports, so two peers both relayed through
 * this server can still talk (relay to relay).
 */
export class PeerPolicy {
  private readonly addresses: AddressPolicy;
  private readonly server = new Set<string>();
  private readonly relay = new Set<string>();
  private readonly relayPorts: readonly [number, number];
  private readonly serverPorts: ReadonlySet<number>;

  constructor(options: PeerPolicyOptions = {}) {
    this.addresses = new AddressPolicy({ allowedCidrs: options.allowedCidrs ?? [] });
    for (const address of options.serverAddresses ?? []) {
      const id = hostIdentity(address);
      if (id) this.server.add(id);
    }
    for (const address of options.relayAddresses ?? []) {
      const id = hostIdentity(address);
      if (!id) continue;
      this.relay.add(id);
      this.server.add(id);
    }
    this.relayPorts = options.relayPorts ?? [0, 65535];
    this.serverPorts = new Set(options.serverPorts ?? []);
  }

  /** Decides whether `address` (and, for ChannelBind and Send, `port`) may be relayed to. */
  check(address: string, port?: number): PeerVerdict {
    const id = hostIdentity(address);
    // Port 0 cannot be sent to (and dgram would throw on it).
    if (id === null || port === 0) return { allowed: false, reason: 'invalid' };
    if (this.addresses.isAllowListed(address)) return { allowed: true, relayPortsOnly: false };
    const verdict = this.addresses.check(address);
    if (!verdict.allowed) return verdict;
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
}

/** Every address of this host's interfaces (the "server's own addresses" beyond config). */
export function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) out.push(info.address.split('%')[0] as string);
  }
  return out;
}

/**
 * One TURN allocation as the relay's fast path sees it: the client's 5-tuple, its relay
 * socket, and the permissions and channel bindings that decide what is relayed. node-turn's
 * own Allocation object still exists (it answers the protocol); this record holds what the
 * per-packet code needs in O(1) Map lookups.
 */
import type { UdpEndpoint } from './udpEndpoint.js';
import type { StreamConnection } from './StreamConnection.js';

/** RFC 5766 §8: a permission lasts 300 s unless refreshed. */
export const PERMISSION_LIFETIME_MS = 300_000;
/** RFC 5766 §11: a channel binding lasts 600 s unless refreshed. */
export const CHANNEL_LIFETIME_MS = 600_000;
/** Peers one allocation may hold permissions for; bounds the memory one client can pin. */
export const MAX_PERMISSIONS = 1024;

export interface Permission {
  expiresAt: number;
  /** The peer is this server's own relay address: only relay ports may be reached. */
  relayPortsOnly: boolean;
  /** The peer is one of this server's relay addresses: delivered in-process when the port is ours. */
  selfRelay: boolean;
  /** XOR-PEER-ADDRESS address bytes for Data indications (IPv4: XORed; IPv6: raw, XORed per message). */
  addressBytes: Buffer;
  /** Channels bound to this peer address, by peer port. */
  channelsByPort: Map<number, Channel>;
}

export interface Channel {
  number: number;
  address: string;
  port: number;
  expiresAt: number;
  permission: Permission;
}

export interface RelayAllocationOptions {
  /** The relay's key for the client: "ip:port" over UDP, the connection's key over TCP and TLS. */
  clientKey: string;
  clientAddress: string;
  clientPort: number;
  /** The TCP or TLS connection the allocation was made over (and is bound to); undefined over UDP. */
  stream: StreamConnection | undefined;
  userId: string;
  username: string;
  transactionId: string;
  relaySocket: UdpEndpoint;
  relayPort: number;
  /** The relayed address as told to the client (TURN_EXTERNAL_IP or the relay IP). */
  advertisedAddress: string;
  family: 4 | 6;
  nodeAllocation: NodeTurn.Allocation;
  /** RESERVATION-TOKEN of the port reserved next to this one (EVEN-PORT with the R bit). */
  reservationToken?: Buffer;
}

export class RelayAllocation {
  readonly clientKey: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** The connection data goes back on (TCP or TLS); undefined over UDP. */
  readonly stream: StreamConnection | undefined;
  readonly userId: string;
  readonly username: string;
  /** The Allocate transaction, to answer its retransmissions. */
  readonly transactionId: string;
  readonly relaySocket: UdpEndpoint;
  readonly relayPort: number;
  readonly advertisedAddress: string;
  readonly family: 4 | 6;
  readonly nodeAllocation: NodeTurn.Allocation;
  /** RESERVATION-TOKEN of the port reserved next to this one, repeated in answers to retransmissions. */
  readonly reservationToken: Buffer | undefined;
  /** By canonical peer IP (what Node reports in rinfo.address). */
  readonly permissions = new Map<string, Permission>();
  readonly channels = new Map<number, Channel>();
  lifetimeS = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(options: RelayAllocationOptions) {
    this.clientKey = options.clientKey;
    this.clientAddress = options.clientAddress;
    this.clientPort = options.clientPort;
    this.stream = options.stream;
    this.userId = options.userId;
    this.username = options.username;
    this.transactionId = options.transactionId;
    this.relaySocket = options.relaySocket;
    this.relayPort = options.relayPort;
    this.advertisedAddress = options.advertisedAddress;
    this.family = options.family;
    this.nodeAllocation = options.nodeAllocation;
    this.reservationToken = options.reservationToken;
  }

  /** (Re)arms the expiry timer: `onExpire` runs when the lifetime passes without a refresh. */
  setLifetime(lifetimeS: number, onExpire: () => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.lifetimeS = lifetimeS;
    this.timer = setTimeout(onExpire, lifetimeS * 1000);
  }

  /** Installs or refreshes a permission for `address`; null when the allocation holds too many. */
  permit(address: string, addressBytes: Buffer, relayPortsOnly: boolean, selfRelay: boolean, now: number): Permission | null {
    let permission = this.permissions.get(address);
    if (permission) {
      permission.expiresAt = now + PERMISSION_LIFETIME_MS;
      permission.relayPortsOnly = relayPortsOnly;
      return permission;
    }
    if (this.permissions.size >= MAX_PERMISSIONS) this.pruneExpired(now);
    if (this.permissions.size >= MAX_PERMISSIONS) return null;
    permission = { expiresAt: now + PERMISSION_LIFETIME_MS, relayPortsOnly, selfRelay, addressBytes, channelsByPort: new Map() };
    this.permissions.set(address, permission);
    return permission;
  }

  /**
   * Binds (or refreshes) `number` to address:port; false when either side is already bound
   * to something else (RFC 5766 §11.2: 400).
   */
  bindChannel(number: number, address: string, port: number, permission: Permission, now: number): boolean {
    const existing = this.channels.get(number);
    if (existing && (existing.address !== address || existing.port !== port)) return false;
    const other = permission.channelsByPort.get(port);
    if (other && other.number !== number) return false;
    if (existing) {
      existing.expiresAt = now + CHANNEL_LIFETIME_MS;
      return true;
    }
    const channel: Channel = { number, address, port, expiresAt: now + CHANNEL_LIFETIME_MS, permission };
    this.channels.set(number, channel);
    permission.channelsByPort.set(port, channel);
    return true;
  }

  /** Forgets expired permissions and channels. */
  private pruneExpired(now: number): void {
    for (const [number, channel] of this.channels) {
      if (channel.expiresAt >= now) continue;
      this.channels.delete(number);
      channel.permission.channelsByPort.delete(channel.port);
    }
    for (const [address, permission] of this.permissions) {
      if (permission.expiresAt < now && permission.channelsByPort.size === 0) this.permissions.delete(address);
    }
  }

  /** Stops the timer and closes the relay socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    void this.relaySocket.close();
  }
}

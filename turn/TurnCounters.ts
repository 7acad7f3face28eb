/**
 * TURN metrics in a SharedArrayBuffer: the relay worker writes them on its own thread, the
 * signaling thread reads them synchronously (stats(), /metrics) without a message round
 * trip and without the worker posting anything per packet. Only the worker writes; cells are
 * aligned float64s, so a reader sees each value whole.
 */

/** Why the relay said no (or dropped a packet); the keys of stats().refusals. */
export const REFUSAL_REASONS = [
  /** Malformed username, or MESSAGE-INTEGRITY not made with the TURN_SECRET-derived password. */
  'credentials_invalid',
  /** The username's expiry is in the past. */
  'credentials_expired',
  /** CreatePermission, ChannelBind or Send towards a peer the policy denies (403). */
  'peer_forbidden',
  /** Send or ChannelData from the client without a permission or channel for that peer. */
  'no_permission',
  /** A datagram from a peer the client has not permitted (dropped at the relay port). */
  'peer_not_permitted',
  /** TURN_MAX_ALLOCATIONS_PER_USER reached (486). */
  'quota_user',
  /** TURN_MAX_ALLOCATIONS reached (486). */
  'quota_total',
  /** No free relay port in TURN_MIN_PORT..TURN_MAX_PORT (508). */
  'capacity',
  /** A TCP or TLS connection closed for bytes that are neither STUN nor ChannelData, or a message over the size limit. */
  'stream_malformed',
  /** A TCP or TLS connection without an allocation closed after TURN_TCP_IDLE_TIMEOUT_MS without a complete message (or TLS handshake). */
  'stream_idle',
  /** A TCP or TLS connection refused: TURN_MAX_CONNECTIONS_PER_IP, TURN_TLS_HANDSHAKES_PER_MIN, or TURN_MAX_ALLOCATIONS connections in all, none of them without an allocation. */
  'stream_limit',
  /** A TCP or TLS connection without an allocation (or in its TLS handshake) closed, the oldest such, to admit a new one when every slot was taken. */
  'stream_evicted',
  /** A TLS handshake failed (not TLS, no common version or cipher, or the client refused the certificate). */
  'tls_handshake',
  /** A relayed datagram dropped because its socket's send buffer was full (native UDP I/O drops it as a full link would; dgram queues it). */
  'send_dropped',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A snapshot of the relay's counters. */
export interface TurnStats {
  /** Allocations alive now. */
  activeAllocations: number;
  /** Payload bytes relayed, both directions. */
  relayedBytes: number;
  /** Datagrams relayed, both directions. */
  relayedPackets: number;
  /** Refusals since start, by reason. */
  refusals: Record<RefusalReason, number>;
  /** Client connections open now, by transport (UDP has none). */
  connections: Record<'tcp' | 'tls', number>;
}

const ACTIVE = 0;
const BYTES = 1;
const PACKETS = 2;
const TCP_CONNECTIONS = 3;
const TLS_CONNECTIONS = 4;
const FIRST_REFUSAL = 5;
const REFUSAL_INDEX = new Map<RefusalReason, number>(REFUSAL_REASONS.map((reason, i) => [reason, FIRST_REFUSAL + i]));

export class TurnCounters {
  /** Bytes of SharedArrayBuffer a TurnCounters needs. */
  static readonly BYTES = (FIRST_REFUSAL + REFUSAL_REASONS.length) * Float64Array.BYTES_PER_ELEMENT;

  private readonly cells: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(TurnCounters.BYTES)) {
    this.cells = new Float64Array(buffer);
  }

  /** Counts one relayed datagram carrying `bytes` of payload. */
  relayed(bytes: number): void {
    const c = this.cells;
    c[BYTES] = (c[BYTES] as number) + bytes;
    c[PACKETS] = (c[PACKETS] as number) + 1;
  }

  refused(reason: RefusalReason): void {
    const index = REFUSAL_INDEX.get(reason) as number;
    this.cells[index] = (this.cells[index] as number) + 1;
  }

  setActiveAllocations(count: number): void {
    this.cells[ACTIVE] = count;
  }

  /** Sets the number of open client connections over `transport`. */
  setConnections(transport: 'tcp' | 'tls', count: number): void {
    this.cells[transport === 'tcp' ? TCP_CONNECTIONS : TLS_CONNECTIONS] = count;
  }

  snapshot(): TurnStats {
    const c = this.cells;
    const refusals = {} as Record<RefusalReason, number>;
    for (const [reason, index] of REFUSAL_INDEX) refusals[reason] = c[index] as number;
    return {
      activeAllocations: c[ACTIVE] as number,
      relayedBytes: c[BYTES] as number,
      relayedPackets: c[PACKETS] as number,
      refusals,
      connections: { tcp: c[TCP_CONNECTIONS] as number, tls: c[TLS_CONNECTIONS] as number },
    };
  }
}

/** The relay's stats over every relay worker: each worker counts in its own TurnCounters. */
export function sumTurnStats(parts: readonly TurnStats[]): TurnStats {
  const total = new TurnCounters().snapshot();
  for (const part of parts) {
    total.activeAllocations += part.activeAllocations;
    total.relayedBytes += part.relayedBytes;
    total.relayedPackets += part.relayedPackets;
    for (const reason of REFUSAL_REASONS) total.refusals[reason] += part.refusals[reason];
    total.connections.tcp += part.connections.tcp;
    total.connections.tls += part.connections.tls;
  }
  return total;
}

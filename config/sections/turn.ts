/** The bundled TURN server, and the ICE servers handed to clients. */
import os from 'node:os';
import { z } from 'zod';
import { bool, cidrList, int, ipAddress, isIpAddress, list, port, secret, setting } from '../setting.js';

/** A DNS name or an IP address, as a URL host (no scheme, port or path). */
const hostName = z
  .string()
  .refine(
    (value) =>
      /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(value) ||
      isIpAddress(value),
    'must be a host name (turn.example.com) or an IP address',
  );

export const turnSettings = {
  /** Start the bundled TURN server. */
  enabled: setting('TURN_ENABLED', bool.default(true)),
  /** Bundled TURN port: UDP, and TCP too unless TURN_TCP is false (one number for both, as coturn). */
  port: setting('TURN_PORT', port.default(3478)),
  /**
   * Relay worker threads; one per core by default. Worker i listens on TURN_PORT + i (UDP, and
   * TCP with TURN_TCP); a user's ice_servers name one of them (turnPortProblems).
   */
  workers: setting(
    'TURN_WORKERS',
    int(1, 256).default(() => Math.max(1, os.availableParallelism())),
  ),
  /**
   * The UDP I/O of the relay workers: `native` (recvmmsg batches and direct sends, the addon
   * `npm run build` compiles with gcc into dist/native/), `dgram` (Node's sockets), or `auto`:
   * native where the addon loads, dgram otherwise (the boot log says which, and why).
   */
  udpIo: setting('TURN_UDP_IO', z.enum(['auto', 'native', 'dgram']).default('auto')),
  /** TURN over TCP on TURN_PORT (RFC 5766 framing; the relayed side stays UDP). */
  tcp: setting('TURN_TCP', bool.default(true)),
  /** TURN over TLS port, used when TURN_TLS_CERT and TURN_TLS_KEY are set. */
  tlsPort: setting('TURN_TLS_PORT', port.default(5349)),
  /** PEM certificate chain file of the TLS port (read at boot, with TURN_TLS_KEY; both or neither, turnTlsProblems). */
  tlsCert: setting('TURN_TLS_CERT', z.string().min(1).optional()),
  /** PEM private key file of the TLS port. */
  tlsKey: setting('TURN_TLS_KEY', z.string().min(1).optional()),
  /** Host name put in turns: URLs, the name the certificate is for; the TURN address when unset. */
  tlsHost: setting('TURN_TLS_HOST', hostName.optional()),
  /** Open TCP and TLS connections per client IP over every relay worker, per /64 for IPv6 (each worker's total is capped at TURN_MAX_ALLOCATIONS). */
  maxConnectionsPerIp: setting('TURN_MAX_CONNECTIONS_PER_IP', int(1, 1_000_000).default(64)),
  /** TLS connections per client IP (per /64 for IPv6) per minute, refused before their handshake's CPU is spent. */
  tlsHandshakesPerIpPerMinute: setting('TURN_TLS_HANDSHAKES_PER_MIN', int(1, 1_000_000).default(600)),
  /** A TCP or TLS connection holding no allocation is closed after this long without a complete message (or TLS handshake). */
  tcpIdleTimeoutMs: setting('TURN_TCP_IDLE_TIMEOUT_MS', int(100, 3_600_000).default(30_000)),
  listenIp: setting('TURN_LISTEN_IP', ipAddress.default('0.0.0.0')),
  /** Address relayed allocations bind to; when unset, resolved by mediaAddresses(). */
  relayIp: setting('TURN_RELAY_IP', ipAddress.optional()),
  /** Address advertised to clients (behind NAT). */
  externalIp: setting('TURN_EXTERNAL_IP', ipAddress.optional()),
  realm: setting('TURN_REALM', z.string().min(1).default('switchboard')),
  /** Shared secret of the TURN REST credentials (coturn's static-auth-secret); generated per boot when unset (bootstrapSecrets). */
  secret: setting('TURN_SECRET', secret.optional()),
  /** Lifetime of the TURN credentials handed out. */
  credentialTtlS: setting('TURN_CREDENTIAL_TTL_S', int(60, 7 * 24 * 3600).default(6 * 3600)),
  /** CIDRs exempt from the peer deny-list. */
  allowedPeerCidrs: setting('TURN_ALLOWED_PEER_CIDRS', cidrList),
  /** Relay port range, minPort <= maxPort (portRangeProblems). */
  minPort: setting('TURN_MIN_PORT', port.default(49152)),
  maxPort: setting('TURN_MAX_PORT', port.default(65535)),
  maxAllocationsPerUser: setting('TURN_MAX_ALLOCATIONS_PER_USER', int(1, 10_000).default(10)),
  maxAllocations: setting('TURN_MAX_ALLOCATIONS', int(1, 1_000_000).default(1000)),
  /** Cap on an allocation's lifetime. */
  maxAllocationLifetimeS: setting('TURN_MAX_ALLOCATION_LIFETIME_S', int(60, 24 * 3600).default(3600)),
  /** Extra TURN URLs (e.g. an external coturn sharing TURN_SECRET) handed to clients. */
  externalUrls: setting(
    'TURN_EXTERNAL_URLS',
    list.default(() => []),
  ),
  /** STUN URLs handed to clients. */
  stunUrls: setting(
    'STUN_URLS',
    list.default(() => []),
  ),
};

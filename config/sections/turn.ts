/** The bundled TURN server, and the ICE servers handed to clients. */
import { z } from 'zod';
import { bool, cidrList, int, ipAddress, list, port, secret, setting } from '../setting.js';

export const turnSettings = {
  /** Start the bundled TURN server. */
  enabled: setting('TURN_ENABLED', bool.default(true)),
  /** Bundled TURN UDP port. */
  port: setting('TURN_PORT', port.default(3478)),
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

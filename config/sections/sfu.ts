/** The mediasoup SFU that rooms above MESH_THRESHOLD use. */
import os from 'node:os';
import { z } from 'zod';
import { bool, int, ipAddress, port, setting } from '../setting.js';

export const sfuSettings = {
  /** Run the mediasoup SFU. */
  enabled: setting('SFU_ENABLED', bool.default(true)),
  /** mediasoup workers; one per core by default. */
  workers: setting(
    'SFU_WORKERS',
    int(1, 256).default(() => Math.max(1, os.availableParallelism())),
  ),
  /** Address the SFU's WebRTC transports listen on. */
  listenIp: setting('SFU_LISTEN_IP', ipAddress.default('0.0.0.0')),
  /** Address given to browsers in the SFU's ICE candidates; when unset, resolved by mediaAddresses() (and may stay unset). */
  announcedIp: setting('SFU_ANNOUNCED_IP', z.string().min(1).optional()),
  /**
   * Single-port media: worker i's WebRtcServer carries every transport of the worker on UDP and
   * TCP port SFU_PORT + i (sfuPortProblems). 0 = no WebRtcServer: each transport takes its own
   * UDP and TCP port from SFU_MIN_PORT..SFU_MAX_PORT.
   */
  port: setting('SFU_PORT', port.default(7882)),
  /** RTP port range of range mode (SFU_PORT=0), minPort <= maxPort (portRangeProblems). */
  minPort: setting('SFU_MIN_PORT', port.default(40000)),
  maxPort: setting('SFU_MAX_PORT', port.default(49999)),
  /** Per send transport, bits/s. */
  maxIncomingBitrate: setting('SFU_MAX_INCOMING_BITRATE', int(100_000, 100_000_000).default(1_500_000)),
  /** Per transport: data waiting for a slow receiver; beyond it mediasoup drops messages. */
  sctpSendBufferBytes: setting('SFU_SCTP_SEND_BUFFER_BYTES', int(262_144, 268_435_456).default(8_388_608)),
  maxProducersPerPeer: setting('SFU_MAX_PRODUCERS_PER_PEER', int(1, 64).default(6)),
  maxTransportsPerPeer: setting('SFU_MAX_TRANSPORTS_PER_PEER', int(2, 16).default(4)),
  /** Consumers (media and data) one peer may hold. */
  maxConsumersPerPeer: setting('SFU_MAX_CONSUMERS_PER_PEER', int(1, 10_000).default(500)),
  /** A transport whose ICE/DTLS has not connected this long after the client's connect is reported (log, client error). */
  transportConnectTimeoutMs: setting('SFU_TRANSPORT_CONNECT_TIMEOUT_MS', int(1000, 120_000).default(15_000)),
  /** SFU transports one tenant may hold on this node, so no tenant can take every port; resolved by transportsPerTenant() when unset. */
  maxTransportsPerTenant: setting('SFU_MAX_TRANSPORTS_PER_TENANT', int(1, 1_000_000).optional()),
  /** How long clients keep the old topology while migrating at most (the SDK's migrationTimeoutMs); a demoted room's router stays this long plus 5 s. */
  migrationTimeoutMs: setting('SFU_MIGRATION_TIMEOUT_MS', int(1000, 300_000).default(30_000)),
  /**
   * The least time between two key frame requests to one video layer of a producer (mediasoup's
   * keyFrameRequestDelay): consumers resuming, switching layers or losing packets all ask for
   * key frames, and a subscriber toggling a tile's visibility must not make the publisher encode
   * nothing but key frames. Requests in between wait for the next slot (0: no limit).
   */
  keyFrameRequestDelayMs: setting('SFU_KEYFRAME_REQUEST_DELAY_MS', int(0, 10_000).default(1000)),
};

/** SFU_MAX_TRANSPORTS_PER_TENANT, else half the port range: one tenant alone can never exhaust it. */
export function transportsPerTenant(sfu: { maxTransportsPerTenant: number | undefined; minPort: number; maxPort: number }): number {
  return sfu.maxTransportsPerTenant ?? Math.max(1, Math.floor((sfu.maxPort - sfu.minPort + 1) / 2));
}

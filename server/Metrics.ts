import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TurnStats } from '../turn/TurnCounters.js';
import type { RoomManager } from './rooms/RoomManager.js';

/**
 * Prometheus metrics of one server instance, on its own registry (several servers can run in
 * one process, as in tests). Services get this object and count what they do; gauges that
 * mirror state are read at scrape time from cheap counters, never by scanning rooms.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly socketsConnected = new Gauge({
    name: 'switchboard_sockets_connected',
    help: 'Connected Socket.IO clients',
    registers: [this.registry],
  });
  readonly handshakes = new Counter({
    name: 'switchboard_handshakes_total',
    help: 'Socket.IO handshakes by result (ok or the error code)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'switchboard_events_total',
    help: 'Client events handled, by event and result (ok or the error code)',
    labelNames: ['event', 'result'] as const,
    registers: [this.registry],
  });
  readonly signalsRelayed = new Counter({
    name: 'switchboard_signals_relayed_total',
    help: 'SDP and ICE messages relayed between peers',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'switchboard_rate_limited_total',
    help: 'Refusals by rate limiters',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });
  readonly roomsActive = new Gauge({
    name: 'switchboard_rooms_active',
    help: 'Live rooms by mode',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly peersActive = new Gauge({ name: 'switchboard_peers_active', help: 'Joined peers', registers: [this.registry] });
  readonly roomsStarted = new Counter({ name: 'switchboard_rooms_started_total', help: 'Rooms started', registers: [this.registry] });
  readonly joinDuration = new Histogram({
    name: 'switchboard_join_duration_seconds',
    help: 'Time to handle a join (store lookups included)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly sfuRequestDuration = new Histogram({
    name: 'switchboard_sfu_request_duration_seconds',
    help: 'Time from an sfu:* request to its answer (a mediasoup worker round trip or more), by event',
    labelNames: ['event'] as const,
    buckets: [0.005, 0.025, 0.1, 0.5, 2, 5, 10, 30],
    registers: [this.registry],
  });

  readonly migrations = new Counter({
    name: 'switchboard_migrations_total',
    help: 'Topology changes, by target mode and reason',
    labelNames: ['to', 'reason'] as const,
    registers: [this.registry],
  });
  readonly sfuDataDropped = new Counter({
    name: 'switchboard_sfu_data_dropped_total',
    help: "Data messages the SFU dropped because a receiver's SCTP send buffer was full (the SDK asks the sender again)",
    registers: [this.registry],
  });
  readonly sfuRebuilds = new Counter({
    name: 'switchboard_sfu_rebuilds_total',
    help: 'SFU routers rebuilt after a worker died',
    registers: [this.registry],
  });
  readonly sfuTransportFailures = new Counter({
    name: 'switchboard_sfu_transport_failures_total',
    help: 'SFU transports whose ICE/DTLS did not connect in time after the client connected them',
    registers: [this.registry],
  });
  readonly migrationDuration = new Histogram({
    name: 'switchboard_migration_duration_seconds',
    help: 'Client-measured time from mode_changed to the old topology closed',
    labelNames: ['to'] as const,
    buckets: [0.25, 0.5, 1, 2, 4, 8, 16, 32],
    registers: [this.registry],
  });
  readonly migrationMediaGap = new Histogram({
    name: 'switchboard_migration_media_gap_seconds',
    help: 'Client-measured largest gap in inbound video during a migration',
    labelNames: ['to'] as const,
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
    registers: [this.registry],
  });
  readonly clientRtt = new Histogram({
    name: 'switchboard_client_rtt_seconds',
    help: 'Round-trip time of client links, as reported by clients',
    labelNames: ['candidate_type'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
    registers: [this.registry],
  });
  readonly clientPacketLoss = new Histogram({
    name: 'switchboard_client_packet_loss_ratio',
    help: 'Inbound packet loss of client links, as reported by clients',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
  }

  /** Keeps the room and peer gauges in step with the RoomManager's events. */
  observeRooms(rooms: RoomManager): void {
    rooms.on('room_started', (room) => {
      this.roomsStarted.inc();
      this.roomsActive.inc({ mode: room.mode });
    });
    rooms.on('room_finished', (room) => this.roomsActive.dec({ mode: room.mode }));
    rooms.on('peer_joined', () => this.peersActive.inc());
    rooms.on('peer_left', () => this.peersActive.dec());
  }

  /** Exposes the bundled TURN server's counters (read at scrape time from shared memory). */
  observeTurn(stats: () => TurnStats): void {
    const registers = [this.registry];
    new Gauge({
      name: 'switchboard_turn_allocations_active',
      help: 'Active TURN allocations',
      registers,
      collect() {
        this.set(stats().activeAllocations);
      },
    });
    new Gauge({
      name: 'switchboard_turn_connections',
      help: 'TURN client connections open over TCP and TLS, by transport',
      labelNames: ['transport'] as const,
      registers,
      collect() {
        const { connections } = stats();
        this.set({ transport: 'tcp' }, connections.tcp);
        this.set({ transport: 'tls' }, connections.tls);
      },
    });
    new Counter({
      name: 'switchboard_turn_relayed_bytes_total',
      help: 'Payload bytes relayed by the bundled TURN server',
      registers,
      collect() {
        this.reset();
        this.inc(stats().relayedBytes);
      },
    });
    new Counter({
      name: 'switchboard_turn_relayed_packets_total',
      help: 'Datagrams relayed by the bundled TURN server',
      registers,
      collect() {
        this.reset();
        this.inc(stats().relayedPackets);
      },
    });
    new Counter({
      name: 'switchboard_turn_refusals_total',
      help: 'TURN requests or packets refused, by reason',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [reason, count] of Object.entries(stats().refusals)) this.inc({ reason }, count);
      },
    });
  }

  /** Exposes how many of this node's room leases are uncertain (cluster): read at scrape time. */
  observeLeases(uncertain: () => number): void {
    new Gauge({
      name: 'switchboard_cluster_leases_uncertain',
      help: 'Room leases this node holds whose TTL passed without a renewal answer (Redis unreachable): another node may own the room',
      registers: [this.registry],
      collect() {
        this.set(uncertain());
      },
    });
  }

  /** Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Several nodes on one Redis (REDIS_URL set): how often each node heartbeats and how long a room's lease outlives its owner's last renewal. */
import { int, setting } from '../setting.js';

export const clusterSettings = {
  /** Interval between this node's registry heartbeats; its entry expires after three missed ones. */
  heartbeatMs: setting('CLUSTER_HEARTBEAT_MS', int(50, 60_000).default(1_000)),
  /** A room lease's TTL: renewed every third of it, taken over by another node after it when the owner stops renewing. */
  roomLeaseMs: setting('ROOM_LEASE_MS', int(300, 600_000).default(10_000)),
};

/** Rooms and their topology (mesh until MESH_THRESHOLD, then the SFU). Tenants and rooms may override the first three and maxScreenShares. */
import { int, setting } from '../setting.js';

export const roomSettings = {
  /** Participants above which a room moves to the SFU. */
  meshThreshold: setting('MESH_THRESHOLD', int(1, 1000).default(4)),
  /** Time at or below threshold - 1 before a room returns to mesh. */
  demoteDelayMs: setting('DEMOTE_DELAY_MS', int(0, 3_600_000).default(10_000)),
  /** Default room size limit. */
  maxParticipants: setting('MAX_PARTICIPANTS', int(1, 10_000).default(100)),
  /** Screen shares a room allows at once (tenant and room override); one more gets quota_exceeded. */
  maxScreenShares: setting('MAX_SCREEN_SHARES', int(0, 100).default(1)),
  /** Grace before an empty room closes. */
  emptyTimeoutMs: setting('ROOM_EMPTY_TIMEOUT_MS', int(0, 24 * 3_600_000).default(20_000)),
  /**
   * How long a room holds the place of a participant whose connection dropped without a leave,
   * or that has not reconnected yet after the room moved to another node: it comes back under
   * the same peer id, unseen by the others. 0: a drop is a leave.
   */
  resumeGraceMs: setting('RESUME_GRACE_MS', int(0, 600_000).default(15_000)),
};

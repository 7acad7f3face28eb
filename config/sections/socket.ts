/** Socket.IO / Engine.IO connections. */
import { int, setting } from '../setting.js';

export const socketSettings = {
  /** Engine.IO heartbeat interval; a half-open client is dropped within interval + timeout. */
  pingIntervalMs: setting('SOCKET_PING_INTERVAL_MS', int(100, 600_000).default(25_000)),
  pingTimeoutMs: setting('SOCKET_PING_TIMEOUT_MS', int(100, 600_000).default(20_000)),
  /** Socket.IO maxHttpBufferSize: a larger packet closes that socket. */
  maxPayloadBytes: setting('SOCKET_MAX_PAYLOAD_BYTES', int(16 * 1024, 16 * 1024 * 1024).default(512 * 1024)),
  /** An Engine.IO session that has not completed the Socket.IO CONNECT (auth) within this is closed. */
  connectTimeoutMs: setting('SOCKET_CONNECT_TIMEOUT_MS', int(100, 60_000).default(5_000)),
  /** Engine.IO sessions one address may hold before their Socket.IO CONNECT; more are refused (403). */
  pendingSessionsPerIp: setting('SOCKET_PENDING_SESSIONS_PER_IP', int(1, 100_000).default(50)),
};

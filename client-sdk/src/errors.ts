import { isErrorCode, type ErrorCode } from '../../protocol/errors.js';

/** Codes the SDK raises itself, next to the server's codes. */
export type ClientErrorCode =
  /** The signaling connection could not be established. */
  | 'connection_failed'
  /** The server did not answer a request in time. */
  | 'timeout'
  /** The room is not connected (before connect, after leave, or while reconnecting). */
  | 'not_connected'
  /** No WebRTC implementation was found (pass options.webrtc in Node). */
  | 'webrtc_unavailable'
  /** A media transport (the SFU's) failed to connect: ICE or DTLS did not get through. */
  | 'media_failed'
  /** A device could not be captured: no getUserMedia here (Node), permission denied, or no such device. */
  | 'media_unavailable'
  /** The call does not fit the Room's state (a second connect(): a Room connects once). */
  | 'invalid_state'
  /** A data message is larger than a data channel carries (256 KiB on the wire, envelope included): nothing was sent. */
  | 'payload_too_large';

export type SwitchboardErrorCode = ErrorCode | ClientErrorCode;

/** Every error the SDK surfaces: a stable code and a message. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: SwitchboardErrorCode,
    message: string,
    /** wrong_node: the URL of the node serving the room (the connect_error's ws_url). */
    readonly wsUrl?: string,
    /**
     * The connection failed in its transport before the server answered the handshake: the
     * node refused the TCP connection (it is down, or nothing listens there any more). A browser
     * reports every failed WebSocket alike, so there a failed upgrade (a proxy's 502) counts too.
     */
    readonly unreachable = false,
  ) {
    super(message);
    this.name = 'SwitchboardError';
  }

  /** Builds an error from a server wire error or a connect_error. */
  static from(value: unknown, fallback: SwitchboardErrorCode = 'connection_failed'): SwitchboardError {
    if (value instanceof SwitchboardError) return value;
    const record = (value ?? {}) as { code?: unknown; message?: unknown; data?: { code?: unknown; message?: unknown; ws_url?: unknown } };
    const code = record.data?.code ?? record.code ?? record.message;
    const message = String(record.data?.message ?? record.message ?? 'unknown error');
    const wsUrl = typeof record.data?.ws_url === 'string' ? record.data.ws_url : undefined;
    // socket.io-client's connect_error for a transport that failed to open (engine.io's TransportError), with no server answer (data).
    const unreachable = record.data === undefined && (value as { type?: unknown } | null)?.type === 'TransportError';
    return new SwitchboardError(isErrorCode(code) ? code : fallback, message, wsUrl, unreachable);
  }
}

/**
 * The closed list of error codes. Every error a client sees, over HTTP or the socket,
 * carries one of these. The README documents each; adding one is a contract change.
 */
export const ErrorCodes = {
  /** No token in the Socket.IO handshake auth payload. */
  token_missing: 401,
  /** Malformed, badly signed, wrong algorithm/issuer/audience, unknown kid, missing claims, or sent in the URL. */
  token_invalid: 401,
  /** exp is in the past (beyond the clock tolerance). */
  token_expired: 401,
  /** The token's jti was revoked (or its holder kicked). */
  token_revoked: 401,
  /** HTTP: missing or wrong API credentials. */
  unauthorized: 401,
  /** The caller lacks the grant for this action, or the Origin is not allowed. */
  forbidden: 403,
  /** The room or resource does not exist (for this tenant). */
  not_found: 404,
  /** The room is at max_participants. */
  room_full: 403,
  /** The room is locked: no new joins. */
  room_locked: 403,
  /** The room does not exist and the tenant does not auto-create rooms. */
  room_not_found: 404,
  /** The action needs a joined room. */
  not_in_room: 409,
  /** join was sent twice on one socket. */
  already_joined: 409,
  /** The `to` of a signal (or a kicked user) is not a peer of the caller's room. */
  peer_not_found: 404,
  /** A resource with that id already exists. */
  conflict: 409,
  /** The payload failed schema validation. */
  payload_invalid: 400,
  /** A tenant limit (rooms, participants, token lifetime) was reached. */
  quota_exceeded: 403,
  /** Too many requests or events; slow down (HTTP adds Retry-After). */
  rate_limited: 429,
  /** The SFU is disabled or has no live worker. */
  sfu_unavailable: 503,
  /** The server is shutting down. */
  shutting_down: 503,
  /** Cluster: another node serves this room; connect_error data carries its `ws_url` (the SDK follows it once). */
  wrong_node: 421,
  /** A server resource is exhausted for now (e.g. every SFU port is taken): try again later. */
  unavailable: 503,
  /** Anything unexpected; details are in the server log, not in the response. */
  internal: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ErrorCodes;

/** The shape of every error on the wire (ack error, HTTP body's `error`, connect_error data). */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, value);
}

/**
 * The load generator's side of signaling: Socket.IO clients that connect and join either
 * Switchboard (token in the handshake, `join {}`) or the bare baseline (`join room`), and
 * signal payloads of a chosen size that carry a sequence number, so the receiver can match
 * each relayed message to its send time without adding fields (Switchboard's schemas are
 * strict: unknown keys are refused).
 */
import { io as ioClient, type Socket } from 'socket.io-client';
import type { BenchTokens } from './benchConfig.js';

/** Which protocol a server speaks: Switchboard's (auth + join {}) or the baseline's. */
export type Protocol = 'switchboard' | 'bare';

export interface SignalTarget {
  protocol: Protocol;
  url: string;
}

export interface JoinedClient {
  socket: Socket;
  /** The id others address signals to (peer id or socket id). */
  id: string;
  /** Ids of the peers already in the room at join time. */
  peers: string[];
  /** Milliseconds from start to 'connect', and to the join ack. */
  connectMs: number;
  joinMs: number;
}

interface JoinAck {
  ok: boolean;
  self?: { id: string };
  peers?: Array<{ id: string }>;
  error?: { code: string; message: string };
}

export interface ConnectOptions {
  /** Source address of the connection (a 127.0.0.x), via engine.io-client's localAddress. */
  localAddress?: string;
  timeoutMs?: number;
}

/** Connects a client (without joining); resolves on 'connect', rejects on connect_error or timeout. */
export function connectClient(target: SignalTarget, token: string | undefined, options: ConnectOptions = {}): Promise<Socket> {
  const socket = ioClient(target.url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: options.timeoutMs ?? 20_000,
    auth: token ? { token } : {},
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  } as Parameters<typeof ioClient>[1]);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve(socket);
    });
    socket.once('connect_error', (error: Error) => {
      socket.close();
      reject(new Error(`connect failed: ${error.message}`));
    });
  });
}

/** Emits with an ack callback; rejects after the timeout. */
export function ask<T>(socket: Socket, event: string, payload: unknown, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    socket
      .timeout(timeoutMs)
      .emit(event, payload, (error: Error | null, response: T) =>
        error ? reject(new Error(`${event}: ${error.message}`)) : resolve(response),
      );
  });
}

/**
 * Connects and joins `room` (Switchboard: with a token minted now, or the one given); the
 * timings start when this is called.
 */
export async function connectAndJoin(
  target: SignalTarget,
  room: string,
  credentials: BenchTokens | string,
  options: ConnectOptions = {},
): Promise<JoinedClient> {
  const start = performance.now();
  const token = target.protocol !== 'switchboard' ? undefined : typeof credentials === 'string' ? credentials : credentials.mint(room);
  const socket = await connectClient(target, token, options);
  const connectMs = performance.now() - start;
  let ack: JoinAck;
  try {
    ack = await ask<JoinAck>(socket, 'join', target.protocol === 'switchboard' ? {} : room, options.timeoutMs);
  } catch (error) {
    socket.close();
    throw error;
  }
  if (!ack.ok || !ack.self) {
    socket.close();
    throw new Error(`join refused: ${ack.error?.code ?? 'no ack'} ${ack.error?.message ?? ''}`);
  }
  return { socket, id: ack.self.id, peers: (ack.peers ?? []).map((p) => p.id), connectMs, joinMs: performance.now() - start };
}

/** Closes clients and gives the server a moment to process the disconnects. */
export async function closeClients(sockets: Iterable<Socket>, settleMs = 200): Promise<void> {
  for (const socket of sockets) socket.close();
  await new Promise((resolve) => setTimeout(resolve, settleMs));
}

const CANDIDATE_PREFIX = 'candidate:';
const SDP_PREFIX = 'v=0\r\no=- ';
/** An ICE candidate line (a real one is 100-200 chars; padded with extension attributes). */
const CANDIDATE_BODY = ' 1 udp 2122260223 192.0.2.17 54321 typ host generation 0 ufrag Xb9q network-id 1 network-cost 10';
const SDP_BODY =
  ' 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n' +
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n' +
  'a=ice-ufrag:Xb9q\r\na=ice-pwd:7Gm4uJ0nS0o3ZkQm1y9lPq3w\r\na=ice-options:trickle\r\n' +
  'a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CD:87:32:BE:DD:8C:66:A5:8E:50:55:EA:15:DC:4E:5A:17:C2:51:54\r\n' +
  'a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n';

export type SignalPayload =
  | { to: string; candidate: { candidate: string; sdpMid: string; sdpMLineIndex: number } }
  | { to: string; description: { type: 'offer'; sdp: string } };

/**
 * Builds signal payloads of about `bytes` bytes of JSON (as the client sends them): ICE
 * candidates up to 1 KB (Switchboard's candidate limit), SDP offers above.
 */
export class PayloadFactory {
  private readonly large: boolean;
  private readonly padding: string;

  constructor(
    readonly bytes: number,
    sampleTo: string,
  ) {
    this.large = bytes > 900;
    const probe = JSON.stringify(this.build(sampleTo, 1e9, ''));
    this.padding = this.large
      ? 'a=x-pad:'.padEnd(Math.max(0, bytes - probe.length - 2), 'x') + '\r\n'
      : ' x-pad '.padEnd(Math.max(0, bytes - probe.length), 'x');
  }

  /** The JSON size of a payload as sent (the sequence number makes it vary by a few bytes). */
  sizeOf(to: string): number {
    return JSON.stringify(this.make(to, 1e9)).length;
  }

  make(to: string, seq: number): SignalPayload {
    return this.build(to, seq, this.padding);
  }

  private build(to: string, seq: number, padding: string): SignalPayload {
    if (this.large) return { to, description: { type: 'offer', sdp: `${SDP_PREFIX}${seq}${SDP_BODY}${padding}` } };
    return { to, candidate: { candidate: `${CANDIDATE_PREFIX}${seq}${CANDIDATE_BODY}${padding}`, sdpMid: '0', sdpMLineIndex: 0 } };
  }
}

/** The sequence number a relayed signal carries (see PayloadFactory), or -1. */
export function sequenceOf(message: { candidate?: { candidate?: string }; description?: { sdp?: string } }): number {
  const candidate = message.candidate?.candidate;
  if (candidate !== undefined) return parseInt(candidate.slice(CANDIDATE_PREFIX.length, CANDIDATE_PREFIX.length + 16), 10);
  const sdp = message.description?.sdp;
  if (sdp !== undefined) return parseInt(sdp.slice(SDP_PREFIX.length, SDP_PREFIX.length + 16), 10);
  return -1;
}

/** Distinct 127.0.0.x source addresses (127.0.0.2 onwards), for spreading many connections. */
export function sourceAddresses(count: number): string[] {
  return Array.from({ length: Math.max(0, Math.min(count, 250)) }, (_, i) => `127.0.0.${i + 2}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

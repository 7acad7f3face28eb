/**
 * One TURN client connected over TCP or TLS: its byte stream cut into messages (StreamFramer),
 * the idle timer that closes connections which send nothing useful, and the way back to the
 * client. An allocation made over a connection is bound to it (RFC 5766 §2.1, its 5-tuple):
 * the relay frees it when the connection closes, as coturn does.
 */
import type { Socket } from 'node:net';
import { StreamFramer, type FramingError } from './StreamFramer.js';

/** Client-to-server transport of a stream connection (the relayed side is always UDP). */
export type StreamProtocol = 'tcp' | 'tls';

/**
 * Bytes queued towards a slow client beyond which relayed data is dropped, as a full UDP path
 * would drop it; control answers are always queued. About a second of a 2 Mbit/s video call.
 */
export const MAX_QUEUED_BYTES = 256 * 1024;

/**
 * Bytes queued towards the client beyond which the connection stops reading from it until the
 * queue drains. Answers are always queued, so a client that sends requests (Binding needs no
 * credentials) and never reads the answers would otherwise grow the worker's memory without
 * bound. Above MAX_QUEUED_BYTES, so relayed data alone (dropped there) never stops a client's
 * own sending.
 */
export const READ_PAUSE_BYTES = MAX_QUEUED_BYTES + 64 * 1024;

/** Why a connection ended, for the log and the counters. */
export type StreamCloseReason = FramingError | 'idle' | 'evicted' | 'closed_by_client' | 'socket_error' | 'shutdown';

export interface StreamConnectionOptions {
  protocol: StreamProtocol;
  /** The accepted socket (for TLS, the TLSSocket over it). */
  socket: Socket;
  /** The client's address and port as the TCP connection reports them. */
  remoteAddress: string;
  remotePort: number;
  /** Closes the connection when this long passes without a complete message, while it holds no allocation. */
  idleTimeoutMs: number;
  /** Each complete message (a STUN message, or ChannelData with its padding). */
  onFrame: (connection: StreamConnection, frame: Buffer) => void;
  /** Once, when the connection is gone (for whatever reason). */
  onClose: (connection: StreamConnection, reason: StreamCloseReason) => void;
}

export class StreamConnection {
  readonly protocol: StreamProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** "tcp:ip:port" or "tls:ip:port": the client's key in the relay's allocation map, apart from UDP's "ip:port". */
  readonly key: string;
  private readonly socket: Socket;
  private readonly framer = new StreamFramer();
  private readonly idleTimeoutMs: number;
  private readonly onFrame: StreamConnectionOptions['onFrame'];
  private readonly onClose: StreamConnectionOptions['onClose'];
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private holdsAllocation = false;
  private closeReason: StreamCloseReason | undefined;
  private closed = false;

  constructor(options: StreamConnectionOptions) {
    this.protocol = options.protocol;
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
    this.key = `${options.protocol}:${options.remoteAddress}:${options.remotePort}`;
    this.socket = options.socket;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.onFrame = options.onFrame;
    this.onClose = options.onClose;
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => this.close('socket_error'));
    this.socket.on('close', () => this.finish());
    this.armIdleTimer();
  }

  /** Whether the connection is closed or closing: nothing more is read or written. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Marks the connection as holding an allocation (no idle timeout: the allocation's lifetime
   * bounds it) or as holding none any more (the idle timer runs again).
   */
  /** Whether an allocation is bound to the connection. */
  get hasAllocation(): boolean {
    return this.holdsAllocation;
  }

  setHoldsAllocation(holds: boolean): void {
    this.holdsAllocation = holds;
    this.armIdleTimer();
  }

  /**
   * Writes a control message (an answer to a request). Shaped as dgram's send so node-turn's
   * replies, which call transport.socket.send(buf, port, address, callback), go back on this
   * connection; port and address are the connection's own. A write that fails ends the
   * connection (its 'error' event) and is not reported per message: node-turn would log each
   * such callback error as FATAL, so a client resetting its connections could flood the log.
   */
  send(buf: Buffer, _port?: number, _address?: string, callback?: (error: Error | null) => void): void {
    if (!this.closed) this.socket.write(buf);
    callback?.(null);
  }

  /** Writes relayed data (the chunks as one message); false when dropped because the client reads too slowly. */
  writeData(chunks: readonly Buffer[]): boolean {
    if (this.closed || this.socket.writableLength > MAX_QUEUED_BYTES) return false;
    this.socket.cork();
    for (const chunk of chunks) if (chunk.length > 0) this.socket.write(chunk);
    this.socket.uncork();
    return true;
  }

  /**
   * Closes the connection: `reason` is reported to onClose. After a malformed frame or at
   * shutdown, queued answers are still flushed (end), other reasons destroy at once. Idempotent.
   */
  close(reason: StreamCloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.clearIdleTimer();
    if (reason === 'socket_error' || reason === 'idle' || reason === 'evicted') this.socket.destroy();
    else {
      this.socket.end();
      // A client that never reads would hold the socket open through end(): do not wait for it.
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let complete = false;
    const error = this.framer.push(chunk, (frame) => {
      if (this.closed) return;
      complete = true;
      this.onFrame(this, frame);
    });
    // Once per read, not per message: a read can hold thousands of 4-byte ChannelData messages.
    if (complete) this.armIdleTimer();
    if (error) this.close(error);
    else this.pauseWhileBacklogged();
  }

  /** Backpressure on answers: stop reading the client until it has read what waits for it. */
  private pauseWhileBacklogged(): void {
    const socket = this.socket;
    if (this.closed || socket.writableLength <= READ_PAUSE_BYTES || !socket.writableNeedDrain) return;
    socket.pause();
    socket.once('drain', () => {
      if (!this.closed) socket.resume();
    });
  }

  private finish(): void {
    this.clearIdleTimer();
    const reason = this.closeReason ?? 'closed_by_client';
    this.closed = true;
    this.closeReason = reason;
    this.onClose(this, reason);
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    if (this.closed || this.holdsAllocation) return;
    this.idleTimer = setTimeout(() => this.close('idle'), this.idleTimeoutMs);
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/**
 * The TCP or TLS listener of the TURN relay: accepts connections (within the connection caps
 * the relay decides), runs the TLS handshake on the TLS port, and hands each connection to the
 * relay as a StreamConnection.
 */
import net, { type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import { hostIdentity, parseIp } from '../server/net/AddressPolicy.js';
import { StreamConnection, type StreamCloseReason, type StreamProtocol } from './StreamConnection.js';

/**
 * What TURN_MAX_CONNECTIONS_PER_IP counts a client by: its IPv4 address (also written
 * IPv4-mapped), or the /64 of an IPv6 address. One subscriber or host gets a whole /64, so
 * counting single IPv6 addresses would let it open any number of connections.
 */
export function connectionCapKey(address: string): string {
  const identity = hostIdentity(address) ?? address;
  const bytes = parseIp(identity);
  if (!bytes || bytes.length !== 16) return identity;
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return `${groups.join(':')}::/64`;
}

/** How a connection ended, as the relay counts it: a closed connection, or one refused or failed before it began. */
export type StreamEnd = StreamCloseReason | 'tls_handshake';

export interface StreamListenerOptions {
  protocol: StreamProtocol;
  host: string;
  /** Certificate and key of the TLS port (required when protocol is 'tls'). */
  secureContext?: SecureContext;
  /** Closes connections that send no complete message for this long while they hold no allocation (and stalled TLS handshakes). */
  idleTimeoutMs: number;
  /** Whether a new connection from `address` may be accepted (connection caps); refused ones are closed at once. */
  admit: (address: string) => boolean;
  /** Each complete message of an accepted connection (after its TLS handshake, if any). */
  onFrame: (connection: StreamConnection, frame: Buffer) => void;
  /** Once per admitted connection, when it is gone (also when its TLS handshake failed). */
  onEnd: (address: string, end: StreamEnd, connection: StreamConnection | undefined) => void;
  /** An error of the listening socket once it listens (accept failing with ENOBUFS, ENFILE, ...); it keeps listening. */
  onListenerError: (error: Error) => void;
}

export class StreamListener {
  private readonly options: StreamListenerOptions;
  private readonly server: net.Server;
  /** Admitted sockets not closed yet (for TLS also those still in the handshake), closed at shutdown; with when each was admitted. */
  private readonly sockets = new Map<Socket, number>();
  /** Sockets still in their TLS handshake: how to end each. */
  private readonly handshakes = new Map<Socket, () => void>();
  /** The connection of each admitted socket once it started (after its TLS handshake). */
  private readonly connectionOf = new Map<Socket, StreamConnection>();
  private readonly connections = new Set<StreamConnection>();
  private boundPort = 0;

  constructor(options: StreamListenerOptions) {
    if (options.protocol === 'tls' && !options.secureContext) throw new Error('[StreamListener] TLS needs a secure context');
    this.options = options;
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** The bound port (0 before listen). */
  get port(): number {
    return this.boundPort;
  }

  /** Listens on `port` (0: any free one); rejects with the listen error (EADDRINUSE, EACCES for ports below 1024, ...). */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        // Unheard, an accept error would be thrown and end the worker with every allocation.
        this.server.on('error', (error) => this.options.onListenerError(error));
        this.boundPort = (this.server.address() as net.AddressInfo).port;
        resolve(this.boundPort);
      });
    });
  }

  /** Uses another certificate and key for new TLS connections (live ones keep theirs). */
  setSecureContext(context: SecureContext): void {
    this.options.secureContext = context;
  }

  /**
   * The oldest connection that holds no allocation (a TLS handshake still under way counts),
   * with when it was admitted and how to close it (reason `evicted`): what the relay closes
   * to admit a new connection when every connection slot is taken, so connections that only
   * keep themselves alive cannot lock the others out.
   */
  oldestIdle(): { admittedAt: number; evict: () => void } | undefined {
    for (const [socket, admittedAt] of this.sockets) {
      const handshake = this.handshakes.get(socket);
      if (handshake) return { admittedAt, evict: handshake };
      const connection = this.connectionOf.get(socket);
      if (connection && !connection.hasAllocation && !connection.isClosed) return { admittedAt, evict: () => connection.close('evicted') };
    }
    return undefined;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    for (const connection of [...this.connections]) connection.close('shutdown');
    for (const socket of [...this.sockets.keys()]) socket.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(raw: Socket): void {
    const address = raw.remoteAddress;
    const port = raw.remotePort;
    // A socket already reset by the client has no address.
    if (address === undefined || port === undefined) {
      raw.destroy();
      return;
    }
    if (!this.options.admit(address)) {
      raw.destroy();
      return;
    }
    this.sockets.set(raw, Date.now());
    const { protocol, idleTimeoutMs } = this.options;
    let connection: StreamConnection | undefined;
    let ended = false;
    const end = (how: StreamEnd): void => {
      if (ended) return;
      ended = true;
      this.sockets.delete(raw);
      this.handshakes.delete(raw);
      this.connectionOf.delete(raw);
      if (connection) this.connections.delete(connection);
      this.options.onEnd(address, how, connection);
    };
    const start = (socket: Socket): void => {
      connection = new StreamConnection({
        protocol,
        socket,
        remoteAddress: address,
        remotePort: port,
        idleTimeoutMs,
        onFrame: this.options.onFrame,
        onClose: (_connection, reason) => end(reason),
      });
      this.connections.add(connection);
      this.connectionOf.set(raw, connection);
    };
    if (protocol === 'tcp') {
      start(raw);
      return;
    }
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.options.secureContext });
    // Errors of the TCP socket under TLS end the TLS socket; unheard, they would end the worker.
    raw.on('error', () => secure.destroy());
    // A handshake that stalls (a slow or silent client) holds a socket: it gets the idle timeout too.
    const handshakeTimer = setTimeout(() => {
      secure.destroy();
      end('idle');
    }, idleTimeoutMs);
    const failed = (): void => {
      clearTimeout(handshakeTimer);
      secure.destroy();
      end('tls_handshake');
    };
    this.handshakes.set(raw, () => {
      clearTimeout(handshakeTimer);
      secure.destroy();
      end('evicted');
    });
    secure.once('error', failed);
    secure.once('close', failed);
    secure.once('secure', () => {
      clearTimeout(handshakeTimer);
      this.handshakes.delete(raw);
      secure.off('error', failed);
      secure.off('close', failed);
      start(secure);
    });
  }
}

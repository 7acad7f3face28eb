import { io, type Socket } from 'socket.io-client';
import type {
  AckResponse,
  ClientEventAck,
  ClientEventName,
  ClientEventRequest,
  ClientToServerEvents,
  ServerToClientEvents,
} from '../../protocol/events.js';
import { SwitchboardError } from './errors.js';
import { policyRefusal, refusedByPagePolicy, watchPagePolicy } from './pagePolicy.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface SignalClientOptions {
  requestTimeoutMs: number;
  /** Extra socket.io-client options (transports, extraHeaders for Node bots). */
  socketOptions?: Record<string, unknown>;
}

/** Joining an anonymous/demo room (a server with ANONYMOUS_ROOMS on): no token. */
export interface AnonymousCredentials {
  room: string;
  name: string;
}

/** A join token, or the room and name of an anonymous join. */
export type Credentials = string | AnonymousCredentials;

/** One Socket.IO connection: connect with the credentials in the auth payload, typed requests with acks. */
export class SignalClient {
  readonly socket: ClientSocket;

  constructor(
    private readonly url: string,
    credentials: Credentials,
    private readonly options: SignalClientOptions,
  ) {
    const auth = typeof credentials === 'string' ? { token: credentials } : { room: credentials.room, name: credentials.name };
    watchPagePolicy();
    // Reconnection is the Room's job (it needs to rejoin and rebuild peers), not socket.io's.
    this.socket = io(url, { auth, reconnection: false, forceNew: true, transports: ['websocket'], ...options.socketOptions });
  }

  /**
   * Resolves once connected; rejects with the server's error code (token_invalid, ...), or
   * `connection_failed` (unreachable) when the transport did not open, naming the page's
   * Content-Security-Policy when that is what refused it.
   */
  async connect(): Promise<void> {
    const started = Date.now();
    try {
      await this.open();
    } catch (error) {
      const failed = SwitchboardError.from(error);
      if (!failed.unreachable) throw failed;
      const directive = await refusedByPagePolicy(this.url, started);
      if (directive === null) throw failed;
      throw policyRefusal(
        new SwitchboardError(
          'connection_failed',
          `the page's Content-Security-Policy (${directive}) does not allow connecting to ${this.url}: its connect-src must name every Switchboard node`,
          undefined,
          true,
        ),
      );
    }
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        this.socket.close();
        reject(new SwitchboardError('timeout', 'signaling connection timed out'));
      }, this.options.requestTimeoutMs);
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (error: Error) => {
        cleanup();
        this.socket.close();
        reject(SwitchboardError.from(error));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.socket.off('connect', onConnect);
        this.socket.off('connect_error', onError);
      };
      this.socket.once('connect', onConnect);
      this.socket.once('connect_error', onError);
    });
  }

  /** Sends a request and resolves with the ack's result; rejects with a SwitchboardError. */
  async request<E extends ClientEventName>(event: E, payload: ClientEventRequest<E>): Promise<{ ok: true } & ClientEventAck<E>> {
    if (!this.socket.connected) throw new SwitchboardError('not_connected', 'signaling is not connected');
    let response: AckResponse<ClientEventAck<E>>;
    try {
      // socket.io-client's typed emitWithAck cannot resolve a generic event's ack; this is the same call, typed from the ack map.
      const emitter = this.socket.timeout(this.options.requestTimeoutMs) as unknown as {
        emitWithAck(event: E, payload: ClientEventRequest<E>): Promise<AckResponse<ClientEventAck<E>>>;
      };
      response = await emitter.emitWithAck(event, payload);
    } catch {
      throw new SwitchboardError('timeout', `no answer to ${event}`);
    }
    if (!response.ok) throw SwitchboardError.from(response.error, 'internal');
    return response;
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.close();
  }
}

import type {
  ActiveSpeaker,
  ConnectionQuality,
  JoinResult,
  Metadata,
  PeerInfo,
  RoomConfigInfo,
  RoomMode,
  SfuInfo,
  SfuProducerInfo,
  SignalMessage,
} from '../../protocol/events.js';
import { parseSpeakers } from './ActiveSpeakers.js';
import { SwitchboardError, type SwitchboardErrorCode } from './errors.js';
import { DisconnectReason } from './RoomTypes.js';
import { SignalClient, type Credentials } from './SignalClient.js';

const QUALITIES = new Set<ConnectionQuality>(['excellent', 'good', 'poor', 'lost']);

/** Server codes after which reconnecting cannot help. */
export const TERMINAL_CODES = new Set([
  'token_revoked',
  'token_invalid',
  'token_expired',
  'token_missing',
  'forbidden',
  'room_not_found',
  'room_locked',
  'room_full',
]);

/** Why the room ends after a terminal code (TERMINAL_CODES) from the server. */
export function disconnectReasonOf(code: SwitchboardErrorCode): DisconnectReason {
  if (code === 'token_revoked') return DisconnectReason.TokenRevoked;
  if (code === 'token_expired') return DisconnectReason.TokenExpired;
  if (code === 'room_not_found') return DisconnectReason.RoomClosed;
  return DisconnectReason.JoinRefused;
}

/** The room's new mode, why, and with 'sfu' the SFU to join. */
export interface ModeChange {
  mode: RoomMode;
  reason: string;
  sfu?: SfuInfo;
}

/** What the room does with the events of one signaling connection. */
export interface RoomEventHandlers {
  /** The join was acknowledged on `signal`; room events that came meanwhile run right after. */
  joined(signal: SignalClient, ack: JoinResult): void;
  peerJoined(info: PeerInfo): void;
  peerLeft(id: string): void;
  peerUpdated(info: PeerInfo): void;
  signal(message: SignalMessage): void;
  modeChanged(change: ModeChange): void;
  newProducer(info: SfuProducerInfo): void;
  producerClosed(info: SfuProducerInfo): void;
  roomUpdated(config: RoomConfigInfo): void;
  /** SFU: who speaks now (checked: a malformed message is dropped). */
  activeSpeakers(speakers: ActiveSpeaker[]): void;
  /** A participant's connection quality changed. */
  connectionQuality(peerId: string, quality: ConnectionQuality): void;
  /** The room cannot go on for us once this connection ends; `reported`: the app already got it as an error. */
  ended(error: SwitchboardError, reported: boolean, reason: DisconnectReason): void;
  error(error: SwitchboardError): void;
  disconnected(signal: SignalClient, reason: string): void;
  /** The server is shutting down (room_closed server_shutdown): the connection's end that follows is not final. */
  serverShutdown(): void;
  /** The room moved to another node of the cluster: join it at wsUrl. */
  moved(signal: SignalClient, wsUrl: string): void;
  /**
   * Whether `signal` is the room's connection: once joined, the room events of a connection
   * that was replaced (the one left behind by a move) are dropped.
   */
  current(signal: SignalClient): boolean;
}

export interface JoinOptions {
  requestTimeoutMs: number;
  socketOptions?: Record<string, unknown>;
  metadata?: Metadata;
  /** Our peer id before this connection (a rejoin): the server gives it back when it still holds our place. */
  resume?: string;
}

/**
 * Connects a signaling socket to `url`, following one cluster redirect: a `wrong_node` refusal
 * names the node serving the room (ws_url), which is tried once with the same credentials. A
 * second redirect is not followed (the nodes disagree about the room, e.g. while it moves):
 * it fails with `wrong_node`. Resolves with the connected client and the URL it reached.
 */
export async function connectSignal(
  url: string,
  credentials: Credentials,
  options: Pick<JoinOptions, 'requestTimeoutMs' | 'socketOptions'>,
): Promise<{ signal: SignalClient; url: string }> {
  const open = async (target: string) => {
    const signal = new SignalClient(target, credentials, {
      requestTimeoutMs: options.requestTimeoutMs,
      socketOptions: options.socketOptions,
    });
    await signal.connect();
    return { signal, url: target };
  };
  let redirect: string;
  try {
    return await open(url);
  } catch (error) {
    const refused = SwitchboardError.from(error);
    if (refused.code !== 'wrong_node' || !refused.wsUrl) throw refused;
    redirect = refused.wsUrl;
  }
  try {
    return await open(redirect);
  } catch (error) {
    const refused = SwitchboardError.from(error);
    if (refused.code !== 'wrong_node') throw refused;
    throw new SwitchboardError(
      'wrong_node',
      `redirected twice (${url} -> ${redirect} -> ${refused.wsUrl ?? 'another node'}): not following a second redirect`,
      refused.wsUrl,
    );
  }
}

/**
 * Opens a signaling connection (following one cluster redirect) and joins the room. Room
 * events that arrive before the join ack is applied wait for it (ws may deliver the ack and a
 * peer's first offer in one tick), then run in arrival order. A connection whose join fails is
 * closed, and the error thrown. Resolves with the URL of the node it joined on.
 */
export async function joinRoom(url: string, credentials: Credentials, options: JoinOptions, handlers: RoomEventHandlers): Promise<string> {
  const connected = await connectSignal(url, credentials, options);
  const signal = connected.signal;
  let beforeJoin: Array<() => void> | null = [];
  /** Runs a room event now, or after the join ack while the join is in flight. */
  const ordered =
    <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A) => {
      if (beforeJoin) beforeJoin.push(() => handler(...args));
      else if (handlers.current(signal)) handler(...args);
    };
  try {
    const socket = signal.socket;
    socket.on(
      'peer_joined',
      ordered((info: PeerInfo) => handlers.peerJoined(info)),
    );
    socket.on(
      'peer_left',
      ordered(({ id }: { id: string }) => handlers.peerLeft(id)),
    );
    socket.on(
      'peer_updated',
      ordered((info: PeerInfo) => handlers.peerUpdated(info)),
    );
    socket.on(
      'signal',
      ordered((message: SignalMessage) => handlers.signal(message)),
    );
    socket.on(
      'mode_changed',
      ordered(({ mode, reason, sfu }: ModeChange) => handlers.modeChanged({ mode, reason, sfu })),
    );
    socket.on(
      'sfu:new_producer',
      ordered((info: SfuProducerInfo) => handlers.newProducer(info)),
    );
    socket.on(
      'sfu:producer_closed',
      ordered((info: SfuProducerInfo) => handlers.producerClosed(info)),
    );
    socket.on(
      'room_updated',
      ordered(({ config }: { config: RoomConfigInfo }) => handlers.roomUpdated(config)),
    );
    socket.on(
      'active_speakers',
      ordered((message: unknown) => {
        const speakers = parseSpeakers(message);
        if (speakers) handlers.activeSpeakers(speakers);
      }),
    );
    socket.on(
      'connection_quality',
      ordered((message: { peer_id?: unknown; quality?: unknown }) => {
        if (typeof message?.peer_id === 'string' && QUALITIES.has(message.quality as ConnectionQuality))
          handlers.connectionQuality(message.peer_id, message.quality as ConnectionQuality);
      }),
    );
    socket.on(
      'room_moved',
      ordered(({ ws_url }: { ws_url: string }) => handlers.moved(signal, ws_url)),
    );
    socket.on(
      'kicked',
      ordered(({ reason }: { reason: string }) =>
        handlers.ended(new SwitchboardError('forbidden', `kicked: ${reason}`), false, DisconnectReason.Kicked),
      ),
    );
    socket.on(
      'room_closed',
      ordered(({ reason }: { reason: string }) => {
        // A server shutting down (a restart, a deploy) is not the end of the room: the
        // disconnect that follows is a signaling loss, and the SDK rejoins once the server is back.
        if (reason === 'server_shutdown') return handlers.serverShutdown();
        handlers.ended(new SwitchboardError('not_connected', `room closed: ${reason}`), false, DisconnectReason.RoomClosed);
      }),
    );
    socket.on('error', (error) => {
      // An error of a connection the room replaced (the one a move left behind) is not the room's.
      if (!beforeJoin && !handlers.current(signal)) return;
      const wrapped = SwitchboardError.from(error, 'internal');
      if (TERMINAL_CODES.has(wrapped.code)) handlers.ended(wrapped, true, disconnectReasonOf(wrapped.code));
      handlers.error(wrapped);
    });
    socket.on('disconnect', (reason) => handlers.disconnected(signal, String(reason)));
    const ack: JoinResult = await signal.request('join', {
      ...(options.metadata ? { metadata: options.metadata } : {}),
      ...(options.resume ? { resume: { peer_id: options.resume } } : {}),
    });
    handlers.joined(signal, ack);
    const waiting = beforeJoin;
    beforeJoin = null;
    for (const run of waiting) run();
    return connected.url;
  } catch (error) {
    signal.close();
    throw SwitchboardError.from(error);
  }
}

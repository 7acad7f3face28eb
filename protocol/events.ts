/**
 * The Socket.IO wire protocol: typed event maps shared by the server and the SDK.
 * Client->server payload types are derived from the zod schemas in schemas.ts, which the
 * server applies before a handler runs, so the declared types and the checks cannot drift.
 * Every client event has exactly one ack body type (ClientEventAcks). Acks are always the
 * last argument.
 */
import type { z } from 'zod';
import type { WireError } from './errors.js';
import type * as schemas from './schemas.js';
import type { JsonValue, Metadata } from './schemas.js';
import type { ConnectionQuality } from './connectionQuality.js';

export type { JsonValue, Metadata, ConnectionQuality };

/** Permissions carried by a token (LiveKit-style). Missing grants are false. */
export interface Grants {
  /** May join the room named in the token. */
  roomJoin: boolean;
  /** May send audio/video (mesh SDP with send directions; SFU produce). */
  canPublish: boolean;
  /** May receive others' media (SFU consume). */
  canSubscribe: boolean;
  /** May send data-channel messages. */
  canPublishData: boolean;
  /** May use admin:* events (kick, mute, lock) in this room. */
  roomAdmin: boolean;
  /** Not announced to other participants and not listed in peers. */
  hidden: boolean;
  /** May change its own metadata with update_metadata. */
  canUpdateOwnMetadata: boolean;
  /** The sources it may publish (with canPublish); absent: every source. */
  canPublishSources?: TrackSource[];
}

/**
 * Where a published track comes from. Spelled out rather than derived from the schema: the
 * SDK's bundled .d.ts must not name zod (TrackSourcesMatchSchema below keeps them equal).
 */
export type TrackSource = 'camera' | 'microphone' | 'screen' | 'screen_audio';

/** A track a participant publishes, as the room sees it. */
export interface TrackInfo {
  /** The publisher's MediaStreamTrack.id. */
  track_id: string;
  kind: 'audio' | 'video';
  source: TrackSource;
  /** The MediaStream.id it is sent with, when it has one (mesh receivers see that stream id). */
  stream_id?: string;
}

export type GrantName = keyof Grants;

export type RoomMode = 'mesh' | 'sfu';
/** The operator's pin: auto switches by threshold; mesh/sfu stay put. */
export type RoomModePolicy = 'auto' | 'mesh' | 'sfu';

/** A participant as others see it. */
export interface PeerInfo {
  /** Server-assigned id of this connection, the address of signals. */
  id: string;
  /** The token's subject. */
  user_id: string;
  name: string;
  metadata: Metadata;
  /** Present while a room admin muted this peer's audio or video (admin:mute). */
  muted?: { audio: boolean; video: boolean };
  /** Present while this peer muted its own audio or video (the `mute` event). */
  self_muted?: { audio: boolean; video: boolean };
  /** Present while this peer publishes tracks (`publish_track`, or SFU producers with a source). */
  tracks?: TrackInfo[];
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface RoomConfigInfo {
  max_participants: number;
  mesh_threshold: number;
  mode_policy: RoomModePolicy;
  locked: boolean;
  /** Screen shares (tracks of source `screen`) the room allows at once. */
  max_screen_shares: number;
}

/** A producer another peer has on the SFU (media or data). */
export interface SfuProducerInfo {
  peer_id: string;
  producer_id: string;
  kind: 'audio' | 'video' | 'data';
  /** Media producers: the source the producer was created with (its appData). */
  source?: TrackSource;
  /** Media producers: the publisher's track id, when it gave one (its appData). */
  track_id?: string;
}

/** What a client needs to use the room's SFU router. */
export interface SfuInfo {
  router_rtp_capabilities: unknown;
  /** Producers already on the router (empty right after a promotion). */
  producers: SfuProducerInfo[];
  /** Who speaks on the router now (active_speakers then tells the changes). */
  active_speakers?: ActiveSpeaker[];
  /**
   * Data the SFU queues for one slow receiver before it drops messages
   * (SFU_SCTP_SEND_BUFFER_BYTES): a sender keeps at least twice this of its reliable messages,
   * so a receiver that lost some to a full queue can still ask for them.
   */
  sctp_send_buffer_bytes?: number;
}

/** Transport parameters for mediasoup-client's createSendTransport/createRecvTransport. */
export interface SfuTransportInfo {
  id: string;
  iceParameters: unknown;
  iceCandidates: unknown[];
  dtlsParameters: unknown;
  sctpParameters?: unknown;
}

export interface SfuConsumerInfo {
  id: string;
  producer_id: string;
  kind: 'audio' | 'video';
  rtp_parameters: unknown;
}

export interface SfuDataConsumerInfo {
  id: string;
  data_producer_id: string;
  sctp_stream_parameters: unknown;
  label: string;
  protocol: string;
}

export interface JoinResult {
  self: PeerInfo & { grants: Grants };
  room: { id: string; mode: RoomMode; config: RoomConfigInfo };
  peers: PeerInfo[];
  ice_servers: IceServer[];
  /** Present when the room is on the SFU. */
  sfu?: SfuInfo;
}

export type SessionDescription = z.output<typeof schemas.sessionDescription>;
export type IceCandidate = z.output<typeof schemas.iceCandidate>;
/** A signal as a client sends it: to one peer, a description or a candidate. */
export type SignalRequest = z.output<typeof schemas.signalPayload>;

/** A signal as the addressee receives it. */
export interface SignalMessage {
  from: string;
  description?: SessionDescription;
  candidate?: IceCandidate;
}

export type AckResponse<T extends object = object> = ({ ok: true } & T) | { ok: false; error: WireError };
export type Ack<T extends object = object> = (response: AckResponse<T>) => void;

/** What a client reports periodically (getStats) and once after a migration. */
export type StatsReport = z.output<typeof schemas.statsPayload>;
/** Quality of one link as the client measures it; peer_id is the remote peer id, or "sfu". */
export type LinkQuality = StatsReport['links'][number];

/** One speaking participant: its peer id and its audio level (0..1, linear; 1 is full scale). */
export interface ActiveSpeaker {
  peer_id: string;
  level: number;
}

/** Who speaks now, loudest first (empty: nobody); sent on the SFU when the list changes. */
export interface ActiveSpeakersMessage {
  speakers: ActiveSpeaker[];
}

/** A participant's connection quality changed (from the stats its client reports). */
export interface ConnectionQualityMessage {
  peer_id: string;
  quality: ConnectionQuality;
}

export interface PeerLeftMessage {
  id: string;
  user_id: string;
  reason: string;
}

export interface RoomMovedMessage {
  ws_url: string;
}

export interface ModeChangedMessage {
  mode: RoomMode;
  reason: string;
  /** Present when mode is sfu (also when the SFU router was rebuilt after a worker died). */
  sfu?: SfuInfo;
}

export interface ServerToClientEvents {
  peer_joined: (peer: PeerInfo) => void;
  peer_left: (message: PeerLeftMessage) => void;
  peer_updated: (peer: PeerInfo) => void;
  signal: (message: SignalMessage) => void;
  mode_changed: (message: ModeChangedMessage) => void;
  'sfu:new_producer': (producer: SfuProducerInfo) => void;
  'sfu:producer_closed': (producer: SfuProducerInfo) => void;
  kicked: (message: { reason: string }) => void;
  room_closed: (message: { reason: string }) => void;
  /**
   * The room moved to another node of the cluster (this one drains): join it at ws_url with
   * `resume` (the same peer id); this connection keeps working until the client closes it.
   */
  room_moved: (message: RoomMovedMessage) => void;
  room_updated: (message: { config: RoomConfigInfo }) => void;
  /** SFU rooms: the speaking participants changed (the router's audio level observer). */
  active_speakers: (message: ActiveSpeakersMessage) => void;
  /** A participant's connection quality changed (both topologies). */
  connection_quality: (message: ConnectionQualityMessage) => void;
  error: (error: WireError) => void;
}

type ClientEventSchemas = typeof schemas.clientEventSchemas;

/** Names of the client->server events; each has a schema and an ack body. */
export type ClientEventName = keyof ClientEventSchemas;

/** What a client may send as event E's payload (the schema's input). */
export type ClientEventRequest<E extends ClientEventName> = z.input<ClientEventSchemas[E]>;

/** Event E's payload as a server handler receives it, once the schema accepted it. */
export type ClientEventPayload<E extends ClientEventName> = z.output<ClientEventSchemas[E]>;

/** The ack of an event that answers nothing but success. */
export type EmptyAck = Record<string, never>;

/** The body of each client event's successful ack (next to `ok: true`). */
export interface ClientEventAcks {
  join: JoinResult;
  signal: EmptyAck;
  leave: EmptyAck;
  update_metadata: { self: PeerInfo };
  stats: EmptyAck;
  mute: EmptyAck;
  publish_track: { track: TrackInfo };
  unpublish_track: EmptyAck;
  'sfu:create_transport': { transport: SfuTransportInfo };
  'sfu:connect_transport': EmptyAck;
  'sfu:produce': { producer_id: string };
  'sfu:produce_data': { producer_id: string };
  'sfu:consume': { consumer: SfuConsumerInfo };
  'sfu:consume_data': { consumer: SfuDataConsumerInfo };
  'sfu:resume': EmptyAck;
  'sfu:close_producer': EmptyAck;
  'sfu:consumer_preferences': EmptyAck;
  'admin:kick': EmptyAck;
  'admin:lock': { locked: boolean };
  'admin:mute': EmptyAck;
}

export type ClientEventAck<E extends ClientEventName> = ClientEventAcks[E];

// Compile-time checks: a mismatch below fails `tsc` ("does not satisfy the constraint 'true'").
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Holds<T extends true> = T;
/** Every event with a schema has an ack type, and the reverse. */
export type AcksCoverEveryEvent = Holds<SameKeys<ClientEventAcks, ClientEventSchemas>>;
/** Grants name exactly the grants a token or role may carry. */
export type GrantsMatchSchema = Holds<SameKeys<Grants, z.output<typeof schemas.partialGrants>>>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** TrackSource names exactly the sources the schema accepts. */
export type TrackSourcesMatchSchema = Holds<Same<TrackSource, z.output<typeof schemas.trackSource>>>;

export type ClientToServerEvents = {
  [E in ClientEventName]: (payload: ClientEventRequest<E>, ack: Ack<ClientEventAck<E>>) => void;
};

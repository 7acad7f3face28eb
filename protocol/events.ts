/**
 * The Socket.IO wire protocol: typed event maps shared by the server and the SDK.
 * Every payload named here is schema-checked by the server (see schemas.ts) before a
 * handler runs. Acks are always the last argument.
 */
import type { WireError } from './errors.js';

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
}

export type GrantName = keyof Grants;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Metadata = { [key: string]: JsonValue };

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
}

/** A producer another peer has on the SFU (media or data). */
export interface SfuProducerInfo {
  peer_id: string;
  producer_id: string;
  kind: 'audio' | 'video' | 'data';
}

/** What a client needs to use the room's SFU router. */
export interface SfuInfo {
  router_rtp_capabilities: unknown;
  /** Producers already on the router (empty right after a promotion). */
  producers: SfuProducerInfo[];
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

export interface SessionDescription {
  type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  sdp?: string;
}

export interface IceCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

export interface SignalRequest {
  to: string;
  description?: SessionDescription;
  candidate?: IceCandidate;
}

export interface SignalMessage {
  from: string;
  description?: SessionDescription;
  candidate?: IceCandidate;
}

export type AckResponse<T extends object = object> = ({ ok: true } & T) | { ok: false; error: WireError };
export type Ack<T extends object = object> = (response: AckResponse<T>) => void;

export interface PeerLeftMessage {
  id: string;
  user_id: string;
  reason: string;
}

export interface ModeChangedMessage {
  mode: RoomMode;
  reason: string;
  /** Present when mode is sfu (also when the SFU router was rebuilt after a worker died). */
  sfu?: SfuInfo;
}

/** Quality of one link as the client measures it (getStats), sent periodically. */
export interface LinkQuality {
  /** The remote peer id, or "sfu". */
  peer_id: string;
  rtt_ms?: number;
  /** Fraction of inbound packets lost since the previous report, 0..1. */
  packet_loss?: number;
  bitrate_in_kbps?: number;
  bitrate_out_kbps?: number;
  /** Local candidate type of the selected pair: host, srflx, prflx or relay. */
  candidate_type?: string;
}

export interface StatsReport {
  links: LinkQuality[];
  /** Sent once after a migration: how long it took and the largest inbound video gap. */
  migration?: { to: RoomMode; duration_ms: number; media_gap_ms: number };
}

export interface ClientToServerEvents {
  join: (payload: { metadata?: Metadata } | undefined, ack: Ack<JoinResult>) => void;
  signal: (payload: SignalRequest, ack: Ack) => void;
  leave: (payload: object | undefined, ack: Ack) => void;
  update_metadata: (payload: { metadata: Metadata }, ack: Ack<{ self: PeerInfo }>) => void;
  stats: (payload: StatsReport, ack: Ack) => void;
  'sfu:create_transport': (payload: { direction: 'send' | 'recv' }, ack: Ack<{ transport: SfuTransportInfo }>) => void;
  'sfu:connect_transport': (payload: { transport_id: string; dtls_parameters: unknown }, ack: Ack) => void;
  'sfu:produce': (payload: { transport_id: string; kind: 'audio' | 'video'; rtp_parameters: unknown; app_data?: Metadata }, ack: Ack<{ producer_id: string }>) => void;
  'sfu:produce_data': (payload: { transport_id: string; sctp_stream_parameters: unknown; label?: string; protocol?: string }, ack: Ack<{ producer_id: string }>) => void;
  'sfu:consume': (payload: { transport_id: string; producer_id: string; rtp_capabilities: unknown }, ack: Ack<{ consumer: SfuConsumerInfo }>) => void;
  'sfu:consume_data': (payload: { transport_id: string; producer_id: string }, ack: Ack<{ consumer: SfuDataConsumerInfo }>) => void;
  'sfu:resume': (payload: { consumer_id: string }, ack: Ack) => void;
  'sfu:close_producer': (payload: { producer_id: string }, ack: Ack) => void;
  'admin:kick': (payload: { peer_id: string; reason?: string }, ack: Ack) => void;
  'admin:lock': (payload: { locked: boolean }, ack: Ack<{ locked: boolean }>) => void;
  'admin:mute': (payload: { peer_id: string; kind: 'audio' | 'video'; muted: boolean }, ack: Ack) => void;
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
  room_updated: (message: { config: RoomConfigInfo }) => void;
  error: (error: WireError) => void;
}

/** Names of the client->server events, for the server's handler registry. */
export type ClientEventName = keyof ClientToServerEvents;

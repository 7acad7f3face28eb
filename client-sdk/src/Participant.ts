import type { ConnectionQuality, Grants, Metadata, TrackSource } from '../../protocol/events.js';

/** A participant's connection quality; unknown until its client measured something. */
export type ParticipantQuality = ConnectionQuality | 'unknown';

/** A published track, as the room sees it: the publisher's track id, its kind and its source. */
export interface TrackPublication {
  /** The publisher's MediaStreamTrack.id (not the id of the track a subscriber receives). */
  trackId: string;
  kind: 'audio' | 'video';
  source: TrackSource;
  /** The publisher's MediaStream.id for it, when it published a stream. */
  streamId?: string;
}

/** Every source (protocol/schemas.ts TRACK_SOURCES; not imported, which would bring zod into the SDK). */
export const TRACK_SOURCES: readonly TrackSource[] = ['camera', 'microphone', 'screen', 'screen_audio'];

/** The source of a track nobody said anything about: camera for video, microphone for audio. */
export function defaultSource(kind: string): TrackSource {
  return kind === 'audio' ? 'microphone' : 'camera';
}

/** The source of a `kind` track published with the option `source`: its own kind's counterpart (screen's audio is screen_audio). */
export function sourceFor(kind: string, source: TrackSource | undefined): TrackSource {
  if (source === undefined) return defaultSource(kind);
  const screen = source === 'screen' || source === 'screen_audio';
  if (kind === 'audio') return screen ? 'screen_audio' : 'microphone';
  return screen ? 'screen' : 'camera';
}

export const notMuted = (): { audio: boolean; video: boolean } => ({ audio: false, video: false });

/** Another participant of the room. */
export class RemoteParticipant {
  /** Remote tracks by track id. */
  readonly tracks = new Map<string, MediaStreamTrack>();
  /** The tracks it announced (TrackPublished), by the publisher's track id. */
  readonly trackPublications = new Map<string, TrackPublication>();
  /** What each received track is (as TrackSubscribed said), by the received track's id. */
  readonly trackInfo = new Map<string, TrackPublication>();
  /** Whether it is among the active speakers (RoomEvent.ActiveSpeakersChanged). */
  isSpeaking = false;
  /** Its audio level as last measured while speaking, 0..1 (0 when not speaking). */
  audioLevel = 0;
  /** Its connection quality (RoomEvent.ConnectionQualityChanged). */
  connectionQuality: ParticipantQuality = 'unknown';

  constructor(
    /** Current connection id (changes when the participant reconnects). */
    public id: string,
    /** The token's subject: stable across reconnects. */
    readonly identity: string,
    public name: string,
    public metadata: Metadata,
    /** What a room admin muted of this participant (admin:mute). */
    public muted: { audio: boolean; video: boolean } = notMuted(),
    /** What the participant muted of its own (its camera or microphone off): TrackMuted/TrackUnmuted tell the changes. */
    public selfMuted: { audio: boolean; video: boolean } = notMuted(),
  ) {}

  /** The source of a track received from this participant (undefined: not one of its tracks). */
  sourceOf(track: MediaStreamTrack): TrackSource | undefined {
    return this.trackInfo.get(track.id)?.source;
  }
}

/** This client, as the room sees it. */
export interface LocalParticipant {
  id: string;
  identity: string;
  name: string;
  metadata: Metadata;
  grants: Grants;
  /** What a room admin muted of ours: those tracks are disabled until unmuted. */
  muted: { audio: boolean; video: boolean };
  /** What we turned off of our own (setCameraEnabled/setMicrophoneEnabled(false)): TrackMuted/TrackUnmuted tell the changes. */
  selfMuted: { audio: boolean; video: boolean };
  /** Our published tracks, by track id. */
  trackPublications: Map<string, TrackPublication>;
  /** Whether we are among the active speakers. */
  isSpeaking: boolean;
  /** Our microphone's level while speaking, 0..1 (0 when not speaking). */
  audioLevel: number;
  /** Our connection quality, from our own links' RTT, loss and jitter. */
  connectionQuality: ParticipantQuality;
}

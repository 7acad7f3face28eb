import type { Grants, Metadata } from '../../protocol/events.js';

export const notMuted = (): { audio: boolean; video: boolean } => ({ audio: false, video: false });

/** Another participant of the room. */
export class RemoteParticipant {
  /** Remote tracks by track id. */
  readonly tracks = new Map<string, MediaStreamTrack>();

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
}

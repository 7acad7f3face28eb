import type { ActiveSpeaker } from '../../protocol/events.js';

/**
 * The audio level (0..1, linear) at or above which a participant speaks: -50 dBov, the
 * threshold of the SFU's audio level observer (server/sfu/SfuRoom.ts SPEAKING_THRESHOLD_DBOV),
 * so a mesh and an SFU room call the same participants speakers.
 */
export const SPEAKING_LEVEL = 10 ** (-50 / 20);

/** How often a mesh room samples audio levels, ms. */
export const MESH_LEVEL_INTERVAL_MS = 300;

/**
 * A level sample's weight against the previous one: levels fall by half per sample at most,
 * so a pause between two words does not end a speaker.
 */
const DECAY = 0.5;

/** The speakers among smoothed levels, loudest first. */
export function speakersFromLevels(levels: ReadonlyMap<string, number>): ActiveSpeaker[] {
  return [...levels]
    .filter(([, level]) => level >= SPEAKING_LEVEL)
    .sort((a, b) => b[1] - a[1])
    .map(([peerId, level]) => ({ peer_id: peerId, level: Math.round(level * 1000) / 1000 }));
}

/** Smooths per-participant audio levels sampled in a mesh (a level falls by half per sample at most). */
export class LevelSmoother {
  private readonly levels = new Map<string, number>();

  /** Takes this sample's levels (participants absent from it are dropped) and returns the smoothed ones. */
  update(sample: ReadonlyMap<string, number>): Map<string, number> {
    for (const id of this.levels.keys()) if (!sample.has(id)) this.levels.delete(id);
    for (const [id, level] of sample) this.levels.set(id, Math.max(level, (this.levels.get(id) ?? 0) * DECAY));
    return new Map(this.levels);
  }

  clear(): void {
    this.levels.clear();
  }
}

/** Whether two speaker lists name the same participants in the same order. */
export function sameSpeakers(a: readonly ActiveSpeaker[], b: readonly ActiveSpeaker[]): boolean {
  return a.length === b.length && a.every((speaker, i) => speaker.peer_id === b[i]?.peer_id);
}

/**
 * The loudest audio level received on a mesh link (RTCRtpReceiver.getSynchronizationSources),
 * or 0, over the tracks `speech` accepts (a shared screen's audio is nobody speaking).
 */
export function receivedAudioLevel(pc: RTCPeerConnection, speech: (track: MediaStreamTrack) => boolean = () => true): number {
  let level = 0;
  for (const receiver of pc.getReceivers()) {
    if (receiver.track?.kind !== 'audio' || typeof receiver.getSynchronizationSources !== 'function' || !speech(receiver.track)) continue;
    for (const source of receiver.getSynchronizationSources()) level = Math.max(level, source.audioLevel ?? 0);
  }
  return level;
}

/**
 * The level of our own microphone as a connection sends it (getStats media-source audioLevel),
 * or 0, over the tracks `speech` accepts by id (media-source trackIdentifier).
 */
export async function sentAudioLevel(
  pc: { getStats(): Promise<RTCStatsReport> },
  speech: (trackId: string) => boolean = () => true,
): Promise<number> {
  let level = 0;
  (await pc.getStats()).forEach((stat: { type: string; kind?: string; audioLevel?: number; trackIdentifier?: string }) => {
    if (stat.type !== 'media-source' || stat.kind !== 'audio' || typeof stat.audioLevel !== 'number') return;
    if (stat.trackIdentifier === undefined || speech(stat.trackIdentifier)) level = Math.max(level, stat.audioLevel);
  });
  return level;
}

/** An active_speakers message as the server sends it (checked before use: the SDK trusts no payload's shape). */
export function parseSpeakers(message: unknown): ActiveSpeaker[] | null {
  const speakers = (message as { speakers?: unknown } | null)?.speakers;
  if (!Array.isArray(speakers)) return null;
  const valid = speakers.every(
    (s: { peer_id?: unknown; level?: unknown } | null) =>
      typeof s?.peer_id === 'string' && typeof s.level === 'number' && s.level >= 0 && s.level <= 1,
  );
  return valid ? (speakers as ActiveSpeaker[]) : null;
}

/** What the mesh sampler reads: the links by remote peer id, and who we are. */
export interface MeshLevelHost {
  /** Sampling happens only while this holds (connected, in a mesh). */
  active(): boolean;
  links(): ReadonlyMap<string, { readonly pc: RTCPeerConnection }>;
  localId(): string | undefined;
  /** Whether a remote participant's audio track is speech (its microphone, not a shared screen's audio). */
  remoteSpeech(peerId: string, track: MediaStreamTrack): boolean;
  /** Whether one of our audio tracks, by id, is speech. */
  localSpeech(trackId: string): boolean;
  /** The speakers of this sample, loudest first (our own id among them when we speak). */
  sampled(speakers: ActiveSpeaker[]): void;
}

/**
 * Active speakers in a mesh: every MESH_LEVEL_INTERVAL_MS, each link's received audio level
 * (the remote participant's) and our microphone's level as a link sends it, smoothed.
 */
export class MeshLevelSampler {
  private readonly smoother = new LevelSmoother();
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(private readonly host: MeshLevelHost) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sample(), MESH_LEVEL_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.smoother.clear();
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    if (!this.host.active()) {
      this.smoother.clear();
      return;
    }
    this.busy = true;
    try {
      const levels = new Map<string, number>();
      const links = [...this.host.links()];
      for (const [peerId, link] of links)
        levels.set(
          peerId,
          receivedAudioLevel(link.pc, (track) => this.host.remoteSpeech(peerId, track)),
        );
      const self = this.host.localId();
      const first = links[0]?.[1];
      if (self && first) levels.set(self, await sentAudioLevel(first.pc, (trackId) => this.host.localSpeech(trackId)).catch(() => 0));
      if (this.host.active()) this.host.sampled(speakersFromLevels(this.smoother.update(levels)));
    } finally {
      this.busy = false;
    }
  }
}

import type { InboundStat } from './inboundStats.js';
import type { VideoPathCounters } from './VideoGapMeter.js';

/** Inbound media from one participant (see Room.getParticipantStats). */
export interface ParticipantMediaStats {
  audioBytes: number;
  videoBytes: number;
  framesDecoded: number;
  framesByPath: { mesh: number; sfu: number };
  /**
   * Decoded-video counters per path, with the browser's inter-frame delay sums where it reports
   * them; `sfuRetired`: the SFU session left on the old node while the room moves (a path of its own).
   */
  videoByPath: { mesh: VideoPathCounters; sfu: VideoPathCounters; sfuRetired?: VideoPathCounters };
}

/** One participant's inbound stats per path: a list per report (the mesh link's, each SFU consumer's). */
export type InboundByPath = { mesh: InboundStat[][]; sfu: InboundStat[][]; sfuRetired?: InboundStat[][] };

/** Totals over both paths, and decoded-video counters per path. */
export function participantMediaStats(reports: InboundByPath): ParticipantMediaStats {
  const totals: ParticipantMediaStats = {
    audioBytes: 0,
    videoBytes: 0,
    framesDecoded: 0,
    framesByPath: { mesh: 0, sfu: 0 },
    videoByPath: { mesh: { frames: 0 }, sfu: { frames: 0 } },
  };
  if (reports.sfuRetired) totals.videoByPath.sfuRetired = { frames: 0 };
  for (const path of ['mesh', 'sfu', 'sfuRetired'] as const) {
    const video = totals.videoByPath[path];
    const stats = reports[path];
    if (!video || !stats) continue;
    for (const stat of stats.flat()) {
      if (stat.kind === 'audio') totals.audioBytes += stat.bytesReceived ?? 0;
      if (stat.kind !== 'video') continue;
      totals.videoBytes += stat.bytesReceived ?? 0;
      video.frames += stat.framesDecoded ?? 0;
      if (stat.totalInterFrameDelay !== undefined) {
        video.interFrameDelay = (video.interFrameDelay ?? 0) + stat.totalInterFrameDelay;
        video.squaredInterFrameDelay = (video.squaredInterFrameDelay ?? 0) + (stat.totalSquaredInterFrameDelay ?? 0);
      }
      if (stat.freezeCount !== undefined) {
        video.freezes = (video.freezes ?? 0) + stat.freezeCount;
        video.freezesDuration = (video.freezesDuration ?? 0) + (stat.totalFreezesDuration ?? 0);
      }
    }
    // framesByPath counts the current paths; the retired session's frames are in the total only.
    if (path !== 'sfuRetired') totals.framesByPath[path] = video.frames;
    totals.framesDecoded += video.frames;
  }
  return totals;
}

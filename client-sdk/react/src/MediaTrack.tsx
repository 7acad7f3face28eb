import { attachTrack, detachTrack } from '@switchboard/client';
import { useEffect, useRef, type AudioHTMLAttributes, type ReactElement, type VideoHTMLAttributes } from 'react';
import type { TrackReference } from './useTracks.js';

/** A MediaStreamTrack, or an entry of useTracks. */
export type TrackSource = MediaStreamTrack | TrackReference;

const trackOf = (source: TrackSource | null | undefined): MediaStreamTrack | null =>
  source ? ('participant' in source ? source.track : source) : null;

/**
 * Plays `track` in the element while mounted (attachTrack: on the SFU, adaptive stream sends
 * the layer its size needs), and detaches it on unmount or change.
 */
function useAttachedTrack<E extends HTMLVideoElement | HTMLAudioElement>(source: TrackSource | null | undefined) {
  const element = useRef<E>(null);
  const track = trackOf(source);
  useEffect(() => {
    const media = element.current;
    if (!media || !track) return;
    attachTrack(track, media);
    return () => {
      detachTrack(track, media);
    };
  }, [track]);
  return element;
}

/** Props of VideoTrack: the track, and any <video> attribute. */
export interface VideoTrackProps extends Omit<VideoHTMLAttributes<HTMLVideoElement>, 'src' | 'children'> {
  track: TrackSource | null | undefined;
}

/** A <video> that shows a video track (autoplaying, inline and muted unless told otherwise). */
export function VideoTrack({ track, autoPlay = true, playsInline = true, muted = true, ...rest }: VideoTrackProps): ReactElement {
  const element = useAttachedTrack<HTMLVideoElement>(track);
  return <video ref={element} autoPlay={autoPlay} playsInline={playsInline} muted={muted} {...rest} />;
}

/** Props of AudioTrack: the track, and any <audio> attribute. */
export interface AudioTrackProps extends Omit<AudioHTMLAttributes<HTMLAudioElement>, 'src' | 'children'> {
  track: TrackSource | null | undefined;
}

/** An <audio> that plays an audio track (autoplaying). */
export function AudioTrack({ track, autoPlay = true, ...rest }: AudioTrackProps): ReactElement {
  const element = useAttachedTrack<HTMLAudioElement>(track);
  return <audio ref={element} autoPlay={autoPlay} {...rest} />;
}

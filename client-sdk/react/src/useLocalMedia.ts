import { RoomEvent, type Room, type SwitchboardError } from '@switchboard/client';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useRoomOrContext } from './RoomProvider.js';

/** This client's camera and microphone, and their toggles. */
export interface LocalMedia {
  /** A camera track is published and not turned off (room.isCameraEnabled). */
  isCameraEnabled: boolean;
  isMicrophoneEnabled: boolean;
  /** The camera track, for a self-view (null before the first enable). */
  cameraTrack: MediaStreamTrack | null;
  microphoneTrack: MediaStreamTrack | null;
  /** A toggle is under way. */
  pending: boolean;
  /** The last toggle's failure (no device, no permission, canPublish missing), cleared by the next toggle. */
  error: SwitchboardError | null;
  /** room.setCameraEnabled: the first enable captures and publishes the camera; off/on mutes and unmutes it. */
  setCameraEnabled: (enabled: boolean) => Promise<void>;
  setMicrophoneEnabled: (enabled: boolean) => Promise<void>;
  toggleCamera: () => Promise<void>;
  toggleMicrophone: () => Promise<void>;
}

/** Events after which the local media state may read differently (TrackMuted/TrackUnmuted: also this client's own, from any caller). */
const EVENTS = [RoomEvent.ConnectionStateChanged, RoomEvent.MutedByAdmin, RoomEvent.TrackMuted, RoomEvent.TrackUnmuted] as const;

/**
 * Camera and microphone on/off through room.setCameraEnabled / setMicrophoneEnabled (the others
 * get TrackMuted/TrackUnmuted). The returned toggles resolve when the room applied the change;
 * a failure is in `error` (they do not reject).
 */
export function useLocalMedia(room?: Room): LocalMedia {
  const r = useRoomOrContext(room);
  // A capture (the first enable) has no event of its own: re-render after each toggle, and on the events above.
  const [, setVersion] = useState(0);
  const [pending, setPending] = useState(0);
  const [error, setError] = useState<SwitchboardError | null>(null);
  const refresh = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    for (const event of EVENTS) r.on(event, refresh);
    return () => {
      for (const event of EVENTS) r.off(event, refresh);
    };
  }, [r, refresh]);

  const apply = useCallback(
    async (operation: () => Promise<void>) => {
      setPending((n) => n + 1);
      setError(null);
      try {
        await operation();
      } catch (failure) {
        setError(failure as SwitchboardError);
      } finally {
        setPending((n) => n - 1);
        refresh();
      }
    },
    [refresh],
  );

  const setCameraEnabled = useCallback((enabled: boolean) => apply(() => r.setCameraEnabled(enabled)), [apply, r]);
  const setMicrophoneEnabled = useCallback((enabled: boolean) => apply(() => r.setMicrophoneEnabled(enabled)), [apply, r]);
  // What the toggles asked for last, while their operations run: a second click flips that, not the state before the first.
  const wanted = useRef<{ camera?: boolean; microphone?: boolean }>({});
  const toggle = useCallback(
    async (source: 'camera' | 'microphone') => {
      const current = source === 'camera' ? r.isCameraEnabled : r.isMicrophoneEnabled;
      const next = !(wanted.current[source] ?? current);
      wanted.current[source] = next;
      await apply(() => (source === 'camera' ? r.setCameraEnabled(next) : r.setMicrophoneEnabled(next)));
      if (wanted.current[source] === next) delete wanted.current[source];
    },
    [apply, r],
  );
  const toggleCamera = useCallback(() => toggle('camera'), [toggle]);
  const toggleMicrophone = useCallback(() => toggle('microphone'), [toggle]);

  return {
    isCameraEnabled: r.isCameraEnabled,
    isMicrophoneEnabled: r.isMicrophoneEnabled,
    cameraTrack: r.cameraTrack,
    microphoneTrack: r.microphoneTrack,
    pending: pending > 0,
    error,
    setCameraEnabled,
    setMicrophoneEnabled,
    toggleCamera,
    toggleMicrophone,
  };
}

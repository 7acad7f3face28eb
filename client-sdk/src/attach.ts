/**
 * Showing a track: attachTrack puts a MediaStreamTrack into a <video> or <audio> element (one
 * it creates when none is given, LiveKit's track.attach()), detachTrack takes it out again.
 * The SDK's tracks stay plain MediaStreamTracks; these helpers are what apps otherwise write
 * by hand (a MediaStream per element, autoplay, playsInline, muted local video).
 */

/** Where a track may be shown. */
export type MediaElement = HTMLVideoElement | HTMLAudioElement;

/** The elements each track is attached to. */
const attached = new WeakMap<MediaStreamTrack, Set<MediaElement>>();
/** Who follows where each track is shown (the SDK's adaptive stream), by track. */
const watchers = new WeakMap<MediaStreamTrack, Set<() => void>>();

/**
 * Calls `listener` whenever `track` is attached to or detached from an element (read the
 * elements with attachedElements); returns a function that stops it.
 */
export function watchAttachments(track: MediaStreamTrack, listener: () => void): () => void {
  let listeners = watchers.get(track);
  if (!listeners) watchers.set(track, (listeners = new Set()));
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function attachmentsChanged(track: MediaStreamTrack): void {
  for (const listener of [...(watchers.get(track) ?? [])]) listener();
}

/**
 * Shows `track` in `element` (a new <video> for video, <audio> for audio when absent) and
 * returns the element. The element's stream holds this track alone; other tracks of the same
 * kind already in it are replaced. A video element plays inline and muted (audio is the audio
 * element's job); playback starts at once where the page allows autoplay.
 */
export function attachTrack(track: MediaStreamTrack, element?: MediaElement): MediaElement {
  const target = element ?? (document.createElement(track.kind === 'video' ? 'video' : 'audio') as MediaElement);
  const current = target.srcObject instanceof MediaStream ? target.srcObject : null;
  const stream = current ?? new MediaStream();
  for (const other of stream.getTracks()) if (other.kind === track.kind && other !== track) stream.removeTrack(other);
  if (!stream.getTracks().includes(track)) stream.addTrack(track);
  if (target.srcObject !== stream) target.srcObject = stream;
  target.autoplay = true;
  if (target instanceof HTMLVideoElement) {
    target.playsInline = true;
    target.muted = true;
  }
  let elements = attached.get(track);
  if (!elements) attached.set(track, (elements = new Set()));
  const added = !elements.has(target);
  elements.add(target);
  void target.play?.()?.catch(() => undefined);
  if (added) attachmentsChanged(track);
  return target;
}

/**
 * Takes `track` out of `element`, or out of every element it was attached to when none is
 * given; returns the elements it left. An element left with no track has its source cleared.
 */
export function detachTrack(track: MediaStreamTrack, element?: MediaElement): MediaElement[] {
  const elements = attached.get(track);
  const from = element ? [element] : [...(elements ?? [])];
  for (const target of from) {
    const stream = target.srcObject instanceof MediaStream ? target.srcObject : null;
    if (stream?.getTracks().includes(track)) stream.removeTrack(track);
    if (stream && stream.getTracks().length === 0) target.srcObject = null;
    elements?.delete(target);
  }
  if (elements?.size === 0) attached.delete(track);
  if (from.length > 0) attachmentsChanged(track);
  return from;
}

/** The elements `track` is attached to now. */
export function attachedElements(track: MediaStreamTrack): MediaElement[] {
  return [...(attached.get(track) ?? [])];
}

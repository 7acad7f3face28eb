/**
 * True when an SDP would send audio or video: an active (port != 0, or bundle-only)
 * audio/video m-section whose direction is sendrecv or sendonly. A missing direction
 * attribute means sendrecv (RFC 4566 §6; RFC 8866 §6.7). Session-level direction applies to
 * sections that do not set their own.
 */
export function sdpSendsMedia(sdp: string): boolean {
  return sdpSentKinds(sdp).size > 0;
}

/** The media kinds (audio, video) an SDP would send, by the rules of sdpSendsMedia. */
export function sdpSentKinds(sdp: string): Set<'audio' | 'video'> {
  const kinds = new Set<'audio' | 'video'>();
  let sessionDirection = 'sendrecv';
  let inMedia = false;
  let kind: string | null = null;
  let active = false;
  let direction: string | null = null;

  const endSection = (): void => {
    if (inMedia && (kind === 'audio' || kind === 'video') && active && sends(direction ?? sessionDirection)) kinds.add(kind);
  };

  for (const rawLine of sdp.split('\n')) {
    const line = rawLine.trim();
    if (line.startsWith('m=')) {
      endSection();
      const [media, port] = line.slice(2).split(' ');
      inMedia = true;
      kind = media ?? null;
      active = port !== '0';
      direction = null;
    } else if (line === 'a=bundle-only') {
      active = true;
    } else if (line === 'a=sendrecv' || line === 'a=sendonly' || line === 'a=recvonly' || line === 'a=inactive') {
      if (inMedia) direction = line.slice(2);
      else sessionDirection = line.slice(2);
    }
  }
  endSection();
  return kinds;
}

function sends(direction: string): boolean {
  return direction === 'sendrecv' || direction === 'sendonly';
}

/**
 * True when an SDP would send audio or video: an active (port != 0, or bundle-only)
 * audio/video m-section whose direction is sendrecv or sendonly. A missing direction
 * attribute means sendrecv (RFC 4566 §6; RFC 8866 §6.7). Session-level direction applies to
 * sections that do not set their own.
 */
export function sdpSendsMedia(sdp: string): boolean {
  let sessionDirection = 'sendrecv';
  let inMedia = false;
  let isAv = false;
  let active = false;
  let direction: string | null = null;

  const sectionSends = (): boolean => inMedia && isAv && active && sends(direction ?? sessionDirection);

  for (const rawLine of sdp.split('\n')) {
    const line = rawLine.trim();
    if (line.startsWith('m=')) {
      if (sectionSends()) return true;
      const [kind, port] = line.slice(2).split(' ');
      inMedia = true;
      isAv = kind === 'audio' || kind === 'video';
      active = port !== '0';
      direction = null;
    } else if (line === 'a=bundle-only') {
      active = true;
    } else if (line === 'a=sendrecv' || line === 'a=sendonly' || line === 'a=recvonly' || line === 'a=inactive') {
      if (inMedia) direction = line.slice(2);
      else sessionDirection = line.slice(2);
    }
  }
  return sectionSends();
}

function sends(direction: string): boolean {
  return direction === 'sendrecv' || direction === 'sendonly';
}

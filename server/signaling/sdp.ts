/**
 * True when an SDP would send audio or video: an active (port != 0, or bundle-only)
 * audio/video m-section whose direction is sendrecv or sendonly. A missing direction
 * attribute means sendrecv (RFC 4566 §6; RFC 8866 §6.7).
 *
 * The receiving browser's parser decides what is sent, not this one, so where they could
 * differ this one errs towards "sends". A session-level direction is ignored (libwebrtc ignores
 * it: `a=inactive` above the first m= line would hide a section a browser takes media from).
 * A section is quiet only with an exact `a=recvonly` or `a=inactive` line (libwebrtc reads
 * `a=inactive` followed by a tab or a second CR as no direction, i.e. sendrecv) and no line
 * that starts like `a=sendrecv` or `a=sendonly` (in any case); media types are read in any case
 * (Firefox's parser does), and any `a=bundle-only...` line makes a port-0 section active
 * (libwebrtc accepts `a=bundle-only:x`).
 */
export function sdpSendsMedia(sdp: string): boolean {
  return sdpSentKinds(sdp).size > 0;
}

/** The media kinds (audio, video) an SDP would send, by the rules of sdpSendsMedia. */
export function sdpSentKinds(sdp: string): Set<'audio' | 'video'> {
  const kinds = new Set<'audio' | 'video'>();
  let inMedia = false;
  let kind: string | null = null;
  let active = false;
  let quiet = false;
  let sending = false;

  const endSection = (): void => {
    if (inMedia && (kind === 'audio' || kind === 'video') && active && (sending || !quiet)) kinds.add(kind);
  };

  for (const rawLine of sdp.split('\n')) {
    // What libwebrtc reads as the line: one trailing CR removed, nothing else.
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const loose = line.trim().toLowerCase();
    if (loose.startsWith('m=')) {
      endSection();
      const [media, port] = loose.slice(2).trim().split(/\s+/);
      inMedia = true;
      kind = media ?? null;
      active = port !== '0';
      quiet = false;
      sending = false;
    } else if (!inMedia) {
      continue;
    } else if (loose.startsWith('a=bundle-only')) {
      active = true;
    } else if (loose.startsWith('a=sendrecv') || loose.startsWith('a=sendonly')) {
      sending = true;
    } else if (line === 'a=recvonly' || line === 'a=inactive') {
      quiet = true;
    }
  }
  endSection();
  return kinds;
}

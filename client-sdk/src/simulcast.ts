/**
 * Simulcast on the SFU: a camera is sent as up to three VP8 encodings (quarter, half and full
 * resolution), each capped in bitrate, so the SFU can forward each subscriber the one its tile
 * and its downlink need. Mesh links send one encoding (a peer connection per subscriber already
 * adapts to that subscriber).
 */

/** One simulcast layer as mediasoup-client's produce() takes it (lowest first; it names them r0, r1, r2). */
export interface SimulcastEncoding {
  scaleResolutionDownBy: number;
  maxBitrate: number;
}

/**
 * Shorter sides from which a capture gets three layers (720p and up: 180p, 360p, 720p) or two
 * (360p up to 720p); below, one: Chromium sends no lower layer under these sizes anyway.
 */
const THREE_LAYERS_FROM = 540;
const TWO_LAYERS_FROM = 360;

/**
 * Bitrate caps by layer size (pixels): together the three layers of 720p stay under the SFU's
 * default SFU_MAX_INCOMING_BITRATE of 1.5 Mbit/s, so the sender's estimate can carry them all.
 */
function maxBitrateFor(pixels: number): number {
  if (pixels <= 320 * 240) return 100_000;
  if (pixels <= 640 * 480) return 300_000;
  if (pixels <= 1280 * 720) return 900_000;
  return 1_400_000;
}

/** The encodings of a camera captured at width x height: three, two, or none (a single plain encoding). */
export function simulcastEncodings(width: number, height: number): SimulcastEncoding[] | undefined {
  const shorter = Math.min(width, height);
  const layers = shorter >= THREE_LAYERS_FROM ? 3 : shorter >= TWO_LAYERS_FROM ? 2 : 1;
  if (layers === 1) return undefined;
  return Array.from({ length: layers }, (_, index) => {
    const scale = 2 ** (layers - 1 - index);
    return {
      scaleResolutionDownBy: scale,
      maxBitrate: maxBitrateFor(Math.round(width / scale) * Math.round(height / scale)),
    };
  });
}

/** The SFU session's parts that bringing it up uses (SfuSession implements them). */
export interface StartingSfuSession {
  start(): Promise<void>;
  produce(track: MediaStreamTrack): Promise<void>;
  startData(): Promise<void>;
  /** This client will create data producers. */
  readonly dataWanted: boolean;
  producerIds(): string[];
  dataProducerIds(): string[];
}

/**
 * Brings a new SFU session up: transports, then our media producers, then our data producers.
 * Peers handing over learn which producers to expect from us twice: the media ones as soon as
 * they exist (`dataProducers` null), so a peer receiving them lets us stop sending media on its
 * link long before the data producers (slow to set up) are there too; then the full list,
 * which they must all consume before they let the mesh go.
 */
export async function bringUpSfu(
  session: StartingSfuSession,
  localTracks: () => Iterable<MediaStreamTrack>,
  announce: (producers: string[], dataProducers: string[] | null) => void,
): Promise<void> {
  await session.start();
  // Video first: each produce is an SDP round of seconds on a busy page, and video is what peers
  // wait for before the hand-over (a stalled tile shows; audio goes on over the mesh until the
  // link closes).
  const tracks = [...localTracks()].sort((a, b) => Number(a.kind !== 'video') - Number(b.kind !== 'video'));
  for (const track of tracks) await session.produce(track);
  if (session.dataWanted) announce(session.producerIds(), null);
  await session.startData();
  announce(session.producerIds(), session.dataProducerIds());
}

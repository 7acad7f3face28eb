import type { RoomMode } from '../../protocol/events.js';
import { systemClock, type Cancel, type Clock } from './clock.js';
import { encodeControl, type DataPath, type Envelope, type HandOverKind } from './DataEnvelope.js';
import { isFlowing, type InboundStat } from './inboundStats.js';
import type { MigrationReport } from './MigrationMonitor.js';

/** A running hand-over takes a step this often. */
export const HAND_OVER_STEP_MS = 250;
/** A retired path closes this long after its last message, so the data in flight on it arrives. */
export const CLOSE_GRACE_MS = 300;

/** A mesh link as the hand-over drives it (PeerLink implements it). */
export interface HandOverLink {
  /** The remote side has gone: the reliable channel closed, or the connection failed or closed. */
  readonly dead: boolean;
  /** Connected, with the reliable channel open. */
  readonly established: boolean;
  send(text: string, reliable: boolean): void;
  /** Stops sending media on the link; data goes on. */
  stopMedia(): void;
  /** Sends our media on the link again. */
  resumeMedia(): void;
  /** The link's inbound-rtp stats. */
  inboundStats(): Promise<InboundStat[]>;
}

/** The room's mesh links and participants, by remote peer id. */
export interface HandOverLinks {
  get(peerId: string): HandOverLink | undefined;
  /** Peer ids of the current links. */
  peerIds(): string[];
  /** Peer ids of the remote participants. */
  participantIds(): string[];
  /** The link to a participant, built when there is none (`initiator`: this side offers). */
  open(peerId: string, initiator: boolean): HandOverLink | undefined;
  close(peerId: string): void;
}

/** Our SFU session as the hand-over drives it (SfuSession implements it). */
export interface HandOverSfu {
  /** Data sent now reaches every consumer (our reliable data producer is open). */
  readonly dataReady: boolean;
  /** Producer ids of one peer that we receive. */
  consumedFrom(peerId: string): Set<string>;
  /** Inbound stats of one peer's media consumers, one list per consumer (`shownOnly`: without the videos the app hides). */
  statsFrom(peerId: string, shownOnly: boolean): Promise<InboundStat[][]>;
  send(text: string, reliable: boolean): void;
  close(): void;
}

/** Measures one migration (MigrationMonitor). */
export interface MigrationMeasurement {
  finish(): Promise<MigrationReport>;
}

/** What the hand-over needs of the room besides its links. */
export interface HandOverHost {
  /** The room's mode, as the server last announced it. */
  mode(): RoomMode;
  /** Our peer id (of two peers building a link, the lower id offers). */
  selfId(): string;
  canPublishData(): boolean;
  /** Our SFU session, if there is one. */
  sfu(): HandOverSfu | null;
  /** Takes the SFU session away from the room (the mesh took over); the hand-over closes it after CLOSE_GRACE_MS. */
  takeSfu(): HandOverSfu | null;
  /** How long a migration may keep the old topology; read at each deadline. */
  timeoutMs(): number;
  measure(to: RoomMode): MigrationMeasurement;
  /** A migration's measurement is done (at the old topology's end, or when media gave up at the deadline). */
  reported(report: MigrationReport): void;
}

/**
 * Where this client's migration stands.
 * - `idle`: none runs.
 * - `to-sfu`: mesh to SFU; each link retires once both sides receive each other over the SFU.
 * - `to-sfu-overdue`: past the deadline of `to-sfu`; the links carry no more media, and each
 *   retires once both sides receive each other's data over the SFU, or at a second deadline.
 * - `to-mesh`: SFU to mesh; our data leaves the SFU (sfu-bye) once every peer receives us over
 *   the mesh, and the SFU closes once every peer's sfu-bye came.
 */
export type HandOverPhase = 'idle' | 'to-sfu' | 'to-sfu-overdue' | 'to-mesh';

type Migration = { phase: 'idle' } | { phase: Exclude<HandOverPhase, 'idle'>; cancelSteps: Cancel; cancelDeadline: Cancel };

/** Whether our data still goes over the SFU: `retired` once we sent our sfu-bye (or a move to the mesh ran out of time). */
export type SfuDataState = 'carrying' | 'retired';

/** To the SFU: the producers a peer announced over the mesh. */
interface Announcement {
  producers: string[];
  /** `producers` lists the media producers only (the full list, with the data producers, follows). */
  mediaOnly: boolean;
  /** The data producers among them (null until the full list came). */
  dataProducers: string[] | null;
}

/** One remote peer's part of a running migration: what it announced and the hand-shakes each way. */
interface PeerHandOver {
  announced: Announcement | null;
  readonly sent: Set<HandOverKind>;
  readonly received: Set<HandOverKind>;
}

const newPeer = (): PeerHandOver => ({ announced: null, sent: new Set(), received: new Set() });
/** The peer receives all of us on the new topology. */
const peerReceivesUs = (peer: PeerHandOver): boolean => peer.received.has('sfu-ready') || peer.received.has('mesh-ready');
/** The peer receives our data over the SFU. */
const peerReceivesOurData = (peer: PeerHandOver): boolean => peerReceivesUs(peer) || peer.received.has('sfu-data-ready');
/** We told the peer we receive all of it on the new topology. */
const weReceivePeer = (peer: PeerHandOver): boolean => peer.sent.has('sfu-ready') || peer.sent.has('mesh-ready');

/**
 * The make-before-break migration between mesh and SFU, in both directions: per peer, the
 * hand-shakes over the mesh link (see HandOverKind), the retiring of the old path once both
 * sides receive each other on the new one, and the deadline that ends a migration anyway.
 */
export class HandOver {
  private migration: Migration = { phase: 'idle' };
  /** Per remote peer id, while a migration runs. */
  private readonly peers = new Map<string, PeerHandOver>();
  private sfuData: SfuDataState = 'carrying';
  /** Peers that sent us sfu-bye (their last data over the SFU). */
  private readonly sfuByeFrom = new Set<string>();
  private measurement: MigrationMeasurement | null = null;
  /** The step in flight: steps wait on stats, and one never overlaps the next. */
  private stepping: Promise<void> | null = null;

  constructor(
    private readonly host: HandOverHost,
    private readonly links: HandOverLinks,
    private readonly clock: Clock = systemClock,
  ) {}

  get phase(): HandOverPhase {
    return this.migration.phase;
  }

  /** Peer ids whose hand-over has not completed. */
  get pendingPeers(): string[] {
    return [...this.peers.keys()];
  }

  /** The mesh link to this peer carries our data (it stops with our `bye` on it). */
  linkCarriesData(peerId: string): boolean {
    return !this.peers.get(peerId)?.sent.has('bye');
  }

  /** The SFU carries our data (it stops with our sfu-bye). */
  get sfuCarriesData(): boolean {
    return this.sfuData === 'carrying';
  }

  /**
   * The room went to the SFU: every established link hands over, a link still connecting (a
   * peer who joined just now) closes. `rebuild`: the SFU was rebuilt under a room already on
   * it, no mesh to migrate from.
   */
  toSfu(rebuild: boolean): void {
    this.peers.clear();
    for (const peerId of this.links.peerIds()) {
      if (this.links.get(peerId)?.established) this.peers.set(peerId, newPeer());
      else this.links.close(peerId);
    }
    this.start('sfu', rebuild);
  }

  /** The room went back to the mesh: a link to every participant, each handing over. */
  toMesh(): void {
    this.peers.clear();
    const selfId = this.host.selfId();
    for (const peerId of this.links.participantIds()) {
      this.peers.set(peerId, newPeer());
      // Both sides build the link at once; the lower id initiates, so exactly one offers. A link
      // still open from a promotion that turned back may have stopped its media: send it again.
      this.links.open(peerId, selfId < peerId)?.resumeMedia();
    }
    this.start('mesh', false);
  }

  /** A new SFU session: our data goes over the SFU, and no peer has said sfu-bye on it. */
  sfuStarted(): void {
    this.sfuData = 'carrying';
    this.sfuByeFrom.clear();
  }

  /** Tells every peer handing over which of our producers to expect on the SFU (`dataProducers` null: media only so far). */
  announce(producers: string[], dataProducers: string[] | null): void {
    const fields = dataProducers === null ? { p: producers, m: 1 } : { p: producers, dp: dataProducers };
    for (const peerId of this.peers.keys()) this.control(peerId, 'sfu-produced', fields);
  }

  /** A hand-shake from a peer, over the mesh or the SFU. */
  receive(peerId: string, envelope: Envelope, via: DataPath): void {
    const kind = envelope.c;
    if (kind === 'sfu-bye') {
      if (via === 'sfu') this.sfuByeFrom.add(peerId);
      return;
    }
    const peer = this.peers.get(peerId);
    if (!peer) return;
    if (kind === 'sfu-produced') {
      const mediaOnly = envelope.m === 1;
      peer.announced = {
        producers: Array.isArray(envelope.p) ? envelope.p.map(String) : [],
        mediaOnly,
        dataProducers: mediaOnly ? (peer.announced?.dataProducers ?? null) : Array.isArray(envelope.dp) ? envelope.dp.map(String) : [],
      };
    } else if (kind === 'sfu-media-ready') {
      // The peer gets our media over the SFU: one encoder less while everyone decodes twice.
      if (this.host.mode() === 'sfu') this.links.get(peerId)?.stopMedia();
    } else if (kind === 'sfu-data-ready' || kind === 'sfu-ready' || kind === 'mesh-ready' || kind === 'bye') {
      peer.received.add(kind);
    }
  }

  /** A participant left: nothing to hand over with it. */
  peerLeft(peerId: string): void {
    this.peers.delete(peerId);
    this.sfuByeFrom.delete(peerId);
  }

  /** Ends the running migration's steps and deadline (a step in flight finishes). */
  stop(): void {
    if (this.migration.phase !== 'idle') {
      this.migration.cancelSteps();
      this.migration.cancelDeadline();
    }
    this.migration = { phase: 'idle' };
  }

  /** Drops the running migration altogether (its links and SFU session are gone). */
  abort(): void {
    this.stop();
    this.peers.clear();
  }

  private start(to: RoomMode, rebuild: boolean): void {
    this.stop();
    this.measurement = this.host.measure(to);
    if (rebuild) return this.finish();
    this.migration = {
      phase: to === 'sfu' ? 'to-sfu' : 'to-mesh',
      cancelSteps: this.clock.repeat(HAND_OVER_STEP_MS, () => void this.step()),
      // Independent of the steps, so a step stuck on a slow getStats() cannot hold the old topology.
      cancelDeadline: this.clock.delay(this.host.timeoutMs(), () => this.deadlinePassed()),
    };
  }

  private async step(): Promise<void> {
    const { phase } = this.migration;
    if (this.stepping || phase === 'idle') return;
    this.stepping = phase === 'to-mesh' ? this.stepToMesh() : this.stepToSfu();
    try {
      await this.stepping;
    } finally {
      this.stepping = null;
    }
  }

  private async stepToSfu(): Promise<void> {
    const sfu = this.host.sfu();
    if (!sfu) return;
    for (const [peerId, peer] of this.peers) {
      const link = this.links.get(peerId);
      if (!link || link.dead) {
        // The peer closed this link (it had nothing to hand over): nothing to wait for.
        this.peers.delete(peerId);
        if (link) this.links.close(peerId);
        continue;
      }
      const dataProducers = peer.announced?.dataProducers;
      if (!peer.sent.has('sfu-data-ready') && dataProducers) {
        const consumed = sfu.consumedFrom(peerId);
        if (dataProducers.every((id) => consumed.has(id))) this.control(peerId, 'sfu-data-ready');
      }
      if (!weReceivePeer(peer) && peer.announced && (await this.receivingOverSfu(peerId, peer.announced.producers))) {
        if (!peer.sent.has('sfu-media-ready')) this.control(peerId, 'sfu-media-ready');
        if (peer.announced.mediaOnly === false) this.control(peerId, 'sfu-ready');
      }
      // The peer receives us over the SFU: no more mesh media (saves an encoder per peer while
      // everyone is busy decoding twice), then our last mesh data, then only the SFU. Past the
      // deadline the media is gone already and data is all that counts.
      const overdue = this.migration.phase === 'to-sfu-overdue';
      const peerReceives = peerReceivesUs(peer) || (overdue && peerReceivesOurData(peer));
      if (peerReceives && !peer.sent.has('bye') && (sfu.dataReady || !this.host.canPublishData())) {
        link.stopMedia();
        this.control(peerId, 'bye');
      }
      const weReceive = weReceivePeer(peer) || (overdue && peer.sent.has('sfu-data-ready'));
      if (weReceive && peer.sent.has('bye') && peer.received.has('bye')) {
        this.peers.delete(peerId);
        this.closeLinkLater(peerId);
      }
    }
    if (this.peers.size === 0) this.finish();
  }

  /** Every announced producer of the peer is consumed, and its media flows (not just negotiated). */
  private async receivingOverSfu(peerId: string, producers: string[]): Promise<boolean> {
    const sfu = this.host.sfu();
    if (!sfu) return false;
    const consumed = sfu.consumedFrom(peerId);
    if (!producers.every((id) => consumed.has(id))) return false;
    // Audio arriving, video decoding (bytes alone may still be waiting for the first key frame).
    // A video the app does not show is paused by the SFU: nothing of it will flow.
    return (await sfu.statsFrom(peerId, true)).every((consumerStats) => consumerStats.some(isFlowing));
  }

  private async stepToMesh(): Promise<void> {
    const sfu = this.host.sfu();
    for (const [peerId, peer] of this.peers) {
      const link = this.links.get(peerId);
      if (!link) {
        this.peers.delete(peerId);
        continue;
      }
      if (!weReceivePeer(peer) && (await this.receivingOverMesh(peerId, link))) this.control(peerId, 'mesh-ready');
    }
    const everyoneReady = [...this.peers.values()].every((peer) => weReceivePeer(peer) && peerReceivesUs(peer));
    if (everyoneReady && sfu && this.sfuData === 'carrying') {
      // Every peer receives us over the mesh: our last data over the SFU.
      this.sfuData = 'retired';
      if (this.host.canPublishData()) sfu.send(encodeControl('sfu-bye'), true);
    }
    const byesIn = [...this.peers.keys()].every((peerId) => this.sfuByeFrom.has(peerId) || !sfu?.consumedFrom(peerId).size);
    if (everyoneReady && this.sfuData === 'retired' && byesIn) {
      this.peers.clear();
      this.finish();
    }
  }

  /** The link is up and every media kind we get from the peer over the SFU also flows on it. */
  private async receivingOverMesh(peerId: string, link: HandOverLink): Promise<boolean> {
    if (!link.established) return false;
    const overSfu = (
      (await this.host
        .sfu()
        ?.statsFrom(peerId, true)
        .catch(() => [])) ?? []
    ).flat();
    const kinds = new Set(overSfu.flatMap((stat) => (stat.kind ? [stat.kind] : [])));
    if (kinds.size === 0) return true;
    const flowing = new Set((await link.inboundStats()).flatMap((stat) => (stat.kind && isFlowing(stat) ? [stat.kind] : [])));
    return [...kinds].every((kind) => flowing.has(kind));
  }

  /**
   * The migration ran out of time: close the old topology anyway (fallback). To the SFU in two
   * steps: first the links' media stops (the hand-over of media is over, its report is made)
   * while data stays on every link whose peer does not receive our data over the SFU yet, or
   * whose data we do not; a second deadline later the rest closes too. A page too starved to
   * decode video in time is usually also late to open its SFU data consumers, and closing the
   * link then loses the data in between.
   */
  private deadlinePassed(): void {
    const migration = this.migration;
    if (migration.phase === 'idle') return;
    if (migration.phase === 'to-sfu') {
      this.migration = {
        phase: 'to-sfu-overdue',
        cancelSteps: migration.cancelSteps,
        cancelDeadline: this.clock.delay(this.host.timeoutMs(), () => this.deadlinePassed()),
      };
      for (const peerId of this.peers.keys()) this.links.get(peerId)?.stopMedia();
      this.report();
      return;
    }
    if (migration.phase === 'to-sfu-overdue') {
      // Our last data on each link, so a peer still listening there knows nothing more comes.
      for (const [peerId, peer] of this.peers) {
        if (!peer.sent.has('bye')) this.control(peerId, 'bye');
        this.closeLinkLater(peerId);
      }
    } else {
      this.sfuData = 'retired';
    }
    this.peers.clear();
    this.finish();
  }

  private finish(): void {
    this.stop();
    // Leaving the SFU: close it after a grace so in-flight data on it arrives.
    if (this.host.mode() === 'mesh') {
      const session = this.host.takeSfu();
      if (session) this.clock.delay(CLOSE_GRACE_MS, () => session.close());
    }
    this.report();
  }

  /** Ends the migration's measurement (once): its report goes to the host. */
  private report(): void {
    const measurement = this.measurement;
    this.measurement = null;
    if (!measurement) return;
    void measurement.finish().then((report) => this.host.reported(report));
  }

  /** Closes a mesh link after the grace, so its last in-flight data arrives (unless the room went back to the mesh). */
  private closeLinkLater(peerId: string): void {
    this.clock.delay(CLOSE_GRACE_MS, () => {
      if (this.host.mode() === 'sfu') this.links.close(peerId);
    });
  }

  /** Sends a hand-shake to one peer over its mesh link, and records it as sent. */
  private control(peerId: string, kind: HandOverKind, fields: Partial<Envelope> = {}): void {
    this.peers.get(peerId)?.sent.add(kind);
    this.links.get(peerId)?.send(encodeControl(kind, fields), true);
  }
}

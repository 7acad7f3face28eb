import { expect } from 'chai';
import type { RoomMode } from '../../protocol/events.js';
import type { Envelope, HandOverKind } from '../../client-sdk/src/DataEnvelope.js';
import {
  CLOSE_GRACE_MS,
  HAND_OVER_STEP_MS,
  HandOver,
  type HandOverLink,
  type HandOverLinks,
  type HandOverSfu,
} from '../../client-sdk/src/HandOver.js';
import type { InboundStat } from '../../client-sdk/src/inboundStats.js';
import type { MigrationReport } from '../../client-sdk/src/MigrationMonitor.js';
import { FakeClock, settle } from './fakeClock.js';

const video = (framesDecoded: number): InboundStat => ({
  type: 'inbound-rtp',
  kind: 'video',
  framesDecoded,
  bytesReceived: framesDecoded * 1000,
});

class FakeLink implements HandOverLink {
  dead = false;
  established = true;
  inbound: InboundStat[] = [];
  mediaStops = 0;
  mediaResumes = 0;
  readonly sent: Envelope[] = [];

  constructor(readonly initiator: boolean | null = null) {}

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Envelope);
  }

  stopMedia(): void {
    this.mediaStops++;
  }

  resumeMedia(): void {
    this.mediaResumes++;
  }

  async inboundStats(): Promise<InboundStat[]> {
    return this.inbound;
  }

  /** The hand-shakes sent on this link, in order. */
  get controls(): string[] {
    return this.sent.map((envelope) => String(envelope.c));
  }
}

class FakeLinks implements HandOverLinks {
  readonly links = new Map<string, FakeLink>();
  readonly closed: string[] = [];
  participants: string[] = [];

  get(peerId: string): FakeLink | undefined {
    return this.links.get(peerId);
  }

  peerIds(): string[] {
    return [...this.links.keys()];
  }

  participantIds(): string[] {
    return this.participants;
  }

  open(peerId: string, initiator: boolean): FakeLink {
    let link = this.links.get(peerId);
    if (!link) {
      link = new FakeLink(initiator);
      this.links.set(peerId, link);
    }
    return link;
  }

  close(peerId: string): void {
    if (this.links.delete(peerId)) this.closed.push(peerId);
  }
}

class FakeSfu implements HandOverSfu {
  dataReady = true;
  closed = false;
  readonly consumed = new Map<string, Set<string>>();
  readonly stats = new Map<string, InboundStat[][]>();
  readonly sent: Envelope[] = [];

  consumedFrom(peerId: string): Set<string> {
    return this.consumed.get(peerId) ?? new Set();
  }

  async statsFrom(peerId: string): Promise<InboundStat[][]> {
    return this.stats.get(peerId) ?? [];
  }

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Envelope);
  }

  close(): void {
    this.closed = true;
  }
}

/** A hand-over driven by fakes: a room in `mode`, links, an SFU session, and the reports it made. */
function setUp(mode: RoomMode, timeoutMs = 30_000) {
  const clock = new FakeClock();
  const links = new FakeLinks();
  const sfu = new FakeSfu();
  const room = { mode, sfu: sfu as FakeSfu | null };
  const measured: RoomMode[] = [];
  const reports: MigrationReport[] = [];
  const handOver = new HandOver(
    {
      mode: () => room.mode,
      selfId: () => 'me',
      canPublishData: () => true,
      sfu: () => room.sfu,
      takeSfu: () => {
        const session = room.sfu;
        room.sfu = null;
        return session;
      },
      timeoutMs: () => timeoutMs,
      measure: (to) => {
        measured.push(to);
        const report: () => MigrationReport = () => ({
          to,
          durationMs: clock.now(),
          mediaGapMs: 0,
          mediaGapFrom: '',
          mediaGapOf: '',
          freezes: { count: 0, totalMs: 0, longestSingleMs: 0 },
          freezesByPath: {},
        });
        return { finish: async () => report() };
      },
      reported: (report) => reports.push(report),
    },
    links,
    clock,
  );
  /** A hand-shake from a peer. */
  const from = (peerId: string, kind: HandOverKind, fields: Partial<Envelope> = {}, via: 'mesh' | 'sfu' = 'mesh') =>
    handOver.receive(peerId, { c: kind, ...fields }, via);
  return { clock, links, sfu, room, handOver, measured, reports, from };
}

describe('HandOver (fake links and SFU session, fake clock)', () => {
  it("to the SFU: hand-shakes both ways, then our bye, the peer's bye, the link closes after the grace and the migration is reported", async () => {
    const { clock, links, sfu, handOver, reports, from } = setUp('sfu');
    const b = links.open('b', true);
    const connecting = links.open('c', true);
    connecting.established = false;
    handOver.toSfu(false);
    expect(handOver.phase).to.equal('to-sfu');
    expect(links.closed, 'a link still connecting has nothing to hand over').to.deep.equal(['c']);
    expect(handOver.pendingPeers).to.deep.equal(['b']);

    // Our producers, media first, then all with the data ones.
    handOver.announce(['m1'], null);
    handOver.announce(['m1', 'd1'], ['d1']);
    expect(b.sent).to.deep.equal([
      { c: 'sfu-produced', p: ['m1'], m: 1 },
      { c: 'sfu-produced', p: ['m1', 'd1'], dp: ['d1'] },
    ]);

    // The peer's producers: consumed, and its video decodes over the SFU.
    from('b', 'sfu-produced', { p: ['bm', 'bd'], dp: ['bd'] });
    sfu.consumed.set('b', new Set(['bm', 'bd']));
    sfu.stats.set('b', [[video(12)]]);
    await clock.advance(HAND_OVER_STEP_MS);
    expect(b.controls.slice(2)).to.deep.equal(['sfu-data-ready', 'sfu-media-ready', 'sfu-ready']);
    expect(b.mediaStops, 'the peer has not said it receives us').to.equal(0);
    expect(handOver.linkCarriesData('b')).to.equal(true);

    from('b', 'sfu-ready');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(b.controls.at(-1)).to.equal('bye');
    expect(b.mediaStops).to.equal(1);
    expect(handOver.linkCarriesData('b'), 'after our bye the link carries no more data').to.equal(false);
    expect(handOver.phase).to.equal('to-sfu');
    expect(reports).to.have.length(0);
    await clock.advance(2 * HAND_OVER_STEP_MS);
    expect(
      b.controls.filter((kind) => kind === 'bye'),
      "one bye, waiting for the peer's",
    ).to.have.length(1);
    expect(b.mediaStops).to.equal(1);

    from('b', 'bye');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('idle');
    expect(reports.map((r) => r.to)).to.deep.equal(['sfu']);
    expect(links.closed, 'closed only after the grace').to.deep.equal(['c']);
    await clock.advance(CLOSE_GRACE_MS);
    expect(links.closed).to.deep.equal(['c', 'b']);
    expect(sfu.closed, 'the SFU stays').to.equal(false);
    expect(clock.pending, 'no timer left').to.equal(0);
  });

  it('to the SFU, peer never confirms: at the deadline the media stops and the migration is reported, the link stays for data; at the second deadline our bye goes and the link closes', async () => {
    const timeoutMs = 2000;
    const { clock, links, handOver, reports, measured } = setUp('sfu', timeoutMs);
    const b = links.open('b', true);
    handOver.toSfu(false);

    await clock.advance(timeoutMs - 1);
    expect(handOver.phase).to.equal('to-sfu');
    expect(b.mediaStops).to.equal(0);

    await clock.advance(1);
    expect(handOver.phase).to.equal('to-sfu-overdue');
    expect(b.mediaStops, 'no more media on the link').to.equal(1);
    expect(
      reports.map((r) => r.to),
      'the media hand-over is over: reported',
    ).to.deep.equal(['sfu']);
    expect(reports[0]?.durationMs).to.equal(timeoutMs);
    expect(handOver.linkCarriesData('b'), 'data still goes on the link').to.equal(true);
    expect(b.controls).to.not.include('bye');

    await clock.advance(timeoutMs - 1);
    expect(handOver.phase).to.equal('to-sfu-overdue');
    expect(links.closed).to.deep.equal([]);

    await clock.advance(1);
    expect(handOver.phase).to.equal('idle');
    expect(b.controls.at(-1), 'our last data on the link').to.equal('bye');
    expect(reports, 'reported once').to.have.length(1);
    expect(measured).to.deep.equal(['sfu']);
    await clock.advance(CLOSE_GRACE_MS);
    expect(links.closed).to.deep.equal(['b']);
    expect(clock.pending).to.equal(0);
  });

  it("to the SFU past the deadline: a link retires once both sides receive each other's data over the SFU, before the second deadline", async () => {
    const timeoutMs = 2000;
    const { clock, links, sfu, handOver, from } = setUp('sfu', timeoutMs);
    const b = links.open('b', true);
    handOver.toSfu(false);
    // The peer's data producer is consumed, its video never decodes over the SFU.
    from('b', 'sfu-produced', { p: ['bm', 'bd'], dp: ['bd'] });
    sfu.consumed.set('b', new Set(['bm', 'bd']));
    sfu.stats.set('b', [[video(0)]]);
    from('b', 'sfu-data-ready');
    await clock.advance(timeoutMs - HAND_OVER_STEP_MS);
    expect(b.controls).to.deep.equal(['sfu-data-ready']);

    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('to-sfu-overdue');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(b.controls, 'past the deadline, data is all that counts').to.deep.equal(['sfu-data-ready', 'bye']);
    from('b', 'bye');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('idle');
    await clock.advance(CLOSE_GRACE_MS);
    expect(links.closed).to.deep.equal(['b']);
  });

  it("to the mesh: mesh-ready both ways, our sfu-bye, the peer's sfu-bye over the SFU; the SFU closes after the grace", async () => {
    const { clock, links, sfu, room, handOver, reports, from } = setUp('mesh');
    links.participants = ['b', 'z'];
    sfu.stats.set('b', [[video(30)]]);
    sfu.consumed.set('b', new Set(['bm']));
    handOver.toMesh();
    const b = links.get('b') as FakeLink;
    const z = links.get('z') as FakeLink;
    expect([b.initiator, z.initiator], 'the lower peer id offers').to.deep.equal([false, true]);
    expect(b.mediaResumes).to.equal(1);
    b.inbound = [video(5)];

    await clock.advance(HAND_OVER_STEP_MS);
    expect(b.controls).to.deep.equal(['mesh-ready']);
    expect(z.controls, 'nothing comes from z over the SFU: its link is enough').to.deep.equal(['mesh-ready']);
    expect(sfu.sent, 'the peers do not receive us over the mesh yet').to.deep.equal([]);

    from('b', 'mesh-ready');
    from('z', 'mesh-ready');
    // An sfu-bye that comes over the mesh is not the peer's last data on the SFU.
    from('b', 'sfu-bye', {}, 'mesh');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(sfu.sent).to.deep.equal([{ c: 'sfu-bye' }]);
    expect(handOver.sfuCarriesData).to.equal(false);
    expect(handOver.phase, "b's last data over the SFU has not come").to.equal('to-mesh');

    from('b', 'sfu-bye', {}, 'sfu');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('idle');
    expect(room.sfu, 'the room left the SFU').to.equal(null);
    expect(sfu.closed).to.equal(false);
    await clock.advance(CLOSE_GRACE_MS);
    expect(sfu.closed).to.equal(true);
    expect(reports.map((r) => r.to)).to.deep.equal(['mesh']);
    expect(links.closed, 'the mesh stays').to.deep.equal([]);
  });

  it('to the mesh, links never come up: at the deadline our data leaves the SFU without an sfu-bye, the SFU closes and the migration is reported', async () => {
    const timeoutMs = 1500;
    const { clock, links, sfu, room, handOver, reports } = setUp('mesh', timeoutMs);
    links.participants = ['b'];
    handOver.toMesh();
    (links.get('b') as FakeLink).established = false;

    await clock.advance(timeoutMs - 1);
    expect(handOver.phase).to.equal('to-mesh');
    expect(handOver.sfuCarriesData).to.equal(true);
    expect(reports).to.have.length(0);

    await clock.advance(1);
    expect(handOver.phase).to.equal('idle');
    expect(handOver.sfuCarriesData).to.equal(false);
    expect(sfu.sent).to.deep.equal([]);
    expect(room.sfu).to.equal(null);
    expect(reports.map((r) => r.to)).to.deep.equal(['mesh']);
    await clock.advance(CLOSE_GRACE_MS);
    expect(sfu.closed).to.equal(true);
    expect(clock.pending).to.equal(0);
  });

  it('an SFU rebuilt under a room already on it: no hand-over, the migration ends and is reported at once', async () => {
    const { clock, links, handOver, reports } = setUp('sfu');
    links.open('b', true);
    handOver.toSfu(true);
    expect(handOver.phase).to.equal('idle');
    await settle();
    expect(reports.map((r) => r.to)).to.deep.equal(['sfu']);
    expect(clock.pending).to.equal(0);
  });

  it('a link due to close after the grace stays when the room went back to the mesh meanwhile', async () => {
    const { clock, links, room, handOver, from } = setUp('sfu');
    links.open('b', true);
    handOver.toSfu(false);
    from('b', 'sfu-produced', { p: [], dp: [] });
    from('b', 'sfu-ready');
    from('b', 'bye');
    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('idle');
    room.mode = 'mesh';
    await clock.advance(CLOSE_GRACE_MS);
    expect(links.closed).to.deep.equal([]);
  });

  it('a peer whose link died has nothing to wait for: the migration ends without it', async () => {
    const { clock, links, handOver, reports } = setUp('sfu');
    const b = links.open('b', true);
    handOver.toSfu(false);
    b.dead = true;
    await clock.advance(HAND_OVER_STEP_MS);
    expect(handOver.phase).to.equal('idle');
    expect(links.closed).to.deep.equal(['b']);
    expect(reports).to.have.length(1);
  });
});

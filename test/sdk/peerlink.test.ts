import { expect } from 'chai';
import type { IceCandidate, SessionDescription } from '../../protocol/events.js';
import { PeerLink, sdpFingerprint } from '../../client-sdk/src/PeerLink.js';
import { waitFor } from '../helpers/server.js';
import { withoutCandidates, WrtcPeerConnection } from '../helpers/wrtc.js';

type Signal = { description?: SessionDescription; candidate?: IceCandidate };

/**
 * Two real PeerLinks (@roamhq/wrtc) wired back to back, with a signal path the test controls:
 * `drop` decides which signals never arrive.
 */
function linkPair(drop: (from: 'a' | 'b', signal: Signal) => boolean, rewrite: (signal: Signal) => Signal = (signal) => signal) {
  /** What each side received. */
  const received: Record<'a' | 'b', string[]> = { a: [], b: [] };
  const errors: unknown[] = [];
  const links: Partial<Record<'a' | 'b', PeerLink>> = {};
  const make = (self: 'a' | 'b', other: 'a' | 'b', initiator: boolean) =>
    new PeerLink({
      remoteId: other,
      polite: !initiator,
      initiator,
      RTCPeerConnection: WrtcPeerConnection,
      configuration: { iceServers: [] },
      sendSignal: async (signal) => {
        if (drop(self, signal)) return;
        const delivered = rewrite(signal);
        setTimeout(() => links[other]?.handleSignal(delivered), 5);
      },
      onTrack: () => undefined,
      onMessage: (data) => received[self].push(data as string),
      onStateChange: () => undefined,
      onError: (error) => errors.push(error),
      negotiationRetryMs: 500,
    });
  links.a = make('a', 'b', true);
  links.b = make('b', 'a', false);
  return { a: links.a, b: links.b, received, errors };
}

describe('PeerLink negotiation (@roamhq/wrtc)', function () {
  this.timeout(20000);
  const open: PeerLink[] = [];
  afterEach(() => {
    for (const link of open.splice(0)) link.close();
  });

  it('connects when the initiator offer is lost: the initiator sends it again', async () => {
    let offersDropped = 0;
    const { a, b, received, errors } = linkPair((from, signal) => {
      if (from === 'a' && signal.description?.type === 'offer' && offersDropped === 0) {
        offersDropped++;
        return true;
      }
      return false;
    });
    open.push(a, b);
    a.send('over the reliable channel', true);
    await waitFor(() => received.b.length === 1, 15000, 'message after a lost offer');
    expect(offersDropped).to.equal(1);
    expect(received.b).to.deep.equal(['over the reliable channel']);
    expect(a.counters.renegotiations).to.be.greaterThan(0);
    expect(a.counters.offersSent).to.be.greaterThan(1);
    expect(errors).to.deep.equal([]);
  });

  it('delivers every reliable message sent from the start, both ways, in order: those that waited for the channel go first', async () => {
    // Each side sends 1, 2, 3, ... every 2 ms from before the link exists. The answering side
    // gets its channel from the peer, sometimes already open (no open event follows), and a
    // channel can report open before its open event ran: either way what waited must go first.
    const { a, b, received, errors } = linkPair(() => false);
    open.push(a, b);
    const count = 150;
    let sent = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        sent += 1;
        a.send(String(sent), true);
        b.send(String(sent), true);
        if (sent === count) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    const all = Array.from({ length: count }, (_, i) => String(i + 1));
    await waitFor(() => received.a.length >= count && received.b.length >= count, 15000, 'every message on both sides').catch(
      (error: unknown) => {
        console.log(`      a got ${received.a.length} (first ${received.a[0]}), b got ${received.b.length} (first ${received.b[0]})`);
        throw error;
      },
    );
    expect(received.b, 'a -> b').to.deep.equal(all);
    expect(received.a, 'b -> a').to.deep.equal(all);
    expect(errors).to.deep.equal([]);
  });

  it('connects when negotiationneeded never fires on the initiator: the retry timer negotiates', async () => {
    const { a, b, received, errors } = linkPair(() => false);
    a.pc.onnegotiationneeded = null; // the event is queued, not yet handled: it is never handled now
    open.push(a, b);
    a.send('after a missed negotiationneeded', true);
    await waitFor(() => received.b.length === 1, 15000, 'message through the retry');
    expect(a.pc.connectionState).to.equal('connected');
    expect(a.counters.renegotiations + b.counters.renegotiations).to.be.greaterThan(0);
    expect(received.b).to.deep.equal(['after a missed negotiationneeded']);
    expect(errors).to.deep.equal([]);
  });

  /** A pair with nothing dropped, once both reliable channels are open. */
  const openPair = async () => {
    const pair = linkPair(() => false);
    open.push(pair.a, pair.b);
    await waitFor(() => pair.a.reliableOpen && pair.b.reliableOpen, 15000, 'channels open');
    return pair;
  };

  it('a negotiated link stops its retry timer and answers each offer once', async () => {
    const { a, b, errors } = await openPair();
    await new Promise((r) => setTimeout(r, 1500)); // three retry periods
    expect(a.counters.renegotiations).to.equal(0);
    expect(b.counters.renegotiations).to.equal(0);
    expect(b.counters.answersSent).to.equal(a.counters.offersSent);
    expect(errors).to.deep.equal([]);
  });

  it('restarts ICE when a negotiated link never starts ICE (every candidate of the first generation lost)', async () => {
    // Until a side restarts ICE, no candidate reaches the other: neither trickled nor inside a description.
    let restarted = false;
    const { a, b, received, errors } = linkPair(
      (_from, signal) => !restarted && signal.candidate !== undefined,
      (signal) =>
        restarted || !signal.description
          ? signal
          : { description: { ...signal.description, sdp: withoutCandidates(signal.description.sdp) } },
    );
    open.push(a, b);
    const watch = setInterval(() => {
      restarted ||= a.counters.iceRestarts + b.counters.iceRestarts > 0;
    }, 20);
    try {
      // Negotiated, and ICE stays new without candidates.
      await waitFor(
        () => a.pc.signalingState === 'stable' && a.pc.remoteDescription !== null && b.pc.remoteDescription !== null,
        10000,
        'negotiated',
      );
      expect(a.pc.iceConnectionState).to.equal('new');
      a.send('after an ICE restart', true);
      await waitFor(() => received.b.length === 1, 15000, 'message after the ICE restart');
    } finally {
      clearInterval(watch);
    }
    expect(restarted).to.equal(true);
    expect(a.pc.connectionState).to.equal('connected');
    expect(received.b).to.deep.equal(['after an ICE restart']);
    expect(errors).to.deep.equal([]);
  });

  it('drops an answer to an earlier offer that arrives while a newer offer waits, and applies the right one', async () => {
    const answers: Signal[] = [];
    let hold = false;
    const held: Signal[] = [];
    const { a, b, errors } = linkPair((from, signal) => {
      if (from !== 'b' || signal.description?.type !== 'answer') return false;
      answers.push(signal);
      if (hold) held.push(signal);
      return hold;
    });
    open.push(a, b);
    await waitFor(() => a.reliableOpen && b.reliableOpen, 15000, 'channels open');
    const first = answers[0] as Signal;
    // The link renegotiates (a new m-section); its answer is held back.
    hold = true;
    a.pc.addTransceiver('audio');
    await waitFor(() => held.length === 1 && a.pc.signalingState === 'have-local-offer', 10000, 'the renegotiation answered');
    // The first answer arrives once more (a repeated offer answered twice): it answers another offer.
    a.handleSignal(first);
    await waitFor(() => a.counters.staleAnswers === 1, 5000, 'the stale answer dropped');
    expect(a.pc.signalingState).to.equal('have-local-offer');
    hold = false;
    a.handleSignal(held[0] as Signal);
    await waitFor(() => a.pc.signalingState === 'stable', 5000, 'the right answer applied');
    expect(a.pc.getTransceivers().map((t) => t.mid)).to.deep.equal(b.pc.getTransceivers().map((t) => t.mid));
    expect(a.counters.staleAnswers).to.equal(1);
    expect(errors).to.deep.equal([]);
  });

  it('sends an unanswered renegotiation offer again (its answer lost)', async () => {
    let lost = 0;
    let dropNext = false;
    const { a, b, errors } = linkPair((from, signal) => {
      if (!dropNext || from !== 'b' || signal.description?.type !== 'answer') return false;
      dropNext = false;
      lost++;
      return true;
    });
    open.push(a, b);
    await waitFor(() => a.reliableOpen && b.reliableOpen, 15000, 'channels open');
    dropNext = true;
    a.pc.addTransceiver('video');
    await waitFor(() => lost === 1, 10000, 'the answer lost');
    expect(a.pc.signalingState).to.equal('have-local-offer');
    // Two retry periods (500 ms here) later the offer goes again, and its answer arrives.
    await waitFor(() => a.pc.signalingState === 'stable', 10000, 'the offer repeated and answered');
    expect(a.counters.offersRepeated).to.equal(1);
    expect(a.pc.getTransceivers().map((t) => t.mid)).to.deep.equal(b.pc.getTransceivers().map((t) => t.mid));
    expect(errors).to.deep.equal([]);
  });

  it('tells an offer of a replacing connection (other DTLS certificate) from a renegotiation that adds m-sections', async () => {
    const { a, b, errors } = await openPair();
    // The same connection, more m-sections (each repeats the fingerprint): not a new connection.
    a.pc.addTransceiver('audio');
    a.pc.addTransceiver('video');
    const renegotiation = await a.pc.createOffer();
    expect((renegotiation.sdp?.match(/^m=/gm) ?? []).length).to.be.greaterThan((b.pc.remoteDescription?.sdp?.match(/^m=/gm) ?? []).length);
    expect(sdpFingerprint(renegotiation.sdp)).to.equal(sdpFingerprint(b.pc.remoteDescription?.sdp));
    expect(b.isFromNewConnection({ type: 'offer', sdp: renegotiation.sdp ?? '' })).to.equal(false);
    // Another connection: a new certificate.
    const other = new WrtcPeerConnection();
    other.createDataChannel('reliable');
    const replacing = await other.createOffer();
    other.close();
    expect(b.isFromNewConnection({ type: 'offer', sdp: replacing.sdp ?? '' })).to.equal(true);
    // Answers never count (they answer our own offers).
    expect(b.isFromNewConnection({ type: 'answer', sdp: replacing.sdp ?? '' })).to.equal(false);
    expect(errors).to.deep.equal([]);
  });
});

import { expect } from 'chai';
import { linkQuality, meanOpinionScore, participantQuality, QUALITY_THRESHOLDS } from '../../protocol/connectionQuality.js';
import {
  LevelSmoother,
  MeshLevelSampler,
  parseSpeakers,
  sameSpeakers,
  speakersFromLevels,
  SPEAKING_LEVEL,
} from '../../client-sdk/src/ActiveSpeakers.js';

describe('connection quality: the MOS-like score and its levels', () => {
  it('scores a clean LAN link about 4.4 and lowers the score with RTT, jitter and loss', () => {
    const clean = meanOpinionScore({ rtt_ms: 20, packet_loss: 0, jitter_ms: 2 }) ?? 0;
    expect(clean).to.be.within(4.35, 4.45);
    const slower = meanOpinionScore({ rtt_ms: 600, packet_loss: 0, jitter_ms: 2 }) ?? 0;
    const jittery = meanOpinionScore({ rtt_ms: 20, packet_loss: 0, jitter_ms: 80 }) ?? 0;
    const lossy = meanOpinionScore({ rtt_ms: 20, packet_loss: 0.05, jitter_ms: 2 }) ?? 0;
    for (const worse of [slower, jittery, lossy]) expect(worse).to.be.below(clean);
    expect(meanOpinionScore({ rtt_ms: 20, packet_loss: 1 })).to.equal(1);
  });

  it('maps scores to excellent, good and poor at the documented thresholds', () => {
    expect(QUALITY_THRESHOLDS).to.deep.equal({ excellent: 4.1, good: 3.6, lostLoss: 0.5 });
    expect(linkQuality({ rtt_ms: 20, packet_loss: 0, jitter_ms: 2 })).to.equal('excellent');
    expect(linkQuality({ rtt_ms: 100, packet_loss: 0.02, jitter_ms: 5 }), '2% loss, 100 ms').to.equal('excellent');
    expect(linkQuality({ rtt_ms: 400, packet_loss: 0 }), '400 ms RTT').to.equal('excellent');
    expect(linkQuality({ rtt_ms: 50, packet_loss: 0.05, jitter_ms: 5 }), '5% loss').to.equal('good');
    expect(linkQuality({ rtt_ms: 600, packet_loss: 0, jitter_ms: 10 }), '600 ms RTT').to.equal('good');
    expect(linkQuality({ rtt_ms: 50, packet_loss: 0.1, jitter_ms: 5 }), '10% loss').to.equal('poor');
    expect(linkQuality({ rtt_ms: 1000, packet_loss: 0 }), '1 s RTT').to.equal('poor');
    expect(linkQuality({ rtt_ms: 20, packet_loss: 0.3, jitter_ms: 20 }), '30% loss').to.equal('poor');
  });

  it('calls half the packets lost a lost connection, and nothing measured no quality', () => {
    expect(linkQuality({ rtt_ms: 20, packet_loss: 0.5 })).to.equal('lost');
    expect(linkQuality({ packet_loss: 0.9 })).to.equal('lost');
    expect(linkQuality({})).to.equal(undefined);
    expect(linkQuality({ jitter_ms: 10 }), 'jitter alone').to.equal(undefined);
    expect(linkQuality({ rtt_ms: 30 }), 'RTT alone').to.equal('excellent');
  });

  it("gives a participant its worst link's quality", () => {
    expect(participantQuality([])).to.equal(undefined);
    expect(participantQuality([{}, { rtt_ms: 20 }])).to.equal('excellent');
    expect(participantQuality([{ rtt_ms: 20 }, { rtt_ms: 20, packet_loss: 0.1 }, { rtt_ms: 600 }])).to.equal('poor');
    expect(participantQuality([{ rtt_ms: 20, packet_loss: 0.1 }, { packet_loss: 0.6 }])).to.equal('lost');
  });
});

describe('active speakers: levels to speakers (the mesh side)', () => {
  it('keeps levels at or above -50 dBov, loudest first', () => {
    expect(SPEAKING_LEVEL).to.be.closeTo(0.00316, 0.00001);
    const speakers = speakersFromLevels(
      new Map([
        ['quiet', 0.001],
        ['soft', 0.01],
        ['loud', 0.5],
        ['silent', 0],
      ]),
    );
    expect(speakers).to.deep.equal([
      { peer_id: 'loud', level: 0.5 },
      { peer_id: 'soft', level: 0.01 },
    ]);
  });

  it('lets a level fall by half per sample at most, so a pause between words keeps the speaker', () => {
    const smoother = new LevelSmoother();
    expect(smoother.update(new Map([['a', 0.1]])).get('a')).to.equal(0.1);
    expect(smoother.update(new Map([['a', 0]])).get('a')).to.equal(0.05);
    expect(smoother.update(new Map([['a', 0.2]])).get('a')).to.equal(0.2);
    let level = 0.2;
    for (let i = 0; i < 10; i++) level = smoother.update(new Map([['a', 0]])).get('a') ?? 1;
    expect(level).to.be.below(SPEAKING_LEVEL);
    expect(smoother.update(new Map()).has('a'), 'a participant gone is forgotten').to.equal(false);
  });

  it('compares speaker lists by who and in which order, and refuses malformed server messages', () => {
    const a = { peer_id: 'a', level: 0.3 };
    const b = { peer_id: 'b', level: 0.1 };
    expect(sameSpeakers([a, b], [{ ...a, level: 0.2 }, b])).to.equal(true);
    expect(sameSpeakers([a, b], [b, a])).to.equal(false);
    expect(sameSpeakers([a], [a, b])).to.equal(false);
    expect(parseSpeakers({ speakers: [a, b] })).to.deep.equal([a, b]);
    expect(parseSpeakers({ speakers: [] })).to.deep.equal([]);
    expect(parseSpeakers({ speakers: [{ peer_id: 'a', level: 2 }] })).to.equal(null);
    expect(parseSpeakers({ speakers: [{ peer_id: 7, level: 0.1 }] })).to.equal(null);
    expect(parseSpeakers({ speakers: 'a' })).to.equal(null);
    expect(parseSpeakers(null)).to.equal(null);
  });

  it("counts microphones, not a shared screen's audio, in a mesh: received on a link and sent by us", async () => {
    const loud = 0.5;
    const audio = (id: string) => ({ id, kind: 'audio' }) as MediaStreamTrack;
    const receiver = (track: MediaStreamTrack, level: number) => ({ track, getSynchronizationSources: () => [{ audioLevel: level }] });
    const sources: Record<string, string> = { mic: 'microphone', tab: 'screen_audio', mine: 'microphone', 'my-tab': 'screen_audio' };
    let sent = [{ type: 'media-source', kind: 'audio', audioLevel: loud, trackIdentifier: 'my-tab' }];
    const pc = (receivers: unknown[]) =>
      ({
        getReceivers: () => receivers,
        getStats: async () => new Map(sent.map((stat, i) => [String(i), stat])),
      }) as unknown as RTCPeerConnection;
    // ann shares a tab with sound and is silent on her microphone; ben speaks.
    const links = new Map([
      ['ann', { pc: pc([receiver(audio('mic'), 0), receiver(audio('tab'), loud)]) }],
      ['ben', { pc: pc([receiver(audio('mic'), loud)]) }],
    ]);
    const sampled: string[][] = [];
    const sampler = new MeshLevelSampler({
      active: () => true,
      links: () => links,
      localId: () => 'me',
      remoteSpeech: (_peerId, track) => sources[track.id] !== 'screen_audio',
      localSpeech: (trackId) => sources[trackId] !== 'screen_audio',
      sampled: (speakers) => sampled.push(speakers.map((s) => s.peer_id)),
    });
    const sample = () => (sampler as unknown as { sample(): Promise<void> }).sample();
    await sample();
    expect(sampled.at(-1), "ann's tab audio and my own tab audio are nobody speaking").to.deep.equal(['ben']);
    sent = [...sent, { type: 'media-source', kind: 'audio', audioLevel: loud / 2, trackIdentifier: 'mine' }];
    await sample();
    expect(sampled.at(-1), 'my microphone counts').to.deep.equal(['ben', 'me']);
    sampler.stop();
  });
});

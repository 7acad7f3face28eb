import { expect } from 'chai';
import { SteadyFlow, type InboundStat } from '../../client-sdk/src/inboundStats.js';

const video = (trackIdentifier: string, framesDecoded: number, timestamp: number): InboundStat => ({ type: 'inbound-rtp', kind: 'video', trackIdentifier, framesDecoded, bytesReceived: framesDecoded * 1000, timestamp });
const audio = (trackIdentifier: string, bytesReceived: number, timestamp: number): InboundStat => ({ type: 'inbound-rtp', kind: 'audio', trackIdentifier, bytesReceived, timestamp });

/** Observes streams every 250 ms from `from` to `to`; `framesAt(t)` gives the video's frames decoded at t. Returns when it first said steady. */
function firstSteady(flow: SteadyFlow, framesAt: (t: number) => number, from: number, to: number): number | null {
  for (let t = from; t <= to; t += 250) {
    if (flow.observe([[video('v', framesAt(t), t)], [audio('a', 100 + t, t)]], t)) return t;
  }
  return null;
}

describe('SteadyFlow', () => {
  it('is not steady before every stream flows, nor on the first frames', () => {
    const flow = new SteadyFlow(1000, 400, 4000);
    expect(flow.observe([], 0)).to.equal(false);
    // Video negotiated and bytes arriving, no frame decoded yet.
    expect(flow.observe([[video('v', 0, 0)], [audio('a', 500, 0)]], 0)).to.equal(false);
    expect(flow.observe([[video('v', 3, 250)], [audio('a', 900, 250)]], 250)).to.equal(false);
  });

  it('says steady once every stream progressed at every observation for the steady time', () => {
    const flow = new SteadyFlow(1000, 400, 4000);
    // 15 frames per second from t = 0.
    expect(firstSteady(flow, (t) => Math.floor(t / 66), 250, 10_000)).to.equal(1250);
  });

  it('starts over after a pause longer than pauseMs (the stall right after the first key frame)', () => {
    const flow = new SteadyFlow(1000, 400, 4000);
    // Frames from 0 to 600, nothing until 1600, then steady.
    const framesAt = (t: number) => (t < 600 ? Math.floor(t / 66) : t < 1600 ? 9 : 9 + Math.floor((t - 1600) / 66));
    const at = firstSteady(flow, framesAt, 250, 10_000);
    expect(at).to.be.at.least(2600);
    expect(at).to.be.at.most(2900);
  });

  it('with the browser\'s freeze counters, a freeze under pauseMs does not start over, a longer one does, however late the report', () => {
    const flow = new SteadyFlow(1000, 400, 4000);
    const frozen = (frames: number, freezes: number, seconds: number, t: number): InboundStat[][] => [[{ ...video('v', frames, t), freezeCount: freezes, totalFreezesDuration: seconds }]];
    expect(flow.observe(frozen(1, 0, 0, 0), 0)).to.equal(false);
    // A report 900 ms late that shows frames all along except one 300 ms freeze: steady so far.
    expect(flow.observe(frozen(10, 1, 0.3, 900), 900)).to.equal(false);
    // The same (cached) report again 450 ms later is no observation, so no stall.
    expect(flow.observe(frozen(10, 1, 0.3, 900), 1350)).to.equal(true);
    // One freeze of 600 ms: start over.
    expect(flow.observe(frozen(20, 2, 0.9, 1600), 1600)).to.equal(false);
    expect(flow.observe(frozen(30, 2, 0.9, 2500), 2500)).to.equal(false);
    expect(flow.observe(frozen(34, 2, 0.9, 2600), 2600)).to.equal(true);
  });

  it('without freeze counters, the time between observations of progress is the pause', () => {
    const flow = new SteadyFlow(1000, 400, 4000);
    expect(flow.observe([[video('v', 1, 0)]], 0)).to.equal(false);
    expect(flow.observe([[video('v', 5, 250)]], 250)).to.equal(false);
    // 250 ms without a frame, then progress 400 ms after the last: no pause over pauseMs.
    expect(flow.observe([[video('v', 5, 500)]], 500)).to.equal(false);
    expect(flow.observe([[video('v', 8, 650)]], 650)).to.equal(false);
    expect(flow.observe([[video('v', 9, 1000)]], 1000)).to.equal(true);
    // Frames again only 500 ms after the last progress: a pause.
    expect(flow.observe([[video('v', 15, 1500)]], 1500)).to.equal(false);
  });

  it('accepts after capMs of flowing even if never steady (a starved page), and starts over when a stream stops flowing', () => {
    const flow = new SteadyFlow(1000, 400, 3000);
    // A frame every 600 ms: always paused longer than pauseMs.
    const at = firstSteady(flow, (t) => 1 + Math.floor(t / 600), 0, 10_000);
    expect(at).to.equal(3000);
    // A stream gone (a consumer replaced, no frame yet): not flowing, so everything starts over.
    expect(flow.observe([[video('v2', 0, 3250)]], 3250)).to.equal(false);
    expect(flow.observe([[video('v2', 2, 3500)]], 3500)).to.equal(false);
  });
});

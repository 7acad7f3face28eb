import { expect } from 'chai';
import { largestValueBound, VideoGapMeter, type VideoPathCounters, type VideoSample } from '../../client-sdk/src/VideoGapMeter.js';

/**
 * A video path as the browser counts it: frames decoded at given times (ms), with the
 * inter-frame delay sums getStats reports (seconds).
 */
function counters(frameTimes: number[], upTo: number): VideoPathCounters {
  const seen = frameTimes.filter((t) => t <= upTo);
  let sum = 0;
  let squares = 0;
  for (let i = 1; i < seen.length; i++) {
    const delay = ((seen[i] as number) - (seen[i - 1] as number)) / 1000;
    sum += delay;
    squares += delay * delay;
  }
  return { frames: seen.length, interFrameDelay: sum, squaredInterFrameDelay: squares };
}

const every = (from: number, to: number, step: number) =>
  Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

/**
 * Drives a meter with samples taken at `sampleTimes` on a virtual clock: each sample reads
 * the paths of each participant as they stood at that time.
 */
async function measure(
  sampleTimes: number[],
  paths: Record<string, Record<string, number[]>>,
  finishAt: number,
  leftAt: Record<string, number> = {},
): Promise<number> {
  return (await measureWithSource(sampleTimes, paths, finishAt, leftAt)).gapMs;
}

/** `measure`, with what measured the gap and whose video had it (the meter's largestFrom, largestOf). */
async function measureWithSource(
  sampleTimes: number[],
  paths: Record<string, Record<string, number[]>>,
  finishAt: number,
  leftAt: Record<string, number> = {},
): Promise<{ gapMs: number; from: string; of: string }> {
  let now = 0;
  const realNow = Date.now;
  Date.now = () => now;
  try {
    const queue = [...sampleTimes];
    const meter = new VideoGapMeter(async () => {
      const sample: VideoSample = new Map();
      for (const [identity, byPath] of Object.entries(paths)) {
        if (now >= (leftAt[identity] ?? Infinity)) continue;
        sample.set(identity, Object.fromEntries(Object.entries(byPath).map(([path, times]) => [path, counters(times, now)])));
      }
      return sample;
    }, 1_000_000);
    for (const at of queue) {
      now = at;
      await (meter as unknown as { tick(): Promise<void> }).tick();
    }
    now = finishAt;
    const gapMs = await meter.finish();
    return { gapMs, from: meter.largestFrom, of: meter.largestOf };
  } finally {
    Date.now = realNow;
  }
}

describe('VideoGapMeter', () => {
  it('bounds the largest of n values by their sum and sum of squares (Samuelson), tight for one outlier', () => {
    // 9 delays of 66 ms and one of 2000 ms.
    const values = [...Array(9).fill(0.066), 2];
    const sum = values.reduce((a, b) => a + b, 0);
    const squares = values.reduce((a, b) => a + b * b, 0);
    expect(largestValueBound(values.length, sum, squares)).to.be.closeTo(2, 1e-9);
    // Equal values: the bound is the value itself.
    expect(largestValueBound(5, 0.5, 0.05)).to.be.closeTo(0.1, 1e-9);
    expect(largestValueBound(0, 0, 0)).to.equal(0);
  });

  it('a sample that comes 3 s late over steady frames is not a gap', async () => {
    const frames = every(0, 6000, 66); // 15 fps throughout
    const gap = await measure([100, 200, 300, 3300, 3400, 6000], { alice: { mesh: frames } }, 6000);
    expect(gap).to.be.lessThan(100);
  });

  it('a real stall between samples is measured by its length, not by the sampling', async () => {
    const frames = [...every(0, 1000, 66), ...every(2200, 6000, 66)]; // no frame from 990 to 2200
    const { gapMs, from } = await measureWithSource([500, 4000, 6000], { alice: { mesh: frames } }, 6000);
    expect(gapMs).to.be.within(1150, 1250);
    expect(from).to.equal('mesh');
  });

  it('a hand-over from mesh to a new SFU consumer counts from the last progress (the sampler view) until the new path is decoding', async () => {
    const mesh = every(0, 1000, 66);
    const sfu = every(1500, 6000, 66); // the mesh stopped at ~990, the SFU starts at 1500
    const { gapMs, from } = await measureWithSource(every(100, 6000, 100), { alice: { mesh, sfu } }, 6000);
    expect(gapMs).to.be.within(500, 700);
    expect(from).to.equal('between-samples');
  });

  it("sums the browser's own freeze counters per path, knows a freeze alone in its interval exactly, and ignores a restarted path", async () => {
    const samples: Array<Record<string, VideoPathCounters>> = [
      { mesh: { frames: 10, freezes: 0, freezesDuration: 0 } },
      { mesh: { frames: 20, freezes: 1, freezesDuration: 0.4 } }, // one freeze of 400 ms
      { mesh: { frames: 30, freezes: 3, freezesDuration: 1.0 } }, // two more, 600 ms in all
      { mesh: { frames: 5, freezes: 0, freezesDuration: 0 }, sfu: { frames: 4, freezes: 0, freezesDuration: 0 } }, // replaced connection
      { mesh: { frames: 12, freezes: 1, freezesDuration: 0.25 }, sfu: { frames: 9, freezes: 1, freezesDuration: 0.3 } },
    ];
    let next = 0;
    const meter = new VideoGapMeter(
      async () => new Map([['alice', samples[Math.min(next++, samples.length - 1)] as Record<string, VideoPathCounters>]]),
      1_000_000,
    );
    for (let i = 0; i < samples.length; i++) await (meter as unknown as { tick(): Promise<void> }).tick();
    await meter.finish();
    expect(meter.freezes.count).to.equal(5);
    expect(meter.freezes.totalMs).to.be.closeTo(1550, 1e-6);
    expect(meter.freezes.longestSingleMs).to.be.closeTo(400, 1e-6);
    const byPath = meter.freezesByPath;
    expect(byPath.mesh?.count).to.equal(4);
    expect(byPath.mesh?.totalMs).to.be.closeTo(1250, 1e-6);
    expect(byPath.sfu?.count).to.equal(1);
    expect(byPath.sfu?.longestSingleMs).to.be.closeTo(300, 1e-6);
  });

  it('names the path whose stall set the gap when both paths decode', async () => {
    // Both paths decode; the SFU copy stalls from 2000 to 3000 while the mesh copy runs on: the mesh bounds every interval.
    const mesh = every(0, 6000, 66);
    const sfu = [...every(500, 2000, 66), ...every(3000, 6000, 66)];
    const both = await measureWithSource(every(100, 6000, 500), { alice: { mesh, sfu } }, 6000);
    expect(both.gapMs).to.be.lessThan(150);
    expect(both.from).to.equal('mesh');
    // The mesh copy is gone at 1500; the SFU copy's stall is the gap.
    const sfuOnly = await measureWithSource(every(100, 6000, 500), { alice: { mesh: every(0, 1500, 66), sfu } }, 6000);
    expect(sfuOnly.gapMs).to.be.within(900, 1100);
    expect(sfuOnly.from).to.equal('sfu');
  });

  it('keeps the largest gap over participants, forgets a participant who left, and counts a stall still open at the end', async () => {
    const steady = every(0, 6000, 66);
    const stallsAtEnd = every(0, 4000, 66);
    const stalled = await measureWithSource(every(100, 6000, 100), { alice: { mesh: steady }, bob: { mesh: stallsAtEnd } }, 6000);
    expect(stalled.gapMs).to.be.within(1900, 2100);
    expect(stalled.from).to.equal('stalled-at-end');
    expect(stalled.of).to.equal('bob');
    // A participant whose SFU copy stalls while another's plays: the gap is named after the one who stalled.
    const dave = [...every(0, 2000, 66), ...every(2600, 6000, 66)];
    const named = await measureWithSource(every(100, 6000, 500), { alice: { sfu: steady }, dave: { sfu: dave } }, 6000);
    expect(named.gapMs).to.be.within(550, 700);
    expect(named.of).to.equal('dave');
    // carol's frames stop at 2000 because she left at 2000: no gap.
    const gone = every(0, 2000, 66);
    expect(await measure(every(100, 6000, 100), { alice: { mesh: steady }, carol: { mesh: gone } }, 6000, { carol: 2050 })).to.be.lessThan(
      200,
    );
  });

  it('flowingOn ends at the first sample with no video decoding (audio only, or every video hidden), waits for every seen video on the new path, or gives up at the cap', async () => {
    const frames = new Map<string, number>();
    const meter = new VideoGapMeter(async () => {
      const sample: VideoSample = new Map();
      for (const [identity, count] of frames) sample.set(identity, { mesh: { frames: 0 }, sfu: { frames: count } });
      return sample;
    }, 20);
    try {
      // No video at all: done with the next sample, not at the cap.
      let started = Date.now();
      await meter.flowingOn('sfu', 5000);
      expect(Date.now() - started, 'no video').to.be.below(1000);

      // alice's video decodes on the SFU, then stops: flowingOn waits for it and gives up at the cap.
      frames.set('alice', 1);
      const grow = setInterval(() => frames.set('alice', (frames.get('alice') ?? 0) + 1), 10);
      await new Promise((resolve) => setTimeout(resolve, 100));
      started = Date.now();
      await meter.flowingOn('sfu', 5000);
      expect(Date.now() - started, 'alice decoding').to.be.below(1000);
      clearInterval(grow);
      await new Promise((resolve) => setTimeout(resolve, 100));
      started = Date.now();
      await meter.flowingOn('sfu', 400);
      expect(Date.now() - started, 'alice stalled: the cap').to.be.at.least(400);
    } finally {
      await meter.finish();
    }
  });
});

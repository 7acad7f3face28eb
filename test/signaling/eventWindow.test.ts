import { expect } from 'chai';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { EventWindow } from '../../server/signaling/EventWindow.js';

/**
 * The per-socket event limit used to be rate-limiter-flexible's RateLimiterMemory (one point per
 * event, `points` per second); EventWindow counts synchronously and must refuse exactly the same
 * events. Both are fed the same event times (Date.now is faked for the limiter).
 */
async function limiterDecisions(points: number, durationS: number, times: number[]): Promise<boolean[]> {
  const limiter = new RateLimiterMemory({ keyPrefix: 'ev', points, duration: durationS });
  const realNow = Date.now;
  let now = 0;
  Date.now = () => now;
  try {
    const decisions: boolean[] = [];
    for (const at of times) {
      now = at;
      decisions.push(
        await limiter.consume('socket').then(
          () => true,
          () => false,
        ),
      );
    }
    return decisions;
  } finally {
    Date.now = realNow;
    await limiter.delete('socket');
  }
}

function windowDecisions(points: number, durationS: number, times: number[]): boolean[] {
  let now = 0;
  const window = new EventWindow(points, durationS * 1000, () => now);
  return times.map((at) => {
    now = at;
    return window.take();
  });
}

/** A reproducible pseudo-random sequence (xorshift32). */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('per-socket event limit (EventWindow)', () => {
  it('refuses the event after the budget within a window, and counts refused events too', () => {
    const decisions = windowDecisions(3, 1, [1000, 1001, 1002, 1003, 1500, 1999]);
    expect(decisions).to.deep.equal([true, true, true, false, false, false]);
  });

  it('opens the next window at the first event once the previous one ended (not on a fixed grid)', () => {
    // Window 1 opens at 1000 and ends at 2000 (an event at exactly 2000 opens window 2, until 3000).
    const decisions = windowDecisions(2, 1, [1000, 1999, 1999, 2000, 2999, 2999, 3000]);
    expect(decisions).to.deep.equal([true, true, false, true, true, false, true]);
  });

  it('decides exactly as rate-limiter-flexible did, over random event times', async () => {
    const cases = [
      { points: 1, gapMs: 400 },
      { points: 3, gapMs: 200 },
      { points: 20, gapMs: 40 },
      { points: 20, gapMs: 60 },
      { points: 200, gapMs: 4 },
      { points: 200, gapMs: 6 },
    ];
    let refused = 0;
    let total = 0;
    for (const [index, { points, gapMs }] of cases.entries()) {
      const next = random(index + 1);
      const times: number[] = [];
      let at = 1_700_000_000_000;
      for (let i = 0; i < 2000; i++) {
        // Bursts (several events in the same millisecond), steady spells and pauses past a window.
        const r = next();
        at += r < 0.3 ? 0 : r < 0.97 ? Math.floor(next() * 2 * gapMs) : 1000 + Math.floor(next() * 1500);
        times.push(at);
      }
      const expected = await limiterDecisions(points, 1, times);
      expect(windowDecisions(points, 1, times), `points ${points}, gap ${gapMs} ms`).to.deep.equal(expected);
      refused += expected.filter((ok) => !ok).length;
      total += times.length;
    }
    // The sequences do run into the limit (or the comparison would say little).
    expect(refused).to.be.greaterThan(total / 20);
    expect(refused).to.be.lessThan(total / 2);
  });
});

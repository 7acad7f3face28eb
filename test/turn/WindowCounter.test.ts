/** WindowCounter: the per-IP count behind TURN_TLS_HANDSHAKES_PER_MIN. */
import { expect } from 'chai';
import { WindowCounter } from '../../turn/WindowCounter.js';

describe('WindowCounter', () => {
  it('lets `limit` events per key through in a window, then refuses that key until the next window', () => {
    let now = 1_000;
    const counter = new WindowCounter(3, 60_000, 100, () => now);
    expect([1, 2, 3, 4].map(() => counter.take('a'))).to.deep.equal([true, true, true, false]);
    expect(counter.take('b'), 'another key').to.equal(true);
    now += 59_999;
    expect(counter.take('a'), 'same window').to.equal(false);
    now += 1;
    expect(counter.take('a'), 'next window').to.equal(true);
    expect(counter.size).to.equal(1);
  });

  it('holds at most maxKeys keys: new keys past that are let through uncounted, known keys are still held', () => {
    const counter = new WindowCounter(1, 60_000, 2, () => 0);
    expect(counter.take('a')).to.equal(true);
    expect(counter.take('b')).to.equal(true);
    for (let i = 0; i < 1_000; i++) expect(counter.take(`flood-${i}`)).to.equal(true);
    expect(counter.size).to.equal(2);
    expect(counter.take('a'), 'a known key at its limit').to.equal(false);
  });
});

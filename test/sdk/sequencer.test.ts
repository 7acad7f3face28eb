import { expect } from 'chai';
import { InboundSequencer } from '../../client-sdk/src/InboundSequencer.js';

describe('InboundSequencer', () => {
  it('delivers reliable messages once, in order, across two out-of-order paths', () => {
    const out: number[] = [];
    const s = new InboundSequencer<number>();
    // mesh: 1 2 3 (4 lost), sfu: 3 4 5 arriving interleaved
    for (const seq of [1, 2, 3, 3, 5, 4, 2, 5, 6]) s.accept('a', seq, true, seq, (m) => out.push(m));
    expect(out).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('keeps senders apart and starts at the first sequence seen', () => {
    const out: string[] = [];
    const s = new InboundSequencer<string>();
    s.accept('a', 40, true, 'a40', (m) => out.push(m));
    s.accept('b', 1, true, 'b1', (m) => out.push(m));
    s.accept('a', 41, true, 'a41', (m) => out.push(m));
    expect(out).to.deep.equal(['a40', 'b1', 'a41']);
  });

  it('releases held-back messages after the gap timeout', () => {
    let now = 0;
    const out: number[] = [];
    const s = new InboundSequencer<number>(1000, () => now);
    s.accept('a', 1, true, 1, (m) => out.push(m));
    s.accept('a', 3, true, 3, (m) => out.push(m));
    expect(out).to.deep.equal([1]);
    now = 1500;
    s.accept('a', 4, true, 4, (m) => out.push(m));
    expect(out).to.deep.equal([1, 3, 4]);
  });

  it('de-duplicates lossy messages without ordering them', () => {
    const out: number[] = [];
    const s = new InboundSequencer<number>();
    for (const seq of [2, 1, 2, 3, 1]) s.accept('a', seq, false, seq, (m) => out.push(m));
    expect(out).to.deep.equal([2, 1, 3]);
  });
});

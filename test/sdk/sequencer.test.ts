import { expect } from 'chai';
import { InboundSequencer } from '../../client-sdk/src/InboundSequencer.js';
import { SentHistory } from '../../client-sdk/src/SentHistory.js';

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

  it('reports holes older than a given age with the first missing number, and the next expected number', () => {
    let now = 0;
    const s = new InboundSequencer<number>(5000, () => now);
    expect(s.expected('a')).to.equal(null);
    s.accept('a', 1, true, 1, () => undefined);
    s.accept('b', 1, true, 1, () => undefined);
    expect(s.expected('a')).to.equal(2);
    s.accept('a', 4, true, 4, () => undefined);
    now = 100;
    expect(s.gaps(250)).to.deep.equal([]);
    now = 300;
    expect(s.gaps(250)).to.deep.equal([{ sender: 'a', expected: 2 }]);
    s.accept('a', 2, true, 2, () => undefined);
    s.accept('a', 3, true, 3, () => undefined);
    expect(s.gaps(0)).to.deep.equal([]);
    expect(s.expected('a')).to.equal(5);
  });
});

describe('SentHistory', () => {
  it('returns the messages from a sequence number on, oldest first', () => {
    const h = new SentHistory();
    for (let seq = 1; seq <= 5; seq++) h.add(seq, `m${seq}`);
    expect(h.since(3)).to.deep.equal(['m3', 'm4', 'm5']);
    expect(h.since(9)).to.deep.equal([]);
  });

  it('forgets the oldest beyond its message and character bounds', () => {
    const byCount = new SentHistory(3, 1000);
    for (let seq = 1; seq <= 5; seq++) byCount.add(seq, `m${seq}`);
    expect(byCount.since(0)).to.deep.equal(['m3', 'm4', 'm5']);
    const byChars = new SentHistory(100, 10);
    for (let seq = 1; seq <= 4; seq++) byChars.add(seq, 'abcd');
    expect(byChars.since(0)).to.deep.equal(['abcd', 'abcd']);
  });
});

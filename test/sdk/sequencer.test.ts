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
    expect(s.gaps(250)).to.deep.equal([{ sender: 'a', expected: 2, next: 4 }]);
    s.accept('a', 2, true, 2, () => undefined);
    s.accept('a', 3, true, 3, () => undefined);
    expect(s.gaps(0)).to.deep.equal([]);
    expect(s.expected('a')).to.equal(5);
  });
});

describe('InboundSequencer.expire and release', () => {
  it('expire() delivers what an old hole holds back without waiting for a later message', () => {
    let now = 0;
    const out: number[] = [];
    const s = new InboundSequencer<number>(1000, () => now);
    for (const seq of [1, 3, 4]) s.accept('a', seq, true, seq, (m) => out.push(m));
    s.expire((m) => out.push(m));
    expect(out, 'the hole is young').to.deep.equal([1]);
    now = 1500;
    s.expire((m) => out.push(m));
    expect(out).to.deep.equal([1, 3, 4]);
    s.accept('a', 5, true, 5, (m) => out.push(m));
    expect(out).to.deep.equal([1, 3, 4, 5]);
  });

  it('release() delivers everything held back from a sender that left, in order across several holes, and its sequence goes on', () => {
    const out: number[] = [];
    const s = new InboundSequencer<number>();
    for (const seq of [1, 2, 5, 6, 9]) s.accept('a', seq, true, seq, (m) => out.push(m));
    s.accept('b', 1, true, 100, (m) => out.push(m));
    s.accept('b', 3, true, 300, (m) => out.push(m));
    expect(out).to.deep.equal([1, 2, 100]);
    s.release('a', (m) => out.push(m));
    expect(out, 'b is held back still').to.deep.equal([1, 2, 100, 5, 6, 9]);
    expect(s.gaps(0).map((g) => g.sender)).to.deep.equal(['b']);
    // Back with the same epoch: neither replayed nor held back.
    for (const seq of [9, 6, 10]) s.accept('a', seq, true, seq, (m) => out.push(m));
    expect(out).to.deep.equal([1, 2, 100, 5, 6, 9, 10]);
  });
});

describe('InboundSequencer.expectFrom', () => {
  it('holds a new sender back until its sequence is complete from the given number', () => {
    const out: number[] = [];
    const s = new InboundSequencer<number>();
    s.expectFrom('late', 1);
    s.accept('late', 3, true, 3, (m) => out.push(m));
    expect(out).to.deep.equal([]);
    expect(s.gaps(0)).to.deep.equal([{ sender: 'late', expected: 1, next: 3 }]);
    s.accept('late', 1, true, 1, (m) => out.push(m));
    s.accept('late', 2, true, 2, (m) => out.push(m));
    expect(out).to.deep.equal([1, 2, 3]);
    s.expectFrom('late', 1); // a known sender keeps its place
    s.accept('late', 4, true, 4, (m) => out.push(m));
    expect(out).to.deep.equal([1, 2, 3, 4]);
  });
});

describe('InboundSequencer.skipTo', () => {
  it('gives up on a hole the sender no longer holds, delivering what was held back in order', () => {
    const out: number[] = [];
    const s = new InboundSequencer<number>();
    s.accept('a', 1, true, 1, (m) => out.push(m));
    for (const seq of [3, 5, 6]) s.accept('a', seq, true, seq, (m) => out.push(m));
    expect(out).to.deep.equal([1]);
    s.skipTo('a', 4, (m) => out.push(m)); // 2 is gone for good; 4 may still come
    expect(out).to.deep.equal([1, 3]);
    expect(s.expected('a')).to.equal(4);
    s.accept('a', 4, true, 4, (m) => out.push(m));
    expect(out).to.deep.equal([1, 3, 4, 5, 6]);
    s.skipTo('a', 2, (m) => out.push(m)); // behind us already: nothing happens
    expect(s.expected('a')).to.equal(7);
  });
});

describe('SentHistory', () => {
  it('returns the messages of a range, oldest first, up to a limit', () => {
    const h = new SentHistory();
    for (let seq = 1; seq <= 5; seq++) h.add(seq, `m${seq}`);
    expect(h.range(3)).to.deep.equal(['m3', 'm4', 'm5']);
    expect(h.range(2, 4)).to.deep.equal(['m2', 'm3']);
    expect(h.range(1, Infinity, 2)).to.deep.equal(['m1', 'm2']);
    expect(h.range(9)).to.deep.equal([]);
    expect(h.oldest(6)).to.equal(1);
    expect(new SentHistory().oldest(6)).to.equal(6);
  });

  it('resends a message on a path to everyone at most once per window, whoever asks (rangeToResend)', () => {
    const h = new SentHistory();
    for (let seq = 1; seq <= 10; seq++) h.add(seq, `m${seq}`);
    expect(h.rangeToResend(3, 6, 256, 1000, 1000)).to.deep.equal(['m3', 'm4', 'm5']);
    expect(h.rangeToResend(1, Infinity, 256, 1500, 1000), 'a second asker within the window').to.deep.equal([
      'm1',
      'm2',
      'm6',
      'm7',
      'm8',
      'm9',
      'm10',
    ]);
    expect(h.rangeToResend(1, Infinity, 2, 1900, 1000), 'all resent lately').to.deep.equal([]);
    expect(h.rangeToResend(1, Infinity, 3, 2000, 1000), 'after the window, up to the limit').to.deep.equal(['m3', 'm4', 'm5']);
    expect(h.range(1, 4), 'range() is not paced').to.deep.equal(['m1', 'm2', 'm3']);
  });

  it('forgets the oldest beyond its message and character bounds', () => {
    const byCount = new SentHistory(3, 1000);
    for (let seq = 1; seq <= 5; seq++) byCount.add(seq, `m${seq}`);
    expect(byCount.range(0)).to.deep.equal(['m3', 'm4', 'm5']);
    const byChars = new SentHistory(100, 10);
    for (let seq = 1; seq <= 4; seq++) byChars.add(seq, 'abcd');
    expect(byChars.range(0)).to.deep.equal(['abcd', 'abcd']);
  });

  it('holds the last 8192 messages by default: a 60 s hand-over at 20 messages/s (1200) fits many times over', () => {
    const h = new SentHistory();
    const message = JSON.stringify({ s: 1, d: 'x'.repeat(80) });
    for (let seq = 1; seq <= 10_000; seq++) h.add(seq, message);
    expect(h.oldest(10_001)).to.equal(10_000 - 8192 + 1);
  });
});

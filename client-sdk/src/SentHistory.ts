import { wireSize, type WireMessage } from './DataEnvelope.js';

interface HistoryEntry {
  seq: number;
  text: WireMessage;
  /** When the message last went out again on a path to every receiver (rangeToResend). */
  resentAt?: number;
}

/**
 * The last reliable messages this client sent, kept so a peer that missed some during a
 * migration or an SFU rebuild (its new data consumer opened after we sent them) can ask for
 * them again. Bounded by count and by total size (characters of text, bytes of binary frames);
 * the oldest go first.
 */
export class SentHistory {
  private readonly entries: HistoryEntry[] = [];
  private chars = 0;

  constructor(
    private readonly maxMessages = 8192,
    private maxChars = 4 * 1024 * 1024,
  ) {}

  /** Keeps at least this many characters/bytes from now on (never fewer than the constructor's). */
  holdAtLeast(chars: number): void {
    this.maxChars = Math.max(this.maxChars, chars);
  }

  add(seq: number, text: WireMessage): void {
    this.entries.push({ seq, text });
    this.chars += wireSize(text);
    while (this.entries.length > this.maxMessages || (this.chars > this.maxChars && this.entries.length > 1)) {
      this.chars -= wireSize((this.entries.shift() as HistoryEntry).text);
    }
  }

  /** The oldest sequence number still held (`next` when nothing is). */
  oldest(next: number): number {
    return this.entries[0]?.seq ?? next;
  }

  /**
   * Messages numbered from `from` (inclusive) to `to` (exclusive; open without it), oldest first,
   * at most `limit` of them and `maxBytes` in all (always the first one).
   */
  range(from: number, to = Infinity, limit = Infinity, maxBytes = Infinity): WireMessage[] {
    return this.select(from, to, limit, maxBytes, () => true);
  }

  /**
   * Like range(), without the messages resent within the last `windowMs`; the ones returned
   * count as resent at `now`. For a path that carries a resend to every receiver (the SFU):
   * one copy per window serves every peer that asks (a peer still missing it asks again),
   * where a copy per asker and per retry flooded receivers that were already behind (a run
   * with tens of thousands of messages dropped for full SCTP buffers).
   */
  rangeToResend(from: number, to: number, limit: number, now: number, windowMs: number, maxBytes = Infinity): WireMessage[] {
    return this.select(from, to, limit, maxBytes, (entry) => {
      if (entry.resentAt !== undefined && now - entry.resentAt < windowMs) return false;
      entry.resentAt = now;
      return true;
    });
  }

  /** Texts of the entries in [from, to) that `take` accepts, oldest first, at most `limit`. */
  private select(from: number, to: number, limit: number, maxBytes: number, take: (entry: HistoryEntry) => boolean): WireMessage[] {
    const found: WireMessage[] = [];
    let bytes = 0;
    for (const entry of this.entries) {
      if (found.length >= limit) break;
      if (entry.seq < from || entry.seq >= to) continue;
      if (found.length > 0 && bytes + wireSize(entry.text) > maxBytes) break;
      if (!take(entry)) continue;
      found.push(entry.text);
      bytes += wireSize(entry.text);
    }
    return found;
  }
}

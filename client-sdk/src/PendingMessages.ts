import { wireSize, type WireMessage } from './DataEnvelope.js';

/**
 * Reliable messages kept for a channel that is not open yet, in bytes: beyond it the oldest go
 * (the sent history holds no more either; a receiver that misses them asks, and skips what is gone).
 */
export const PENDING_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Reliable messages waiting for a channel (a mesh link's data channel, our SFU data producer)
 * to open, in order, bounded by bytes: past maxBytes the oldest are dropped, the newest is
 * always kept.
 */
export class PendingMessages {
  private messages: WireMessage[] = [];
  private total = 0;

  constructor(private readonly maxBytes = PENDING_MAX_BYTES) {}

  push(data: WireMessage): void {
    this.messages.push(data);
    this.total += wireSize(data);
    while (this.total > this.maxBytes && this.messages.length > 1) this.total -= wireSize(this.messages.shift() as WireMessage);
  }

  /** Whether nothing waits. */
  get empty(): boolean {
    return this.messages.length === 0;
  }

  /** Bytes waiting. */
  get bytes(): number {
    return this.total;
  }

  /** Every waiting message, oldest first; the queue is empty afterwards. */
  take(): WireMessage[] {
    const taken = this.messages;
    this.messages = [];
    this.total = 0;
    return taken;
  }
}

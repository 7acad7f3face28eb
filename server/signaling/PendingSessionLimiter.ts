import type { IncomingMessage } from 'node:http';
import type { AppServer } from './types.js';

/** The part of an Engine.IO socket this limiter reads. */
interface EngineSocket {
  readonly remoteAddress: string;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Limits the Engine.IO sessions each address holds before their Socket.IO CONNECT (where the
 * token is checked), so nobody can pile up unauthenticated sessions; Socket.IO's
 * connectTimeout closes the ones that never CONNECT. Sessions count from the Engine.IO
 * handshake until their CONNECT succeeds or they close.
 */
export class PendingSessionLimiter {
  private readonly pendingByAddress = new Map<string, number>();
  private readonly pending = new WeakSet<object>();

  constructor(private readonly limitPerAddress: number) {}

  /** For Engine.IO's allowRequest (called for handshakes only): false once the address holds its limit. */
  allows(req: IncomingMessage): boolean {
    // Checked and counted without an await in between: Engine.IO emits `connection` for an
    // allowed handshake before it reads another request.
    return (this.pendingByAddress.get(req.socket.remoteAddress ?? '') ?? 0) < this.limitPerAddress;
  }

  /** Counts every new Engine.IO session, and stops counting it on its CONNECT or its close. */
  attach(io: AppServer): void {
    io.engine.on('connection', (session: EngineSocket) => {
      this.add(session.remoteAddress, 1);
      this.pending.add(session);
      session.once('close', () => this.settle(session));
    });
    io.on('connection', (socket) => this.settle(socket.conn));
  }

  /** Sessions of this address still waiting for their CONNECT (tests, diagnostics). */
  pendingOf(address: string): number {
    return this.pendingByAddress.get(address) ?? 0;
  }

  private settle(session: EngineSocket): void {
    if (!this.pending.delete(session)) return;
    this.add(session.remoteAddress, -1);
  }

  private add(address: string, delta: number): void {
    const count = (this.pendingByAddress.get(address) ?? 0) + delta;
    if (count > 0) this.pendingByAddress.set(address, count);
    else this.pendingByAddress.delete(address);
  }
}

/**
 * The density benchmark's clients: a batch of idle clients that connect and join with a
 * bounded number in flight, each client's room, token and source address fixed by its index
 * in the whole measurement. The same loop runs in the runner (one process holds every
 * client) and in child load generators (bench/servers/densityClients.ts, one batch each), so
 * a split measurement connects the same clients the same way.
 */
import type { Socket } from 'socket.io-client';
import { connectAndJoin, type SignalTarget } from './signaling.js';

export interface ClientBatch {
  target: SignalTarget;
  /** Client i joins the room `${roomPrefix}-${floor(i / roomSize)}`. */
  roomPrefix: string;
  roomSize: number;
  /** Index (in the whole measurement) of the batch's first client, and how many it holds. */
  first: number;
  count: number;
  /** Switchboard: one token per client of the batch, minted before the clock starts; baseline: none. */
  tokens: string[];
  /** Client i connects from sources[i % sources.length] (none: the default address). */
  sources: string[];
  /** Handshakes+joins in flight at once in this batch. */
  concurrency: number;
}

/** What a batch took: its clients and the wall time of connecting them. */
export interface BatchReport {
  clients: number;
  wallS: number;
}

export function roomOfClient(batch: Pick<ClientBatch, 'roomPrefix' | 'roomSize'>, index: number): string {
  return `${batch.roomPrefix}-${Math.floor(index / batch.roomSize)}`;
}

/** Connects and joins every client of the batch, pushing each socket as it joins. */
export async function connectBatch(batch: ClientBatch, sockets: Socket[]): Promise<BatchReport> {
  const started = performance.now();
  const end = batch.first + batch.count;
  let next = batch.first;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const i = next++;
      // The baseline ignores credentials; Switchboard refuses an empty token, so a missing one fails loudly.
      const token = batch.tokens[i - batch.first] ?? '';
      const joined = await connectAndJoin(batch.target, roomOfClient(batch, i), token, {
        localAddress: batch.sources.length ? batch.sources[i % batch.sources.length] : undefined,
      });
      sockets.push(joined.socket);
    }
  };
  await Promise.all(Array.from({ length: Math.min(batch.concurrency, batch.count) }, worker));
  return { clients: batch.count, wallS: (performance.now() - started) / 1000 };
}

/**
 * Splits a batch into `parts` contiguous batches of whole rooms (so a room's members share a
 * process, as they share it when one process holds every client), dividing the handshakes in
 * flight between them so the total stays the same.
 */
export function splitBatch(whole: ClientBatch, parts: number): ClientBatch[] {
  const perPart = Math.ceil(whole.count / parts / whole.roomSize) * whole.roomSize;
  const batches: ClientBatch[] = [];
  for (let part = 0; part < parts; part++) {
    const offset = part * perPart;
    const count = Math.min(perPart, whole.count - offset);
    if (count <= 0) break;
    // At least one in flight per part, or its clients would never connect.
    const concurrency = Math.max(1, Math.floor(whole.concurrency / parts) + (part < whole.concurrency % parts ? 1 : 0));
    batches.push({ ...whole, first: whole.first + offset, count, tokens: whole.tokens.slice(offset, offset + count), concurrency });
  }
  return batches;
}

/**
 * A share of the density benchmark's idle clients in its own process: one process may hold
 * only as many sockets as its open-files limit allows (20,000 on some machines, where it
 * cannot be raised), so the largest sizes are split over several of these. Driven over IPC
 * by bench/density.ts: `loadClients` hands it its batch (clients, tokens, options) before the
 * clock starts, `connectClients` connects them and reports when done with the wall time,
 * `closeClients` closes them.
 */
import type { Socket } from 'socket.io-client';
import { closeClients } from '../lib/signaling.js';
import { connectBatch, type ClientBatch } from '../lib/idleClients.js';
import { serveCommands } from '../lib/childCommands.js';
import type { ToServer } from '../lib/ServerProcess.js';

const sockets: Socket[] = [];
let batch: ClientBatch | undefined;

async function handle(message: ToServer): Promise<unknown> {
  switch (message.cmd) {
    case 'loadClients':
      batch = message.args as ClientBatch;
      return { clients: batch.count };
    case 'connectClients':
      if (!batch) throw new Error('connectClients before loadClients');
      return connectBatch(batch, sockets);
    case 'closeClients':
      await closeClients(sockets.splice(0), Number(message.args ?? 0));
      return {};
    case 'close':
      await closeClients(sockets.splice(0), 0);
      return {};
    default:
      throw new Error(`unknown command ${message.cmd}`);
  }
}

serveCommands(handle, { url: '', port: 0 });

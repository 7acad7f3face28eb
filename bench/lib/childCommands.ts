/**
 * The child side of the IPC protocol of bench/lib/ServerProcess.ts, shared by every process
 * the benchmarks drive (servers, the TURN stream, the density client generators): each
 * command is answered with a reply carrying its result or error, `close` exits once answered,
 * and a child whose parent went away does not linger.
 */
import type { FromServer, ToServer } from './ServerProcess.js';

export type Ready = Omit<Extract<FromServer, { type: 'ready' }>, 'type' | 'pid'>;

function send(message: FromServer): void {
  process.send?.(message);
}

/**
 * Answers the parent's commands with `handle`, then announces `ready`. `onParentGone` runs
 * when the IPC channel closes (default: exit at once); it is given 3 s before the process exits.
 */
export function serveCommands(handle: (message: ToServer) => Promise<unknown>, ready: Ready, onParentGone?: () => Promise<unknown>): void {
  process.on('message', (message: ToServer) => {
    handle(message).then(
      (result) => {
        send({ type: 'reply', id: message.id, result });
        if (message.cmd === 'close') setImmediate(() => process.exit(0));
      },
      (error: Error) => send({ type: 'reply', id: message.id, error: error.message }),
    );
  });
  process.on('disconnect', () => {
    if (!onParentGone) process.exit(0);
    void onParentGone().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
  send({ type: 'ready', ...ready, pid: process.pid });
}

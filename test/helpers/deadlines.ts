/** For tests that something settles, or gives up, in time. */
import { createServer, type AddressInfo, type Socket } from 'node:net';

/** Settles `promise` within `ms` (else fails the test), returning its value or error and how long it took. */
export async function settlesWithin<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; elapsed: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([promise, timeout]);
    return { value, elapsed: Date.now() - started };
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('did not settle')) throw error;
    return { error, elapsed: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `use` with the port of a TCP server on 127.0.0.1 that accepts connections but never
 * answers; the server and its connections are closed afterwards.
 */
export async function withBlackHole<T>(use: (port: number) => Promise<T>): Promise<T> {
  const sockets = new Set<Socket>();
  const blackHole = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  try {
    return await use((blackHole.address() as AddressInfo).port);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  }
}

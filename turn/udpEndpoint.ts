/**
 * The relay's UDP sockets, on one of two kinds of I/O (TURN_UDP_IO):
 * - native: turn/native/udp_batch.c (built into dist/native/udp_batch.node by `npm run
 *   build`): recvmmsg hands JavaScript one call per batch of datagrams, and a send is one
 *   sendmsg with no libuv request. About half of Node's cost per relayed datagram.
 * - dgram: Node's own sockets, where the addon is not built (or TURN_UDP_IO=dgram).
 *
 * Both deliver datagrams through `onMessage(data, address, port)`. With native I/O `data` is
 * a view of a buffer the next batch overwrites: a handler that keeps it past its return (a
 * queued write, a request answered later) copies it first.
 */
import { createRequire } from 'node:module';
import dgram, { type Socket } from 'node:dgram';
import dns from 'node:dns';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type UdpIo = 'native' | 'dgram';
export type UdpIoSetting = UdpIo | 'auto';
export type MessageHandler = (data: Buffer, address: string, port: number) => void;

export interface UdpEndpoint {
  readonly io: UdpIo;
  /** The bound port. */
  readonly port: number;
  onMessage(handler: MessageHandler): void;
  /** Receive and send errors (send errors are per datagram; a send that would block is dropped silently). */
  onError(handler: (error: Error) => void): void;
  /**
   * One datagram of `data` (or of the buffers in order). The callback is for node-turn's
   * replies. False when the datagram was dropped because the socket's send buffer is full
   * (native I/O; dgram queues it); errors go to the callback, else to onError.
   */
  send(data: Buffer | readonly Buffer[], port: number, address: string, callback?: (error: Error | null) => void): boolean;
  /** One datagram of buf[offset, offset + length); false as for send(). */
  sendRange(buf: Buffer, offset: number, length: number, port: number, address: string): boolean;
  address(): { address: string; family: string; port: number };
  close(): Promise<void>;
}

interface NativeUdp {
  BATCH: number;
  SLOT: number;
  /** This thread's batch buffers (allocated on the first call, the same ones after). */
  buffers(): [slots: Buffer, meta: Int32Array];
  open(family: 4 | 6, address: string, port: number, bufferBytes: number, onBatch: (count: number, addresses?: string[]) => void): object;
  port(handle: object): number;
  send(handle: object, port: number, address: string, buf: Buffer, offset: number, length: number): number;
  sendv(handle: object, port: number, address: string, ...buffers: Buffer[]): number;
  close(handle: object): void;
  errnoName(code: number): string;
}

interface NativeBinding {
  udp: NativeUdp;
}

const EAGAIN = -11;

/** dist/native/udp_batch.node of this package (from the sources or from dist/). */
export function nativeAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dir, 'dist', 'native', 'udp_batch.node');
}

let loaded: NativeBinding | { error: string } | undefined;

/** The addon, loaded once per thread, or why it cannot be. */
export function loadNativeUdp(): NativeBinding | { error: string } {
  if (loaded) return loaded;
  const path = nativeAddonPath();
  if (process.platform !== 'linux') loaded = { error: `native UDP I/O needs Linux, this is ${process.platform}` };
  else if (!existsSync(path)) loaded = { error: `${path} is not built (npm run build; it needs gcc)` };
  else {
    try {
      loaded = { udp: createRequire(import.meta.url)(path) as NativeUdp };
    } catch (error) {
      loaded = { error: `${path} does not load: ${(error as Error).message}` };
    }
  }
  return loaded;
}

/**
 * The I/O a setting comes to here, and why it is not native: `auto` is native where the addon
 * loads. Throws for `native` without it.
 */
export function chooseUdpIo(setting: UdpIoSetting): { io: UdpIo; notNative?: string } {
  if (setting === 'dgram') return { io: 'dgram', notNative: 'TURN_UDP_IO=dgram' };
  const binding = loadNativeUdp();
  if ('udp' in binding) return { io: 'native' };
  if (setting === 'native') throw new Error(`TURN_UDP_IO=native: ${binding.error}`);
  return { io: 'dgram', notNative: binding.error };
}

export function bindUdpEndpoint(io: UdpIo, family: 4 | 6, address: string, port: number, bufferBytes = 0): Promise<UdpEndpoint> {
  if (io === 'native') return new Promise((resolve) => resolve(NativeEndpoint.bind(family, address, port, bufferBytes)));
  return DgramEndpoint.bind(family, address, port, bufferBytes);
}

class NativeEndpoint implements UdpEndpoint {
  readonly io = 'native';
  readonly port: number;
  private handler: MessageHandler | undefined;
  private errorHandler: ((error: Error) => void) | undefined;
  private closed = false;
  private readonly handle: object;
  private readonly slots: Buffer;
  private readonly meta: Int32Array;

  private constructor(
    private readonly binding: NativeBinding,
    private readonly family: 4 | 6,
    private readonly localAddress: string,
    port: number,
    bufferBytes: number,
  ) {
    [this.slots, this.meta] = binding.udp.buffers();
    // Throws like dgram's bind: an Error whose code is the errno's name (EADDRINUSE, ...).
    this.handle = binding.udp.open(family, localAddress, port, bufferBytes, (count, addresses) => this.onBatch(count, addresses));
    this.port = binding.udp.port(this.handle);
  }

  static bind(family: 4 | 6, address: string, port: number, bufferBytes: number): NativeEndpoint {
    const binding = loadNativeUdp();
    if (!('udp' in binding)) throw new Error(binding.error);
    return new NativeEndpoint(binding, family, address, port, bufferBytes);
  }

  private onBatch(count: number, addresses: string[] | undefined): void {
    if (count < 0 || addresses === undefined) {
      this.errorHandler?.(new Error(`recv ${this.binding.udp.errnoName(count)}`));
      return;
    }
    const { slots, meta } = this;
    const slot = this.binding.udp.SLOT;
    const handler = this.handler;
    for (let i = 0; i < count && handler !== undefined && !this.closed; i++) {
      const length = meta[2 * i] as number;
      if (length < 0) continue;
      const start = i * slot;
      handler(slots.subarray(start, start + length), addresses[i] as string, meta[2 * i + 1] as number);
    }
  }

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  onError(handler: (error: Error) => void): void {
    this.errorHandler = handler;
  }

  send(data: Buffer | readonly Buffer[], port: number, address: string, callback?: (error: Error | null) => void): boolean {
    const udp = this.binding.udp;
    // The addon takes at most 3 parts (a head, the data, its padding); more are joined first.
    let result: number;
    if (Buffer.isBuffer(data)) result = udp.send(this.handle, port, address, data, 0, data.length);
    else if (data.length <= 3) result = udp.sendv(this.handle, port, address, ...data);
    else {
      const joined = Buffer.concat(data);
      result = udp.send(this.handle, port, address, joined, 0, joined.length);
    }
    return this.sent(result, port, address, callback);
  }

  sendRange(buf: Buffer, offset: number, length: number, port: number, address: string): boolean {
    return this.sent(this.binding.udp.send(this.handle, port, address, buf, offset, length), port, address, undefined);
  }

  private sent(result: number, port: number, address: string, callback: ((error: Error | null) => void) | undefined): boolean {
    if (result >= 0) {
      callback?.(null);
      return true;
    }
    if (result === EAGAIN) {
      callback?.(null);
      return false;
    }
    const error = Object.assign(new Error(`send ${this.binding.udp.errnoName(result)} ${address}:${port}`), {
      code: this.binding.udp.errnoName(result),
    });
    if (callback) callback(error);
    else this.errorHandler?.(error);
    return true;
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.family === 6 ? 'IPv6' : 'IPv4', port: this.port };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.binding.udp.close(this.handle);
    }
    return Promise.resolve();
  }
}

/**
 * dgram's address lookup for the relay's sockets, which send to IP literals only (client
 * addresses as Node reported them, peer addresses from XOR-PEER-ADDRESS): the address as it
 * is, at once. dgram's default, dns.lookup, answers a literal on the next tick, so each relayed
 * datagram queued a tick and a callback to drain it. Anything else still goes to dns.lookup.
 */
function literalLookup(address: string, family: number, callback: (error: Error | null, address: string, family: number) => void): void {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dns.lookup(address, family, callback);
}

class DgramEndpoint implements UdpEndpoint {
  readonly io = 'dgram';
  readonly port: number;

  private constructor(private readonly socket: Socket) {
    this.port = socket.address().port;
  }

  static bind(family: 4 | 6, address: string, port: number, bufferBytes: number): Promise<DgramEndpoint> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
        ...(bufferBytes ? { recvBufferSize: bufferBytes, sendBufferSize: bufferBytes } : {}),
      });
      const onError = (error: Error): void => {
        try {
          socket.close();
        } catch {
          // already closed
        }
        reject(error);
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve(new DgramEndpoint(socket));
      });
    });
  }

  onMessage(handler: MessageHandler): void {
    this.socket.removeAllListeners('message');
    this.socket.on('message', (data, rinfo) => handler(data, rinfo.address, rinfo.port));
  }

  onError(handler: (error: Error) => void): void {
    this.socket.removeAllListeners('error');
    this.socket.on('error', handler);
  }

  send(data: Buffer | readonly Buffer[], port: number, address: string, callback?: (error: Error | null) => void): boolean {
    this.socket.send(data as Buffer | Buffer[], port, address, callback);
    return true;
  }

  sendRange(buf: Buffer, offset: number, length: number, port: number, address: string): boolean {
    this.socket.send(buf, offset, length, port, address);
    return true;
  }

  address(): { address: string; family: string; port: number } {
    return this.socket.address();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }
}

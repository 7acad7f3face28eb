/**
 * Types for the parts of node-turn 0.0.6 (plain CommonJS, no typings) that TurnRelay uses.
 * Only what is read or patched is declared; see node_modules/node-turn/lib for the rest.
 */
declare namespace NodeTurn {
  interface Address {
    family: number;
    address: string;
    port: number;
  }

  /** Where node-turn sends answers: a dgram socket, or anything with its send() (a TCP or TLS connection). */
  interface ReplySocket {
    send(buf: Buffer, port: number, address: string, callback?: (error: Error | null) => void): void;
  }

  /** What an Allocation uses of its relay sockets: the bound address, and message events it subscribes to. */
  interface RelaySocket {
    address(): { address: string; family: string; port: number };
    on(event: 'message', listener: (data: Buffer, rinfo: { address: string; port: number }) => void): RelaySocket;
  }

  interface Transport {
    protocol: number;
    src: Address;
    dst: Address;
    socket: ReplySocket;
    get5Tuple(): string;
    revert(): Transport;
  }

  interface User {
    username: string;
    password: string;
  }

  interface Message {
    server: Server;
    transport: Transport;
    allocation: Allocation | null;
    class: number;
    method: number;
    magicCookie: number;
    transactionID: string;
    useFingerprint: boolean;
    user: User | null;
    /** Body length so far (attributes added with addAttribute count in it). */
    length: number;
    attributes: Attribute[];
    read(buf: Buffer): boolean;
    reply(): Message;
    addAttribute(name: string, value?: unknown): void;
    getAttribute(name: string): unknown;
    getAttributes(name: string): unknown[];
    toBuffer(): Buffer;
    resolve(): void;
    reject(code: number, reason: string): void;
    discard(): void;
  }

  interface Allocation {
    transactionID: string;
    fiveTuple: string;
    user: User;
    lifetime: number;
    timer: ReturnType<typeof setTimeout>;
    relayedTransportAddress: Address;
    mappedAddress: Address;
    sockets: RelaySocket[];
  }

  interface Authentification {
    credentials: Record<string, string | undefined>;
    generateNonce(): string;
    checkNonce(nonce: string): boolean;
    /** Long-term credential check; answers the failures (401, 400, 438, 441) itself. */
    auth(msg: Message, callback: (error: Error | null, reply: Message) => void): void;
  }

  type Handler = (msg: Message, reply: Message) => void;

  interface Server {
    software: string;
    realm: string;
    debugLevel: number;
    allocations: Record<string, Allocation>;
    authentification: Authentification;
    allocate: { allocate: Handler };
    refresh: { refresh: Handler };
    createPermission: { createPermission: Handler };
    channelBind: { channelBind: Handler };
    send: { send: Handler };
    emit(event: 'message', msg: Message): boolean;
    on(event: 'binding', listener: Handler): void;
    removeAllListeners(event: 'binding'): void;
  }

  interface ServerOptions {
    listeningIps?: string[];
    listeningPort?: number;
    relayIps?: string[];
    externalIps?: string | Record<string, string> | null;
    minPort?: number;
    maxPort?: number;
    maxAllocateLifetime?: number;
    defaultAllocatetLifetime?: number;
    authMech?: 'none' | 'short-term' | 'long-term';
    realm?: string;
    credentials?: Record<string, string | undefined>;
    debugLevel?: 'ALL' | 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL' | 'OFF';
    log?: (message: unknown) => void;
  }

  interface Attribute {
    type: number | null;
    name: string | null;
    length: number;
    padding: number;
    value: unknown;
  }
}

declare module 'node-turn/lib/server.js' {
  const Server: new (options: NodeTurn.ServerOptions) => NodeTurn.Server;
  export = Server;
}

declare module 'node-turn/lib/message.js' {
  const Message: new (server: NodeTurn.Server, transport: NodeTurn.Transport) => NodeTurn.Message;
  export = Message;
}

declare module 'node-turn/lib/transport.js' {
  const Transport: new (protocol: number, src: NodeTurn.Address, dst: NodeTurn.Address, socket: NodeTurn.ReplySocket) => NodeTurn.Transport;
  export = Transport;
}

declare module 'node-turn/lib/address.js' {
  const Address: new (address: string, port: number) => NodeTurn.Address;
  export = Address;
}

declare module 'node-turn/lib/allocation.js' {
  const Allocation: new (msg: NodeTurn.Message, sockets: NodeTurn.RelaySocket[], lifetime: number) => NodeTurn.Allocation;
  export = Allocation;
}

declare module 'node-turn/lib/attribute.js' {
  const Attribute: {
    new (msg: NodeTurn.Message, name: string, value: unknown): NodeTurn.Attribute;
    prototype: NodeTurn.Attribute & { read(this: NodeTurn.Attribute, data: Buffer): void; toBuffer(this: NodeTurn.Attribute): Buffer };
  };
  export = Attribute;
}

declare module 'node-turn/lib/constants.js' {
  const CONSTANTS: {
    CLASS: { REQUEST: number; INDICATION: number; SUCCESS: number; ERROR: number };
    METHOD: Record<string, number>;
    TRANSPORT: { PROTOCOL: { UDP: number }; FAMILY: { IPV4: number; IPV6: number } };
  };
  export = CONSTANTS;
}

/**
 * Requests from one node to another through Redis pub/sub: each node subscribes to its own
 * channel (cluster:bus:<node>) and receives there both the requests addressed to it and the
 * replies to its own requests. A request names exactly one target node and carries an id; its
 * reply carries the same id back to the requester's channel.
 *
 * Invariants:
 * - a request goes to one node, never to every node; its promise settles exactly once: with
 *   the handler's answer, with the handler's error code, or with `unavailable` when nobody
 *   listens on the target's channel, Redis cannot take the message, or no reply arrives
 *   within the timeout (a late reply is then ignored);
 * - inbound messages are untrusted text: a malformed envelope is dropped with a debug line,
 *   a handler's failure becomes an error reply; nothing received can throw out of the bus;
 * - payloads and answers travel as JSON (a Date arrives as its ISO string, undefined as absent);
 *   the envelope is checked here, the payload by the handler's `parse` when it has one.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isErrorCode, type WireError } from '../../protocol/errors.js';
import { AppError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertNodeId, ClusterKeys, DEFAULT_CLUSTER_PREFIX, NODE_ID_PATTERN } from './keys.js';

/** The request kinds a cluster uses: kind -> the payload it takes and the answer it gives. */
export type RequestKinds = Record<string, { payload: unknown; answer: unknown }>;

export type RequestHandler<Payload, Answer> = (payload: Payload, context: { from: string }) => Answer | Promise<Answer>;

export interface HandleOptions<Payload> {
  /** Checks an inbound payload (e.g. a zod schema's parse); a throw answers `payload_invalid`. Without it the payload is trusted as typed. */
  parse?: (raw: unknown) => Payload;
}

export interface ClusterBusOptions {
  nodeId: string;
  /** Command connection, for PUBLISH; the bus does not close it. */
  redis: Redis;
  /** A connection of its own for SUBSCRIBE (see createSubscriberConnection); the bus does not close it. */
  subscriber: Redis;
  /** Key prefix (default "sb:"). */
  prefix?: string;
  /** A request's timeout when the caller gives none (ms, default 2000). */
  defaultTimeoutMs?: number;
  /** Larger inbound messages are dropped (bytes of JSON text, default 1 MiB). */
  maxMessageBytes?: number;
  logger?: Logger;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_ID_LENGTH = 100;
const MAX_KIND_LENGTH = 100;

interface RequestMessage {
  v: 1;
  type: 'request';
  id: string;
  from: string;
  kind: string;
  payload?: unknown;
}

type ReplyMessage = { v: 1; type: 'reply'; id: string; from: string } & ({ ok: true; answer?: unknown } | { ok: false; error: WireError });

type Message = RequestMessage | ReplyMessage;

interface Pending {
  target: string;
  kind: string;
  resolve: (answer: unknown) => void;
  reject: (error: AppError) => void;
  timer: NodeJS.Timeout;
}

interface Registered {
  handler: RequestHandler<unknown, unknown>;
  parse: ((raw: unknown) => unknown) | undefined;
}

const isString = (value: unknown, maxLength: number): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= maxLength;

/** The message an inbound text carries, or why it is dropped. */
export function parseBusMessage(text: string): Message | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const message = value as Record<string, unknown>;
  if (message.v !== 1) return 'unknown version';
  if (!isString(message.id, MAX_ID_LENGTH)) return 'bad id';
  if (typeof message.from !== 'string' || !NODE_ID_PATTERN.test(message.from)) return 'bad sender';
  if (message.type === 'request') {
    if (!isString(message.kind, MAX_KIND_LENGTH)) return 'bad kind';
    return { v: 1, type: 'request', id: message.id, from: message.from, kind: message.kind, payload: message.payload };
  }
  if (message.type === 'reply') {
    if (message.ok === true) return { v: 1, type: 'reply', id: message.id, from: message.from, ok: true, answer: message.answer };
    const error = message.error as Record<string, unknown> | null | undefined;
    if (message.ok !== false || typeof error !== 'object' || error === null) return 'bad reply';
    const code = isErrorCode(error.code) ? error.code : 'internal';
    const text = typeof error.message === 'string' ? error.message : 'error';
    return { v: 1, type: 'reply', id: message.id, from: message.from, ok: false, error: { code, message: text } };
  }
  return 'unknown type';
}

/** A request's JSON text; a payload JSON cannot carry (a BigInt, a cycle) is the caller's error. */
function serialize(message: RequestMessage): string {
  try {
    return JSON.stringify(message);
  } catch {
    throw new AppError('payload_invalid', `cluster: the ${message.kind} payload is not JSON`);
  }
}

/** A JSON copy, as a payload or answer arrives through Redis (undefined stays undefined). */
function throughJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}

export class ClusterBus<Kinds extends RequestKinds> {
  readonly nodeId: string;
  private readonly keys: ClusterKeys;
  private readonly channel: string;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly defaultTimeoutMs: number;
  private readonly maxMessageBytes: number;
  private readonly logger: Logger | undefined;
  private readonly handlers = new Map<string, Registered>();
  private readonly pending = new Map<string, Pending>();
  private readonly onMessage = (channel: string, text: string): void => {
    if (channel === this.channel) this.receive(text);
  };
  private started: Promise<void> | null = null;
  private closed = false;

  constructor(options: ClusterBusOptions) {
    this.nodeId = assertNodeId(options.nodeId);
    this.keys = new ClusterKeys(options.prefix ?? DEFAULT_CLUSTER_PREFIX);
    this.channel = this.keys.busChannel(this.nodeId);
    this.redis = options.redis;
    this.subscriber = options.subscriber;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.logger = options.logger?.child({ module: 'cluster-bus' });
  }

  /** Subscribes to this node's channel; requests to it are answered from then on. Rejects with `unavailable` when Redis cannot subscribe. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new AppError('unavailable', 'cluster: the bus is closed'));
    this.started ??= (async () => {
      this.subscriber.on('message', this.onMessage);
      try {
        await this.subscriber.subscribe(this.channel);
      } catch (error) {
        this.subscriber.off('message', this.onMessage);
        this.started = null;
        throw new AppError(
          'unavailable',
          `cluster: cannot subscribe to the bus: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    })();
    return this.started;
  }

  /** Answers requests of this kind (one handler per kind; a later one replaces it). Returns a function that removes it. */
  handle<K extends keyof Kinds & string>(
    kind: K,
    handler: RequestHandler<Kinds[K]['payload'], Kinds[K]['answer']>,
    options: HandleOptions<Kinds[K]['payload']> = {},
  ): () => void {
    const registered: Registered = { handler: handler as RequestHandler<unknown, unknown>, parse: options.parse };
    this.handlers.set(kind, registered);
    return () => {
      if (this.handlers.get(kind) === registered) this.handlers.delete(kind);
    };
  }

  /**
   * Sends a request to one node and resolves with its handler's answer. Rejects with an
   * AppError: the handler's code when it failed, `unavailable` when the node is not
   * listening (gone), Redis cannot publish, or no answer arrives within timeoutMs. A request
   * to this node itself runs its handler here, without Redis.
   */
  async request<K extends keyof Kinds & string>(
    nodeId: string,
    kind: K,
    payload: Kinds[K]['payload'],
    options: { timeoutMs?: number } = {},
  ): Promise<Kinds[K]['answer']> {
    if (this.closed) throw new AppError('unavailable', 'cluster: the bus is closed');
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (nodeId === this.nodeId) {
      // The handler sees what it would see through Redis: a JSON copy.
      const copy = JSON.parse(serialize({ v: 1, type: 'request', id: 'self', from: this.nodeId, kind, payload })) as RequestMessage;
      return (await this.requestSelf(kind, copy.payload, timeoutMs)) as Kinds[K]['answer'];
    }
    const target = assertNodeId(nodeId);
    const id = randomUUID();
    const text = serialize({ v: 1, type: 'request', id, from: this.nodeId, kind, payload } satisfies RequestMessage);
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id, new AppError('unavailable', `cluster: node ${target} did not answer ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { target, kind, resolve, reject, timer });
    });
    try {
      const receivers = await this.redis.publish(this.keys.busChannel(target), text);
      if (receivers === 0) this.settle(id, new AppError('unavailable', `cluster: node ${target} is not listening`));
    } catch (error) {
      // The caller is told what failed; the Redis client's text (it may name internal hosts) goes to the log and the cause.
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error), kind, target }, 'bus request not sent');
      this.settle(
        id,
        new AppError('unavailable', `cluster: cannot send ${kind} to node ${target} (Redis does not answer); try again`, { cause: error }),
      );
    }
    return (await answer) as Kinds[K]['answer'];
  }

  /** Unsubscribes and fails every pending request with `unavailable`; handlers still running are not answered. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, new AppError('unavailable', 'cluster: the bus is closed'));
    const started = this.started;
    this.started = null;
    this.subscriber.off('message', this.onMessage);
    if (!started) return;
    try {
      await started;
      await this.subscriber.unsubscribe(this.channel);
    } catch (error) {
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error) }, 'bus unsubscribe failed');
    }
  }

  /** How many requests await an answer (for tests and metrics). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Settles a pending request once: with an answer, or with an error. */
  private settle(id: string, outcome: AppError | { answer: unknown }): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (outcome instanceof AppError) pending.reject(outcome);
    else pending.resolve(outcome.answer);
  }

  private async requestSelf(kind: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AppError('unavailable', `cluster: this node did not answer ${kind} within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const outcome = await Promise.race([this.answer(kind, payload, this.nodeId), late]);
      if (!outcome.ok) throw new AppError(outcome.error.code, outcome.error.message);
      return outcome.answer;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs the kind's handler; every failure becomes a wire error (AppError keeps its code, anything else is `internal`). */
  private async answer(
    kind: string,
    rawPayload: unknown,
    from: string,
  ): Promise<{ ok: true; answer: unknown } | { ok: false; error: WireError }> {
    const registered = this.handlers.get(kind);
    if (!registered)
      return { ok: false, error: { code: 'unavailable', message: `cluster: node ${this.nodeId} has no handler for ${kind}` } };
    let payload: unknown;
    try {
      payload = registered.parse ? registered.parse(rawPayload) : rawPayload;
    } catch {
      return { ok: false, error: { code: 'payload_invalid', message: `cluster: invalid ${kind} payload` } };
    }
    try {
      return { ok: true, answer: throughJson(await registered.handler(payload, { from })) };
    } catch (error) {
      if (!(error instanceof AppError)) this.logger?.error({ err: error, kind, from }, 'bus handler failed');
      return { ok: false, error: toWireError(error) };
    }
  }

  private receive(text: string): void {
    if (this.closed) return;
    if (Buffer.byteLength(text) > this.maxMessageBytes) {
      this.logger?.debug({ bytes: Buffer.byteLength(text) }, 'bus message dropped: too large');
      return;
    }
    const message = parseBusMessage(text);
    if (typeof message === 'string') {
      this.logger?.debug({ reason: message }, 'bus message dropped: malformed');
      return;
    }
    if (message.type === 'reply') {
      if (!this.pending.has(message.id)) {
        this.logger?.debug({ id: message.id, from: message.from }, 'bus reply dropped: no such pending request (late or unknown)');
        return;
      }
      if (this.pending.get(message.id)?.target !== message.from) {
        this.logger?.debug({ id: message.id, from: message.from }, 'bus reply dropped: not from the request target');
        return;
      }
      this.settle(message.id, message.ok ? { answer: message.answer } : new AppError(message.error.code, message.error.message));
      return;
    }
    void this.serve(message);
  }

  private async serve(request: RequestMessage): Promise<void> {
    const outcome = await this.answer(request.kind, request.payload, request.from);
    if (this.closed) return;
    const reply: ReplyMessage = { v: 1, type: 'reply', id: request.id, from: this.nodeId, ...outcome };
    try {
      await this.redis.publish(this.keys.busChannel(request.from), JSON.stringify(reply));
    } catch (error) {
      this.logger?.debug({ err: error instanceof Error ? error.message : String(error), kind: request.kind }, 'bus reply not sent');
    }
  }
}

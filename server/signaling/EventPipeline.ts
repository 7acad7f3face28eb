import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { z } from 'zod';
import type { WireError } from '../../protocol/errors.js';
import type { AckResponse, ClientEventAck, ClientEventName, ClientEventPayload, EmptyAck } from '../../protocol/events.js';
import { clientEventSchemas, describeIssues } from '../../protocol/schemas.js';
import type { Config } from '../../config/index.js';
import { AppError, toWireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../Metrics.js';
import { EventWindow } from './EventWindow.js';
import { isPlainSignal } from './signalShape.js';
import type { AppSocket } from './types.js';

/** The handler of client event E: gets E's validated payload and answers E's ack body, or throws (an AppError for the client). */
export type ClientEventHandler<E extends ClientEventName> = (
  socket: AppSocket,
  payload: ClientEventPayload<E>,
) => ClientEventAck<E> | Promise<ClientEventAck<E>>;

/** Exactly one handler per client event. */
export type ClientEventHandlers = { [E in ClientEventName]: ClientEventHandler<E> };

/**
 * The body of every ack with nothing to add to `ok: true`. Handlers return this object so the
 * pipeline answers with one shared ack (OK_ACK) instead of a new object per event.
 */
export const EMPTY_ACK: EmptyAck = Object.freeze({});
const OK_ACK = Object.freeze({ ok: true as const });

/** Socket.IO passes the client's ack callback as the last argument when the client asked for one. */
type AckCallback = (response: AckResponse) => void;

/** Each event's payload schema, typed by the payload it yields. */
const payloadSchemas: { [E in ClientEventName]: z.ZodType<ClientEventPayload<E>> } = clientEventSchemas;

/**
 * Checks ahead of zod that accept a subset of what the event's schema accepts (and need no
 * transforms); anything they do not accept goes through zod, which also words the error.
 */
const QUICK_CHECKS: { [E in ClientEventName]?: (payload: unknown) => payload is ClientEventPayload<E> } = { signal: isPlainSignal };

function isClientEventName(name: unknown): name is ClientEventName {
  return typeof name === 'string' && Object.hasOwn(clientEventSchemas, name);
}

const CLIENT_EVENT_NAMES: readonly ClientEventName[] = Object.keys(clientEventSchemas).filter(isClientEventName);

/** An sfu:* request slower than this is logged (the SDK gives up on an answer after 10 s). */
const SLOW_REQUEST_SECONDS = 5;

export interface EventPipelineOptions {
  handlers: ClientEventHandlers;
  limits: Pick<Config['rateLimits'], 'eventsPerSocketPerSecond' | 'strikesBeforeDisconnect'>;
  metrics: Metrics;
}

/**
 * What every client event goes through on a connected socket: the per-socket rate limit (a
 * socket that keeps flooding is disconnected), refusal of unknown events, one payload checked
 * against the event's schema, the event's handler, the ack, and the events metrics. Every error
 * reaches the client as an ack `{ok:false, error:{code,message}}`, or as an `error` event when
 * the client asked for no ack.
 */
export class EventPipeline {
  private readonly strikeLimiter: RateLimiterMemory;
  /** The events{event, result="ok"} counter children, bound once per event (label lookup is per call otherwise). */
  private readonly okCounters = new Map<ClientEventName, { inc(): void }>();

  constructor(private readonly options: EventPipelineOptions) {
    this.strikeLimiter = new RateLimiterMemory({ keyPrefix: 'st', points: options.limits.strikesBeforeDisconnect, duration: 60 });
  }

  /** Serves the events of a socket that just connected. */
  serve(socket: AppSocket, log: Logger): void {
    // Every inbound packet passes here before any handler runs: an unknown event is answered
    // with an error (and still counted), then the per-socket rate limit (synchronously: a fixed
    // window per socket, see EventWindow). One middleware and no onAny listener (socket.io copies
    // the onAny listener array and applies each listener for every packet).
    const events = new EventWindow(this.options.limits.eventsPerSocketPerSecond, 1000);
    let refused = 0;
    socket.use((packet, next) => {
      // Packets read in the same chunk as a disconnect still arrive here: drop them.
      if (socket.disconnected) return;
      const event: unknown = packet[0];
      const ack = packet.at(-1);
      const refuse = (error: WireError) => (typeof ack === 'function' ? ack({ ok: false, error }) : socket.emit('error', error));
      if (events.take()) {
        if (isClientEventName(event)) return next();
        // An unknown event counts against the limit too, and is answered (its ack as well).
        refuse({ code: 'payload_invalid', message: 'unknown event' });
        return;
      }
      this.options.metrics.rateLimited.inc({ limiter: 'events' });
      refused++;
      refuse({ code: 'rate_limited', message: 'too many events; slow down' });
      this.strikeLimiter.consume(socket.id).catch(() => {
        // One line per socket, however many of its events were refused.
        if (socket.data.closeReason === 'rate_limited') return;
        log.warn({ refused }, 'socket kept flooding after rate limiting; disconnecting');
        socket.data.closeReason = 'rate_limited';
        socket.disconnect(true);
      });
    });
    for (const event of CLIENT_EVENT_NAMES) this.listen(socket, event, log);
    socket.on('disconnect', () => {
      this.strikeLimiter.delete(socket.id).catch(() => undefined);
    });
  }

  private listen<E extends ClientEventName>(socket: AppSocket, event: E, log: Logger): void {
    const handler: ClientEventHandler<E> = this.options.handlers[event];
    const name: ClientEventName = event;
    socket.on(name, (...args: unknown[]) => this.dispatch(socket, event, handler, args, log));
  }

  private dispatch<E extends ClientEventName>(
    socket: AppSocket,
    event: E,
    handler: ClientEventHandler<E>,
    args: unknown[],
    log: Logger,
  ): void {
    const ack = typeof args.at(-1) === 'function' ? (args.pop() as AckCallback) : undefined;
    try {
      const answer = handler(socket, this.payload(event, args));
      // Most handlers (signal above all) answer synchronously: no promise, no turn of the microtask queue.
      if (answer instanceof Promise) {
        if (event.startsWith('sfu:')) this.timeSfuRequest(event, answer, log);
        answer.then((body) => this.succeeded(event, ack, body)).catch((error: unknown) => this.failed(socket, event, ack, error, log));
      } else {
        this.succeeded(event, ack, answer);
      }
    } catch (error) {
      this.failed(socket, event, ack, error, log);
    }
  }

  /** The event's one payload, checked: by its quick check when there is one and it passes, else by its zod schema. */
  private payload<E extends ClientEventName>(event: E, args: unknown[]): ClientEventPayload<E> {
    if (args.length > 1) throw new AppError('payload_invalid', 'send one payload object');
    const payload = args[0];
    const quickCheck = QUICK_CHECKS[event];
    if (quickCheck?.(payload)) return payload;
    const parsed = payloadSchemas[event].safeParse(payload);
    if (!parsed.success) throw new AppError('payload_invalid', describeIssues(parsed.error));
    return parsed.data;
  }

  private timeSfuRequest(event: ClientEventName, answer: Promise<unknown>, log: Logger): void {
    const timer = this.options.metrics.sfuRequestDuration.startTimer({ event });
    void answer
      .finally(() => {
        const seconds = timer();
        if (seconds > SLOW_REQUEST_SECONDS) log.warn({ event, seconds }, 'slow SFU request');
      })
      .catch(() => undefined);
  }

  private succeeded(event: ClientEventName, ack: AckCallback | undefined, body: object): void {
    this.okCounter(event).inc();
    ack?.(body === EMPTY_ACK ? OK_ACK : { ok: true, ...body });
  }

  private failed(socket: AppSocket, event: ClientEventName, ack: AckCallback | undefined, error: unknown, log: Logger): void {
    if (!(error instanceof AppError)) log.error({ err: error, event }, 'handler failed');
    const wire = toWireError(error);
    this.options.metrics.events.inc({ event, result: wire.code });
    if (ack) ack({ ok: false, error: wire });
    else socket.emit('error', wire);
  }

  private okCounter(event: ClientEventName): { inc(): void } {
    let counter = this.okCounters.get(event);
    if (!counter) {
      counter = this.options.metrics.events.labels({ event, result: 'ok' });
      this.okCounters.set(event, counter);
    }
    return counter;
  }
}

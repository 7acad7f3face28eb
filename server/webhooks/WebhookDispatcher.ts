/**
 * Delivers LiveKit-style webhooks (room_started, room_finished, participant_joined,
 * participant_left, mode_changed) to each tenant's configured URL, signed (signature.ts).
 *
 * Signaling never waits for a receiver: events are built synchronously from RoomManager
 * events and pushed onto a bounded in-memory queue per tenant; a few deliveries per tenant
 * run at once, each with a per-request timeout and bounded retries with exponential backoff
 * and jitter. When a tenant's queue is full (a slow or dead receiver) the oldest event is
 * dropped and counted, so memory stays bounded. Delivery is at-least-once while the process
 * lives (receivers de-duplicate on the event id) and at-most-once across restarts.
 */
import { randomUUID } from 'node:crypto';
import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import type { Metadata, RoomConfigInfo, RoomMode } from '../../protocol/events.js';
import type { Logger } from '../logger.js';
import { expectedPeerInfo, type Peer } from '../rooms/Peer.js';
import type { Room } from '../rooms/Room.js';
import type { RoomManager } from '../rooms/RoomManager.js';
import type { Store, WebhookConfig } from '../store/Store.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './signature.js';
import { WebhookUrlPolicy, type WebhookUrlPolicyOptions } from './WebhookUrlPolicy.js';

export const WEBHOOK_EVENTS = ['room_started', 'room_finished', 'participant_joined', 'participant_left', 'mode_changed'] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookRoomInfo {
  room_id: string;
  /** Current topology. */
  mode: RoomMode;
  /** Connections in the room, hidden ones included. */
  num_participants: number;
  started_at: string;
  config: RoomConfigInfo;
}

export interface WebhookParticipantInfo {
  id: string;
  user_id: string;
  name: string;
  metadata: Metadata;
  joined_at: string;
  hidden: boolean;
}

/** The JSON body of every webhook request. */
export interface WebhookEvent {
  event: WebhookEventName;
  /** Unique per event, the same on every retry: receivers de-duplicate on it. */
  id: string;
  created_at: string;
  tenant_id: string;
  room: WebhookRoomInfo;
  participant?: WebhookParticipantInfo;
  /** room_finished, participant_left, mode_changed: why. */
  reason?: string;
}

/** Delivery tuning; every field has a default. */
export interface WebhookDeliverySettings {
  /** Attempts per event, the first included. Default 6. */
  maxAttempts: number;
  /** Delay before the first retry; doubles each retry (with jitter). Default 1000 ms. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Per-request deadline (connect, headers). Default 5000 ms. */
  timeoutMs: number;
  /** Queued (not yet in flight) events per tenant; beyond it the oldest is dropped. Default 1000. */
  maxQueuePerTenant: number;
  /** Queued events over all tenants. Default 20000. */
  maxQueued: number;
  /** Deliveries in flight per tenant. Default 4. */
  concurrencyPerTenant: number;
}

/** What createServer accepts: delivery tuning and the URL policy (SSRF). */
export type WebhookSettings = Partial<WebhookDeliverySettings> & WebhookUrlPolicyOptions;

export interface WebhookDispatcherOptions {
  store: Store;
  logger: Logger;
  policy: WebhookUrlPolicy;
  settings?: Partial<WebhookDeliverySettings>;
}

export const DEFAULT_WEBHOOK_SETTINGS: Readonly<WebhookDeliverySettings> = {
  maxAttempts: 6,
  initialBackoffMs: 1000,
  maxBackoffMs: 30_000,
  timeoutMs: 5000,
  maxQueuePerTenant: 1000,
  maxQueued: 20_000,
  concurrencyPerTenant: 4,
};

/** Delivery counters (for metrics and tests). */
export interface WebhookStats {
  delivered: number;
  /** Events given up after the last attempt or a non-retryable answer. */
  failed: number;
  /** Events dropped because a queue was full or the dispatcher closed. */
  dropped: number;
  /** Individual HTTP attempts, retries included. */
  attempts: number;
  queued: number;
}

interface TenantQueue {
  pending: WebhookEvent[];
  inFlight: number;
}

/** `retryAfterMs`: the receiver's Retry-After (429, 503), which the next attempt waits at least. */
type AttemptResult = { ok: true } | { ok: false; retry: boolean; problem: string; retryAfterMs?: number };

const USER_AGENT = 'Switchboard-Webhooks/1';

export class WebhookDispatcher {
  private readonly settings: WebhookDeliverySettings;
  private readonly logger: Logger;
  private readonly queues = new Map<string, TenantQueue>();
  private readonly requests = new Set<ClientRequest>();
  private readonly sleeps = new Set<() => void>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly unsubscribers: (() => void)[] = [];
  private queued = 0;
  private closed = false;
  private aborted = false;
  private lastDropLog = 0;
  readonly stats: WebhookStats = { delivered: 0, failed: 0, dropped: 0, attempts: 0, queued: 0 };

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.settings = { ...DEFAULT_WEBHOOK_SETTINGS, ...options.settings };
    this.logger = options.logger.child({ module: 'webhooks' });
  }

  /** The URL policy tenants' webhook URLs are checked against. */
  get policy(): WebhookUrlPolicy {
    return this.options.policy;
  }

  /** Subscribes to the room lifecycle. */
  attach(rooms: RoomManager): void {
    this.unsubscribers.push(
      // A room that moved in from another node, and a participant taking its place back there,
      // go on without a start or a join; a participant leaving a room that moved away, or whose
      // connection dropped (its place is held), has not left it.
      rooms.on('room_started', (room) => {
        if (!room.movedIn) this.enqueue(this.event('room_started', room));
      }),
      // A room that moved away ends once, on its new node (its old node closing it too sends nothing).
      rooms.on('room_finished', (room, reason) => {
        if (!room.movingOut) this.enqueue({ ...this.event('room_finished', room), reason });
      }),
      rooms.on('peer_joined', (room, peer, resumed) => {
        if (!resumed) this.enqueue({ ...this.event('participant_joined', room), participant: participantInfo(peer) });
      }),
      rooms.on('peer_left', (room, peer, reason, exit) => {
        if (exit !== 'moved' && exit !== 'suspended')
          this.enqueue({ ...this.event('participant_left', room), participant: participantInfo(peer), reason });
      }),
      rooms.on('expected_left', (room, place, reason) =>
        this.enqueue({
          ...this.event('participant_left', room),
          participant: { ...expectedPeerInfo(place), joined_at: place.joinedAt.toISOString(), hidden: place.hidden },
          reason,
        }),
      ),
    );
  }

  /** Called by the SFU work after a room changed topology (room.mode is the new mode). */
  modeChanged(room: Room, reason: string): void {
    // A room that moved in resumes the mode it had: no change for the tenant.
    if (reason === 'moved') return;
    this.enqueue({ ...this.event('mode_changed', room), reason });
  }

  /**
   * Stops taking events, gives queued and in-flight deliveries up to graceMs to finish, then
   * aborts the rest. Idempotent.
   */
  async close(graceMs = 1000): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    }
    if (this.queues.size > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.idleWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, graceMs);
        this.idleWaiters.add(done);
      });
    }
    this.aborted = true;
    for (const queue of this.queues.values()) {
      this.stats.dropped += queue.pending.length;
      this.queued -= queue.pending.length;
      queue.pending.length = 0;
    }
    this.stats.queued = this.queued;
    for (const request of this.requests) request.destroy(new Error('webhook dispatcher closed'));
    for (const wake of this.sleeps) wake();
  }

  private event(event: WebhookEventName, room: Room): WebhookEvent {
    return { event, id: randomUUID(), created_at: new Date().toISOString(), tenant_id: room.tenantId, room: roomInfo(room) };
  }

  /** Synchronous and bounded: never waits, never grows past the limits. */
  private enqueue(event: WebhookEvent): void {
    if (this.closed) return;
    let queue = this.queues.get(event.tenant_id);
    if (!queue) {
      queue = { pending: [], inFlight: 0 };
      this.queues.set(event.tenant_id, queue);
    }
    if (queue.pending.length >= this.settings.maxQueuePerTenant || this.queued >= this.settings.maxQueued) {
      const oldest = queue.pending.shift();
      if (oldest) this.queued--;
      this.stats.dropped++;
      this.logDrop(event.tenant_id);
      if (!oldest) {
        this.stats.queued = this.queued;
        if (queue.inFlight === 0) this.queues.delete(event.tenant_id);
        return;
      }
    }
    queue.pending.push(event);
    this.queued++;
    this.stats.queued = this.queued;
    this.pump(event.tenant_id, queue);
  }

  private pump(tenantId: string, queue: TenantQueue): void {
    while (queue.inFlight < this.settings.concurrencyPerTenant && queue.pending.length > 0 && !this.aborted) {
      const event = queue.pending.shift() as WebhookEvent;
      this.queued--;
      this.stats.queued = this.queued;
      queue.inFlight++;
      this.deliver(event)
        .catch((error: unknown) => this.logger.error({ err: error, tenant: tenantId, event: event.event }, 'webhook delivery crashed'))
        .finally(() => {
          queue.inFlight--;
          this.pump(tenantId, queue);
          if (queue.inFlight === 0 && queue.pending.length === 0 && this.queues.get(tenantId) === queue) {
            this.queues.delete(tenantId);
            if (this.queues.size === 0) for (const wake of [...this.idleWaiters]) wake();
          }
        });
    }
  }

  private async deliver(event: WebhookEvent): Promise<void> {
    const log = this.logger.child({ tenant: event.tenant_id, event: event.event, id: event.id });
    let hook: WebhookConfig | null | undefined;
    try {
      hook = (await this.options.store.tenants.get(event.tenant_id))?.webhook;
    } catch (error) {
      this.stats.failed++;
      log.warn({ err: error }, 'webhook not delivered: tenant lookup failed');
      return;
    }
    if (!hook) return;
    const body = JSON.stringify(event);
    let last: AttemptResult = { ok: false, retry: false, problem: 'not attempted' };
    for (let attempt = 1; attempt <= this.settings.maxAttempts && !this.aborted; attempt++) {
      last = await this.attempt(hook, event, body);
      if (last.ok) {
        this.stats.delivered++;
        log.debug({ attempt }, 'webhook delivered');
        return;
      }
      log.debug({ attempt, problem: last.problem }, 'webhook attempt failed');
      if (!last.retry || attempt === this.settings.maxAttempts) break;
      const backoff = Math.min(this.settings.maxBackoffMs, this.settings.initialBackoffMs * 2 ** (attempt - 1));
      const jittered = backoff / 2 + Math.random() * (backoff / 2);
      // A receiver's Retry-After is honoured up to the longest backoff (a delivery holds one of its tenant's slots while it waits).
      await this.sleep(Math.min(this.settings.maxBackoffMs, Math.max(jittered, last.retryAfterMs ?? 0)));
    }
    this.stats.failed++;
    log.warn({ problem: last.ok ? undefined : last.problem }, 'webhook not delivered');
  }

  /** One POST. Resolves (never rejects) with whether it worked and whether to retry. */
  private attempt(hook: WebhookConfig, event: WebhookEvent, body: string): Promise<AttemptResult> {
    // Re-checked at send time: the policy may be stricter than when the URL was stored, and
    // IP-literal hosts never reach the lookup hook.
    const problem = this.options.policy.problem(hook.url);
    if (problem) return Promise.resolve({ ok: false, retry: false, problem });
    this.stats.attempts++;
    const url = new URL(hook.url);
    const timestamp = Math.floor(Date.now() / 1000);
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (result: AttemptResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.requests.delete(request);
        resolve(result);
      };
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: false,
        lookup: this.options.policy.lookup,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': USER_AGENT,
          [EVENT_HEADER]: event.event,
          [DELIVERY_HEADER]: event.id,
          [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: signWebhook(hook.secret, timestamp, body),
        },
      });
      const timer = setTimeout(
        () => request.destroy(new Error(`no response within ${this.settings.timeoutMs} ms`)),
        this.settings.timeoutMs,
      );
      this.requests.add(request);
      request.on('response', (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) finish({ ok: true });
        // Redirects are not followed (they could point inside the network); other 4xx are final.
        else
          finish({
            ok: false,
            retry: status >= 500 || status === 408 || status === 429,
            problem: `HTTP ${status}`,
            retryAfterMs: retryAfterMs(response.headers['retry-after']),
          });
        request.destroy();
      });
      // A host the address policy refused at connect time stays refused: no retry.
      request.on('error', (error) =>
        finish({ ok: false, retry: !this.aborted && (error as NodeJS.ErrnoException).code !== 'EADDRNOTALLOWED', problem: error.message }),
      );
      request.end(body);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeps.add(wake);
    });
  }

  private logDrop(tenantId: string): void {
    const now = Date.now();
    if (now - this.lastDropLog < 10_000) return;
    this.lastDropLog = now;
    this.logger.warn({ tenant: tenantId, dropped: this.stats.dropped }, 'webhook queue full; dropping the oldest events');
  }
}

function roomInfo(room: Room): WebhookRoomInfo {
  return {
    room_id: room.id,
    mode: room.mode,
    num_participants: room.size,
    started_at: room.createdAt.toISOString(),
    config: { ...room.config },
  };
}

function participantInfo(peer: Peer): WebhookParticipantInfo {
  return { ...peer.info(), joined_at: peer.joinedAt.toISOString(), hidden: peer.hidden };
}

/** A Retry-After header (seconds, or an HTTP date) in milliseconds from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

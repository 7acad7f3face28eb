import { expect } from 'chai';
import { retryAfterMs } from '../../server/webhooks/WebhookDispatcher.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WebhookReceiver } from '../helpers/webhookReceiver.js';
import { call, createTenant, joinVia, type ApiTenant } from './helpers.js';

const SECRET = 'whsec_delivery_0123456789abcdef';

/**
 * How the dispatcher treats a receiver's answer. Each join below makes two events
 * (room_started, participant_joined). The dispatcher counts an event as failed only after its
 * last attempt, so `failed` reaching N with `attempts` equal to N proves nothing was retried.
 */
describe('api: webhook delivery by receiver answer', function () {
  this.timeout(20000);
  let t: TestServer;
  let a: ApiTenant;
  const receivers: WebhookReceiver[] = [];

  afterEach(async () => {
    await t?.close();
    for (const receiver of receivers.splice(0)) await receiver.close();
  });

  async function setUp(
    delivery: { maxAttempts: number; maxBackoffMs: number } = { maxAttempts: 3, maxBackoffMs: 50 },
  ): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    receivers.push(receiver);
    const url = await receiver.start();
    t = await startServer({}, { webhooks: { allowedCidrs: ['127.0.0.0/8'], initialBackoffMs: 20, timeoutMs: 2000, ...delivery } });
    a = await createTenant(t);
    expect((await call(t, 'PUT', '/api/v1/webhook', { secret: a.api_secret, body: { url, secret: SECRET } })).status).to.equal(200);
    return receiver;
  }

  /** The status code a room's events get, from the room id ("s404" -> 404). */
  const statusOf = (roomId: string): number => Number(roomId.slice(1));

  it('does not retry a final 4xx: one attempt per event, counted as failed', async () => {
    const receiver = await setUp();
    receiver.answer = (event) => ({ status: statusOf(event.room.room_id) });
    const statuses = [400, 401, 403, 404, 410, 422];
    for (const status of statuses) await joinVia(t, a, { room_id: `s${status}`, user_id: 'u' });
    const events = statuses.length * 2;
    await waitFor(() => t.server.webhooks.stats.failed === events, 10000, 'every event given up');
    expect(t.server.webhooks.stats).to.deep.include({ attempts: events, delivered: 0, failed: events });
    const ids = receiver.received.map((r) => r.event.id);
    expect(ids).to.have.length(events);
    expect(new Set(ids).size, 'each event id once').to.equal(events);
  });

  it('retries 408, 429 and 503 with the same event, and delivers on the next answer', async () => {
    const receiver = await setUp();
    receiver.answer = (event, attempt) => ({ status: attempt === 1 ? statusOf(event.room.room_id) : 204 });
    const statuses = [408, 429, 503];
    for (const status of statuses) await joinVia(t, a, { room_id: `s${status}`, user_id: 'u' });
    const events = statuses.length * 2;
    await waitFor(() => t.server.webhooks.stats.delivered === events, 10000, 'every event delivered');
    expect(t.server.webhooks.stats).to.deep.include({ attempts: 2 * events, delivered: events, failed: 0 });
    for (const status of statuses) {
      const got = receiver.received.filter((r) => r.event.room.room_id === `s${status}`);
      const byId = new Map<string, string[]>();
      for (const r of got) byId.set(r.event.id, [...(byId.get(r.event.id) ?? []), r.raw]);
      expect(byId.size, `events of s${status}`).to.equal(2);
      // The retry carries the same event (same id, same body) as the first attempt.
      for (const bodies of byId.values())
        expect(bodies.length === 2 && bodies[0] === bodies[1], `s${status}: two identical attempts`).to.equal(true);
    }
  });

  it('does not follow redirects: the redirected-to server gets nothing and the event is not retried', async () => {
    const receiver = await setUp();
    const target = new WebhookReceiver();
    receivers.push(target);
    const targetUrl = await target.start();
    receiver.answer = (event) => ({ status: statusOf(event.room.room_id), headers: { location: targetUrl } });
    const statuses = [301, 302, 303, 307, 308];
    for (const status of statuses) await joinVia(t, a, { room_id: `s${status}`, user_id: 'u' });
    const events = statuses.length * 2;
    await waitFor(() => t.server.webhooks.stats.failed === events, 10000, 'every redirected event given up');
    expect(t.server.webhooks.stats).to.deep.include({ attempts: events, delivered: 0, failed: events });
    expect(receiver.received).to.have.length(events);
    expect(target.received, 'requests at the redirect target').to.deep.equal([]);
  });

  it("waits at least the receiver's Retry-After before the next attempt", async () => {
    const receiver = await setUp({ maxAttempts: 2, maxBackoffMs: 5000 });
    receiver.answer = (_event, attempt) => (attempt === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 });
    await joinVia(t, a, { room_id: 'later', user_id: 'u' });
    await waitFor(() => t.server.webhooks.stats.delivered === 2, 10000, 'both events delivered on their second attempt');
    for (const name of ['room_started', 'participant_joined']) {
      const [first, second] = receiver.events(name);
      // A lower bound only: the dispatcher's own backoff here is 10-20 ms.
      expect((second?.at ?? 0) - (first?.at ?? 0), `${name}: gap between attempts`).to.be.at.least(1000);
    }
  });

  it('reads Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-06T10:00:00Z');
    expect(retryAfterMs('3', now)).to.equal(3000);
    expect(retryAfterMs('Sun, 06 Dec 2026 10:00:05 GMT', now)).to.equal(5000);
    expect(retryAfterMs('Sun, 06 Dec 2026 09:00:00 GMT', now)).to.equal(0);
    expect([retryAfterMs(undefined, now), retryAfterMs('soon', now)]).to.deep.equal([undefined, undefined]);
  });
});

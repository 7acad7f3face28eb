import { expect } from 'chai';
import type { ModeChangedMessage } from '../../protocol/events.js';
import { call, createTenant, joinVia, type ApiTenant } from '../api/helpers.js';
import { nextEvent, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WebhookReceiver } from '../helpers/webhookReceiver.js';

interface Segment {
  mode: string;
  from: string;
  to: string | null;
}
interface SessionRow {
  user_id: string;
  disconnected_at: string | null;
  segments: Segment[];
}

/**
 * The real promotion and demotion (mediasoup workers, Socket.IO joins and leaves) reach the
 * audit trail: every open session gets a segment in the new mode, and the tenant's webhook
 * receiver gets mode_changed. Other tests set room.mode by hand; this one does not.
 */
describe('SFU mode changes reach sessions and webhooks (real mediasoup workers)', function () {
  this.timeout(30000);
  let t: TestServer;
  let a: ApiTenant;
  let receiver: WebhookReceiver;
  let receiverUrl: string;

  beforeEach(async () => {
    receiver = new WebhookReceiver();
    const url = (receiverUrl = await receiver.start());
    t = await startServer(
      { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1', DEMOTE_DELAY_MS: '300' },
      { webhooks: { allowedCidrs: ['127.0.0.0/8'] } },
    );
    a = await createTenant(t);
    expect(
      (await call(t, 'PUT', '/api/v1/webhook', { secret: a.api_secret, body: { url, secret: 'whsec_mode_0123456789abcdef' } })).status,
    ).to.equal(200);
  });
  afterEach(async () => {
    await t?.close();
    await receiver?.close();
  });

  const sessions = async (): Promise<Map<string, SessionRow>> => {
    await t.server.sessions.flush();
    const response = await call(t, 'GET', '/api/v1/sessions?room_id=grow', { secret: a.api_secret });
    expect(response.status).to.equal(200);
    return new Map((response.body.sessions as SessionRow[]).map((s) => [s.user_id, s]));
  };
  const modes = (session: SessionRow | undefined): string[] => (session?.segments ?? []).map((s) => s.mode);
  /** Consecutive segments touch: each ends where the next starts; only the last may be open. */
  const expectContiguous = (session: SessionRow | undefined): void => {
    const segments = session?.segments ?? [];
    for (let i = 1; i < segments.length; i++) expect(segments[i - 1]?.to, `${session?.user_id} segment ${i}`).to.equal(segments[i]?.from);
    expect(segments.at(-1)?.to ?? null).to.equal(session?.disconnected_at ?? null);
  };

  it('a stored room with mesh_threshold 2: promoted by the third join, demoted after two leave', async () => {
    const stored = await call(t, 'POST', '/api/v1/rooms', { secret: a.api_secret, body: { room_id: 'grow', mesh_threshold: 2 } });
    expect(stored.status, JSON.stringify(stored.body)).to.equal(201);
    const alice = await joinVia(t, a, { room_id: 'grow', user_id: 'alice' });
    const bob = await joinVia(t, a, { room_id: 'grow', user_id: 'bob' });
    expect(t.server.rooms.get(a.tenant_id, 'grow')?.mode).to.equal('mesh');

    const promoted = nextEvent<ModeChangedMessage>(alice.client, 'mode_changed', 10000);
    const carol = await joinVia(t, a, { room_id: 'grow', user_id: 'carol' });
    expect(await promoted).to.deep.include({ mode: 'sfu', reason: 'threshold' });

    // Sessions: each of the three was open in mesh and now has an open SFU segment.
    const afterPromotion = await sessions();
    expect([...afterPromotion.keys()].sort()).to.deep.equal(['alice', 'bob', 'carol']);
    for (const session of afterPromotion.values()) {
      expect(modes(session), session.user_id).to.deep.equal(['mesh', 'sfu']);
      expect(session.disconnected_at).to.equal(null);
      expectContiguous(session);
    }
    const promotedAt = afterPromotion.get('alice')?.segments[1]?.from;
    for (const session of afterPromotion.values()) expect(session.segments[1]?.from, 'one instant for the whole room').to.equal(promotedAt);

    // Webhook: mode_changed with the room as it is after the move.
    await waitFor(() => receiver.events('mode_changed').length === 1, 10000, 'mode_changed webhook (promotion)');
    const up = receiver.events('mode_changed')[0]?.event;
    expect(up).to.deep.include({ tenant_id: a.tenant_id, reason: 'threshold' });
    expect(up?.room).to.deep.include({ room_id: 'grow', mode: 'sfu', num_participants: 3 });
    expect(up?.room.config.mesh_threshold).to.equal(2);

    // Down to 1 (threshold - 1): demoted after DEMOTE_DELAY_MS.
    const demoted = nextEvent<ModeChangedMessage>(alice.client, 'mode_changed', 10000);
    carol.client.close();
    bob.client.close();
    expect(await demoted).to.deep.equal({ mode: 'mesh', reason: 'threshold' });

    const afterDemotion = await sessions();
    expect(modes(afterDemotion.get('alice'))).to.deep.equal(['mesh', 'sfu', 'mesh']);
    expect(afterDemotion.get('alice')?.disconnected_at).to.equal(null);
    expectContiguous(afterDemotion.get('alice'));
    // The two who left closed their sessions on the SFU segment; the demotion came after.
    for (const user of ['bob', 'carol']) {
      const session = afterDemotion.get(user);
      expect(modes(session), user).to.deep.equal(['mesh', 'sfu']);
      expect(session?.disconnected_at, user).to.be.a('string');
      expectContiguous(session);
      expect(Date.parse(session?.disconnected_at as string)).to.be.at.most(
        Date.parse(afterDemotion.get('alice')?.segments[2]?.from as string),
      );
    }

    await waitFor(() => receiver.events('mode_changed').length === 2, 10000, 'mode_changed webhook (demotion)');
    const down = receiver
      .events('mode_changed')
      .map((r) => r.event)
      .find((e) => e.room.mode === 'mesh');
    expect(down).to.deep.include({ tenant_id: a.tenant_id, reason: 'threshold' });
    expect(down?.room).to.deep.include({ room_id: 'grow', mode: 'mesh', num_participants: 1 });
    expect(t.server.webhooks.stats.failed).to.equal(0);
  });

  it('a tenant created with mesh_threshold 1 has its join-made (never stored) rooms promoted by the second join', async () => {
    a = await createTenant(t, { name: 'low', limits: { mesh_threshold: 1 } });
    expect(
      (await call(t, 'PUT', '/api/v1/webhook', { secret: a.api_secret, body: { url: receiverUrl, secret: 'whsec_mode_0123456789abcdef' } }))
        .status,
    ).to.equal(200);
    const alice = await joinVia(t, a, { room_id: 'grow', user_id: 'alice' });
    const promoted = nextEvent<ModeChangedMessage>(alice.client, 'mode_changed', 10000);
    await joinVia(t, a, { room_id: 'grow', user_id: 'bob' });
    expect(await promoted).to.deep.include({ mode: 'sfu', reason: 'threshold' });
    const rows = await sessions();
    for (const user of ['alice', 'bob']) expect(modes(rows.get(user)), user).to.deep.equal(['mesh', 'sfu']);
    await waitFor(() => receiver.events('mode_changed').length === 1, 10000, 'mode_changed webhook');
    expect(receiver.events('mode_changed')[0]?.event).to.deep.include({ tenant_id: a.tenant_id, reason: 'threshold' });
    expect(receiver.events('mode_changed')[0]?.event.room).to.deep.include({ room_id: 'grow', mode: 'sfu', num_participants: 2 });
  });
});

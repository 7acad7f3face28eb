import { expect } from 'chai';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import { holdNextCall } from '../helpers/heldCall.js';
import { emitAck, nextEvent, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { call, createTenant, type ApiTenant } from './helpers.js';

/**
 * HTTP requests racing joins. The join's read of the stored room is held open (a remote
 * store's round trip) while the request changes that record.
 */
describe('api: requests racing joins', () => {
  let t: TestServer;
  let store: MemoryStore;
  let a: ApiTenant;
  const as = (method: string, path: string, body?: unknown) => call(t, method, path, { secret: a.api_secret, body });

  async function start(limits: Record<string, unknown> = {}): Promise<void> {
    store = new MemoryStore();
    t = await startServer({}, { store });
    a = await createTenant(t, { name: 'A', limits });
  }
  afterEach(async () => t?.close());

  /** Connects a guest of room `roomId`, sends its join without waiting, and returns the ack once the room record read was held and `during` ran. */
  async function joinAround(roomId: string, user: string, during: () => Promise<void>): Promise<string> {
    const client = await t.connect(t.mint({ tenant: a.tenant_id, room: roomId, user }));
    const held = holdNextCall(store.rooms, 'get', (tenantId, id) => tenantId === a.tenant_id && id === roomId, true);
    const join = emitAck(client, 'join', {});
    await held.reached;
    await during();
    held.release();
    const ack = await join;
    return ack.ok ? 'ok' : ack.error.code;
  }

  it('a join read before DELETE /rooms/:id does not reopen the deleted room', async () => {
    await start({ auto_create_rooms: false });
    expect((await as('POST', '/api/v1/rooms', { room_id: 'gone' })).status).to.equal(201);
    const first = await t.connect(t.mint({ tenant: a.tenant_id, room: 'gone', user: 'first' }));
    expect((await emitAck(first, 'join', {})).ok).to.equal(true);
    const closed = nextEvent<{ reason: string }>(first, 'room_closed');

    const code = await joinAround('gone', 'late', async () => {
      expect((await as('DELETE', '/api/v1/rooms/gone')).status).to.equal(204);
      expect((await closed).reason).to.equal('deleted');
    });
    expect(code).to.equal('room_not_found');
    expect(t.server.rooms.get(a.tenant_id, 'gone'), 'live room of a deleted record').to.equal(undefined);
  });

  it('a join read before POST /rooms gets the stored settings (locked)', async () => {
    await start();
    const code = await joinAround('fresh', 'guest', async () => {
      expect((await as('POST', '/api/v1/rooms', { room_id: 'fresh', locked: true })).status).to.equal(201);
    });
    expect(code).to.equal('room_locked');
    await waitFor(() => t.server.rooms.get(a.tenant_id, 'fresh') === undefined, 3000, 'the refused room to close');
  });

  it('a join read before PUT /rooms/:id gets the updated settings (locked)', async () => {
    await start();
    expect((await as('POST', '/api/v1/rooms', { room_id: 'small' })).status).to.equal(201);
    const code = await joinAround('small', 'guest', async () => {
      expect((await as('PUT', '/api/v1/rooms/small', { max_participants: 1, locked: true })).status).to.equal(200);
    });
    expect(code).to.equal('room_locked');
  });
});

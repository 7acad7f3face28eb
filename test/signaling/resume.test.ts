/**
 * A dropped connection's place is held (RESUME_GRACE_MS): the participant comes back under the
 * same peer id with `resume`, and the others hear nothing of the drop; a place nobody takes back
 * is given up with the drop's reason. A leave, a kick or a revocation holds no place.
 */
import { expect } from 'chai';
import { emitAck, nextEvent, startServer, type TestServer, recordEvents, sleep } from '../helpers/server.js';

describe('signaling: a dropped participant comes back under its peer id (resume)', function () {
  this.timeout(15_000);
  let t: TestServer;
  afterEach(async () => t?.close());

  it('holds the place of a connection that dropped: back with resume, same id, nobody hears a leave or a join; signals reach it again', async () => {
    t = await startServer({ RESUME_GRACE_MS: '5000' });
    const alice = await t.join({ room: 'r', user: 'alice' });
    const bob = await t.join({ room: 'r', user: 'bob' });
    const heard = recordEvents(alice.client);
    // The transport drops (a network cut): no leave.
    bob.client.io.engine.close();
    await sleep(300);
    expect(heard.get('peer_left'), 'no peer_left for a drop').to.equal(undefined);
    const room = t.server.rooms.get('t1', 'r');
    expect(room?.size, 'the held place counts').to.equal(2);
    expect(room?.expected.has(bob.ack.self.id)).to.equal(true);

    const back = await t.connect(t.mint({ room: 'r', user: 'bob' }));
    const ack = (await emitAck(back, 'join', { resume: { peer_id: bob.ack.self.id } })) as {
      ok: boolean;
      self: { id: string };
      peers: Array<{ id: string }>;
    };
    expect(ack.ok).to.equal(true);
    expect(ack.self.id).to.equal(bob.ack.self.id);
    expect(ack.peers.map((p) => p.id)).to.deep.equal([alice.ack.self.id]);
    await sleep(200);
    expect(heard.get('peer_joined'), 'no peer_joined for a resume').to.equal(undefined);
    const signal = nextEvent(back, 'signal');
    expect(await emitAck(alice.client, 'signal', { to: bob.ack.self.id, candidate: { candidate: '' } })).to.deep.equal({ ok: true });
    expect(await signal).to.deep.equal({ from: alice.ack.self.id, candidate: { candidate: '' } });
  });

  it('gives the place up after RESUME_GRACE_MS with the reason of the drop', async () => {
    t = await startServer({ RESUME_GRACE_MS: '400' });
    const alice = await t.join({ room: 'r', user: 'alice' });
    const bob = await t.join({ room: 'r', user: 'bob' });
    const left = nextEvent<{ id: string; user_id: string; reason: string }>(alice.client, 'peer_left', 5_000);
    const dropped = Date.now();
    bob.client.io.engine.close();
    expect(await left).to.deep.equal({ id: bob.ack.self.id, user_id: 'bob', reason: 'disconnected' });
    expect(Date.now() - dropped).to.be.at.least(350);
    expect(t.server.rooms.get('t1', 'r')?.size).to.equal(1);
  });

  it('a participant back without resume takes a new id: the others see the old one leave (duplicate_identity) and the new one join', async () => {
    t = await startServer({ RESUME_GRACE_MS: '5000' });
    const alice = await t.join({ room: 'r', user: 'alice' });
    const bob = await t.join({ room: 'r', user: 'bob' });
    bob.client.io.engine.close();
    await sleep(200);
    const left = nextEvent<{ id: string; reason: string }>(alice.client, 'peer_left');
    const joined = nextEvent<{ id: string }>(alice.client, 'peer_joined');
    const again = await t.join({ room: 'r', user: 'bob' });
    expect(again.ack.self.id).to.not.equal(bob.ack.self.id);
    expect(await left).to.deep.equal({ id: bob.ack.self.id, user_id: 'bob', reason: 'duplicate_identity' });
    expect((await joined).id).to.equal(again.ack.self.id);
  });

  it('holds no place after a leave, and RESUME_GRACE_MS=0 holds none after a drop', async () => {
    t = await startServer({ RESUME_GRACE_MS: '5000' });
    const alice = await t.join({ room: 'r', user: 'alice' });
    const bob = await t.join({ room: 'r', user: 'bob' });
    const left = nextEvent<{ reason: string }>(alice.client, 'peer_left');
    bob.client.close();
    expect((await left).reason).to.equal('left');
    expect(t.server.rooms.get('t1', 'r')?.expected.size).to.equal(0);
    await t.close();

    t = await startServer({ RESUME_GRACE_MS: '0' });
    const carol = await t.join({ room: 'r', user: 'carol' });
    const dave = await t.join({ room: 'r', user: 'dave' });
    const gone = nextEvent<{ reason: string }>(carol.client, 'peer_left', 2_000);
    dave.client.io.engine.close();
    expect((await gone).reason).to.equal('disconnected');
  });

  it("never gives a held place to another user's resume", async () => {
    t = await startServer({ RESUME_GRACE_MS: '5000' });
    await t.join({ room: 'r', user: 'alice' });
    const bob = await t.join({ room: 'r', user: 'bob' });
    bob.client.io.engine.close();
    await sleep(200);
    const mallory = await t.connect(t.mint({ room: 'r', user: 'mallory' }));
    const ack = (await emitAck(mallory, 'join', { resume: { peer_id: bob.ack.self.id } })) as { ok: boolean; self: { id: string } };
    expect(ack.ok).to.equal(true);
    expect(ack.self.id).to.not.equal(bob.ack.self.id);
    expect(t.server.rooms.get('t1', 'r')?.expected.has(bob.ack.self.id), "bob's place is still held").to.equal(true);
  });
});

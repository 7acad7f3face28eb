import { expect } from 'chai';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Room } from '../../client-sdk/src/index.js';
import { emitAck, expectConnectError, startServer, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

/** Anonymous/demo rooms: {room, name} instead of a token, only when ANONYMOUS_ROOMS is on. */
describe('anonymous rooms (ANONYMOUS_ROOMS)', () => {
  describe('off (the default)', () => {
    let t: TestServer;
    before(async () => {
      t = await startServer();
    });
    after(async () => {
      await t.close();
    });

    it('refuses {room, name} without a token with token_missing', async () => {
      const error = await expectConnectError(t.connect(undefined, { auth: { room: 'demo', name: 'Ann' } }));
      expect(error.message).to.equal('token_missing');
    });
  });

  describe('on', () => {
    let t: TestServer;
    const lines: string[] = [];
    before(async () => {
      const logger = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      );
      t = await startServer({ ANONYMOUS_ROOMS: 'true', ANONYMOUS_TENANT: 't1' }, { logger });
    });
    after(async () => {
      await t.close();
    });

    it('joins with the guest preset in the configured tenant, meets token holders, and logs a warning per join', async () => {
      const anon = await t.connect(undefined, { auth: { room: 'demo', name: 'Ann' } });
      const ack = await emitAck(anon, 'join', {});
      expect(ack.ok, JSON.stringify(ack)).to.equal(true);
      if (!ack.ok) return;
      const self = ack.self as { user_id: string; name: string; grants: Record<string, boolean> };
      expect(self.name).to.equal('Ann');
      expect(self.user_id).to.match(/^anonymous-/);
      expect(self.grants).to.include({
        roomJoin: true,
        canPublish: true,
        canSubscribe: true,
        canPublishData: true,
        roomAdmin: false,
        hidden: false,
      });
      // A token holder of the same tenant and room sees the anonymous peer.
      const { ack: member } = await t.join({ room: 'demo', user: 'bob', tenant: 't1' });
      expect(member.peers.map((p) => p.name)).to.deep.equal(['Ann']);
      expect(lines.filter((line) => line.includes('anonymous join')).length).to.equal(1);
      expect(lines.find((line) => line.includes('anonymous join'))).to.include('"level":40');
    });

    it('the SDK joins with {room, name} instead of a token', async () => {
      const room = await Room.connect(
        t.url,
        { room: 'demo-sdk', name: 'Dee' },
        { webrtc: { RTCPeerConnection: WrtcPeerConnection }, statsIntervalMs: 0 },
      );
      try {
        expect(room.roomId).to.equal('demo-sdk');
        expect(room.localParticipant?.identity).to.match(/^anonymous-/);
        expect(room.localParticipant?.grants.canPublish).to.equal(true);
      } finally {
        await room.leave();
      }
    });

    it('still prefers a token when one is sent, and validates room and name', async () => {
      const withToken = await t.connect(t.mint({ room: 'demo2', user: 'carol' }));
      const ack = await emitAck(withToken, 'join', {});
      expect(ack.ok && (ack.self as { user_id: string }).user_id).to.equal('carol');
      for (const auth of [
        { room: '$where', name: 'x' },
        { room: 'ok', name: '' },
        { room: 'ok', name: 'x'.repeat(500) },
        { room: { $ne: null }, name: 'x' },
      ]) {
        const error = await expectConnectError(t.connect(undefined, { auth }));
        expect(error.message, JSON.stringify(auth)).to.equal('payload_invalid');
      }
    });
  });
});

import { expect } from 'chai';
import { io } from 'socket.io-client';
import { startServer, type TestServer } from '../helpers/server.js';

describe('cluster review (issue 17): a store that fails right after a handshake', function () {
  let t: TestServer | undefined;

  afterEach(async function () {
    await t?.close();
    t = undefined;
  });

  it('the revocation re-check at connect closes the socket with unavailable (retry), never token_revoked (which the SDK takes as final)', async function () {
    t = await startServer();
    const tokens = t.server.store.tokens;
    const isRevoked = tokens.isRevoked.bind(tokens);
    let calls = 0;
    // The handshake's read answers; the re-check right after the connection fails (Redis gone meanwhile).
    tokens.isRevoked = (tenantId, jti) => (++calls === 1 ? isRevoked(tenantId, jti) : Promise.reject(new Error('redis down')));
    const client = io(t.url, { auth: { token: t.mint({ room: 'flap' }) }, transports: ['websocket'], reconnection: false, forceNew: true });
    try {
      const error = await new Promise<{ code: string }>((resolve) => client.once('error', resolve));
      expect(error.code).to.equal('unavailable');
    } finally {
      client.close();
    }
  });
});

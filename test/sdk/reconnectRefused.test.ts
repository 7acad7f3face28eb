/**
 * The SDK's reconnect after its node refused the connection (issue 17: the owner node was killed).
 * A refusal in the transport, before any handshake answer, is told apart from the server's
 * refusals (SwitchboardError.unreachable), and such attempts are not backed off: the next comes
 * at once through the application's URL after the node the Room was on refused, then every
 * 250-750 ms (for up to 15 s after the loss), where the default policy waits 0.3-1.3, 1.2-2.2,
 * 2.7-3.7 s ...
 */
import { expect } from 'chai';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { ConnectionState, Room, RoomEvent, SwitchboardError } from '../../client-sdk/src/index.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

/** A TCP proxy to the server's port; kill() closes it and every connection through it, as a node killed with SIGKILL would. */
async function proxyTo(port: number): Promise<{ url: string; kill(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = tcpConnect(port, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    kill: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

describe('SDK reconnect after a refused connection (@roamhq/wrtc)', function () {
  this.timeout(30_000);
  let t: TestServer | undefined;
  let room: Room | undefined;

  afterEach(async () => {
    await room?.leave().catch(() => undefined);
    room = undefined;
    await t?.close().catch(() => undefined);
    t = undefined;
  });

  it('a transport error without a server answer is unreachable; the server refusals are not', () => {
    const transport = Object.assign(new Error('websocket error'), { type: 'TransportError', description: {} });
    expect(SwitchboardError.from(transport).unreachable).to.equal(true);
    expect(SwitchboardError.from(transport).code).to.equal('connection_failed');
    const redirect = Object.assign(new Error('wrong node'), { data: { code: 'wrong_node', message: 'elsewhere', ws_url: 'http://b' } });
    expect(SwitchboardError.from(redirect).unreachable).to.equal(false);
    expect(SwitchboardError.from(new SwitchboardError('timeout', 'signaling connection timed out')).unreachable).to.equal(false);
  });

  it('retries a node that refuses the connection every 250-750 ms instead of backing off', async () => {
    t = await startServer();
    const server = t;
    const node = await proxyTo(Number(new URL(server.url).port));
    const attempts: number[] = [];
    let lostAt = 0;
    room = await Room.connect(node.url, server.mint({ room: 'refused', user: 'alice' }), {
      webrtc: { RTCPeerConnection: WrtcPeerConnection },
      statsIntervalMs: 0,
      tokenRefresher: async () => {
        attempts.push(Date.now());
        return server.mint({ room: 'refused', user: 'alice' });
      },
    });
    room.on(RoomEvent.ConnectionStateChanged, (state) => {
      if (state === ConnectionState.Reconnecting) lostAt = Date.now();
    });
    await node.kill(); // its port refuses connections from now on
    await waitFor(() => attempts.length >= 5, 10_000, 'five reconnect attempts').catch((e: Error) => {
      throw new Error(`${e.message}: ${attempts.length} attempts, state ${room?.state}`);
    });
    const gaps = attempts.slice(1, 5).map((at, i) => at - (attempts[i] as number));
    console.log(`      first attempt ${(attempts[0] as number) - lostAt} ms after the loss, then every ${gaps.join(', ')} ms`);
    expect((attempts[0] as number) - lostAt, 'the first attempt at once').to.be.lessThan(200);
    // The default policy's third and fourth waits are 1.2-2.2 s and 2.7-3.7 s.
    for (const gap of gaps) expect(gap).to.be.within(200, 1_000);
    expect(room.state).to.equal(ConnectionState.Reconnecting);
  });
});

import { expect } from 'chai';
import WebSocket from 'ws';
import { PollingRefused, PollingSession } from '../helpers/engineio.js';
import { capturedLogger } from '../helpers/logs.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** Opens raw sessions at once; resolves with the opened ones and the HTTP statuses of the refused ones. */
async function openMany(url: string, count: number): Promise<{ opened: PollingSession[]; refused: number[] }> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => PollingSession.open(url)));
  const opened: PollingSession[] = [];
  const refused: number[] = [];
  for (const result of results) {
    if (result.status === 'fulfilled') opened.push(result.value);
    else if (result.reason instanceof PollingRefused) refused.push(result.reason.status);
    else throw result.reason;
  }
  return { opened, refused };
}

describe('sessions that never authenticate, and floods', function () {
  this.timeout(20000);
  let t: TestServer;
  afterEach(async () => t?.close());

  it('refuses Engine.IO sessions past the per-address limit until the unauthenticated ones are closed by the connect timeout', async () => {
    t = await startServer({ SOCKET_PENDING_SESSIONS_PER_IP: '10', SOCKET_CONNECT_TIMEOUT_MS: '500' });
    const { opened, refused } = await openMany(t.url, 30);
    expect(opened).to.have.length(10);
    expect(refused).to.deep.equal(Array(20).fill(403));

    // The server closes sessions that sent no CONNECT: their next poll finds them gone.
    await waitFor(
      async () => {
        const answers = await Promise.allSettled(opened.map((session) => session.poll()));
        return answers.every((answer) => answer.status === 'rejected' || answer.value.includes('1'));
      },
      10000,
      'unauthenticated sessions to be closed',
    );
    const later = await openMany(t.url, 5);
    expect(later.opened).to.have.length(5);
    await Promise.all(later.opened.map((session) => session.close()));
  });

  it('does not count authenticated sessions against the limit', async () => {
    t = await startServer({ SOCKET_PENDING_SESSIONS_PER_IP: '3' });
    const sessions: PollingSession[] = [];
    for (let i = 0; i < 8; i++) sessions.push(await PollingSession.connect(t.url, { token: t.mint({ room: 'many', user: `u${i}` }) }));
    const client = await t.connect(t.mint({ room: 'many', user: 'ws' }));
    expect(client.connected).to.equal(true);
    await Promise.all(sessions.map((session) => session.close()));
  });

  it('logs one line for a socket that keeps flooding, however many events it sent', async () => {
    const { lines, logger } = capturedLogger();
    t = await startServer({ RATE_LIMIT_EVENTS_PER_SEC: '10', RATE_LIMIT_STRIKES: '5' }, { logger });
    const token = t.mint({ room: 'flood', user: 'f' });
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
      else if (text.startsWith('40')) for (let i = 0; i < 500; i++) ws.send(`42${i}["stats",{"links":[]}]`);
    });
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lines.filter((line) => line.includes('kept flooding'))).to.have.length(1);
  });
});

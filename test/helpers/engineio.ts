/**
 * A raw Engine.IO v4 long-polling client, for tests that need control over what one HTTP
 * request carries (several Socket.IO packets in one POST, sessions that never CONNECT).
 */
export class PollingSession {
  private constructor(
    private readonly base: string,
    readonly sid: string,
  ) {}

  /** Opens an Engine.IO session (the handshake GET) without any Socket.IO CONNECT. */
  static async open(serverUrl: string): Promise<PollingSession> {
    const base = `${serverUrl}/socket.io/?EIO=4&transport=polling`;
    const response = await fetch(base);
    const body = await response.text();
    if (response.status !== 200 || !body.startsWith('0')) throw new PollingRefused(response.status, body);
    const { sid } = JSON.parse(body.slice(1)) as { sid: string };
    return new PollingSession(base, sid);
  }

  /** Opens a session and sends the Socket.IO CONNECT with this auth payload; resolves once connected. */
  static async connect(serverUrl: string, auth: Record<string, unknown>): Promise<PollingSession> {
    const session = await PollingSession.open(serverUrl);
    await session.send([`40${JSON.stringify(auth)}`]);
    const packets = await session.poll();
    if (!packets.some((packet) => packet.startsWith('40'))) throw new Error(`no CONNECT answer: ${packets.join(' | ')}`);
    return session;
  }

  /** Sends these Engine.IO packets in one POST (joined with the record separator, as the protocol batches them). */
  async send(packets: string[]): Promise<void> {
    const response = await fetch(`${this.base}&sid=${this.sid}`, { method: 'POST', body: packets.join('\x1e') });
    const body = await response.text();
    if (response.status !== 200) throw new PollingRefused(response.status, body);
  }

  /** One long-poll GET: the packets the server had (or sent within its poll window). */
  async poll(): Promise<string[]> {
    const response = await fetch(`${this.base}&sid=${this.sid}`);
    const body = await response.text();
    if (response.status !== 200) throw new PollingRefused(response.status, body);
    return body.split('\x1e');
  }

  /** Polls until the acks of these Socket.IO ack ids arrived; returns them by id. Answers pings on the way. */
  async acks(ids: number[], timeoutMs = 5000): Promise<Map<number, unknown>> {
    const found = new Map<number, unknown>();
    const deadline = Date.now() + timeoutMs;
    while (found.size < ids.length) {
      if (Date.now() > deadline) throw new Error(`acks ${ids.join(',')} did not arrive`);
      for (const packet of await this.poll()) {
        if (packet === '2') await this.send(['3']);
        const ack = /^43(\d+)(.*)$/s.exec(packet);
        if (ack && ids.includes(Number(ack[1]))) found.set(Number(ack[1]), (JSON.parse(ack[2] ?? 'null') as unknown[])[0]);
      }
    }
    return found;
  }

  /** Closes the Engine.IO session. */
  async close(): Promise<void> {
    await this.send(['1']).catch(() => undefined);
  }
}

export class PollingRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`Engine.IO request refused: HTTP ${status} ${body.slice(0, 200)}`);
  }
}

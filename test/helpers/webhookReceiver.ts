/** A real local webhook receiver on 127.0.0.1:0 whose answer each test chooses. */
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEvent } from '../../server/webhooks/WebhookDispatcher.js';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  raw: string;
  event: WebhookEvent;
  at: number;
}

/** What the receiver answers (null: it never answers); `attempt` counts requests carrying the same event id, from 1. */
export type WebhookAnswer = (event: WebhookEvent, attempt: number) => { status: number; headers?: Record<string, string> } | null;

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  answer: WebhookAnswer = () => ({ status: 204 });
  private readonly server: Server;

  constructor() {
    this.server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const event = JSON.parse(raw) as WebhookEvent;
        this.received.push({ headers: req.headers, raw, event, at: Date.now() });
        const answer = this.answer(event, this.attemptsOf(event.id));
        if (!answer) return;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end();
      });
    });
  }

  /** Listens and resolves with the hook URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  events(name?: string): ReceivedWebhook[] {
    return this.received.filter((r) => name === undefined || r.event.event === name);
  }

  attemptsOf(id: string): number {
    return this.received.filter((r) => r.event.id === id).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

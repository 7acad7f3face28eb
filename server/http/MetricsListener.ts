/**
 * /metrics on a listener of its own (METRICS_PORT on METRICS_HOST, loopback by default), so
 * the Prometheus text is not served on the public port. It answers GET and HEAD /metrics and
 * 404 to everything else.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../Metrics.js';

export interface MetricsListenerOptions {
  metrics: Metrics;
  host: string;
  port: number;
}

export class MetricsListener {
  /** Where Prometheus scrapes: http://host:port/metrics. */
  readonly url: string;
  readonly port: number;
  private closed?: Promise<void>;

  private constructor(
    private readonly server: Server,
    host: string,
  ) {
    this.port = (server.address() as AddressInfo).port;
    // Bound to every interface: a loopback URL, as the main listener's.
    const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    this.url = `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${this.port}/metrics`;
  }

  /** Listens; a port in use (or not allowed) is an error naming METRICS_PORT and METRICS_HOST. */
  static async start({ metrics, host, port }: MetricsListenerOptions): Promise<MetricsListener> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?', 1)[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
        return;
      }
      metrics.render().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'Content-Type': contentType });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        () => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics failed\n'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      const refused = (error: NodeJS.ErrnoException): void => {
        const why = error.code === 'EADDRINUSE' ? 'the port is in use' : `${error.code ?? 'error'}: ${error.message}`;
        reject(
          new Error(
            `cannot serve /metrics on METRICS_HOST ${host}, METRICS_PORT ${port}: ${why} (METRICS_PORT=0 serves /metrics on PORT)`,
            {
              cause: error,
            },
          ),
        );
      };
      server.once('error', refused);
      server.listen(port, host, () => {
        server.off('error', refused);
        resolve();
      });
    });
    return new MetricsListener(server, host);
  }

  /** Stops listening and drops open scrape connections. Idempotent. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
    return this.closed;
  }
}

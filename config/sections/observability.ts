/** Prometheus metrics and HTTP access logs: what an operator scrapes and reads. */
import { z } from 'zod';
import { bool, port, setting } from '../setting.js';

export const observabilitySettings = {
  /**
   * Port of the /metrics listener, kept off the public port (9464, the OpenTelemetry Prometheus
   * exporter's port); 0 serves /metrics on PORT, as before.
   */
  metricsPort: setting('METRICS_PORT', port.default(9464)),
  /** Listen address of the /metrics listener: loopback unless the scraper runs on another host or pod. */
  metricsHost: setting('METRICS_HOST', z.string().min(1).default('127.0.0.1')),
  /** One info line per HTTP request (method, path without query, status, duration, request id); probes and scrapes only when they fail. */
  accessLog: setting('ACCESS_LOG', bool.default(true)),
};

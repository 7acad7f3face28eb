/** The process as a whole: mode, logging, node identity, shutdown. Config holds these at its top level. */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { int, setting } from '../setting.js';

export const serverSettings = {
  /** production requires keys and secrets (productionRefusals) and turns the development conveniences off. */
  nodeEnv: setting('NODE_ENV', z.enum(['development', 'production', 'test']).default('development')),
  logLevel: setting('LOG_LEVEL', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  /**
   * This server's name in session records and in the cluster (NODE_ID; a random id per boot when unset). The
   * pattern is server/cluster/keys.ts' NODE_ID_PATTERN: a node id is a Redis key segment and part of "<node>:<epoch>".
   */
  nodeId: setting(
    'NODE_ID',
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _, . or -')
      .default(() => `node-${randomBytes(6).toString('hex')}`),
  ),
  /** Deadline for a graceful shutdown. */
  shutdownTimeoutMs: setting('SHUTDOWN_TIMEOUT_MS', int(0, 600_000).default(10_000)),
  /** Time between /ready turning false and closing connections (lets load balancers drain). */
  shutdownDrainMs: setting('SHUTDOWN_DRAIN_MS', int(0, 600_000).default(0)),
};

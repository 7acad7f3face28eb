/**
 * Entry point of the TURN worker thread (started by TurnServer). Runs a TurnRelay, reports
 * its port, forwards log lines at or above the server's level, and closes on request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RelayQuotas } from './RelayQuotas.js';
import { TurnCounters } from './TurnCounters.js';
import { TurnRelay, type RelayLogLevel } from './TurnRelay.js';
import type { ToWorker, TurnWorkerData, FromWorker } from './TurnServer.js';

const LEVELS: Record<RelayLogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50 };

const port = parentPort;
if (!port) throw new Error('[turnWorker] must run as a worker thread');
const data = workerData as TurnWorkerData;
const post = (message: FromWorker): void => port.postMessage(message);

const relay = new TurnRelay({
  settings: data.settings,
  counters: new TurnCounters(data.counters),
  port: data.ports.port,
  tlsPort: data.ports.tlsPort,
  waitForCertificate: data.restart,
  quotas: new RelayQuotas(data.quotas, data.index, data.settings.workers, data.settings.maxAllocations, data.settings),
  tls: data.index === 0 && data.settings.tlsEnabled,
  log: (level, fields, msg) => {
    if (LEVELS[level] >= data.logLevel) post({ type: 'log', level, fields, msg });
  },
});

port.on('message', (message: ToWorker) => {
  if (message.type === 'serverPorts') return relay.setServerPorts(message.ports);
  relay.close().then(
    () => port.close(),
    () => port.close(),
  );
});

relay.start().then(
  (ports) => post({ type: 'listening', ports }),
  // TurnServer terminates the worker on 'failed'.
  (error: NodeJS.ErrnoException) => post({ type: 'failed', message: error.message, code: error.code }),
);

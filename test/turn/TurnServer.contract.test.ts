/**
 * The bundled relay meets the TURN backend contract (the same suite runs against coturn): over
 * UDP (on the UDP I/O the relay chooses, native where it is built, and on dgram), over TCP on the same port, and over TLS on the TLS port with a self-signed certificate
 * made for the run.
 */
import { createSelfSignedCert, opensslUnavailableReason } from '../helpers/tlsCert.js';
import { CONTRACT_SETTINGS, describeTurnContract } from './contract.js';
import { startTurn, TURN_REALM, TURN_SECRET } from './support.js';

const CONTRACT_ENV = {
  TURN_ALLOWED_PEER_CIDRS: `${CONTRACT_SETTINGS.allowedPeer}/32`,
  TURN_MAX_ALLOCATIONS_PER_USER: String(CONTRACT_SETTINGS.userQuota),
  // The suite keeps every client's connection open until it ends (one 127.0.0.1 for all).
  TURN_MAX_CONNECTIONS_PER_IP: '1000',
};

describeTurnContract('bundled relay (TurnServer)', async () => {
  const server = await startTurn(CONTRACT_ENV);
  return { address: '127.0.0.1', port: server.port, secret: TURN_SECRET, realm: TURN_REALM, close: () => server.close() };
});

describeTurnContract('bundled relay on dgram (TurnServer, TURN_UDP_IO=dgram)', async () => {
  const server = await startTurn({ ...CONTRACT_ENV, TURN_UDP_IO: 'dgram' });
  return { address: '127.0.0.1', port: server.port, secret: TURN_SECRET, realm: TURN_REALM, close: () => server.close() };
});

describeTurnContract('bundled relay over TCP (TurnServer, TURN_PORT)', async () => {
  const server = await startTurn(CONTRACT_ENV);
  return {
    address: '127.0.0.1',
    port: server.port,
    clientTransport: { protocol: 'tcp' },
    secret: TURN_SECRET,
    realm: TURN_REALM,
    close: () => server.close(),
  };
});

describeTurnContract('bundled relay over TLS (TurnServer, TURN_TLS_PORT)', async function () {
  const reason = opensslUnavailableReason();
  if (reason) {
    console.log(`      skipped: ${reason}`);
    this.skip();
  }
  const cert = createSelfSignedCert();
  const server = await startTurn({ ...CONTRACT_ENV, TURN_TLS_PORT: '0', TURN_TLS_CERT: cert.certPath, TURN_TLS_KEY: cert.keyPath }).catch(
    (error: unknown) => {
      cert.remove();
      throw error;
    },
  );
  return {
    address: '127.0.0.1',
    port: server.tlsPort,
    clientTransport: { protocol: 'tls', ca: cert.certPem },
    secret: TURN_SECRET,
    realm: TURN_REALM,
    close: async () => {
      await server.close();
      cert.remove();
    },
  };
});

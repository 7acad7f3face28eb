/** The bundled relay meets the TURN backend contract (the same suite runs against coturn). */
import { CONTRACT_SETTINGS, describeTurnContract } from './contract.js';
import { startTurn, TURN_REALM, TURN_SECRET } from './support.js';

describeTurnContract('bundled relay (TurnServer)', async () => {
  const server = await startTurn({
    TURN_ALLOWED_PEER_CIDRS: `${CONTRACT_SETTINGS.allowedPeer}/32`,
    TURN_MAX_ALLOCATIONS_PER_USER: String(CONTRACT_SETTINGS.userQuota),
  });
  return { address: '127.0.0.1', port: server.port, secret: TURN_SECRET, realm: TURN_REALM, close: () => server.close() };
});

import { expect } from 'chai';
import { testConfig } from '../../config/index.js';
import {
  buildIceServers,
  createTurnCredentials,
  expectedTurnPassword,
  parseTurnUsername,
  turnPassword,
  verifyTurnCredentials,
} from '../../turn/credentials.js';
import { createSelfSignedCert, opensslUnavailableReason, type SelfSignedCert } from '../helpers/tlsCert.js';

const SECRET = 'north-secret-0123456789-0123456789-xyz';
const NOW = 1_700_000_000_000;

function turnConfig(env: Record<string, string> = {}) {
  // One relay worker: every user gets TURN_PORT itself (the default, one per core, is tested apart).
  return testConfig({ TURN_ENABLED: 'true', TURN_SECRET: SECRET, TURN_CREDENTIAL_TTL_S: '3600', TURN_WORKERS: '1', ...env }).turn;
}

describe('TURN REST API credentials', () => {
  it('derives the password as base64(HMAC-SHA1(secret, username)), like coturn', () => {
    // Reference value from: printf 1700000000:alice | openssl dgst -sha1 -hmac <secret> -binary | base64
    expect(turnPassword(SECRET, '1700000000:alice')).to.equal('Njkoudd54MqaKhZDrWQQG8zIYH0=');
  });

  it('puts the expiry and the user id in the username', () => {
    const creds = createTurnCredentials(SECRET, 'alice', 600, NOW);
    expect(creds.username).to.equal(`${NOW / 1000 + 600}:alice`);
    expect(creds.expiresAt).to.equal(NOW / 1000 + 600);
    expect(creds.credential).to.equal(turnPassword(SECRET, creds.username));
    expect(parseTurnUsername(creds.username)).to.deep.equal({ expiresAt: NOW / 1000 + 600, userId: 'alice' });
  });

  it('keeps user ids that contain colons whole', () => {
    const creds = createTurnCredentials(SECRET, 'tenant:alice', 60, NOW);
    expect(parseTurnUsername(creds.username)?.userId).to.equal('tenant:alice');
    expect(verifyTurnCredentials(SECRET, creds.username, creds.credential, NOW)).to.deep.equal({
      ok: true,
      userId: 'tenant:alice',
      expiresAt: NOW / 1000 + 60,
    });
  });

  it('refuses an empty user id', () => {
    expect(() => createTurnCredentials(SECRET, '', 60)).to.throw(/userId/);
  });

  it('verifies good credentials and refuses expired, forged and malformed ones', () => {
    const creds = createTurnCredentials(SECRET, 'alice', 600, NOW);
    expect(verifyTurnCredentials(SECRET, creds.username, creds.credential, NOW).ok).to.equal(true);
    // Expired: the expiry is now or in the past.
    expect(verifyTurnCredentials(SECRET, creds.username, creds.credential, NOW + 600_000)).to.deep.equal({ ok: false, reason: 'expired' });
    // Forged: another secret, a changed user id, a changed expiry, a truncated password.
    const other = createTurnCredentials('another-secret-0123456789-0123456789', 'alice', 600, NOW);
    expect(verifyTurnCredentials(SECRET, other.username, other.credential, NOW)).to.deep.equal({ ok: false, reason: 'mismatch' });
    expect(verifyTurnCredentials(SECRET, creds.username.replace('alice', 'mallory'), creds.credential, NOW)).to.deep.equal({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyTurnCredentials(SECRET, `${NOW / 1000 + 99_999}:alice`, creds.credential, NOW)).to.deep.equal({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyTurnCredentials(SECRET, creds.username, creds.credential.slice(0, -2), NOW)).to.deep.equal({
      ok: false,
      reason: 'mismatch',
    });
    // Malformed: a static-user name, no user id, a non-numeric expiry, an oversized username.
    for (const username of ['alice', '1700000600:', ':alice', 'soon:alice', `1700000600:${'x'.repeat(600)}`]) {
      expect(verifyTurnCredentials(SECRET, username, 'whatever', NOW)).to.deep.equal({ ok: false, reason: 'malformed' });
    }
  });

  it('gives the expected password only for well-formed, unexpired usernames', () => {
    const creds = createTurnCredentials(SECRET, 'alice', 600, NOW);
    expect(expectedTurnPassword(SECRET, creds.username, NOW)).to.deep.include({ ok: true, password: creds.credential });
    expect(expectedTurnPassword(SECRET, creds.username, NOW + 601_000)).to.deep.equal({ ok: false, reason: 'expired' });
    expect(expectedTurnPassword(SECRET, 'alice', NOW)).to.deep.equal({ ok: false, reason: 'malformed' });
  });

  describe('buildIceServers', () => {
    it('points at the bundled server (external IP first), then external TURN, then STUN', () => {
      const turn = turnConfig({
        TURN_PORT: '3478',
        TURN_RELAY_IP: '10.0.0.5',
        TURN_EXTERNAL_IP: '203.0.113.5',
        TURN_EXTERNAL_URLS: 'turn:coturn.example.com:3478?transport=udp,turns:coturn.example.com:5349?transport=tcp',
        STUN_URLS: 'stun:stun.example.com:3478',
      });
      const servers = buildIceServers(turn, 'alice', NOW);
      const username = `${NOW / 1000 + 3600}:alice`;
      const credential = turnPassword(SECRET, username);
      expect(servers).to.deep.equal([
        { urls: ['turn:203.0.113.5:3478?transport=udp', 'turn:203.0.113.5:3478?transport=tcp'], username, credential },
        { urls: ['turn:coturn.example.com:3478?transport=udp', 'turns:coturn.example.com:5349?transport=tcp'], username, credential },
        { urls: ['stun:stun.example.com:3478'] },
      ]);
    });

    it('falls back to the relay IP, brackets IPv6, and takes the real port when given', () => {
      expect(buildIceServers(turnConfig({ TURN_RELAY_IP: '192.0.2.7' }), 'u', NOW)[0]?.urls).to.deep.equal([
        'turn:192.0.2.7:3478?transport=udp',
        'turn:192.0.2.7:3478?transport=tcp',
      ]);
      expect(
        buildIceServers(turnConfig({ TURN_EXTERNAL_IP: '2001:db8::7' }), 'u', NOW, { port: 40000, tlsPort: 0 })[0]?.urls,
      ).to.deep.equal(['turn:[2001:db8::7]:40000?transport=udp', 'turn:[2001:db8::7]:40000?transport=tcp']);
    });

    it('lists the UDP URL alone with TURN_TCP=false', () => {
      expect(buildIceServers(turnConfig({ TURN_RELAY_IP: '192.0.2.7', TURN_TCP: 'false' }), 'u', NOW)[0]?.urls).to.deep.equal([
        'turn:192.0.2.7:3478?transport=udp',
      ]);
    });

    describe('with TURN over TLS', () => {
      let cert: SelfSignedCert | undefined;
      before(function () {
        const reason = opensslUnavailableReason();
        if (reason) {
          console.log(`      skipped: ${reason}`);
          this.skip();
        }
        cert = createSelfSignedCert();
      });
      after(() => cert?.remove());

      function tlsConfig(env: Record<string, string>) {
        return turnConfig({ TURN_TLS_CERT: cert?.certPath as string, TURN_TLS_KEY: cert?.keyPath as string, ...env });
      }

      it('adds turns: on TURN_TLS_PORT, at the TURN address or TURN_TLS_HOST, with the same credentials', () => {
        const [bundled] = buildIceServers(tlsConfig({ TURN_EXTERNAL_IP: '203.0.113.5' }), 'alice', NOW);
        expect(bundled?.urls).to.deep.equal([
          'turn:203.0.113.5:3478?transport=udp',
          'turn:203.0.113.5:3478?transport=tcp',
          'turns:203.0.113.5:5349?transport=tcp',
        ]);
        expect(verifyTurnCredentials(SECRET, bundled?.username as string, bundled?.credential as string, NOW).ok).to.equal(true);
        const named = buildIceServers(tlsConfig({ TURN_TLS_HOST: 'turn.example.com', TURN_TLS_PORT: '443', TURN_TCP: 'false' }), 'u', NOW);
        expect(named[0]?.urls).to.deep.equal(['turn:127.0.0.1:3478?transport=udp', 'turns:turn.example.com:443?transport=tcp']);
      });
    });

    it('hands out only external TURN and STUN when the bundled server is disabled', () => {
      const turn = turnConfig({
        TURN_ENABLED: 'false',
        TURN_EXTERNAL_URLS: 'turn:coturn.example.com:3478',
        STUN_URLS: 'stun:stun.example.com',
      });
      const servers = buildIceServers(turn, 'alice', NOW);
      expect(servers).to.have.length(2);
      expect(servers[0]?.urls).to.deep.equal(['turn:coturn.example.com:3478']);
      expect(verifyTurnCredentials(SECRET, servers[0]?.username as string, servers[0]?.credential as string, NOW).ok).to.equal(true);
      expect(servers[1]).to.deep.equal({ urls: ['stun:stun.example.com'] });
      expect(buildIceServers(turnConfig({ TURN_ENABLED: 'false' }), 'alice', NOW)).to.deep.equal([]);
    });

    it('issues credentials the relay accepts for TURN_CREDENTIAL_TTL_S', () => {
      const [bundled] = buildIceServers(turnConfig({ TURN_CREDENTIAL_TTL_S: '120' }), 'bob', NOW);
      const check = verifyTurnCredentials(SECRET, bundled?.username as string, bundled?.credential as string, NOW + 119_000);
      expect(check).to.deep.equal({ ok: true, userId: 'bob', expiresAt: NOW / 1000 + 120 });
      expect(verifyTurnCredentials(SECRET, bundled?.username as string, bundled?.credential as string, NOW + 120_000).ok).to.equal(false);
    });
  });
});

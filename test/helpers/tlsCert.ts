/** A throwaway self-signed certificate (CN=localhost, one day) made with openssl in a temporary directory. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  /** PEM certificate file (TURN_TLS_CERT). */
  certPath: string;
  /** PEM private key file (TURN_TLS_KEY). */
  keyPath: string;
  /** The certificate's PEM text (for a client's `ca`). */
  certPem: string;
  /** Deletes the directory. */
  remove(): void;
}

/** Why no certificate can be made here, or null when openssl is there. */
export function opensslUnavailableReason(): string | null {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8', timeout: 10_000 });
  return probe.error ? `openssl is not installed (${(probe.error as NodeJS.ErrnoException).code}); apt-get install -y openssl` : null;
}

/** Generates an RSA 2048 self-signed certificate for localhost and 127.0.0.1. */
export function createSelfSignedCert(): SelfSignedCert {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const result = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-days',
      '1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`openssl req failed: ${result.error?.message ?? result.stderr}`);
  }
  return { certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

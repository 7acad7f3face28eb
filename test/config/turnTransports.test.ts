/** TURN over TCP and TLS settings (issue 20): defaults, the TLS files checked at boot, and the TCP ports TURN must not share. */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config/index.js';
import { problemsOf as problemsOfEnv } from '../helpers/configProblems.js';
import { createSelfSignedCert, opensslUnavailableReason, type SelfSignedCert } from '../helpers/tlsCert.js';

/** One relay worker unless a test says otherwise: the default (one per core) depends on the machine. */
const problemsOf = (env: Record<string, string>): string[] => problemsOfEnv({ TURN_WORKERS: '1', ...env });

describe('config: TURN over TCP and TLS', () => {
  let cert: SelfSignedCert | undefined;
  let other: SelfSignedCert | undefined;

  before(function () {
    const reason = opensslUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    cert = createSelfSignedCert();
    other = createSelfSignedCert();
  });
  after(() => {
    cert?.remove();
    other?.remove();
  });

  const tlsFiles = (): Record<string, string> => ({ TURN_TLS_CERT: cert?.certPath as string, TURN_TLS_KEY: cert?.keyPath as string });

  it('serves TCP on TURN_PORT by default; TLS on 5349 only with a certificate and a key', () => {
    const defaults = loadConfig({}).turn;
    expect([defaults.tcp, defaults.tlsPort, defaults.tlsEnabled, defaults.maxConnectionsPerIp, defaults.tcpIdleTimeoutMs]).to.deep.equal([
      true,
      5349,
      false,
      64,
      30_000,
    ]);
    const tls = loadConfig({ ...tlsFiles(), TURN_TLS_PORT: '443', TURN_TLS_HOST: 'turn.example.com', TURN_TCP: 'false' }).turn;
    expect([tls.tcp, tls.tlsPort, tls.tlsEnabled, tls.tlsHost]).to.deep.equal([false, 443, true, 'turn.example.com']);
    expect(problemsOf({ TURN_TLS_HOST: 'https://turn.example.com/' }).join('\n')).to.match(/^TURN_TLS_HOST: must be a host name/m);
  });

  it('refuses one TLS file without the other, unreadable files, files that are not PEM, and a key of another certificate', () => {
    expect(problemsOf({ TURN_TLS_CERT: cert?.certPath as string })).to.deep.equal([
      'TURN_TLS_KEY: required with TURN_TLS_CERT (TURN over TLS needs both files)',
    ]);
    expect(problemsOf({ TURN_TLS_KEY: cert?.keyPath as string })).to.deep.equal([
      'TURN_TLS_CERT: required with TURN_TLS_KEY (TURN over TLS needs both files)',
    ]);
    expect(problemsOf({ TURN_TLS_CERT: '/nonexistent/cert.pem', TURN_TLS_KEY: '/nonexistent/key.pem' })).to.deep.equal([
      'TURN_TLS_CERT: cannot read /nonexistent/cert.pem: ENOENT',
      'TURN_TLS_KEY: cannot read /nonexistent/key.pem: ENOENT',
    ]);
    const garbage = join(cert?.certPath as string, '..', 'garbage.pem');
    writeFileSync(garbage, 'not a pem file\n');
    const swapped = problemsOf({ TURN_TLS_CERT: garbage, TURN_TLS_KEY: garbage });
    expect(swapped).to.have.length(2);
    expect(swapped[0]).to.match(/^TURN_TLS_CERT: .*garbage\.pem is not a PEM certificate/);
    expect(swapped[1]).to.match(/^TURN_TLS_KEY: .*garbage\.pem is not a PEM private key/);
    const mismatch = problemsOf({ TURN_TLS_CERT: cert?.certPath as string, TURN_TLS_KEY: other?.keyPath as string });
    expect(mismatch).to.have.length(1);
    expect(mismatch[0]).to.match(/^TURN_TLS_KEY: .* does not go with .*cert\.pem/);
    // TURN off: the files are not looked at.
    expect(
      problemsOf({ TURN_ENABLED: 'false', TURN_TLS_CERT: '/nonexistent/cert.pem', TURN_TLS_KEY: '/nonexistent/key.pem' }),
    ).to.deep.equal([]);
  });

  it('refuses TCP ports TURN would share with PORT, METRICS_PORT or itself, and SFU ports on TURN_TLS_PORT', () => {
    expect(problemsOf({ PORT: '3478' })).to.deep.equal(['TURN_PORT: TCP port 3478 is also PORT (set TURN_TCP=false for UDP only)']);
    expect(problemsOf({ PORT: '3478', TURN_TCP: 'false' })).to.deep.equal([]);
    expect(problemsOf({ METRICS_PORT: '3478' })).to.deep.equal([
      'TURN_PORT: TCP port 3478 is also METRICS_PORT (set TURN_TCP=false for UDP only)',
    ]);
    expect(problemsOf({ ...tlsFiles(), TURN_TLS_PORT: '8080' })).to.deep.equal(['TURN_TLS_PORT: 8080 is also PORT']);
    expect(problemsOf({ ...tlsFiles(), TURN_TLS_PORT: '3478' })).to.deep.equal(['TURN_TLS_PORT: 3478 is also TURN_PORT (TURN over TCP)']);
    expect(problemsOf({ ...tlsFiles(), TURN_TLS_PORT: '3478', TURN_TCP: 'false' })).to.deep.equal([]);
    expect(problemsOf({ ...tlsFiles(), TURN_TLS_PORT: '7883', SFU_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: ports 7882..7883 (one per SFU worker) include TURN_TLS_PORT 7883',
    ]);
    // Without certificate TLS is off: its port is free for others.
    expect(problemsOf({ PORT: '5349' })).to.deep.equal([]);
    expect(problemsOf({ PORT: '0', TURN_PORT: '0', TURN_TLS_PORT: '0', ...tlsFiles() })).to.deep.equal([]);
  });

  it('takes TURN_PORT..TURN_PORT+TURN_WORKERS-1, one port per relay worker, and refuses what they would share', () => {
    expect(loadConfig({}).turn.workers, 'one relay worker per core by default').to.equal(Math.max(1, os.availableParallelism()));
    expect(problemsOf({ TURN_WORKERS: '0' }).join('\n')).to.match(/^TURN_WORKERS: /m);
    expect(problemsOf({ TURN_WORKERS: '4' })).to.deep.equal([]);
    expect(problemsOf({ TURN_WORKERS: '4', PORT: '3481' })).to.deep.equal([
      'TURN_PORT: TCP TURN_PORT..TURN_PORT+TURN_WORKERS-1 (3478..3481) include PORT 3481 (set TURN_TCP=false for UDP only)',
    ]);
    expect(problemsOf({ TURN_WORKERS: '4', PORT: '3481', TURN_TCP: 'false' })).to.deep.equal([]);
    expect(problemsOf({ TURN_WORKERS: '4', PORT: '3482' })).to.deep.equal([]);
    expect(problemsOf({ TURN_WORKERS: '2', TURN_PORT: '65535' })).to.deep.equal([
      'TURN_WORKERS: TURN_PORT..TURN_PORT+TURN_WORKERS-1 (65535..65536): TURN_PORT + TURN_WORKERS - 1 must not exceed 65535',
      'TURN_PORT: TURN_PORT..TURN_PORT+TURN_WORKERS-1 (65535..65536) overlaps the relay range TURN_MIN_PORT..TURN_MAX_PORT (49152..65535)',
    ]);
    expect(problemsOf({ TURN_WORKERS: '3', TURN_PORT: '49150' })).to.deep.equal([
      'TURN_PORT: TURN_PORT..TURN_PORT+TURN_WORKERS-1 (49150..49152) overlaps the relay range TURN_MIN_PORT..TURN_MAX_PORT (49152..65535)',
    ]);
    expect(problemsOf({ TURN_WORKERS: '3', TURN_PORT: '49150', TURN_MIN_PORT: '49153' })).to.deep.equal([]);
    expect(problemsOf({ TURN_WORKERS: '1', TURN_PORT: '50000' }), 'one worker never takes its own port as a relay port').to.deep.equal([]);
    expect(problemsOf({ ...tlsFiles(), TURN_WORKERS: '2', TURN_TLS_PORT: '3479' })).to.deep.equal([
      'TURN_TLS_PORT: 3479 is also TURN_PORT..TURN_PORT+TURN_WORKERS-1 (3478..3479) (TURN over TCP)',
    ]);
    expect(problemsOf({ SFU_PORT: '3479', SFU_WORKERS: '1', TURN_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: port 3479 is also TURN_PORT..TURN_PORT+TURN_WORKERS-1 (3478..3479)',
    ]);
    expect(
      problemsOf({ TURN_WORKERS: '2', TURN_PORT: '0', TURN_MIN_PORT: '1024', SFU_PORT: '0' }),
      'ephemeral ports are not checked',
    ).to.deep.equal([]);
  });
});

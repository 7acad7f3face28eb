/** SFU_PORT (single-port media, issue 20): its default, its bounds, and the ports it must not share. */
import { expect } from 'chai';
import { loadConfig } from '../../config/index.js';
import { problemsOf as problemsOfEnv } from '../helpers/configProblems.js';

/** One relay worker unless a test says otherwise: the default (one per core) depends on the machine. */
const problemsOf = (env: Record<string, string>): string[] => problemsOfEnv({ TURN_WORKERS: '1', ...env });

describe('config: SFU_PORT', () => {
  it('defaults to single-port media on 7882 (worker i on 7882 + i); SFU_PORT=0 selects the port range', () => {
    const defaults = loadConfig({ SFU_WORKERS: '4' });
    expect([defaults.sfu.port, defaults.sfu.minPort, defaults.sfu.maxPort]).to.deep.equal([7882, 40000, 49999]);
    expect(loadConfig({ SFU_WORKERS: '4', SFU_PORT: '0' }).sfu.port).to.equal(0);
    expect(loadConfig({ SFU_WORKERS: '2', SFU_PORT: '50000', TURN_ENABLED: 'false' }).sfu.port).to.equal(50000);
  });

  it('refuses a port that is not one, and worker ports past 65535', () => {
    expect(problemsOf({ SFU_PORT: '70000' }).join('\n')).to.match(/^SFU_PORT: /m);
    expect(problemsOf({ SFU_PORT: 'udp' }).join('\n')).to.match(/^SFU_PORT: /m);
    expect(problemsOf({ SFU_PORT: '65535', SFU_WORKERS: '2', TURN_ENABLED: 'false' })).to.deep.equal([
      'SFU_PORT: ports 65535..65536 (one per SFU worker): SFU_PORT + SFU_WORKERS - 1 must not exceed 65535',
    ]);
    expect(problemsOf({ SFU_PORT: '65535', SFU_WORKERS: '1', TURN_ENABLED: 'false' })).to.deep.equal([]);
  });

  it('refuses worker ports that include TURN_PORT, the TURN relay range, PORT or METRICS_PORT; not when TURN is off or the SFU is', () => {
    expect(problemsOf({ SFU_PORT: '3477', SFU_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: ports 3477..3478 (one per SFU worker) include TURN_PORT 3478',
    ]);
    expect(problemsOf({ SFU_PORT: '3478', SFU_WORKERS: '1', TURN_ENABLED: 'false' })).to.deep.equal([]);
    expect(problemsOf({ SFU_PORT: '49151', SFU_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: ports 49151..49152 (one per SFU worker) overlap the TURN relay range TURN_MIN_PORT..TURN_MAX_PORT (49152..65535)',
    ]);
    expect(problemsOf({ SFU_PORT: '49151', SFU_WORKERS: '2', TURN_MIN_PORT: '50000' })).to.deep.equal([]);
    expect(problemsOf({ SFU_PORT: '8079', SFU_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: ports 8079..8080 (one per SFU worker) include PORT 8080',
    ]);
    expect(problemsOf({ SFU_PORT: '9000', SFU_WORKERS: '1', PORT: '9000' })).to.deep.equal(['SFU_PORT: port 9000 is also PORT 9000']);
    expect(problemsOf({ SFU_PORT: '9463', SFU_WORKERS: '2' })).to.deep.equal([
      'SFU_PORT: ports 9463..9464 (one per SFU worker) include METRICS_PORT 9464',
    ]);
    expect(problemsOf({ SFU_PORT: '9463', SFU_WORKERS: '2', METRICS_PORT: '0' })).to.deep.equal([]);
    expect(problemsOf({ SFU_PORT: '3478', SFU_WORKERS: '1', SFU_ENABLED: 'false' })).to.deep.equal([]);
    // The default SFU_PORT with the most workers (256: 7882..8137) takes PORT's default 8080: refused, not a failed bind.
    expect(problemsOf({ SFU_WORKERS: '256' })).to.deep.equal(['SFU_PORT: ports 7882..8137 (one per SFU worker) include PORT 8080']);
  });

  it('range mode (SFU_PORT=0) checks only its range, as before', () => {
    expect(problemsOf({ SFU_PORT: '0', SFU_MIN_PORT: '41000', SFU_MAX_PORT: '40000' })).to.deep.equal([
      'SFU_MIN_PORT: must not exceed SFU_MAX_PORT',
    ]);
    expect(problemsOf({ SFU_PORT: '0', SFU_WORKERS: '2', PORT: '0', TURN_PORT: '0' })).to.deep.equal([]);
  });
});

import { expect } from 'chai';
import { participantQuality } from '../../protocol/connectionQuality.js';
import type { LinkQuality } from '../../protocol/events.js';
import { QualityReporter, type MeasuredConnection } from '../../client-sdk/src/quality.js';
import { FakeClock, settle } from './fakeClock.js';

/** A connection whose inbound counters and RTT the test sets; getStats reports them as Chromium does. */
class FakeConnection implements MeasuredConnection {
  connectionState = 'connected';
  packetsReceived = 0;
  packetsLost = 0;
  rtt = 0.02;

  async getStats(): Promise<RTCStatsReport> {
    const stats = [
      { id: 'in', type: 'inbound-rtp', kind: 'audio', packetsReceived: this.packetsReceived, packetsLost: this.packetsLost, jitter: 0.002 },
      { id: 't', type: 'transport', selectedCandidatePairId: 'pair' },
      { id: 'pair', type: 'candidate-pair', state: 'succeeded', currentRoundTripTime: this.rtt, localCandidateId: 'local' },
      { id: 'local', type: 'local-candidate', candidateType: 'host' },
    ];
    return new Map(stats.map((stat) => [stat.id, stat])) as unknown as RTCStatsReport;
  }
}

describe('QualityReporter: link quality from getStats', () => {
  it('reports a link whose connection went down as lost (nothing arrives, its last RTT still looks good), and good again once it is back', async () => {
    const clock = new FakeClock();
    const connection = new FakeConnection();
    const reports: LinkQuality[][] = [];
    const reporter = new QualityReporter(
      {
        links: () => new Map([['p1', { pc: connection }]]),
        active: () => true,
        send: () => undefined,
        measured: (links) => reports.push(links),
      },
      clock,
    );
    reporter.start(1000);
    const step = async (packets: number) => {
      connection.packetsReceived += packets;
      await clock.advance(1000);
      await settle();
      return participantQuality(reports.at(-1) ?? []);
    };
    await step(50);
    expect(await step(50), 'flowing').to.equal('excellent');
    connection.connectionState = 'disconnected';
    expect(await step(0), 'disconnected').to.equal('lost');
    expect(reports.at(-1)?.[0]?.packet_loss).to.equal(1);
    connection.connectionState = 'failed';
    expect(await step(0), 'failed').to.equal('lost');
    connection.connectionState = 'connected';
    expect(await step(50), 'back').to.equal('excellent');
    reporter.stop();
  });
});

import { expect } from 'chai';
import { simulcastEncodings } from '../../client-sdk/src/simulcast.js';

describe('SDK simulcastEncodings: layers by camera size', () => {
  it('sends 720p and up as three layers (quarter, half, full), each capped, together under the SFU’s 1.5 Mbit/s intake', () => {
    const layers = simulcastEncodings(1280, 720);
    expect(layers).to.deep.equal([
      { scaleResolutionDownBy: 4, maxBitrate: 100_000 },
      { scaleResolutionDownBy: 2, maxBitrate: 300_000 },
      { scaleResolutionDownBy: 1, maxBitrate: 900_000 },
    ]);
    expect((layers ?? []).reduce((sum, layer) => sum + layer.maxBitrate, 0)).to.be.below(1_500_000);
    expect(simulcastEncodings(1920, 1080)?.map((l) => l.scaleResolutionDownBy)).to.deep.equal([4, 2, 1]);
    expect(simulcastEncodings(720, 1280)?.length, 'portrait').to.equal(3);
  });

  it('sends 360p up to 540p as two layers, and smaller cameras as one plain encoding', () => {
    expect(simulcastEncodings(640, 480)).to.deep.equal([
      { scaleResolutionDownBy: 2, maxBitrate: 100_000 },
      { scaleResolutionDownBy: 1, maxBitrate: 300_000 },
    ]);
    expect(simulcastEncodings(640, 360)?.length).to.equal(2);
    expect(simulcastEncodings(320, 240)).to.equal(undefined);
    expect(simulcastEncodings(160, 120)).to.equal(undefined);
  });
});

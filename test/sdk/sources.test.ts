/** The SDK's pure helpers for track sources: what a published track's source is, and the msid of a received one. */
import { expect } from 'chai';
import { defaultSource, sourceFor } from '../../client-sdk/src/Participant.js';
import { msidTrackId } from '../../client-sdk/src/PeerLink.js';

describe('SDK track sources', () => {
  it("gives each kind its own source: camera/microphone by default, a screen share's audio is screen_audio", () => {
    expect([defaultSource('video'), defaultSource('audio')]).to.deep.equal(['camera', 'microphone']);
    expect([sourceFor('video', undefined), sourceFor('audio', undefined)]).to.deep.equal(['camera', 'microphone']);
    expect([sourceFor('video', 'screen'), sourceFor('audio', 'screen')]).to.deep.equal(['screen', 'screen_audio']);
    expect([sourceFor('video', 'screen_audio'), sourceFor('audio', 'screen_audio')]).to.deep.equal(['screen', 'screen_audio']);
    expect([sourceFor('video', 'microphone'), sourceFor('audio', 'camera')]).to.deep.equal(['camera', 'microphone']);
  });

  it('reads the msid track id of one m-section by its mid, whatever the order of a=mid and a=msid', () => {
    const sdp = [
      'v=0',
      's=-',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      'a=mid:0',
      'a=msid:stream-a track-audio',
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=msid:stream-a track-video',
      'a=mid:1',
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
      'a=mid:2',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'a=mid:3',
      '',
    ].join('\r\n');
    expect(msidTrackId(sdp, '0')).to.equal('track-audio');
    expect(msidTrackId(sdp, '1')).to.equal('track-video');
    expect(msidTrackId(sdp, '2'), 'no msid').to.equal(undefined);
    expect(msidTrackId(sdp, '9'), 'no such mid').to.equal(undefined);
    expect(msidTrackId(undefined, '0')).to.equal(undefined);
    expect(msidTrackId(sdp, null)).to.equal(undefined);
  });
});

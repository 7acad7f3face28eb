import { expect } from 'chai';
import { sdpSendsMedia } from '../../server/signaling/sdp.js';

const section = (kind: string, port: string, ...attrs: string[]) => [`m=${kind} ${port} UDP/TLS/RTP/SAVPF 96`, ...attrs].join('\r\n');
const sdp = (...parts: string[]) => ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', ...parts, ''].join('\r\n');

describe('sdpSendsMedia', () => {
  it('detects sendrecv and sendonly audio/video', () => {
    expect(sdpSendsMedia(sdp(section('audio', '9', 'a=sendrecv')))).to.equal(true);
    expect(sdpSendsMedia(sdp(section('video', '9', 'a=sendonly')))).to.equal(true);
  });
  it('treats a missing direction as sendrecv, whatever the session-level direction (libwebrtc ignores it)', () => {
    expect(sdpSendsMedia(sdp(section('audio', '9')))).to.equal(true);
    expect(sdpSendsMedia(['v=0', 'a=recvonly', section('audio', '9'), ''].join('\r\n'))).to.equal(true);
    expect(sdpSendsMedia(['v=0', 'a=inactive', section('audio', '9', 'a=inactive'), ''].join('\r\n'))).to.equal(false);
  });
  it('ignores recvonly, inactive, rejected (port 0) and data sections', () => {
    expect(sdpSendsMedia(sdp(section('audio', '9', 'a=recvonly'), section('video', '9', 'a=inactive')))).to.equal(false);
    expect(sdpSendsMedia(sdp(section('video', '0', 'a=sendrecv')))).to.equal(false);
    expect(sdpSendsMedia(sdp('m=application 9 UDP/DTLS/SCTP webrtc-datachannel'))).to.equal(false);
  });
  it('counts a bundle-only section with port 0 as active', () => {
    expect(sdpSendsMedia(sdp(section('video', '0', 'a=bundle-only', 'a=sendonly')))).to.equal(true);
  });
  it('looks at every section, not just the first', () => {
    expect(sdpSendsMedia(sdp(section('audio', '9', 'a=recvonly'), section('video', '9', 'a=sendrecv')))).to.equal(true);
  });
});

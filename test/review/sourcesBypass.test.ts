/**
 * Review of the canPublishSources grant (issue 19): ways a participant allowed only its
 * microphone (the `guide` preset) might still get video to the others. Real server, real
 * Socket.IO clients, libwebrtc (@roamhq/wrtc) as the receiving peer, a real mediasoup worker.
 */
import { expect } from 'chai';
import wrtc from '@roamhq/wrtc';
import { emitAck, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { WrtcPeerConnection } from '../helpers/wrtc.js';

const SFU_ENV = { SFU_ENABLED: 'true', SFU_WORKERS: '1', SFU_LISTEN_IP: '127.0.0.1' };
const codeOf = (ack: { ok: boolean; error?: { code: string } }): string => (ack.ok ? 'ok' : (ack.error?.code ?? '?'));
const insertAt = (lines: string[], index: number, line: string): string[] => [...lines.slice(0, index), line, ...lines.slice(index)];
const midLine = (lines: string[]): number => lines.findIndex((line) => line.startsWith('a=mid:'));
const directions = (sdp: string): string[] =>
  sdp.split('\r\n').filter((line) => /^(m=|a=(inactive|sendrecv|sendonly|recvonly)$)/.test(line));

describe('review: a guide (microphone only) getting video to the others', function () {
  this.timeout(30000);
  let t: TestServer;
  afterEach(async () => {
    await t.close();
  });

  /** Ways to write a video section that the server read as not sending, and libwebrtc reads as sending. */
  const disguises: Array<[string, (lines: string[]) => string[]]> = [
    [
      'a session-level a=inactive',
      (lines) =>
        insertAt(
          lines,
          lines.findIndex((line) => line.startsWith('m=')),
          'a=inactive',
        ),
    ],
    ['a=inactive followed by a second CR', (lines) => insertAt(lines, midLine(lines) + 1, 'a=inactive\r')],
    ['a=inactive followed by a tab', (lines) => insertAt(lines, midLine(lines) + 1, 'a=inactive\t')],
    [
      'port 0 with a=bundle-only:x',
      (lines) =>
        insertAt(
          lines.map((line) => (line.startsWith('m=video 9 ') ? line.replace('m=video 9 ', 'm=video 0 ') : line)),
          midLine(lines) + 1,
          'a=bundle-only:x',
        ),
    ],
  ];

  for (const [name, disguise] of disguises) {
    it(`refuses an offer whose video is disguised by ${name} (libwebrtc receives that video)`, async () => {
      t = await startServer();
      const viewer = await t.join({ room: 'm', user: 'viewer' });
      const guide = await t.join({ room: 'm', user: 'guide', role: 'guide' });

      // The guide's real offer with a camera track, its media-level direction removed and the disguise applied.
      const sender = new WrtcPeerConnection();
      const receiver = new WrtcPeerConnection();
      const source = new wrtc.nonstandard.RTCVideoSource();
      const track = source.createTrack();
      try {
        sender.addTrack(track, new wrtc.MediaStream([track]));
        const offer = await sender.createOffer();
        const lines = (offer.sdp ?? '').split('\r\n').filter((line) => line !== 'a=sendrecv' && line !== 'a=sendonly');
        const munged = disguise(lines).join('\r\n');

        // What a browser (libwebrtc) makes of it: it answers recvonly and gets a video track.
        let received = '';
        receiver.addEventListener('track', (event) => (received = (event as RTCTrackEvent).track.kind));
        await receiver.setRemoteDescription({ type: 'offer', sdp: munged });
        const answer = await receiver.createAnswer();
        expect(directions(answer.sdp ?? '').slice(1), 'libwebrtc answers as a receiver').to.deep.equal(['a=recvonly']);
        expect(received, 'libwebrtc receives the video of that offer').to.equal('video');

        const ack = await emitAck(guide.client, 'signal', { to: viewer.ack.self.id, description: { type: 'offer', sdp: munged } });
        expect(codeOf(ack), 'the server must not relay video from a microphone-only participant').to.equal('forbidden');
        // The same offer with its video really inactive still goes through (the check is not simply stricter).
        const honest = insertAt(lines, midLine(lines) + 1, 'a=inactive').join('\r\n');
        const relayed = await emitAck(guide.client, 'signal', { to: viewer.ack.self.id, description: { type: 'offer', sdp: honest } });
        expect(codeOf(relayed)).to.equal('ok');
      } finally {
        track.stop();
        sender.close();
        receiver.close();
      }
    });
  }

  it('refuses an SFU producer whose kind (audio, source microphone) does not match its codecs (video/VP8)', async () => {
    t = await startServer({ ...SFU_ENV, MESH_THRESHOLD: '1' });
    const guide = await t.join({ room: 's', user: 'guide', role: 'guide' });
    await t.join({ room: 's', user: 'viewer' });
    await waitFor(() => t.server.rooms.get('t1', 's')?.mode === 'sfu', 5000, 'promotion');
    const transport = await emitAck(guide.client, 'sfu:create_transport', { direction: 'send' });
    expect(codeOf(transport)).to.equal('ok');
    const ack = await emitAck(guide.client, 'sfu:produce', {
      transport_id: (transport as unknown as { transport: { id: string } }).transport.id,
      kind: 'audio',
      app_data: { source: 'microphone' },
      rtp_parameters: {
        mid: '0',
        codecs: [{ mimeType: 'video/VP8', payloadType: 96, clockRate: 90000 }],
        encodings: [{ ssrc: 4001 }],
        rtcp: { cname: 'g' },
      },
    });
    expect(codeOf(ack), JSON.stringify(ack)).to.equal('payload_invalid');
    expect(t.server.sfu?.get('t1/s')?.producerEncodings(guide.ack.self.id) ?? []).to.have.length(0);
  });
});

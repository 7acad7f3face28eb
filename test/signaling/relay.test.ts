import { expect } from 'chai';
import { emitAck, nextEvent, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { sendOffer, wirePeer } from '../helpers/wrtc.js';

const AUDIO_VIDEO_OFFER = (direction: string) =>
  [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=mid:0',
    `a=${direction}`,
    'a=rtpmap:111 opus/48000/2',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    'a=mid:1',
    `a=${direction}`,
    'a=rtpmap:96 VP8/90000',
    '',
  ].join('\r\n');

describe('signal relay', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer();
  });
  after(async () => {
    await t.close();
  });

  it('relays offer, answer and candidates intact, with from set, only to the addressee', async () => {
    const a = await t.join({ room: 'relay', user: 'alice' });
    const b = await t.join({ room: 'relay', user: 'bob' });
    const c = await t.join({ room: 'relay', user: 'carol' });
    const cSignals: unknown[] = [];
    c.client.on('signal', (m) => cSignals.push(m));

    const offer = { type: 'offer', sdp: AUDIO_VIDEO_OFFER('sendrecv') } as const;
    const gotOffer = nextEvent(b.client, 'signal');
    expect(await emitAck(a.client, 'signal', { to: b.ack.self.id, description: offer })).to.deep.equal({ ok: true });
    expect(await gotOffer).to.deep.equal({ from: a.ack.self.id, description: offer });

    const answer = { type: 'answer', sdp: AUDIO_VIDEO_OFFER('sendrecv') } as const;
    const gotAnswer = nextEvent(a.client, 'signal');
    await emitAck(b.client, 'signal', { to: a.ack.self.id, description: answer });
    expect(await gotAnswer).to.deep.equal({ from: b.ack.self.id, description: answer });

    const candidate = {
      candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
      usernameFragment: 'abcd',
    };
    const gotCandidate = nextEvent(b.client, 'signal');
    await emitAck(a.client, 'signal', { to: b.ack.self.id, candidate });
    expect(await gotCandidate).to.deep.equal({ from: a.ack.self.id, candidate });

    await new Promise((r) => setTimeout(r, 100));
    expect(cSignals).to.deep.equal([]);
  });

  it('refuses a signal to oneself or to an unknown peer with peer_not_found', async () => {
    const a = await t.join({ room: 'self', user: 'alice' });
    for (const to of [a.ack.self.id, 'p_nobody']) {
      const ack = await emitAck(a.client, 'signal', { to, candidate: { candidate: '' } });
      expect(ack.ok === false && ack.error.code).to.equal('peer_not_found');
    }
  });

  it('refuses a media-sending SDP from a listener (canPublish false) but relays its receive-only SDP', async () => {
    const host = await t.join({ room: 'listen', user: 'host', role: 'host' });
    const listener = await t.join({ room: 'listen', user: 'listener', role: 'listener' });
    for (const direction of ['sendrecv', 'sendonly']) {
      const ack = await emitAck(listener.client, 'signal', {
        to: host.ack.self.id,
        description: { type: 'offer', sdp: AUDIO_VIDEO_OFFER(direction) },
      });
      expect(ack.ok === false && ack.error.code, direction).to.equal('forbidden');
    }
    // No direction attribute means sendrecv.
    const implicit = AUDIO_VIDEO_OFFER('sendrecv').replace(/a=sendrecv\r\n/g, '');
    const implicitAck = await emitAck(listener.client, 'signal', { to: host.ack.self.id, description: { type: 'offer', sdp: implicit } });
    expect(implicitAck.ok === false && implicitAck.error.code).to.equal('forbidden');

    const received = nextEvent(host.client, 'signal');
    const recvOnly = await emitAck(listener.client, 'signal', {
      to: host.ack.self.id,
      description: { type: 'answer', sdp: AUDIO_VIDEO_OFFER('recvonly') },
    });
    expect(recvOnly).to.deep.equal({ ok: true });
    await received;
  });

  it('negotiates a real data channel between two wrtc peers only through the hub', async function () {
    this.timeout(30000);
    const a = await t.join({ room: 'wrtc', user: 'alice' });
    const b = await t.join({ room: 'wrtc', user: 'bob' });
    const pcA = wirePeer(a.client, b.ack.self.id);
    const pcB = wirePeer(b.client, a.ack.self.id);
    try {
      const channel = pcA.createDataChannel('chat');
      const received = new Promise<string>((resolve) => {
        pcB.ondatachannel = ({ channel: incoming }) => {
          incoming.onmessage = ({ data }) => resolve(String(data));
        };
      });
      await sendOffer(a.client, pcA, b.ack.self.id);
      await waitFor(() => channel.readyState === 'open', 20000, 'data channel open');
      channel.send('hello through switchboard');
      expect(await received).to.equal('hello through switchboard');
    } finally {
      pcA.close();
      pcB.close();
    }
  });
});

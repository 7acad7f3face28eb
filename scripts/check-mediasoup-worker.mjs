#!/usr/bin/env node
// Smoke test for the mediasoup worker binary (see scripts/build-mediasoup-worker.sh):
// spawns a worker, creates a router (opus + VP8) and a WebRtcTransport on 127.0.0.1,
// then closes everything. Exits 0 on success, 1 on any failure.
import * as mediasoup from 'mediasoup';

const mediaCodecs = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

// Never hang in CI: a worker that does not answer fails the check.
const timer = setTimeout(() => {
  console.error('mediasoup worker check timed out');
  process.exit(1);
}, 20000);

let worker;
try {
  worker = await mediasoup.createWorker({ logLevel: 'warn' });
  const router = await worker.createRouter({ mediaCodecs });
  const transport = await router.createWebRtcTransport({
    listenIps: [{ ip: '127.0.0.1' }],
    enableUdp: true,
    enableTcp: true,
  });
  console.log(`mediasoup version: ${mediasoup.version}`);
  console.log(`worker binary: ${mediasoup.workerBin}`);
  console.log(`worker pid: ${worker.pid}`);
  console.log(`router id: ${router.id}`);
  console.log(`router codecs: ${router.rtpCapabilities.codecs.map((c) => c.mimeType).join(', ')}`);
  console.log(
    `transport id: ${transport.id} ice candidates: ${transport.iceCandidates.map((c) => `${c.protocol}/${c.ip}:${c.port}`).join(' ')}`,
  );
  transport.close();
  worker.close();
  console.log('mediasoup worker OK');
  clearTimeout(timer);
  process.exit(0);
} catch (err) {
  console.error('mediasoup worker check FAILED:', err);
  worker?.close();
  process.exit(1);
}

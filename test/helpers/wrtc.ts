/** A real WebRTC peer in Node (@roamhq/wrtc) whose offer/answer/candidates travel through a Switchboard socket. */
import wrtc from '@roamhq/wrtc';
import type { IceServer, SignalMessage } from '../../client-sdk/protocol/events.js';
import { emitAck, type TestClient } from './server.js';

export const { RTCPeerConnection } = wrtc;

/** An SDP without its `a=candidate` lines (a description whose candidates never reach the peer). */
export function withoutCandidates(sdp: string | undefined): string {
  return (sdp ?? '')
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:'))
    .join('\r\n');
}

/** Wires a peer connection to the hub: local candidates and descriptions go out as `signal` to `remoteId`. */
export function wirePeer(client: TestClient, remoteId: string, iceServers: IceServer[] = [], policy: RTCIceTransportPolicy = 'all'): RTCPeerConnection {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy });
  pc.onicecandidate = ({ candidate }) => {
    if (candidate) void emitAck(client, 'signal', { to: remoteId, candidate: { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } });
  };
  client.on('signal', (message: SignalMessage) => {
    if (message.from !== remoteId) return;
    void (async () => {
      if (message.description) {
        await pc.setRemoteDescription(message.description as RTCSessionDescriptionInit);
        if (message.description.type === 'offer') {
          await pc.setLocalDescription(await pc.createAnswer());
          const local = pc.localDescription;
          if (local) await emitAck(client, 'signal', { to: remoteId, description: { type: local.type, sdp: local.sdp } });
        }
      } else if (message.candidate && message.candidate.candidate) {
        await pc.addIceCandidate(message.candidate as RTCIceCandidateInit);
      }
    })();
  });
  return pc;
}

/** Creates and sends the offer. */
export async function sendOffer(client: TestClient, pc: RTCPeerConnection, remoteId: string): Promise<void> {
  await pc.setLocalDescription(await pc.createOffer());
  const local = pc.localDescription;
  if (!local) throw new Error('no local description');
  const ack = await emitAck(client, 'signal', { to: remoteId, description: { type: local.type, sdp: local.sdp } });
  if (!ack.ok) throw new Error(`offer refused: ${ack.error.code}`);
}

/** The selected candidate pair's local and remote candidate types, from getStats. */
export async function selectedPairTypes(pc: RTCPeerConnection): Promise<{ local?: string; remote?: string }> {
  const report = await pc.getStats();
  const stats = new Map<string, Record<string, unknown>>();
  report.forEach((value: Record<string, unknown>) => stats.set(value.id as string, value));
  let pairId: string | undefined;
  for (const s of stats.values()) if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId;
  if (!pairId) for (const s of stats.values()) if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pairId = s.id as string;
  const pair = pairId ? stats.get(pairId) : undefined;
  if (!pair) return {};
  return {
    local: stats.get(pair.localCandidateId as string)?.candidateType as string | undefined,
    remote: stats.get(pair.remoteCandidateId as string)?.candidateType as string | undefined,
  };
}

/** Sends `total` bytes in 16 KiB chunks, waiting whenever more than 1 MiB is buffered. */
export async function sendBulk(channel: RTCDataChannel, total: number): Promise<void> {
  channel.bufferedAmountLowThreshold = 256 * 1024;
  const chunk = new Uint8Array(16 * 1024).fill(7);
  for (let sent = 0; sent < total; ) {
    if (channel.bufferedAmount > 1024 * 1024) {
      await new Promise<void>((resolve) => (channel.onbufferedamountlow = () => resolve()));
      continue;
    }
    channel.send(chunk);
    sent += chunk.byteLength;
  }
}

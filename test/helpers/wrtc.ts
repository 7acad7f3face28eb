/** A real WebRTC peer in Node (@roamhq/wrtc) whose offer/answer/candidates travel through a Switchboard socket. */
import wrtc from '@roamhq/wrtc';
import type { IceServer, SignalMessage } from '../../protocol/events.js';
import { emitAck, type TestClient } from './server.js';

type Description = { type: RTCSdpType; sdp: string };
const NativeBacked = wrtc.RTCPeerConnection as unknown as typeof globalThis.RTCPeerConnection;

/**
 * @roamhq/wrtc's RTCPeerConnection, except that its SDP getters never reach the native code.
 *
 * wrtc's getters (localDescription, remoteDescription, and their current and pending forms)
 * take a pointer to the native description from the signaling thread, then serialize it on the
 * JavaScript thread, while the signaling thread may be adding a gathered candidate to it (or an
 * added one, for the remote description) or replacing it: a data race, and a use-after-free
 * when it lands. It killed the test process with SIGSEGV (core: webrtc::SdpSerialize, from
 * JsepSessionDescription::ToString, from RTCPeerConnection::GetLocalDescription; node-webrtc
 * issue 696). The SDK reads localDescription right after each setLocalDescription, as ICE
 * gathering starts, and remoteDescription on its retry timer, as candidates are added: about
 * 850 native reads in one run of these test files. Browsers copy the description on their
 * own thread; wrtc 0.10.0 has no safe getter.
 *
 * This class keeps the descriptions it set itself, with JSEP's pending/current bookkeeping,
 * and adds each local candidate to the local description when its icecandidate event arrives
 * (as the native one would have it). The native object's getters are replaced by ones that
 * return those. Remote candidates are not written into the remote description: nothing reads
 * them back, and trickle ICE carries them.
 */
export class WrtcPeerConnection extends NativeBacked {
  #pendingLocal: Description | null = null;
  #currentLocal: Description | null = null;
  #pendingRemote: Description | null = null;
  #currentRemote: Description | null = null;
  #closed = false;

  constructor(configuration?: RTCConfiguration) {
    super(configuration);
    const native = (this as unknown as { _pc: object })._pc;
    const served = (get: () => Description | null) => ({ get: () => (this.#closed ? null : get()), configurable: true });
    Object.defineProperties(native, {
      localDescription: served(() => this.#pendingLocal ?? this.#currentLocal),
      currentLocalDescription: served(() => this.#currentLocal),
      pendingLocalDescription: served(() => this.#pendingLocal),
      remoteDescription: served(() => this.#pendingRemote ?? this.#currentRemote),
      currentRemoteDescription: served(() => this.#currentRemote),
      pendingRemoteDescription: served(() => this.#pendingRemote),
    });
    this.addEventListener('icecandidate', (event) => {
      const { candidate } = event as RTCPeerConnectionIceEvent;
      const local = this.#pendingLocal ?? this.#currentLocal;
      if (!candidate?.candidate || !local || candidate.sdpMLineIndex === null || candidate.sdpMLineIndex === undefined) return;
      local.sdp = withCandidate(local.sdp, candidate.sdpMLineIndex, candidate.candidate);
    });
  }

  override async setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
    // Without an SDP, wrtc sets its last created offer or answer, which this class cannot see.
    if (!description?.type || (description.type !== 'rollback' && !description.sdp))
      throw new Error('test/helpers/wrtc.ts: setLocalDescription needs the description (wrtc would set an SDP this class cannot serve)');
    const { type } = description;
    const sdp = description.sdp ?? '';
    await super.setLocalDescription(description);
    if (type === 'rollback') this.#pendingLocal = null;
    else if (type === 'offer' || type === 'pranswer') this.#pendingLocal = { type, sdp };
    else {
      this.#currentLocal = { type, sdp };
      this.#currentRemote = this.#pendingRemote ?? this.#currentRemote;
      this.#pendingLocal = this.#pendingRemote = null;
    }
  }

  override async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    const { type } = description;
    const sdp = description.sdp ?? '';
    await super.setRemoteDescription(description);
    if (type === 'rollback') this.#pendingRemote = null;
    else if (type === 'offer' || type === 'pranswer') this.#pendingRemote = { type, sdp };
    else {
      this.#currentRemote = { type, sdp };
      this.#currentLocal = this.#pendingLocal ?? this.#currentLocal;
      this.#pendingLocal = this.#pendingRemote = null;
    }
  }

  override close(): void {
    this.#closed = true;
    super.close();
  }
}

/** `sdp` with an `a=candidate:` line added at the end of its media section `index`. */
function withCandidate(sdp: string, index: number, candidate: string): string {
  const lines = sdp.split('\r\n');
  const sections = lines.flatMap((line, at) => (line.startsWith('m=') ? [at] : []));
  const start = sections[index];
  if (start === undefined) return sdp;
  let end = sections[index + 1] ?? lines.length;
  while (end > start + 1 && lines[end - 1] === '') end--;
  lines.splice(end, 0, candidate.startsWith('a=') ? candidate : `a=${candidate}`);
  return lines.join('\r\n');
}

/** An SDP without its `a=candidate` lines (a description whose candidates never reach the peer). */
export function withoutCandidates(sdp: string | undefined): string {
  return (sdp ?? '')
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:'))
    .join('\r\n');
}

/** Wires a peer connection to the hub: local candidates and descriptions go out as `signal` to `remoteId`. */
export function wirePeer(
  client: TestClient,
  remoteId: string,
  iceServers: IceServer[] = [],
  policy: RTCIceTransportPolicy = 'all',
): WrtcPeerConnection {
  const pc = new WrtcPeerConnection({ iceServers, iceTransportPolicy: policy });
  pc.onicecandidate = ({ candidate }) => {
    if (candidate)
      void emitAck(client, 'signal', {
        to: remoteId,
        candidate: { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex },
      });
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
export async function sendOffer(client: TestClient, pc: globalThis.RTCPeerConnection, remoteId: string): Promise<void> {
  await pc.setLocalDescription(await pc.createOffer());
  const local = pc.localDescription;
  if (!local) throw new Error('no local description');
  const ack = await emitAck(client, 'signal', { to: remoteId, description: { type: local.type, sdp: local.sdp } });
  if (!ack.ok) throw new Error(`offer refused: ${ack.error.code}`);
}

/** The selected candidate pair's local and remote candidate types, from getStats. */
export async function selectedPairTypes(pc: globalThis.RTCPeerConnection): Promise<{ local?: string; remote?: string }> {
  const report = await pc.getStats();
  const stats = new Map<string, Record<string, unknown>>();
  report.forEach((value: Record<string, unknown>) => stats.set(value.id as string, value));
  let pairId: string | undefined;
  for (const s of stats.values())
    if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId;
  if (!pairId)
    for (const s of stats.values()) if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pairId = s.id as string;
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
  for (let sent = 0; sent < total;) {
    if (channel.bufferedAmount > 1024 * 1024) {
      await new Promise<void>((resolve) => (channel.onbufferedamountlow = () => resolve()));
      continue;
    }
    channel.send(chunk);
    sent += chunk.byteLength;
  }
}

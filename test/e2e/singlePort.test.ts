/**
 * Single-port media in Chromium (issue 20): two demo pages in an SFU room exchange video through
 * one UDP port (the room's worker's SFU_PORT + index), seen from the server (every transport's
 * ICE-selected tuple) and from the pages (each SFU peer connection's selected candidate pair);
 * then, with UDP to the SFU blocked for the pages, the same over ICE-TCP on that port.
 *
 * How UDP is blocked: an init script rewrites the UDP candidates of the SFU's remote SDP (the
 * one with a=ice-lite) to a port where a test socket swallows every datagram (a firewall that
 * drops UDP). The pages keep the TCP candidate, so they must find it themselves; the black hole
 * counting their STUN checks shows they tried UDP first and got no answer.
 */
import { expect } from 'chai';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, failOnPageErrors, identityOf, launchBrowser } from '../helpers/browser.js';
import { freeSfuPort } from '../helpers/ports.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';

/** In every page: SFU peer connections (remote SDP with a=ice-lite) are kept in window.sfuPeerConnections; with BLACK_HOLE set, their remote UDP candidates point there. */
const pageScript = (blackHole: number | null): string => `(() => {
  const blackHole = ${blackHole === null ? 'null' : String(blackHole)};
  window.sfuPeerConnections = [];
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (description, ...rest) {
    if (description && typeof description.sdp === 'string' && description.sdp.includes('a=ice-lite')) {
      if (!window.sfuPeerConnections.includes(this)) window.sfuPeerConnections.push(this);
      if (blackHole !== null) {
        const sdp = description.sdp.replace(/^(a=candidate:\\S+ \\d+ udp \\d+ \\S+ )\\d+( typ host)/gim, '$1' + blackHole + '$2');
        description = { type: description.type, sdp };
      }
    }
    return setRemote.call(this, description, ...rest);
  };
})();`;

interface Endpoint {
  protocol: string;
  address: string;
  port: number;
}
interface SelectedPair {
  ice: string;
  local: Endpoint | null;
  remote: Endpoint | null;
  remoteCandidates: string;
}

/** Each live SFU peer connection of the page: its ICE state and the selected candidate pair's two ends. */
function selectedPairs(page: Page): Promise<SelectedPair[]> {
  return page.evaluate(async () => {
    const pcs = (window as unknown as { sfuPeerConnections: RTCPeerConnection[] }).sfuPeerConnections;
    const result = [];
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = (await pc.getStats()) as unknown as Map<string, Record<string, unknown>>;
      let pair: Record<string, unknown> | undefined;
      stats.forEach((s) => {
        if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pair = stats.get(s.selectedCandidatePairId);
      });
      // No named functions in here: tsx would wrap them in a __name() helper the page lacks.
      const [local, remote] = [pair?.localCandidateId, pair?.remoteCandidateId].map((id) => {
        const c = typeof id === 'string' ? stats.get(id) : undefined;
        return c ? { protocol: String(c.protocol), address: String(c.address), port: Number(c.port) } : null;
      });
      const remoteCandidates = (pc.remoteDescription?.sdp ?? '')
        .split('\r\n')
        .filter((line) => line.startsWith('a=candidate'))
        .join(' | ');
      result.push({
        ice: pc.iceConnectionState,
        local: local ?? null,
        remote: remote ?? null,
        remoteCandidates,
      });
    }
    return result;
  });
}

/** Frames decoded over the SFU per remote identity. */
function sfuFrames(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () =>
    Object.fromEntries([...(await window.switchboardRoom.getParticipantStats())].map(([id, s]) => [id, s.framesByPath.sfu])),
  );
}

/** The page decodes `identity`'s video over the SFU, and keeps decoding (more than 10 new frames within 10 s). */
async function expectSfuVideo(page: Page, identity: string): Promise<number> {
  await waitFor(async () => ((await sfuFrames(page))[identity] ?? 0) > 0, 30000, `SFU video from ${identity}`);
  const before = (await sfuFrames(page))[identity] ?? 0;
  await waitFor(async () => ((await sfuFrames(page))[identity] ?? 0) > before + 10, 10000, `more SFU video from ${identity}`);
  return (await sfuFrames(page))[identity] ?? 0;
}

describe('browser e2e: single-port SFU media in Chromium, over UDP and over TCP (issue 20)', function () {
  this.timeout(180000);
  let browser: Browser;
  let t: TestServer | undefined;
  let blackHole: UdpSocket | undefined;
  const pages: Page[] = [];

  before(async function () {
    const reason = browserUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    browser = await launchBrowser();
  });
  afterEach(async () => {
    for (const page of pages.splice(0)) await page.close().catch(() => undefined);
    await t?.close();
    t = undefined;
    blackHole?.close();
    blackHole = undefined;
  });
  after(async () => browser?.close());

  /** Starts a server whose two workers listen on SFU_PORT and SFU_PORT + 1. */
  async function start(): Promise<number> {
    const port = await freeSfuPort(2, '127.0.0.1');
    t = await startServer({ SFU_ENABLED: 'true', SFU_WORKERS: '2', SFU_LISTEN_IP: '127.0.0.1', SFU_PORT: String(port) });
    return port;
  }

  /** Opens a demo page (camera only, 160x120, one layer) with the page script, and waits until it is connected. */
  async function open(room: string, name: string, blackHolePort: number | null): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
    pages.push(page);
    failOnPageErrors(page, name);
    await page.addInitScript({ content: pageScript(blackHolePort) });
    const base = (t as TestServer).url.replace('127.0.0.1', 'localhost');
    await page.goto(`${base}/?room=${room}&name=${name}&res=160x120&audio=0&simulcast=0`);
    await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 30000 });
    return page;
  }

  /** Two pages in a room pinned to the SFU, each decoding the other's video; returns the pages and the server's SFU room. */
  async function sfuRoomOfTwo(room: string, blackHolePort: number | null) {
    const server = (t as TestServer).server;
    const first = await open(room, 'a', blackHolePort);
    const live = server.rooms.get('dev', room);
    if (!live) throw new Error('the room is not live');
    server.rooms.updateConfig(live, { mode_policy: 'sfu' });
    await first.waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 30000, polling: 250 });
    const second = await open(room, 'b', blackHolePort);
    await second.waitForFunction(() => window.switchboardRoom.mode === 'sfu', undefined, { timeout: 30000, polling: 250 });
    const [a, b] = [await identityOf(first), await identityOf(second)];
    const frames = [await expectSfuVideo(first, b), await expectSfuVideo(second, a)];
    const sfuRoom = server.sfu?.get(live.key);
    if (!sfuRoom) throw new Error('no SFU router for the room');
    return { pages: [first, second], sfuRoom, frames };
  }

  it('two pages exchange video through one UDP port: every transport on SFU_PORT + the worker index, seen from server and pages', async () => {
    const port = await start();
    const { pages: roomPages, sfuRoom, frames } = await sfuRoomOfTwo('udp-one-port', null);
    const mediaPort = port + sfuRoom.worker.index;
    const paths = sfuRoom.transportPaths();
    console.log(
      `      worker ${sfuRoom.worker.index} (port ${mediaPort}); server tuples: ${paths.map((p) => `${p.direction} ${p.iceState} ${p.tuple?.protocol} ${p.tuple?.localIp}:${p.tuple?.localPort} <- ${p.tuple?.remoteIp}:${p.tuple?.remotePort}`).join('; ')}; SFU frames decoded ${frames.join(', ')}`,
    );
    // Two pages, each a send and a receive transport: all four on one UDP port.
    expect(paths).to.have.length(4);
    for (const path of paths) {
      expect(path.iceState, `${path.direction} transport of ${path.peerId}`).to.be.oneOf(['connected', 'completed']);
      expect([path.tuple?.protocol, path.tuple?.localPort], `${path.direction} transport of ${path.peerId}`).to.deep.equal([
        'udp',
        mediaPort,
      ]);
    }
    const serverRemotePorts = new Set(paths.map((p) => p.tuple?.remotePort));
    for (const page of roomPages) {
      const pairs = await selectedPairs(page);
      console.log(
        `      ${await identityOf(page)}: ${pairs.map((p) => `${p.ice} ${p.local?.protocol} :${p.local?.port} -> ${p.remote?.address}:${p.remote?.port}`).join('; ')}`,
      );
      expect(pairs).to.have.length(2);
      for (const pair of pairs) {
        expect(pair.ice).to.be.oneOf(['connected', 'completed']);
        expect(pair.remote).to.deep.equal({ protocol: 'udp', address: '127.0.0.1', port: mediaPort });
        expect(pair.local?.protocol).to.equal('udp');
        // The page's end is one the server sees (the same 5-tuple from both sides).
        expect(
          serverRemotePorts.has(pair.local?.port),
          `page port ${pair.local?.port} among the server's ${[...serverRemotePorts].join(', ')}`,
        ).to.equal(true);
      }
    }
  });

  it('with UDP to the SFU blocked, the pages get video over ICE-TCP on the same single port', async () => {
    const port = await start();
    let swallowed = 0;
    blackHole = createSocket('udp4');
    blackHole.on('message', () => swallowed++);
    const blackHolePort = await new Promise<number>((resolve) =>
      blackHole?.bind(0, '127.0.0.1', () => resolve(blackHole?.address().port as number)),
    );
    const { pages: roomPages, sfuRoom, frames } = await sfuRoomOfTwo('tcp-one-port', blackHolePort);
    const mediaPort = port + sfuRoom.worker.index;
    const paths = sfuRoom.transportPaths();
    console.log(
      `      worker ${sfuRoom.worker.index} (port ${mediaPort}); server tuples: ${paths.map((p) => `${p.direction} ${p.iceState} ${p.tuple?.protocol} ${p.tuple?.localIp}:${p.tuple?.localPort} <- ${p.tuple?.remoteIp}:${p.tuple?.remotePort}`).join('; ')}; SFU frames decoded ${frames.join(', ')}; UDP datagrams the black hole swallowed: ${swallowed}`,
    );
    expect(paths).to.have.length(4);
    for (const path of paths) {
      expect(path.iceState, `${path.direction} transport of ${path.peerId}`).to.be.oneOf(['connected', 'completed']);
      expect([path.tuple?.protocol, path.tuple?.localPort], `${path.direction} transport of ${path.peerId}`).to.deep.equal([
        'tcp',
        mediaPort,
      ]);
    }
    for (const page of roomPages) {
      const pairs = await selectedPairs(page);
      console.log(
        `      ${await identityOf(page)}: ${pairs.map((p) => `${p.ice} ${p.local?.protocol} -> ${p.remote?.protocol} ${p.remote?.address}:${p.remote?.port}`).join('; ')}`,
      );
      expect(pairs).to.have.length(2);
      for (const pair of pairs) {
        expect(pair.ice).to.be.oneOf(['connected', 'completed']);
        expect(pair.remote).to.deep.equal({ protocol: 'tcp', address: '127.0.0.1', port: mediaPort });
        expect(pair.local?.protocol).to.equal('tcp');
        // The page was offered UDP (pointing at the black hole) and TCP, nothing else.
        expect(pair.remoteCandidates).to.include(` udp `).and.include(` ${blackHolePort} typ host`).and.include(` tcp `);
        expect(pair.remoteCandidates).to.not.match(new RegExp(` udp \\d+ \\S+ ${mediaPort} typ`));
      }
    }
    // The pages tried UDP (their STUN checks went into the black hole) before ICE-TCP carried everything.
    expect(swallowed, 'STUN checks sent to the blocked UDP candidate').to.be.greaterThan(0);
  });
});

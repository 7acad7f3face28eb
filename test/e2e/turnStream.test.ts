/**
 * Chromium pages that may only relay (iceTransportPolicy 'relay', the demo's relay=1) and are
 * given only one URL of the bundled TURN server's ice_servers: first the TCP one
 * (turn:...?transport=tcp), then the TLS one (turns:...). Media and data flow between two
 * pages, the candidate pair each page selected is local relay over that transport
 * (getStats: local-candidate relayProtocol), and the relay counts the connections.
 *
 * Chromium checks a TURN server's TLS certificate as it checks a web server's (verified with
 * Chromium 156: a self-signed one fails the handshake, the page gets icecandidateerror 701 and
 * no relay candidate; Playwright's ignoreHTTPSErrors does not reach WebRTC's sockets). The
 * browser here trusts the run's self-signed certificate alone, by its public key
 * (--ignore-certificate-errors-spki-list); a last test shows a browser without that flag
 * refusing it.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { browserUnavailableReason, buildSdk, failOnPageErrors, identityOf, inboundBytes, launchBrowser } from '../helpers/browser.js';
import { startServer, waitFor, type TestServer } from '../helpers/server.js';
import { createSelfSignedCert, opensslUnavailableReason, type SelfSignedCert } from '../helpers/tlsCert.js';

/** base64(SHA-256(SubjectPublicKeyInfo)): how --ignore-certificate-errors-spki-list names a certificate to trust. */
function spkiHash(certPem: string): string {
  return createHash('sha256')
    .update(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}

/** What a page's selected candidate pair runs on. */
interface SelectedPair {
  localType: string | undefined;
  relayProtocol: string | undefined;
  remoteType: string | undefined;
}

/** Opens the demo relay-only with the ice_servers the page gets from its join reduced to the URLs `keep` matches. */
async function openRelayPage(browser: Browser, base: string, query: string, keep: RegExp): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 960, height: 600 } });
  failOnPageErrors(page, query);
  // A string, not a function: tsx names functions through a helper the page lacks.
  await page.addInitScript({
    content: `{
      const Native = window.RTCPeerConnection;
      const keep = new RegExp(${JSON.stringify(keep.source)});
      window.turnUrlsGiven = [];
      const Filtered = function (configuration) {
        const iceServers = configuration && configuration.iceServers && configuration.iceServers
          .map((server) => ({ ...server, urls: [].concat(server.urls).filter((url) => keep.test(url)) }))
          .filter((server) => server.urls.length > 0);
        if (iceServers) for (const server of iceServers) window.turnUrlsGiven.push(...server.urls);
        return new Native({ ...configuration, ...(iceServers ? { iceServers } : {}) });
      };
      Filtered.prototype = Native.prototype;
      Filtered.generateCertificate = Native.generateCertificate.bind(Native);
      window.RTCPeerConnection = Filtered;
    }`,
  });
  await page.goto(`${base}/?${query}&relay=1&res=320x240`);
  await page.waitForFunction(() => window.switchboardRoom?.state === 'connected', undefined, { timeout: 30000 });
  return page;
}

/** The selected candidate pair of each of the page's mesh links. */
function selectedPairs(page: Page): Promise<SelectedPair[]> {
  return page.evaluate(async () => {
    const room = window.switchboardRoom as unknown as { getLinkStats(): Promise<Map<string, RTCStatsReport>> };
    const pairs: Array<{ localType: string | undefined; relayProtocol: string | undefined; remoteType: string | undefined }> = [];
    for (const report of (await room.getLinkStats()).values()) {
      const stats = new Map<string, Record<string, unknown>>();
      report.forEach((stat: Record<string, unknown>) => stats.set(String(stat.id), stat));
      const transport = [...stats.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = stats.get(String(transport?.selectedCandidatePairId));
      if (!pair) continue;
      const local = stats.get(String(pair.localCandidateId));
      const remote = stats.get(String(pair.remoteCandidateId));
      pairs.push({
        localType: local?.candidateType as string | undefined,
        relayProtocol: local?.relayProtocol as string | undefined,
        remoteType: remote?.candidateType as string | undefined,
      });
    }
    return pairs;
  });
}

/** Inbound audio and video bytes from `from` grow on `page` over about 1.5 s. */
async function expectMediaGrowing(page: Page, from: string): Promise<void> {
  await waitFor(
    async () => {
      const now = (await inboundBytes(page))[from];
      return (now?.audio ?? 0) > 0 && (now?.video ?? 0) > 0;
    },
    45000,
    'first media bytes',
  );
  const before = (await inboundBytes(page))[from];
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const after = (await inboundBytes(page))[from];
  expect((after?.audio ?? 0) - (before?.audio ?? 0), `audio bytes from ${from}`).to.be.greaterThan(500);
  expect((after?.video ?? 0) - (before?.video ?? 0), `video bytes from ${from}`).to.be.greaterThan(5000);
}

/** Each page sends one data message; each receives the other's. */
async function expectDataBothWays(pages: Page[], identities: string[]): Promise<void> {
  for (const page of pages)
    await page.evaluate(() => {
      window.received = [];
      window.switchboardRoom.on('data', (payload: unknown, participant: unknown) => {
        const p = payload as { type?: string; text?: string };
        if (p.type === 'probe') window.received.push({ from: (participant as { identity: string }).identity, text: String(p.text) });
      });
    });
  for (const [i, page] of pages.entries())
    await page.evaluate((text) => window.switchboardRoom.send({ type: 'probe', text }), `hello from ${i}`);
  for (const [i, page] of pages.entries()) {
    const other = 1 - i;
    await page.waitForFunction(() => window.received.length >= 1, undefined, { timeout: 15000 });
    expect(await page.evaluate(() => window.received)).to.deep.equal([{ from: identities[other], text: `hello from ${other}` }]);
  }
}

describe('browser e2e: relay-only pages through the bundled TURN over TCP, then TLS', function () {
  this.timeout(180000);
  let cert: SelfSignedCert | undefined;
  let server: TestServer;
  let browser: Browser;
  let base: string;

  before(async function () {
    const reason = browserUnavailableReason() ?? opensslUnavailableReason();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    buildSdk();
    cert = createSelfSignedCert();
    server = await startServer({
      TURN_ENABLED: 'true',
      TURN_PORT: '0',
      TURN_LISTEN_IP: '127.0.0.1',
      TURN_RELAY_IP: '127.0.0.1',
      TURN_SECRET: 'e2e-turn-secret-0123456789-0123456789',
      TURN_ALLOWED_PEER_CIDRS: '127.0.0.0/8',
      TURN_TLS_PORT: '0',
      TURN_TLS_CERT: cert.certPath,
      TURN_TLS_KEY: cert.keyPath,
      TURN_TLS_HOST: 'localhost',
    });
    base = server.url.replace('127.0.0.1', 'localhost');
    browser = await launchBrowser({ extraArgs: [`--ignore-certificate-errors-spki-list=${spkiHash(cert.certPem)}`] });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    cert?.remove();
  });

  async function scenario(room: string, keep: RegExp, protocol: 'tcp' | 'tls'): Promise<void> {
    const turn = server.server.turn;
    const relayedBefore = turn?.stats().relayedBytes ?? 0;
    const pages = [
      await openRelayPage(browser, base, `room=${room}&name=ann`, keep),
      await openRelayPage(browser, base, `room=${room}&name=ben`, keep),
    ];
    try {
      const identities = await Promise.all(pages.map(identityOf));
      for (const [i, page] of pages.entries()) await expectMediaGrowing(page, identities[1 - i] as string);
      await expectDataBothWays(pages, identities);
      for (const page of pages) {
        const given = await page.evaluate(() => (window as unknown as { turnUrlsGiven: string[] }).turnUrlsGiven);
        expect(given.length, 'TURN URLs given to the page').to.be.above(0);
        for (const url of given) expect(url).to.match(keep);
        expect(await selectedPairs(page), 'the selected candidate pair').to.deep.equal([
          { localType: 'relay', relayProtocol: protocol, remoteType: 'relay' },
        ]);
      }
      expect(turn?.stats().connections[protocol], `${protocol} connections at the relay`).to.be.at.least(2);
      expect((turn?.stats().relayedBytes ?? 0) - relayedBefore).to.be.greaterThan(100_000);
    } finally {
      for (const page of pages) await page.close();
    }
  }

  it('two pages given only turn:...?transport=tcp exchange media and data over TURN/TCP', async () => {
    await scenario('turn-tcp', /^turn:[^?]+\?transport=tcp$/, 'tcp');
  });

  it('two pages given only turns: exchange media and data over TURN/TLS', async () => {
    await scenario('turn-tls', /^turns:/, 'tls');
  });

  it('a Chromium that does not trust the certificate gets no TLS relay candidate (701), and the relay counts the refused handshake', async () => {
    const turn = server.server.turn;
    const [iceServer] = turn?.iceServers('doubter') ?? [];
    const urls = ([] as string[]).concat(iceServer?.urls ?? []).filter((url) => url.startsWith('turns:'));
    expect(urls).to.have.length(1);
    const refusedBefore = turn?.stats().refusals.tls_handshake ?? 0;
    const doubter = await launchBrowser();
    try {
      const page = await doubter.newPage();
      const gathered = await page.evaluate(
        async ({ urls, username, credential }) => {
          const pc = new RTCPeerConnection({ iceServers: [{ urls, username, credential }], iceTransportPolicy: 'relay' });
          const candidates: string[] = [];
          const errors: number[] = [];
          pc.onicecandidate = (event) => {
            if (event.candidate) candidates.push(event.candidate.candidate);
          };
          pc.onicecandidateerror = (event) => errors.push((event as RTCPeerConnectionIceErrorEvent).errorCode);
          pc.createDataChannel('probe');
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise<void>((resolve) => {
            if (pc.iceGatheringState === 'complete') resolve();
            pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
          });
          pc.close();
          return { candidates, errors };
        },
        { urls, username: iceServer?.username as string, credential: iceServer?.credential as string },
      );
      expect(gathered.candidates).to.deep.equal([]);
      expect(gathered.errors).to.include(701);
      await waitFor(() => (turn?.stats().refusals.tls_handshake ?? 0) > refusedBefore, 15000, 'the refused handshake counted');
    } finally {
      await doubter.close();
    }
  });
});

import { expect } from 'chai';
import { emitAck, nextEvent, startServer, type TestServer } from '../helpers/server.js';

describe('HTTP basics: health, readiness, metrics, errors', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ CORS_ORIGINS: 'https://app.example.com' });
  });
  after(async () => {
    await t.close();
  });

  it('answers /health and /ready with security headers', async () => {
    const health = await fetch(`${t.url}/health`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.equal({ status: 'ok' });
    expect(health.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(health.headers.get('x-powered-by')).to.equal(null);
    const ready = await fetch(`${t.url}/ready`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.equal({ status: 'ready', checks: { store: true, sfu: true, accepting: true } });
  });

  it('answers CORS only for allowed origins', async () => {
    const allowed = await fetch(`${t.url}/health`, { headers: { origin: 'https://app.example.com' } });
    expect(allowed.headers.get('access-control-allow-origin')).to.equal('https://app.example.com');
    const foreign = await fetch(`${t.url}/health`, { headers: { origin: 'https://evil.example.com' } });
    expect(foreign.headers.get('access-control-allow-origin')).to.equal(null);
  });

  it('answers unknown routes and bad JSON with JSON errors', async () => {
    const missing = await fetch(`${t.url}/nope`);
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.deep.equal({ error: { code: 'not_found', message: 'no such route' } });
    const bad = await fetch(`${t.url}/api/v1/anything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).to.equal('payload_invalid');
  });

  it('exposes Prometheus metrics that follow rooms, peers, relays and refusals', async () => {
    const a = await t.join({ room: 'metrics', user: 'alice' });
    const b = await t.join({ room: 'metrics', user: 'bob' });
    const relayed = nextEvent(b.client, 'signal');
    await emitAck(a.client, 'signal', { to: b.ack.self.id, candidate: { candidate: '' } });
    await relayed;
    await t.connect('garbage').catch(() => undefined);
    const response = await fetch(`${t.url}/metrics`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/text\/plain/);
    const text = await response.text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    expect(value(/^switchboard_rooms_active\{mode="mesh"\} (\d+)/m)).to.be.at.least(1);
    expect(value(/^switchboard_peers_active (\d+)/m)).to.be.at.least(2);
    expect(value(/^switchboard_signals_relayed_total (\d+)/m)).to.be.at.least(1);
    expect(value(/^switchboard_handshakes_total\{result="token_invalid"\} (\d+)/m)).to.be.at.least(1);
    expect(text).to.include('switchboard_join_duration_seconds_bucket');
    expect(text).to.include('switchboard_process_cpu_seconds_total');
  });
});

import { expect } from 'chai';
import { Limits, signalPayload } from '../../protocol/schemas.js';
import { isPlainSignal } from '../../server/signaling/signalShape.js';

/**
 * The gateway's quick check of `signal` payloads (server/signaling/signalShape.ts) must accept a
 * subset of what zod's signalPayload accepts, with zod's output equal to the payload itself, and
 * must accept the shapes the SDK actually sends (or the relay takes zod's slow path).
 */
const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n';
const candidateLine =
  'candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw network-cost 999';

/** What browsers and the SDK send: the quick check must take all of these. */
const everyday: Array<[string, unknown]> = [
  ['offer', { to: 'p_abc', description: { type: 'offer', sdp } }],
  ['answer', { to: 'p_abc', description: { type: 'answer', sdp } }],
  ['pranswer', { to: 'p_abc', description: { type: 'pranswer', sdp } }],
  ['rollback without sdp', { to: 'p_abc', description: { type: 'rollback' } }],
  ['rollback with empty sdp', { to: 'p_abc', description: { type: 'rollback', sdp: '' } }],
  [
    'candidate (RTCIceCandidate.toJSON)',
    { to: 'p_abc', candidate: { candidate: candidateLine, sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'EsAw' } },
  ],
  [
    'candidate with nulls',
    { to: 'p_abc', candidate: { candidate: candidateLine, sdpMid: null, sdpMLineIndex: null, usernameFragment: null } },
  ],
  ['candidate, line only', { to: 'p_abc', candidate: { candidate: candidateLine } }],
  ['end-of-candidates', { to: 'p_abc', candidate: { candidate: '' } }],
  ['end-of-candidates with mid', { to: 'p_abc', candidate: { candidate: '', sdpMid: '1', sdpMLineIndex: 1 } }],
  ['keys in another order', { candidate: { sdpMLineIndex: 3, candidate: candidateLine }, to: 'p_abc' }],
  ['longest to', { to: 'p'.repeat(Limits.idLength), candidate: { candidate: '' } }],
  ['largest sdp', { to: 'p_abc', description: { type: 'offer', sdp: 'x'.repeat(Limits.sdpBytes) } }],
  ['longest candidate', { to: 'p_abc', candidate: { candidate: 'c'.repeat(Limits.candidateLength) } }],
  ['largest sdpMLineIndex', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: 1024 } }],
  ['longest sdpMid and ufrag', { to: 'p_abc', candidate: { candidate: '', sdpMid: 'm'.repeat(64), usernameFragment: 'u'.repeat(256) } }],
];

/** Payloads zod refuses (the quick check must not take them) or that only zod should judge. */
const others: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['null', null],
  ['string', 'hello'],
  ['number', 42],
  ['array', [{ to: 'p_abc', candidate: { candidate: '' } }]],
  ['empty object', {}],
  ['missing to', { candidate: { candidate: '' } }],
  ['empty to', { to: '', candidate: { candidate: '' } }],
  ['to too long', { to: 'p'.repeat(Limits.idLength + 1), candidate: { candidate: '' } }],
  ['to a number', { to: 7, candidate: { candidate: '' } }],
  ['to an operator', { to: { $ne: null }, candidate: { candidate: '' } }],
  ['neither', { to: 'p_abc' }],
  ['both', { to: 'p_abc', candidate: { candidate: '' }, description: { type: 'offer', sdp } }],
  ['extra key', { to: 'p_abc', candidate: { candidate: '' }, evil: true }],
  ['extra key instead of the second', { to: 'p_abc', evil: { candidate: '' } }],
  ['__proto__ key', JSON.parse('{"to":"p_abc","__proto__":{"candidate":""}}')],
  ['__proto__ in candidate', JSON.parse('{"to":"p_abc","candidate":{"candidate":"","__proto__":{"x":1}}}')],
  ['candidate undefined, description present', { to: 'p_abc', candidate: undefined, description: { type: 'offer', sdp } }],
  ['description undefined, candidate present', { to: 'p_abc', description: undefined, candidate: { candidate: '' } }],
  ['candidate undefined', { to: 'p_abc', candidate: undefined }],
  ['candidate null', { to: 'p_abc', candidate: null }],
  ['candidate a string', { to: 'p_abc', candidate: candidateLine }],
  ['candidate an array', { to: 'p_abc', candidate: [candidateLine] }],
  ['candidate without its line', { to: 'p_abc', candidate: { sdpMid: '0' } }],
  ['candidate line a number', { to: 'p_abc', candidate: { candidate: 1 } }],
  ['candidate line null', { to: 'p_abc', candidate: { candidate: null } }],
  ['candidate line too long', { to: 'p_abc', candidate: { candidate: 'c'.repeat(Limits.candidateLength + 1) } }],
  ['candidate extra key', { to: 'p_abc', candidate: { candidate: '', foo: 1 } }],
  ['sdpMid a number', { to: 'p_abc', candidate: { candidate: '', sdpMid: 0 } }],
  ['sdpMid too long', { to: 'p_abc', candidate: { candidate: '', sdpMid: 'm'.repeat(65) } }],
  ['sdpMid undefined', { to: 'p_abc', candidate: { candidate: '', sdpMid: undefined } }],
  ['sdpMLineIndex a string', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: '0' } }],
  ['sdpMLineIndex negative', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: -1 } }],
  ['sdpMLineIndex fractional', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: 0.5 } }],
  ['sdpMLineIndex too large', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: 1025 } }],
  ['sdpMLineIndex huge', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: 2 ** 60 } }],
  ['sdpMLineIndex NaN', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: Number.NaN } }],
  ['sdpMLineIndex Infinity', { to: 'p_abc', candidate: { candidate: '', sdpMLineIndex: Number.POSITIVE_INFINITY } }],
  ['usernameFragment a boolean', { to: 'p_abc', candidate: { candidate: '', usernameFragment: true } }],
  ['usernameFragment too long', { to: 'p_abc', candidate: { candidate: '', usernameFragment: 'u'.repeat(257) } }],
  ['description null', { to: 'p_abc', description: null }],
  ['description a string', { to: 'p_abc', description: sdp }],
  ['description unknown type', { to: 'p_abc', description: { type: 'hack', sdp } }],
  ['description type a number', { to: 'p_abc', description: { type: 1, sdp } }],
  ['description type toString', { to: 'p_abc', description: { type: 'toString', sdp } }],
  ['offer without sdp', { to: 'p_abc', description: { type: 'offer' } }],
  ['offer with empty sdp', { to: 'p_abc', description: { type: 'offer', sdp: '' } }],
  ['offer with sdp undefined', { to: 'p_abc', description: { type: 'offer', sdp: undefined } }],
  ['rollback with sdp undefined', { to: 'p_abc', description: { type: 'rollback', sdp: undefined } }],
  ['offer with sdp null', { to: 'p_abc', description: { type: 'offer', sdp: null } }],
  ['offer with sdp a number', { to: 'p_abc', description: { type: 'offer', sdp: 1 } }],
  ['oversized sdp', { to: 'p_abc', description: { type: 'offer', sdp: 'x'.repeat(Limits.sdpBytes + 1) } }],
  ['description extra key', { to: 'p_abc', description: { type: 'offer', sdp, evil: 1 } }],
  ['description without type', { to: 'p_abc', description: { sdp } }],
  ['class instance payload', Object.assign(new (class Signal {})(), { to: 'p_abc', candidate: { candidate: '' } })],
  ['null-prototype payload', Object.assign(Object.create(null), { to: 'p_abc', candidate: { candidate: '' } })],
  ['Date as candidate', { to: 'p_abc', candidate: new Date(0) }],
];

/** Every case through both checks: quick acceptance implies zod acceptance with the payload unchanged. */
function agree(payload: unknown): { quick: boolean; zod: boolean } {
  const quick = isPlainSignal(payload);
  const parsed = signalPayload.safeParse(payload);
  if (quick) {
    expect(parsed.success, 'zod refuses a payload the quick check accepted').to.equal(true);
    expect(parsed.data).to.deep.equal(payload);
  }
  return { quick, zod: parsed.success };
}

/** Small changes of the everyday payloads: each field dropped, doubled in length, or swapped for another type. */
function* mutations(value: unknown): Generator<unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const record = value as Record<string, unknown>;
  const replacements: unknown[] = [undefined, null, '', 'x', 0, -1, 1.5, 1025, true, [], {}, { candidate: '' }, 'offer', 'rollback'];
  for (const key of Object.keys(record)) {
    const { [key]: dropped, ...rest } = record;
    yield rest;
    for (const replacement of replacements) yield { ...record, [key]: replacement };
    if (typeof dropped === 'string') yield { ...record, [key]: dropped + dropped + 'x'.repeat(1100) };
    for (const inner of mutations(dropped)) yield { ...record, [key]: inner };
  }
  yield { ...record, extra: 1 };
}

describe('signal quick check (ahead of zod)', () => {
  for (const [title, payload] of everyday) {
    it(`takes ${title}, as zod does`, () => {
      expect(agree(payload)).to.deep.equal({ quick: true, zod: true });
    });
  }

  for (const [title, payload] of others) {
    it(`leaves ${title} to zod`, () => {
      expect(agree(payload).quick).to.equal(false);
    });
  }

  it('never takes a payload zod refuses, over mutations of every everyday payload', () => {
    let cases = 0;
    let quick = 0;
    let zodOnly = 0;
    for (const [, payload] of everyday) {
      for (const mutated of mutations(payload)) {
        const result = agree(mutated);
        cases++;
        if (result.quick) quick++;
        else if (result.zod) zodOnly++;
      }
    }
    // Some mutations stay valid (and are taken), many do not; a few valid ones are left to zod.
    expect(cases).to.be.greaterThan(500);
    expect(quick).to.be.greaterThan(50);
    console.log(
      `      ${cases} mutated payloads: ${quick} taken by the quick check, ${zodOnly} valid but left to zod, ${cases - quick - zodOnly} refused by both`,
    );
  });
});

import { expect } from 'chai';
import {
  isSyncKind,
  MAX_MESSAGE_BYTES,
  unpack,
  type DataPath,
  type DataPayload,
  type Envelope,
  type WireMessage,
} from '../../client-sdk/src/DataEnvelope.js';
import {
  HIGH_WATER_BYTES,
  LOW_WATER_BYTES,
  ReliableDelivery,
  SYNC_CHECK_MS,
  SYNC_RETRY_MS,
  type DataRoute,
  type DataSender,
} from '../../client-sdk/src/ReliableDelivery.js';
import { SwitchboardError } from '../../client-sdk/src/errors.js';
import { FakeClock } from './fakeClock.js';

/** One message on the fake network. */
interface Wire {
  from: Peer;
  to: Peer;
  path: DataPath;
  text: WireMessage;
  reliable: boolean;
}

interface Delivered {
  from: string;
  payload: DataPayload;
  seq: number;
  reliable: boolean;
  topic?: string;
}

/** A participant on the fake network: its delivery, and what reached its app. */
class Peer implements DataSender {
  readonly delivered: Delivered[] = [];
  readonly delivery: ReliableDelivery<DataSender>;
  /** Peer ids whose mesh link no longer carries our data (our bye went). */
  readonly byeSentTo = new Set<string>();

  constructor(
    private readonly network: Network,
    readonly id: string,
    readonly identity: string,
    epoch: string,
  ) {
    let nonces = 0;
    this.delivery = new ReliableDelivery<DataSender>(
      {
        selfIdentity: () => this.identity,
        peerIdOf: (identity) => network.byIdentity(identity)?.id ?? null,
        canPublishData: () => true,
        sfu: () => (network.sfuOpen ? this.route('sfu', null) : null),
        meshPeerIds: () => (network.meshOpen ? network.others(this).map((peer) => peer.id) : []),
        mesh: (peerId, purpose) => {
          if (!network.meshOpen || !network.byId(peerId)) return null;
          return purpose === 'control' || !this.byeSentTo.has(peerId) ? this.route('mesh', peerId) : null;
        },
      },
      (sender, payload, info) =>
        this.delivered.push({
          from: sender.identity,
          payload,
          seq: info.seq,
          reliable: info.reliable,
          ...(info.topic ? { topic: info.topic } : {}),
        }),
      { clock: network.clock, epoch, nonce: () => `${identity}-${++nonces}` },
    );
  }

  /** The numbers (`{n}` payloads) delivered from one sender, in delivery order. */
  numbersFrom(identity: string): number[] {
    return this.delivered.filter((d) => d.from === identity).map((d) => (d.payload as { n: number }).n);
  }

  /** A path out: the mesh link to one peer, or the SFU to everyone else. */
  private route(path: DataPath, peerId: string | null): DataRoute {
    return {
      send: (text, reliable) => {
        const targets = peerId === null ? this.network.others(this) : [this.network.byId(peerId) as Peer];
        for (const to of targets) this.network.transmit({ from: this, to, path, text, reliable });
      },
    };
  }
}

/**
 * Peers joined by a mesh link each and an SFU. Messages wait in flight until `flush`; `filter`
 * drops, holds back or duplicates them on the way.
 */
class Network {
  readonly clock = new FakeClock();
  readonly peers: Peer[] = [];
  meshOpen = true;
  sfuOpen = false;
  /** Everything sent, in order (dropped messages included). */
  readonly log: Wire[] = [];
  private inFlight: Wire[] = [];
  /** What happens to a message on the way: 'drop', 'hold' (kept in flight until released), or 'pass'. */
  filter: (wire: Wire) => 'drop' | 'hold' | 'pass' = () => 'pass';
  private held: Wire[] = [];

  join(id: string, identity: string, epoch: string): Peer {
    const peer = new Peer(this, id, identity, epoch);
    this.peers.push(peer);
    return peer;
  }

  leave(peer: Peer): void {
    this.peers.splice(this.peers.indexOf(peer), 1);
  }

  byId(id: string): Peer | undefined {
    return this.peers.find((peer) => peer.id === id);
  }

  byIdentity(identity: string): Peer | undefined {
    return this.peers.find((peer) => peer.identity === identity);
  }

  others(self: Peer): Peer[] {
    return this.peers.filter((peer) => peer !== self);
  }

  transmit(wire: Wire): void {
    this.log.push(wire);
    const fate = this.filter(wire);
    if (fate === 'pass') this.inFlight.push(wire);
    else if (fate === 'hold') this.held.push(wire);
  }

  /** Delivers what is in flight (and what that makes the receivers send), in order. */
  flush(): void {
    while (this.inFlight.length > 0) this.receive(this.inFlight.shift() as Wire);
  }

  /** Delivers the messages held back so far, then flushes. */
  release(): void {
    this.inFlight.push(...this.held.splice(0));
    this.flush();
  }

  /** Hands a copy of a message to its receiver once more, as if a path delivered it again. */
  redeliver(wire: Wire): void {
    this.receive(wire);
    this.flush();
  }

  /** The envelopes of everything sent so far, with who sent them and where. */
  envelopes(): Array<{ wire: Wire; envelope: Envelope }> {
    return this.log.flatMap((wire) => unpack(wire.text).map((envelope) => ({ wire, envelope })));
  }

  /** The sync requests sent so far. */
  syncRequests(): Array<{ wire: Wire; envelope: Envelope }> {
    return this.envelopes().filter(({ envelope }) => envelope.c === 'sync');
  }

  private receive(wire: Wire): void {
    if (!this.peers.includes(wire.to)) return;
    const sender: DataSender = { id: wire.from.id, identity: wire.from.identity };
    for (const envelope of unpack(wire.text))
      if (!envelope.c || isSyncKind(envelope.c)) wire.to.delivery.receive(sender, envelope, wire.reliable);
  }
}

/** The data envelope of a wire message, when it is one. */
const dataOf = (wire: Wire): Envelope | undefined =>
  unpack(wire.text).find((envelope) => envelope.c === undefined && typeof envelope.q === 'number');

describe('ReliableDelivery (fake paths, fake clock)', () => {
  let network: Network;
  let alice: Peer;
  let bob: Peer;

  beforeEach(() => {
    network = new Network();
    alice = network.join('a1', 'alice', 'epoch-a');
    bob = network.join('b1', 'bob', 'epoch-b');
    for (const peer of network.peers) peer.delivery.start();
  });

  afterEach(() => {
    for (const peer of network.peers) peer.delivery.stop();
  });

  it('loss: a hole older than the sync check makes the receiver ask for it, and the resend fills it in order', async () => {
    let dropped = false;
    network.filter = (wire) => {
      if (!dropped && wire.from === alice && dataOf(wire)?.q === 3) {
        dropped = true;
        return 'drop';
      }
      return 'pass';
    };
    for (let n = 1; n <= 5; n++) alice.delivery.send({ n }, true);
    network.flush();
    expect(bob.numbersFrom('alice'), 'held back behind the hole').to.deep.equal([1, 2]);

    await network.clock.advance(SYNC_CHECK_MS - 1);
    expect(network.syncRequests(), 'no request before the hole is SYNC_CHECK_MS old').to.have.length(0);

    await network.clock.advance(1);
    const requests = network.syncRequests();
    expect(requests).to.have.length(1);
    const [{ wire, envelope }] = requests as [{ wire: Wire; envelope: Envelope }];
    expect({ from: wire.from.identity, to: wire.to.identity, path: wire.path }).to.deep.equal({ from: 'bob', to: 'alice', path: 'mesh' });
    expect(envelope).to.include({ s: 'alice', e: 'epoch-a', q: 3, u: 4 });

    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3, 4, 5]);
    expect(bob.delivered.map((d) => d.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    // The answer resent the hole only, then said it was done.
    const answer = network.log.filter((w) => w.from === alice && w.to === bob).at(-1) as Wire;
    expect(unpack(answer.text).map((e) => e.c ?? e.q)).to.deep.equal([3, 'synced']);

    await network.clock.advance(5 * SYNC_RETRY_MS);
    expect(network.syncRequests(), 'answered: not asked again').to.have.length(1);
  });

  it('loss: an unanswered request is repeated every SYNC_RETRY_MS with the same nonce until answered', async () => {
    let requestsDropped = 0;
    let lost = false;
    network.filter = (wire) => {
      if (!lost && wire.from === alice && dataOf(wire)?.q === 2) {
        lost = true;
        return 'drop';
      }
      if (wire.from === bob && unpack(wire.text)[0]?.c === 'sync' && requestsDropped < 2) {
        requestsDropped++;
        return 'drop';
      }
      return 'pass';
    };
    for (let n = 1; n <= 3; n++) alice.delivery.send({ n }, true);
    network.flush();
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    expect(network.syncRequests()).to.have.length(1);
    await network.clock.advance(SYNC_RETRY_MS - SYNC_CHECK_MS);
    expect(network.syncRequests(), 'not repeated before SYNC_RETRY_MS').to.have.length(1);
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    expect(network.syncRequests()).to.have.length(2);
    expect(bob.numbersFrom('alice')).to.deep.equal([1]);
    await network.clock.advance(SYNC_RETRY_MS);
    network.flush();
    const nonces = network.syncRequests().map(({ envelope }) => envelope.n);
    expect(nonces).to.have.length(3);
    expect(new Set(nonces).size, 'one request, asked three times').to.equal(1);
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3]);
  });

  it('duplicates: every message comes over the mesh and the SFU, and is resent once more; each is delivered once', () => {
    network.sfuOpen = true;
    for (let n = 1; n <= 4; n++) alice.delivery.send({ n }, true);
    alice.delivery.send({ n: 100 }, false);
    const copies = network.log.filter((wire) => wire.to === bob);
    expect(copies.map((wire) => wire.path)).to.include.members(['mesh', 'sfu']);
    expect(copies, 'two copies of each of five messages').to.have.length(10);
    network.flush();
    for (const wire of copies) network.redeliver(wire);
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3, 4, 100]);
    expect(bob.delivered.map((d) => d.reliable)).to.deep.equal([true, true, true, true, false]);
  });

  it('reorder: a message that overtakes an earlier one waits for it, and no sync is asked when the earlier one comes in time', async () => {
    network.filter = (wire) => (dataOf(wire)?.q === 2 ? 'hold' : 'pass');
    for (let n = 1; n <= 4; n++) alice.delivery.send({ n }, true);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1]);
    await network.clock.advance(SYNC_CHECK_MS / 2);
    network.filter = () => 'pass';
    network.release();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3, 4]);
    await network.clock.advance(4 * SYNC_CHECK_MS);
    expect(network.syncRequests()).to.have.length(0);
  });

  it('targets: a message for others is not delivered, yet holds its place in the sequence', () => {
    const carol = network.join('c1', 'carol', 'epoch-c');
    alice.delivery.send({ n: 1 }, true, ['carol']);
    alice.delivery.send({ n: 2 }, true);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([2]);
    expect(carol.numbersFrom('alice')).to.deep.equal([1, 2]);
  });

  it('sender epoch change: a new instance of the same identity starts again from 1, its holes are asked of the new epoch, and a request naming another epoch goes unanswered', async () => {
    for (let n = 1; n <= 3; n++) alice.delivery.send({ n }, true);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3]);

    // Alice comes back as a new Room: a new connection id and a new epoch; bob hears she joined.
    alice.delivery.stop();
    network.leave(alice);
    const alice2 = network.join('a2', 'alice', 'epoch-a2');
    alice2.delivery.start();
    bob.delivery.joinedAfter('alice');
    // Her first message is lost on the way: bob is owed it from 1.
    network.filter = (wire) => (wire.from === alice2 && dataOf(wire)?.q === 1 && dataOf(wire)?.e === 'epoch-a2' ? 'drop' : 'pass');
    alice2.delivery.send({ n: 10 }, true);
    alice2.delivery.send({ n: 11 }, true);
    network.flush();
    expect(bob.numbersFrom('alice'), 'the new epoch is held back behind its first message').to.deep.equal([1, 2, 3]);

    await network.clock.advance(SYNC_CHECK_MS);
    const request = network.syncRequests().at(-1);
    expect(request?.wire.to.id).to.equal('a2');
    expect(request?.envelope).to.include({ s: 'alice', e: 'epoch-a2', q: 1, u: 2 });
    network.filter = () => 'pass';
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3, 10, 11]);
    expect(bob.delivered.map((d) => d.seq)).to.deep.equal([1, 2, 3, 1, 2]);

    // A request for the old epoch is not for this instance (answers to one asker are SYNC_CHECK_MS apart).
    await network.clock.advance(SYNC_CHECK_MS);
    const sentBefore = network.log.length;
    alice2.delivery.receive({ id: bob.id, identity: bob.identity }, { c: 'sync', s: 'alice', e: 'epoch-a', q: 1, n: 'old' }, true);
    expect(network.log.length, 'no answer to a request naming another epoch').to.equal(sentBefore);
    alice2.delivery.receive({ id: bob.id, identity: bob.identity }, { c: 'sync', s: 'alice', e: 'epoch-a2', q: 1, n: 'new' }, true);
    expect(network.log.length, 'an answer to one naming its own').to.be.greaterThan(sentBefore);
  });

  it('a link that got our bye carries no more data, but still carries sync requests to its peer', async () => {
    network.sfuOpen = true;
    bob.delivery.joinedAfter('alice');
    bob.byeSentTo.add(alice.id);
    network.filter = (wire) => (wire.path === 'sfu' && wire.from === alice && dataOf(wire)?.q === 1 ? 'drop' : 'pass');
    bob.delivery.send({ n: 1 }, true);
    expect(network.log.filter((wire) => wire.from === bob).map((wire) => wire.path)).to.deep.equal(['sfu']);
    alice.byeSentTo.add(bob.id);
    alice.delivery.send({ n: 1 }, true);
    alice.delivery.send({ n: 2 }, true);
    network.flush();
    await network.clock.advance(SYNC_CHECK_MS);
    expect(
      network
        .syncRequests()
        .map(({ wire }) => wire.path)
        .sort(),
    ).to.deep.equal(['mesh', 'sfu']);
  });

  it('tail loss: the last message lost with nothing after it is announced once the sender is idle, asked for and delivered', async () => {
    network.filter = (wire) => (wire.from === alice && dataOf(wire)?.q === 3 ? 'drop' : 'pass');
    for (let n = 1; n <= 3; n++) alice.delivery.send({ n }, true);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2]);
    network.filter = () => 'pass';

    await network.clock.advance(SYNC_CHECK_MS);
    const tails = network.envelopes().filter(({ envelope }) => envelope.c === 'tail');
    expect(tails.map(({ wire, envelope }) => ({ to: wire.to.identity, q: envelope.q, e: envelope.e }))).to.deep.equal([
      { to: 'bob', q: 3, e: 'epoch-a' },
    ]);
    network.flush();
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    expect(network.syncRequests().map(({ envelope }) => ({ q: envelope.q, u: envelope.u }))).to.deep.equal([{ q: 3, u: 4 }]);
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2, 3]);

    await network.clock.advance(10 * SYNC_RETRY_MS);
    network.flush();
    expect(
      network.envelopes().filter(({ envelope }) => envelope.c === 'tail'),
      'announced once per path',
    ).to.have.length(1);
    expect(network.syncRequests(), 'nothing more to ask').to.have.length(1);
  });

  it('tail loss: a message sent while the link was down reaches the peer once the link is up again, with nothing sent after it', async () => {
    alice.delivery.send({ n: 1 }, true);
    network.flush();
    network.meshOpen = false;
    alice.delivery.send({ n: 2 }, true);
    await network.clock.advance(4 * SYNC_CHECK_MS);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1]);
    network.meshOpen = true;
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    expect(bob.numbersFrom('alice')).to.deep.equal([1, 2]);
  });
});

/** `length` bytes that differ from message to message (n) and along the message. */
const bytesOf = (n: number, length = 1024): Uint8Array => Uint8Array.from({ length }, (_, i) => (n * 31 + i * 7) & 0xff);

describe('ReliableDelivery with binary payloads, topics and backpressure', () => {
  let network: Network;
  let alice: Peer;
  let bob: Peer;

  beforeEach(() => {
    network = new Network();
    alice = network.join('a1', 'alice', 'epoch-a');
    bob = network.join('b1', 'bob', 'epoch-b');
    for (const peer of network.peers) peer.delivery.start();
  });

  afterEach(() => {
    for (const peer of network.peers) peer.delivery.stop();
  });

  it('a binary payload travels as a binary frame (no base64), arrives byte-identical, with its topic; text and JSON alongside, in order', () => {
    const bytes = bytesOf(1, 64 * 1024);
    void alice.delivery.send('hello', true, undefined, 'chat');
    void alice.delivery.send(bytes, true, undefined, 'file');
    void alice.delivery.send({ n: 3 }, true);
    network.flush();
    const frame = network.log.find((wire) => typeof wire.text !== 'string')?.text as Uint8Array;
    expect(frame, 'sent as binary').to.be.instanceOf(Uint8Array);
    expect(frame.byteLength, 'the bytes plus a small header').to.be.within(bytes.byteLength, bytes.byteLength + 64);
    expect(bob.delivered.map(({ payload, topic }) => [payload, topic])).to.deep.equal([
      ['hello', 'chat'],
      [bytes, 'file'],
      [{ n: 3 }, undefined],
    ]);
    expect(bob.delivered[1]?.payload).to.be.instanceOf(Uint8Array);
  });

  it('the app changing its buffer after send() changes nothing on the way', () => {
    const bytes = bytesOf(2, 100);
    void alice.delivery.send(bytes, true);
    bytes.fill(0);
    network.flush();
    expect(bob.delivered[0]?.payload).to.deep.equal(bytesOf(2, 100));
  });

  it('promotion with binary payloads: mesh, both paths, then the SFU alone with losses there; every message once, in order, byte-identical', async () => {
    const sent = (n: number) => bytesOf(n, 10_000);
    for (let n = 1; n <= 3; n++) void alice.delivery.send(sent(n), true);
    network.sfuOpen = true;
    for (let n = 4; n <= 6; n++) void alice.delivery.send(sent(n), true);
    // Alice's bye: from here her data goes over the SFU only, where 7 and 8 get lost.
    alice.byeSentTo.add(bob.id);
    let dropped = 0;
    network.filter = (wire) => {
      const q = dataOf(wire)?.q;
      if (wire.from === alice && wire.path === 'sfu' && (q === 7 || q === 8) && dropped < 2) {
        dropped++;
        return 'drop';
      }
      return 'pass';
    };
    for (let n = 7; n <= 10; n++) void alice.delivery.send(sent(n), true);
    network.flush();
    expect(
      bob.delivered.map((d) => d.seq),
      'held back behind the hole',
    ).to.deep.equal([1, 2, 3, 4, 5, 6]);
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    await network.clock.advance(SYNC_CHECK_MS);
    network.flush();
    expect(dropped).to.equal(2);
    expect(bob.delivered.map((d) => d.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(bob.delivered.map((d) => d.payload)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(sent));
    // The resend of 7 and 8 (binary) went as one binary batch with the synced answer.
    const answer = network.log.find((wire) => wire.from === alice && unpack(wire.text).some((e) => e.c === 'synced')) as Wire;
    expect(answer.text).to.be.instanceOf(Uint8Array);
    expect(unpack(answer.text).map((e) => e.c ?? e.q)).to.deep.equal([7, 8, 'synced']);
  });

  it('a receiver behind a full SFU queue finds its hole late: the sender still holds the lost message when it keeps twice the queue (sfu info sctp_send_buffer_bytes)', async () => {
    // On the SFU alone. Bob loses message 2 (his queue at the SFU was full); the queue ahead of
    // him holds back everything after it while Alice sends on (12.8 MB), as a slow receiver
    // whose queue drains sees it.
    const run = async (queueBytes: number | null): Promise<number[]> => {
      const net = new Network();
      const [a, b] = [net.join('a1', 'alice', 'epoch-a'), net.join('b1', 'bob', 'epoch-b')];
      for (const peer of net.peers) peer.delivery.start();
      net.meshOpen = false;
      net.sfuOpen = true;
      if (queueBytes !== null) a.delivery.sfuQueuesUpTo(queueBytes);
      let dropped2 = false;
      net.filter = (wire) => {
        const q = dataOf(wire)?.q;
        if (wire.from !== a || q === undefined || q === 1 || unpack(wire.text).some((e) => e.c === 'synced')) return 'pass';
        return q === 2 && !dropped2 ? ((dropped2 = true), 'drop') : 'hold';
      };
      for (let n = 1; n <= 200; n++) void a.delivery.send(bytesOf(n, 64 * 1024), true);
      net.flush();
      net.filter = () => 'pass';
      net.release();
      for (let i = 0; i < 4; i++) {
        await net.clock.advance(SYNC_CHECK_MS);
        net.flush();
      }
      for (const peer of net.peers) peer.delivery.stop();
      return b.delivered.map((d) => d.seq);
    };
    const all = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(await run(8 * 1024 * 1024), 'history of twice the 8 MiB queue: every message, in order').to.deep.equal(all);
    expect(await run(null), 'the default 4 MiB history: message 2 was gone when Bob asked').to.deep.equal(all.filter((n) => n !== 2));
  });

  it('a message over MAX_MESSAGE_BYTES on the wire is refused with payload_too_large before anything is sent; one that fits goes', () => {
    const tooLarge = new Uint8Array(MAX_MESSAGE_BYTES);
    expect(() => alice.delivery.send(tooLarge, true))
      .to.throw(SwitchboardError)
      .with.property('code', 'payload_too_large');
    expect(() => alice.delivery.send('x'.repeat(MAX_MESSAGE_BYTES), true)).to.throw(SwitchboardError, /bytes on the wire/);
    expect(() => alice.delivery.send('é'.repeat(MAX_MESSAGE_BYTES / 2), true), 'counted in UTF-8 bytes').to.throw(SwitchboardError);
    expect(() => alice.delivery.send('x', true, undefined, 't'.repeat(200)))
      .to.throw(SwitchboardError)
      .with.property('code', 'payload_invalid');
    expect(network.log, 'nothing sent').to.have.length(0);
    void alice.delivery.send(new Uint8Array(MAX_MESSAGE_BYTES - 1024), true);
    network.flush();
    expect(
      bob.delivered.map((d) => d.seq),
      'the refused ones took no number',
    ).to.deep.equal([1]);
  });

  it('backpressure: reliable sends wait (in order) while a channel is above the high-water mark; lossy ones are dropped there', async () => {
    const clock = network.clock;
    let buffered = 0;
    let lossyBuffered = 0;
    let drain: (() => void) | null = null;
    const written: WireMessage[] = [];
    const link: DataRoute = {
      send: (message) => {
        written.push(message);
        buffered += typeof message === 'string' ? message.length : message.byteLength;
      },
      buffered: (reliable) => (reliable ? buffered : lossyBuffered),
      drained: () => new Promise<void>((resolve) => (drain = resolve)),
    };
    const delivery = new ReliableDelivery<DataSender>(
      {
        selfIdentity: () => 'carol',
        peerIdOf: () => null,
        canPublishData: () => true,
        sfu: () => null,
        meshPeerIds: () => ['a1'],
        mesh: () => link,
      },
      () => undefined,
      { clock },
    );
    const chunk = bytesOf(0, 200 * 1024);
    const settled: number[] = [];
    const sends = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => delivery.send(chunk, true).then(() => settled.push(n)));
    await clock.advance(0);
    // Six go at once (the sixth finds 1000 KiB buffered: not above 1 MiB); the rest wait.
    expect(written).to.have.length(6);
    expect(settled).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(delivery.bufferedBytes(), 'queued and buffered').to.be.within(8 * chunk.byteLength, 8 * chunk.byteLength + 1024);
    await clock.advance(500);
    expect(written, 'still waiting').to.have.length(6);
    lossyBuffered = 2 * HIGH_WATER_BYTES;
    void delivery.send('lossy', false);
    expect(written, 'a lossy send is dropped on a full channel').to.have.length(6);
    // The channel drains: the last two go.
    buffered = LOW_WATER_BYTES;
    (drain as (() => void) | null)?.();
    await Promise.all(sends);
    expect(settled).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(written.map((m) => unpack(m)[0]?.q)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    delivery.stop();
  });

  it('a send still waiting when delivery stops (the room ended) rejects with not_connected', async () => {
    const delivery = new ReliableDelivery<DataSender>(
      {
        selfIdentity: () => 'carol',
        peerIdOf: () => null,
        canPublishData: () => true,
        sfu: () => null,
        meshPeerIds: () => ['a1'],
        mesh: () => ({ send: () => undefined, buffered: () => 2 * HIGH_WATER_BYTES, drained: () => new Promise<void>(() => undefined) }),
      },
      () => undefined,
      { clock: network.clock },
    );
    const waiting = delivery.send('x', true);
    delivery.stop();
    const error = await waiting.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(SwitchboardError).with.property('code', 'not_connected');
  });
});

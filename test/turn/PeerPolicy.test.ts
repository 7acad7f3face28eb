import { expect } from 'chai';
import { canonicalIp, classifyAddress, embeddedIpv4, parseIp, PeerPolicy } from '../../turn/PeerPolicy.js';
import { DENIED_SAMPLES, MAPPED_SAMPLES } from './support.js';

const PUBLIC_SAMPLES = ['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '169.253.0.1', '223.255.255.255', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808'];

describe('PeerPolicy', () => {
  describe('address classes under the default policy', () => {
    const policy = new PeerPolicy();

    for (const { address, cls } of DENIED_SAMPLES) {
      it(`denies ${address} (${cls})`, () => {
        expect(classifyAddress(address)).to.equal(cls);
        expect(policy.check(address)).to.deep.equal({ allowed: false, reason: cls });
        expect(policy.check(address, 3478)).to.deep.equal({ allowed: false, reason: cls });
      });
    }

    for (const { address, cls } of MAPPED_SAMPLES) {
      it(`denies the IPv4-carrying form ${address} (${cls})`, () => {
        expect(policy.check(address)).to.deep.equal({ allowed: false, reason: cls });
      });
    }

    for (const address of PUBLIC_SAMPLES) {
      it(`allows the public address ${address}`, () => {
        expect(classifyAddress(address)).to.equal(null);
        expect(policy.check(address, 5000)).to.deep.equal({ allowed: true, relayPortsOnly: false });
      });
    }

    it('refuses what is not an IP address', () => {
      for (const text of ['', 'localhost', '1.2.3', '256.1.1.1', '::g', '1.2.3.4/32', 'fe80::1%eth0x y']) {
        expect(policy.check(text)).to.deep.equal({ allowed: false, reason: 'invalid' });
      }
    });
  });

  describe('allow-list (TURN_ALLOWED_PEER_CIDRS)', () => {
    for (const { address, cls, cidr } of DENIED_SAMPLES) {
      it(`allows ${address} (${cls}) once ${cidr} is allow-listed, and nothing else of the class`, () => {
        const policy = new PeerPolicy({ allowedCidrs: [cidr] });
        expect(policy.check(address)).to.deep.equal({ allowed: true, relayPortsOnly: false });
        const other = DENIED_SAMPLES.find((s) => s.cidr !== cidr && s.address.includes(':') === address.includes(':'));
        if (other) expect(policy.check(other.address).allowed).to.equal(false);
      });
    }

    it('allows the IPv4-mapped form of an allow-listed IPv4 range', () => {
      const policy = new PeerPolicy({ allowedCidrs: ['127.0.0.0/8'] });
      expect(policy.check('::ffff:127.0.0.1').allowed).to.equal(true);
      expect(policy.check('::ffff:10.0.0.1').allowed).to.equal(false);
    });

    it('matches prefixes that do not end on a byte boundary', () => {
      const policy = new PeerPolicy({ allowedCidrs: ['100.64.0.0/10', '172.16.0.0/12'] });
      expect(policy.check('100.127.0.1').allowed).to.equal(true);
      expect(policy.check('172.31.0.1').allowed).to.equal(true);
      expect(policy.check('100.128.0.1').allowed).to.equal(true); // public anyway
      expect(policy.check('10.0.0.1').allowed).to.equal(false);
    });

    it('rejects an invalid CIDR at construction', () => {
      expect(() => new PeerPolicy({ allowedCidrs: ['10.0.0.0/33'] })).to.throw(/invalid CIDR/);
      expect(() => new PeerPolicy({ allowedCidrs: ['nope'] })).to.throw(/invalid CIDR/);
    });
  });

  describe("the server's own addresses", () => {
    const policy = new PeerPolicy({
      serverAddresses: ['198.51.100.10', '2001:db8::10'],
      relayAddresses: ['203.0.113.5'],
      relayPorts: [49152, 65535],
      serverPorts: [50000],
    });

    it('denies them, in every form', () => {
      expect(policy.check('198.51.100.10')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('198.51.100.10', 80)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('::ffff:198.51.100.10')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('::ffff:c633:640a')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('2001:0db8:0:0:0:0:0:0010')).to.deep.equal({ allowed: false, reason: 'server' });
    });

    it('keeps relay addresses reachable on relay ports only (relay to relay), never on the TURN port', () => {
      expect(policy.check('203.0.113.5')).to.deep.equal({ allowed: true, relayPortsOnly: true });
      expect(policy.check('203.0.113.5', 49152)).to.deep.equal({ allowed: true, relayPortsOnly: true });
      expect(policy.check('203.0.113.5', 22)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('203.0.113.5', 50000)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.isRelayPort(65535)).to.equal(true);
      expect(policy.isRelayPort(49151)).to.equal(false);
    });

    it('lets an allow-list open them explicitly', () => {
      const open = new PeerPolicy({ serverAddresses: ['198.51.100.10'], allowedCidrs: ['198.51.100.0/24'] });
      expect(open.check('198.51.100.10', 80)).to.deep.equal({ allowed: true, relayPortsOnly: false });
    });
  });

  describe('address helpers', () => {
    it('parses IPv4, IPv6 and mixed notation into bytes', () => {
      expect([...(parseIp('192.0.2.1') as Uint8Array)]).to.deep.equal([192, 0, 2, 1]);
      expect(Buffer.from(parseIp('2001:db8::1') as Uint8Array).toString('hex')).to.equal('20010db8000000000000000000000001');
      expect(Buffer.from(parseIp('::ffff:1.2.3.4') as Uint8Array).toString('hex')).to.equal('00000000000000000000ffff01020304');
      expect(Buffer.from(parseIp('::') as Uint8Array).toString('hex')).to.equal('0'.repeat(32));
      expect(parseIp('1.2.3.4.5')).to.equal(null);
    });

    it('canonicalizes like Node reports addresses', () => {
      expect(canonicalIp('2001:0db8:0:0:0:0:0:1')).to.equal('2001:db8::1');
      expect(canonicalIp('0:0:0:0:0:ffff:7f00:1')).to.equal('::ffff:127.0.0.1');
      expect(canonicalIp('127.0.0.1')).to.equal('127.0.0.1');
      expect(canonicalIp('x')).to.equal(null);
    });

    it('finds the IPv4 address inside mapped, NAT64 and 6to4 addresses, not inside :: or ::1', () => {
      expect([...(embeddedIpv4(parseIp('::ffff:10.0.0.1') as Uint8Array) as Uint8Array)]).to.deep.equal([10, 0, 0, 1]);
      expect([...(embeddedIpv4(parseIp('64:ff9b::a9fe:a9fe') as Uint8Array) as Uint8Array)]).to.deep.equal([169, 254, 169, 254]);
      expect([...(embeddedIpv4(parseIp('2002:0a00:0001::') as Uint8Array) as Uint8Array)]).to.deep.equal([10, 0, 0, 1]);
      expect(embeddedIpv4(parseIp('::1') as Uint8Array)).to.equal(null);
      expect(embeddedIpv4(parseIp('::') as Uint8Array)).to.equal(null);
      expect(embeddedIpv4(parseIp('2001:db8::1') as Uint8Array)).to.equal(null);
    });
  });
});

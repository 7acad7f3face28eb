import { expect } from 'chai';
import { AddressPolicy, canonicalIp, classifyAddress, embeddedIpv4, hostIdentity, parseIp } from '../../server/net/AddressPolicy.js';
import { ADDRESS_TABLE, DENIED_CASES, inCidr } from './addressTable.js';

describe('AddressPolicy', () => {
  describe('the shared address table under the default policy', () => {
    const policy = new AddressPolicy();
    for (const { address, verdict } of ADDRESS_TABLE) {
      it(`${verdict ? `refuses ${address} (${verdict})` : `allows ${address}`}`, () => {
        expect(classifyAddress(address)).to.equal(verdict);
        expect(policy.check(address)).to.deep.equal(verdict ? { allowed: false, reason: verdict } : { allowed: true });
      });
    }

    it('refuses what is not an IP address', () => {
      for (const text of ['', 'localhost', '1.2.3', '256.1.1.1', '::g', '1.2.3.4/32', 'fe80::1%eth0x y', '[::1]', '2130706433', '0x7f.1']) {
        expect(policy.check(text), text).to.deep.equal({ allowed: false, reason: 'invalid' });
      }
    });

    it('classifies a zoned address by the address (getaddrinfo returns zoned link-local)', () => {
      expect(classifyAddress('fe80::1%eth0')).to.equal('link-local');
    });
  });

  describe('allow-list', () => {
    for (const { address, verdict, cidr } of DENIED_CASES) {
      it(`reopens ${address} (${verdict}) once ${cidr} is listed, and no refused address outside it`, () => {
        const policy = new AddressPolicy({ allowedCidrs: [cidr] });
        expect(policy.check(address)).to.deep.equal({ allowed: true });
        const outside = DENIED_CASES.filter((c) => !inCidr(c.address, cidr));
        expect(outside.length).to.be.greaterThan(0);
        for (const other of outside) expect(policy.check(other.address).allowed, other.address).to.equal(false);
      });
    }

    it('matches an IPv4-mapped address against its IPv4 entry, but not NAT64 or 6to4 forms', () => {
      const policy = new AddressPolicy({ allowedCidrs: ['127.0.0.0/8'] });
      expect(policy.check('::ffff:127.0.0.1')).to.deep.equal({ allowed: true });
      expect(policy.check('64:ff9b::7f00:1')).to.deep.equal({ allowed: false, reason: 'loopback' });
      expect(policy.check('2002:7f00:1::')).to.deep.equal({ allowed: false, reason: 'loopback' });
    });

    it('matches prefixes that do not end on a byte boundary', () => {
      const policy = new AddressPolicy({ allowedCidrs: ['100.64.0.0/10', '172.16.0.0/12'] });
      expect(policy.check('100.127.0.1').allowed).to.equal(true);
      expect(policy.check('172.31.0.1').allowed).to.equal(true);
      expect(policy.check('10.0.0.1').allowed).to.equal(false);
    });

    it('rejects an invalid CIDR at construction', () => {
      for (const cidr of ['10.0.0.0/33', '::/129', 'nope', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8x', 'fe80::%eth0/64']) {
        expect(() => new AddressPolicy({ allowedCidrs: [cidr] }), cidr).to.throw(TypeError, /invalid CIDR/);
      }
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

    it('canonicalizes like Node reports addresses; an IPv4-mapped address is its IPv4 address', () => {
      expect(canonicalIp('2001:0db8:0:0:0:0:0:1')).to.equal('2001:db8::1');
      expect(canonicalIp('0:0:0:0:0:ffff:7f00:1')).to.equal('::ffff:127.0.0.1');
      expect(canonicalIp('x')).to.equal(null);
      expect(hostIdentity('0:0:0:0:0:ffff:7f00:1')).to.equal('127.0.0.1');
      expect(hostIdentity('::7f00:1')).to.equal('::127.0.0.1');
      expect(hostIdentity('x')).to.equal(null);
    });

    it('finds the IPv4 address inside mapped, compatible, NAT64 and 6to4 addresses, not inside :: or ::1', () => {
      expect(embeddedIpv4('::ffff:10.0.0.1')).to.deep.equal({ ipv4: '10.0.0.1', form: 'mapped' });
      expect(embeddedIpv4('::7f00:1')).to.deep.equal({ ipv4: '127.0.0.1', form: 'compatible' });
      expect(embeddedIpv4('64:ff9b::a9fe:a9fe')).to.deep.equal({ ipv4: '169.254.169.254', form: 'nat64' });
      expect(embeddedIpv4('2002:0a00:0001::')).to.deep.equal({ ipv4: '10.0.0.1', form: '6to4' });
      for (const none of ['::1', '::', '2001:db8::1', '10.0.0.1']) expect(embeddedIpv4(none), none).to.equal(null);
    });
  });
});

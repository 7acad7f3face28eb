import { expect } from 'chai';
import { PeerPolicy } from '../../turn/PeerPolicy.js';
import { ADDRESS_TABLE, DENIED_CASES, inCidr } from '../net/addressTable.js';

describe('PeerPolicy', () => {
  describe('the shared address table (test/net/addressTable.ts) under the default policy', () => {
    const policy = new PeerPolicy();

    for (const { address, verdict } of ADDRESS_TABLE) {
      it(`${verdict ? `denies ${address} (${verdict})` : `allows ${address}`}`, () => {
        const expected = verdict ? { allowed: false, reason: verdict } : { allowed: true, relayPortsOnly: false };
        expect(policy.check(address)).to.deep.equal(expected);
        expect(policy.check(address, 3478)).to.deep.equal(expected);
      });
    }

    it('refuses what is not an IP address, and port 0', () => {
      for (const text of ['', 'localhost', '1.2.3', '256.1.1.1', '::g', '1.2.3.4/32', 'fe80::1%eth0x y']) {
        expect(policy.check(text)).to.deep.equal({ allowed: false, reason: 'invalid' });
      }
      expect(policy.check('8.8.8.8', 0)).to.deep.equal({ allowed: false, reason: 'invalid' });
    });
  });

  describe('allow-list (TURN_ALLOWED_PEER_CIDRS)', () => {
    for (const { address, verdict, cidr } of DENIED_CASES) {
      it(`allows ${address} (${verdict}) once ${cidr} is allow-listed, and no denied address outside it`, () => {
        const policy = new PeerPolicy({ allowedCidrs: [cidr] });
        expect(policy.check(address)).to.deep.equal({ allowed: true, relayPortsOnly: false });
        for (const other of DENIED_CASES.filter((c) => !inCidr(c.address, cidr)))
          expect(policy.check(other.address).allowed, other.address).to.equal(false);
      });
    }

    it('rejects an invalid CIDR at construction', () => {
      expect(() => new PeerPolicy({ allowedCidrs: ['10.0.0.0/33'] })).to.throw(/invalid CIDR/);
      expect(() => new PeerPolicy({ allowedCidrs: ['nope'] })).to.throw(/invalid CIDR/);
    });
  });

  describe("the server's own addresses", () => {
    // Public addresses: the server's own addresses are refused even outside the denied ranges.
    const policy = new PeerPolicy({
      serverAddresses: ['8.8.4.4', '2606:4700::10'],
      relayAddresses: ['1.0.0.1'],
      relayPorts: [49152, 65535],
      serverPorts: [50000],
    });

    it('denies them, in every form', () => {
      expect(policy.check('8.8.4.4')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('8.8.4.4', 80)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('::ffff:8.8.4.4')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('::ffff:808:404')).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('2606:4700:0:0:0:0:0:0010')).to.deep.equal({ allowed: false, reason: 'server' });
    });

    it('keeps relay addresses reachable on relay ports only (relay to relay), never on the TURN port', () => {
      expect(policy.check('1.0.0.1')).to.deep.equal({ allowed: true, relayPortsOnly: true });
      expect(policy.check('::ffff:1.0.0.1', 49152)).to.deep.equal({ allowed: true, relayPortsOnly: true });
      expect(policy.check('1.0.0.1', 22)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.check('1.0.0.1', 50000)).to.deep.equal({ allowed: false, reason: 'server' });
      expect(policy.isRelayPort(65535)).to.equal(true);
      expect(policy.isRelayPort(49151)).to.equal(false);
    });

    it('lets an allow-list open them explicitly', () => {
      const open = new PeerPolicy({ serverAddresses: ['8.8.4.4'], allowedCidrs: ['8.8.4.0/24'] });
      expect(open.check('8.8.4.4', 80)).to.deep.equal({ allowed: true, relayPortsOnly: false });
    });

    it('refuses a server address in a denied range by its class', () => {
      const local = new PeerPolicy({ serverAddresses: ['127.0.0.1'] });
      expect(local.check('127.0.0.1')).to.deep.equal({ allowed: false, reason: 'loopback' });
    });
  });
});

/**
 * Tests for src/wire/addr.ts: IPv4/IPv6/MAC text round trips, RFC 5952
 * canonical output, and a clear Error for every kind of bad text.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatIpv4, formatIpv6, formatMac, ipv6Copy, ipv6Equal, macCopy, macEqual, parseIpv4, parseIpv6, parseIpv6Into,
  parseMac,
} from '../../src/wire/index.ts';
import { hex, toHex } from './hex.ts';

describe('IPv4', () => {
  it('parses to u32 with the first octet on top, formats back', () => {
    assert.equal(parseIpv4('10.99.0.1'), 0x0a630001);
    assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
    assert.equal(parseIpv4('0.0.0.0'), 0);
    assert.equal(formatIpv4(0xc0a80101), '192.168.1.1');
    assert.equal(formatIpv4(parseIpv4('172.16.254.3')), '172.16.254.3');
  });

  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '01.2.3.4', '1..2.3', 'a.b.c.d', ' 1.2.3.4']) {
    it(`rejects "${bad}"`, () => assert.throws(() => parseIpv4(bad), /invalid IPv4 address/));
  }
});

describe('IPv6', () => {
  const cases: [string, string, string][] = [
    ['::', '00000000000000000000000000000000', '::'],
    ['::1', '00000000000000000000000000000001', '::1'],
    ['fd00:99::2', 'fd000099000000000000000000000002', 'fd00:99::2'],
    ['FE80::FF:FE00:A', 'fe80000000000000000000fffe00000a', 'fe80::ff:fe00:a'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001', '2001:db8::1'],
    // RFC 5952 §4.2.3: the longest run is compressed; §4.2.2: a single zero group is not.
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '20010000000000010000000000000001', '2001:0:0:1::1'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000', '1:2:3:4:5:6:7:0'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001', '::ffff:10.0.0.1'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221', '64:ff9b::c000:221'],
  ];
  for (const [text, bytes, canon] of cases) {
    it(`${text} <-> ${canon}`, () => {
      assert.equal(toHex(parseIpv6(text)), bytes);
      assert.equal(formatIpv6(hex(bytes)), canon);
    });
  }

  it('parses into and formats from an offset', () => {
    const b = new Uint8Array(20);
    parseIpv6Into('fd00::7', b, 4);
    assert.equal(formatIpv6(b, 4), 'fd00::7');
  });

  for (const bad of [
    '', ':', ':::', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::',
    '::1.2.3', '1.2.3.4::', '::1.2.3.4:5', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:',
  ]) {
    it(`rejects "${bad}"`, () => assert.throws(() => parseIpv6(bad), /invalid IPv6 address/));
  }

  it('compares and copies without allocating', () => {
    const a = parseIpv6('fd00::1');
    const b = new Uint8Array(18);
    ipv6Copy(a, 0, b, 2);
    assert.ok(ipv6Equal(a, 0, b, 2));
    b[17] = 2;
    assert.ok(!ipv6Equal(a, 0, b, 2));
  });
});

describe('MAC', () => {
  it('parses with ":" or "-", formats lower case', () => {
    assert.equal(toHex(parseMac('02:00:00:00:00:0A')), '02000000000a');
    assert.equal(toHex(parseMac('33-33-ff-00-00-02')), '3333ff000002');
    assert.equal(formatMac(hex('0200000000ab')), '02:00:00:00:00:ab');
    assert.equal(formatMac(hex('ffff 02000000000b'), 2), '02:00:00:00:00:0b');
  });

  for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:00:00', '2:0:0:0:0:0', '02:00:00:00:00:zz', '0200.0000.0001']) {
    it(`rejects "${bad}"`, () => assert.throws(() => parseMac(bad), /invalid MAC address/));
  }

  it('compares and copies', () => {
    const a = parseMac('02:00:00:00:00:0a');
    const b = new Uint8Array(8);
    macCopy(a, 0, b, 1);
    assert.ok(macEqual(a, 0, b, 1));
    assert.ok(!macEqual(a, 0, b, 0));
  });
});

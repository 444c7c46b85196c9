/**
 * Tests for src/wire/ipv6-ext.ts: the extension-header walk over a captured
 * MLDv2 report (Hop-by-Hop + Router Alert) and hand-built chains, including
 * fragments, AH, and every malformed or truncated case.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IPPROTO_ESP, IPPROTO_ICMPV6, IPPROTO_TCP, IPV6_EXT_HBH_NOT_FIRST, IPV6_EXT_NO_NEXT, IPV6_EXT_TOO_MANY,
  IPV6_EXT_TRUNCATED, Ipv6ExtInfo, ipv6IsExtHeader, ipv6WalkExt,
} from '../../src/wire/index.ts';
import { CAP, hex } from './hex.ts';

const TCP = '0050 0050 00000000 00000000 5002 ffff 0000 0000';
const HBH = (nh: string): string => `${nh}00 0104 00000000`;
const DST = (nh: string): string => `${nh}00 0104 00000000`;
const RT = (nh: string): string => `${nh}00 0000 00000000`;

/** IPv6 packet with Next Header `nh`, the given bytes as payload, and optional trailing bytes. */
function pkt(nh: number, payload: string, trailing = 0): Uint8Array {
  const p = hex(payload);
  const b = new Uint8Array(40 + p.length + trailing);
  b[0] = 0x60;
  b[4] = p.length >>> 8;
  b[5] = p.length & 0xff;
  b[6] = nh;
  b[7] = 64;
  b.set(p, 40);
  return b;
}

const info = new Ipv6ExtInfo();
const walk = (b: Uint8Array, max?: number): number => ipv6WalkExt(b, 0, b.length, info, max);

describe('ipv6WalkExt', () => {
  it('captured MLDv2: Hop-by-Hop then ICMPv6', () => {
    const f = hex(CAP.mld2Hbh);
    assert.equal(ipv6WalkExt(f, 14, f.length - 14, info), IPPROTO_ICMPV6);
    assert.deepEqual([info.off, info.hdrCount, info.isFragment(), info.hasL4()], [14 + 48, 1, false, true]);
  });

  it('no extension headers', () => {
    assert.equal(walk(pkt(6, TCP)), IPPROTO_TCP);
    assert.deepEqual([info.off, info.hdrCount, info.fragHdrOff], [40, 0, -1]);
  });

  it('Hop-by-Hop -> Destination Options -> Routing -> TCP (3 headers, the limit)', () => {
    assert.equal(walk(pkt(0, `${HBH('3c')} ${DST('2b')} ${RT('06')} ${TCP}`)), IPPROTO_TCP);
    assert.deepEqual([info.off, info.hdrCount], [64, 3]);
  });

  it('a 4th header exceeds the default bound (Cilium: INVALID_EXTHDR), a larger bound accepts it', () => {
    const b = pkt(0, `${HBH('3c')} ${DST('2b')} ${RT('3c')} ${DST('06')} ${TCP}`);
    assert.equal(walk(b), IPV6_EXT_TOO_MANY);
    assert.equal(walk(b, 8), IPPROTO_TCP);
    assert.equal(info.off, 72);
  });

  it('multi-octet Hdr Ext Len: (len + 1) * 8', () => {
    assert.equal(walk(pkt(60, `0601 010c 000000000000000000000000 ${TCP}`)), IPPROTO_TCP);
    assert.equal(info.off, 56);
  });

  it('first fragment: fragment, L4 present', () => {
    assert.equal(walk(pkt(44, `0600 0001 12345678 ${TCP}`)), IPPROTO_TCP);
    assert.deepEqual(
      [info.off, info.fragHdrOff, info.fragOffset, info.moreFrags, info.fragId, info.isFragment(), info.hasL4()],
      [48, 40, 0, true, 0x12345678, true, true],
    );
  });

  it('later fragment: offset 1448, no L4 header here', () => {
    assert.equal(walk(pkt(44, '0600 05a8 12345678 0102030405060708')), IPPROTO_TCP);
    assert.deepEqual([info.fragOffset, info.moreFrags, info.isFragment(), info.hasL4()], [1448, false, true, false]);
  });

  it('atomic fragment (offset 0, M clear) is not a fragment (RFC 6946)', () => {
    assert.equal(walk(pkt(44, `0600 0000 00000001 ${TCP}`)), IPPROTO_TCP);
    assert.deepEqual([info.fragHdrOff, info.isFragment(), info.hasL4()], [40, false, true]);
  });

  it('AH length counts 4-octet units plus 2 (RFC 4302)', () => {
    assert.equal(walk(pkt(51, `0604 0000 00001000 00000001 000000000000000000000000 ${TCP}`)), IPPROTO_TCP);
    assert.equal(info.off, 64);
  });

  it('ESP ends the walk as an opaque upper layer', () => {
    assert.equal(walk(pkt(0, `${HBH('32')} 00001000 00000001`)), IPPROTO_ESP);
    assert.equal(info.off, 48);
  });

  it('No Next Header is reported (Cilium: INVALID_EXTHDR)', () => {
    assert.equal(walk(pkt(59, '')), IPV6_EXT_NO_NEXT);
    assert.equal(walk(pkt(0, HBH('3b'))), IPV6_EXT_NO_NEXT);
    assert.equal(info.off, 48);
  });

  it('Hop-by-Hop after another header is malformed (RFC 8200 §4.1)', () => {
    assert.equal(walk(pkt(60, `${DST('00')} ${HBH('06')} ${TCP}`)), IPV6_EXT_HBH_NOT_FIRST);
    assert.equal(info.off, 48);
  });

  const truncated: [string, Uint8Array][] = [
    ['header length past the payload', pkt(0, '0601 0104 00000000')],
    ['only one byte of an extension header', pkt(0, '06')],
    ['fragment header cut short', pkt(44, '0600 0001 1234')],
    ['AH length past the payload', pkt(51, '0604 0000 00001000 00000001')],
    ['second header cut short', pkt(0, `${HBH('3c')} 06`)],
    ['Payload Length bounds the walk even with bytes after it', pkt(0, '0601 0104 00000000', 64)],
  ];
  for (const [name, b] of truncated) {
    it(`truncated: ${name}`, () => assert.equal(walk(b), IPV6_EXT_TRUNCATED));
  }

  it('n bounds the walk too', () => {
    const b = pkt(0, `${HBH('06')} ${TCP}`);
    assert.equal(ipv6WalkExt(b, 0, 41, info), IPV6_EXT_TRUNCATED);
  });

  it('ipv6IsExtHeader', () => {
    assert.deepEqual([0, 43, 44, 51, 60, 6, 50, 59].map(ipv6IsExtHeader), [true, true, true, true, true, false, false, false]);
  });
});

/**
 * Tests for src/wire/checksum.ts: RFC 1071 sums (byte loop and word loop
 * agree at every alignment), known-good checksums from real captures,
 * RFC 1624 incremental updates against full recomputes (seeded property
 * tests), UDP zero rules, and virtio-net partial checksums.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  csumCompletePartial, csumReplace16, csumReplace32, csumReplaceBytes, finish, fold, IPPROTO_ICMP, IPPROTO_ICMPV6,
  IPPROTO_TCP, IPPROTO_UDP, ipv4HdrCsumFill, ipv4HdrCsumOk, ipv4PseudoSum, l4CsumFill4, l4CsumFill6,
  l4CsumFillPartial4, l4CsumFillPartial6, l4CsumOffset, l4CsumOk4, l4CsumOk6, l4CsumReplaceAddr, l4CsumReplaceAddr6,
  l4CsumReplacePort, sum16,
} from '../../src/wire/index.ts';
import { CAP, hex, prng } from './hex.ts';

/** Reference: byte pairs relative to off, one at a time. */
function naiveSum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  return s;
}

const get16 = (b: Uint8Array, i: number): number => (b[i] << 8) | b[i + 1];

describe('sum16 / fold / finish', () => {
  it('matches the RFC 1071 §3 numerical example', () => {
    const b = hex('0001 f203 f4f5 f6f7');
    assert.equal(sum16(b, 0, 8), 0x2ddf0);
    assert.equal(fold(0x2ddf0), 0xddf2);
    assert.equal(finish(0x2ddf0), 0x220d);
  });

  it('pads an odd trailing byte with zero', () => {
    assert.equal(sum16(hex('0102 03'), 0, 3), 0x0102 + 0x0300);
  });

  it('folds large accumulators with end-around carry', () => {
    assert.equal(fold(0), 0);
    assert.equal(fold(0xffff), 0xffff);
    assert.equal(fold(0x1fffe), 0xffff);
    assert.equal(fold(0x10000), 1);
    assert.equal(fold(2 ** 40 + 5), fold((2 ** 40) % 0xffff + 5));
  });

  it('word loop equals byte loop for every length and alignment (seeded)', () => {
    const rnd = prng(1071);
    const backing = new Uint8Array(70000);
    for (let i = 0; i < backing.length; i++) backing[i] = rnd() & 0xff;
    for (let k = 0; k < 3000; k++) {
      const base = rnd() % 8; // byteOffset of the subarray: exercises absolute alignment
      const b = backing.subarray(base);
      const len = k < 2000 ? rnd() % 1600 : rnd() % 65536;
      const off = rnd() % 64;
      const init = rnd() % 0x30000;
      assert.equal(fold(sum16(b, off, len, init)), fold(naiveSum(b, off, len) + init), `len ${len} off ${off} base ${base}`);
    }
  });
});

describe('known-good checksums from captures', () => {
  it('IPv4 header: verify and refill (TCP SYN)', () => {
    const f = hex(CAP.tcpSyn4);
    assert.ok(ipv4HdrCsumOk(f, 14));
    f[14 + 10] = 0xde;
    assert.ok(!ipv4HdrCsumOk(f, 14));
    assert.equal(ipv4HdrCsumFill(f, 14), 0x0b34);
  });

  const v4 = (name: keyof typeof CAP, proto: number, want: number): void => {
    it(`${name}: L4 checksum 0x${want.toString(16)}`, () => {
      const f = hex(CAP[name]);
      const len = get16(f, 16) - 20;
      const src = ((f[26] << 24) | (f[27] << 16) | (f[28] << 8) | f[29]) >>> 0;
      const dst = ((f[30] << 24) | (f[31] << 16) | (f[32] << 8) | f[33]) >>> 0;
      assert.ok(l4CsumOk4(f, 34, len, proto, src, dst));
      assert.equal(l4CsumFill4(f, 34, len, proto, src, dst), want);
      f[34 + len - 1] ^= 1;
      assert.ok(!l4CsumOk4(f, 34, len, proto, src, dst));
    });
  };
  v4('tcpSyn4', IPPROTO_TCP, 0x6995);
  v4('tcpRst4', IPPROTO_TCP, 0x4765);
  v4('udp4', IPPROTO_UDP, 0x0ac4);
  v4('icmpEchoReq', IPPROTO_ICMP, 0x1fca);
  v4('icmpPortUnreach', IPPROTO_ICMP, 0x11e4);

  const v6 = (name: keyof typeof CAP, proto: number, want: number): void => {
    it(`${name}: L4 checksum over IPv6 0x${want.toString(16)}`, () => {
      const f = hex(CAP[name]);
      const len = get16(f, 18);
      assert.ok(l4CsumOk6(f, 54, len, proto, 22, 38));
      assert.equal(l4CsumFill6(f, 54, len, proto, 22, 38), want);
    });
  };
  v6('tcpSyn6', IPPROTO_TCP, 0x55f1);
  v6('icmp6EchoReq', IPPROTO_ICMPV6, 0xac47);
  v6('ndpNs', IPPROTO_ICMPV6, 0x7c5c);
  v6('ndpNa', IPPROTO_ICMPV6, 0x1ac6);

  it('l4CsumOffset per protocol', () => {
    assert.deepEqual([IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, 47].map(l4CsumOffset), [16, 6, 2, 2, -1]);
  });
});

describe('RFC 1624 incremental updates', () => {
  it('§4 example: eqn. 3 gives +0 (0x0000), not -0', () => {
    // Other header words sum to 0xCD7A; field m = 0x5555 -> m' = 0x3285; HC = 0xDD2F.
    assert.equal(finish(0xcd7a + 0x5555), 0xdd2f);
    assert.equal(finish(0xcd7a + 0x3285), 0x0000);
    assert.equal(csumReplace16(0xdd2f, 0x5555, 0x3285), 0x0000);
  });

  it('unchanged field leaves a 0x0000 checksum alone (erratum 4782 case)', () => {
    assert.equal(csumReplace16(0x0000, 0x5555, 0x5555), 0x0000);
  });

  it('16-bit, 32-bit and byte-range updates equal a full recompute (10k seeded cases)', () => {
    const rnd = prng(1624);
    for (let k = 0; k < 10000; k++) {
      const words = 10 + (rnd() % 20);
      const b = new Uint8Array(words * 2);
      for (let i = 0; i < b.length; i++) b[i] = rnd() & 0xff;
      // Bias towards the corner values 0x0000 and 0xffff.
      if (k % 7 === 0) b.fill(0xff, 0, 4);
      if (k % 11 === 0) b.fill(0, 0, 4);
      b[2 * words - 2] = 0;
      b[2 * words - 1] = 0; // last word is the checksum field
      const check = finish(sum16(b, 0, b.length));
      const w = 2 * (rnd() % (words - 3));
      if (k % 3 === 0) {
        const old = get16(b, w);
        const nw = k % 13 === 0 ? (k & 1 ? 0xffff : 0) : rnd() & 0xffff;
        b[w] = nw >>> 8;
        b[w + 1] = nw & 0xff;
        assert.equal(csumReplace16(check, old, nw), finish(sum16(b, 0, b.length)));
      } else if (k % 3 === 1) {
        const old = ((b[w] << 24) | (b[w + 1] << 16) | (b[w + 2] << 8) | b[w + 3]) >>> 0;
        const nw = rnd();
        b[w] = nw >>> 24;
        b[w + 1] = (nw >>> 16) & 0xff;
        b[w + 2] = (nw >>> 8) & 0xff;
        b[w + 3] = nw & 0xff;
        assert.equal(csumReplace32(check, old, nw), finish(sum16(b, 0, b.length)));
      } else {
        const old = b.slice(0, 16);
        const nw = new Uint8Array(16).map(() => rnd() & 0xff);
        b.set(nw, 0);
        assert.equal(csumReplaceBytes(check, old, 0, nw, 0, 16), finish(sum16(b, 0, b.length)));
      }
    }
  });

  it('NAT rewrites of a real TCP SYN (address + port) equal a full recompute', () => {
    const rnd = prng(7);
    for (let k = 0; k < 1000; k++) {
      const f = hex(CAP.tcpSyn4);
      const oldSrc = 0x0a630001;
      const newSrc = rnd();
      const newPort = rnd() & 0xffff;
      const oldPort = get16(f, 34);
      f.set([newSrc >>> 24, (newSrc >>> 16) & 0xff, (newSrc >>> 8) & 0xff, newSrc & 0xff], 26);
      f[34] = newPort >>> 8;
      f[35] = newPort & 0xff;
      l4CsumReplaceAddr(f, 34 + 16, oldSrc, newSrc, false);
      l4CsumReplacePort(f, 34 + 16, oldPort, newPort, false);
      const got = get16(f, 50);
      assert.equal(got, l4CsumFill4(f, 34, 40, IPPROTO_TCP, newSrc, 0x0a630002));
    }
  });

  it('IPv6 address rewrite of a real TCP SYN equals a full recompute', () => {
    const f = hex(CAP.tcpSyn6);
    const old = f.slice(22, 38);
    const nw = hex('20010db8000000000000000000000042');
    f.set(nw, 22);
    l4CsumReplaceAddr6(f, 54 + 16, old, 0, nw, 0, false);
    const got = get16(f, 70);
    assert.equal(got, l4CsumFill6(f, 54, 40, IPPROTO_TCP, 22, 38));
  });
});

describe('UDP zero checksum rules', () => {
  it('over IPv4, 0 means "none": verify passes and rewrites leave it alone (RFC 768)', () => {
    const f = hex(CAP.udp4);
    f[40] = 0;
    f[41] = 0;
    assert.ok(l4CsumOk4(f, 34, 13, IPPROTO_UDP, 0x0a630001, 0x0a630002));
    l4CsumReplaceAddr(f, 40, 0x0a630001, 0x01020304, false, true);
    l4CsumReplacePort(f, 40, 40000, 1, false, true);
    assert.equal(get16(f, 40), 0);
  });

  it('over IPv6, 0 is invalid (RFC 8200 §8.1)', () => {
    const f = hex(CAP.tcpSyn6);
    f[54 + 6] = 0;
    f[54 + 7] = 0;
    assert.ok(!l4CsumOk6(f, 54, 40, IPPROTO_UDP, 22, 38));
  });

  it('an update that computes 0 stores 0xffff for UDP, 0 for TCP', () => {
    // ~C + C = 0xffff, so replacing 0 by C yields exactly 0.
    const b = hex('1234');
    l4CsumReplacePort(b, 0, 0, 0x1234, false, true);
    assert.equal(get16(b, 0), 0xffff);
    const t = hex('1234');
    l4CsumReplacePort(t, 0, 0, 0x1234, false, false);
    assert.equal(get16(t, 0), 0);
  });

  it('a full UDP fill that computes 0 stores 0xffff', () => {
    // Payload chosen so the complemented sum is 0: pseudo + header + payload folds to 0xffff.
    const b = new Uint8Array(10);
    b.set(hex('0001 0002 000a 0000'), 0);
    const partial = fold(ipv4PseudoSum(0, 0, IPPROTO_UDP, 10) + sum16(b, 0, 8));
    const fill = 0xffff - partial;
    b[8] = fill >>> 8;
    b[9] = fill & 0xff;
    assert.equal(l4CsumFill4(b, 0, 10, IPPROTO_UDP, 0, 0), 0xffff);
    assert.ok(l4CsumOk4(b, 0, 10, IPPROTO_UDP, 0, 0));
  });
});

describe('virtio-net partial checksums (NEEDS_CSUM)', () => {
  it('the captured partial SYN holds exactly the folded pseudo-header sum', () => {
    const f = hex(CAP.tcpSyn4Partial);
    assert.equal(get16(f, 50), 0x14f7);
    assert.equal(l4CsumFillPartial4(f, 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002), 0x14f7);
    assert.ok(!l4CsumOk4(f, 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002));
  });

  it('completing it like a device yields a valid checksum', () => {
    const f = hex(CAP.tcpSyn4Partial);
    const c = csumCompletePartial(f, 34, f.length, 16);
    assert.ok(l4CsumOk4(f, 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002));
    assert.equal(c, l4CsumFill4(f.slice(), 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002));
  });

  it('address rewrite adjusts with the non-inverted delta; port rewrite is a no-op (seeded)', () => {
    const rnd = prng(99);
    for (let k = 0; k < 1000; k++) {
      const f = hex(CAP.tcpSyn4Partial);
      const newDst = rnd();
      const newPort = rnd() & 0xffff;
      f.set([newDst >>> 24, (newDst >>> 16) & 0xff, (newDst >>> 8) & 0xff, newDst & 0xff], 30);
      l4CsumReplaceAddr(f, 50, 0x0a630002, newDst, true);
      const before = get16(f, 50);
      const oldPort = get16(f, 36);
      f[36] = newPort >>> 8;
      f[37] = newPort & 0xff;
      l4CsumReplacePort(f, 50, oldPort, newPort, true);
      assert.equal(get16(f, 50), before, 'port rewrite must not touch a partial checksum');
      // Still a valid partial: equal (mod 0xffff) to a fresh pseudo-header sum ...
      const fresh = l4CsumFillPartial4(f.slice(), 34, 40, IPPROTO_TCP, 0x0a630001, newDst);
      assert.equal(before % 0xffff, fresh % 0xffff);
      // ... and completes to a valid checksum.
      csumCompletePartial(f, 34, f.length, 16);
      assert.ok(l4CsumOk4(f, 34, 40, IPPROTO_TCP, 0x0a630001, newDst));
    }
  });

  it('IPv6 partial: fill, rewrite the source, complete', () => {
    const f = hex(CAP.tcpSyn6);
    l4CsumFillPartial6(f, 54, 40, IPPROTO_TCP, 22, 38);
    const old = f.slice(22, 38);
    const nw = hex('fd000099000000000000000000000077');
    f.set(nw, 22);
    l4CsumReplaceAddr6(f, 70, old, 0, nw, 0, true);
    csumCompletePartial(f, 54, f.length, 16);
    assert.ok(l4CsumOk6(f, 54, 40, IPPROTO_TCP, 22, 38));
  });
});

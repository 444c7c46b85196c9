/**
 * Tests for src/wire/icmp6.ts and src/wire/ndp.ts over captured echo, NS,
 * NA and RS messages: the four smoltcp cases, checksums over the IPv6
 * pseudo-header, NDP length rules and option parsing (incl. malformed).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatIpv6, formatMac, ICMPV6_ECHO_REQUEST, ICMPV6_HEADER_LEN, icmp6BufferLen, icmp6Emit, icmp6Field, icmp6Parse,
  type Icmp6Repr, Icmp6View, ND_OPT_MTU, ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR, NDISC_NEIGHBOUR_ADVERTISEMENT,
  NDISC_NEIGHBOUR_SOLICITATION, NDP_NA_OVERRIDE, NDP_NA_ROUTER, NDP_NA_SOLICITED, NDP_OPT_DONE, NDP_OPT_MALFORMED,
  NDP_RA_MANAGED, ndpFindLlAddr, NdpOptIter, ndpOptionsStart, ndpOptionsValid, parseIpv6, parseMac,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

/** Frame, offset of the ICMPv6 message (14 + 40), and its length. */
const msg = (name: keyof typeof CAP): { f: Uint8Array; v: Icmp6View } => {
  const f = hex(CAP[name]);
  return { f, v: new Icmp6View().bind(f, 54, f.length - 54) };
};
const SRC = 22;
const DST = 38;

const NS_REPR: Icmp6Repr = { kind: 'ns', target: parseIpv6('fd00:99::2'), sllao: parseMac('02:00:00:00:00:0a') };
const NA_REPR: Icmp6Repr = {
  kind: 'na', flags: NDP_NA_SOLICITED | NDP_NA_OVERRIDE, target: parseIpv6('fd00:99::2'),
  tllao: parseMac('02:00:00:00:00:0b'),
};

describe('Icmp6View: echo', () => {
  it('deconstruct', () => {
    const { v } = msg('icmp6EchoReq');
    assert.ok(v.checkLen());
    assert.deepEqual([v.type(), v.code(), v.checksum(), v.echoIdent(), v.echoSeq()], [ICMPV6_ECHO_REQUEST, 0, 0xac47, 0x46a0, 1]);
    assert.ok(!v.isError());
    assert.equal(v.ndpOptionsOffset(), -1);
    assert.ok(!v.ndpCheckLen(), 'not an NDP type');
    assert.ok(v.verifyChecksum(SRC, DST));
    assert.equal(icmp6Field.ECHO_IDENT, 4);
  });

  it('construct / parse / emit', () => {
    const { f, v } = msg('icmp6EchoReq');
    const repr = { kind: 'echo-request' as const, ident: 0x46a0, seq: 1, dataLen: 8 };
    assert.deepEqual(icmp6Parse(v), repr);
    const g = f.slice();
    g.fill(0, 54, 62);
    const w = new Icmp6View().bind(g, 54, 16);
    w.setType(ICMPV6_ECHO_REQUEST);
    w.setEchoIdent(0x46a0);
    w.setEchoSeq(1);
    assert.equal(w.fillChecksum(SRC, DST), 0xac47);
    assert.equal(toHex(g), toHex(f));
    g.fill(0, 54, 62);
    assert.equal(icmp6Emit(repr, g, 54), 16);
    w.fillChecksum(SRC, DST);
    assert.equal(toHex(g), toHex(f));
  });

  it('checkLen rejects fewer than 8 bytes', () => {
    const { f } = msg('icmp6EchoReq');
    assert.ok(!new Icmp6View().bind(f, 54, ICMPV6_HEADER_LEN - 1).checkLen());
    assert.throws(() => icmp6Parse(new Icmp6View().bind(f, 54, 7)), /truncated/);
  });
});

describe('Icmp6View: NDP', () => {
  it('deconstruct NS (captured): target and source link-layer address', () => {
    const { v } = msg('ndpNs');
    assert.ok(v.ndpCheckLen());
    assert.equal(v.type(), NDISC_NEIGHBOUR_SOLICITATION);
    assert.equal(formatIpv6(v.b, v.targetOff()), 'fd00:99::2');
    assert.equal(v.ndpOptionsOffset(), 54 + 24);
    assert.equal(formatMac(v.b, v.findLlAddr(ND_OPT_SOURCE_LL_ADDR)), '02:00:00:00:00:0a');
    assert.equal(v.findLlAddr(ND_OPT_TARGET_LL_ADDR), -1);
    assert.ok(v.verifyChecksum(SRC, DST));
  });

  it('deconstruct NA (captured): flags, target, target link-layer address', () => {
    const { v } = msg('ndpNa');
    assert.ok(v.ndpCheckLen());
    assert.equal(v.type(), NDISC_NEIGHBOUR_ADVERTISEMENT);
    assert.equal(v.naFlags(), NDP_NA_SOLICITED | NDP_NA_OVERRIDE);
    assert.equal(formatMac(v.b, v.findLlAddr(ND_OPT_TARGET_LL_ADDR)), '02:00:00:00:00:0b');
    assert.ok(v.verifyChecksum(SRC, DST));
  });

  it('construct NA: answer the captured NS in place, as a responder would', () => {
    const { f } = msg('ndpNs');
    const want = hex(CAP.ndpNa);
    f.set(want.subarray(0, 12), 0); // MACs
    f.set(want.subarray(22, 54), 22); // addresses
    const v = new Icmp6View().bind(f, 54, 32);
    v.setType(NDISC_NEIGHBOUR_ADVERTISEMENT);
    v.setNaFlags(NDP_NA_SOLICITED | NDP_NA_OVERRIDE);
    const opt = v.ndpOptionsOffset();
    f[opt] = ND_OPT_TARGET_LL_ADDR;
    f.set(parseMac('02:00:00:00:00:0b'), opt + 2);
    assert.equal(v.fillChecksum(SRC, DST), 0x1ac6);
    assert.equal(toHex(f), toHex(want));
  });

  it('parse NS, NA, NA without options, RS', () => {
    assert.deepEqual(icmp6Parse(msg('ndpNs').v), NS_REPR);
    assert.deepEqual(icmp6Parse(msg('ndpNa').v), NA_REPR);
    assert.deepEqual(icmp6Parse(msg('ndpNaNoOpt').v), {
      kind: 'na', flags: NDP_NA_SOLICITED, target: parseIpv6('fd00:99::1'),
    });
    assert.deepEqual(icmp6Parse(msg('ndpRs').v), { kind: 'rs', sllao: parseMac('02:00:00:00:00:0b') });
  });

  it('emit NS, NA, RS equal the captures (checksum filled after)', () => {
    for (const [name, repr] of [['ndpNs', NS_REPR], ['ndpNa', NA_REPR], ['ndpRs', icmp6Parse(msg('ndpRs').v)]] as const) {
      const { f } = msg(name);
      const g = f.slice();
      g.fill(0xee, 54);
      assert.equal(icmp6Emit(repr, g, 54), f.length - 54);
      assert.equal(icmp6BufferLen(repr), f.length - 54);
      new Icmp6View().bind(g, 54, f.length - 54).fillChecksum(SRC, DST);
      assert.equal(toHex(g), toHex(f), name);
    }
  });

  it('RA and Redirect round-trip through emit and parse', () => {
    const ra: Icmp6Repr = {
      kind: 'ra', curHopLimit: 64, flags: NDP_RA_MANAGED, routerLifetime: 1800, reachableTime: 30000,
      retransTimer: 1000, sllao: parseMac('02:00:00:00:00:01'), mtu: 1450,
    };
    const redirect: Icmp6Repr = {
      kind: 'redirect', target: parseIpv6('fe80::1'), dest: parseIpv6('fd00::9'), tllao: parseMac('02:00:00:00:00:02'),
    };
    for (const r of [ra, redirect, { kind: 'na' as const, flags: NDP_NA_ROUTER, target: parseIpv6('fd00::1') }]) {
      const b = new Uint8Array(icmp6BufferLen(r));
      icmp6Emit(r, b, 0);
      const v = new Icmp6View().bind(b, 0, b.length);
      assert.ok(v.ndpCheckLen());
      assert.deepEqual(icmp6Parse(v), r);
    }
    const b = new Uint8Array(icmp6BufferLen(ra));
    icmp6Emit(ra, b, 0);
    assert.equal(toHex(b.subarray(4, 16)), toHex(hex('40 80 0708 00007530 000003e8')));
    const it = new NdpOptIter().bind(b, 16, b.length);
    assert.deepEqual([it.next(), it.next(), it.next()], [ND_OPT_SOURCE_LL_ADDR, ND_OPT_MTU, NDP_OPT_DONE]);
  });

  it('error messages round-trip (packet too big, parameter problem)', () => {
    for (const r of [
      { kind: 'pkt-too-big' as const, mtu: 1280, dataLen: 4 },
      { kind: 'param-problem' as const, code: 1, pointer: 40, dataLen: 4 },
      { kind: 'dst-unreach' as const, code: 4, dataLen: 4 },
      { kind: 'time-exceeded' as const, code: 0, dataLen: 4 },
    ]) {
      const b = new Uint8Array(12);
      icmp6Emit(r, b, 0);
      const v = new Icmp6View().bind(b, 0, 12);
      assert.ok(v.isError());
      assert.deepEqual(icmp6Parse(v), r);
    }
  });
});

describe('NDP length rules and options', () => {
  const cut = (name: keyof typeof CAP, n: number): Icmp6View => new Icmp6View().bind(hex(CAP[name]), 54, n);

  it('fixed part must fit: NS 24, RS 8', () => {
    assert.ok(!cut('ndpNs', 23).ndpCheckLen());
    assert.ok(cut('ndpNs', 24).ndpCheckLen(), 'NS without options');
    assert.ok(!cut('ndpRs', 7).ndpCheckLen());
    assert.throws(() => icmp6Parse(cut('ndpNs', 23)), /truncated or malformed/);
  });

  it('option length 0 is malformed (RFC 4861 §4.6)', () => {
    const { f, v } = msg('ndpNs');
    f[54 + 24 + 1] = 0;
    assert.ok(!v.ndpCheckLen());
    assert.equal(v.findLlAddr(ND_OPT_SOURCE_LL_ADDR), -2);
    const it = new NdpOptIter().bind(f, 54 + 24, f.length);
    assert.equal(it.next(), NDP_OPT_MALFORMED);
  });

  it('option running past the message is malformed', () => {
    const { f, v } = msg('ndpNs');
    f[54 + 24 + 1] = 2;
    assert.ok(!v.ndpCheckLen());
    assert.ok(!cut('ndpNs', 31).ndpCheckLen(), 'a 7-byte option tail');
    assert.ok(!cut('ndpNs', 25).ndpCheckLen(), 'one stray byte');
  });

  it('ndpFindLlAddr / ndpOptionsValid / ndpOptionsStart', () => {
    const b = hex('0101 020000000001 0501 0000 000005aa 0201 020000000002');
    assert.ok(ndpOptionsValid(b, 0, b.length));
    assert.equal(ndpFindLlAddr(b, 0, b.length, ND_OPT_SOURCE_LL_ADDR), 2);
    assert.equal(ndpFindLlAddr(b, 0, b.length, ND_OPT_TARGET_LL_ADDR), 18);
    assert.equal(ndpFindLlAddr(b, 0, 8, ND_OPT_TARGET_LL_ADDR), -1);
    assert.deepEqual([133, 134, 135, 136, 137, 128].map(ndpOptionsStart), [8, 16, 24, 24, 40, -1]);
  });
});

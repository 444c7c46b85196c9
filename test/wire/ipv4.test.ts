/**
 * Tests for src/wire/ipv4.ts over the IPv4 header of a captured TCP SYN: the
 * four smoltcp cases, every checkLen failure, TTL decrement with RFC 1624,
 * fragment fields, and the options walk (including malformed options).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatIpv4, IPOPT_NOOP, IPPROTO_TCP, IPV4_HEADER_LEN, IPV4_OPT_DONE, IPV4_OPT_MALFORMED, ipv4Emit, ipv4Field,
  ipv4FindOption, Ipv4OptIter, ipv4OptionsValid, ipv4Parse, Ipv4View, parseIpv4,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

/** IPv4 header of CAP.tcpSyn4 (+ its 40-byte TCP segment). */
const PACKET = hex(CAP.tcpSyn4).subarray(14);
const HEADER = PACKET.subarray(0, 20);
const REPR = {
  src: parseIpv4('10.99.0.1'), dst: parseIpv4('10.99.0.2'), protocol: IPPROTO_TCP, ttl: 64, payloadLen: 40,
  dscp: 0, ecn: 0, ident: 0x1ac0, dontFrag: true, moreFrags: false, fragOffset: 0,
};

const view = (b: Uint8Array, n = b.length): Ipv4View => new Ipv4View().bind(b, 0, n);

describe('Ipv4View', () => {
  it('deconstruct', () => {
    const v = view(PACKET);
    assert.ok(v.checkLen());
    assert.equal(v.version(), 4);
    assert.equal(v.ihl(), 5);
    assert.equal(v.headerLen(), 20);
    assert.equal(v.dscp(), 0);
    assert.equal(v.ecn(), 0);
    assert.equal(v.totalLen(), 60);
    assert.equal(v.ident(), 0x1ac0);
    assert.ok(v.dontFrag());
    assert.ok(!v.moreFrags());
    assert.equal(v.fragOffset(), 0);
    assert.ok(!v.isFragment());
    assert.equal(v.ttl(), 64);
    assert.equal(v.protocol(), IPPROTO_TCP);
    assert.equal(v.checksum(), 0x0b34);
    assert.ok(v.verifyChecksum());
    assert.equal(formatIpv4(v.src()), '10.99.0.1');
    assert.equal(formatIpv4(v.dst()), '10.99.0.2');
    assert.equal(v.payloadOffset(), 20);
    assert.equal(v.payloadLen(), 40);
    assert.equal(ipv4Field.DST_ADDR, 16);
  });

  it('reads addresses with the top bit set as positive u32', () => {
    const b = HEADER.slice();
    b.set([0xc0, 0xa8, 0x01, 0x01], 12);
    b.set([0xff, 0xff, 0xff, 0xff], 16);
    assert.equal(view(b).src(), 0xc0a80101);
    assert.equal(view(b).dst(), 0xffffffff);
  });

  it('construct', () => {
    const b = new Uint8Array(20);
    const v = view(b);
    v.setVersion(4);
    v.setIhl(5);
    v.setDscp(0);
    v.setEcn(0);
    v.setTotalLen(60);
    v.setIdent(0x1ac0);
    v.setDontFrag(true);
    v.setTtl(64);
    v.setProtocol(IPPROTO_TCP);
    v.setSrc(parseIpv4('10.99.0.1'));
    v.setDst(parseIpv4('10.99.0.2'));
    assert.equal(v.fillChecksum(), 0x0b34);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse', () => {
    assert.deepEqual(ipv4Parse(view(PACKET)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(20);
    assert.equal(ipv4Emit(REPR, b, 0), IPV4_HEADER_LEN);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse rejects a bad checksum', () => {
    const b = PACKET.slice();
    b[10] ^= 0xff;
    assert.throws(() => ipv4Parse(view(b)), /checksum/);
  });

  it('DSCP/ECN and fragment fields', () => {
    const b = HEADER.slice();
    const v = view(b);
    v.setDscp(46);
    v.setEcn(3);
    assert.equal(b[1], 0xbb);
    assert.deepEqual([v.dscp(), v.ecn()], [46, 3]);
    v.setDontFrag(false);
    v.setMoreFrags(true);
    v.setFragOffset(1480);
    assert.equal(toHex(b.subarray(6, 8)), '20b9');
    assert.deepEqual([v.dontFrag(), v.moreFrags(), v.fragOffset(), v.isFragment()], [false, true, 1480, true]);
    v.setMoreFrags(false);
    assert.ok(v.isFragment(), 'last fragment: offset != 0');
    v.setFragOffset(0);
    assert.ok(!v.isFragment());
  });

  it('decTtl patches the checksum incrementally (equals a recompute)', () => {
    const b = HEADER.slice();
    const v = view(b);
    for (let ttl = 63; ttl >= 1; ttl--) {
      assert.equal(v.decTtl(), ttl);
      assert.ok(v.verifyChecksum(), `ttl ${ttl}`);
    }
  });

  it('allows Ethernet padding after Total Length', () => {
    const frame = hex(CAP.icmpEchoReq).subarray(14);
    const padded = new Uint8Array(46);
    padded.set(frame);
    const v = view(padded);
    assert.ok(v.checkLen());
    assert.equal(v.payloadLen(), 16);
  });

  const bad: [string, (b: Uint8Array) => void, number][] = [
    ['n < 20', () => {}, 19],
    ['version 6', (b) => { b[0] = 0x65; }, 60],
    ['IHL 4 (< 5)', (b) => { b[0] = 0x44; }, 60],
    ['IHL*4 past the frame', (b) => { b[0] = 0x4f; }, 40],
    ['Total Length < IHL*4', (b) => { b[2] = 0; b[3] = 19; }, 60],
    ['Total Length past the frame', (b) => { b[2] = 0x27; b[3] = 0x0f; }, 60],
    ['Total Length one past the frame', () => {}, 59],
  ];
  for (const [name, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = PACKET.slice();
      mutate(b);
      const v = view(b, n);
      assert.ok(!v.checkLen());
      assert.throws(() => ipv4Parse(v), /ipv4: truncated/);
    });
  }
});

describe('IPv4 options', () => {
  // IHL 8: NOP, NOP, Cilium DSR option (0x9a, len 8: port u16, addr u32), End, padding.
  const opts = hex('01 01 9a08 1f90 0a000001 00 000000');
  const withOpts = (o: Uint8Array): Uint8Array => {
    const b = new Uint8Array(20 + o.length);
    b.set(HEADER);
    b.set(o, 20);
    b[0] = 0x40 | ((20 + o.length) >>> 2);
    b[2] = 0;
    b[3] = b.length;
    return b;
  };

  it('walks NOP, NOP, 0x9a and stops at End', () => {
    const b = withOpts(opts);
    assert.ok(view(b).checkLen());
    assert.equal(view(b).payloadOffset(), 32);
    const it = new Ipv4OptIter().bind(b, 0);
    const seen: [number, number, number][] = [];
    for (let t; (t = it.next()) >= 0;) seen.push([t, it.off, it.len]);
    assert.deepEqual(seen, [[IPOPT_NOOP, 20, 1], [IPOPT_NOOP, 21, 1], [0x9a, 22, 8]]);
    assert.equal(it.next(), IPV4_OPT_DONE);
    assert.ok(ipv4OptionsValid(b, 0));
    assert.equal(ipv4FindOption(b, 0, 0x9a), 22);
    assert.equal(ipv4FindOption(b, 0, 0x44), -1);
  });

  it('no options: nothing to walk', () => {
    assert.equal(new Ipv4OptIter().bind(HEADER, 0).next(), IPV4_OPT_DONE);
    assert.ok(ipv4OptionsValid(HEADER, 0));
  });

  const malformed: [string, string][] = [
    ['length 1', '01 9a01 000000 00000000'],
    ['length 0', '9a00 0000'],
    ['length past the header', '01 01 9a0c 1f90 0a000001 00'],
    ['type in the last byte with no length', '01 01 01 9a'],
  ];
  for (const [name, o] of malformed) {
    it(`rejects an option with ${name}`, () => {
      const b = withOpts(hex(o));
      assert.ok(view(b).checkLen(), 'checkLen does not look at options');
      assert.ok(!ipv4OptionsValid(b, 0));
      assert.equal(ipv4FindOption(b, 0, 0x9a), -2);
      const it = new Ipv4OptIter().bind(b, 0);
      let t;
      while ((t = it.next()) >= 0);
      assert.equal(t, IPV4_OPT_MALFORMED);
    });
  }

  it('bytes after End are padding, even if they look malformed', () => {
    assert.ok(ipv4OptionsValid(withOpts(hex('00 9a 00 ff')), 0));
  });
});

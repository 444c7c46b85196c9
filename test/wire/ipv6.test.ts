/**
 * Tests for src/wire/ipv6.ts over the IPv6 header of a captured TCP SYN: the
 * four smoltcp cases, address words and copies, and every checkLen failure.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatIpv6, IPPROTO_TCP, IPV6_HEADER_LEN, ipv6Emit, ipv6Field, ipv6Parse, Ipv6View, parseIpv6,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

/** IPv6 header of CAP.tcpSyn6 (+ its 40-byte TCP segment). */
const PACKET = hex(CAP.tcpSyn6).subarray(14);
const HEADER = PACKET.subarray(0, 40);
const REPR = {
  src: parseIpv6('fd00:99::1'), dst: parseIpv6('fd00:99::2'), nextHeader: IPPROTO_TCP, hopLimit: 64, payloadLen: 40,
  trafficClass: 0, flowLabel: 0x3dab6,
};

const view = (b: Uint8Array, n = b.length): Ipv6View => new Ipv6View().bind(b, 0, n);

describe('Ipv6View', () => {
  it('deconstruct', () => {
    const v = view(PACKET);
    assert.ok(v.checkLen());
    assert.equal(v.version(), 6);
    assert.equal(v.trafficClass(), 0);
    assert.equal(v.flowLabel(), 0x3dab6);
    assert.equal(v.payloadLen(), 40);
    assert.equal(v.nextHeader(), IPPROTO_TCP);
    assert.equal(v.hopLimit(), 64);
    assert.equal(formatIpv6(v.b, v.srcOff()), 'fd00:99::1');
    assert.equal(formatIpv6(v.b, v.dstOff()), 'fd00:99::2');
    assert.deepEqual([0, 1, 2, 3].map((i) => v.srcWord(i)), [0xfd000099, 0, 0, 1]);
    assert.deepEqual([0, 1, 2, 3].map((i) => v.dstWord(i)), [0xfd000099, 0, 0, 2]);
    assert.equal(v.headerLen(), IPV6_HEADER_LEN);
    assert.equal(v.payloadOffset(), 40);
    assert.ok(!v.isDstMulticast());
    assert.equal(ipv6Field.DST_ADDR, 24);
  });

  it('construct', () => {
    const b = new Uint8Array(40);
    const v = view(b);
    v.setVersion(6);
    v.setTrafficClass(0);
    v.setFlowLabel(0x3dab6);
    v.setPayloadLen(40);
    v.setNextHeader(IPPROTO_TCP);
    v.setHopLimit(64);
    v.setSrc(parseIpv6('fd00:99::1'));
    [0xfd000099, 0, 0, 2].forEach((w, i) => v.setDstWord(i, w));
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse', () => {
    assert.deepEqual(ipv6Parse(view(PACKET)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(40);
    assert.equal(ipv6Emit(REPR, b, 0), 40);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('traffic class and flow label do not clobber each other', () => {
    const b = HEADER.slice();
    const v = view(b);
    v.setTrafficClass(0xb8); // DSCP EF
    assert.equal(toHex(b.subarray(0, 4)), '6b83dab6');
    assert.equal(v.flowLabel(), 0x3dab6);
    v.setFlowLabel(0xfffff);
    assert.deepEqual([v.version(), v.trafficClass(), v.flowLabel()], [6, 0xb8, 0xfffff]);
  });

  it('word setters/getters handle the top bit, copies and compares', () => {
    const b = HEADER.slice();
    const v = view(b);
    v.setSrcWord(0, 0xff020000);
    assert.equal(v.srcWord(0), 0xff020000);
    const out = new Uint8Array(20);
    v.copyDstTo(out, 4);
    assert.ok(v.dstEquals(out, 4));
    assert.ok(!v.srcEquals(out, 4));
    v.setDst(parseIpv6('ff02::1:ff00:2'));
    assert.ok(v.isDstMulticast());
    v.copySrcTo(out);
    assert.equal(formatIpv6(out), 'ff02::1');
  });

  it('decHopLimit', () => {
    const b = HEADER.slice();
    assert.equal(view(b).decHopLimit(), 63);
    assert.equal(b[7], 63);
  });

  const bad: [string, (b: Uint8Array) => void, number][] = [
    ['n < 40', () => {}, 39],
    ['version 4', (b) => { b[0] = 0x40; }, 80],
    ['payload length past the frame', (b) => { b[5] = 41; }, 80],
    ['header only, payload missing', () => {}, 40],
  ];
  for (const [name, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = PACKET.slice();
      mutate(b);
      const v = view(b, n);
      assert.ok(!v.checkLen());
      assert.throws(() => ipv6Parse(v), /ipv6: truncated/);
    });
  }

  it('accepts trailing bytes after the payload', () => {
    const b = new Uint8Array(100);
    b.set(PACKET);
    assert.ok(view(b).checkLen());
  });
});

/**
 * Tests for src/wire/icmp4.ts over captured echo request/reply and a port
 * unreachable: the four smoltcp cases, error-message fields, checkLen.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_HEADER_LEN, ICMP_PORT_UNREACH,
  ICMP_TIME_EXCEEDED, icmp4Emit, icmp4Field, icmp4Parse, Icmp4View, Ipv4View, UdpView,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

/** ICMP message of CAP.icmpEchoReq: id 0x469f, seq 1, "abcdefgh". */
const ECHO = hex(CAP.icmpEchoReq).subarray(34);
const REPLY = hex(CAP.icmpEchoRep).subarray(34);
const UNREACH = hex(CAP.icmpPortUnreach).subarray(34);
const REPR = { kind: 'echo-request' as const, ident: 0x469f, seq: 1, dataLen: 8 };

const view = (b: Uint8Array, n = b.length): Icmp4View => new Icmp4View().bind(b, 0, n);

describe('Icmp4View', () => {
  it('deconstruct', () => {
    const v = view(ECHO);
    assert.ok(v.checkLen());
    assert.equal(v.type(), ICMP_ECHO);
    assert.equal(v.code(), 0);
    assert.equal(v.checksum(), 0x1fca);
    assert.equal(v.echoIdent(), 0x469f);
    assert.equal(v.echoSeq(), 1);
    assert.equal(v.dataOffset(), 8);
    assert.equal(v.dataLen(), 8);
    assert.ok(!v.isError());
    assert.ok(v.verifyChecksum());
    assert.equal(icmp4Field.ECHO_SEQNO, 6);
  });

  it('construct: turn the request into the captured reply', () => {
    const b = ECHO.slice();
    const v = view(b);
    v.setType(ICMP_ECHOREPLY);
    assert.equal(v.fillChecksum(), 0x27ca);
    assert.equal(toHex(b), toHex(REPLY));
  });

  it('parse', () => {
    assert.deepEqual(icmp4Parse(view(ECHO)), REPR);
    assert.deepEqual(icmp4Parse(view(REPLY)), { ...REPR, kind: 'echo-reply' });
  });

  it('emit', () => {
    const b = new Uint8Array(16);
    b.set(ECHO.subarray(8), 8);
    assert.equal(icmp4Emit(REPR, b, 0), 16);
    assert.equal(toHex(b), toHex(ECHO));
  });

  it('port unreachable quotes the original IP header + UDP header', () => {
    const v = view(UNREACH);
    assert.ok(v.isError());
    assert.deepEqual([v.type(), v.code(), v.checksum()], [ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0x11e4]);
    assert.ok(v.verifyChecksum());
    const inner = new Ipv4View().bind(UNREACH, v.dataOffset(), v.dataLen());
    assert.ok(inner.checkLen());
    const udp = new UdpView().bind(UNREACH, inner.payloadOffset(), inner.payloadLen());
    assert.deepEqual([udp.srcPort(), udp.dstPort()], [40000, 53]);
    assert.deepEqual(icmp4Parse(v), { kind: 'dst-unreach', code: ICMP_PORT_UNREACH, mtu: 0, dataLen: 33 });
    const b = new Uint8Array(UNREACH.length);
    b.set(UNREACH.subarray(8), 8);
    icmp4Emit({ kind: 'dst-unreach', code: ICMP_PORT_UNREACH, mtu: 0, dataLen: 33 }, b, 0);
    assert.equal(toHex(b), toHex(UNREACH));
  });

  it('fragmentation needed carries the next-hop MTU (RFC 1191)', () => {
    const b = new Uint8Array(8 + 28);
    b.set(UNREACH.subarray(8, 36), 8);
    icmp4Emit({ kind: 'dst-unreach', code: ICMP_FRAG_NEEDED, mtu: 1450, dataLen: 28 }, b, 0);
    assert.equal(toHex(b.subarray(0, 2)), '0304');
    assert.equal(toHex(b.subarray(4, 8)), '000005aa');
    assert.equal(view(b).nextHopMtu(), 1450);
    assert.ok(view(b).verifyChecksum());
  });

  it('time exceeded, parameter problem, redirect and unknown types round-trip', () => {
    const reprs = [
      { kind: 'time-exceeded' as const, code: 0, dataLen: 4 },
      { kind: 'param-problem' as const, code: 0, pointer: 9, dataLen: 4 },
      { kind: 'redirect' as const, code: 1, gateway: 0xc0a80001, dataLen: 4 },
      { kind: 'other' as const, type: 13, code: 0, rest: 0xdeadbeef, dataLen: 4 },
    ];
    for (const r of reprs) {
      const b = new Uint8Array(12);
      b.set([1, 2, 3, 4], 8);
      icmp4Emit(r, b, 0);
      assert.deepEqual(icmp4Parse(view(b)), r);
    }
    const b = new Uint8Array(12);
    icmp4Emit(reprs[1], b, 0);
    assert.equal(toHex(b.subarray(4, 8)), '09000000');
    assert.equal(view(b).pointer(), 9);
    icmp4Emit(reprs[0], b, 0);
    assert.equal(b[0], ICMP_TIME_EXCEEDED);
  });

  it('checkLen rejects fewer than 8 bytes; parse rejects a bad checksum', () => {
    assert.ok(!view(ECHO, ICMP_HEADER_LEN - 1).checkLen());
    assert.throws(() => icmp4Parse(view(ECHO, 7)), /truncated/);
    const b = ECHO.slice();
    b[15] ^= 1;
    assert.throws(() => icmp4Parse(view(b)), /checksum/);
  });
});

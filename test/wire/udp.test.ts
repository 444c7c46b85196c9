/**
 * Tests for src/wire/udp.ts over a captured datagram ("hello" to port 53):
 * the four smoltcp cases, checksum, and every checkLen failure.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IPPROTO_UDP, l4CsumFill4, l4CsumOk4, UDP_HEADER_LEN, udpEmit, udpField, udpParse, UdpView,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

const SRC = 0x0a630001;
const DST = 0x0a630002;
/** UDP datagram of CAP.udp4 (header + "hello"). */
const DGRAM = hex(CAP.udp4).subarray(34);
const REPR = { srcPort: 40000, dstPort: 53, payloadLen: 5 };

const view = (b: Uint8Array, n = b.length): UdpView => new UdpView().bind(b, 0, n);

describe('UdpView', () => {
  it('deconstruct', () => {
    const v = view(DGRAM);
    assert.ok(v.checkLen());
    assert.equal(v.srcPort(), 40000);
    assert.equal(v.dstPort(), 53);
    assert.equal(v.len(), 13);
    assert.equal(v.checksum(), 0x0ac4);
    assert.equal(v.checksumOff(), 6);
    assert.equal(v.headerLen(), UDP_HEADER_LEN);
    assert.equal(v.payloadOffset(), 8);
    assert.equal(v.payloadLen(), 5);
    assert.equal(new TextDecoder().decode(DGRAM.subarray(v.payloadOffset())), 'hello');
    assert.ok(l4CsumOk4(DGRAM, 0, 13, IPPROTO_UDP, SRC, DST));
    assert.equal(udpField.LENGTH, 4);
  });

  it('construct', () => {
    const b = new Uint8Array(13);
    b.set(new TextEncoder().encode('hello'), 8);
    const v = view(b);
    v.setSrcPort(40000);
    v.setDstPort(53);
    v.setLen(13);
    v.setChecksum(0);
    assert.equal(l4CsumFill4(b, 0, 13, IPPROTO_UDP, SRC, DST), 0x0ac4);
    assert.equal(toHex(b), toHex(DGRAM));
  });

  it('parse', () => {
    assert.deepEqual(udpParse(view(DGRAM)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(13);
    b.set(new TextEncoder().encode('hello'), 8);
    assert.equal(udpEmit(REPR, b, 0), 8);
    l4CsumFill4(b, 0, 13, IPPROTO_UDP, SRC, DST);
    assert.equal(toHex(b), toHex(DGRAM));
  });

  it('Length shorter than the IP payload is allowed; payloadLen follows Length', () => {
    const b = new Uint8Array(20);
    b.set(DGRAM);
    const v = view(b);
    assert.ok(v.checkLen());
    assert.equal(v.payloadLen(), 5);
  });

  const bad: [string, (b: Uint8Array) => void, number][] = [
    ['n < 8', () => {}, 7],
    ['Length < 8', (b) => { b[5] = 7; }, 13],
    ['Length 0 (jumbogram style)', (b) => { b[5] = 0; }, 13],
    ['Length past the frame', (b) => { b[5] = 14; }, 13],
  ];
  for (const [name, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = DGRAM.slice();
      mutate(b);
      const v = view(b, n);
      assert.ok(!v.checkLen());
      assert.throws(() => udpParse(v), /udp: truncated/);
    });
  }
});

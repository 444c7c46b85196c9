/**
 * Tests for src/wire/tcp.ts over a captured RST+ACK (no options) and SYN
 * (with options): the four smoltcp cases, flags, checksums, checkLen failures.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IPPROTO_TCP, l4CsumFill4, l4CsumOk4, TCP_FLAG_ACK, TCP_FLAG_RST, TCP_FLAG_SYN, TCP_HEADER_LEN, tcpEmit, tcpField,
  tcpFlagsParse, tcpFlagsString, tcpParse, TcpView,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

const SRC = 0x0a630002;
const DST = 0x0a630001;
/** TCP header of CAP.tcpRst4: 80 -> 42444, RST|ACK, no options. */
const RST = hex(CAP.tcpRst4).subarray(34);
/** TCP header of CAP.tcpSyn4: 42444 -> 80, SYN, 20 bytes of options. */
const SYN = hex(CAP.tcpSyn4).subarray(34);
const REPR = {
  srcPort: 80, dstPort: 42444, seq: 0, ack: 0xadf2ff93, flags: TCP_FLAG_RST | TCP_FLAG_ACK, window: 0, urgent: 0,
  payloadLen: 0,
};

const view = (b: Uint8Array, n = b.length): TcpView => new TcpView().bind(b, 0, n);

describe('TcpView', () => {
  it('deconstruct (RST+ACK)', () => {
    const v = view(RST);
    assert.ok(v.checkLen());
    assert.equal(v.srcPort(), 80);
    assert.equal(v.dstPort(), 42444);
    assert.equal(v.seqNumber(), 0);
    assert.equal(v.ackNumber(), 0xadf2ff93);
    assert.equal(v.dataOffset(), 5);
    assert.equal(v.headerLen(), TCP_HEADER_LEN);
    assert.equal(v.flags(), 0x14);
    assert.ok(v.hasFlags(TCP_FLAG_RST | TCP_FLAG_ACK));
    assert.ok(!v.hasFlags(TCP_FLAG_SYN | TCP_FLAG_ACK));
    assert.equal(v.window(), 0);
    assert.equal(v.checksum(), 0x4765);
    assert.equal(v.checksumOff(), 16);
    assert.equal(v.urgent(), 0);
    assert.equal(v.payloadOffset(), 20);
    assert.equal(v.payloadLen(), 0);
    assert.ok(l4CsumOk4(RST, 0, 20, IPPROTO_TCP, SRC, DST));
    assert.equal(tcpField.CHECKSUM, 16);
  });

  it('deconstruct (SYN with options; sequence number with the top bit set)', () => {
    const v = view(SYN);
    assert.ok(v.checkLen());
    assert.deepEqual([v.srcPort(), v.dstPort(), v.seqNumber(), v.flags()], [42444, 80, 0xadf2ff92, TCP_FLAG_SYN]);
    assert.deepEqual([v.dataOffset(), v.headerLen(), v.optionsOffset(), v.payloadOffset(), v.window()], [10, 40, 20, 40, 64240]);
    assert.equal(toHex(SYN.subarray(v.optionsOffset(), v.payloadOffset())), '020405b40402080ad2a5a866000000000103030a');
  });

  it('construct', () => {
    const b = new Uint8Array(20);
    const v = view(b);
    v.setSrcPort(80);
    v.setDstPort(42444);
    v.setSeqNumber(0);
    v.setAckNumber(0xadf2ff93);
    v.setDataOffset(5);
    v.setFlags(TCP_FLAG_RST | TCP_FLAG_ACK);
    v.setWindow(0);
    v.setUrgent(0);
    assert.equal(l4CsumFill4(b, 0, 20, IPPROTO_TCP, SRC, DST), 0x4765);
    assert.equal(toHex(b), toHex(RST));
  });

  it('parse', () => {
    assert.deepEqual(tcpParse(view(RST)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(20);
    assert.equal(tcpEmit(REPR, b, 0), 20);
    l4CsumFill4(b, 0, 20, IPPROTO_TCP, SRC, DST);
    assert.equal(toHex(b), toHex(RST));
  });

  it('payloadLen counts what follows the options', () => {
    const b = new Uint8Array(50);
    b.set(SYN);
    assert.equal(view(b).payloadLen(), 10);
  });

  it('flag letters', () => {
    assert.equal(tcpFlagsString(0x12), 'SA');
    assert.equal(tcpFlagsString(0xff), 'FSRPAUEC');
    assert.equal(tcpFlagsParse('sa'), 0x12);
    assert.equal(tcpFlagsParse(''), 0);
    assert.throws(() => tcpFlagsParse('SX'), /unknown flag/);
  });

  const bad: [string, Uint8Array, (b: Uint8Array) => void, number][] = [
    ['n < 20', RST, () => {}, 19],
    ['data offset 4 (< 5)', RST, (b) => { b[12] = 0x40; }, 20],
    ['data offset 0', RST, (b) => { b[12] = 0; }, 20],
    ['data offset past the segment', RST, (b) => { b[12] = 0xf0; }, 40],
    ['options cut off', SYN, () => {}, 39],
  ];
  for (const [name, src, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = src.slice();
      mutate(b);
      const v = view(b, n);
      assert.ok(!v.checkLen());
      assert.throws(() => tcpParse(v), /tcp: truncated/);
    });
  }
});

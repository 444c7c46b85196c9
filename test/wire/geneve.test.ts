/**
 * Tests for src/wire/geneve.ts over a Geneve header with two options (a
 * Cilium DSR option and an OVN-class one; decoded identically by tshark):
 * the four smoltcp cases, option iteration/lookup, and malformed cases.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ETH_P_TEB, GENEVE_HEADER_LEN, GENEVE_OPT_CLASS_CILIUM, GENEVE_OPT_DONE, GENEVE_OPT_MALFORMED,
  GENEVE_OPT_TYPE_CILIUM_DSR, geneveBufferLen, geneveEmit, geneveField, geneveFindOption, GeneveOptIter, geneveParse,
  GeneveView,
} from '../../src/wire/index.ts';
import { hex, toHex } from './hex.ts';

/**
 * Ver 0, Opt Len 5 words, C bit, protocol 0x6558, VNI 77;
 * option 1: class 0x014b type 0x81 len 2 (10.0.0.1, port 8080, pad);
 * option 2: class 0x0102 type 0x05 len 1 (deadbeef); then the inner frame.
 */
const HEADER = hex('05 40 6558 00004d00 | 014b 81 02 0a000001 1f90 0000 | 0102 05 01 deadbeef');
const PACKET = new Uint8Array(HEADER.length + 14);
PACKET.set(HEADER);
const REPR = {
  vni: 77, protocol: ETH_P_TEB, oam: false, critical: true,
  options: [
    { optClass: GENEVE_OPT_CLASS_CILIUM, type: GENEVE_OPT_TYPE_CILIUM_DSR, data: hex('0a000001 1f90 0000') },
    { optClass: 0x0102, type: 0x05, data: hex('deadbeef') },
  ],
};

const view = (b: Uint8Array, n = b.length): GeneveView => new GeneveView().bind(b, 0, n);

describe('GeneveView', () => {
  it('deconstruct', () => {
    const v = view(PACKET);
    assert.ok(v.checkLen());
    assert.equal(v.version(), 0);
    assert.equal(v.optLen(), 5);
    assert.equal(v.optionsLen(), 20);
    assert.ok(!v.oam());
    assert.ok(v.critical());
    assert.equal(v.protocol(), ETH_P_TEB);
    assert.equal(v.vni(), 77);
    assert.equal(v.headerLen(), 28);
    assert.equal(v.optionsOffset(), GENEVE_HEADER_LEN);
    assert.equal(v.payloadOffset(), 28);
    assert.equal(v.payloadLen(), 14);
    assert.equal(geneveField.VNI, 4);
  });

  it('iterates options (class, type, length in 4-byte words)', () => {
    const it = new GeneveOptIter().bind(PACKET, 0);
    const seen: number[][] = [];
    for (let t; (t = it.next()) >= 0;) seen.push([it.optClass, t, it.len, it.dataOffset()]);
    assert.deepEqual(seen, [[0x014b, 0x81, 8, 12], [0x0102, 0x05, 4, 24]]);
    assert.equal(it.next(), GENEVE_OPT_DONE);
    assert.equal(geneveFindOption(PACKET, 0, GENEVE_OPT_CLASS_CILIUM, GENEVE_OPT_TYPE_CILIUM_DSR), 12);
    assert.equal(geneveFindOption(PACKET, 0, 0x0102, 0x05), 24);
    assert.equal(geneveFindOption(PACKET, 0, 0x0102, 0x81), -1);
  });

  it('construct', () => {
    const b = new Uint8Array(HEADER.length);
    const v = view(b);
    v.setVersion(0);
    v.setOptLen(5);
    v.setCritical(true);
    v.setOam(true);
    v.setOam(false);
    v.setProtocol(ETH_P_TEB);
    v.setVni(77);
    b.set(HEADER.subarray(8), 8);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse', () => {
    assert.deepEqual(geneveParse(view(PACKET)), REPR);
  });

  it('emit (C bit inferred from the critical option type)', () => {
    const b = new Uint8Array(HEADER.length);
    const { critical: _c, ...noC } = REPR;
    assert.equal(geneveBufferLen(noC), HEADER.length);
    assert.equal(geneveEmit(noC, b, 0), HEADER.length);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('emit pads option data to 4 bytes and rejects oversize options', () => {
    const r = { vni: 1, options: [{ optClass: 1, type: 2, data: hex('aabbcc') }] };
    const b = new Uint8Array(geneveBufferLen(r));
    geneveEmit(r, b, 0);
    assert.equal(toHex(b), '02006558000001000001' + '0201' + 'aabbcc00');
    assert.throws(() => geneveEmit({ vni: 1, options: [{ optClass: 1, type: 2, data: new Uint8Array(128) }] },
      new Uint8Array(200), 0), /exceeds 124/);
  });

  const bad: [string, (b: Uint8Array) => void, number][] = [
    ['n < 8', () => {}, 7],
    ['version 1', (b) => { b[0] |= 0x40; }, PACKET.length],
    ['Opt Len past the packet', () => {}, 27],
  ];
  for (const [name, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = PACKET.slice();
      mutate(b);
      assert.ok(!view(b, n).checkLen());
      assert.throws(() => geneveParse(view(b, n)), /geneve: truncated/);
    });
  }

  it('an option longer than Opt Len is malformed', () => {
    const one = new GeneveOptIter().bind(hex('01 00 6558 00000100 | 0102 05 0a'), 0);
    assert.equal(one.next(), GENEVE_OPT_MALFORMED, '10 words of data in a 1-word area');
    const b = PACKET.slice();
    b[3 + 20] = 3; // second option claims 12 bytes of data, only 4 remain
    const it = new GeneveOptIter().bind(b, 0);
    assert.equal(it.next(), 0x81);
    assert.equal(it.next(), GENEVE_OPT_MALFORMED);
    assert.equal(geneveFindOption(b, 0, 0x0102, 0x05), -2);
    assert.throws(() => geneveParse(view(b)), /past Opt Len/);
  });
});

/**
 * Tests for src/wire/virtio-net.ts: the four smoltcp cases over a TSO header
 * (little-endian fields), checkLen, and completing the partial checksum of a
 * captured NEEDS_CSUM TCP SYN at csum_start + csum_offset.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  csumCompletePartial, IPPROTO_TCP, l4CsumOk4, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_LEN, virtioNetEmit, virtioNetField, virtioNetParse,
  VirtioNetView,
} from '../../src/wire/index.ts';
import { VNET_HDR_LEN } from '../../src/packet/layout.ts';
import { CAP, hex, toHex } from './hex.ts';

/** NEEDS_CSUM, TCPV4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16 (all little-endian). */
const HEADER = hex('01 01 4200 a805 2200 1000');
const REPR = { flags: 1, gsoType: 1, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 };

const view = (b: Uint8Array, n = b.length): VirtioNetView => new VirtioNetView().bind(b, 0, n);

describe('VirtioNetView', () => {
  it('matches the slab layout header size', () => {
    assert.equal(VIRTIO_NET_HDR_LEN, VNET_HDR_LEN);
  });

  it('deconstruct', () => {
    const v = view(HEADER);
    assert.ok(v.checkLen());
    assert.equal(v.flags(), VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert.ok(v.needsCsum());
    assert.ok(!v.dataValid());
    assert.equal(v.gsoType(), VIRTIO_NET_HDR_GSO_TCPV4);
    assert.equal(v.hdrLen(), 66);
    assert.equal(v.gsoSize(), 1448);
    assert.equal(v.csumStart(), 34);
    assert.equal(v.csumOffset(), 16);
    assert.equal(v.payloadOffset(), 10);
    assert.equal(virtioNetField.CSUM_OFFSET, 8);
  });

  it('construct', () => {
    const b = new Uint8Array(10);
    const v = view(b);
    v.setFlags(VIRTIO_NET_HDR_F_NEEDS_CSUM);
    v.setGsoType(VIRTIO_NET_HDR_GSO_TCPV4);
    v.setHdrLen(66);
    v.setGsoSize(1448);
    v.setCsumStart(34);
    v.setCsumOffset(16);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse', () => {
    assert.deepEqual(virtioNetParse(view(HEADER)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(10);
    assert.equal(virtioNetEmit(REPR, b, 0), 10);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('flags and GSO bits', () => {
    const b = HEADER.slice();
    const v = view(b);
    v.setFlags(VIRTIO_NET_HDR_F_DATA_VALID);
    assert.ok(v.dataValid() && !v.needsCsum());
    v.setGsoType(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN);
    assert.equal(b[1], 0x81);
    v.setGsoSize(0xffff);
    assert.equal(toHex(b.subarray(4, 6)), 'ffff');
    v.clear();
    assert.equal(toHex(b), '00000000000000000000');
  });

  it('checkLen rejects fewer than 10 bytes; csumFieldFits bounds the checksum field', () => {
    assert.ok(!view(HEADER, 9).checkLen());
    assert.throws(() => virtioNetParse(view(HEADER, 9)), /truncated/);
    assert.ok(view(HEADER).csumFieldFits(52));
    assert.ok(!view(HEADER).csumFieldFits(51));
  });

  it('completes the captured partial TCP SYN at csum_start + csum_offset', () => {
    const frame = hex(CAP.tcpSyn4Partial);
    const slab = new Uint8Array(10 + frame.length);
    slab.set(HEADER);
    slab.set(frame, 10);
    const v = view(slab);
    assert.ok(v.needsCsum() && v.csumFieldFits(frame.length));
    const f = slab.subarray(v.payloadOffset());
    assert.ok(!l4CsumOk4(f, 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002));
    csumCompletePartial(f, v.csumStart(), f.length, v.csumOffset());
    assert.ok(l4CsumOk4(f, 34, 40, IPPROTO_TCP, 0x0a630001, 0x0a630002));
  });
});

/**
 * Tests for src/wire/vxlan.ts over a captured VXLAN frame (UDP 8472, VNI 42,
 * inner broadcast ARP): the four smoltcp cases, inner frame access, checkLen.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ETH_P_ARP, EthernetView, IPPROTO_UDP, l4CsumOk4, UdpView, VXLAN_F_VNI, VXLAN_HEADER_LEN, VXLAN_PORT_CILIUM, vxlanEmit,
  vxlanField, vxlanParse, VxlanView,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

const FRAME = hex(CAP.vxlanArp);
/** Offset of the VXLAN header: Ethernet 14 + IPv4 20 + UDP 8. */
const VX = 42;
const HEADER = FRAME.subarray(VX, VX + 8);

describe('VxlanView', () => {
  it('deconstruct, including the outer UDP and the inner frame', () => {
    const udp = new UdpView().bind(FRAME, 34, FRAME.length - 34);
    assert.ok(udp.checkLen());
    assert.equal(udp.dstPort(), VXLAN_PORT_CILIUM);
    assert.ok(l4CsumOk4(FRAME, 34, udp.len(), IPPROTO_UDP, 0x0a630001, 0x0a630002));
    const v = new VxlanView().bind(FRAME, udp.payloadOffset(), udp.payloadLen());
    assert.ok(v.checkLen());
    assert.equal(v.flags(), VXLAN_F_VNI);
    assert.ok(v.hasVni());
    assert.equal(v.vni(), 42);
    assert.equal(v.headerLen(), VXLAN_HEADER_LEN);
    assert.equal(v.payloadOffset(), VX + 8);
    assert.equal(v.payloadLen(), 42);
    const inner = new EthernetView().bind(FRAME, v.payloadOffset(), v.payloadLen());
    assert.ok(inner.checkLen() && inner.isBroadcast());
    assert.equal(inner.ethertype(), ETH_P_ARP);
    assert.equal(vxlanField.VNI, 4);
  });

  it('construct', () => {
    const b = new Uint8Array(8).fill(0xee);
    const v = new VxlanView().bind(b, 0, 8);
    v.setFlags(VXLAN_F_VNI);
    b.fill(0, 1, 4);
    v.setVni(42);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('parse', () => {
    assert.deepEqual(vxlanParse(new VxlanView().bind(FRAME, VX, FRAME.length - VX)), { vni: 42 });
  });

  it('emit', () => {
    const b = new Uint8Array(8).fill(0xee);
    assert.equal(vxlanEmit({ vni: 42 }, b, 0), 8);
    assert.equal(toHex(b), toHex(HEADER));
  });

  it('24-bit VNI: the reserved byte stays zero, high values read back', () => {
    const b = new Uint8Array(8);
    const v = new VxlanView().bind(b, 0, 8);
    v.setVni(0xffffff);
    assert.equal(toHex(b), '00000000ffffff00');
    assert.equal(v.vni(), 0xffffff);
    v.setVni(0x1000001);
    assert.equal(v.vni(), 1, 'masked to 24 bits');
  });

  it('checkLen rejects fewer than 8 bytes; parse rejects a clear I flag', () => {
    assert.ok(!new VxlanView().bind(HEADER, 0, 7).checkLen());
    assert.throws(() => vxlanParse(new VxlanView().bind(HEADER, 0, 7)), /truncated/);
    const b = HEADER.slice();
    b[0] = 0;
    assert.throws(() => vxlanParse(new VxlanView().bind(b, 0, 8)), /I flag/);
  });
});

/**
 * Tests for src/wire/ethernet.ts: deconstruct / construct / parse / emit over
 * a captured ARP frame's Ethernet header, plus checkLen and address classes.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  copyMac, ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, ethernetEmit, ethernetField, ethernetParse, EthernetView, formatMac,
  macIsBroadcast, macIsMulticast, parseMac,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

/** The Ethernet header of CAP.arpRequest. */
const FRAME = hex('02000000000a 02000000000b 0806');
const REPR = { dst: parseMac('02:00:00:00:00:0a'), src: parseMac('02:00:00:00:00:0b'), ethertype: ETH_P_ARP };

describe('EthernetView', () => {
  it('deconstruct', () => {
    const v = new EthernetView().bind(FRAME, 0, FRAME.length);
    assert.ok(v.checkLen());
    assert.equal(formatMac(v.b, v.dstOff()), '02:00:00:00:00:0a');
    assert.equal(formatMac(v.b, v.srcOff()), '02:00:00:00:00:0b');
    assert.equal(v.ethertype(), ETH_P_ARP);
    assert.equal(v.headerLen(), ETH_HLEN);
    assert.equal(v.payloadOffset(), 14);
    assert.equal(v.payloadLen(), 0);
    assert.ok(!v.isBroadcast());
    assert.ok(!v.isMulticast());
    assert.equal(ethernetField.ETHERTYPE, 12);
  });

  it('construct', () => {
    const b = new Uint8Array(14);
    const v = new EthernetView().bind(b, 0, 14);
    v.setDst(REPR.dst);
    v.setSrc(hex('ffff 02000000000b'), 2);
    v.setEthertype(ETH_P_ARP);
    assert.equal(toHex(b), toHex(FRAME));
  });

  it('parse', () => {
    assert.deepEqual(ethernetParse(new EthernetView().bind(FRAME, 0, 14)), REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(16);
    assert.equal(ethernetEmit(REPR, b, 2), 14);
    assert.equal(toHex(b.subarray(2)), toHex(FRAME));
  });

  it('works at an offset inside a larger buffer', () => {
    const f = hex(CAP.tcpSyn6);
    const b = new Uint8Array(f.length + 100);
    b.set(f, 100);
    const v = new EthernetView().bind(b, 100, f.length);
    assert.ok(v.checkLen());
    assert.equal(v.ethertype(), ETH_P_IPV6);
    assert.equal(v.payloadLen(), f.length - 14);
  });

  it('checkLen fails below 14 bytes', () => {
    assert.ok(!new EthernetView().bind(FRAME, 0, 13).checkLen());
    assert.ok(!new EthernetView().bind(FRAME, 1, 13).checkLen());
    assert.throws(() => ethernetParse(new EthernetView().bind(FRAME, 0, 13)), /truncated/);
  });

  it('broadcast and multicast destinations', () => {
    const bc = hex(CAP.vxlanArp).subarray(50);
    const v = new EthernetView().bind(bc, 0, bc.length);
    assert.ok(v.isBroadcast() && v.isMulticast());
    const ns = hex(CAP.ndpNs);
    v.bind(ns, 0, ns.length);
    assert.ok(!v.isBroadcast() && v.isMulticast());
    assert.ok(macIsBroadcast(hex('ffffffffffff'), 0));
    assert.ok(!macIsBroadcast(hex('fffffffffffe'), 0));
    assert.ok(macIsMulticast(hex('01005e000001'), 0));
  });

  it('swapMacs and copyMac', () => {
    const b = FRAME.slice();
    new EthernetView().bind(b, 0, 14).swapMacs();
    assert.equal(toHex(b), '02000000000b02000000000a0806');
    const out = new Uint8Array(6);
    copyMac(b, 6, out, 0);
    assert.equal(formatMac(out), '02:00:00:00:00:0a');
  });
});

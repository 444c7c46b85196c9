/**
 * Tests for src/wire/arp.ts over a captured ARP request/reply pair: the four
 * smoltcp cases and every checkLen failure (only Ethernet/IPv4 ARP passes).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ARP_LEN, arpEmit, arpField, arpParse, ARPOP_REPLY, ARPOP_REQUEST, ArpView, formatIpv4, formatMac, parseIpv4, parseMac,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

const REQ = hex(CAP.arpRequest).subarray(14);
const REP = hex(CAP.arpReply).subarray(14);
const REQ_REPR = {
  op: ARPOP_REQUEST, sha: parseMac('02:00:00:00:00:0b'), spa: parseIpv4('10.99.0.2'), tha: new Uint8Array(6),
  tpa: parseIpv4('10.99.0.1'),
};

describe('ArpView', () => {
  it('deconstruct', () => {
    const v = new ArpView().bind(REQ, 0, REQ.length);
    assert.ok(v.checkLen());
    assert.equal(v.htype(), 1);
    assert.equal(v.ptype(), 0x0800);
    assert.equal(v.hlen(), 6);
    assert.equal(v.plen(), 4);
    assert.equal(v.oper(), ARPOP_REQUEST);
    assert.equal(formatMac(v.b, v.shaOff()), '02:00:00:00:00:0b');
    assert.equal(formatIpv4(v.spa()), '10.99.0.2');
    assert.equal(formatMac(v.b, v.thaOff()), '00:00:00:00:00:00');
    assert.equal(formatIpv4(v.tpa()), '10.99.0.1');
    assert.equal(v.headerLen(), ARP_LEN);
    assert.equal(arpField.TPA, 24);
  });

  it('construct: turn the request into the captured reply in place', () => {
    const b = REQ.slice();
    const v = new ArpView().bind(b, 0, b.length);
    v.setOper(ARPOP_REPLY);
    v.setTha(b.slice(v.shaOff(), v.shaOff() + 6));
    v.setSha(parseMac('02:00:00:00:00:0a'));
    const spa = v.spa();
    v.setSpa(v.tpa());
    v.setTpa(spa);
    assert.equal(toHex(b), toHex(REP));
  });

  it('parse', () => {
    assert.deepEqual(arpParse(new ArpView().bind(REQ, 0, REQ.length)), REQ_REPR);
  });

  it('emit', () => {
    const b = new Uint8Array(ARP_LEN);
    assert.equal(arpEmit(REQ_REPR, b, 0), ARP_LEN);
    assert.equal(toHex(b), toHex(REQ));
  });

  const bad: [string, (b: Uint8Array) => void, number][] = [
    ['truncated (27 bytes)', () => {}, 27],
    ['htype 6 (IEEE 802)', (b) => { b[1] = 6; }, 28],
    ['ptype IPv6', (b) => { b[2] = 0x86; b[3] = 0xdd; }, 28],
    ['hlen 8', (b) => { b[4] = 8; }, 28],
    ['plen 16', (b) => { b[5] = 16; }, 28],
  ];
  for (const [name, mutate, n] of bad) {
    it(`checkLen rejects ${name}`, () => {
      const b = REQ.slice();
      mutate(b);
      const v = new ArpView().bind(b, 0, n);
      assert.ok(!v.checkLen());
      assert.throws(() => arpParse(v), /arp:/);
    });
  }
});

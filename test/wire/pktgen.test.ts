/**
 * Light tests for test/helpers/pktgen.ts: it rebuilds real captured frames
 * byte for byte (lengths, ethertypes, protocols and checksums inferred), its
 * overrides produce the malformed frames the views must reject, and vnet()
 * reproduces a kernel's partial checksum.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pktgen } from '../helpers/pktgen.ts';
import {
  ETH_P_IPV6, EthernetView, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_TCP, IPPROTO_UDP, IPV6_EXT_TRUNCATED,
  Ipv4View, Ipv6ExtInfo, Ipv6View, ipv6WalkExt, l4CsumOk4, l4CsumOk6, TcpView, UdpView, VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4, VirtioNetView,
} from '../../src/wire/index.ts';
import { CAP, hex, toHex } from './hex.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const SYN_OPTS = hex('020405b4 0402080a d2a5a866 00000000 0103030a');

describe('pktgen rebuilds captured frames', () => {
  it('TCP SYN over IPv4', () => {
    const f = pktgen().eth({ src: A, dst: B }).ipv4({ src: '10.99.0.1', dst: '10.99.0.2', id: 0x1ac0, df: true })
      .tcp({ sport: 42444, dport: 80, seq: 0xadf2ff92, flags: 'S', window: 64240, options: SYN_OPTS }).build();
    assert.equal(toHex(f), toHex(hex(CAP.tcpSyn4)));
  });

  it('ICMP echo request', () => {
    const f = pktgen().eth({ src: A, dst: B }).ipv4({ src: '10.99.0.1', dst: '10.99.0.2', id: 0x9cab, df: true })
      .icmp4Echo({ id: 0x469f, seq: 1 }).payload('abcdefgh').build();
    assert.equal(toHex(f), toHex(hex(CAP.icmpEchoReq)));
  });

  it('ICMPv6 echo request', () => {
    const f = pktgen().eth({ src: A, dst: B }).ipv6({ src: 'fd00:99::1', dst: 'fd00:99::2', flowLabel: 0x62560 })
      .icmp6Echo({ id: 0x46a0, seq: 1 }).payload('abcdefgh').build();
    assert.equal(toHex(f), toHex(hex(CAP.icmp6EchoReq)));
  });

  it('NDP NS and NA (hop limit 255 inferred)', () => {
    const ns = pktgen().eth({ src: A, dst: '33:33:ff:00:00:02' }).ipv6({ src: 'fd00:99::1', dst: 'ff02::1:ff00:2' })
      .ndpNs({ target: 'fd00:99::2', sllao: A }).build();
    assert.equal(toHex(ns), toHex(hex(CAP.ndpNs)));
    const na = pktgen().eth({ src: B, dst: A }).ipv6({ src: 'fd00:99::2', dst: 'fd00:99::1' })
      .ndpNa({ target: 'fd00:99::2', tllao: B }).build();
    assert.equal(toHex(na), toHex(hex(CAP.ndpNa)));
  });

  it('ARP request', () => {
    const f = pktgen().eth({ src: B, dst: A }).arp({ op: 'request', sha: B, spa: '10.99.0.2', tpa: '10.99.0.1' }).build();
    assert.equal(toHex(f), toHex(hex(CAP.arpRequest)));
  });

  it('VXLAN carrying a broadcast ARP (UDP port 8472 inferred)', () => {
    const f = pktgen().eth({ src: A, dst: B }).ipv4({ src: '10.99.0.1', dst: '10.99.0.2', id: 0xff9b })
      .udp({ sport: 0x81a9 }).vxlan({ vni: 42 })
      .eth({ src: '02:00:00:00:01:0a', dst: 'ff:ff:ff:ff:ff:ff' })
      .arp({ sha: '02:00:00:00:01:0a', spa: '10.98.0.1', tpa: '10.98.0.2' }).build();
    assert.equal(toHex(f), toHex(hex(CAP.vxlanArp)));
  });

  it('vnet(NEEDS_CSUM) reproduces the captured partial checksum', () => {
    const out = pktgen().vnet({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 })
      .eth({ src: A, dst: B }).ipv4({ src: '10.99.0.1', dst: '10.99.0.2', id: 0xb6b0, df: true })
      .tcp({ sport: 44904, dport: 80, seq: 0x7b8edfcd, flags: 'S', window: 64240, options: hex('020405b4 0402080a 3acb93a0 00000000 0103030a') })
      .build();
    const v = new VirtioNetView().bind(out, 0, out.length);
    assert.deepEqual([v.flags(), v.gsoType(), v.gsoSize(), v.csumStart(), v.csumOffset()], [1, 1, 1448, 34, 16]);
    assert.equal(toHex(out.subarray(10)), toHex(hex(CAP.tcpSyn4Partial)));
  });
});

describe('pktgen overrides build malformed frames', () => {
  const base = (o = {}) => pktgen().eth().ipv4(o).tcp({ sport: 1000, dport: 80, flags: 'S' }).build();
  const ip = (f: Uint8Array): Ipv4View => new Ipv4View().bind(f, 14, f.length - 14);

  it('defaults are well formed', () => {
    const f = base();
    assert.ok(ip(f).checkLen() && ip(f).verifyChecksum());
    const t = new TcpView().bind(f, 34, ip(f).payloadLen());
    assert.ok(t.checkLen());
    assert.ok(l4CsumOk4(f, 34, 20, IPPROTO_TCP, ip(f).src(), ip(f).dst()));
  });

  it('ihl 3, totalLen 9999, version 6 fail checkLen; checksum 0 fails verification', () => {
    assert.ok(!ip(base({ ihl: 3 })).checkLen());
    assert.ok(!ip(base({ totalLen: 9999 })).checkLen());
    assert.ok(!ip(base({ version: 6 })).checkLen());
    const c = base({ checksum: 0 });
    assert.ok(ip(c).checkLen() && !ip(c).verifyChecksum());
  });

  it('tcp dataOffset 4 and udp len 9999 fail checkLen; L4 checksum override sticks', () => {
    const t = pktgen().eth().ipv4().tcp({ dataOffset: 4, checksum: 0x1234 }).build();
    assert.ok(!new TcpView().bind(t, 34, 20).checkLen());
    assert.equal(toHex(t.subarray(50, 52)), '1234');
    const u = pktgen().eth().ipv4().udp({ len: 9999 }).payload(4).build();
    assert.ok(!new UdpView().bind(u, 34, 12).checkLen());
  });

  it('trailer() adds padding no length field counts', () => {
    const f = pktgen().eth().ipv4().udp().payload(2).trailer(16).build();
    assert.equal(f.length, 14 + 20 + 8 + 2 + 16);
    assert.equal(ip(f).totalLen(), 30);
    assert.ok(ip(f).checkLen());
    assert.ok(l4CsumOk4(f, 34, 10, IPPROTO_UDP, ip(f).src(), ip(f).dst()));
  });
});

describe('pktgen IPv6 extension headers and Geneve', () => {
  it('chains extension headers and fills next headers', () => {
    const f = pktgen().eth().ipv6().ipv6Ext({ type: IPPROTO_DSTOPTS }).ipv6Ext({ type: IPPROTO_FRAGMENT, more: true, id: 7 })
      .udp({ dport: 53 }).payload(8).build();
    const v = new Ipv6View().bind(f, 14, f.length - 14);
    assert.ok(new EthernetView().bind(f, 0, f.length).ethertype() === ETH_P_IPV6 && v.checkLen());
    const info = new Ipv6ExtInfo();
    assert.equal(ipv6WalkExt(f, 14, f.length - 14, info), IPPROTO_UDP);
    assert.deepEqual([info.off, info.hdrCount, info.isFragment(), info.fragId], [14 + 56, 2, true, 7]);
    assert.ok(l4CsumOk6(f, info.off, 16, IPPROTO_UDP, v.srcOff(), v.dstOff()));
    const bad = pktgen().eth().ipv6().ipv6Ext({ type: IPPROTO_DSTOPTS, hdrExtLen: 9 }).udp().build();
    assert.equal(ipv6WalkExt(bad, 14, bad.length - 14, info), IPV6_EXT_TRUNCATED);
  });

  it('Geneve with options over UDP 6081 (protocol type inferred)', () => {
    const f = pktgen().eth().ipv4().udp()
      .geneve({ vni: 77, options: [{ optClass: 0x014b, type: 0x81, data: hex('0a000001 1f90 0000') }] })
      .eth().ipv4().icmp4Echo({ id: 1, seq: 2 }).build();
    assert.equal(toHex(f.subarray(36, 38)), '17c1');
    assert.equal(toHex(f.subarray(42, 62)), '034065580000' + '4d00' + '014b8102' + '0a0000011f900000');
    assert.ok(l4CsumOk4(f, 34, f.length - 34, IPPROTO_UDP, ip4(f), dst4(f)));
  });
});

function ip4(f: Uint8Array): number {
  return new Ipv4View().bind(f, 14, f.length - 14).src();
}
function dst4(f: Uint8Array): number {
  return new Ipv4View().bind(f, 14, f.length - 14).dst();
}

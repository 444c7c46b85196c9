/**
 * Tunnel encapsulation and decapsulation (lib/encap.ts) on single frames:
 * the outer headers on the wire, the flow-hashed UDP source port, the VNI
 * carrying the identity, decap restoring the inner frame byte for byte,
 * the virtio-net offsets following the inner headers, and the drops.
 *
 *   +---------+----------+---------+--------------------+-------------+
 *   | eth 14  | IPv4 20  | UDP 8   | VXLAN 8 / Geneve 8 | inner frame |
 *   +---------+----------+---------+--------------------+-------------+
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { FrameBatch, allocSlab } from '../../src/packet/batch.ts';
import { SLOT_SIZE, VNET_HDR_LEN } from '../../src/packet/layout.ts';
import { Tunnel, ENCAP_OVERHEAD, flowSourcePort, type TunnelProtocol } from '../../src/datapath/lib/encap.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';

const NODE_IP = '192.168.1.1';
const PEER_IP = '192.168.1.2';
const NODE_MAC = '02:aa:00:00:00:01';
const PEER_MAC = '02:aa:00:00:00:02';
const peerMac = w.parseMac(PEER_MAC);

const batch = new FrameBatch(allocSlab());

function tunnel(protocol: TunnelProtocol): Tunnel {
  return new Tunnel({ protocol, port: protocol === 'vxlan' ? 8472 : 6081, nodeIP: w.parseIpv4(NODE_IP), mac: w.parseMac(NODE_MAC) });
}

const inner4 = (sport = 40000, dport = 80, payload = 100) =>
  pktgen().eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:01:0a' }).ipv4({ src: '10.0.1.10', dst: '10.0.2.20', ttl: 64 }).tcp({ sport, dport, flags: 'A', seq: 7 }).payload(payload).build();
const inner6 = (sport = 40000, src = 'fd00:1::a', dst = 'fd00:2::14') =>
  pktgen().eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:01:0a' }).ipv6({ src, dst }).udp({ sport, dport: 53 }).payload(60).build();

/**
 * Load `frames` (with optional virtio-net headers) as a new batch, with
 * garbage in the headroom, so that every outer header byte encap relies on
 * must have been written by it.
 */
function load(frames: Uint8Array[], vnet?: (Uint8Array | undefined)[]): FrameBatch {
  batch.load(frames, 1, 0, vnet);
  for (let i = 0; i < frames.length; i++) {
    const o = batch.off[i]!;
    batch.buf.fill(0xee, o - (o % SLOT_SIZE), o - VNET_HDR_LEN);
  }
  return batch;
}

/** Encapsulate one inner frame; returns the outer frame and its virtio-net header. */
function encapOne(t: Tunnel, inner: Uint8Array, identity: number, vnet?: Uint8Array): { f: Uint8Array; h: Uint8Array } {
  const b = load([inner], [vnet]);
  assert.ok(t.encap(b, 0, w.parseIpv4(PEER_IP), identity, peerMac, 0), 'encap succeeds with headroom');
  return { f: b.frame(0), h: b.vnetHeader(0) };
}

/** Check the outer Ethernet / IPv4 / UDP headers of a tunnel frame carrying `inner`. */
function checkOuter(f: Uint8Array, inner: Uint8Array, port: number): void {
  assert.equal(f.length, inner.length + ENCAP_OVERHEAD);
  assert.equal(w.formatMac(f, 0), PEER_MAC, 'outer destination MAC: the peer');
  assert.equal(w.formatMac(f, 6), NODE_MAC, 'outer source MAC: the uplink');
  assert.equal(w.get16(f, 12), w.ETH_P_IP);
  const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.ok(ip.checkLen(), 'outer IPv4 header is well formed');
  assert.equal(f[14], 0x45, 'outer IPv4: version 4, no options');
  assert.equal(f[15], 0, 'outer IPv4: DSCP/ECN 0');
  assert.equal(ip.totalLen(), inner.length + 36, 'outer IPv4 total length');
  assert.equal(ip.protocol(), w.IPPROTO_UDP);
  assert.equal(ip.ttl(), 64);
  assert.equal(w.get16(f, 20) & 0x3fff, 0, 'not a fragment');
  assert.equal(w.formatIpv4(ip.src()), NODE_IP);
  assert.equal(w.formatIpv4(ip.dst()), PEER_IP);
  assert.ok(w.ipv4HdrCsumOk(f, 14), 'outer IPv4 header checksum is valid');
  assert.equal(w.get16(f, 36), port, 'UDP destination port');
  assert.equal(w.get16(f, 38), inner.length + 16, 'UDP length: UDP + tunnel header + inner frame');
  assert.equal(w.get16(f, 40), 0, 'UDP checksum 0 (none, allowed over IPv4)');
  const sport = w.get16(f, 34);
  assert.ok(sport >= 32768 && sport <= 60999, `source port ${sport} in 32768..60999`);
  assert.deepEqual(f.subarray(ENCAP_OVERHEAD), inner, 'inner frame untouched');
}

test('VXLAN encap of an IPv4 frame: outer headers, I flag, VNI = identity << 8', () => {
  const inner = inner4();
  const { f } = encapOne(tunnel('vxlan'), inner, 0x012345);
  checkOuter(f, inner, 8472);
  assert.deepEqual([...f.subarray(42, 50)], [0x08, 0, 0, 0, 0x01, 0x23, 0x45, 0x00], 'VXLAN: I flag, VNI 0x012345, reserved bytes 0');
  const v = new w.VxlanView().bind(f, 42, f.length - 42);
  assert.equal(v.vni(), 0x012345);
});

test('VXLAN encap of an IPv6 frame, with an identity using all 24 bits', () => {
  const inner = inner6();
  const { f } = encapOne(tunnel('vxlan'), inner, 0xfedcba);
  checkOuter(f, inner, 8472);
  assert.equal(w.get32(f, 46), 0xfedcba00, 'VNI on the wire is identity << 8, read unsigned');
});

test('Geneve encap of IPv4 and IPv6 frames: version 0, no options, protocol TEB, VNI', () => {
  for (const inner of [inner4(), inner6()]) {
    const { f } = encapOne(tunnel('geneve'), inner, 1234);
    checkOuter(f, inner, 6081);
    assert.deepEqual([...f.subarray(42, 46)], [0, 0, 0x65, 0x58], 'Geneve: ver 0, opt len 0, no flags, Ethernet inside');
    assert.equal(w.get32(f, 46), 1234 << 8);
    const g = new w.GeneveView().bind(f, 42, f.length - 42);
    assert.equal(g.vni(), 1234);
  }
});

test('outer IPv4 IDs differ from packet to packet', () => {
  const t = tunnel('vxlan');
  const a = encapOne(t, inner4(), 5).f;
  const b = encapOne(t, inner4(), 5).f;
  assert.notEqual(w.get16(a, 18), w.get16(b, 18));
});

test('outer source port: a function of the inner flow, spread over the range', () => {
  const t = tunnel('vxlan');
  const port = (inner: Uint8Array) => w.get16(encapOne(t, inner, 5).f, 34);
  // Same flow: same port, whatever the payload, identity or protocol.
  assert.equal(port(inner4(41000, 80, 10)), port(inner4(41000, 80, 900)), 'same IPv4 flow, different payload');
  assert.equal(w.get16(encapOne(tunnel('geneve'), inner4(41000), 99).f, 34), port(inner4(41000)), 'same flow over Geneve');
  assert.equal(port(inner6(5353)), port(inner6(5353)), 'same IPv6 flow');
  // Different flows: (nearly) all different.
  const seen4 = new Set<number>();
  const seen6 = new Set<number>();
  for (let k = 0; k < 64; k++) {
    seen4.add(port(inner4(40000 + k)));
    seen6.add(port(inner6(40000 + k)));
  }
  for (const p of [...seen4, ...seen6]) assert.ok(p >= 32768 && p <= 60999, `port ${p} in range`);
  assert.ok(seen4.size >= 60, `64 IPv4 flows use ${seen4.size} source ports`);
  assert.ok(seen6.size >= 60, `64 IPv6 flows use ${seen6.size} source ports`);
  // Flows that differ only by their destination port or address.
  assert.notEqual(port(inner4(40000, 80)), port(inner4(40000, 81)), 'destination port is hashed');
});

test('outer source port: every word of an IPv6 address is part of the flow', () => {
  const t = tunnel('vxlan');
  const port = (src: string, dst: string) => w.get16(encapOne(t, inner6(40000, src, dst), 5).f, 34);
  const base = port('fd00:1::a', 'fd00:2::14');
  // Each pair differs from the base in one 32-bit word of one address.
  const variants: [string, string][] = [
    ['fd01:1::a', 'fd00:2::14'], ['fd00:1:0:1::a', 'fd00:2::14'], ['fd00:1::1:0:a', 'fd00:2::14'],
    ['fd00:1::a', 'fd01:2::14'], ['fd00:1::a', 'fd00:2:0:1::14'], ['fd00:1::a', 'fd00:2::1:0:14'],
  ];
  for (const [s, d] of variants) assert.notEqual(port(s, d), base, `${s} -> ${d} hashes apart from the base flow`);
});

test('flowSourcePort of a non-IP frame is still in range', () => {
  const p = flowSourcePort(new Uint8Array(64), 14, 0x88b5);
  assert.ok(p >= 32768 && p <= 60999, `port ${p} in range`);
});

test('decap restores the exact inner frame and returns the identity (VXLAN and Geneve, IPv4 and IPv6)', () => {
  for (const proto of ['vxlan', 'geneve'] as const) {
    const t = tunnel(proto);
    for (const inner of [inner4(), inner6(), inner4(1, 2, 1400)]) {
      const b = load([inner]);
      assert.ok(t.encap(b, 0, w.parseIpv4(PEER_IP), 0xabcdef, peerMac, 0), 'encap');
      assert.ok(t.isTunnel(b.buf, b.off[0]! + 14, b.len[0]! - 14) === false, 'our own encap is addressed to the peer, not to us');
      const id = t.decap(b, 0);
      assert.equal(id, 0xabcdef, `${proto}: identity from the VNI`);
      assert.deepEqual(b.frame(0), inner, `${proto}: inner frame restored`);
      assert.deepEqual([...b.vnetHeader(0)], new Array(10).fill(0), 'virtio-net header still zero');
    }
  }
});

test('decap of frames built independently: outer IPv4 options, Geneve options, identity 0', () => {
  const inner = inner4();
  const t = tunnel('vxlan');
  const f = pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP, options: Uint8Array.of(1, 1, 1, 1) }).udp({ sport: 50000 }).vxlan({ vni: 0x000102 }).raw(inner).build();
  let b = load([f]);
  assert.ok(t.isTunnel(b.buf, b.off[0]! + 14, f.length - 14), 'isTunnel with an outer IPv4 header of 24 bytes');
  assert.equal(t.decap(b, 0), 0x000102);
  assert.deepEqual(b.frame(0), inner);

  const g = tunnel('geneve');
  const gf = pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP }).udp({ sport: 50000 })
    .geneve({ vni: 0, protocol: w.ETH_P_TEB, options: [{ optClass: 0x0102, type: 0x01, data: new Uint8Array(8) }] }).raw(inner).build();
  b = load([gf]);
  assert.ok(g.isTunnel(b.buf, b.off[0]! + 14, gf.length - 14), 'Geneve frame is ours');
  assert.equal(g.decap(b, 0), 0, 'identity 0 is an identity, not an error');
  assert.deepEqual(b.frame(0), inner, 'Geneve options skipped');
});

test('virtio-net csum_start and hdr_len move by +50 on encap and back on decap', () => {
  const inner = inner4(40000, 80, 3000);
  const vnet = new Uint8Array(10);
  w.virtioNetEmit({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: w.VIRTIO_NET_HDR_GSO_TCPV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 }, vnet, 0);
  for (const proto of ['vxlan', 'geneve'] as const) {
    const t = tunnel(proto);
    const b = load([inner], [vnet]);
    assert.ok(t.encap(b, 0, w.parseIpv4(PEER_IP), 9, peerMac, 0), 'encap');
    const h = new w.VirtioNetView().bind(b.buf, b.off[0]! - VNET_HDR_LEN, VNET_HDR_LEN);
    assert.equal(h.csumStart(), 34 + 50, `${proto}: csum_start points at the inner TCP header`);
    assert.equal(h.hdrLen(), 54 + 50, `${proto}: hdr_len covers the outer headers`);
    assert.equal(h.csumOffset(), 16, 'csum_offset is relative to csum_start: unchanged');
    assert.equal(h.gsoSize(), 1448, 'gso_size unchanged');
    assert.equal(h.gsoType(), w.VIRTIO_NET_HDR_GSO_TCPV4);
    assert.equal(w.get16(b.buf, b.off[0]! + 84 + 16), w.get16(inner, 34 + 16), 'the partial sum itself is untouched');
    assert.equal(w.get16(b.buf, b.off[0]! + 40), 0, 'outer UDP checksum 0, over where the virtio-net header was');
    assert.equal(t.decap(b, 0), 9);
    assert.deepEqual(b.vnetHeader(0), vnet, `${proto}: decap moves them back`);
    assert.deepEqual(b.frame(0), inner);
  }
});

test('virtio-net fields that are not in use are left alone', () => {
  const inner = inner4();
  // No NEEDS_CSUM: csum_start is meaningless and stays; no GSO: hdr_len stays.
  const vnet = new Uint8Array(10);
  w.virtioNetEmit({ flags: w.VIRTIO_NET_HDR_F_DATA_VALID, gsoType: 0, hdrLen: 7, gsoSize: 0, csumStart: 11, csumOffset: 0 }, vnet, 0);
  const t = tunnel('vxlan');
  const { h } = encapOne(t, inner, 1, vnet);
  assert.deepEqual(h, vnet, 'header copied unchanged');
});

test('decap of a Geneve frame with options moves the virtio-net offsets by the whole header', () => {
  const inner = inner4();
  const g = tunnel('geneve');
  const gf = pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP }).udp({ sport: 50000 })
    .geneve({ vni: 3, protocol: w.ETH_P_TEB, options: [{ optClass: 0x0102, type: 0x01, data: new Uint8Array(4) }] }).raw(inner).build();
  const vnet = new Uint8Array(10);
  w.virtioNetEmit({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: w.VIRTIO_NET_HDR_GSO_TCPV4, hdrLen: 50 + 8 + 54, gsoSize: 1448, csumStart: 50 + 8 + 34, csumOffset: 16 }, vnet, 0);
  const b = load([gf], [vnet]);
  assert.equal(g.decap(b, 0), 3);
  const h = new w.VirtioNetView().bind(b.buf, b.off[0]! - VNET_HDR_LEN, VNET_HDR_LEN);
  assert.equal(h.csumStart(), 34);
  assert.equal(h.hdrLen(), 54);
});

test('decap drops a pending checksum that was in the outer headers (the outer UDP checksum)', () => {
  const inner = inner4();
  const f = pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP }).udp({ sport: 50000 }).vxlan({ vni: 8 }).raw(inner).build();
  const vnet = new Uint8Array(10);
  w.virtioNetEmit({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 6 }, vnet, 0);
  const b = load([f], [vnet]);
  assert.equal(tunnel('vxlan').decap(b, 0), 8);
  assert.deepEqual(b.frame(0), inner);
  const h = new w.VirtioNetView().bind(b.buf, b.off[0]! - VNET_HDR_LEN, VNET_HDR_LEN);
  assert.equal(h.flags() & w.VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 'nothing left to complete in the inner frame');
  assert.equal(h.csumStart(), 0, 'no wrapped-around csum_start');
  assert.equal(h.csumOffset(), 0);
});

test('malformed tunnel headers and truncated frames are dropped as invalid packets (134)', () => {
  const inner = inner4();
  const v = tunnel('vxlan');
  const g = tunnel('geneve');
  const outer = () => pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP }).udp({ sport: 50000 });
  const cases: [string, Tunnel, Uint8Array][] = [
    ['VXLAN without the I flag', v, outer().vxlan({ vni: 5, flags: 0 }).raw(inner).build()],
    ['VXLAN with an inner frame shorter than Ethernet', v, outer().vxlan({ vni: 5 }).raw(inner.subarray(0, 13)).build()],
    ['VXLAN header cut short', v, outer().raw(Uint8Array.of(0x08, 0, 0, 0)).build()],
    ['Geneve version 1', g, (() => { const f = outer().geneve({ vni: 5, protocol: w.ETH_P_TEB }).raw(inner).build(); f[42] = 0x40; return f; })()],
    ['Geneve carrying IPv4 instead of Ethernet', g, outer().geneve({ vni: 5, protocol: w.ETH_P_IP }).raw(inner.subarray(14)).build()],
    ['Geneve options longer than the frame', g, (() => { const f = outer().geneve({ vni: 5, protocol: w.ETH_P_TEB }).raw(inner.subarray(0, 20)).build(); f[42] = 0x3f; return f; })()],
    ['Geneve with critical options Tapestry does not understand', g, outer().geneve({ vni: 5, protocol: w.ETH_P_TEB, options: [{ optClass: 0x0102, type: 0x81, data: new Uint8Array(4) }] }).raw(inner).build()],
  ];
  for (const [what, t, f] of cases) {
    const b = load([f]);
    assert.equal(t.decap(b, 0), what.includes('critical') ? DROP.INVALID_GENEVE_OPTION : DROP.INVALID, what);
    assert.deepEqual(b.frame(0), f, `${what}: frame left as it was`);
  }
});

test('isTunnel: only UDP to our node address and tunnel port, never a fragment', () => {
  const inner = inner4();
  const v = tunnel('vxlan');
  const g = tunnel('geneve');
  const is = (t: Tunnel, f: Uint8Array) => t.isTunnel(f, 14, f.length - 14);
  const mk = (o: { dst?: string; dport?: number; mf?: boolean; frag?: number } = {}) =>
    pktgen().eth().ipv4({ src: PEER_IP, dst: o.dst ?? NODE_IP, mf: o.mf, fragOffset: o.frag }).udp({ sport: 50000, dport: o.dport ?? 8472 }).vxlan({ vni: 5 }).raw(inner).build();
  assert.equal(is(v, mk()), true, 'VXLAN to us');
  assert.equal(is(v, mk({ dst: PEER_IP })), false, 'to another address');
  assert.equal(is(v, mk({ dport: 4789 })), false, 'to another port');
  assert.equal(is(g, mk()), false, 'Geneve tunnel, VXLAN port');
  assert.equal(is(g, mk({ dport: 6081 })), true, 'Geneve port');
  assert.equal(is(v, mk({ mf: true })), false, 'first fragment');
  assert.equal(is(v, mk({ frag: 1480 / 8 })), false, 'later fragment');
  const tcp = pktgen().eth().ipv4({ src: PEER_IP, dst: NODE_IP }).tcp({ sport: 50000, dport: 8472 }).payload(40).build();
  assert.equal(is(v, tcp), false, 'TCP to the tunnel port');
  const short = mk().subarray(0, 14 + 20 + 8 + 4);
  assert.equal(is(v, short), false, 'too short for UDP + VXLAN');
  assert.equal(new Tunnel({ protocol: 'vxlan', port: 4789, nodeIP: w.parseIpv4(NODE_IP), mac: w.parseMac(NODE_MAC) }).isTunnel(mk({ dport: 4789 }), 14, 1000), true, 'a configured port');
});

test('encap without headroom fails and leaves the frame alone', () => {
  const inner = inner4();
  const b = load([inner]);
  // Move frame 0 to 20 bytes into its slot: room for the virtio-net header only.
  const o = 20;
  b.buf.copyWithin(o - VNET_HDR_LEN, b.off[0]! - VNET_HDR_LEN, b.off[0]! + b.len[0]!);
  b.off[0] = o;
  assert.equal(o % SLOT_SIZE, 20);
  assert.equal(tunnel('vxlan').encap(b, 0, w.parseIpv4(PEER_IP), 5, peerMac, 0), false);
  assert.equal(b.off[0], o);
  assert.deepEqual(b.frame(0), inner);
});

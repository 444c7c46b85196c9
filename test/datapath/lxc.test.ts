/**
 * Packet-in/packet-out tests of bpf_lxc's programs: frames go into an
 * endpoint's port, the test checks what comes out of which device, the
 * bytes, and the drop counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, ROUTER4, ROUTER6, makeNode } from './fixture.ts';
import * as w from '../../src/wire/index.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { CALL } from '../../src/datapath/lib/call-ids.ts';
import { CB, META_SLOTS } from '../../src/packet/batch.ts';

const ethA = { src: A.mac, dst: A.hostMac };

test('ARP request for the router is answered with the host-side MAC, out of the same port', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth({ src: A.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: A.mac, spa: A.ip4, tpa: ROUTER4 }).build()]);
  const [r] = n.devA.take();
  assert.ok(r, 'reply sent');
  const eth = new w.EthernetView().bind(r, 0, r.length);
  const arp = new w.ArpView().bind(r, 14, r.length - 14);
  assert.equal(w.formatMac(r, eth.dstOff()), A.mac);
  assert.equal(w.formatMac(r, eth.srcOff()), A.hostMac);
  assert.equal(arp.oper(), w.ARPOP_REPLY);
  assert.equal(w.formatMac(r, arp.shaOff()), A.hostMac);
  assert.equal(w.formatIpv4(arp.spa()), ROUTER4);
  assert.equal(w.formatMac(r, arp.thaOff()), A.mac);
  assert.equal(w.formatIpv4(arp.tpa()), A.ip4);
  assert.equal(n.devB.frames.length, 0);
});

test('ARP for any other address is answered too, but not for the pod\'s own address', () => {
  const n = makeNode();
  n.rx(n.portA, [
    pktgen().eth({ src: A.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: A.mac, spa: A.ip4, tpa: '192.0.2.7' }).build(),
    pktgen().eth({ src: A.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: A.mac, spa: A.ip4, tpa: A.ip4 }).build(),
    pktgen().eth({ src: A.mac, dst: A.hostMac }).arp({ op: 'reply', sha: A.mac, spa: A.ip4, tpa: ROUTER4 }).build(),
  ]);
  assert.equal(n.devA.frames.length, 1);
  // the other two go to the stack, and there is none yet
  assert.equal(n.drops(DROP.HOST_NOT_READY), 2);
});

test('IPv4 between local endpoints: TTL decremented, MACs rewritten, checksums valid, one send per batch', () => {
  const n = makeNode();
  const frames = Array.from({ length: 200 }, (_, i) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, ttl: 64 }).tcp({ sport: 40000 + i, dport: 80, flags: 'S' }).build());
  n.rx(n.portA, frames);
  assert.equal(n.devB.sends, 1, 'one device call for the whole batch');
  const out = n.devB.take();
  assert.equal(out.length, 200);
  const f = out[7]!;
  const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.ok(ip.checkLen(), 'forwarded IPv4 header is well formed');
  assert.equal(ip.ttl(), 63);
  assert.ok(ip.verifyChecksum(), 'IPv4 header checksum (incremental) is valid');
  assert.ok(w.l4CsumOk4(f, ip.payloadOffset(), ip.payloadLen(), w.IPPROTO_TCP, ip.src(), ip.dst()), 'TCP checksum untouched and valid');
  assert.equal(w.formatMac(f, 0), B.mac);
  assert.equal(w.formatMac(f, 6), B.hostMac);
  assert.equal(n.dp.metrics.snapshot().forwards[0]!.count, 200);
});

test('a TSO super-frame with a partial checksum crosses unchanged but for TTL and MACs', () => {
  const n = makeNode();
  const frame = pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, ttl: 64, df: true }).tcp({ sport: 5000, dport: 5201, flags: 'A' }).payload(60000).vnet({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: w.VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 }).build();
  const vnet = frame.subarray(0, 10);
  const eth = frame.subarray(10);
  n.rx(n.portA, [eth.slice()], [vnet.slice()]);
  const [out] = n.devB.frames;
  assert.ok(out, 'super-frame forwarded to B');
  assert.equal(out.length, eth.length);
  assert.deepEqual(n.devB.vnet[0], vnet, 'virtio-net header travels with the frame');
  // TCP header and its partial pseudo-header sum are byte-identical
  assert.deepEqual(out.subarray(34, 54), eth.subarray(34, 54));
  assert.ok(new w.Ipv4View().bind(out, 14, out.length - 14).verifyChecksum());
});

test('IPv6 between local endpoints: hop limit decremented, MACs rewritten', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6, hopLimit: 64 }).udp({ sport: 1, dport: 2 }).payload(16).build()]);
  const [f] = n.devB.take();
  assert.ok(f, 'a frame came out');
  const ip = new w.Ipv6View().bind(f, 14, f.length - 14);
  assert.equal(ip.hopLimit(), 63);
  assert.equal(w.formatMac(f, 0), B.mac);
  assert.ok(w.l4CsumOk6(f, 54, f.length - 54, w.IPPROTO_UDP, ip.srcOff(), ip.dstOff()));
});

test('spoofed source, TTL expiry, malformed and unknown-L3 frames are dropped with Cilium reasons', () => {
  const n = makeNode();
  n.rx(n.portA, [
    pktgen().eth(ethA).ipv4({ src: '10.0.0.99', dst: B.ip4 }).udp().build(),
    pktgen().eth(ethA).ipv6({ src: 'fd00::99', dst: B.ip6 }).udp().build(),
    pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, ttl: 1 }).udp().build(),
    pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6, hopLimit: 1 }).udp().build(),
    pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, ihl: 3 }).udp().build(),
    pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, totalLen: 9999 }).udp().build(),
    pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6, payloadLen: 4000 }).udp().build(),
    pktgen().eth(ethA).build().subarray(0, 9),
    pktgen().eth({ ...ethA, type: 0x88b5 }).payload(40).build(),
  ]);
  assert.equal(n.devB.frames.length + n.devA.frames.length, 0, 'nothing forwarded');
  assert.equal(n.drops(DROP.INVALID_SIP), 2);
  assert.equal(n.drops(DROP.TTL_EXCEEDED), 2);
  assert.equal(n.drops(DROP.INVALID), 4);
  assert.equal(n.drops(DROP.UNKNOWN_L3), 1);
  const d = n.dp.metrics.snapshot().drops.find((x) => x.reason === 132)!;
  assert.equal(d.direction, 'EGRESS');
  assert.equal(d.reasonString, 'Invalid source ip');
});

test('a malformed IPv6 extension-header chain is dropped as INVALID_EXTHDR (156)', () => {
  const n = makeNode();
  const f = pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6 }).ipv6Ext({ type: 60 }).ipv6Ext({ type: 60 }).ipv6Ext({ type: 60 }).ipv6Ext({ type: 60 }).udp().build();
  n.rx(n.portA, [f]);
  assert.equal(n.drops(DROP.INVALID_EXTHDR), 1);
});

test('NS for the router gets an NA (R|S) from the router IP with the host-side MAC as target link-layer address', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth({ src: A.mac, dst: '33:33:ff:00:00:01' }).ipv6({ src: A.ip6, dst: 'ff02::1:ff00:1' }).ndpNs({ target: ROUTER6, sllao: A.mac }).build()]);
  const [f] = n.devA.take();
  assert.ok(f, 'a frame came out');
  const ip = new w.Ipv6View().bind(f, 14, f.length - 14);
  const icmp = new w.Icmp6View().bind(f, 54, ip.payloadLen());
  assert.equal(icmp.type(), w.NDISC_NEIGHBOUR_ADVERTISEMENT);
  assert.equal(icmp.naFlags(), w.NDP_NA_ROUTER | w.NDP_NA_SOLICITED);
  assert.equal(w.formatIpv6(f, icmp.targetOff()), ROUTER6);
  assert.equal(w.formatIpv6(f, ip.srcOff()), ROUTER6);
  assert.equal(w.formatIpv6(f, ip.dstOff()), A.ip6);
  assert.equal(ip.hopLimit(), 255);
  assert.ok(icmp.verifyChecksum(ip.srcOff(), ip.dstOff()));
  const ll = w.ndpFindLlAddr(f, icmp.ndpOptionsOffset(), 54 + ip.payloadLen(), w.ND_OPT_TARGET_LL_ADDR);
  assert.equal(w.formatMac(f, ll), A.hostMac);
  assert.equal(w.formatMac(f, 0), A.mac);
});

test('NS for another local endpoint gets S|O; unknown targets are dropped (150)', () => {
  const n = makeNode();
  const ns = (t: string) => pktgen().eth({ src: A.mac, dst: '33:33:ff:00:00:11' }).ipv6({ src: A.ip6, dst: 'ff02::1:ff00:11' }).ndpNs({ target: t, sllao: A.mac }).build();
  n.rx(n.portA, [ns(B.ip6), ns('fd00::77'), ns(A.ip6)]);
  const out = n.devA.take();
  assert.equal(out.length, 1);
  const icmp = new w.Icmp6View().bind(out[0]!, 54, 32);
  assert.equal(icmp.naFlags(), w.NDP_NA_SOLICITED | w.NDP_NA_OVERRIDE);
  assert.equal(n.drops(DROP.UNKNOWN_TARGET), 2);
});

test('the router IPv6 address answers echo requests', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv6({ src: A.ip6, dst: ROUTER6 }).icmp6Echo({ id: 7, seq: 1 }).payload(32).build()]);
  const [f] = n.devA.take();
  assert.ok(f, 'a frame came out');
  const ip = new w.Ipv6View().bind(f, 14, f.length - 14);
  const icmp = new w.Icmp6View().bind(f, 54, ip.payloadLen());
  assert.equal(icmp.type(), w.ICMPV6_ECHO_REPLY);
  assert.equal(icmp.echoIdent(), 7);
  assert.equal(w.formatIpv6(f, ip.srcOff()), ROUTER6);
  assert.ok(icmp.verifyChecksum(ip.srcOff(), ip.dstOff()));
});

test('traffic to an address outside the node goes to the stack (none yet: 202)', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: '192.0.2.1' }).udp().build()]);
  assert.equal(n.drops(DROP.HOST_NOT_READY), 1);
});

test('a missing tail-call target drops with "Missed tail call" (140)', () => {
  const n = makeNode();
  n.dp.progs.delete(CALL.IPV4_TO_ENDPOINT);
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).udp().build()]);
  assert.equal(n.drops(DROP.MISSED_TAIL_CALL), 1);
});

test('to-container delivers a frame to the endpoint named in its metadata', () => {
  const n = makeNode();
  const host = n.dp.engine.addPort({ name: 'host', kind: 'host', device: n.devA, ingress: n.dp.programs.toContainer });
  const b = n.dp.batch;
  b.load([pktgen().eth({ src: '02:00:00:00:09:09', dst: B.mac }).ipv4({ src: '192.0.2.1', dst: B.ip4 }).udp().build(), pktgen().eth({ dst: B.mac }).ipv4({ dst: B.ip4 }).udp().build()], host, 0);
  b.meta[0 * META_SLOTS + CB.DST_ENDPOINT_ID] = B.id;
  b.meta[1 * META_SLOTS + CB.DST_ENDPOINT_ID] = 99;
  n.dp.engine.process(b);
  assert.equal(n.devB.frames.length, 1);
  assert.equal(n.drops(DROP.NO_LXC), 1);
});

test('a removed endpoint is no longer reachable and its frames are not delivered', () => {
  const n = makeNode();
  n.dp.removeEndpoint(B.id);
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).udp().build()]);
  assert.equal(n.devB.frames.length, 0);
  assert.equal(n.drops(DROP.HOST_NOT_READY), 1, 'no longer a local endpoint: handed to the stack');
});

test('a node without IPv6 drops IPv6 frames as "Unsupported L3 protocol" (139)', () => {
  const n = makeNode();
  (n.dp.cfg as { routerIPv6: Uint8Array | null }).routerIPv6 = null;
  n.rx(n.portA, [pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6 }).udp().build()]);
  assert.equal(n.drops(DROP.UNKNOWN_L3), 1);
  assert.equal(n.devB.frames.length, 0);
});

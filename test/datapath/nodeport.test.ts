/**
 * NodePort from outside, packet in / packet out, over two nodes in one
 * process (two-nodes.ts): the outside client 10.99.0.100 sits behind the
 * gateway; node A is the node the client reaches (A's address, NodePort
 * 30080), pod b on node B is the backend (10.0.2.20:80). SNAT, DSR with the
 * IPv4 option and with the Geneve option, hybrid, a local backend, the
 * refusals (174, 177, no backend), the XDP prefilter and acceleration, the
 * MTU rule, LoadBalancer IP ARP, and the DSR byte layouts of facts §4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { ID } from '../../src/datapath/lib/identity.ts';
import { SVC_F } from '../../src/datapath/lib/lb-map.ts';
import { LB_MODE, FWD_MODE } from '../../src/datapath/lib/nodeport.ts';
import { DsrInfo, dsrOptFind4, geneveReadOpts, genevePutDsrOpt4 } from '../../src/datapath/lib/dsr.ts';
import { XDP } from '../../src/engine/verdict.ts';
import { CaptureHub } from '../../src/datapath/capture.ts';
import { formatEvent, type DropEvent } from '../../src/datapath/lib/events.ts';
import type { DatapathConfig } from '../../src/datapath/datapath.ts';
import { ip, GW, OUTSIDE, A, B, makeNode, wire, ipOf, type Node } from './two-nodes.ts';

const NODEPORT = 30080;
const CLIENT_PORT = 40000;

/** Tell node n the MAC of `addr` (as if it had resolved it). */
function learn(n: Node, addr: string, mac: string): void {
  n.dp.neigh.learn(ip(addr), w.parseMac(mac), 0, 0);
}

interface SvcOpts { backend?: string; flags?: number; fwdMode?: number; ranges?: [string, number][]; vip?: string; port?: number; none?: boolean }

/** The NodePort service on node n: frontend vip:port → backend:80. */
function service(n: Node, o: SvcOpts = {}): void {
  n.dp.services.upsert({
    revNat: 1, vip: ip(o.vip ?? n.spec.ip), port: o.port ?? NODEPORT, flags: o.flags ?? (SVC_F.NODEPORT | SVC_F.ROUTABLE), algorithm: 'random',
    backends: o.none ? [] : [{ id: 1, ip: ip(o.backend ?? B.pod.ip4), port: 80, weight: 100, state: 'active', name: 'b' }],
    ...(o.fwdMode !== undefined ? { fwdMode: o.fwdMode } : {}),
    ...(o.ranges ? { sourceRanges: o.ranges.map(([a, l]): [number, number] => [ip(a), l]) } : {}),
  });
}

/** Nodes A and B with the service on A, each knowing the other's and the gateway's MAC. */
function cluster(cfg: Partial<DatapathConfig> = {}, o: { tunnelProtocol?: 'vxlan' | 'geneve'; routingMode?: 'tunnel' | 'native'; svc?: SvcOpts } = {}) {
  const opts = { cfg, ...(o.tunnelProtocol ? { tunnelProtocol: o.tunnelProtocol } : {}), ...(o.routingMode ? { routingMode: o.routingMode } : {}) };
  const a = makeNode(A, B, opts);
  const b = makeNode(B, A, opts);
  for (const [n, peer] of [[a, B], [b, A]] as const) {
    learn(n, peer.ip, peer.mac);
    learn(n, GW.ip, GW.mac);
  }
  service(a, o.svc);
  return { a, b };
}

/** A client frame from outside (through the gateway) to node A's `dst`:`dport`. */
function fromOutside(o: { dst?: string; dport?: number; flags?: string; udp?: boolean; payload?: number; df?: boolean; src?: string } = {}): Uint8Array {
  const g = pktgen().eth({ src: GW.mac, dst: A.mac }).ipv4({ src: o.src ?? OUTSIDE, dst: o.dst ?? A.ip, df: o.df ?? true });
  const l4 = o.udp ? g.udp({ sport: CLIENT_PORT, dport: o.dport ?? NODEPORT }) : g.tcp({ sport: CLIENT_PORT, dport: o.dport ?? NODEPORT, flags: o.flags ?? 'S', seq: 1 });
  return l4.payload(o.payload ?? 16).build();
}

/** A reply of pod b (10.0.2.20:80) to `to`:`port`, into B's from-container. */
function fromPodB(to: string, port: number, o: { udp?: boolean; flags?: string } = {}): Uint8Array {
  const g = pktgen().eth({ src: B.pod.mac, dst: B.pod.hostMac }).ipv4({ src: B.pod.ip4, dst: to, df: true });
  const l4 = o.udp ? g.udp({ sport: 80, dport: port }) : g.tcp({ sport: 80, dport: port, flags: o.flags ?? 'SA', seq: 9, ack: 2 });
  return l4.payload(8).build();
}

/** L4 ports and checksum validity of an Ethernet/IPv4 frame. */
function l4Of(f: Uint8Array): { src: string; dst: string; sport: number; dport: number; csumOk: boolean; proto: number } {
  const v = ipOf(f);
  const p = v.payloadOffset();
  return {
    src: w.formatIpv4(v.src()), dst: w.formatIpv4(v.dst()), sport: w.get16(f, p), dport: w.get16(f, p + 2), proto: v.protocol(),
    csumOk: w.l4CsumOk4(f, p, v.payloadLen(), v.protocol(), v.src(), v.dst()),
  };
}

test('DSR byte layouts (facts §4): IPv4 option 0x9A len 8 with byte-reversed port and address; Geneve TLV 0x014B/0x81', () => {
  // Push the option into a real frame and read the wire bytes.
  const { a } = cluster({ lbMode: LB_MODE.DSR });
  a.rx(a.upPort, [fromOutside()], 0);
  const [enc] = a.up.take();
  assert.ok(enc, 'forwarded to node B');
  const inner = enc.subarray(50);
  const v = ipOf(inner);
  assert.equal(v.ihl(), 7, 'ihl grew by 2 words');
  assert.deepEqual([...inner.subarray(34, 42)], [0x9a, 0x08, 0x80, 0x75, 0x01, 0x01, 0xa8, 0xc0],
    'type, length, port 30080 and address 192.168.1.1 as Cilium sends them from a little-endian host');
  const info = new DsrInfo();
  assert.ok(dsrOptFind4(inner, 14, info));
  assert.equal(info.port, NODEPORT);
  assert.equal(w.formatIpv4(info.addr), A.ip);
  assert.equal(v.totalLen(), inner.length - 14, 'tot_len covers the option');

  const tlv = new Uint8Array(12);
  genevePutDsrOpt4(tlv, 0, ip('10.99.0.11'), NODEPORT);
  assert.deepEqual([...tlv], [0x01, 0x4b, 0x81, 0x02, 0x0a, 0x63, 0x00, 0x0b, 0x75, 0x80, 0x00, 0x00]);
  const back = new DsrInfo();
  assert.equal(geneveReadOpts(tlv, 0, 12, back), 0);
  assert.equal(back.port, NODEPORT);
  assert.equal(w.formatIpv4(back.addr), '10.99.0.11');
  // An unknown critical option is refused; an unknown non-critical one skipped.
  assert.equal(geneveReadOpts(Uint8Array.of(0x01, 0x02, 0x85, 0x00), 0, 4, back), DROP.INVALID_GENEVE_OPTION);
  assert.equal(geneveReadOpts(Uint8Array.of(0x01, 0x02, 0x05, 0x00), 0, 4, back), 0);
});

test('SNAT mode: DNAT + SNAT to the node address through the tunnel; the reply comes back through A and leaves as A:30080', () => {
  const { a, b } = cluster();
  a.rx(a.upPort, [fromOutside()], 0);
  const [enc, ...more] = a.up.take();
  assert.ok(enc && more.length === 0);
  assert.equal(w.get32(enc, 46) >>> 8, 6, 'VNI: the node (the source is its address now)');
  const fwd = l4Of(enc.subarray(50));
  assert.deepEqual([fwd.src, fwd.dst, fwd.dport], [A.ip, B.pod.ip4, 80]);
  assert.ok(fwd.csumOk, 'TCP checksum valid after DNAT and SNAT');
  b.rx(b.upPort, [enc], 1);
  const [got] = b.pod.take();
  assert.ok(got, 'delivered to pod b');
  assert.equal(l4Of(got).src, A.ip, 'the backend sees the node address');

  b.rx(b.podPort, [fromPodB(A.ip, fwd.sport)], 2);
  const [back] = b.up.take();
  assert.ok(back, 'reply tunnelled back to A');
  assert.equal(w.formatIpv4(ipOf(back).dst()), A.ip);
  a.rx(a.upPort, [back], 3);
  const [out, ...rest] = a.up.take();
  assert.ok(out && rest.length === 0, 'A sends the reply to the client');
  assert.equal(w.formatMac(out, 0), GW.mac);
  const r = l4Of(out);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport], [A.ip, NODEPORT, OUTSIDE, CLIENT_PORT]);
  assert.ok(r.csumOk);
  assert.equal(a.dp.nodePort.count.snat, 1);
  assert.equal(a.dp.nodePort.count.rev, 1);
});

test('SNAT mode, native routing: the same without a tunnel, replies reverse-translated in from-netdev', () => {
  const { a, b } = cluster({}, { routingMode: 'native' });
  a.rx(a.upPort, [fromOutside()], 0);
  const [fwd] = a.up.take();
  assert.ok(fwd);
  const f = l4Of(fwd);
  assert.deepEqual([f.src, f.dst, f.dport, w.formatMac(fwd, 0)], [A.ip, B.pod.ip4, 80, B.mac]);
  b.rx(b.upPort, [fwd], 1);
  assert.equal(b.pod.take().length, 1);
  b.rx(b.podPort, [fromPodB(A.ip, f.sport)], 2);
  wire(b, a, 3);
  const [out] = a.up.take();
  assert.ok(out);
  const r = l4Of(out);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport], [A.ip, NODEPORT, OUTSIDE, CLIENT_PORT]);
});

test('DSR (IPv4 option): the backend node records the service and its replies leave straight to the client as A:30080', () => {
  const { a, b } = cluster({ lbMode: LB_MODE.DSR });
  a.rx(a.upPort, [fromOutside()], 0);
  const [enc] = a.up.take();
  assert.ok(enc);
  assert.equal(w.get32(enc, 46) >>> 8, ID.WORLD, 'VNI: the client\'s identity (world), not the node\'s');
  const fwd = l4Of(enc.subarray(50));
  assert.deepEqual([fwd.src, fwd.sport, fwd.dst, fwd.dport], [OUTSIDE, CLIENT_PORT, B.pod.ip4, 80], 'client address and port kept');
  assert.ok(fwd.csumOk);
  b.rx(b.upPort, [enc], 1);
  const [got] = b.pod.take();
  assert.ok(got, 'delivered with the option (the pod ignores it)');
  assert.equal(b.dp.nodePort.count.dsrIngress, 1);

  b.rx(b.podPort, [fromPodB(OUTSIDE, CLIENT_PORT)], 2);
  const [out, ...rest] = b.up.take();
  assert.ok(out && rest.length === 0);
  assert.equal(w.formatMac(out, 0), GW.mac, 'to the gateway, not to node A');
  assert.notEqual(w.get16(out, 12 + 2 + 9 + 12), 8472);
  const r = l4Of(out);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport], [A.ip, NODEPORT, OUTSIDE, CLIENT_PORT], 'source = the service the client asked for');
  assert.ok(r.csumOk);
  assert.equal(a.up.take().length, 0, 'nothing for node A');

  // Later client packets carry no option; the flow still works both ways.
  a.rx(a.upPort, [fromOutside({ flags: 'A' })], 3);
  const [enc2] = a.up.take();
  assert.ok(enc2);
  assert.equal(ipOf(enc2.subarray(50)).ihl(), 5, 'no option after the SYN');
  b.rx(b.upPort, [enc2], 4);
  assert.equal(b.pod.take().length, 1);
  b.rx(b.podPort, [fromPodB(OUTSIDE, CLIENT_PORT, { flags: 'A' })], 5);
  const [out2] = b.up.take();
  assert.ok(out2);
  assert.equal(l4Of(out2).src, A.ip);
});

test('DSR (Geneve option): the service rides in the tunnel header, the inner packet is untouched', () => {
  const { a, b } = cluster({ lbMode: LB_MODE.DSR, dsrDispatch: 'geneve' }, { tunnelProtocol: 'geneve' });
  a.rx(a.upPort, [fromOutside()], 0);
  const [enc] = a.up.take();
  assert.ok(enc);
  assert.equal(w.get16(enc, 36), 6081);
  assert.equal(enc[42]! & 0x3f, 3, 'options: 3 words');
  assert.equal(enc[43]! & 0x40, 0x40, 'critical options present');
  assert.deepEqual([...enc.subarray(50, 62)], [0x01, 0x4b, 0x81, 0x02, 192, 168, 1, 1, 0x75, 0x80, 0, 0]);
  const inner = enc.subarray(62);
  assert.equal(ipOf(inner).ihl(), 5, 'no IPv4 option');
  b.rx(b.upPort, [enc], 1);
  assert.equal(b.pod.take().length, 1);
  b.rx(b.podPort, [fromPodB(OUTSIDE, CLIENT_PORT)], 2);
  const [out] = b.up.take();
  assert.ok(out);
  const r = l4Of(out);
  assert.deepEqual([r.src, r.sport, w.formatMac(out, 0)], [A.ip, NODEPORT, GW.mac]);
});

test('hybrid mode: DSR for TCP, SNAT for UDP; a service can ask for its own mode', () => {
  const { a } = cluster({ lbMode: LB_MODE.HYBRID });
  a.rx(a.upPort, [fromOutside()], 0);
  a.rx(a.upPort, [fromOutside({ udp: true })], 0);
  const [tcp, udp] = a.up.take();
  assert.equal(l4Of(tcp!.subarray(50)).src, OUTSIDE, 'TCP: DSR');
  assert.equal(l4Of(udp!.subarray(50)).src, A.ip, 'UDP: SNAT');
  assert.ok(dsrOptFind4(tcp!.subarray(50), 14, new DsrInfo()));

  const { a: a2 } = cluster({ lbMode: LB_MODE.SNAT }, { svc: { fwdMode: FWD_MODE.DSR } });
  a2.rx(a2.upPort, [fromOutside({ udp: true })], 0);
  const [u] = a2.up.take();
  const inner = u!.subarray(50);
  assert.equal(l4Of(inner).src, OUTSIDE, 'the service\'s DSR beats the node\'s SNAT');
  assert.ok(dsrOptFind4(inner, 14, new DsrInfo()), 'UDP carries the option on every packet');
});

test('a local backend: delivered with the client address; the reply leaves as the NodePort, not masqueraded', () => {
  const { a } = cluster({ masquerade: true }, { svc: { backend: A.pod.ip4 } });
  a.rx(a.upPort, [fromOutside()], 0);
  const [got] = a.pod.take();
  assert.ok(got, 'delivered to pod a');
  const d = l4Of(got);
  assert.deepEqual([d.src, d.dst, d.dport], [OUTSIDE, A.pod.ip4, 80], 'client source preserved');
  const reply = pktgen().eth({ src: A.pod.mac, dst: A.pod.hostMac }).ipv4({ src: A.pod.ip4, dst: OUTSIDE }).tcp({ sport: 80, dport: CLIENT_PORT, flags: 'SA' }).payload(4).build();
  a.rx(a.podPort, [reply], 1);
  const [out] = a.up.take();
  assert.ok(out);
  const r = l4Of(out);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport], [A.ip, NODEPORT, OUTSIDE, CLIENT_PORT]);
  assert.ok(r.csumOk);
});

test('refusals: a ClusterIP from outside (174), a client outside the source ranges (177), no backend (ICMP port unreachable)', () => {
  const { a } = cluster({}, { svc: { vip: '10.96.0.10', port: 80, flags: 0 } });
  a.rx(a.upPort, [fromOutside({ dst: '10.96.0.10', dport: 80 })], 0);
  assert.equal(a.drops(DROP.IS_CLUSTER_IP), 1);

  const { a: a2 } = cluster({}, { svc: { vip: '10.99.0.50', port: 80, flags: SVC_F.LOADBALANCER | SVC_F.ROUTABLE | SVC_F.SOURCE_RANGE, ranges: [['10.99.0.100', 32]] } });
  a2.rx(a2.upPort, [fromOutside({ dst: '10.99.0.50', dport: 80, src: '10.99.0.101' })], 0);
  assert.equal(a2.drops(DROP.NOT_IN_SRC_RANGE), 1);
  a2.rx(a2.upPort, [fromOutside({ dst: '10.99.0.50', dport: 80 })], 1);
  assert.equal(a2.up.take().length, 1, 'the allowed client gets through');

  const { a: a3 } = cluster({}, { svc: { none: true } });
  a3.rx(a3.upPort, [fromOutside()], 0);
  const [icmp] = a3.up.take();
  assert.ok(icmp);
  const v = ipOf(icmp);
  assert.equal(v.protocol(), w.IPPROTO_ICMP);
  assert.deepEqual([w.formatIpv4(v.src()), icmp[v.payloadOffset()], icmp[v.payloadOffset() + 1]], [A.ip, 3, 3], 'port unreachable from the frontend');
});

test('MTU: a DSR UDP packet that no longer fits with the option gets fragmentation needed with MTU - 8 (before any translation)', () => {
  const { a } = cluster({ lbMode: LB_MODE.DSR });
  // Tunnel inner MTU 1450; the option needs 8 more: 1443 bytes of IP do not fit.
  a.rx(a.upPort, [fromOutside({ udp: true, payload: 1443 - 28 })], 0);
  const [icmp] = a.up.take();
  assert.ok(icmp);
  const v = ipOf(icmp);
  const p = v.payloadOffset();
  assert.deepEqual([icmp[p], icmp[p + 1], w.get16(icmp, p + 6)], [3, 4, 1442]);
  const quoted = new w.Ipv4View().bind(icmp, p + 8, icmp.length - p - 8);
  assert.equal(w.formatIpv4(quoted.dst()), A.ip, 'quotes the packet as the client sent it');
  a.rx(a.upPort, [fromOutside({ udp: true, payload: 1442 - 28 })], 1);
  assert.equal(ipOf(a.up.take()[0]!.subarray(50)).totalLen(), 1450, 'one byte less fits exactly');
});

test('XDP stage: the prefilter drops deny-listed sources first; acceleration answers NodePort with XDP_TX', () => {
  const { a } = cluster({ xdpAcceleration: true });
  a.dp.prefilter.update(['10.99.0.0/24']);
  a.rx(a.upPort, [fromOutside()], 0);
  const port = a.dp.engine.ports[a.upPort]!;
  assert.equal(port.xdpVerdicts[XDP.DROP], 1);
  assert.equal(a.dp.prefilter.hits, 1);
  assert.equal(a.up.take().length, 0);
  assert.equal(a.dp.nodePort.count.snat, 0, 'never reached the NodePort code');

  a.dp.prefilter.delete(['10.99.0.0/24']);
  a.rx(a.upPort, [fromOutside()], 1);
  assert.equal(port.xdpVerdicts[XDP.TX], 1, 'translated and sent back out in the XDP stage');
  assert.equal(a.up.take().length, 1);
  assert.throws(() => a.dp.prefilter.update(['10.0.0.0/33']), /cidr: "10.0.0.0\/33"/);
  assert.throws(() => a.dp.prefilter.update(['1.2.3.0/24'], 1), /revision: 1 is not the current revision 3/);
});

test('LoadBalancer IP: the node answers ARP for the addresses it announces', () => {
  const { a } = cluster({}, { svc: { vip: '10.99.0.50', port: 80, flags: SVC_F.LOADBALANCER | SVC_F.ROUTABLE } });
  const req = pktgen().eth({ src: GW.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: GW.mac, spa: GW.ip, tpa: '10.99.0.50' }).build();
  a.rx(a.upPort, [req], 0);
  assert.equal(a.up.take().length, 0, 'not announced: silent');
  a.dp.announced.add(ip('10.99.0.50'));
  a.rx(a.upPort, [req], 1);
  const [rep] = a.up.take();
  assert.ok(rep);
  const arp = new w.ArpView().bind(rep, 14, rep.length - 14);
  assert.equal(w.formatIpv4(arp.spa()), '10.99.0.50');
  assert.equal(w.formatMac(rep, arp.shaOff()), A.mac);
  a.rx(a.upPort, [fromOutside({ dst: '10.99.0.50', dport: 80 })], 2);
  assert.equal(l4Of(a.up.take()[0]!.subarray(50)).dst, B.pod.ip4, 'and load-balances what arrives for it');
});

test('capture at the xdp hook: every frame with the XDP verdict; from-netdev shows the prefilter drop too', () => {
  const { a } = cluster({ xdpAcceleration: true });
  const hub = new CaptureHub(a.dp, (now) => now);
  const id = hub.start({ hooks: ['xdp', 'from-netdev'], count: 10 }, 0);
  a.dp.prefilter.update(['10.99.0.0/24']);
  a.rx(a.upPort, [fromOutside()], 0);
  a.dp.prefilter.delete(['10.99.0.0/24']);
  a.rx(a.upPort, [fromOutside(), fromOutside({ dst: A.ip, dport: 22 })], 1);
  assert.deepEqual(hub.read(id, 0).records.map((r) => [r.hook, r.comment]), [
    ['xdp', 'verdict: XDP_DROP'],
    ['from-netdev', 'verdict: dropped (XDP_DROP)'],
    ['xdp', 'verdict: XDP_TX'],
    ['xdp', 'verdict: XDP_PASS'],
    ['from-netdev', 'verdict: forwarded'],
    ['from-netdev', 'verdict: forwarded'],
  ]);
});

test('drop events name the program that dropped: the XDP stage with acceleration, from-netdev without; to-container for the pod\'s stage', () => {
  const hookOf = (n: Node) => n.dp.events.read(0).events.filter((e): e is DropEvent => e.type === 'drop').map((e) => [e.hook, formatEvent(e).match(/file (\S+):/)?.[1]]);
  const clusterIp = { svc: { vip: '10.96.0.10', port: 80, flags: 0 } };
  const { a } = cluster({ xdpAcceleration: true }, clusterIp);
  a.dp.events.enabled = true;
  a.rx(a.upPort, [fromOutside({ dst: '10.96.0.10', dport: 80 })], 0);
  assert.deepEqual(hookOf(a), [['xdp', 'bpf_xdp.c']]);
  const { a: a2 } = cluster({}, clusterIp);
  a2.dp.events.enabled = true;
  a2.rx(a2.upPort, [fromOutside({ dst: '10.96.0.10', dport: 80 })], 0);
  assert.deepEqual(hookOf(a2), [['from-netdev', 'bpf_host.c']]);
  a2.rx(a2.podPort, [pktgen().eth({ src: A.pod.mac, dst: A.pod.hostMac }).ipv4({ src: '10.0.1.99', dst: OUTSIDE }).udp({ dport: 53 }).build()], 1);
  assert.deepEqual(hookOf(a2)[1], ['from-container', 'bpf_lxc.c']);
});

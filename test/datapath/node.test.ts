/**
 * Two nodes in one process (fixture: two-nodes.ts): tunnel, native routing,
 * masquerade, ARP, MTU, from-host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { ID } from '../../src/datapath/lib/identity.ts';
import { ip, HOST_MAC, HOST_KERNEL_MAC, GW, OUTSIDE, A, B, makeNode, wire, podFrame, arpReq, arpReply, assertArpRequest, ipOf, tunnelPair, type NodeSpec } from './two-nodes.ts';

test('tunnel: pod a -> pod b waits for ARP, then leaves in VXLAN with the pod identity and reaches pod b', () => {
  const { a, b } = tunnelPair();
  const sent = podFrame(A, B.pod.ip4);
  a.rx(a.podPort, [sent], 0);
  const [req, ...more] = a.up.take();
  assertArpRequest(req, A, B.ip);
  assert.equal(more.length, 0, 'only the ARP request: the pod frame is held');
  assert.equal(a.dp.neigh.unresolved, 1);

  // B answers the request (from-netdev), and its reply goes back to A.
  b.rx(b.upPort, [req!], 0);
  const [reply] = b.up.take();
  assert.ok(reply, 'B answered the ARP request for its address');
  a.rx(a.upPort, [reply], 5);
  const [enc, ...rest] = a.up.take();
  assert.ok(enc, 'the held frame left once B resolved');
  assert.equal(rest.length, 0);
  assert.equal(w.formatMac(enc, 0), B.mac, 'outer destination: B\'s uplink MAC');
  assert.equal(w.formatMac(enc, 6), A.mac);
  const outer = ipOf(enc);
  assert.equal(w.formatIpv4(outer.src()), A.ip);
  assert.equal(w.formatIpv4(outer.dst()), B.ip);
  assert.equal(w.get16(enc, 36), 8472);
  assert.equal(w.get32(enc, 46) >>> 8, A.pod.identity, 'VNI = identity of pod a');
  assert.equal(w.get32(enc, 46) & 0xff, 0);
  const inner = enc.subarray(50);
  assert.deepEqual(inner, sent, 'the inner frame is the pod\'s frame, TTL untouched');
  assert.equal(a.pod.frames.length + a.host.frames.length, 0);

  // The underlay carries it to B: decapsulated and delivered to pod b.
  b.rx(b.upPort, [enc], 10);
  const [got] = b.pod.take();
  assert.ok(got, 'delivered out of B\'s endpoint device');
  assert.equal(w.formatMac(got, 0), B.pod.mac);
  assert.equal(w.formatMac(got, 6), B.pod.hostMac);
  const v = ipOf(got);
  assert.equal(v.ttl(), 63, 'TTL decremented once, at delivery');
  assert.equal(w.formatIpv4(v.src()), A.pod.ip4);
  assert.ok(w.l4CsumOk4(got, v.payloadOffset(), v.payloadLen(), w.IPPROTO_TCP, v.src(), v.dst()), 'TCP checksum valid');
  assert.deepEqual(got.subarray(34), sent.subarray(34), 'TCP segment unchanged');
  assert.deepEqual(b.delivered, [A.pod.identity], 'B delivers with the identity from the VNI');
  assert.equal(b.host.frames.length, 0);
});

test('tunnel: the reply needs no ARP (B learnt A from its request) and comes back to pod a', () => {
  const { a, b } = tunnelPair();
  a.rx(a.podPort, [podFrame(A, B.pod.ip4)], 0);
  wire(a, b); // ARP request to B, which learns A
  wire(b, a); // B's reply: A's held frame goes out
  wire(a, b); // the frame itself
  assert.equal(b.pod.take().length, 1);
  const reply = pktgen().eth({ src: B.pod.mac, dst: B.pod.hostMac }).ipv4({ src: B.pod.ip4, dst: A.pod.ip4 }).tcp({ sport: 80, dport: 40000, flags: 'SA', ack: 2 }).build();
  b.rx(b.podPort, [reply], 20);
  const [enc, ...rest] = b.up.take();
  assert.ok(enc, 'B sent the reply at once');
  assert.equal(rest.length, 0, 'no ARP request first');
  assert.equal(w.formatMac(enc, 0), A.mac);
  assert.equal(w.get32(enc, 46) >>> 8, B.pod.identity);
  a.rx(a.upPort, [enc], 25);
  const [got] = a.pod.take();
  assert.ok(got, 'reply delivered to pod a');
  assert.equal(w.formatMac(got, 0), A.pod.mac);
  assert.deepEqual(a.delivered, [B.pod.identity]);
});

test('tunnel over Geneve, and IPv6 between the pods', () => {
  const { a, b } = tunnelPair({ tunnelProtocol: 'geneve' });
  const sent6 = pktgen().eth({ src: A.pod.mac, dst: A.pod.hostMac }).ipv6({ src: A.pod.ip6, dst: B.pod.ip6, hopLimit: 64 }).udp({ sport: 5000, dport: 53 }).payload(40).build();
  a.rx(a.podPort, [sent6], 0);
  wire(a, b);
  wire(b, a);
  const [enc] = a.up.frames;
  assert.ok(enc, 'Geneve frame out');
  assert.equal(w.get16(enc, 36), 6081);
  assert.deepEqual([...enc.subarray(42, 46)], [0, 0, 0x65, 0x58], 'Geneve base header, Ethernet inside');
  assert.equal(w.get32(enc, 46) >>> 8, A.pod.identity);
  wire(a, b);
  const [got] = b.pod.take();
  assert.ok(got, 'IPv6 frame delivered to pod b');
  const v = new w.Ipv6View().bind(got, 14, got.length - 14);
  assert.equal(v.hopLimit(), 63);
  assert.equal(w.formatMac(got, 0), B.pod.mac);
  assert.ok(w.l4CsumOk6(got, 54, got.length - 54, w.IPPROTO_UDP, v.srcOff(), v.dstOff()), 'UDP checksum valid');
  assert.deepEqual(b.delivered, [A.pod.identity]);
});

test('from-netdev answers ARP for the node address with the uplink MAC and ignores ARP for others', () => {
  const a = makeNode(A, B);
  const asker = { ip: '192.168.1.50', mac: '02:aa:00:00:00:50' };
  const other = { ip: '192.168.1.51', mac: '02:aa:00:00:00:51' };
  a.rx(a.upPort, [arpReq(asker, A.ip), arpReq(other, '192.168.1.77'), arpReq(other, A.router)], 0);
  const out = a.up.take();
  assert.equal(out.length, 1, 'one answer: for the node address only');
  const r = out[0]!;
  const arp = new w.ArpView().bind(r, 14, r.length - 14);
  assert.equal(w.formatMac(r, 0), asker.mac, 'sent to the asker');
  assert.equal(w.formatMac(r, 6), A.mac);
  assert.equal(arp.oper(), w.ARPOP_REPLY);
  assert.equal(w.formatMac(r, arp.shaOff()), A.mac, 'the uplink MAC');
  assert.equal(w.formatIpv4(arp.spa()), A.ip);
  assert.equal(w.formatMac(r, arp.thaOff()), asker.mac);
  assert.equal(w.formatIpv4(arp.tpa()), asker.ip);
  assert.ok(a.dp.neigh.lookup(ip(asker.ip)) >= 0, 'the asker is learnt');
  assert.equal(a.dp.neigh.lookup(ip(other.ip)), -1, 'a host asking for someone else is not');
  assert.equal(a.host.frames.length + a.pod.frames.length, 0, 'nothing reaches the stack or the pod');
  assert.equal(a.dp.metrics.snapshot().drops.length, 0, 'ignored, not dropped');
});

test('native routing: routed unencapsulated with TTL - 1 to the other node, delivered with the ipcache identity', () => {
  const a = makeNode(A, B, { routingMode: 'native' });
  const b = makeNode(B, A, { routingMode: 'native' });
  assert.equal(a.dp.tunnel, null, 'no tunnel in native mode');
  const sent = podFrame(A, B.pod.ip4);
  a.rx(a.podPort, [sent], 0);
  const [req] = a.up.take();
  assertArpRequest(req, A, B.ip);
  a.rx(a.upPort, [arpReply(B, A)], 1);
  const [f, ...rest] = a.up.take();
  assert.ok(f, 'held frame sent');
  assert.equal(rest.length, 0);
  assert.equal(f.length, sent.length, 'not encapsulated');
  assert.equal(w.formatMac(f, 0), B.mac, 'to node B\'s MAC');
  assert.equal(w.formatMac(f, 6), A.mac, 'from the uplink MAC');
  const v = ipOf(f);
  assert.equal(v.ttl(), 63, 'TTL - 1');
  assert.equal(w.formatIpv4(v.src()), A.pod.ip4, 'not masqueraded');
  assert.equal(w.formatIpv4(v.dst()), B.pod.ip4);
  b.rx(b.upPort, [f], 2);
  const [got] = b.pod.take();
  assert.ok(got, 'delivered to pod b');
  assert.equal(ipOf(got).ttl(), 62);
  assert.equal(w.formatMac(got, 0), B.pod.mac);
  assert.deepEqual(b.delivered, [A.pod.identity], 'identity from B\'s ipcache');
});

test('native routing: a frame for an address of no local pod is not taken from the wire', () => {
  const b = makeNode(B, A, { routingMode: 'native' });
  const f = pktgen().eth({ src: A.mac, dst: B.mac }).ipv4({ src: A.pod.ip4, dst: '10.0.2.99' }).udp().build();
  b.rx(b.upPort, [f], 0);
  assert.equal(b.pod.frames.length + b.host.frames.length + b.up.frames.length, 0);
});

test('masquerade: a pod frame leaving the cluster gets the node address; the reply is translated back to the pod', () => {
  const a = makeNode(A, B, { masquerade: true });
  assert.ok(a.dp.snat, 'SNAT engine created with the uplink');
  const sent = podFrame(A, OUTSIDE, { sport: 40000, dport: 80 });
  a.rx(a.podPort, [sent], 0);
  assertArpRequest(a.up.take()[0], A, GW.ip);
  a.rx(a.upPort, [arpReply(GW, A)], 1);
  const [f] = a.up.take();
  assert.ok(f, 'frame sent to the gateway');
  assert.equal(w.formatMac(f, 0), GW.mac);
  const v = ipOf(f);
  assert.equal(w.formatIpv4(v.src()), A.ip, 'source = node address');
  assert.equal(w.formatIpv4(v.dst()), OUTSIDE);
  assert.equal(v.ttl(), 63);
  assert.ok(w.l4CsumOk4(f, v.payloadOffset(), v.payloadLen(), w.IPPROTO_TCP, v.src(), v.dst()), 'TCP checksum follows the new source');
  const natPort = w.get16(f, 34);
  assert.equal(natPort, 40000, 'a source port in the NAT range is kept');

  const back = pktgen().eth({ src: GW.mac, dst: A.mac }).ipv4({ src: OUTSIDE, dst: A.ip, ttl: 50 }).tcp({ sport: 80, dport: natPort, flags: 'SA', ack: 2 }).payload(8).build();
  a.rx(a.upPort, [back], 2);
  const [got] = a.pod.take();
  assert.ok(got, 'reply delivered to the pod');
  const g = ipOf(got);
  assert.equal(w.formatIpv4(g.dst()), A.pod.ip4, 'destination translated back');
  assert.equal(w.get16(got, 36), 40000);
  assert.equal(w.formatIpv4(g.src()), OUTSIDE);
  assert.equal(w.formatMac(got, 0), A.pod.mac);
  assert.ok(w.l4CsumOk4(got, g.payloadOffset(), g.payloadLen(), w.IPPROTO_TCP, g.src(), g.dst()), 'TCP checksum valid after reverse SNAT');
  assert.deepEqual(a.delivered, [ID.WORLD], 'source identity world, from the ipcache');
  assert.equal(a.host.frames.length, 0);
});

test('masquerade: a destination in the SNAT exclusion keeps the pod source', () => {
  const a = makeNode(A, B, { masquerade: true });
  a.dp.neigh.learn(ip(GW.ip), w.parseMac(GW.mac), 0, 0);
  a.rx(a.podPort, [podFrame(A, '10.0.9.9')], 0);
  const [f] = a.up.take();
  assert.ok(f, 'routed to the gateway');
  assert.equal(w.formatMac(f, 0), GW.mac);
  assert.equal(w.formatIpv4(ipOf(f).src()), A.pod.ip4, 'not translated');
  assert.equal(a.dp.snat!.created, 0, 'no NAT mapping');
  // Without masquerade nothing is translated either.
  const plain = makeNode(A, B);
  plain.dp.neigh.learn(ip(GW.ip), w.parseMac(GW.mac), 0, 0);
  plain.rx(plain.podPort, [podFrame(A, OUTSIDE)], 0);
  assert.equal(w.formatIpv4(ipOf(plain.up.take()[0]!).src()), A.pod.ip4);
});

test('from-host: the node\'s stack reaches a local pod with identity host; its ARP for a pod is answered with Tapestry\'s MAC', () => {
  const a = makeNode(A, B);
  const f = pktgen().eth({ src: HOST_KERNEL_MAC, dst: HOST_MAC }).ipv4({ src: A.router, dst: A.pod.ip4 }).tcp({ sport: 33000, dport: 8080 }).build();
  a.rx(a.hostPort, [f], 0);
  const [got] = a.pod.take();
  assert.ok(got, 'delivered to the pod');
  assert.equal(w.formatMac(got, 0), A.pod.mac);
  assert.equal(ipOf(got).ttl(), 63);
  assert.deepEqual(a.delivered, [ID.HOST], 'identity host (1)');

  const kernel = { ip: A.router, mac: HOST_KERNEL_MAC };
  a.rx(a.hostPort, [arpReq(kernel, A.pod.ip4), arpReq(kernel, A.ip), arpReq(kernel, B.pod.ip4)], 0);
  const out = a.host.take();
  assert.equal(out.length, 2, 'answers for the local and the remote pod, none for the node\'s own address');
  for (const r of out) {
    const arp = new w.ArpView().bind(r, 14, r.length - 14);
    assert.equal(arp.oper(), w.ARPOP_REPLY);
    assert.equal(w.formatMac(r, arp.shaOff()), HOST_MAC, 'Tapestry\'s side of tapestry_host');
    assert.equal(w.formatMac(r, 0), HOST_KERNEL_MAC);
    assert.equal(w.formatMac(r, 6), HOST_MAC);
  }
  assert.deepEqual(out.map((r) => w.formatIpv4(new w.ArpView().bind(r, 14, 28).spa())), [A.pod.ip4, B.pod.ip4]);
});

test('from-host to a remote pod: encapsulated with the local node identity', () => {
  const { a, b } = tunnelPair();
  a.dp.neigh.learn(ip(B.ip), w.parseMac(B.mac), 0, 0);
  const f = pktgen().eth({ src: HOST_KERNEL_MAC, dst: HOST_MAC }).ipv4({ src: A.ip, dst: B.pod.ip4 }).tcp({ sport: 33000, dport: 8080 }).build();
  a.rx(a.hostPort, [f], 0);
  const [enc] = a.up.frames;
  assert.ok(enc, 'sent at once (neighbour known)');
  assert.equal(w.get32(enc, 46) >>> 8, ID.REMOTE_NODE, 'VNI = LOCAL_NODE_ID (remote-node, 6)');
  wire(a, b);
  assert.equal(b.pod.take().length, 1);
  assert.deepEqual(b.delivered, [ID.REMOTE_NODE]);
});

test('MTU: a DF frame too big for the tunnel gets ICMP fragmentation needed with the tunnel MTU; without DF it is dropped (136)', () => {
  const a = makeNode(A, B);
  // 1500 bytes of IP: 20 + 20 + 1460.
  const big = podFrame(A, B.pod.ip4, { df: true, payload: 1460 });
  assert.equal(big.length - 14, 1500);
  a.rx(a.podPort, [big], 0);
  const [icmp] = a.pod.take();
  assert.ok(icmp, 'an ICMP error went back to the pod');
  assert.equal(a.up.frames.length, 0, 'nothing on the uplink, not even ARP');
  assert.equal(w.formatMac(icmp, 0), A.pod.mac);
  assert.equal(w.formatMac(icmp, 6), A.pod.hostMac);
  const v = ipOf(icmp);
  assert.equal(v.protocol(), w.IPPROTO_ICMP);
  assert.equal(w.formatIpv4(v.src()), A.router, 'from the pod\'s router');
  assert.equal(w.formatIpv4(v.dst()), A.pod.ip4);
  const ic = v.payloadOffset();
  assert.equal(icmp[ic], 3, 'destination unreachable');
  assert.equal(icmp[ic + 1], 4, 'fragmentation needed');
  assert.equal(w.get16(icmp, ic + 6), 1450, 'next-hop MTU = uplink MTU - 50');
  assert.equal(w.finish(w.sum16(icmp, ic, v.payloadLen())), 0, 'ICMP checksum valid');
  assert.deepEqual(icmp.subarray(ic + 8, ic + 28), big.subarray(14, 34), 'quotes the original IPv4 header');

  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { df: false, payload: 1460 })], 0);
  assert.equal(a.drops(DROP.FRAG_NEEDED), 1, 'dropped as fragmentation needed');
  assert.equal(a.pod.frames.length + a.up.frames.length, 0);

  // Exactly the tunnel MTU fits.
  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { df: true, payload: 1410 })], 0);
  assertArpRequest(a.up.take()[0], A, B.ip);
  assert.equal(a.pod.frames.length, 0);
});

test('MTU: a smaller uplink MTU lowers the tunnel MTU announced', () => {
  const a = makeNode(A, B, { uplinkMtu: 1400 });
  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { df: true, payload: 1400 })], 0);
  const [icmp] = a.pod.take();
  assert.ok(icmp, 'ICMP error sent');
  assert.equal(w.get16(icmp, 34 + 6), 1350);
});

test('to the stack: frames for the node that are not Tapestry\'s reach tapestry_host addressed to its kernel MAC', () => {
  const { a, b } = tunnelPair();
  // A TCP segment from the underlay to the node's address (say ssh).
  const ssh = pktgen().eth({ src: B.mac, dst: A.mac }).ipv4({ src: B.ip, dst: A.ip }).tcp({ sport: 50000, dport: 22 }).build();
  // A tunnel packet whose inner destination is no pod of A's: the stack's business.
  b.dp.neigh.learn(ip(A.ip), w.parseMac(A.mac), 0, 0);
  b.rx(b.hostPort, [pktgen().eth({ src: HOST_KERNEL_MAC, dst: HOST_MAC }).ipv4({ src: B.ip, dst: A.pod.ip4 }).udp().build()], 0);
  const [enc] = b.up.take();
  assert.ok(enc, 'B encapsulated a frame to A');
  // Rewrite the inner destination to A's router address.
  const inner = new w.Ipv4View().bind(enc, 64, enc.length - 64);
  inner.setDst(ip(A.router));
  inner.fillChecksum();
  a.rx(a.upPort, [ssh, enc], 0);
  const out = a.host.take();
  assert.equal(out.length, 2, 'both went to the stack');
  for (const f of out) {
    assert.equal(w.formatMac(f, 0), HOST_KERNEL_MAC, 'addressed to tapestry_host\'s MAC');
    assert.equal(w.formatMac(f, 6), HOST_MAC, 'from Tapestry\'s');
  }
  assert.equal(w.get16(out[0]!, 36), 22, 'the ssh segment as it came');
  assert.equal(w.formatIpv4(ipOf(out[1]!).dst()), A.router, 'the tunnel packet decapsulated');
  assert.equal(out[1]!.length, enc.length - 50);
  assert.equal(a.pod.frames.length, 0);
});

test('held frames: at most 3 per neighbour, one ARP request per second while they wait', () => {
  const a = makeNode(A, B);
  for (let k = 0; k < 5; k++) a.rx(a.podPort, [podFrame(A, B.pod.ip4, { sport: 41000 + k })], k * 100);
  assert.equal(a.up.take().length, 1, 'one ARP request for five frames within a second');
  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { sport: 42000 })], 1000);
  assertArpRequest(a.up.take()[0], A, B.ip);
  a.rx(a.upPort, [arpReply(B, A)], 1100);
  const out = a.up.take();
  assert.equal(out.length, 3, 'the first three frames');
  assert.deepEqual(out.map((f) => w.get16(f, 50 + 34)), [41000, 41001, 41002], 'in the order they were held');
  assert.equal(a.dp.neigh.queueDrops, 3);
});

test('from-netdev: a frame to another host on the segment is not taken, malformed ones are dropped', () => {
  const a = makeNode(A, B);
  const other = pktgen().eth({ src: B.mac, dst: 'ff:ff:ff:ff:ff:ff' }).ipv4({ src: B.ip, dst: '192.168.1.77' }).udp().build();
  const v6 = pktgen().eth({ src: B.mac, dst: '33:33:00:00:00:01' }).ipv6({ src: 'fe80::1', dst: 'ff02::1' }).icmp6Echo().build();
  const shortIp = pktgen().eth({ src: B.mac, dst: A.mac }).ipv4({ src: B.ip, dst: A.ip, totalLen: 999 }).udp().build();
  const badArp = pktgen().eth({ src: B.mac, dst: A.mac }).arp({ op: 'request', spa: B.ip, tpa: A.ip }).build();
  badArp[14 + 4] = 8; // hardware address length
  a.rx(a.upPort, [other, v6, shortIp, badArp], 0);
  assert.equal(a.host.frames.length + a.pod.frames.length + a.up.frames.length, 0);
  assert.equal(a.drops(DROP.INVALID), 2);
});

test('routed frames: TTL 1 is dropped (196); off-link without a gateway is dropped (169)', () => {
  const a = makeNode(A, B, { routingMode: 'native', gateway: null });
  a.dp.neigh.learn(ip(B.ip), w.parseMac(B.mac), 0, 0);
  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { ttl: 1 }), podFrame(A, B.pod.ip4, { ttl: 2 }), podFrame(A, OUTSIDE)], 0);
  assert.equal(a.drops(DROP.TTL_EXCEEDED), 1);
  assert.equal(a.drops(DROP.NO_FIB), 1);
  const out = a.up.take();
  assert.equal(out.length, 1, 'the TTL 2 frame was routed');
  assert.equal(ipOf(out[0]!).ttl(), 1);
});

test('frames held for two neighbours are all sent when both resolve in one batch', () => {
  const a = makeNode(A, B, { masquerade: false });
  a.rx(a.podPort, [podFrame(A, B.pod.ip4, { sport: 1001 }), podFrame(A, OUTSIDE, { sport: 1002 }), podFrame(A, B.pod.ip4, { sport: 1003 })], 0);
  const reqs = a.up.take();
  assert.equal(reqs.length, 2, 'one ARP request per neighbour');
  assertArpRequest(reqs[0], A, B.ip);
  assertArpRequest(reqs[1], A, GW.ip);
  a.rx(a.upPort, [arpReply(GW, A), arpReply(B, A)], 10);
  const out = a.up.take();
  assert.equal(out.length, 3);
  const toB = out.filter((f) => w.formatMac(f, 0) === B.mac);
  const toGw = out.filter((f) => w.formatMac(f, 0) === GW.mac);
  assert.deepEqual(toB.map((f) => w.get16(f, 50 + 34)), [1001, 1003], 'both tunnel frames, encapsulated, in order');
  assert.ok(toB.every((f) => w.get16(f, 36) === 8472), 'to B in VXLAN');
  assert.deepEqual(toGw.map((f) => w.get16(f, 34)), [1002], 'the routed frame, not encapsulated');
  assert.equal(a.dp.neigh.unresolved, 0);
});

test('MTU: an IPv6 frame too big for the tunnel gets ICMPv6 Packet Too Big (MTU 1450) from the router; one that fits waits for ARP', () => {
  const a = makeNode(A, B);
  const v6 = (payload: number) => pktgen().eth({ src: A.pod.mac, dst: A.pod.hostMac }).ipv6({ src: A.pod.ip6, dst: B.pod.ip6 }).udp({ sport: 5000, dport: 53 }).payload(payload).build();
  a.rx(a.podPort, [v6(1500 - 48)], 0);
  assert.equal(a.up.frames.length, 0, 'nothing on the wire');
  const [ptb] = a.pod.take();
  assert.ok(ptb, 'an answer went back to the pod');
  const ip6 = new w.Ipv6View().bind(ptb!, 14, ptb!.length - 14);
  assert.equal(w.formatIpv6(ptb!, 22), w.formatIpv6(w.parseIpv6(A.router6), 0), 'from the router');
  assert.equal(w.formatIpv6(ptb!, 38), A.pod.ip6, 'to the sender');
  assert.equal(ptb![54], w.ICMPV6_PKT_TOOBIG, 'type 2');
  assert.equal(w.get32(ptb!, 58), 1450, 'the tunnel MTU');
  assert.ok(ptb!.length <= 14 + 1280, `fits the IPv6 minimum MTU: ${ptb!.length}`);
  assert.ok(w.l4CsumOk6(ptb!, 54, ip6.payloadLen(), w.IPPROTO_ICMPV6, 22, 38), 'ICMPv6 checksum valid');
  assert.equal(w.formatIpv6(ptb!, 62 + 24), B.pod.ip6, 'the quote starts with the offending packet\'s header');
  a.rx(a.podPort, [v6(1450 - 48)], 0);
  assertArpRequest(a.up.take()[0], A, B.ip);
});

test('another node\'s address: pods reach it through the tunnel (never masqueraded), the node\'s stack directly', () => {
  const a = makeNode(A, B, { masquerade: true });
  const b = makeNode(B, A, { masquerade: true });
  a.dp.neigh.learn(ip(B.ip), w.parseMac(B.mac), 0, 0);
  a.rx(a.podPort, [podFrame(A, B.ip, { dport: 10250 })], 0);
  const [enc] = a.up.frames;
  assert.ok(enc, 'sent at once (neighbour known)');
  assert.equal(w.get16(enc, 36), 8472, 'in the tunnel');
  assert.equal(w.get32(enc, 46) >>> 8, A.pod.identity);
  assert.equal(w.formatIpv4(w.get32(enc, 50 + 14 + 12)), A.pod.ip4, 'inner source: the pod, not masqueraded');
  wire(a, b);
  const [got] = b.host.take();
  assert.ok(got, 'B hands it to its stack');
  assert.equal(w.formatMac(got, 0), HOST_KERNEL_MAC);
  assert.equal(w.formatIpv4(ipOf(got).src()), A.pod.ip4);

  const f = pktgen().eth({ src: HOST_KERNEL_MAC, dst: HOST_MAC }).ipv4({ src: A.ip, dst: B.ip }).tcp({ sport: 33000, dport: 10250 }).build();
  a.rx(a.hostPort, [f], 0);
  const [direct] = a.up.take();
  assert.ok(direct, 'the stack\'s frame went out');
  assert.equal(direct.length, f.length, 'not encapsulated');
  assert.equal(w.formatMac(direct, 0), B.mac);
  assert.equal(w.formatMac(direct, 6), A.mac);
  assert.equal(w.formatIpv4(ipOf(direct).src()), A.ip);
  assert.equal(w.formatIpv4(ipOf(direct).dst()), B.ip);
});

test('a node on another underlay subnet is reached through the gateway, in both routing modes', () => {
  // B behind a router: 192.168.2.2 is not on A's 192.168.1.0/24.
  const far: NodeSpec = { ...B, ip: '192.168.2.2' };
  for (const routingMode of ['tunnel', 'native'] as const) {
    const a = makeNode(A, far, { routingMode });
    a.rx(a.podPort, [podFrame(A, B.pod.ip4)], 0);
    assertArpRequest(a.up.take()[0], A, GW.ip);
    a.rx(a.upPort, [arpReply(GW, A)], 1);
    const [f] = a.up.take();
    assert.ok(f, `${routingMode}: the held frame left`);
    assert.equal(w.formatMac(f, 0), GW.mac, `${routingMode}: to the gateway's MAC`);
    assert.equal(w.formatMac(f, 6), A.mac);
    const v = ipOf(f);
    if (routingMode === 'tunnel') {
      assert.equal(w.formatIpv4(v.dst()), far.ip, 'outer destination: the far node');
      assert.equal(w.get32(f, 46) >>> 8, A.pod.identity, 'VNI = pod identity');
      assert.equal(w.formatIpv4(w.get32(f, 50 + 14 + 16)), B.pod.ip4);
    } else {
      assert.equal(w.formatIpv4(v.dst()), B.pod.ip4, 'routed to the pod address');
      assert.equal(v.ttl(), 63);
    }
    // Once the gateway is known, frames leave at once.
    a.rx(a.podPort, [podFrame(A, B.pod.ip4, { sport: 40001 })], 2);
    const [g] = a.up.take();
    assert.ok(g, `${routingMode}: sent without waiting`);
    assert.equal(w.formatMac(g, 0), GW.mac);
  }
  // Without a gateway the far node is unreachable.
  const a = makeNode(A, far, { gateway: null });
  a.rx(a.podPort, [podFrame(A, B.pod.ip4)], 0);
  assert.equal(a.drops(DROP.NO_FIB), 1);
  assert.equal(a.up.frames.length, 0);
});

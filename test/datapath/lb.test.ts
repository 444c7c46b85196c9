/**
 * Service load balancing in from-container, packet in / packet out:
 *
 *   A 10.0.0.10 --SYN--> 10.96.0.10:80 (ClusterIP)
 *                          | DNAT (lb4_local pins the connection in a CT_SERVICE entry)
 *                          v
 *            B 10.0.0.11:8080  or  C 10.0.0.12:8080
 *   replies: backend -> A, source rewritten back to 10.96.0.10:80 at A's ingress
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, makeNode } from './fixture.ts';
import * as w from '../../src/wire/index.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import type { BackendSpec } from '../../src/datapath/services.ts';

const C = { id: 3, ip4: '10.0.0.12', mac: '02:00:00:00:00:0c', hostMac: '02:00:00:00:01:0c' };
const VIP = '10.96.0.10';
const ethA = { src: A.mac, dst: A.hostMac };

function setup(opts: { algorithm?: 'random' | 'maglev'; reject?: boolean; backends?: string[] } = {}) {
  const n = makeNode();
  if (opts.reject === false) (n.dp.cfg as { noBackendReject?: boolean }).noBackendReject = false;
  const devC = new CaptureDevice('c', n.dp.batch.buf);
  const portC = n.dp.addEndpoint({ id: C.id, name: 'c', ipv4: w.parseIpv4(C.ip4), ipv6: null, mac: w.parseMac(C.mac), hostMac: w.parseMac(C.hostMac), identity: 300 }, devC);
  const be = (id: number, ip: string, state: BackendSpec['state'] = 'active'): BackendSpec => ({ id, ip: w.parseIpv4(ip), port: 8080, weight: 100, state, name: `[${ip}:8080,State:active]` });
  const write = (backends: BackendSpec[]) =>
    n.dp.services.upsert({ revNat: 7, vip: w.parseIpv4(VIP), port: 80, flags: 0, algorithm: opts.algorithm ?? 'random', backends });
  const ips = opts.backends ?? [B.ip4, C.ip4];
  write(ips.map((ip, k) => be(k + 1, ip)));
  return { ...n, devC, portC, be, write };
}

const syn = (sport: number) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: VIP }).tcp({ sport, dport: 80, flags: 'S' }).build();
const ack = (sport: number) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: VIP }).tcp({ sport, dport: 80, flags: 'A' }).payload(10).build();

function checkDnat(f: Uint8Array, backendIp: string, sport: number): void {
  const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.equal(w.formatIpv4(ip.dst()), backendIp);
  assert.equal(new w.TcpView().bind(f, 34, f.length - 34).dstPort(), 8080);
  assert.equal(new w.TcpView().bind(f, 34, f.length - 34).srcPort(), sport);
  assert.ok(ip.verifyChecksum(), 'IPv4 checksum after DNAT');
  assert.ok(w.l4CsumOk4(f, 34, ip.payloadLen(), w.IPPROTO_TCP, ip.src(), ip.dst()), 'TCP checksum after DNAT');
}

test('a connection to a ClusterIP is DNATed to a backend and its replies come back from the ClusterIP', () => {
  const s = setup({ backends: [B.ip4] });
  s.rx(s.portA, [syn(40000)]);
  const [f] = s.devB.take();
  assert.ok(f, 'SYN delivered to the backend');
  checkDnat(f, B.ip4, 40000);
  // the backend answers from its own address; A must see the ClusterIP
  s.rx(s.portB, [pktgen().eth({ src: B.mac, dst: B.hostMac }).ipv4({ src: B.ip4, dst: A.ip4 }).tcp({ sport: 8080, dport: 40000, flags: 'SA' }).build()]);
  const [r] = s.devA.take();
  assert.ok(r, 'reply delivered to the client');
  const ip = new w.Ipv4View().bind(r, 14, r.length - 14);
  assert.equal(w.formatIpv4(ip.src()), VIP);
  assert.equal(new w.TcpView().bind(r, 34, r.length - 34).srcPort(), 80);
  assert.ok(ip.verifyChecksum(), 'IPv4 checksum after reverse NAT');
  assert.ok(w.l4CsumOk4(r, 34, ip.payloadLen(), w.IPPROTO_TCP, ip.src(), ip.dst()), 'TCP checksum after reverse NAT');
});

test('random selection spreads connections over the backends and pins each connection to its backend', () => {
  const s = setup();
  let seed = 12345;
  s.dp.lb.rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  s.rx(s.portA, Array.from({ length: 64 }, (_, k) => syn(41000 + k)));
  const toB = s.devB.take().map((f) => new w.TcpView().bind(f, 34, f.length - 34).srcPort());
  const toC = s.devC.take().map((f) => new w.TcpView().bind(f, 34, f.length - 34).srcPort());
  assert.equal(toB.length + toC.length, 64);
  assert.ok(toB.length > 10 && toC.length > 10, `both backends used: ${toB.length}/${toC.length}`);
  // the next packets of every connection follow their SYN
  s.rx(s.portA, Array.from({ length: 64 }, (_, k) => ack(41000 + k)));
  const againB = s.devB.take().map((f) => new w.TcpView().bind(f, 34, f.length - 34).srcPort());
  assert.deepEqual(againB.sort(), toB.sort());
});

test('Maglev selection is a function of the flow: the same connection always lands on the same backend', () => {
  const s1 = setup({ algorithm: 'maglev' });
  const s2 = setup({ algorithm: 'maglev' });
  s1.rx(s1.portA, Array.from({ length: 40 }, (_, k) => syn(42000 + k)));
  s2.rx(s2.portA, Array.from({ length: 40 }, (_, k) => syn(42000 + k)));
  const ports = (d: CaptureDevice) => d.take().map((f) => new w.TcpView().bind(f, 34, f.length - 34).srcPort()).sort();
  const b1 = ports(s1.devB);
  assert.deepEqual(b1, ports(s2.devB), 'two datapaths agree flow by flow');
  assert.ok(b1.length > 5 && b1.length < 35, `spread: ${b1.length}/40 to B`);
});

test('a service without backends answers ICMP port unreachable from the ClusterIP, or drops 158 when configured', () => {
  const s = setup({ backends: [] });
  const sent = syn(43000);
  s.rx(s.portA, [sent]);
  const [f] = s.devA.take();
  assert.ok(f, 'ICMP error bounced back to the client');
  const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.equal(ip.protocol(), w.IPPROTO_ICMP);
  assert.equal(w.formatIpv4(ip.src()), VIP);
  assert.equal(w.formatIpv4(ip.dst()), A.ip4);
  assert.ok(ip.verifyChecksum(), 'IPv4 checksum of the error');
  const icmp = new w.Icmp4View().bind(f, 34, ip.payloadLen());
  assert.equal(icmp.type(), w.ICMP_DEST_UNREACH);
  assert.equal(icmp.code(), w.ICMP_PORT_UNREACH);
  assert.ok(icmp.verifyChecksum(), 'ICMP checksum');
  assert.deepEqual(f.subarray(42, 42 + 20), sent.subarray(14, 34), 'quotes the original IPv4 header');
  assert.equal(w.formatMac(f, 0), A.mac);
  const d = setup({ backends: [], reject: false });
  d.rx(d.portA, [syn(43001)]);
  assert.equal(d.drops(DROP.NO_SERVICE), 1);
  assert.equal(d.devA.frames.length, 0);
});

test('a terminating backend drains: its connections continue, new connections avoid it', () => {
  const s = setup({ backends: [B.ip4] });
  s.rx(s.portA, [syn(44000)]);
  assert.equal(s.devB.take().length, 1);
  // B starts terminating, C joins
  s.write([s.be(1, B.ip4, 'terminating'), s.be(2, C.ip4)]);
  s.rx(s.portA, [ack(44000)]);
  assert.equal(s.devB.take().length, 1, 'established connection still reaches B');
  s.rx(s.portA, [syn(44001)]);
  assert.equal(s.devC.take().length, 1, 'a new connection goes to C');
  assert.equal(s.devB.frames.length, 0);
});

test('DNAT keeps a partial (offloaded) checksum consistent', () => {
  const s = setup({ backends: [B.ip4] });
  const frame = pktgen().eth(ethA).ipv4({ src: A.ip4, dst: VIP }).tcp({ sport: 45000, dport: 80, flags: 'S' }).payload(100).vnet({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM }).build();
  s.rx(s.portA, [frame.slice(10)], [frame.slice(0, 10)]);
  const [f] = s.devB.take();
  assert.ok(f, 'delivered');
  // finish the checksum the way the device would and check it
  w.csumCompletePartial(f, 34, f.length, 16);
  const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.ok(w.l4CsumOk4(f, 34, ip.payloadLen(), w.IPPROTO_TCP, ip.src(), ip.dst()), 'completed checksum is valid for the new addresses');
});

test('session affinity by client IP: new connections return to the same backend until the timeout passes', () => {
  const s = setup();
  let seed = 7;
  s.dp.lb.rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const be = (id: number, ip: string): BackendSpec => ({ id, ip: w.parseIpv4(ip), port: 8080, weight: 100, state: 'active', name: `[${ip}:8080,State:active]` });
  s.dp.services.upsert({ revNat: 7, vip: w.parseIpv4(VIP), port: 80, flags: 0x10, affinityTimeout: 30, algorithm: 'random', backends: [be(1, B.ip4), be(2, C.ip4)] });
  s.rx(s.portA, Array.from({ length: 20 }, (_, k) => syn(46000 + k)), undefined, 1000);
  const counts = [s.devB.take().length, s.devC.take().length];
  assert.ok(counts.includes(20) && counts.includes(0), `all 20 connections on one backend: ${counts}`);
  // 60 s later the affinity has expired: the client is placed afresh (and sticks again)
  s.rx(s.portA, Array.from({ length: 40 }, (_, k) => syn(47000 + k)), undefined, 61000);
  const later = [s.devB.take().length, s.devC.take().length];
  assert.equal(later[0]! + later[1]!, 40);
  assert.ok(s.dp.lb.maps.affinity.count === 1, 'one affinity entry for the one client');
});

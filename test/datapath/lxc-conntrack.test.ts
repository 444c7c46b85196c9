/**
 * Conntrack inside the lxc programs: pod-to-pod connections get an egress
 * entry at the source and an ingress entry at the destination; replies are
 * recognised on both sides; protocol and table errors drop with Cilium's
 * reasons; the GC removes what expired.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, makeNode } from './fixture.ts';
import { ctDump } from '../../src/datapath/lib/conntrack-dump.ts';
import { CT_ESTABLISHED, CT_NEW, CT_REPLY } from '../../src/datapath/lib/conntrack.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { CB, META_SLOTS } from '../../src/packet/batch.ts';

const ethA = { src: A.mac, dst: A.hostMac };
const ethB = { src: B.mac, dst: B.hostMac };
const syn = () => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build();
const synAck = () => pktgen().eth(ethB).ipv4({ src: B.ip4, dst: A.ip4 }).tcp({ sport: 80, dport: 40000, flags: 'SA' }).build();
const ack = () => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build();
/** Frame 0's conntrack result (CB.CT_STATE's low byte; the slot also says a lookup ran and whether to report). */
const ctOf = (n: ReturnType<typeof makeNode>) => n.dp.batch.meta[0 * META_SLOTS + CB.CT_STATE]! & 0xff;

test('a TCP connection between pods: NEW, then REPLY and ESTABLISHED, with an OUT and an IN entry', () => {
  const n = makeNode();
  n.rx(n.portA, [syn()], undefined, 1000);
  assert.equal(ctOf(n), CT_NEW, 'first SYN is new at the destination too');
  n.rx(n.portB, [synAck()], undefined, 1000);
  assert.equal(ctOf(n), CT_REPLY, 'SYN-ACK is a reply at the client');
  n.rx(n.portA, [ack()], undefined, 2000);
  assert.equal(ctOf(n), CT_ESTABLISHED, 'ACK is established at the server');
  const tcp = ctDump(n.dp.ct.maps, 2).filter((e) => e.proto === 'TCP');
  assert.deepEqual(tcp.map((e) => e.type).sort(), ['IN', 'OUT']);
  for (const e of tcp) {
    assert.equal(e.packets, 3, `${e.type} entry counted every packet`);
    assert.ok(e.remaining > 60, `${e.type} entry left the SYN phase: ${e.remaining}s`);
  }
  assert.equal(n.devA.frames.length + n.devB.frames.length, 3, 'all three forwarded');
});

test('UDP and ICMP echo are tracked in the "any" table with their RELATED companions', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).udp({ sport: 5000, dport: 53 }).payload(8).build(), pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).icmp4Echo({ id: 9, seq: 1 }).build()]);
  const any = ctDump(n.dp.ct.maps, 0).filter((e) => e.family === 'ipv4' && e.proto !== 'TCP');
  assert.ok(any.some((e) => e.proto === 'UDP' && !e.related), 'UDP entry');
  assert.ok(any.some((e) => e.proto === 'ICMP' && !e.related), 'ICMP echo entry');
  assert.ok(any.some((e) => e.related), 'RELATED companion entries');
});

test('IPv6 connections are tracked in the IPv6 tables', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6 }).tcp({ sport: 1234, dport: 443, flags: 'S' }).build()]);
  const e = ctDump(n.dp.ct.maps, 0).filter((x) => x.family === 'ipv6' && x.proto === 'TCP');
  assert.equal(e.length, 2, 'OUT at A, IN at B');
  assert.equal(n.devB.frames.length, 1);
});

test('unknown L4 protocols and truncated L4 headers are dropped with CT reasons (137, 135)', () => {
  const n = makeNode();
  n.rx(n.portA, [
    pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, protocol: 47 }).payload(20).build(),
    pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4, protocol: 6 }).payload(10).build(),
  ]);
  assert.equal(n.drops(DROP.CT_UNKNOWN_PROTO), 1);
  assert.equal(n.drops(DROP.CT_INVALID_HDR), 1);
  assert.equal(n.devB.frames.length, 0);
});

test('a full conntrack table drops new connections with "CT: Map insertion failed" (155)', () => {
  const n = makeNode({ sizes: { tcp4: 2, any4: 4 }, evict: false });
  const conn = (sport: number) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).tcp({ sport, dport: 80, flags: 'S' }).build();
  n.rx(n.portA, [conn(1), conn(2), conn(3)]);
  assert.ok(n.drops(DROP.CT_CREATE_FAILED) >= 1, 'insert failures counted');
  assert.ok(n.dp.ct.fullSignal !== 0, 'the GC is told the table is full');
});

test('the GC removes expired entries; a later packet starts a new connection', () => {
  const n = makeNode();
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).udp({ sport: 5000, dport: 53 }).build()], undefined, 0);
  assert.ok(ctDump(n.dp.ct.maps, 0).length > 0, 'entries created');
  const run = n.dp.gc.run(61);
  assert.ok(run >= 10, `next interval ${run}`);
  assert.equal(ctDump(n.dp.ct.maps, 61).length, 0, 'non-TCP lifetime is 60 s');
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).udp({ sport: 5000, dport: 53 }).build()], undefined, 62000);
  assert.equal(ctOf(n), CT_NEW, 'after expiry the flow is new again');
});

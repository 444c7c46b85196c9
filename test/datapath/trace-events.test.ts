/**
 * Trace and debug events from the lxc programs: trace reasons from the
 * frame's conntrack result, the from-* observation points, monitor
 * aggregation (medium: conntrack's report decision; none: every frame),
 * debug messages only while asked for, and event timestamps.
 *
 *   ep1 (A, 10.0.0.10) ──TCP:80──> ep2 (B, 10.0.0.11)     one node, two TAPs
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, makeNode } from './fixture.ts';
import { DBG, formatEvent, TRACE_REASON, type DebugEvent, type TraceEvent } from '../../src/datapath/lib/events.ts';
import * as w from '../../src/wire/index.ts';

const ethA = { src: A.mac, dst: A.hostMac };
const ethB = { src: B.mac, dst: B.hostMac };
const ab = (flags: string, sport = 40000, payload = 0) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).tcp({ sport, dport: 80, flags }).payload(payload).build();
const ba = (flags: string, dport = 40000, payload = 0) => pktgen().eth(ethB).ipv4({ src: B.ip4, dst: A.ip4 }).tcp({ sport: 80, dport, flags }).payload(payload).build();

function traced(aggregate: boolean) {
  const n = makeNode();
  n.dp.events.enabled = true;
  n.dp.events.aggregate = aggregate;
  n.dp.setTrace(true);
  const traces = (since = 0) => n.dp.events.read(since, 100000).events.filter((e): e is TraceEvent => e.type === 'trace');
  return { ...n, traces };
}

test('trace reasons follow conntrack: new (SYN), reply (SYN-ACK), established (ACK), in Cilium\'s trace line', () => {
  const n = traced(false);
  n.rx(n.portA, [ab('S')]);
  n.rx(n.portB, [ba('SA')]);
  n.rx(n.portA, [ab('A')]);
  const to = n.traces().filter((e) => e.pointName === 'to-endpoint');
  assert.deepEqual(to.map((e) => e.reasonName), ['new', 'reply', 'established']);
  assert.deepEqual(to.map((e) => e.reason), [TRACE_REASON.NEW, TRACE_REASON.REPLY, TRACE_REASON.ESTABLISHED]);
  assert.match(formatEvent(to[1]!), new RegExp(`^-> endpoint ${A.id} flow 0x[0-9a-f]+ , identity ${B.identity}->${A.identity} state reply ifindex \\d+ orig-ip 0\\.0\\.0\\.0: 10\\.0\\.0\\.11:80 -> 10\\.0\\.0\\.10:40000 tcp SYN, ACK$`));
});

test('from-endpoint: each frame entering from a pod, with the frame\'s reason, before its to-endpoint', () => {
  const n = traced(false);
  n.rx(n.portA, [ab('S')]);
  const t = n.traces();
  assert.deepEqual(t.map((e) => e.pointName), ['from-endpoint', 'to-endpoint']);
  const from = t[0]!;
  assert.equal(from.source, A.id);
  assert.equal(from.srcIdentity, A.identity);
  assert.equal(from.reasonName, 'new');
  assert.match(formatEvent(from), new RegExp(`^<- endpoint ${A.id} flow 0x[0-9a-f]+ , identity ${A.identity}->unknown state new ifindex ${n.portA} orig-ip 0\\.0\\.0\\.0: 10\\.0\\.0\\.10:40000 -> 10\\.0\\.0\\.11:80 tcp SYN$`));
  assert.equal(from.hash, t[1]!.hash, 'both points name the same flow');
});

test('frames without conntrack carry reason unknown', () => {
  const n = traced(true);
  const arp = pktgen().eth({ src: A.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: A.mac, spa: A.ip4, tpa: '10.0.0.1' }).build();
  n.rx(n.portA, [arp]);
  const t = n.traces();
  assert.ok(t.length >= 1, 'untracked frames are traced even with aggregation');
  assert.ok(t.every((e) => e.reasonName === 'unknown'), t.map((e) => e.reasonName).join());
});

test('monitor aggregation medium: a 1000-packet connection yields a handful of traces; none traces every frame', () => {
  const run = (aggregate: boolean) => {
    const n = traced(aggregate);
    n.rx(n.portA, [ab('S')]);
    n.rx(n.portB, [ba('SA')]);
    n.rx(n.portA, [ab('A')]);
    // 1000 data segments each way in batches of 100, within one second (no report interval passes).
    for (let k = 0; k < 10; k++) {
      n.rx(n.portA, Array.from({ length: 50 }, () => ab('PA', 40000, 100)), undefined, 10 + k);
      n.rx(n.portB, Array.from({ length: 50 }, () => ba('A')), undefined, 10 + k);
    }
    n.rx(n.portA, [ab('FA')], undefined, 20);
    n.rx(n.portB, [ba('FA')], undefined, 20);
    n.rx(n.portA, [ab('A')], undefined, 20);
    return n.traces();
  };
  const all = run(false);
  assert.equal(all.length, 2 * 1006, 'none: from- and to-endpoint for every frame');
  const some = run(true);
  assert.ok(some.length > 0 && some.length <= 20, `medium: ${some.length} traces`);
  const flags = new Set(some.filter((e) => e.pointName === 'to-endpoint').map((e) => e.tcpFlags));
  for (const f of [0x02, 0x12, 0x11]) assert.ok(flags.has(f), `the packet with flags 0x${f.toString(16)} is reported`);
});

test('monitor aggregation medium: the report interval (5 s) lets an idle-flagged flow report again', () => {
  const n = traced(true);
  n.rx(n.portA, [ab('S')], undefined, 0);
  n.rx(n.portB, [ba('SA')], undefined, 0);
  n.rx(n.portA, [ab('A')], undefined, 0);
  n.rx(n.portA, [ab('A')], undefined, 1000);
  const before = n.dp.events.head;
  n.rx(n.portA, [ab('A')], undefined, 2000);
  assert.equal(n.dp.events.head, before, 'nothing new to report after 2 s');
  n.rx(n.portA, [ab('A')], undefined, 7000);
  assert.ok(n.dp.events.head > before, 'reported again once 5 s have passed');
});

test('events carry the batch time; the ring adds its time base', () => {
  const n = traced(false);
  n.dp.events.timeBase = 1_000_000;
  n.rx(n.portA, [ab('S')], undefined, 1234);
  assert.ok(n.traces().every((e) => e.time === 1_001_234), JSON.stringify(n.traces().map((e) => e.time)));
});

test('from-overlay / from-network / from-host points are named like Cilium\'s (trace line prefixes)', () => {
  const n = traced(false);
  n.rx(n.portA, [ab('S')]);
  const t = n.traces()[0]!;
  for (const [pointName, point, prefix] of [['from-network', 10, '<- network'], ['from-overlay', 9, '<- overlay'], ['from-host', 7, '<- host'], ['to-stack', 3, '-> stack']] as const) {
    assert.ok(formatEvent({ ...t, point, pointName }).startsWith(`${prefix} flow 0x`), pointName);
  }
});

test('debug events only while asked for: Cilium\'s conntrack lines for a new connection', () => {
  const n = traced(true);
  n.rx(n.portA, [ab('S')]);
  assert.equal(n.dp.events.read(0).events.filter((e) => e.type === 'debug').length, 0, 'none by default');
  n.dp.events.debugEnabled = true;
  n.rx(n.portA, [ab('S', 40001)]);
  const dbg = n.dp.events.read(0).events.filter((e): e is DebugEvent => e.type === 'debug');
  const lines = dbg.map((e) => formatEvent(e));
  const egress = lines.filter((l) => l.includes(`FROM ${A.id} DEBUG`));
  assert.deepEqual(egress.map((l) => l.replace(/^CPU 00: MARK 0x[0-9a-f]+ /, '')), [
    `FROM ${A.id} DEBUG: Conntrack lookup 1/2: src=10.0.0.10:40001 dst=10.0.0.11:80`,
    `FROM ${A.id} DEBUG: Conntrack lookup 2/2: nexthdr=6 flags=1`,
    `FROM ${A.id} DEBUG: CT verdict: New, revnat=0`,
    `FROM ${A.id} DEBUG: Conntrack create: proxy-port=0 revnat=0 src-identity=${A.identity} lb=0.0.0.0`,
  ]);
  assert.ok(lines.some((l) => l.includes(`FROM ${B.id} DEBUG: Conntrack lookup 2/2: nexthdr=6 flags=0`)), 'the ingress lookup at the destination');
  const trace = n.traces().find((e) => e.pointName === 'to-endpoint' && e.sport === 40001)!;
  assert.ok(dbg.every((e) => e.hash === trace.hash), 'debug MARK is the flow hash of the traces');
  assert.equal(dbg[0]!.subtype, DBG.CT_LOOKUP4_1);
  n.dp.events.debugEnabled = false;
  const head = n.dp.events.head;
  n.dp.setTrace(false);
  n.rx(n.portA, [ab('A', 40001)]);
  assert.equal(n.dp.events.head, head, 'off again: nothing');
});

test('debug events: service backend selection', () => {
  const n = traced(true);
  n.dp.services.upsert({ revNat: 7, vip: w.parseIpv4('10.96.0.10'), port: 80, flags: 0, algorithm: 'random', backends: [{ id: 9, ip: w.parseIpv4(B.ip4), port: 8080, weight: 100, state: 'active', name: 'b' }] });
  n.dp.events.debugEnabled = true;
  n.rx(n.portA, [pktgen().eth(ethA).ipv4({ src: A.ip4, dst: '10.96.0.10' }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build()]);
  const lines = n.dp.events.read(0).events.filter((e) => e.type === 'debug').map((e) => formatEvent(e));
  assert.ok(lines.some((l) => l.endsWith(`DEBUG: Successfully mapped addr=${B.ip4} port=8080 to backend_id=9`)), lines.join('\n'));
  assert.ok(lines.some((l) => l.endsWith('DEBUG: CT verdict: New, revnat=7')), lines.join('\n'));
  assert.ok(lines.some((l) => l.endsWith(`DEBUG: Conntrack create: proxy-port=0 revnat=7 src-identity=${A.identity} lb=0.0.0.0`)), lines.join('\n'));
});

test('debug events: IPv6 conntrack lines print the last 32 bits of each address, as Cilium\'s do', () => {
  const n = traced(true);
  n.dp.events.debugEnabled = true;
  n.rx(n.portA, [pktgen().eth(ethA).ipv6({ src: A.ip6, dst: B.ip6 }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build()]);
  const lines = n.dp.events.read(0).events.filter((e) => e.type === 'debug').map((e) => formatEvent(e).replace(/^CPU 00: MARK 0x[0-9a-f]+ /, ''));
  assert.deepEqual(lines.slice(0, 4), [
    `FROM ${A.id} DEBUG: Conntrack lookup 1/2: src=[::0:10]:40000 dst=[::0:11]:80`,
    `FROM ${A.id} DEBUG: Conntrack lookup 2/2: nexthdr=6 flags=1`,
    `FROM ${A.id} DEBUG: CT verdict: New, revnat=0`,
    `FROM ${A.id} DEBUG: Conntrack create: proxy-port=0 revnat=0 src-identity=${A.identity}`,
  ]);
});

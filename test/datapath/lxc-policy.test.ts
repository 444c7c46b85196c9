/**
 * Policy enforcement inside the lxc programs: ingress at the destination's
 * to-endpoint stage, egress at from-container, only for NEW and
 * ESTABLISHED packets; replies pass whatever the other side's policy;
 * deny (181) beats allow; a miss is 133; the node's own traffic reaches
 * pods; policy-verdict events for new connections and denials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, makeNode } from './fixture.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { formatEvent, formatPolicyVerdict, type PolicyVerdictEvent } from '../../src/datapath/lib/events.ts';
import { parseIpv4 } from '../../src/wire/addr.ts';

const ethA = { src: A.mac, dst: A.hostMac };
const ethB = { src: B.mac, dst: B.hostMac };
const tcpAB = (dport: number, flags = 'S', sport = 40000) => pktgen().eth(ethA).ipv4({ src: A.ip4, dst: B.ip4 }).tcp({ sport, dport, flags }).build();
const tcpBA = (sport: number, flags = 'SA', dport = 40000) => pktgen().eth(ethB).ipv4({ src: B.ip4, dst: A.ip4 }).tcp({ sport, dport, flags }).build();

/** The node with ipcache entries for both endpoints (the agent keeps them there). */
function node() {
  const n = makeNode();
  n.dp.ipcache.upsert4(parseIpv4(A.ip4), 32, A.identity, 0);
  n.dp.ipcache.upsert4(parseIpv4(B.ip4), 32, B.identity, 0);
  return n;
}

test('ingress: allowed port passes, another port is dropped with 133, a deny is 181', () => {
  const n = node();
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [
    { identity: A.identity, egress: false, proto: 6, port: 80, deny: false },
    { identity: A.identity, egress: false, proto: 6, port: 443, deny: true },
  ] });
  n.rx(n.portA, [tcpAB(80)]);
  assert.equal(n.devB.take().length, 1, 'A -> B:80 allowed');
  n.rx(n.portA, [tcpAB(81)]);
  assert.equal(n.devB.take().length, 0, 'A -> B:81 dropped');
  assert.equal(n.drops(DROP.POLICY), 1, '133 counted');
  n.rx(n.portA, [tcpAB(443)]);
  assert.equal(n.drops(DROP.POLICY_DENY), 1, '181 counted');
});

test('deny beats allow: a broad deny overrides a narrower allow for the same peer', () => {
  const n = node();
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [
    { identity: A.identity, egress: false, proto: 6, port: 80, deny: false },
    { identity: A.identity, egress: false, proto: 0, deny: true },
  ] });
  n.rx(n.portA, [tcpAB(80)]);
  assert.equal(n.devB.take().length, 0, 'denied despite the port-80 allow');
  assert.equal(n.drops(DROP.POLICY_DENY), 1);
});

test('replies are never blocked by the other side\'s policy; established packets are checked', () => {
  const n = node();
  // A may only talk to B:80 (egress), and accepts nothing (ingress enforced, empty).
  n.dp.setPolicy(A.id, { ingress: true, egress: true, entries: [{ identity: B.identity, egress: true, proto: 6, port: 80, deny: false }] });
  n.rx(n.portA, [tcpAB(80)]);
  assert.equal(n.devB.take().length, 1, 'SYN out');
  n.rx(n.portB, [tcpBA(80)]);
  assert.equal(n.devA.take().length, 1, 'SYN-ACK is a reply: A\'s ingress policy does not apply');
  n.rx(n.portA, [tcpAB(80, 'A')]);
  assert.equal(n.devB.take().length, 1, 'established, still allowed');
  // The policy changes under a running connection: established packets now drop.
  n.dp.setPolicy(A.id, { ingress: true, egress: true, entries: [] });
  n.rx(n.portA, [tcpAB(80, 'A')]);
  assert.equal(n.devB.take().length, 0, 'established flow stops once denied');
  assert.equal(n.drops(DROP.POLICY), 1);
  // B connecting to A is new at A's ingress: denied.
  n.rx(n.portB, [tcpBA(22, 'S', 50000)]);
  assert.equal(n.devA.take().length, 0, 'new inbound connection denied');
});

test('no enforcement without policy; the host always reaches pods', () => {
  const n = node();
  n.rx(n.portA, [tcpAB(81)]);
  assert.equal(n.devB.take().length, 1, 'no policy: allowed');
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [] });
  n.rx(n.portA, [tcpAB(82)]);
  assert.equal(n.devB.take().length, 0, 'enforced and empty: denied');
  n.dp.setPolicy(B.id, { ingress: false, egress: false, entries: [] });
  n.rx(n.portA, [tcpAB(83)]);
  assert.equal(n.devB.take().length, 1, 'enforcement off again: allowed');
});

test('egress uses the destination identity from the ipcache; world for unknown addresses', () => {
  const n = node();
  n.dp.setPolicy(A.id, { ingress: false, egress: true, entries: [{ identity: 2, egress: true, proto: 17, port: 53, deny: false }] });
  n.rx(n.portA, [tcpAB(80)]);
  assert.equal(n.drops(DROP.POLICY), 1, 'B is not world');
  const dns = pktgen().eth(ethA).ipv4({ src: A.ip4, dst: '192.0.2.53' }).udp({ sport: 5353, dport: 53 }).payload(10).build();
  n.rx(n.portA, [dns]);
  assert.equal(n.drops(DROP.POLICY), 1, 'world:53/udp allowed (leaves toward the stack)');
});

test('policy-verdict events: new connections and denials, in Cilium\'s line format', () => {
  const n = node();
  n.dp.events.enabled = true;
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [{ identity: A.identity, egress: false, proto: 6, port: 80, deny: false }] });
  n.rx(n.portA, [tcpAB(80)]);
  n.rx(n.portA, [tcpAB(81)]);
  const r = n.dp.events.read(0);
  const events = r.events.filter((e): e is PolicyVerdictEvent => e.type === 'policy-verdict');
  assert.equal(r.lost, 0);
  assert.ok(r.events.some((e) => e.type === 'drop' && e.reason === 133), 'the denial is also a drop event');
  assert.equal(events.length, 2);
  assert.equal(events[0]!.action, 'allow');
  assert.equal(events[1]!.action, 'deny');
  assert.match(formatPolicyVerdict(events[0]!), new RegExp(`^Policy verdict log: flow 0x[0-9a-f]+ local EP ID ${B.id}, remote ID ${A.identity}, proto 6, ingress, action allow, auth: disabled, match L3-L4, 10\\.0\\.0\\.10:40000 -> 10\\.0\\.0\\.11:80 tcp SYN$`));
  assert.match(formatPolicyVerdict(events[1]!), /action deny, auth: disabled, match none, .* -> 10\.0\.0\.11:81 tcp SYN$/);
});

test('a reader that falls behind loses the oldest events, counted', () => {
  const n = node();
  n.dp.events.enabled = true;
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [] });
  const cap = n.dp.events.capacity;
  for (let k = 0; k < cap + 10; k += 200) n.rx(n.portA, Array.from({ length: 200 }, (_, j) => tcpAB(1000, 'S', 10000 + k + j)));
  const r = n.dp.events.read(0, 10);
  assert.ok(r.lost >= 10, `lost ${r.lost}`);
  assert.equal(r.events.length, 10);
});

test('drop events carry the reason, identities and the packet, in Cilium\'s drop line', () => {
  const n = node();
  n.dp.events.enabled = true;
  n.dp.setPolicy(B.id, { ingress: true, egress: false, entries: [] });
  n.rx(n.portA, [tcpAB(8080)]);
  const d = n.dp.events.read(0).events.find((e) => e.type === 'drop');
  assert.ok(d && d.type === 'drop', 'a drop event');
  assert.equal(d.reason, 133);
  assert.equal(d.srcIdentity, A.identity);
  assert.match(formatEvent(d), new RegExp(`^xx drop \\(Policy denied\\) flow 0x[0-9a-f]+ to endpoint ${B.id}, ifindex \\d+, file bpf_lxc\\.c:0, , identity ${A.identity}->${B.identity}: 10\\.0\\.0\\.10:40000 -> 10\\.0\\.0\\.11:8080 tcp SYN$`));
});

test('trace events only while enabled: to-endpoint for a delivered frame', () => {
  const n = node();
  n.dp.events.enabled = true;
  n.rx(n.portA, [tcpAB(80)]);
  assert.equal(n.dp.events.read(0).events.filter((e) => e.type === 'trace').length, 0, 'off by default');
  n.dp.setTrace(true);
  n.rx(n.portA, [tcpAB(80, 'S', 40001)]);
  const t = n.dp.events.read(0).events.find((e) => e.type === 'trace' && e.pointName === 'to-endpoint');
  assert.ok(t && t.type === 'trace', 'a trace event');
  assert.equal(t.pointName, 'to-endpoint');
  assert.match(formatEvent(t), new RegExp(`^-> endpoint ${B.id} flow 0x[0-9a-f]+ , identity ${A.identity}->${B.identity} state new ifindex \\d+ orig-ip 0\\.0\\.0\\.0: 10\\.0\\.0\\.10:40001 -> 10\\.0\\.0\\.11:80 tcp SYN$`));
  n.dp.setTrace(false);
  const before = n.dp.events.head;
  n.rx(n.portA, [tcpAB(80, 'S', 40002)]);
  assert.equal(n.dp.events.head, before, 'nothing recorded once off');
});

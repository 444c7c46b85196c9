/** Flows: datapath events as Hubble flows (field names, verdicts, endpoints), filters, the compact line and the store. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowStore, FLOW_RING_SIZE, eventToFlow, hubbleTraceReason, formatFlowCompact, matchFlow, parseFlowFilter, type EndpointRef, type FlowContext } from '../../src/agent/flows.ts';
import type { DatapathEvent, DropEvent, PolicyVerdictEvent, TraceEvent } from '../../src/datapath/lib/events.ts';

const eps: (EndpointRef & { ipv4: string })[] = [
  { id: 11, name: 'xwing', labels: { org: 'alliance' }, identity: 30001, ipv4: '10.1.0.11' },
  { id: 12, name: 'deathstar', labels: { org: 'empire', 'io.kubernetes.pod.namespace': 'space' }, identity: 30002, ipv4: '10.1.0.12' },
];
const ctx: FlowContext = {
  nodeName: 'n1',
  endpoint: (id) => eps.find((e) => e.id === id),
  endpointByIp: (ip) => eps.find((e) => e.ipv4 === ip),
  identityLabels: (id) => (id === 30001 ? ['k8s:org=alliance'] : id === 30002 ? ['k8s:org=empire'] : id === 2 ? ['reserved:world'] : []),
};
const T = '2024-05-01T10:20:30.456Z';
const base = { time: Date.parse(T), ipv6: false, proto: 6, src: '10.1.0.11', dst: '10.1.0.12', sport: 40000, dport: 80, tcpFlags: 0x02, hash: 0xabc };

const drop: DropEvent = { ...base, seq: 1, type: 'drop', source: 11, reason: 133, reasonString: 'Policy denied', hook: 'to-container', srcIdentity: 30001, dstIdentity: 30002, dstEndpoint: 12, ifindex: 3, len: 74 };
const trace: TraceEvent = { ...base, seq: 2, type: 'trace', source: 11, point: 0, pointName: 'to-endpoint', reason: 0, reasonName: 'new', srcIdentity: 30001, dstIdentity: 30002, dstEndpoint: 12, ifindex: 4, len: 74, tcpFlags: 0x12 };
const verdict: PolicyVerdictEvent = { ...base, seq: 3, type: 'policy-verdict', source: 12, remoteIdentity: 30001, verdict: -133, action: 'deny', direction: 'ingress', matchType: 0 };

describe('eventToFlow', () => {
  test('a policy drop is DROPPED with drop_reason 133 / POLICY_DENIED, endpoints resolved, exact field names', () => {
    const f = eventToFlow(drop, ctx, T, 'u-1');
    assert.deepEqual(f, {
      time: T,
      uuid: 'u-1',
      verdict: 'DROPPED',
      drop_reason: 133,
      IP: { source: '10.1.0.11', destination: '10.1.0.12', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true } } },
      source: { ID: 11, identity: 30001, namespace: 'default', labels: ['k8s:org=alliance'], pod_name: 'xwing' },
      destination: { ID: 12, identity: 30002, namespace: 'space', labels: ['k8s:org=empire'], pod_name: 'deathstar' },
      Type: 'L3_L4',
      node_name: 'n1',
      event_type: { type: 1, sub_type: 133 },
      traffic_direction: 'EGRESS',
      drop_reason_desc: 'POLICY_DENIED',
      file: { name: 'bpf_lxc.c' },
      hook: 'to-container',
      Summary: 'TCP Flags: SYN',
    });
    assert.ok(!('is_reply' in f), 'is_reply is absent on drops');
  });

  test('a trace to an endpoint is FORWARDED at TO_ENDPOINT, ingress, without a drop reason', () => {
    const f = eventToFlow(trace, ctx, T, 'u-2');
    assert.equal(f.verdict, 'FORWARDED');
    assert.equal(f.trace_observation_point, 'TO_ENDPOINT');
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.deepEqual(f.event_type, { type: 4 }, 'sub_type 0 omitted, as protojson omits zero values');
    assert.deepEqual(f.l4, { TCP: { source_port: 40000, destination_port: 80, flags: { SYN: true, ACK: true } } });
    assert.equal(f.Summary, 'TCP Flags: SYN, ACK');
    assert.ok(!('drop_reason' in f) && !('drop_reason_desc' in f), 'no drop reason on a forwarded flow');
    const stack = eventToFlow({ ...trace, point: 3, pointName: 'to-stack', dst: '192.0.2.1', dstIdentity: 2, dstEndpoint: 0 }, ctx, T);
    assert.equal(stack.trace_observation_point, 'TO_STACK');
    assert.equal(stack.traffic_direction, 'EGRESS');
    assert.deepEqual(stack.destination, { identity: 2, labels: ['reserved:world'] });
    assert.match(stack.uuid, /^[0-9a-f-]{36}$/);
  });

  test('trace_reason and is_reply with Hubble\'s mapping: reasons below unknown shift by one, unknown omits both', () => {
    const at = (reason: number) => eventToFlow({ ...trace, reason, reasonName: '' }, ctx, T);
    assert.equal(at(0).trace_reason, 'NEW');
    assert.equal(at(0).is_reply, false);
    assert.equal(at(1).trace_reason, 'ESTABLISHED');
    assert.equal(at(1).is_reply, false);
    assert.equal(at(2).trace_reason, 'REPLY');
    assert.equal(at(2).is_reply, true);
    assert.equal(at(3).trace_reason, 'RELATED');
    const unknown = at(5);
    assert.ok(!('trace_reason' in unknown) && !('is_reply' in unknown), 'unknown: TRACE_REASON_UNKNOWN (zero, omitted) and no is_reply');
    assert.equal(hubbleTraceReason(2), 3);
    assert.equal(hubbleTraceReason(5), 0);
    assert.equal(eventToFlow({ ...verdict, verdict: 0, action: 'allow' }, ctx, T).is_reply, false, 'a forwarded policy verdict is a first packet');
    assert.ok(!('is_reply' in eventToFlow(verdict, ctx, T)), 'a denial does not know');
  });

  test('traffic direction of traces is the connection\'s (Hubble): a reply delivered to the client is EGRESS', () => {
    const synAck = { ...trace, src: '10.1.0.12', dst: '10.1.0.11', source: 12, dstEndpoint: 11, reason: 2, reasonName: 'reply' };
    assert.equal(eventToFlow(synAck, ctx, T).traffic_direction, 'EGRESS', 'to-endpoint at the client, reply');
    assert.equal(eventToFlow({ ...synAck, point: 5, pointName: 'from-endpoint', source: 12, dstEndpoint: 0 }, ctx, T).traffic_direction, 'INGRESS', 'leaving the server, reply: the server\'s ingress connection');
    assert.equal(eventToFlow({ ...trace, point: 5, pointName: 'from-endpoint', dstEndpoint: 0 }, ctx, T).traffic_direction, 'EGRESS', 'the SYN leaving the client');
  });

  test('time is the event\'s own timestamp', () => {
    const f = eventToFlow({ ...trace, time: Date.parse('2025-01-02T03:04:05.678Z') }, ctx);
    assert.equal(f.time, '2025-01-02T03:04:05.678Z');
  });

  test('policy verdicts: deny is DROPPED with the reason, allow FORWARDED, sides from the direction', () => {
    const deny = eventToFlow(verdict, ctx, T);
    assert.equal(deny.verdict, 'DROPPED');
    assert.equal(deny.drop_reason_desc, 'POLICY_DENIED');
    assert.deepEqual(deny.event_type, { type: 5 });
    assert.equal(deny.traffic_direction, 'INGRESS');
    assert.equal(deny.source?.identity, 30001);
    assert.equal(deny.destination?.ID, 12);
    const allow = eventToFlow({ ...verdict, verdict: 0, action: 'allow', matchType: 2 }, ctx, T);
    assert.equal(allow.verdict, 'FORWARDED');
    assert.equal(allow.policy_match_type, 2);
    assert.equal(eventToFlow({ ...verdict, verdict: 1 }, ctx, T).verdict, 'REDIRECTED');
  });

  test('UDP, ICMP and IPv6 shapes', () => {
    const udp = eventToFlow({ ...trace, proto: 17, tcpFlags: 0, sport: 5353, dport: 53 }, ctx, T);
    assert.deepEqual(udp.l4, { UDP: { source_port: 5353, destination_port: 53 } });
    assert.equal(udp.Summary, 'UDP');
    const icmp = eventToFlow({ ...trace, proto: 1, sport: 0, dport: 0, tcpFlags: 0 }, ctx, T);
    assert.deepEqual(icmp.l4, { ICMPv4: {} });
    const v6 = eventToFlow({ ...trace, ipv6: true, src: 'fd00::1', dst: 'fd00::2' }, ctx, T);
    assert.equal(v6.IP.ipVersion, 'IPv6');
  });

  test('the compact line', () => {
    assert.equal(formatFlowCompact(eventToFlow(trace, ctx, T)), 'May  1 10:20:30.456: default/xwing:40000 (ID:30001) -> space/deathstar:80 (ID:30002) to-endpoint FORWARDED (TCP Flags: SYN, ACK)');
    assert.equal(formatFlowCompact(eventToFlow(drop, ctx, T)), 'May  1 10:20:30.456: default/xwing:40000 (ID:30001) <> space/deathstar:80 (ID:30002) drop DROPPED (Policy denied)');
  });
});

describe('filters', () => {
  const d = eventToFlow(drop, ctx, T);
  const t = eventToFlow(trace, ctx, T);
  const m = (q: string, f = d) => matchFlow(f, parseFlowFilter(new URLSearchParams(q)));
  test('pods, verdicts, protocols, ports and addresses', () => {
    assert.ok(m('pod=default/xwing') && m('pod=space/deathstar') && m('pod=deathstar'), '--pod matches either side');
    assert.ok(!m('pod=default/deathstar'), 'the namespace must match when given');
    assert.ok(m('from_pod=default/xwing') && !m('from_pod=space/deathstar'), '--from-pod is the source only');
    assert.ok(m('to_pod=space/deathstar') && !m('to_pod=default/xwing'), '--to-pod is the destination only');
    assert.ok(m('verdict=DROPPED') && !m('verdict=FORWARDED') && m('verdict=FORWARDED', t), '--verdict');
    assert.ok(m('protocol=tcp') && !m('protocol=udp') && !m('protocol=icmp'), '--protocol');
    assert.ok(m('port=80') && m('port=40000') && !m('port=81'), '--port either side');
    assert.ok(m('ip=10.1.0.12') && !m('ip=10.1.0.99'), '--ip either side');
    assert.ok(m('pod=xwing&verdict=DROPPED&port=80'), 'filters combine');
    assert.throws(() => parseFlowFilter(new URLSearchParams('verdict=MAYBE')), /verdict/);
    assert.throws(() => parseFlowFilter(new URLSearchParams('port=70000')), /port/);
  });
});

describe('FlowStore', () => {
  test('reads the ring\'s shared record count first: no worker round trip while nothing happened and nobody observes', async () => {
    let reads = 0;
    let head = 0;
    const dp = {
      readEvents: async () => {
        reads++;
        return { events: head > 0 ? [drop] : [], next: head, lost: 0 };
      },
      eventHead: () => head,
    };
    const store = new FlowStore(dp, ctx);
    await store.poll();
    await store.poll();
    await store.poll();
    assert.equal(reads, 1, 'one read, then the unchanged head answers');
    head = 1;
    await store.poll();
    assert.equal(reads, 2, 'a new event: read');
    await store.query(new URLSearchParams(''));
    assert.ok(reads >= 3, 'an observer (trace lease) always reads');
  });

  test('polls the worker (trace only once someone queried), keeps 4095 flows, answers --last and since', async () => {
    const asked: boolean[] = [];
    let pending: DatapathEvent[] = [drop];
    let seq = 0;
    const dp = {
      readEvents: async (_since: number, _max: number, r: { trace?: boolean }) => {
        asked.push(!!r.trace);
        const events = pending;
        pending = [];
        seq += events.length;
        return { events, next: seq, lost: 0 };
      },
    };
    const store = new FlowStore(dp, ctx);
    await store.poll();
    assert.deepEqual(asked, [false], 'no trace events before anyone observes');
    const first = await store.query(new URLSearchParams(''));
    assert.equal(first.flows[0]!.time, T, 'stamped with the event\'s time, not the poll\'s');
    assert.equal(first.flows[0]!.flow.time, T);
    pending = Array.from({ length: FLOW_RING_SIZE }, () => trace);
    const r = await store.query(new URLSearchParams('last=3'));
    assert.equal(asked.at(-1), true, 'a query asks for trace events');
    assert.equal(r.flows.length, 3, '--last 3');
    assert.equal(r.next, FLOW_RING_SIZE + 1);
    assert.deepEqual(Object.keys(r.flows[0]!), ['flow', 'node_name', 'time'], "Hubble's envelope");
    const all = await store.query(new URLSearchParams(''));
    assert.equal(all.flows.length, FLOW_RING_SIZE, 'the ring holds 4095 flows, the oldest went first');
    assert.ok(all.flows.every((e) => e.flow.verdict === 'FORWARDED'), 'the first (dropped) flow was overwritten');
    pending = [drop];
    const more = await store.query(new URLSearchParams(`since=${all.next}&verdict=DROPPED`));
    assert.equal(more.flows.length, 1, 'since returns only the new flows');
  });
});

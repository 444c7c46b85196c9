/** Policy trace: rule-by-rule explanation and a verdict that agrees with the map lookup. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trace, parseProto } from '../../../src/agent/policy/trace.ts';
import { DROP } from '../../../src/datapath/lib/drop-reasons.ts';
import { ID } from '../../../src/datapath/lib/identity.ts';
import { DEATHSTAR, deathstar, tiefighter, xwing, setup } from './fixtures.ts';

const has = (lines: string[], re: RegExp): boolean => lines.some((l) => re.test(l));

test('deathstar: the tiefighter is allowed by rule1 spec.ingress[0], rule by rule', () => {
  const { policies, registry } = setup(DEATHSTAR);
  const t = trace(policies, registry, { from: tiefighter, to: deathstar, dport: 80, proto: 'TCP' });
  assert.equal(t.verdict, 'allowed');
  assert.match(t.lines[0]!, /^Tracing From: k8s:class=tiefighter,k8s:io\.kubernetes\.pod\.namespace=default,k8s:org=empire \(identity \d+\) => To: .*class=deathstar.*, 80\/TCP$/);
  assert.ok(has(t.lines, /^Egress from the source/), `egress step: ${t.lines.join('\n')}`);
  assert.ok(has(t.lines, /^  not enforced: no policy selecting the endpoint has egress rules$/), 'the source has no egress policy');
  assert.ok(has(t.lines, /^  enforced: ingress rules in CiliumNetworkPolicy default\/rule1$/), 'ingress enforced by rule1');
  assert.ok(
    has(t.lines, /^  CiliumNetworkPolicy default\/rule1 spec\.ingress\[0\] \[allow\]: peer matches \(spec\.ingress\[0\]\.fromEndpoints\[0\] \{org=empire, k8s:io\.kubernetes\.pod\.namespace=default\}\); port matches \(.* 80\/TCP\) -> allows$/),
    `rule line: ${t.lines.join('\n')}`,
  );
  assert.ok(has(t.lines, /policy map lookup \(identity \d+, 80\/TCP\): allow, L3-L4 match on \{identity \d+, 80\/TCP\} from CiliumNetworkPolicy default\/rule1 spec\.ingress\[0\]$/), 'map line');
  assert.equal(t.lines[t.lines.length - 1], 'Final verdict: ALLOWED');
});

test('deathstar: the x-wing is denied — no rule matches its identity (133)', () => {
  const { policies, registry } = setup(DEATHSTAR);
  const t = trace(policies, registry, { from: xwing, to: deathstar, dport: 80, proto: 'tcp' });
  assert.equal(t.verdict, 'denied');
  assert.equal(t.dropReason, DROP.POLICY);
  assert.ok(has(t.lines, /spec\.ingress\[0\] \[allow\]: peer does not match \(.*\{org=empire, .*\}\); port matches .* -> does not apply$/), `rule line: ${t.lines.join('\n')}`);
  assert.ok(has(t.lines, /^  rules: no deny applies, no allow applies -> nothing matches$/), 'rules reading');
  assert.ok(has(t.lines, /no entry -> drop \(Policy denied, 133\)$/), 'map line');
  assert.equal(t.lines[t.lines.length - 1], 'Final verdict: DENIED (ingress to the destination: Policy denied, 133)');
  const wrongPort = trace(policies, registry, { from: tiefighter, to: deathstar, dport: 443, proto: 6 });
  assert.equal(wrongPort.verdict, 'denied');
  assert.ok(has(wrongPort.lines, /port not listed \(80\/TCP\) -> does not apply$/), 'the port is named');
});

test('a deny rule is named and drops with 181; the source\'s egress policy is traced first', () => {
  const { policies, registry } = setup(`${DEATHSTAR}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-alliance}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress: [{fromEntities: [all]}]
  ingressDeny: [{fromEndpoints: [{matchLabels: {org: alliance}}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: tie-egress}
spec:
  endpointSelector: {matchLabels: {class: tiefighter}}
  egress: [{toEndpoints: [{matchLabels: {class: deathstar}}], toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]
`);
  const x = trace(policies, registry, { from: xwing, to: deathstar, dport: 80, proto: 'TCP' });
  assert.equal(x.verdict, 'denied');
  assert.equal(x.dropReason, DROP.POLICY_DENY);
  assert.ok(has(x.lines, /CiliumNetworkPolicy default\/no-alliance spec\.ingressDeny\[0\] \[deny\]: peer matches .* -> DENIES$/), `deny line: ${x.lines.join('\n')}`);
  assert.ok(has(x.lines, /CiliumNetworkPolicy default\/no-alliance spec\.ingress\[0\] \[allow\]: peer matches \(.*fromEntities\[0\] all\); every port -> allows$/), 'the allow applies too');
  assert.ok(has(x.lines, /rules: a deny applies, an allow applies -> deny$/), 'deny wins');
  assert.equal(x.lines[x.lines.length - 1], 'Final verdict: DENIED (ingress to the destination: Policy denied by denylist, 181)');

  const tieOut = trace(policies, registry, { from: tiefighter, to: deathstar, dport: 8080, proto: 'TCP' });
  assert.equal(tieOut.verdict, 'denied');
  assert.equal(tieOut.steps.length, 1, 'stopped at the source');
  assert.equal(tieOut.steps[0]!.direction, 'egress');
  assert.equal(tieOut.lines[tieOut.lines.length - 1], 'Final verdict: DENIED (egress from the source: Policy denied, 133)');
  const tieOk = trace(policies, registry, { from: tiefighter, to: deathstar, dport: 80, proto: 'TCP' });
  assert.equal(tieOk.verdict, 'allowed');
  assert.deepEqual(tieOk.steps.map((s) => [s.direction, s.lookup.verdict]), [['egress', 'allow'], ['ingress', 'allow']]);
});

test('a source given as an identity (world, a CIDR identity, the host): ingress only', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
`);
  const world = trace(policies, registry, { from: ID.WORLD, to: deathstar, dport: 443, proto: 'TCP' });
  assert.equal(world.verdict, 'allowed');
  assert.equal(world.steps.length, 1);
  assert.match(world.lines[0]!, /^Tracing From: reserved:world \(identity 2\)/);
  assert.ok(has(world.lines, /peer matches \(spec\.ingress\[0\]\.fromCIDRSet\[0\] 0\.0\.0\.0\/0 except 10\.0\.0\.0\/8\)/), 'the CIDR set is named');
  const ten = registry.cidrs.get('10.0.0.0/8')!;
  const excepted = trace(policies, registry, { from: ten, to: deathstar, dport: 443, proto: 'TCP' });
  assert.equal(excepted.verdict, 'denied', 'the except prefix has its own identity, not selected');
  assert.match(excepted.lines[0]!, /cidr:10\.0\.0\.0\/8/);
  const host = trace(policies, registry, { from: ID.HOST, to: deathstar, dport: 22, proto: 'TCP' });
  assert.equal(host.verdict, 'allowed');
  assert.ok(has(host.lines, /^  allow-localhost: the host may always reach its endpoints$/), 'allow-localhost named');
});

test('trace agrees with the map lookup across sources, ports and protocols', () => {
  const { policies, registry } = setup(`${DEATHSTAR}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k}
spec:
  podSelector: {matchLabels: {class: deathstar}}
  ingress: [{ports: [{protocol: UDP, port: 5000, endPort: 5010}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: d}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingressDeny: [{fromEndpoints: [{matchLabels: {class: tiefighter}}], toPorts: [{ports: [{port: "5005", protocol: UDP}]}]}]
  ingress: [{icmps: [{fields: [{type: 8}]}]}]
`);
  for (const from of [tiefighter, xwing, ID.WORLD, ID.HOST, ID.REMOTE_NODE] as const) {
    for (const [proto, port] of [['TCP', 80], ['TCP', 81], ['UDP', 5000], ['UDP', 5005], ['UDP', 5011], ['ICMP', 8], ['ICMP', 3]] as const) {
      const t = trace(policies, registry, { from, to: deathstar, dport: port, proto });
      for (const s of t.steps) assert.equal(s.lookup.verdict, s.ruleVerdict, `${JSON.stringify(from)} ${proto}/${port} ${s.direction}: ${t.lines.join('\n')}`);
      assert.ok(!has(t.lines, /WARNING/), 'no disagreement reported');
    }
  }
  assert.equal(trace(policies, registry, { from: tiefighter, to: deathstar, dport: 5005, proto: 'UDP' }).verdict, 'denied');
  assert.equal(trace(policies, registry, { from: xwing, to: deathstar, dport: 5005, proto: 'UDP' }).verdict, 'allowed');
  assert.equal(trace(policies, registry, { from: xwing, to: deathstar, dport: 8, proto: 'ICMP' }).verdict, 'allowed', 'echo request');
  assert.equal(trace(policies, registry, { from: xwing, to: deathstar, dport: 3, proto: 'ICMP' }).verdict, 'denied', 'other ICMP types');
  assert.equal(parseProto('icmpv6'), 58);
  assert.throws(() => parseProto('gre'), /unknown protocol "gre"/);
});

test('a pod the node does not know yet is traced as if present', () => {
  const { policies, registry } = setup(DEATHSTAR, [deathstar]);
  const t = trace(policies, registry, { from: tiefighter, to: deathstar, dport: 80, proto: 'TCP' });
  assert.equal(t.verdict, 'allowed');
  assert.ok(has(t.lines, /not yet known to this node, traced as if present: identity \d+/), 'said so');
  assert.equal(registry.get(registry.identityOf(tiefighter)), undefined, 'the registry is untouched');
});

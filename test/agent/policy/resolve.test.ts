/**
 * Resolution: enforcement per direction and the policy map entries for one
 * endpoint, checked through the datapath's lookup order (lookupPolicy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { securityLabels, type IdentityRegistry } from '../../../src/agent/identity.ts';
import { parsePolicy } from '../../../src/agent/policy/parse.ts';
import { PROTO, type Policy } from '../../../src/agent/policy/model.ts';
import {
  IMPLICIT_REF,
  entryPrefixLen,
  lookupPolicy,
  peerIdentities,
  policyPrefixes,
  resolvePolicy,
  type EnforcementMode,
  type PolicyMapEntry,
  type ResolveOptions,
} from '../../../src/agent/policy/resolve.ts';
import { DROP } from '../../../src/datapath/lib/drop-reasons.ts';
import { ID } from '../../../src/datapath/lib/identity.ts';
import { DEATHSTAR, deathstar, tiefighter, xwing, setup } from './fixtures.ts';

const TCP: number = PROTO.TCP;
const UDP: number = PROTO.UDP;

/** The verdict for traffic from/to `peer` at the endpoint with config labels `ep`. */
function verdictOf(policies: Policy[], registry: IdentityRegistry, ep: Record<string, string>, peer: number, egress: boolean, proto: number, port: number, opts: ResolveOptions = {}): string {
  return lookupPolicy(resolvePolicy(policies, registry, securityLabels(ep), opts).entries, peer, egress, proto, port).verdict;
}

test('deathstar: the empire reaches 80/TCP, the alliance does not, other ports are closed', () => {
  const { policies, registry } = setup(DEATHSTAR);
  const tie = registry.identityOf(tiefighter);
  const xw = registry.identityOf(xwing);
  const r = resolvePolicy(policies, registry, securityLabels(deathstar));
  assert.equal(r.ingress.enforced, true);
  assert.equal(r.egress.enforced, false);
  const ref = 'CiliumNetworkPolicy default/rule1 spec.ingress[0]';
  const empire = [registry.identityOf(deathstar), tie].sort((a, b) => a - b);
  assert.deepEqual(r.entries, [
    { identity: ID.HOST, egress: false, proto: 0, port: 0, endPort: 0, deny: false, ruleRefs: [IMPLICIT_REF.LOCALHOST] },
    ...empire.map((identity) => ({ identity, egress: false, proto: TCP, port: 80, endPort: 80, deny: false, ruleRefs: [ref] })),
    { identity: 0, egress: true, proto: 0, port: 0, endPort: 0, deny: false, ruleRefs: [IMPLICIT_REF.NOT_ENFORCED] },
  ]);
  const tieIn = lookupPolicy(r.entries, tie, false, TCP, 80);
  assert.equal(tieIn.verdict, 'allow');
  assert.equal(tieIn.matchType, 'L3-L4');
  const xwIn = lookupPolicy(r.entries, xw, false, TCP, 80);
  assert.equal(xwIn.verdict, 'miss');
  assert.equal(xwIn.dropReason, DROP.POLICY);
  assert.equal(lookupPolicy(r.entries, tie, false, TCP, 443).verdict, 'miss', 'only port 80');
  assert.equal(lookupPolicy(r.entries, tie, false, UDP, 80).verdict, 'miss', 'only TCP');
  assert.equal(lookupPolicy(r.entries, ID.WORLD, false, TCP, 80).verdict, 'miss', 'not the world');
  assert.equal(lookupPolicy(r.entries, xw, true, TCP, 80).verdict, 'allow', 'egress is not enforced');
  assert.equal(verdictOf(policies, registry, xwing, tie, false, TCP, 80), 'allow', 'the x-wing is not selected: nothing enforced');
});

test('new identities: callers recompute and the selector picks them up', () => {
  const { policies, registry } = setup(DEATHSTAR, [deathstar]);
  const v = registry.version;
  const before = resolvePolicy(policies, registry, securityLabels(deathstar)).entries.length;
  const bomber = registry.addPod({ org: 'empire', class: 'tiebomber' });
  assert.ok(registry.version > v, 'the registry version moved');
  const after = resolvePolicy(policies, registry, securityLabels(deathstar));
  assert.equal(after.entries.length, before + 1);
  assert.equal(lookupPolicy(after.entries, bomber, false, TCP, 80).verdict, 'allow');
});

test('namespace scoping: peers only from the policy\'s namespace unless the selector names one', () => {
  const pods: Record<string, string>[] = [{ app: 'db', 'io.kubernetes.pod.namespace': 'prod' }, { app: 'api', 'io.kubernetes.pod.namespace': 'prod' }, { app: 'api' }, { app: 'monitor', 'io.kubernetes.pod.namespace': 'ops' }];
  const { policies, registry } = setup(
    `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: api}}]
  - fromEndpoints: [{matchLabels: {app: monitor, k8s:io.kubernetes.pod.namespace: ops}}]
`,
    pods,
  );
  const [db, apiProd, apiDefault, monitor] = pods;
  const at = (peer: Record<string, string>): string => verdictOf(policies, registry, db!, registry.identityOf(peer), false, TCP, 5432);
  assert.equal(at(apiProd!), 'allow', 'api in prod');
  assert.equal(at(apiDefault!), 'miss', 'api in default is another pod');
  assert.equal(at(monitor!), 'allow', 'the selector names ops');
  assert.equal(verdictOf(policies, registry, { app: 'db' }, registry.identityOf(apiDefault!), false, TCP, 5432), 'allow', 'a db pod in default is not selected');
});

test('matchExpressions in peers: NotIn, Exists and DoesNotExist pick identities', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: exprs}
spec:
  endpointSelector: {matchExpressions: [{key: class, operator: In, values: [deathstar, station]}]}
  ingress:
  - fromEndpoints: [{matchExpressions: [{key: org, operator: Exists}, {key: class, operator: NotIn, values: [xwing, deathstar]}]}]
  - fromEndpoints: [{matchExpressions: [{key: org, operator: DoesNotExist}]}]
    toPorts: [{ports: [{port: "9000", protocol: TCP}]}]
`, [deathstar, tiefighter, xwing, { class: 'probe' }]);
  const at = (peer: Record<string, string>, port = 80): string => verdictOf(policies, registry, deathstar, registry.identityOf(peer), false, TCP, port);
  assert.equal(at(tiefighter), 'allow', 'has org, class not excluded');
  assert.equal(at(xwing), 'miss', 'class xwing is excluded');
  assert.equal(at(deathstar), 'miss', 'class deathstar is excluded');
  assert.equal(at({ class: 'probe' }), 'miss', 'no org: not the first rule');
  assert.equal(at({ class: 'probe' }, 9000), 'allow', 'no org: the second rule');
  assert.equal(verdictOf(policies, registry, { class: 'station' }, registry.identityOf(xwing), false, TCP, 80), 'miss', 'the subject expression selects class=station too');
});

test('NetworkPolicy namespaceSelector matches kubernetes.io/metadata.name; {} every namespace', () => {
  const pods = [{ app: 'db', 'io.kubernetes.pod.namespace': 'prod' }, { app: 'prom', 'io.kubernetes.pod.namespace': 'monitoring' }, { app: 'x', 'io.kubernetes.pod.namespace': 'dev' }];
  const { policies, registry } = setup(
    `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
    ports: [{port: 9187}]
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: x}}}]
    ports: [{port: 5432}]
`,
    pods,
  );
  const [db, prom, x] = pods.map((p) => registry.identityOf(p));
  const ep = pods[0]!;
  assert.equal(verdictOf(policies, registry, ep, prom!, false, TCP, 9187), 'allow', 'monitoring namespace');
  assert.equal(verdictOf(policies, registry, ep, x!, false, TCP, 9187), 'miss', 'dev namespace');
  assert.equal(verdictOf(policies, registry, ep, x!, false, TCP, 5432), 'allow', 'app=x in any namespace');
  assert.equal(verdictOf(policies, registry, ep, db!, false, TCP, 5432), 'miss');
  assert.equal(verdictOf(policies, registry, ep, ID.HOST, false, TCP, 5432), 'allow', 'allow-localhost');
  assert.equal(verdictOf(policies, registry, ep, ID.HOST, false, TCP, 5432, { allowLocalhost: false }), 'miss', 'without allow-localhost');
});

test('CIDR with except: the CIDR identities inside, not the except prefix\'s; /0 is world', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out}
spec:
  endpointSelector: {matchLabels: {class: xwing}}
  egress:
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
    toPorts: [{ports: [{port: 443, protocol: TCP}]}]
  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [192.168.0.0/16]}]
    toPorts: [{ports: [{port: 53, protocol: UDP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: other}
spec:
  endpointSelector: {matchLabels: {class: nobody}}
  egress: [{toCIDR: [10.1.2.0/24, 10.2.0.0/16]}]
`);
  assert.deepEqual(policyPrefixes(policies), ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.2.0.0/16', '192.168.0.0/16']);
  const id = (p: string): number => registry.cidrs.get(p)!;
  const peer = (n: number): number[] => peerIdentities(policies[0]!.rules[0]!.egress[n]!.peers[0]!, registry);
  assert.deepEqual(peer(0), [id('10.0.0.0/8'), id('10.2.0.0/16')], 'inside 10/8 and outside the except (10.1.2.0/24 is inside it)');
  assert.deepEqual(peer(1), [ID.WORLD, ID.WORLD_IPV4, id('10.0.0.0/8'), id('10.1.0.0/16'), id('10.1.2.0/24'), id('10.2.0.0/16')], '/0: world and every IPv4 CIDR identity but the except');
  const out = (peerId: number, proto: number, port: number): string => verdictOf(policies, registry, xwing, peerId, true, proto, port);
  assert.equal(out(id('10.0.0.0/8'), TCP, 443), 'allow', '10.9.9.9 has the 10/8 identity');
  assert.equal(out(id('10.1.0.0/16'), TCP, 443), 'miss', '10.1.9.9 has the except prefix\'s identity');
  assert.equal(out(id('10.1.2.0/24'), TCP, 443), 'miss', 'inside the except range');
  assert.equal(out(ID.WORLD, UDP, 53), 'allow');
  assert.equal(out(id('192.168.0.0/16'), UDP, 53), 'miss', 'carved out of /0');
  assert.equal(out(ID.WORLD, TCP, 443), 'miss');
  assert.throws(() => peerIdentities({ kind: 'cidr', cidr: '172.16.0.0/12', except: [], field: 'x' }, registry), /172\.16\.0\.0\/12 \(x\) has no CIDR identity/);
});

test('entities: world is outside addresses (incl. CIDR identities), cluster is every node and pod, all is identity 0', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ents}
spec:
  endpointSelector: {}
  egress:
  - toEntities: [world]
    toPorts: [{ports: [{port: 443, protocol: TCP}]}]
  - toEntities: [cluster]
    toPorts: [{ports: [{port: 8080, protocol: TCP}]}]
  - toEntities: [all]
    toPorts: [{ports: [{port: 53, protocol: UDP}]}]
  - toEntities: [host, kube-apiserver]
    toPorts: [{ports: [{port: 6443, protocol: TCP}]}]
  - toCIDR: [203.0.113.0/24]
    toPorts: [{ports: [{port: 22, protocol: TCP}]}]
`);
  const cidr = registry.cidrs.get('203.0.113.0/24')!;
  const pod = registry.identityOf(deathstar);
  const rule = policies[0]!.rules[0]!;
  assert.deepEqual(peerIdentities(rule.egress[0]!.peers[0]!, registry), [ID.WORLD, ID.WORLD_IPV4, ID.WORLD_IPV6, cidr]);
  const cluster = peerIdentities(rule.egress[1]!.peers[0]!, registry);
  for (const id of [ID.HOST, ID.REMOTE_NODE, ID.INIT, ID.HEALTH, ID.UNMANAGED, ID.KUBE_APISERVER, ID.INGRESS, pod]) assert.ok(cluster.includes(id), `cluster includes ${id}`);
  assert.ok(!cluster.includes(ID.WORLD) && !cluster.includes(cidr), 'cluster excludes the world');
  assert.deepEqual(peerIdentities(rule.egress[2]!.peers[0]!, registry), [0]);
  const out = (peer: number, port: number, proto = TCP): string => verdictOf(policies, registry, xwing, peer, true, proto, port);
  assert.equal(out(ID.WORLD, 443), 'allow');
  assert.equal(out(cidr, 443), 'allow', 'a CIDR identity is world too');
  assert.equal(out(pod, 443), 'miss', 'pods are not world');
  assert.equal(out(pod, 8080), 'allow');
  assert.equal(out(ID.REMOTE_NODE, 8080), 'allow');
  assert.equal(out(ID.WORLD, 8080), 'miss', 'the world is not the cluster');
  assert.equal(out(ID.WORLD, 53, UDP), 'allow', 'all');
  const all = lookupPolicy(resolvePolicy(policies, registry, securityLabels(xwing)).entries, pod, true, UDP, 53);
  assert.equal(all.matchType, 'L4-Only', 'identity 0 + protocol + port');
  assert.equal(out(ID.KUBE_APISERVER, 6443), 'allow');
  assert.equal(out(cidr, 22), 'allow');
  assert.equal(out(ID.WORLD, 22), 'miss', 'a /24 is not the whole world');
});

test('deny beats allow: across identities, within one, and where port ranges overlap', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mixed}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEntities: [all]
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: 8000, endPort: 8100, protocol: TCP}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {org: alliance}}]
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts: [{ports: [{port: 8050, endPort: 8060, protocol: TCP}]}]
  - toPorts: [{ports: [{port: 22, protocol: TCP}]}]
`);
  const tie = registry.identityOf(tiefighter);
  const xw = registry.identityOf(xwing);
  const r = resolvePolicy(policies, registry, securityLabels(deathstar));
  const v = (peer: number, port: number, proto = TCP): PolicyMapEntry | string => {
    const l = lookupPolicy(r.entries, peer, false, proto, port);
    return l.verdict;
  };
  assert.equal(v(xw, 80), 'deny', 'the alliance is denied although all is allowed');
  assert.equal(lookupPolicy(r.entries, xw, false, TCP, 80).dropReason, DROP.POLICY_DENY);
  assert.equal(v(ID.WORLD, 80), 'allow', 'everyone else is allowed');
  assert.equal(v(ID.WORLD, 22), 'deny', 'port 22 is denied for all');
  assert.equal(v(tie, 22), 'deny');
  assert.equal(v(tie, 8049), 'allow');
  assert.equal(v(tie, 8050), 'deny', 'the deny range inside the allowed range');
  assert.equal(v(tie, 8060), 'deny');
  assert.equal(v(tie, 8061), 'allow');
  // The tiefighter's 8000-8100 allow was cut around 8050-8060: no allow overlaps a deny of the same peer.
  const tieAllows = r.entries.filter((e) => e.identity === tie && !e.deny && e.proto === TCP).map((e) => [e.port, e.endPort]);
  assert.deepEqual(tieAllows, [[8000, 8049], [8061, 8100]]);
  // The alliance's L3 deny removed nothing else for it, and the "allow all" on identity 0 stays general.
  assert.ok(!r.entries.some((e) => e.identity === xw && !e.deny), 'no allow is left for a denied peer');
});

test('a deny on a peer shadows a more specific allow on identity 0 for both lookup styles', () => {
  const { policies, registry } = setup(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: p}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - toPorts: [{ports: [{port: 80, protocol: TCP}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {org: alliance}}]
`);
  const xw = registry.identityOf(xwing);
  const r = resolvePolicy(policies, registry, securityLabels(deathstar));
  assert.equal(lookupPolicy(r.entries, xw, false, TCP, 80).verdict, 'deny');
  assert.equal(longestMatch(r.entries, xw, false, TCP, 80), 'deny', 'the overlap {x-wing, 80/TCP} is written as a deny');
  assert.ok(
    r.entries.some((e) => e.identity === xw && e.deny && e.proto === TCP && e.port === 80),
    'overlap entry present',
  );
});

test('port ranges (endPort) in both kinds', () => {
  const { policies, registry } = setup(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range}
spec:
  podSelector: {matchLabels: {class: deathstar}}
  ingress:
  - ports: [{port: 32000, endPort: 32768}, {protocol: UDP, port: 5000, endPort: 5001}]
`);
  const tie = registry.identityOf(tiefighter);
  const at = (port: number, proto = TCP): string => verdictOf(policies, registry, deathstar, tie, false, proto, port);
  assert.equal(at(31999), 'miss');
  assert.equal(at(32000), 'allow');
  assert.equal(at(32500), 'allow');
  assert.equal(at(32768), 'allow');
  assert.equal(at(32769), 'miss');
  assert.equal(at(5001, UDP), 'allow');
  assert.equal(at(5001), 'miss', 'UDP range only');
  const e = resolvePolicy(policies, registry, securityLabels(deathstar)).entries.find((x) => x.port === 32000)!;
  assert.deepEqual([e.identity, e.port, e.endPort], [0, 32000, 32768]);
  assert.equal(entryPrefixLen(e, TCP, 32768), 24, 'the last port is its own /16 block (8 + 16 bits)');
  assert.equal(entryPrefixLen(e, TCP, 32001), 8 + 8, '32000 is 256-aligned: 32000-32255 is one block, 8 port bits');
  assert.equal(entryPrefixLen(e, TCP, 32767), 8 + 7, '32256-32767 is the next block, 512 ports: 7 port bits');
});

test('enforcement modes: default per direction, always, never; ingress: [{}] denies all; deny-only and enableDefaultDeny', () => {
  const tie = { org: 'empire', class: 'tiefighter' };
  const run = (yaml: string, mode: EnforcementMode = 'default') => {
    const { policies, registry } = setup(yaml);
    const r = resolvePolicy(policies, registry, securityLabels(deathstar), { mode });
    return { r, v: (egress: boolean, peer = registry.identityOf(tie), port = 80) => lookupPolicy(r.entries, peer, egress, TCP, port).verdict };
  };
  const none = run('');
  assert.equal(none.r.ingress.enforced, false, 'no policy: not enforced');
  assert.equal(none.v(false), 'allow');

  const egressOnly = run(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: e}
spec:
  endpointSelector: {}
  egress: [{toEntities: [world]}]
`);
  assert.deepEqual([egressOnly.r.ingress.enforced, egressOnly.r.egress.enforced], [false, true], 'only the direction with rules');
  assert.equal(egressOnly.v(false), 'allow');
  assert.equal(egressOnly.v(true), 'miss', 'egress to a pod is not world');

  const denyAll = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-all}
spec:
  endpointSelector: {}
  ingress: [{}]
`;
  const d = run(denyAll);
  assert.equal(d.r.ingress.enforced, true, 'an empty rule enforces');
  assert.equal(d.v(false), 'miss', 'and allows nothing');
  assert.equal(d.v(false, ID.HOST), 'allow', 'but the host (allow-localhost)');
  assert.equal(d.v(true), 'allow', 'egress untouched');

  const always = run('', 'always');
  assert.deepEqual([always.r.ingress.enforced, always.r.egress.enforced], [true, true]);
  assert.equal(always.v(false), 'miss');
  assert.equal(always.v(true), 'miss');

  const deny = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny}
spec:
  endpointSelector: {}
  ingressDeny: [{fromEndpoints: [{matchLabels: {org: alliance}}]}]
`;
  const never = run(deny, 'never');
  assert.equal(never.r.ingress.enforced, false);
  assert.equal(never.v(false, setup('').registry.identityOf(xwing)), 'allow', 'never: even deny rules are off');

  const denyOnly = run(deny);
  assert.equal(denyOnly.r.ingress.enforced, true, 'deny rules enforce');
  assert.equal(denyOnly.r.ingress.defaultDeny, true);
  assert.equal(denyOnly.v(false), 'miss', 'and default-deny everything else (Cilium: add an allow rule)');

  const optOut = run(deny.replace('spec:\n', 'spec:\n  enableDefaultDeny: {ingress: false}\n'));
  assert.equal(optOut.r.ingress.defaultDeny, false);
  assert.equal(optOut.v(false), 'allow', 'enableDefaultDeny false: the rest stays allowed');
  assert.equal(optOut.v(false, setup('').registry.identityOf(xwing)), 'deny', '… while the deny applies');

  const np = run(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`);
  assert.deepEqual([np.r.ingress.enforced, np.r.egress.enforced], [true, true], 'policyTypes without rules: deny both');
  assert.equal(np.v(true), 'miss');

  const init = resolvePolicy([], setup('').registry, { 'reserved:init': '' });
  assert.deepEqual([init.ingress.enforced, init.egress.enforced], [true, true], 'reserved:init is always enforced');
});

/** A plain longest-prefix lookup that keeps the peer's entry on a tie (no deny shortcut). */
function longestMatch(entries: readonly PolicyMapEntry[], identity: number, egress: boolean, proto: number, port: number): string {
  let best: { e: PolicyMapEntry; len: number; peer: boolean } | undefined;
  for (const e of entries) {
    if (e.egress !== egress || (e.identity !== identity && e.identity !== 0)) continue;
    const len = entryPrefixLen(e, proto, port);
    if (len < 0) continue;
    const peer = e.identity !== 0;
    if (!best || len > best.len || (len === best.len && peer && !best.peer)) best = { e, len, peer };
  }
  return best ? (best.e.deny ? 'deny' : 'allow') : 'miss';
}

/** Small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('property: on random policies the entries, looked up in the datapath\'s order, give what the rules say', () => {
  const rnd = prng(0x7a9e57);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const pods: Record<string, string>[] = [{ app: 'a' }, { app: 'b' }, { app: 'c', tier: 'x' }];
  const ports = [0, 80, 81, 84, 85, 90, 100, 443];
  const randomRule = (): Record<string, unknown> => {
    const r: Record<string, unknown> = {};
    const l3 = pick(['none', 'endpoints', 'entities', 'cidr']);
    if (l3 === 'endpoints') r.fromEndpoints = [{ matchLabels: { app: pick(['a', 'b', 'c']) } }];
    if (l3 === 'entities') r.fromEntities = [pick(['all', 'world', 'cluster', 'host'])];
    if (l3 === 'cidr') r.fromCIDRSet = [pick([{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }, { cidr: '10.1.0.0/16' }, { cidr: '0.0.0.0/0' }])];
    if (rnd() < 0.6) {
      const port = pick(ports);
      const p: Record<string, unknown> = { protocol: pick(['TCP', 'UDP', 'ANY']) };
      if (port !== 0) p.port = port;
      if (port !== 0 && rnd() < 0.4) p.endPort = port + Math.floor(rnd() * 20);
      r.toPorts = [{ ports: [p] }];
    }
    return r;
  };
  for (let round = 0; round < 60; round++) {
    const spec: Record<string, unknown> = { endpointSelector: {} };
    spec.ingress = Array.from({ length: 1 + Math.floor(rnd() * 3) }, randomRule);
    if (rnd() < 0.7) spec.ingressDeny = Array.from({ length: 1 + Math.floor(rnd() * 2) }, randomRule);
    const policy = parsePolicy({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: `r${round}` }, spec });
    const { registry } = setup('', pods);
    registry.syncCidrs(policyPrefixes([policy]));
    const labels = securityLabels(pods[0]!);
    const resolved = resolvePolicy([policy], registry, labels);
    const peers = registry.all().map((i) => i.identity);
    for (const peer of peers) {
      for (const proto of [PROTO.TCP, PROTO.UDP, PROTO.ICMP]) {
        for (const port of [1, 79, 80, 81, 84, 85, 86, 90, 99, 100, 101, 443, 8080]) {
          const want = ruleReading(policy, registry, peer, proto, port);
          const got = lookupPolicy(resolved.entries, peer, false, proto, port).verdict;
          const ctx = `round ${round}, peer ${peer}, ${proto}/${port}: ${JSON.stringify(spec)}`;
          assert.equal(got, want, `datapath order: ${ctx}`);
          assert.equal(longestMatch(resolved.entries, peer, false, proto, port), want, `longest match: ${ctx}`);
        }
      }
    }
  }
});

/** The rules read directly: a deny that applies wins, then an allow (incl. allow-localhost), else nothing. */
function ruleReading(policy: Policy, registry: IdentityRegistry, peer: number, proto: number, port: number): string {
  let allow = peer === ID.HOST;
  let deny = false;
  for (const pr of policy.rules[0]!.ingress) {
    const ids = pr.peers.flatMap((p) => peerIdentities(p, registry));
    if (!ids.includes(peer) && !ids.includes(0)) continue;
    const portOk = pr.ports === undefined || pr.ports.some((p) => p.proto === proto && (p.port === 0 || (port >= p.port && port <= p.endPort)));
    if (!portOk) continue;
    if (pr.deny) deny = true;
    else allow = true;
  }
  return deny ? 'deny' : allow ? 'allow' : 'miss';
}

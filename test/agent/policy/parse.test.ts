/** Policy documents: both kinds parse to the model; bad ones are rejected whole, naming file, line, column and field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicies, parsePolicy, PolicyError } from '../../../src/agent/policy/parse.ts';
import { formatSelector } from '../../../src/agent/policy/selector.ts';
import { PROTO } from '../../../src/agent/policy/model.ts';
import { DEATHSTAR } from './fixtures.ts';

const NP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
  namespace: prod
spec:
  podSelector:
    matchLabels:
      app: db
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: api
    ports:
    - port: 5432
`;

test('the deathstar CiliumNetworkPolicy: subject and peers scoped to its namespace, 80/TCP', () => {
  const [p] = parsePolicies(DEATHSTAR, 'ds.yaml');
  assert.equal(p!.id, 'CiliumNetworkPolicy default/rule1');
  assert.equal(p!.namespace, 'default', 'no metadata.namespace: default');
  const r = p!.rules[0]!;
  assert.equal(formatSelector(r.subject), '{org=empire, class=deathstar, k8s:io.kubernetes.pod.namespace=default}');
  assert.deepEqual(r.enforces, { ingress: true, egress: false });
  assert.equal(r.ingress.length, 1);
  const ing = r.ingress[0]!;
  assert.equal(ing.field, 'spec.ingress[0]');
  assert.equal(ing.deny, false);
  assert.equal(ing.peers.length, 1);
  const peer = ing.peers[0]!;
  assert.equal(peer.kind, 'endpoints');
  assert.equal(peer.kind === 'endpoints' && formatSelector(peer.selector), '{org=empire, k8s:io.kubernetes.pod.namespace=default}');
  assert.deepEqual(ing.ports, [{ proto: PROTO.TCP, port: 80, endPort: 80, field: 'spec.ingress[0].toPorts[0].ports[0]' }]);
});

test('CiliumNetworkPolicy details: specs, ANY = TCP+UDP+SCTP, endPort, icmps, CIDR sets, entities, deny rules, L4-only', () => {
  const [p] = parsePolicies(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: many, namespace: prod}
specs:
- endpointSelector: {matchLabels: {app: a}}
  ingress:
  - toPorts: [{ports: [{port: 53}]}]
  - fromEntities: [world, cluster]
    icmps: [{fields: [{type: EchoRequest}, {type: 128, family: IPv6}]}]
  ingressDeny:
  - fromCIDRSet: [{cidr: 192.0.2.0/24, except: [192.0.2.128/25]}]
    toPorts: [{ports: [{port: "8000", endPort: 8080, protocol: UDP}]}]
- endpointSelector: {}
  egress:
  - toCIDR: [198.51.100.7]
  - toEndpoints: [{}]
`);
  assert.equal(p!.rules.length, 2);
  const [a, b] = p!.rules;
  assert.equal(a!.ref, 'CiliumNetworkPolicy prod/many specs[0]');
  const [l4only, ents, deny] = a!.ingress;
  assert.deepEqual(l4only!.peers.map((x) => x.kind === 'entity' && x.entity), ['all'], 'ports without a peer selector: every peer');
  assert.deepEqual(
    l4only!.ports!.map((x) => [x.proto, x.port]),
    [[PROTO.TCP, 53], [PROTO.UDP, 53], [PROTO.SCTP, 53]],
    'protocol defaults to ANY, which is TCP, UDP and SCTP',
  );
  assert.deepEqual(ents!.peers.map((x) => x.kind === 'entity' && x.entity), ['world', 'cluster']);
  assert.deepEqual(ents!.ports!.map((x) => [x.proto, x.port]), [[PROTO.ICMP, 8], [PROTO.ICMPV6, 128]]);
  assert.equal(deny!.deny, true);
  assert.equal(deny!.field, 'specs[0].ingressDeny[0]');
  assert.deepEqual(deny!.peers[0], { kind: 'cidr', cidr: '192.0.2.0/24', except: ['192.0.2.128/25'], field: 'specs[0].ingressDeny[0].fromCIDRSet[0]' });
  assert.deepEqual(deny!.ports!.map((x) => [x.proto, x.port, x.endPort]), [[PROTO.UDP, 8000, 8080]]);
  assert.equal(formatSelector(b!.subject), '{k8s:io.kubernetes.pod.namespace=prod}', 'endpointSelector {} is the whole namespace');
  assert.deepEqual(b!.enforces, { ingress: false, egress: true });
  assert.deepEqual(b!.egress[0]!.peers[0], { kind: 'cidr', cidr: '198.51.100.7/32', except: [], field: 'specs[1].egress[0].toCIDR[0]' });
  const all = b!.egress[1]!.peers[0]!;
  assert.equal(all.kind === 'endpoints' && formatSelector(all.selector), '{k8s:io.kubernetes.pod.namespace=prod}', 'toEndpoints [{}] is every pod of the namespace');
});

test('an empty rule selects no peer yet enforces; explicitly empty CIDR lists select nothing', () => {
  const [p] = parsePolicies(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-all}
spec:
  endpointSelector: {}
  ingress: [{}]
  egress:
  - toCIDR: []
    toPorts: [{ports: [{port: 80, protocol: TCP}]}]
`);
  const r = p!.rules[0]!;
  assert.deepEqual(r.enforces, { ingress: true, egress: true });
  assert.deepEqual(r.ingress[0]!.peers, []);
  assert.equal(r.ingress[0]!.ports, undefined);
  assert.deepEqual(r.egress[0]!.peers, [], 'toCIDR: [] selects nothing even with ports (Cilium)');
});

test('the Kubernetes NetworkPolicy: podSelector scoped, ports default to TCP, policyTypes default to Ingress', () => {
  const [p] = parsePolicies(NP);
  assert.equal(p!.id, 'NetworkPolicy prod/db');
  const r = p!.rules[0]!;
  assert.equal(formatSelector(r.subject), '{k8s:app=db, k8s:io.kubernetes.pod.namespace=prod}');
  assert.deepEqual(r.enforces, { ingress: true, egress: false });
  const peer = r.ingress[0]!.peers[0]!;
  assert.equal(peer.kind === 'endpoints' && formatSelector(peer.selector), '{k8s:app=api, k8s:io.kubernetes.pod.namespace=prod}');
  assert.deepEqual(r.ingress[0]!.ports, [{ proto: PROTO.TCP, port: 5432, endPort: 5432, field: 'spec.ingress[0].ports[0]' }]);
});

test('NetworkPolicy peers: namespaceSelector by namespace labels, {} = every namespace, ipBlock, empty from = everyone', () => {
  const [p] = parsePolicies(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: mix, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
      podSelector: {matchExpressions: [{key: app, operator: In, values: [prometheus, grafana]}]}
    - namespaceSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
  - ports: [{protocol: UDP}, {port: 8000, endPort: 8100}]
  egress:
  - to: []
`);
  const r = p!.rules[0]!;
  assert.deepEqual(r.enforces, { ingress: true, egress: true });
  const [ns, anyNs, block] = r.ingress[0]!.peers;
  assert.equal(ns!.kind === 'endpoints' && formatSelector(ns!.selector), '{k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=monitoring, k8s:app in (prometheus, grafana)}');
  assert.equal(anyNs!.kind === 'endpoints' && formatSelector(anyNs!.selector), '{k8s:io.kubernetes.pod.namespace}');
  assert.deepEqual(block, { kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16'], field: 'spec.ingress[0].from[2].ipBlock' });
  const portsOnly = r.ingress[1]!;
  assert.deepEqual(portsOnly.peers.map((x) => x.kind === 'entity' && x.entity), ['all'], 'no from: every source');
  assert.deepEqual(portsOnly.ports!.map((x) => [x.proto, x.port, x.endPort]), [[PROTO.UDP, 0, 0], [PROTO.TCP, 8000, 8100]]);
  assert.deepEqual(r.egress[0]!.peers.map((x) => x.kind === 'entity' && x.entity), ['all'], 'to: [] is every destination');
  assert.equal(r.egress[0]!.ports, undefined);
});

test('NetworkPolicy policyTypes: egress rules add Egress by default; a direction left out is ignored', () => {
  const [withEgress] = parsePolicies(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e}
spec:
  podSelector: {}
  egress: [{to: [{podSelector: {}}]}]
`);
  assert.deepEqual(withEgress!.rules[0]!.enforces, { ingress: true, egress: true }, 'Ingress always, Egress because egress rules exist');
  assert.deepEqual(withEgress!.rules[0]!.ingress, [], 'no ingress rules: ingress denied');
  const [egressOnly] = parsePolicies(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e}
spec:
  podSelector: {}
  policyTypes: [Egress]
  ingress: [{}]
`);
  assert.deepEqual(egressOnly!.rules[0]!.enforces, { ingress: false, egress: true });
  assert.deepEqual(egressOnly!.rules[0]!.ingress, [], 'ingress rules outside policyTypes are ignored, as in Kubernetes');
});

test('several documents in one text; empty documents skipped', () => {
  const ps = parsePolicies(`---\n${DEATHSTAR}---\n---\n${NP}`);
  assert.deepEqual(
    ps.map((p) => p.id),
    ['CiliumNetworkPolicy default/rule1', 'NetworkPolicy prod/db'],
  );
  assert.deepEqual(parsePolicies(''), []);
  assert.deepEqual(parsePolicies('# nothing\n'), []);
});

const rejections: [string, string, RegExp][] = [
  ['port out of range', DEATHSTAR.replace('"80"', '70000'), /^p\.yaml:17:15: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: must be 1-65535/],
  ['named port', DEATHSTAR.replace('"80"', '"http"'), /ports\[0\]\.port: named port "http" is not supported/],
  ['unknown field', DEATHSTAR.replace('    toPorts:', '    colour: red\n    toPorts:'), /^p\.yaml:12:5: spec\.ingress\[0\]: unknown field\(s\) colour$/],
  ['unsupported field', DEATHSTAR.replace('  - fromEndpoints:', '  - toFQDNs: [{matchName: x}]\n    fromEndpoints:'), /spec\.ingress\[0\]: toFQDNs: DNS-based policy needs a DNS proxy/],
  ['L7 rules', DEATHSTAR.replace('        protocol: TCP', '        protocol: TCP\n      rules: {http: [{method: GET}]}'), /spec\.ingress\[0\]\.toPorts\[0\]: rules: L7 rules need a proxy/],
  ['lower-case protocol', DEATHSTAR.replace('protocol: TCP', 'protocol: tcp'), /ports\[0\]\.protocol: must be TCP, UDP, SCTP, ICMP, ICMPv6 or ANY/],
  ['bad operator', DEATHSTAR.replace('    - matchLabels:\n        org: empire\n    toPorts', '    - matchExpressions: [{key: org, operator: Has}]\n    toPorts'), /fromEndpoints\[0\]\.matchExpressions\[0\]\.operator: must be In, NotIn, Exists or DoesNotExist/],
  ['In without values', DEATHSTAR.replace('    - matchLabels:\n        org: empire\n    toPorts', '    - matchExpressions: [{key: org, operator: In}]\n    toPorts'), /matchExpressions\[0\]\.values: must not be empty for In/],
  ['Exists with values', DEATHSTAR.replace('    - matchLabels:\n        org: empire\n    toPorts', '    - matchExpressions: [{key: org, operator: Exists, values: [a]}]\n    toPorts'), /matchExpressions\[0\]\.values: must be empty for Exists/],
  ['two L3 kinds in one rule', DEATHSTAR.replace('    toPorts:', '    fromCIDR: [10.0.0.0/8]\n    toPorts:'), /spec\.ingress\[0\]: combining fromEndpoints and fromCIDR in one rule is not supported/],
  ['icmps beside toPorts', DEATHSTAR.replace('    toPorts:', '    icmps: [{fields: [{type: 8}]}]\n    toPorts:'), /spec\.ingress\[0\]: icmps may not sit beside toPorts/],
  ['except outside the CIDR', DEATHSTAR.replace('  - fromEndpoints:\n    - matchLabels:\n        org: empire\n', '  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}]\n'), /fromCIDRSet\[0\]\.except\[0\]: 11\.0\.0\.0\/16 is not strictly inside 10\.0\.0\.0\/8/],
  ['host bits', DEATHSTAR.replace('  - fromEndpoints:\n    - matchLabels:\n        org: empire\n', '  - fromCIDR: [10.0.0.1/8]\n'), /fromCIDR\[0\]: has bits set past the prefix length \(did you mean 10\.0\.0\.0\/8\?\)/],
  ['unknown kind', DEATHSTAR.replace('kind: CiliumNetworkPolicy', 'kind: Pod'), /^p\.yaml:2:7: kind: must be CiliumNetworkPolicy/],
  ['clusterwide policy', DEATHSTAR.replace('kind: CiliumNetworkPolicy', 'kind: CiliumClusterwideNetworkPolicy'), /kind: CiliumClusterwideNetworkPolicy is not supported/],
  ['wrong apiVersion', DEATHSTAR.replace('cilium.io/v2', 'cilium.io/v1'), /^p\.yaml:1:13: apiVersion: must be cilium\.io\/v2/],
  ['no endpointSelector', DEATHSTAR.replace('  endpointSelector:\n    matchLabels:\n      org: empire\n      class: deathstar\n', ''), /spec\.endpointSelector: required$/],
  ['no spec', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\n', /spec: required \(or specs\)$/],
  ['unknown entity', DEATHSTAR.replace('  - fromEndpoints:\n    - matchLabels:\n        org: empire\n', '  - fromEntities: [galaxy]\n'), /fromEntities\[0\]: must be one of all, world/],
  ['ICMP type 0', DEATHSTAR.replace('    toPorts:\n    - ports:\n      - port: "80"\n        protocol: TCP\n', '    icmps: [{fields: [{type: EchoReply}]}]\n'), /icmps\[0\]\.fields\[0\]\.type: type 0 \(EchoReply\) cannot be matched on its own/],
  ['endPort below port', DEATHSTAR.replace('protocol: TCP', 'protocol: TCP\n        endPort: 70'), /ports\[0\]\.endPort: must be ≥ port \(80\)/],
  ['bad label key', DEATHSTAR.replace('        org: empire', '        "bad key!": empire'), /matchLabels\.bad key!: bad label key/],
  ['subject in another namespace', DEATHSTAR.replace('      class: deathstar\n', '      class: deathstar\n      k8s:io.kubernetes.pod.namespace: kube-system\n'), /spec\.endpointSelector\.matchLabels\.k8s:io\.kubernetes\.pod\.namespace: a policy in namespace "default" only selects pods of that namespace/],
  ['same policy twice', `${DEATHSTAR}---\n${DEATHSTAR}`, /^p\.yaml:23:9: metadata\.name: CiliumNetworkPolicy default\/rule1 is already defined at p\.yaml:4:9$/],
  ['YAML syntax', 'apiVersion: [1', /^p\.yaml:1:\d+: /],
  ['NetworkPolicy port 0', NP.replace('port: 5432', 'port: 0'), /^p\.yaml:16:13: spec\.ingress\[0\]\.ports\[0\]\.port: must be 1-65535$/],
  ['NetworkPolicy endPort below port', NP.replace('port: 5432', 'port: 5432\n      endPort: 5000'), /spec\.ingress\[0\]\.ports\[0\]\.endPort: must be ≥ port \(5432\)/],
  ['NetworkPolicy ipBlock with podSelector', NP.replace('    - podSelector:', '    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector:'), /from\[0\]\.ipBlock: cannot be combined with podSelector or namespaceSelector/],
  ['NetworkPolicy empty peer', NP.replace('    - podSelector:\n        matchLabels:\n          app: api\n', '    - {}\n'), /from\[0\]: needs podSelector, namespaceSelector or ipBlock/],
  ['NetworkPolicy protocol', NP.replace('port: 5432', 'port: 5432\n      protocol: ICMP'), /ports\[0\]\.protocol: must be TCP, UDP or SCTP/],
  ['NetworkPolicy without podSelector', NP.replace('  podSelector:\n    matchLabels:\n      app: db\n', ''), /spec\.podSelector: required$/],
  ['NetworkPolicy policyTypes', NP.replace('spec:\n', 'spec:\n  policyTypes: [ingress]\n'), /spec\.policyTypes\[0\]: must be Ingress or Egress/],
  ['a bad second document rejects both', `${DEATHSTAR}---\n${NP.replace('port: 5432', 'port: 99999')}`, /^p\.yaml:35:13: spec\.ingress\[0\]\.ports\[0\]\.port: must be 1-65535$/],
];

for (const [what, text, re] of rejections) {
  test(`rejected: ${what}`, () => {
    assert.throws(
      () => parsePolicies(text, 'p.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof PolicyError, `a PolicyError, got ${String(e)}`);
        assert.match(e.message, re);
        return true;
      },
    );
  });
}

test('an API body is checked the same way, the message naming the field without a file', () => {
  const body = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x' }, spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 0, endPort: 5 }] }] }] } };
  assert.throws(
    () => parsePolicy(body),
    (e: unknown) => {
      assert.ok(e instanceof PolicyError, 'a PolicyError');
      assert.equal(e.message, 'spec.ingress[0].toPorts[0].ports[0].endPort: needs a port other than 0');
      assert.equal(e.field, 'spec.ingress[0].toPorts[0].ports[0].endPort');
      assert.equal(e.status, 400);
      return true;
    },
  );
  assert.equal(parsePolicy({ ...body, spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '443' }] }] }] } }).rules[0]!.ingress[0]!.ports![0]!.port, 443);
  assert.throws(() => parsePolicy([1]), { name: 'PolicyError', message: /^\(document\): must be a mapping/ });
});

/** Identities: Cilium's label filter, reserved and CIDR identities, the registry selectors run against. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IdentityAllocator,
  CidrIdentityAllocator,
  IdentityRegistry,
  LOCAL_IDENTITY_FLAG,
  MIN_CLUSTER_IDENTITY,
  MAX_CLUSTER_IDENTITY,
  RESERVED_IDENTITIES,
  identityLabels,
  isIdentityRelevant,
  podLabels,
  reservedLabels,
  securityLabels,
} from '../../../src/agent/identity.ts';
import { ID, reservedIdentityName } from '../../../src/datapath/lib/identity.ts';

test('pods differing only in pod-template-hash (and other bookkeeping labels) share an identity', () => {
  const a = new IdentityAllocator();
  const base = { app: 'web', tier: 'frontend' };
  const id = a.for({ ...base, 'pod-template-hash': '5d9c7b7f4' });
  assert.equal(a.for({ ...base, 'pod-template-hash': '77f8d4c6b' }), id);
  assert.equal(a.for(base), id);
  assert.equal(a.for({ ...base, 'controller-revision-hash': 'web-6c8f', 'pod-template-generation': '3' }), id);
  assert.equal(a.for({ ...base, 'statefulset.kubernetes.io/pod-name': 'web-0', 'apps.kubernetes.io/pod-index': '0' }), id);
  assert.equal(a.for({ ...base, 'batch.kubernetes.io/job-completion-index': '2', 'annotation.foo': 'x' }), id);
  assert.notEqual(a.for({ ...base, version: 'v2' }), id, 'a label that counts makes a new identity');
  assert.notEqual(a.for({ ...base, 'app.kubernetes.io/name': 'web' }), id, 'app.kubernetes.io labels count');
});

test('which labels count: Cilium\'s default include/ignore prefixes, longest include beats shortest ignore', () => {
  const cases: [string, string, boolean][] = [
    ['k8s', 'app', true],
    ['k8s', 'org', true],
    ['k8s', 'io.kubernetes.pod.namespace', true], // include (27 chars) beats "!io.kubernetes" (13)
    ['k8s', 'io.kubernetes.container.name', false],
    ['k8s', 'kubernetes.io/hostname', false],
    ['k8s', 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name', true],
    ['k8s', 'io.cilium.k8s.policy.cluster', true],
    ['k8s', 'app.kubernetes.io/name', true],
    ['k8s', 'beta.kubernetes.io/arch', false],
    ['k8s', 'topology.beta.kubernetes.io/zone', false],
    ['k8s', 'k8s.io/foo', false],
    ['k8s', 'etcd_node', false],
    ['reserved', 'host', true],
    ['cidr', '10.0.0.0/8', true],
  ];
  for (const [source, key, want] of cases) assert.equal(isIdentityRelevant(source, key), want, `${source}:${key}`);
});

test('config labels become k8s: labels with the namespace (default "default"), its name label and the cluster', () => {
  assert.deepEqual(podLabels({ app: 'web' }), {
    'k8s:app': 'web',
    'k8s:io.kubernetes.pod.namespace': 'default',
    'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'default',
    'k8s:io.cilium.k8s.policy.cluster': 'default',
  });
  assert.equal(podLabels({ app: 'web', 'io.kubernetes.pod.namespace': 'prod' })['k8s:io.kubernetes.pod.namespace'], 'prod');
  assert.deepEqual(identityLabels(podLabels({ app: 'web', 'pod-template-hash': 'x' })), securityLabels({ app: 'web' }));
  const a = new IdentityAllocator();
  assert.equal(a.for({ app: 'web' }), a.for({ app: 'web', 'io.kubernetes.pod.namespace': 'default' }), 'an absent namespace is "default"');
  assert.notEqual(a.for({ app: 'web' }), a.for({ app: 'web', 'io.kubernetes.pod.namespace': 'prod' }), 'namespaces part identities');
});

test('cluster identities are 256..65535 and the same on every node (no shared allocator)', () => {
  const n1 = new IdentityAllocator();
  const n2 = new IdentityAllocator();
  const sets = Array.from({ length: 50 }, (_, i) => ({ app: `app${i}` }));
  for (const s of sets) {
    const id = n1.for(s);
    assert.ok(id >= MIN_CLUSTER_IDENTITY && id <= MAX_CLUSTER_IDENTITY, `identity ${id} in the cluster range`);
  }
  for (const s of [...sets].reverse()) assert.equal(n2.for(s), n1.for(s), `${s.app} agrees across nodes`);
});

test('reserved identities 0-11 carry Cilium\'s names, matching the datapath\'s table', () => {
  assert.equal(RESERVED_IDENTITIES.length, 12);
  RESERVED_IDENTITIES.forEach((r, i) => assert.equal(r.id, i));
  for (let id = 0; id <= 10; id++) assert.equal(RESERVED_IDENTITIES[id]!.name, reservedIdentityName(id));
  assert.equal(RESERVED_IDENTITIES[11]!.name, 'overlay-to-encrypt');
  assert.deepEqual(reservedLabels(ID.REMOTE_NODE), { 'reserved:remote-node': '' });
});

test('CIDR identities are local scope (1<<24)|n, one per prefix, /0 is world, released numbers come back', () => {
  const c = new CidrIdentityAllocator();
  const a = c.for('10.0.0.0/8');
  assert.equal(a, LOCAL_IDENTITY_FLAG | 1);
  assert.equal(a, 16777217);
  assert.equal(c.for('10.0.0.0/8'), a);
  const b = c.for('192.0.2.1');
  assert.equal(b, LOCAL_IDENTITY_FLAG | 2);
  assert.equal(c.get('192.0.2.1/32'), b, 'a bare address is its /32');
  assert.equal(c.for('fd00::/64'), LOCAL_IDENTITY_FLAG | 3);
  assert.equal(c.for('0.0.0.0/0'), ID.WORLD);
  assert.equal(c.prefixOf(b)?.toString(), '192.0.2.1/32');
  assert.equal(c.release('10.0.0.0/8'), true);
  assert.equal(c.get('10.0.0.0/8'), undefined);
  assert.equal(c.for('172.16.0.0/12'), LOCAL_IDENTITY_FLAG | 1, 'the lowest free number is reused');
  assert.throws(() => c.for('10.0.0.1/8'), /not a CIDR/);
});

test('the registry knows reserved identities, pods (counted) and CIDR prefixes; its version moves on change', () => {
  const r = new IdentityRegistry();
  assert.deepEqual(
    r.all().map((i) => i.identity),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    'reserved identities but 0 (wildcard key) and 11 (datapath marker)',
  );
  const v0 = r.version;
  const web = r.addPod({ app: 'web', 'pod-template-hash': 'a' });
  assert.equal(r.addPod({ app: 'web', 'pod-template-hash': 'b' }), web, 'a second replica shares the identity');
  assert.equal(r.version, v0 + 1, 'the second replica changes nothing');
  assert.deepEqual(r.labels(web), securityLabels({ app: 'web' }));
  assert.equal(r.get(web)?.kind, 'pod');
  r.removePod({ app: 'web', 'pod-template-hash': 'a' });
  assert.ok(r.get(web), 'still one replica left');
  r.removePod({ app: 'web', 'pod-template-hash': 'b' });
  assert.equal(r.get(web), undefined, 'gone with its last pod');
  assert.equal(r.version, v0 + 2);

  r.syncCidrs(['10.0.0.0/8', '10.1.0.0/16', '0.0.0.0/0']);
  assert.deepEqual(r.cidrEntries(), [
    { prefix: '10.0.0.0/8', identity: LOCAL_IDENTITY_FLAG | 1 },
    { prefix: '10.1.0.0/16', identity: LOCAL_IDENTITY_FLAG | 2 },
  ]);
  assert.deepEqual(r.labels(LOCAL_IDENTITY_FLAG | 1), { 'cidr:10.0.0.0/8': '', 'reserved:world': '', 'reserved:world-ipv4': '' });
  r.syncCidrs(['10.1.0.0/16', 'fd00::/64']);
  assert.deepEqual(
    r.cidrEntries().map((e) => e.prefix),
    ['fd00::/64', '10.1.0.0/16'],
    '10.0.0.0/8 released, its number reused by fd00::/64',
  );
  assert.deepEqual(r.labels(LOCAL_IDENTITY_FLAG | 1), { 'cidr:fd00--/64': '', 'reserved:world': '', 'reserved:world-ipv6': '' });
  assert.equal(r.describe(ID.HOST), '1 (reserved:host)');
  assert.equal(r.describe(0), '0 (any identity)');
});

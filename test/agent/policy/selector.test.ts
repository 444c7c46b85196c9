/** Label selectors: operators, label sources, and Cilium's namespace scoping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { securityLabels, reservedLabels } from '../../../src/agent/identity.ts';
import { fromLabelSelector, scopeToNamespace, selectorMatches, withNamespace, namesNamespace, formatSelector } from '../../../src/agent/policy/selector.ts';
import { ID } from '../../../src/datapath/lib/identity.ts';

const web = securityLabels({ app: 'web', tier: 'frontend' });
const db = securityLabels({ app: 'db', 'io.kubernetes.pod.namespace': 'prod' });
const bare = securityLabels({ app: 'batch' });

test('matchExpressions: In, NotIn (absent key passes), Exists, DoesNotExist, ANDed with matchLabels', () => {
  const sel = (ls: Parameters<typeof fromLabelSelector>[0]) => fromLabelSelector(ls, 'any');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] }), web), true, 'In: value listed');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'app', operator: 'In', values: ['api'] }] }), web), false, 'In: value not listed');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }), web), true, 'NotIn: other value');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['backend'] }] }), bare), true, 'NotIn: key absent');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['frontend'] }] }), web), false, 'NotIn: value listed');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }), web), true, 'Exists');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }), bare), false, 'Exists: absent');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }), bare), true, 'DoesNotExist');
  assert.equal(selectorMatches(sel({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }), web), false, 'DoesNotExist: present');
  const both = sel({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }] });
  assert.equal(selectorMatches(both, web), false, 'matchLabels and matchExpressions must both hold');
  assert.equal(selectorMatches(sel({}), web), true, 'an empty selector selects everything');
});

test('label sources: no source or any: matches every source, k8s: only pod labels, reserved: only reserved', () => {
  const host = reservedLabels(ID.HOST);
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { app: 'web' } }, 'any'), web), true, 'plain key, any source');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { 'any:app': 'web' } }, 'any'), web), true, 'any: prefix');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { 'k8s:app': 'web' } }, 'any'), web), true, 'k8s: prefix on a pod');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { 'reserved:app': 'web' } }, 'any'), web), false, 'wrong source');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { 'reserved:host': '' } }, 'any'), host), true, 'reserved:host');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { host: '' } }, 'any'), host), true, 'host, any source');
  assert.equal(selectorMatches(fromLabelSelector({ matchLabels: { host: '' } }, 'k8s'), host), false, 'NetworkPolicy keys are k8s labels');
});

test('namespace scoping: a subject always, a peer unless it names a namespace, namespace labels or a reserved label', () => {
  const plain = fromLabelSelector({ matchLabels: { app: 'db' } }, 'any');
  assert.equal(selectorMatches(scopeToNamespace(plain, 'default'), db), false, 'db lives in prod');
  assert.equal(selectorMatches(scopeToNamespace(plain, 'prod'), db), true);
  const named = fromLabelSelector({ matchLabels: { app: 'db', 'k8s:io.kubernetes.pod.namespace': 'prod' } }, 'any');
  assert.equal(namesNamespace(named), true);
  assert.equal(selectorMatches(scopeToNamespace(named, 'default'), db), true, 'names its namespace: left alone');
  const anyNs = fromLabelSelector({ matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'Exists' }] }, 'any');
  assert.equal(namesNamespace(anyNs), true, 'an expression on the namespace counts too');
  const nsLabels = fromLabelSelector({ matchLabels: { 'io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'prod' } }, 'any');
  assert.equal(namesNamespace(nsLabels), true, 'namespace labels name namespaces');
  assert.equal(selectorMatches(scopeToNamespace(nsLabels, 'default'), db), true);
  const host = fromLabelSelector({ matchLabels: { 'reserved:host': '' } }, 'any');
  assert.equal(selectorMatches(scopeToNamespace(host, 'default'), reservedLabels(ID.HOST)), true, 'reserved selectors are not scoped');
  assert.equal(selectorMatches(withNamespace(named, 'default'), db), false, 'a subject is scoped regardless');
  assert.equal(formatSelector(scopeToNamespace(plain, 'prod')), '{app=db, k8s:io.kubernetes.pod.namespace=prod}');
});

/**
 * Label selectors: Kubernetes' matchLabels/matchExpressions, evaluated
 * against identity labels, with Cilium's label sources and namespace rules.
 *
 * API:
 *   fromLabelSelector(ls, defaultSource, keyPrefix?) -> Selector
 *   selectorMatches(sel, labels) -> boolean
 *   withNamespace(sel, ns) -> Selector      AND "in namespace ns" (a policy's subject)
 *   scopeToNamespace(sel, ns) -> Selector   the same unless the selector names a namespace (a policy's peers)
 *   formatSelector(sel) -> "org=empire, class in (a, b), !debug"
 *
 * Keys carry a source: "k8s:app" matches only Kubernetes labels, "reserved:host"
 * only reserved ones, and a key without a source ("app", or "any:app")
 * matches a label of that key from any source (Cilium's ParseSelectLabel).
 * Operators (Kubernetes LabelSelectorRequirement): In (key present with one
 * of the values), NotIn (key absent or none of the values), Exists,
 * DoesNotExist. An empty selector selects everything.
 */
import { POD_NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX, splitLabelKey, type LabelSet } from '../identity.ts';

/** matchExpressions operators. */
export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** One condition on one label. */
export interface Requirement {
  /** Label source, or "any". */
  source: string;
  key: string;
  op: Operator;
  values: readonly string[];
}

/** All requirements must hold; none = select everything. */
export interface Selector {
  requirements: readonly Requirement[];
}

/** The shape of a Kubernetes LabelSelector as written in a policy. */
export interface LabelSelectorInput {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: { key: string; operator: Operator; values?: string[] | undefined }[] | undefined;
}

/**
 * A selector from a written LabelSelector. Keys with a source keep it; keys
 * without one get `defaultSource` ("any" in CiliumNetworkPolicy, "k8s" in
 * NetworkPolicy). `keyPrefix` is put before every key (namespace labels).
 */
export function fromLabelSelector(ls: LabelSelectorInput, defaultSource: string, keyPrefix = ''): Selector {
  const reqs: Requirement[] = [];
  const split = (k: string): { source: string; key: string } => {
    const s = k.includes(':') ? splitLabelKey(k) : { source: defaultSource, key: k };
    return { source: s.source, key: keyPrefix + s.key };
  };
  for (const [k, v] of Object.entries(ls.matchLabels ?? {})) reqs.push({ ...split(k), op: 'In', values: [v] });
  for (const e of ls.matchExpressions ?? []) reqs.push({ ...split(e.key), op: e.operator, values: [...(e.values ?? [])] });
  return { requirements: reqs };
}

/** Values of the labels a requirement looks at (one per matching source). */
function valuesFor(labels: LabelSet, source: string, key: string): string[] {
  if (source !== 'any') {
    const v = labels[`${source}:${key}`];
    return v === undefined ? [] : [v];
  }
  const out: string[] = [];
  for (const [sk, v] of Object.entries(labels)) {
    const i = sk.indexOf(':');
    if (sk.slice(i + 1) === key) out.push(v);
  }
  return out;
}

/** Does one requirement hold for these labels? */
export function requirementMatches(r: Requirement, labels: LabelSet): boolean {
  const vals = valuesFor(labels, r.source, r.key);
  switch (r.op) {
    case 'In':
      return vals.some((v) => r.values.includes(v));
    case 'NotIn':
      return !vals.some((v) => r.values.includes(v));
    case 'Exists':
      return vals.length > 0;
    case 'DoesNotExist':
      return vals.length === 0;
  }
}

/** Does the selector select these labels? */
export function selectorMatches(sel: Selector, labels: LabelSet): boolean {
  return sel.requirements.every((r) => requirementMatches(r, labels));
}

const nsReq = (ns: string): Requirement => ({ source: 'k8s', key: POD_NAMESPACE_LABEL, op: 'In', values: [ns] });
const k8sOrAny = (r: Requirement): boolean => r.source === 'k8s' || r.source === 'any';

/** The selector, limited to namespace `ns`. */
export function withNamespace(sel: Selector, ns: string): Selector {
  return { requirements: [...sel.requirements, nsReq(ns)] };
}

/**
 * Does the selector pick its own namespaces — a condition on the pod
 * namespace label or on namespace labels — or reserved identities? Then a
 * namespaced policy leaves it unscoped (Cilium's getEndpointSelector).
 */
export function namesNamespace(sel: Selector): boolean {
  return sel.requirements.some(
    (r) => r.source === 'reserved' || (k8sOrAny(r) && (r.key === POD_NAMESPACE_LABEL || r.key.startsWith(NAMESPACE_LABELS_PREFIX.slice(0, -1)))),
  );
}

/** A peer selector of a policy in namespace `ns`: that namespace only, unless it names its own. */
export function scopeToNamespace(sel: Selector, ns: string): Selector {
  return namesNamespace(sel) ? sel : withNamespace(sel, ns);
}

/** One requirement in kubectl's selector syntax. */
export function formatRequirement(r: Requirement): string {
  const key = r.source === 'any' ? r.key : `${r.source}:${r.key}`;
  switch (r.op) {
    case 'In':
      return r.values.length === 1 ? `${key}=${r.values[0]}` : `${key} in (${r.values.join(', ')})`;
    case 'NotIn':
      return `${key} notin (${r.values.join(', ')})`;
    case 'Exists':
      return key;
    case 'DoesNotExist':
      return `!${key}`;
  }
}

/** "{org=empire, k8s:io.kubernetes.pod.namespace=default}"; "{}" selects everything. */
export function formatSelector(sel: Selector): string {
  return `{${sel.requirements.map(formatRequirement).join(', ')}}`;
}

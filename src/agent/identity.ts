/**
 * Security identities: which labels count, the number each label set gets,
 * and the registry of every identity a node knows (what policy selectors are
 * evaluated against).
 *
 * API:
 *   labelKey(labels) -> "k1=v1;k2=v2"           canonical form (sorted keys)
 *   podLabels(plain) -> LabelSet                 config labels as Cilium sees a pod ("k8s:" source + namespace, cluster)
 *   identityLabels(set) -> LabelSet              the identity-relevant subset (Cilium's default label filter)
 *   securityLabels(plain) -> LabelSet            identityLabels(podLabels(plain))
 *   isIdentityRelevant(source, key) -> boolean
 *   formatLabels(set) -> "k8s:app=web,reserved:host";  splitLabelKey("k8s:app") -> { source, key }
 *   RESERVED_IDENTITIES, reservedLabels(id)      0..11 with Cilium's names
 *   IdentityAllocator.for(plain) -> id           256..65535, the same on every node (.forLabels(set) for identity labels)
 *   CidrIdentityAllocator.for(prefix) -> id      (1<<24)|n, local to the node; get, prefixOf, release, entries
 *   canonicalPrefix(s), prefixContains(a, b), cidrLabels(cidr)
 *   IdentityRegistry                             identity -> labels for every identity the node knows:
 *     addPod(plain) / removePod(plain) -> id, syncCidrs(prefixes), get(id), labels(id), all(),
 *     cidrEntries(), identityOf(plain), describe(id), version
 *
 * Labels. A label is source + key + value (Cilium's pkg/labels). A LabelSet
 * is a record keyed "source:key": `{ 'k8s:app': 'web', 'reserved:host': '' }`.
 * Tapestry's config gives pods plain `{key: value}` labels; they are read as
 * Kubernetes pod labels (source `k8s`), and the labels Cilium's agent adds to
 * every pod are added here too:
 *   k8s:io.kubernetes.pod.namespace                         the namespace (config key of that name, else "default")
 *   k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name   the namespace's own name label, which is
 *                                                           how namespaceSelector finds the namespace
 *   k8s:io.cilium.k8s.policy.cluster                        the cluster name ("default"), which the `cluster` entity selects
 * (Cilium also adds the service account; Tapestry pods have none.)
 *
 * Which labels count. Only identity-relevant labels make an identity, so
 * pods that differ in bookkeeping labels (pod-template-hash, …) share one.
 * The filter is Cilium's default label-prefix list (pkg/labelsfilter): each
 * pattern is a regular expression anchored at the start of the key, some
 * include and some ignore; a label counts when no ignore pattern matches it,
 * or when the longest include match is longer than the shortest ignore match
 * (so io.kubernetes.pod.namespace beats "!io.kubernetes"). Included:
 * reserved:*, io.kubernetes.pod.namespace, io.cilium.k8s.namespace.labels*,
 * app.kubernetes.io*, io.cilium.k8s.policy.cluster. Ignored: io.kubernetes*,
 * kubernetes.io*, statefulset.kubernetes.io/pod-name,
 * apps.kubernetes.io/pod-index, batch.kubernetes.io/job-completion-index,
 * *beta.kubernetes.io*, k8s.io*, pod-template-generation, pod-template-hash,
 * controller-revision-hash, annotation*, etcd_node. Everything else (app,
 * org, class, version, …) counts.
 *
 * Numbers. Cilium allocates cluster identities (256…65535 for cluster 0)
 * through the Kubernetes API or the kvstore so that every node maps a label
 * set to the same number. Tapestry's agents share no store, so the number is
 * derived from the identity labels themselves: FNV-1a over the canonical key,
 * folded into the 65280 cluster-0 identities. Two label sets that hash alike
 * are told apart by probing to the next free number in the order an agent
 * meets them — the one case where two nodes could disagree, with odds of
 * about n²/130 000 for n distinct label sets. CIDR identities are node-local
 * (Cilium's local scope, bit 24) and never leave the node, so a counter will
 * do.
 */
import { parseCidr, bigIntToIp, type Cidr } from './cidr.ts';
import { ID } from '../datapath/lib/identity.ts';

/** First and last cluster-0 global identity (pkg/identity/numericidentity.go). */
export const MIN_CLUSTER_IDENTITY = 256;
export const MAX_CLUSTER_IDENTITY = 65535;
/** Local-scope flag: CIDR identities are LOCAL_IDENTITY_FLAG | n, n ≥ 1. */
export const LOCAL_IDENTITY_FLAG = 1 << 24;
/** Identity 11: the datapath's marker for overlay traffic to encrypt; never a policy peer. */
export const OVERLAY_TO_ENCRYPT = 11;

/** Kubernetes pod label with the pod's namespace. */
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
/** Prefix Cilium puts before a namespace's labels when it copies them onto the namespace's pods. */
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
/** The label every namespace carries with its own name (Kubernetes ≥ 1.21). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Pod label with the cluster name; the `cluster` entity selects on it. */
export const CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
/** Cilium's default cluster name. */
export const DEFAULT_CLUSTER = 'default';
/** Namespace of a pod whose labels name none. */
export const DEFAULT_NAMESPACE = 'default';

/** Labels keyed "source:key" (sources: k8s, reserved, cidr). */
export type LabelSet = Readonly<Record<string, string>>;

/** Canonical label key: sorted "k=v" joined by ";". */
export function labelKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(';');
}

/** Split "source:key"; a key without a source has source "any". */
export function splitLabelKey(sourceKey: string): { source: string; key: string } {
  const i = sourceKey.indexOf(':');
  return i < 0 ? { source: 'any', key: sourceKey } : { source: sourceKey.slice(0, i), key: sourceKey.slice(i + 1) };
}

/** "k8s:app=web,reserved:host" (sorted; empty values print without "="). */
export function formatLabels(set: LabelSet): string {
  return Object.keys(set)
    .sort()
    .map((k) => (set[k] === '' ? k : `${k}=${set[k]}`))
    .join(',');
}

/** A pod's config labels as Cilium labels its pod: source k8s, plus namespace and cluster labels. */
export function podLabels(plain: Readonly<Record<string, string>>, cluster = DEFAULT_CLUSTER): LabelSet {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(plain)) out[`k8s:${k}`] = v;
  const ns = plain[POD_NAMESPACE_LABEL] ?? DEFAULT_NAMESPACE;
  out[`k8s:${POD_NAMESPACE_LABEL}`] = ns;
  out[`k8s:${NAMESPACE_LABELS_PREFIX}${NAMESPACE_NAME_LABEL}`] = ns;
  out[`k8s:${CLUSTER_LABEL}`] = cluster;
  return out;
}

interface LabelPrefix {
  /** Only labels of this source; undefined: any source. */
  source?: string;
  re: RegExp;
  ignore: boolean;
}

const prefix = (pattern: string, source?: string): LabelPrefix => {
  const ignore = pattern.startsWith('!');
  return { ...(source ? { source } : {}), re: new RegExp(ignore ? pattern.slice(1) : pattern), ignore };
};

/** Cilium's default identity-label prefixes (pkg/labelsfilter defaultLabelPrefixCfg). */
const DEFAULT_LABEL_PREFIXES: readonly LabelPrefix[] = [
  prefix('.*', 'reserved'),
  prefix('io\\.kubernetes\\.pod\\.namespace'),
  prefix('io\\.cilium\\.k8s\\.namespace\\.labels'),
  prefix('app\\.kubernetes\\.io'),
  prefix('io\\.cilium\\.k8s\\.policy\\.cluster'),
  prefix('!io\\.kubernetes'),
  prefix('!kubernetes\\.io'),
  prefix('!statefulset\\.kubernetes\\.io/pod-name'),
  prefix('!apps\\.kubernetes\\.io/pod-index'),
  prefix('!batch\\.kubernetes\\.io/job-completion-index'),
  prefix('!.*beta\\.kubernetes\\.io'),
  prefix('!k8s\\.io'),
  prefix('!pod-template-generation'),
  prefix('!pod-template-hash'),
  prefix('!controller-revision-hash'),
  prefix('!annotation.*'),
  prefix('!etcd_node'),
];

/** Length of the pattern's match at the start of the key, or -1. */
function prefixMatch(p: LabelPrefix, source: string, key: string): number {
  if (p.source !== undefined && p.source !== source) return -1;
  const m = p.re.exec(key);
  return m && m.index === 0 ? m[0].length : -1;
}

/** Does this label count for identity under Cilium's default filter? */
export function isIdentityRelevant(source: string, key: string): boolean {
  let included = 0;
  let ignored = 0;
  for (const p of DEFAULT_LABEL_PREFIXES) {
    const len = prefixMatch(p, source, key);
    if (len < 0) continue;
    if (p.ignore) {
      if (ignored === 0 || len < ignored) ignored = len;
    } else if (len > included) included = len;
  }
  // The defaults hold no include-only ("whitelist") prefix, so unmatched labels count.
  return ignored === 0 || included > ignored;
}

/** The identity-relevant labels of a set. */
export function identityLabels(set: LabelSet): LabelSet {
  const out: Record<string, string> = {};
  for (const [sk, v] of Object.entries(set)) {
    const { source, key } = splitLabelKey(sk);
    if (isIdentityRelevant(source, key)) out[sk] = v;
  }
  return out;
}

/** A pod's identity labels from its config labels. */
export function securityLabels(plain: Readonly<Record<string, string>>, cluster = DEFAULT_CLUSTER): LabelSet {
  return identityLabels(podLabels(plain, cluster));
}

/** Reserved identities 0..11 and Cilium's names for them (pkg/identity/numericidentity.go). */
export const RESERVED_IDENTITIES: readonly { id: number; name: string }[] = [
  { id: ID.UNKNOWN, name: 'unknown' },
  { id: ID.HOST, name: 'host' },
  { id: ID.WORLD, name: 'world' },
  { id: ID.UNMANAGED, name: 'unmanaged' },
  { id: ID.HEALTH, name: 'health' },
  { id: ID.INIT, name: 'init' },
  { id: ID.REMOTE_NODE, name: 'remote-node' },
  { id: ID.KUBE_APISERVER, name: 'kube-apiserver' },
  { id: ID.INGRESS, name: 'ingress' },
  { id: ID.WORLD_IPV4, name: 'world-ipv4' },
  { id: ID.WORLD_IPV6, name: 'world-ipv6' },
  { id: OVERLAY_TO_ENCRYPT, name: 'overlay-to-encrypt' },
];

/** Labels of a reserved identity: `{ 'reserved:<name>': '' }`. */
export function reservedLabels(id: number): LabelSet {
  const r = RESERVED_IDENTITIES[id];
  if (!r) throw new Error(`${id} is not a reserved identity`);
  return { [`reserved:${r.name}`]: '' };
}

/** FNV-1a over the UTF-16 code units of `s` (32-bit): a hash every agent computes alike. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Maps label sets to cluster identities; one per agent. */
export class IdentityAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly used = new Set<number>();

  /** Identity of a pod with these config labels (only identity-relevant labels count). */
  for(labels: Readonly<Record<string, string>>): number {
    return this.forLabels(securityLabels(labels));
  }

  /** Identity of a set of identity labels ("source:key" keys). */
  forLabels(set: LabelSet): number {
    const key = labelKey(set);
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    const span = MAX_CLUSTER_IDENTITY - MIN_CLUSTER_IDENTITY + 1;
    let id = MIN_CLUSTER_IDENTITY + (fnv1a(key) % span);
    for (let tries = 0; this.used.has(id); tries++) {
      if (tries >= span) throw new Error('identity space exhausted');
      id = id === MAX_CLUSTER_IDENTITY ? MIN_CLUSTER_IDENTITY : id + 1;
    }
    this.byKey.set(key, id);
    this.used.add(id);
    return id;
  }
}

/** A prefix in canonical form ("10.0.0.0/8"); a bare address is a host prefix. Throws when malformed. */
export function canonicalPrefix(s: string): Cidr {
  const c = parseCidr(s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  if (!c) throw new Error(`"${s}" is not a CIDR`);
  return c;
}

/** Is `inner` inside `outer` (same family, equal or longer prefix)? */
export function prefixContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefixLen >= outer.prefixLen && inner.base >= outer.base && inner.base < outer.base + outer.size;
}

/** Labels of a CIDR identity: the prefix (IPv6 ':' written '-', as Cilium does) and world. */
export function cidrLabels(c: Cidr): LabelSet {
  const text = `${bigIntToIp(c.base, c.family)}/${c.prefixLen}`.replace(/:/g, '-');
  return { [`cidr:${text}`]: '', 'reserved:world': '', [c.family === 4 ? 'reserved:world-ipv4' : 'reserved:world-ipv6']: '' };
}

/**
 * Node-local identities for CIDR prefixes a policy names, so the ipcache can
 * give those addresses an identity the policy map can key on. A /0 is not
 * allocated: the ipcache already maps it to world (2), as in Cilium.
 */
export class CidrIdentityAllocator {
  private readonly byPrefix = new Map<string, number>();
  private readonly byId = new Map<number, Cidr>();

  /** The prefix's identity, allocated on first use (lowest free n). */
  for(prefixText: string): number {
    const c = canonicalPrefix(prefixText);
    if (c.prefixLen === 0) return ID.WORLD;
    const key = c.toString();
    const known = this.byPrefix.get(key);
    if (known !== undefined) return known;
    let n = 1;
    while (this.byId.has(LOCAL_IDENTITY_FLAG | n)) n++;
    if (n >= LOCAL_IDENTITY_FLAG) throw new Error('local identity space exhausted');
    const id = LOCAL_IDENTITY_FLAG | n;
    this.byPrefix.set(key, id);
    this.byId.set(id, c);
    return id;
  }

  /** The prefix's identity if allocated. */
  get(prefixText: string): number | undefined {
    const c = canonicalPrefix(prefixText);
    return c.prefixLen === 0 ? ID.WORLD : this.byPrefix.get(c.toString());
  }

  /** The prefix behind a CIDR identity. */
  prefixOf(id: number): Cidr | undefined {
    return this.byId.get(id);
  }

  /** Free the prefix's identity; true if it had one. */
  release(prefixText: string): boolean {
    const key = canonicalPrefix(prefixText).toString();
    const id = this.byPrefix.get(key);
    if (id === undefined) return false;
    this.byPrefix.delete(key);
    this.byId.delete(id);
    return true;
  }

  /** Every allocated prefix and its identity, by identity. */
  entries(): { prefix: string; identity: number }[] {
    return [...this.byPrefix].map(([prefix, identity]) => ({ prefix, identity })).sort((a, b) => a.identity - b.identity);
  }
}

/** What an identity stands for. */
export type IdentityKind = 'reserved' | 'pod' | 'cidr';

/** One identity the node knows. */
export interface IdentityInfo {
  identity: number;
  kind: IdentityKind;
  labels: LabelSet;
  /** CIDR identities: the prefix. */
  prefix?: Cidr;
}

/**
 * Every identity a node knows — reserved ones, pods (local and on other
 * nodes), CIDR prefixes named by policies — with its labels. Policy peers are
 * resolved against it; `version` moves on every change, and callers
 * recompute the policy of their endpoints when it does.
 */
export class IdentityRegistry {
  private readonly infos = new Map<number, IdentityInfo>();
  private readonly podRefs = new Map<number, number>();
  private changes = 0;

  constructor(
    readonly allocator = new IdentityAllocator(),
    readonly cidrs = new CidrIdentityAllocator(),
  ) {
    // 0 is the wildcard key of the policy map and 11 a datapath-only marker: neither is a peer.
    for (const r of RESERVED_IDENTITIES) {
      if (r.id !== ID.UNKNOWN && r.id !== OVERLAY_TO_ENCRYPT) this.infos.set(r.id, { identity: r.id, kind: 'reserved', labels: reservedLabels(r.id) });
    }
  }

  /** Moves whenever an identity appears or goes away. */
  get version(): number {
    return this.changes;
  }

  /** The identity of a pod with these config labels, without registering it. */
  identityOf(plain: Readonly<Record<string, string>>): number {
    return this.allocator.for(plain);
  }

  /** Register a pod (counted: pods with the same identity labels share the entry). Returns its identity. */
  addPod(plain: Readonly<Record<string, string>>): number {
    const labels = securityLabels(plain);
    const id = this.allocator.forLabels(labels);
    const refs = this.podRefs.get(id) ?? 0;
    this.podRefs.set(id, refs + 1);
    if (refs === 0) {
      this.infos.set(id, { identity: id, kind: 'pod', labels });
      this.changes++;
    }
    return id;
  }

  /** Drop one reference to a pod's identity; the identity goes with its last pod. */
  removePod(plain: Readonly<Record<string, string>>): void {
    const id = this.allocator.for(plain);
    const refs = this.podRefs.get(id) ?? 0;
    if (refs === 0) return;
    if (refs > 1) {
      this.podRefs.set(id, refs - 1);
      return;
    }
    this.podRefs.delete(id);
    this.infos.delete(id);
    this.changes++;
  }

  /** Keep exactly these prefixes' CIDR identities (allocating new ones, releasing the rest). */
  syncCidrs(prefixes: Iterable<string>): void {
    const want = new Map<string, Cidr>();
    for (const p of prefixes) {
      const c = canonicalPrefix(p);
      if (c.prefixLen > 0) want.set(c.toString(), c);
    }
    for (const { prefix, identity } of this.cidrs.entries()) {
      if (want.has(prefix)) continue;
      this.cidrs.release(prefix);
      this.infos.delete(identity);
      this.changes++;
    }
    for (const [key, c] of [...want].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (this.cidrs.get(key) !== undefined) continue;
      const id = this.cidrs.for(key);
      this.infos.set(id, { identity: id, kind: 'cidr', labels: cidrLabels(c), prefix: c });
      this.changes++;
    }
  }

  /** One identity, if known. */
  get(id: number): IdentityInfo | undefined {
    return this.infos.get(id);
  }

  /** An identity's labels, if known. */
  labels(id: number): LabelSet | undefined {
    return this.infos.get(id)?.labels;
  }

  /** Every known identity, by number. */
  all(): IdentityInfo[] {
    return [...this.infos.values()].sort((a, b) => a.identity - b.identity);
  }

  /** CIDR identities for the ipcache: prefix -> identity. */
  cidrEntries(): { prefix: string; identity: number }[] {
    return this.cidrs.entries();
  }

  /** "12345 (k8s:app=web,…)" / "2 (reserved:world)" / "0 (any)" for traces. */
  describe(id: number): string {
    if (id === 0) return '0 (any identity)';
    const info = this.infos.get(id);
    return info ? `${id} (${formatLabels(info.labels)})` : `${id} (unknown)`;
  }
}

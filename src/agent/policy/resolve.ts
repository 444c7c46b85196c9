/**
 * Policy resolution for one endpoint: is each direction enforced, and which
 * policy map entries express its rules. Pure: the inputs are the policies,
 * the identity registry and the endpoint's identity labels.
 *
 * API:
 *   resolvePolicy(policies, registry, labels, opts?) -> EndpointPolicy   enforcement + desired map entries
 *   selectingRules(policies, labels) -> PolicyRule[]
 *   enforcement(rules, labels, mode) -> { ingress, egress }
 *   peerIdentities(peer, registry, cluster?) -> number[]
 *   policyPrefixes(policies) -> string[]            CIDRs (and excepts) that need CIDR identities
 *   lookupPolicy(entries, identity, egress, proto, port) -> LookupResult   the datapath's lookup, on the entries
 *
 * Callers recompute when the policies change or `registry.version` moves
 * (an identity appeared or went away); CIDR identities must exist first:
 * `registry.syncCidrs(policyPrefixes(policies))`.
 *
 * Enforcement (pkg/policy/repository.go). Mode `never`: nothing enforced.
 * `always`: both directions, default deny. `default`: a direction is
 * enforced when some rule selecting the endpoint has rules in it — allow or
 * deny, even an empty `ingress: [{}]`, which therefore denies everything; a
 * NetworkPolicy counts for the directions in its policyTypes. An endpoint
 * still labelled reserved:init is enforced both ways. A direction that is
 * enforced only by rules with enableDefaultDeny false keeps an allow-all
 * entry under its deny rules. A direction that is not enforced gets one
 * allow-all entry, so the map alone answers every lookup.
 *
 * Entries. Each rule gives peers × ports: an endpoint selector every known
 * identity it matches; `all` the wildcard identity 0; an entity the reserved
 * identities (`cluster`: host, remote-node, init, ingress, health,
 * unmanaged, kube-apiserver and every pod of the cluster; `world` world,
 * world-ipv4/6 and every CIDR identity, since those are outside addresses
 * too); a CIDR the CIDR identities inside it, plus world when it is /0. An
 * `except` prefix has a CIDR identity of its own that the rule does not
 * list: the ipcache's longest-prefix match gives an address in the except
 * range that identity, so the rule does not apply to it (no deny entry is
 * needed, and another rule may still allow it). With allowLocalhost (Cilium's
 * default in Kubernetes) an enforced ingress also allows the host, so
 * kubelet probes pass.
 *
 * Deny beats allow. The datapath does two longest-prefix lookups (peer
 * identity, then identity 0), takes a deny from either, else the more
 * specific allow. That is only "any matching deny wins" if no allow is more
 * specific than a deny it overlaps, so — like Cilium's map-state merge — an
 * allow loses the ports that a deny on the same identity or on identity 0
 * covers: removed when the deny covers all of it, cut around the deny's port
 * range otherwise. And where a deny on a peer overlaps a more specific allow
 * on identity 0, the overlap is added as a deny of that peer, so a lookup
 * that simply keeps the longest match (the peer's on a tie) decides the same.
 * Then lookupPolicy (the datapath's order) and the plain rule reading
 * agree, which the tests check.
 */
import { DROP } from '../../datapath/lib/drop-reasons.ts';
import { ID } from '../../datapath/lib/identity.ts';
import { CLUSTER_LABEL, DEFAULT_CLUSTER, canonicalPrefix, prefixContains, type IdentityRegistry, type LabelSet } from '../identity.ts';
import { selectorMatches, type Selector } from './selector.ts';
import type { Direction, Entity, Peer, Policy, PolicyRule } from './model.ts';

/** What resolution reads of the registry: the identities and the CIDR prefixes' identities. */
export type IdentityView = Pick<IdentityRegistry, 'all' | 'cidrs'>;

/** Cilium's policy enforcement modes. */
export type EnforcementMode = 'default' | 'always' | 'never';

/** Options of resolvePolicy. */
export interface ResolveOptions {
  mode?: EnforcementMode;
  /** Always allow ingress from the host (Cilium's allow-localhost, default on). */
  allowLocalhost?: boolean;
  /** Cluster name the `cluster` entity selects pods of. */
  cluster?: string;
}

/** Enforcement of one direction. */
export interface DirectionEnforcement {
  enforced: boolean;
  /** Traffic no rule allows is dropped (false: enforced only for deny rules). */
  defaultDeny: boolean;
  /** Why, in words. */
  reason: string;
}

/** One desired policy map entry. */
export interface PolicyMapEntry {
  /** Peer identity; 0 = any. */
  identity: number;
  egress: boolean;
  /** 0 any, 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6, 132 SCTP. */
  proto: number;
  /** First port (ICMP: type); 0 = every port, then endPort is 0. */
  port: number;
  /** Last port of the range (= port for one port). */
  endPort: number;
  deny: boolean;
  /** Rules that produced it: "CiliumNetworkPolicy default/rule1 spec.ingress[0]". */
  ruleRefs: string[];
}

/** The resolved policy of one endpoint. */
export interface EndpointPolicy {
  ingress: DirectionEnforcement;
  egress: DirectionEnforcement;
  /** Rules whose subject selects the endpoint. */
  rules: PolicyRule[];
  /** Sorted by direction, identity, protocol, port. */
  entries: PolicyMapEntry[];
}

/** Entry refs for the implicit entries. */
export const IMPLICIT_REF = {
  NOT_ENFORCED: 'not enforced: allow all',
  NO_DEFAULT_DENY: 'no default deny (enableDefaultDeny: false): allow all',
  LOCALHOST: 'allow-localhost: the host may always reach its endpoints',
} as const;

/** Rules whose subject selects an endpoint with these identity labels. */
export function selectingRules(policies: readonly Policy[], labels: LabelSet): PolicyRule[] {
  return policies.flatMap((p) => p.rules.filter((r) => selectorMatches(r.subject, labels)));
}

/** Enforcement of both directions for an endpoint selected by `rules`. */
export function enforcement(rules: readonly PolicyRule[], labels: LabelSet, mode: EnforcementMode = 'default'): Record<Direction, DirectionEnforcement> {
  const one = (dir: Direction): DirectionEnforcement => {
    if (mode === 'never') return { enforced: false, defaultDeny: false, reason: 'enforcement mode "never"' };
    if (mode === 'always') return { enforced: true, defaultDeny: true, reason: 'enforcement mode "always"' };
    if (labels['reserved:init'] !== undefined) return { enforced: true, defaultDeny: true, reason: 'the endpoint has no labels yet (reserved:init is always enforced)' };
    const on = rules.filter((r) => r.enforces[dir]);
    if (on.length === 0) return { enforced: false, defaultDeny: false, reason: `no policy selecting the endpoint has ${dir} rules` };
    const deny = on.filter((r) => r.defaultDeny[dir]);
    const refs = (rs: PolicyRule[]): string => [...new Set(rs.map((r) => r.ref))].join(', ');
    return deny.length > 0
      ? { enforced: true, defaultDeny: true, reason: `${dir} rules in ${refs(deny)}` }
      : { enforced: true, defaultDeny: false, reason: `${dir} rules in ${refs(on)}, all with enableDefaultDeny.${dir}: false` };
  };
  return { ingress: one('ingress'), egress: one('egress') };
}

const reserved = (name: string): Selector => ({ requirements: [{ source: 'reserved', key: name, op: 'Exists', values: [] }] });

/** Selectors of each entity but `all` (pkg/policy/api/entity.go). */
function entitySelectors(e: Exclude<Entity, 'all'>, cluster: string): Selector[] {
  switch (e) {
    case 'world':
      return [reserved('world'), reserved('world-ipv4'), reserved('world-ipv6')];
    case 'cluster':
      return [
        ...['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'].map(reserved),
        { requirements: [{ source: 'k8s', key: CLUSTER_LABEL, op: 'In', values: [cluster] }] },
      ];
    case 'none':
      return [];
    default:
      return [reserved(e)];
  }
}

/**
 * Identities a peer stands for, sorted (0 = every identity). Throws when a
 * CIDR or except prefix has no CIDR identity yet (see syncCidrs).
 */
export function peerIdentities(peer: Peer, registry: IdentityView, cluster = DEFAULT_CLUSTER): number[] {
  const ids = new Set<number>();
  const all = registry.all();
  if (peer.kind === 'entity') {
    if (peer.entity === 'all') return [0];
    const sels = entitySelectors(peer.entity, cluster);
    for (const info of all) if (sels.some((s) => selectorMatches(s, info.labels))) ids.add(info.identity);
  } else if (peer.kind === 'endpoints') {
    for (const info of all) if (selectorMatches(peer.selector, info.labels)) ids.add(info.identity);
  } else {
    const c = canonicalPrefix(peer.cidr);
    const except = peer.except.map(canonicalPrefix);
    for (const p of [peer.cidr, ...peer.except]) {
      if (canonicalPrefix(p).prefixLen > 0 && registry.cidrs.get(p) === undefined) {
        throw new Error(`${p} (${peer.field}) has no CIDR identity; call registry.syncCidrs(policyPrefixes(policies)) first`);
      }
    }
    if (c.prefixLen === 0) {
      ids.add(ID.WORLD);
      ids.add(c.family === 4 ? ID.WORLD_IPV4 : ID.WORLD_IPV6);
    }
    for (const info of all) {
      if (info.kind !== 'cidr' || !info.prefix) continue;
      if (prefixContains(c, info.prefix) && !except.some((e) => prefixContains(e, info.prefix!))) ids.add(info.identity);
    }
  }
  return [...ids].sort((a, b) => a - b);
}

/** Every CIDR and except prefix the policies name (the /0s need none: they are world). */
export function policyPrefixes(policies: readonly Policy[]): string[] {
  const out = new Set<string>();
  for (const p of policies) {
    for (const r of p.rules) {
      for (const pr of [...r.ingress, ...r.egress]) {
        for (const peer of pr.peers) {
          if (peer.kind !== 'cidr') continue;
          for (const c of [peer.cidr, ...peer.except]) if (canonicalPrefix(c).prefixLen > 0) out.add(c);
        }
      }
    }
  }
  return [...out].sort();
}

/**
 * Resolve one endpoint's policy: enforcement and the desired policy map
 * entries. `labels` are the endpoint's identity labels —
 * `securityLabels(configLabels)`, or `registry.labels(identity)`.
 */
export function resolvePolicy(policies: readonly Policy[], registry: IdentityView, labels: LabelSet, opts: ResolveOptions = {}): EndpointPolicy {
  const rules = selectingRules(policies, labels);
  const enf = enforcement(rules, labels, opts.mode ?? 'default');
  const raw: PolicyMapEntry[] = [];
  const add = (identity: number, egress: boolean, proto: number, port: number, endPort: number, deny: boolean, ref: string): void => {
    raw.push({ identity, egress, proto, port, endPort, deny, ruleRefs: [ref] });
  };
  for (const dir of ['ingress', 'egress'] as const) {
    const egress = dir === 'egress';
    const e = enf[dir];
    if (!e.enforced) {
      add(0, egress, 0, 0, 0, false, IMPLICIT_REF.NOT_ENFORCED);
      continue;
    }
    if (!e.defaultDeny) add(0, egress, 0, 0, 0, false, IMPLICIT_REF.NO_DEFAULT_DENY);
    if (!egress && (opts.allowLocalhost ?? true)) add(ID.HOST, false, 0, 0, 0, false, IMPLICIT_REF.LOCALHOST);
    for (const rule of rules) {
      for (const pr of rule[dir]) {
        const ids = new Set(pr.peers.flatMap((p) => peerIdentities(p, registry, opts.cluster)));
        const ports = pr.ports ?? [{ proto: 0, port: 0, endPort: 0 }];
        const ref = `${rule.ref} ${pr.field}`;
        for (const id of ids) for (const p of ports) add(id, egress, p.proto, p.port, p.endPort, pr.deny, ref);
      }
    }
  }
  return { ingress: enf.ingress, egress: enf.egress, rules, entries: sortEntries(merge(applyDenies(merge(raw)))) };
}

const keyOf = (e: PolicyMapEntry): string => `${e.egress ? 1 : 0}/${e.identity}/${e.proto}/${e.port}/${e.endPort}/${e.deny ? 1 : 0}`;

/** One entry per key, the refs of all that share it. */
function merge(entries: readonly PolicyMapEntry[]): PolicyMapEntry[] {
  const byKey = new Map<string, PolicyMapEntry>();
  for (const e of entries) {
    const k = keyOf(e);
    const have = byKey.get(k);
    if (!have) byKey.set(k, { ...e, ruleRefs: [...e.ruleRefs] });
    else for (const r of e.ruleRefs) if (!have.ruleRefs.includes(r)) have.ruleRefs.push(r);
  }
  return [...byKey.values()];
}

/** Allows minus the ports that denies on the same identity or identity 0 cover (see the file comment). */
function applyDenies(entries: readonly PolicyMapEntry[]): PolicyMapEntry[] {
  const denies = entries.filter((e) => e.deny);
  const out: PolicyMapEntry[] = [...denies];
  for (const a of entries) {
    if (a.deny) continue;
    const over = denies.filter((d) => d.egress === a.egress && (d.identity === a.identity || d.identity === 0) && (d.proto === 0 || d.proto === a.proto));
    if (over.some((d) => d.proto === 0)) continue; // an L3 deny covers every protocol
    if (a.proto === 0) {
      out.push(a); // more general than any protocol deny, which the lookup prefers
      continue;
    }
    if (over.some((d) => d.port === 0)) continue; // a protocol-wide deny
    if (a.port === 0) {
      out.push(a);
      continue;
    }
    let pieces: [number, number][] = [[a.port, a.endPort]];
    for (const d of over) pieces = pieces.flatMap(([lo, hi]) => cut(lo, hi, d.port, d.endPort));
    for (const [lo, hi] of pieces) out.push({ ...a, port: lo, endPort: hi, ruleRefs: [...a.ruleRefs] });
  }
  // A deny on a peer vs a more specific allow on identity 0 ("deny X" and "allow ANY TCP 80"): Cilium's
  // lookup takes the peer's deny first, a plain longest match would take the allow. The overlap as a
  // deny of the peer ({X, TCP 80}) makes both lookups agree.
  for (const d of denies) {
    if (d.identity === 0) continue;
    for (const a of out) {
      if (a.deny || a.identity !== 0 || a.egress !== d.egress) continue;
      const o = overlap(d, a);
      if (o && keyOf(o) !== keyOf(d)) out.push({ ...o, identity: d.identity, deny: true, ruleRefs: [...d.ruleRefs] });
    }
  }
  return out;
}

/** The protocol/port keys both entries match, as one entry shaped like `d`; undefined if none. */
function overlap(d: PolicyMapEntry, a: PolicyMapEntry): PolicyMapEntry | undefined {
  if (d.proto !== 0 && a.proto !== 0 && d.proto !== a.proto) return undefined;
  const proto = d.proto || a.proto;
  if (proto === 0) return undefined; // both every protocol: d itself
  const range = (e: PolicyMapEntry): [number, number] | undefined => (e.proto === 0 || e.port === 0 ? undefined : [e.port, e.endPort]);
  const dr = range(d);
  const ar = range(a);
  if (!dr || !ar) {
    const r = dr ?? ar;
    return { ...d, proto, port: r ? r[0] : 0, endPort: r ? r[1] : 0 };
  }
  const lo = Math.max(dr[0], ar[0]);
  const hi = Math.min(dr[1], ar[1]);
  return lo > hi ? undefined : { ...d, proto, port: lo, endPort: hi };
}

/** [lo, hi] without [dlo, dhi]. */
function cut(lo: number, hi: number, dlo: number, dhi: number): [number, number][] {
  if (dhi < lo || dlo > hi) return [[lo, hi]];
  const out: [number, number][] = [];
  if (dlo > lo) out.push([lo, dlo - 1]);
  if (dhi < hi) out.push([dhi + 1, hi]);
  return out;
}

function sortEntries(entries: PolicyMapEntry[]): PolicyMapEntry[] {
  return entries.sort(
    (a, b) => Number(a.egress) - Number(b.egress) || a.identity - b.identity || a.proto - b.proto || a.port - b.port || a.endPort - b.endPort || Number(a.deny) - Number(b.deny),
  );
}

/* ---- the datapath's lookup, on entries ---- */

/** Cilium's policy-verdict match types. */
export type MatchType = 'L3-L4' | 'L3-Proto' | 'L3-Only' | 'L4-Only' | 'Proto-Only' | 'all';

/** Outcome of a policy map lookup. */
export interface LookupResult {
  verdict: 'allow' | 'deny' | 'miss';
  /** The entry that decided (absent on a miss). */
  entry?: PolicyMapEntry;
  matchType?: MatchType;
  /** DROP.POLICY_DENY (-181) for a deny, DROP.POLICY (-133) for a miss. */
  dropReason?: number;
}

/**
 * Bits of the LPM key past identity + direction that `e` fixes for a packet
 * with this protocol and port: 0 (any protocol), 8 (protocol), 8 + 1..16
 * (the aligned block of the port range holding the port); -1 if no match.
 */
export function entryPrefixLen(e: PolicyMapEntry, proto: number, port: number): number {
  if (e.proto === 0) return 0;
  if (e.proto !== proto) return -1;
  if (e.port === 0) return 8;
  if (port < e.port || port > e.endPort) return -1;
  // The range is stored as aligned power-of-two blocks; find the one holding the port.
  for (let s = e.port; s <= e.endPort; ) {
    let size = 1;
    while (size < 65536 && s % (size * 2) === 0 && s + size * 2 - 1 <= e.endPort) size *= 2;
    if (port < s + size) return 8 + 16 - Math.log2(size);
    s += size;
  }
  return -1;
}

function lpm(entries: readonly PolicyMapEntry[], identity: number, egress: boolean, proto: number, port: number): { e: PolicyMapEntry; len: number } | undefined {
  let best: { e: PolicyMapEntry; len: number } | undefined;
  for (const e of entries) {
    if (e.identity !== identity || e.egress !== egress) continue;
    const len = entryPrefixLen(e, proto, port);
    if (len < 0) continue;
    if (!best || len > best.len || (len === best.len && e.deny && !best.e.deny)) best = { e, len };
  }
  return best;
}

/**
 * The datapath's verdict for a peer identity, direction, protocol and port
 * (ICMP: type) on these entries: the peer's longest match, a deny there
 * ends it; then identity 0's, which wins if it is a deny or more specific
 * (bpf/lib/policy.h __policy_can_access, without proxy or auth).
 */
export function lookupPolicy(entries: readonly PolicyMapEntry[], identity: number, egress: boolean, proto: number, port: number): LookupResult {
  const l3 = identity === 0 ? undefined : lpm(entries, identity, egress, proto, port);
  const l4 = l3?.e.deny ? undefined : lpm(entries, 0, egress, proto, port);
  let chosen: { e: PolicyMapEntry; len: number } | undefined;
  let matchType: MatchType;
  if (l4 && (l4.e.deny || !l3 || l4.len > l3.len)) {
    chosen = l4;
    matchType = l4.len === 0 ? 'all' : l4.len <= 8 ? 'Proto-Only' : 'L4-Only';
  } else if (l3) {
    chosen = l3;
    matchType = l3.len > 8 ? 'L3-L4' : l3.len > 0 ? 'L3-Proto' : 'L3-Only';
  } else {
    return { verdict: 'miss', dropReason: DROP.POLICY };
  }
  return chosen.e.deny
    ? { verdict: 'deny', entry: chosen.e, matchType, dropReason: DROP.POLICY_DENY }
    : { verdict: 'allow', entry: chosen.e, matchType };
}

/**
 * Policy trace: would this traffic pass, and which rule says so — Tapestry's
 * `cilium policy trace`.
 *
 * API:
 *   trace(policies, registry, { from, to, dport, proto }, opts?) -> TraceResult
 *   parseProto("tcp" | 6 | …) -> protocol number
 *
 * `from` is a pod's config labels or a peer identity (world, a CIDR
 * identity, the host, …); `to` is the destination endpoint's config labels.
 * For a pod source the source's egress is traced first, then the
 * destination's ingress. Each direction lists its enforcement, every rule of
 * the policies selecting the endpoint (does its peer match, does its port
 * match, so does it apply), the reading of those rules (a deny that applies
 * wins, else an allow, else nothing matches), and the policy map lookup on
 * the resolved entries in the datapath's order, which gives the verdict. The
 * two readings agree by construction of the entries (see resolve.ts); the
 * result carries both so tests can hold them to it.
 */
import { dropReasonString } from '../../datapath/lib/drop-reasons.ts';
import { CLUSTER_LABEL, NAMESPACE_LABELS_PREFIX, NAMESPACE_NAME_LABEL, formatLabels, securityLabels, type IdentityInfo, type IdentityRegistry, type LabelSet } from '../identity.ts';
import { formatSelector } from './selector.ts';
import { PROTO, formatPort, type Direction, type Peer, type Policy, type PortProto } from './model.ts';
import { IMPLICIT_REF, lookupPolicy, peerIdentities, resolvePolicy, type IdentityView, type LookupResult, type PolicyMapEntry, type ResolveOptions } from './resolve.ts';

/** What to trace. */
export interface TraceRequest {
  /** Source: a pod's config labels, or a peer identity. */
  from: Readonly<Record<string, string>> | number;
  /** Destination endpoint's config labels. */
  to: Readonly<Record<string, string>>;
  /** Destination port (ICMP: the type). */
  dport: number;
  /** "TCP", "UDP", "SCTP", "ICMP", "ICMPv6" (any case) or a protocol number. */
  proto: string | number;
}

/** One direction's outcome. */
export interface TraceStep {
  direction: Direction;
  /** The rules' reading: deny if a deny applies, else allow if an allow applies, else miss. */
  ruleVerdict: 'allow' | 'deny' | 'miss';
  /** The policy map lookup. */
  lookup: LookupResult;
}

/** A trace. */
export interface TraceResult {
  verdict: 'allowed' | 'denied';
  /** The drop reason when denied (negative DROP_* code). */
  dropReason?: number;
  steps: TraceStep[];
  lines: string[];
}

/** Protocol number from a name or number. */
export function parseProto(p: string | number): number {
  if (typeof p === 'number') return p;
  const n = ({ tcp: PROTO.TCP, udp: PROTO.UDP, sctp: PROTO.SCTP, icmp: PROTO.ICMP, icmpv6: PROTO.ICMPV6, any: PROTO.ANY } as Record<string, number>)[p.toLowerCase()];
  if (n === undefined) throw new Error(`unknown protocol "${p}"`);
  return n;
}

/** An endpoint or peer of the trace. */
interface Party {
  identity: number;
  labels: LabelSet | undefined;
  /** Pod config labels (only pods have policy of their own). */
  plain?: Readonly<Record<string, string>>;
}

/** Trace traffic from `req.from` to the endpoint `req.to`. */
export function trace(policies: readonly Policy[], registry: IdentityRegistry, req: TraceRequest, opts: ResolveOptions = {}): TraceResult {
  const proto = parseProto(req.proto);
  const src: Party =
    typeof req.from === 'number'
      ? { identity: req.from, labels: registry.labels(req.from) }
      : { identity: registry.identityOf(req.from), labels: securityLabels(req.from), plain: req.from };
  const dst: Party = { identity: registry.identityOf(req.to), labels: securityLabels(req.to), plain: req.to };

  // Pods named by the trace count as known even if no node runs them yet.
  const extra: IdentityInfo[] = [];
  for (const p of [src, dst]) {
    if (p.plain && !registry.get(p.identity) && !extra.some((e) => e.identity === p.identity)) extra.push({ identity: p.identity, kind: 'pod', labels: p.labels! });
  }
  const view: IdentityView = { all: () => [...registry.all(), ...extra], cidrs: registry.cidrs };
  const describe = (p: Party): string => `${p.labels ? formatLabels(shortLabels(p.labels)) : '(unknown labels)'} (identity ${p.identity})`;

  const lines = [`Tracing From: ${describe(src)} => To: ${describe(dst)}, ${formatPort({ proto, port: req.dport, endPort: req.dport })}`];
  if (extra.length > 0) lines.push(`  (not yet known to this node, traced as if present: identity ${extra.map((e) => e.identity).join(', ')})`);
  const steps: TraceStep[] = [];
  const run = (dir: Direction, subject: Party, peer: Party, title: string): boolean => {
    lines.push(`${title}:`);
    const step = traceStep(policies, view, dir, subject, peer, proto, req.dport, opts, lines);
    steps.push(step);
    return step.lookup.verdict === 'allow';
  };

  let denied: { where: string; reason: number } | undefined;
  if (src.plain && !run('egress', src, dst, `Egress from the source (identity ${src.identity})`)) {
    denied = { where: 'egress from the source', reason: steps[0]!.lookup.dropReason! };
  }
  if (!denied && !run('ingress', dst, src, `Ingress to the destination (identity ${dst.identity})`)) {
    denied = { where: 'ingress to the destination', reason: steps[steps.length - 1]!.lookup.dropReason! };
  }
  if (denied) {
    lines.push(`Final verdict: DENIED (${denied.where}: ${dropReasonString(denied.reason)}, ${-denied.reason})`);
    return { verdict: 'denied', dropReason: denied.reason, steps, lines };
  }
  lines.push('Final verdict: ALLOWED');
  return { verdict: 'allowed', steps, lines };
}

/** Labels without the two Tapestry derives from the namespace and cluster (they add nothing to read). */
function shortLabels(l: LabelSet): LabelSet {
  const out = { ...l };
  delete out[`k8s:${NAMESPACE_LABELS_PREFIX}${NAMESPACE_NAME_LABEL}`];
  delete out[`k8s:${CLUSTER_LABEL}`];
  return out;
}

function traceStep(
  policies: readonly Policy[],
  view: IdentityView,
  dir: Direction,
  subject: Party,
  peer: Party,
  proto: number,
  port: number,
  opts: ResolveOptions,
  lines: string[],
): TraceStep {
  const resolved = resolvePolicy(policies, view, subject.labels!, opts);
  const enf = resolved[dir];
  const others = policies.filter((p) => !resolved.rules.some((r) => r.policy === p.id));
  if (others.length > 0) lines.push(`  not selecting this endpoint: ${others.map((p) => p.id).join(', ')}`);
  lines.push(`  ${enf.enforced ? 'enforced' : 'not enforced'}: ${enf.reason}`);

  let anyAllow = false;
  let anyDeny = false;
  if (enf.enforced) {
    for (const rule of resolved.rules) {
      for (const pr of rule[dir]) {
        const peerHit = pr.peers.find((p) => peerMatches(p, view, peer.identity, opts));
        const portHit = pr.ports?.find((p) => portMatches(p, proto, port));
        const portOk = pr.ports === undefined || portHit !== undefined;
        const applies = peerHit !== undefined && portOk;
        if (applies && pr.deny) anyDeny = true;
        if (applies && !pr.deny) anyAllow = true;
        const peerText = peerHit
          ? `peer matches (${describePeer(peerHit)})`
          : pr.peers.length === 0
            ? 'selects no peer'
            : `peer does not match (${pr.peers.map(describePeer).join('; ')})`;
        const portText = pr.ports === undefined ? 'every port' : portHit ? `port matches (${portHit.field} ${formatPort(portHit)})` : `port not listed (${pr.ports.map(formatPort).join(', ')})`;
        lines.push(`  ${rule.ref} ${pr.field} [${pr.deny ? 'deny' : 'allow'}]: ${peerText}; ${portText} -> ${applies ? (pr.deny ? 'DENIES' : 'allows') : 'does not apply'}`);
      }
    }
    if (!enf.defaultDeny) {
      anyAllow = true;
      lines.push(`  ${IMPLICIT_REF.NO_DEFAULT_DENY}`);
    }
    if (dir === 'ingress' && (opts.allowLocalhost ?? true) && peer.identity === 1) {
      anyAllow = true;
      lines.push(`  ${IMPLICIT_REF.LOCALHOST}`);
    }
  } else {
    anyAllow = true;
  }
  const ruleVerdict = anyDeny ? 'deny' : anyAllow ? 'allow' : 'miss';
  lines.push(`  rules: ${anyDeny ? 'a deny applies' : 'no deny applies'}, ${anyAllow ? 'an allow applies' : 'no allow applies'} -> ${ruleVerdict === 'miss' ? 'nothing matches' : ruleVerdict}`);

  const lookup = lookupPolicy(resolved.entries, peer.identity, dir === 'egress', proto, port);
  lines.push(`  policy map lookup (identity ${peer.identity}, ${formatPort({ proto, port, endPort: port })}): ${describeLookup(lookup)}`);
  if (lookup.verdict !== ruleVerdict) {
    lines.push(`  WARNING: the map (${lookup.verdict}) and the rules (${ruleVerdict}) disagree`);
  }
  return { direction: dir, ruleVerdict, lookup };
}

function peerMatches(p: Peer, view: IdentityView, identity: number, opts: ResolveOptions): boolean {
  const ids = peerIdentities(p, view, opts.cluster);
  return ids.includes(0) || ids.includes(identity);
}

function portMatches(p: PortProto, proto: number, port: number): boolean {
  if (p.proto !== proto) return false;
  return p.port === 0 || (port >= p.port && port <= p.endPort);
}

function describePeer(p: Peer): string {
  switch (p.kind) {
    case 'endpoints':
      return `${p.field} ${formatSelector(p.selector)}`;
    case 'cidr':
      return `${p.field} ${p.cidr}${p.except.length > 0 ? ` except ${p.except.join(', ')}` : ''}`;
    case 'entity':
      return `${p.field} ${p.entity}`;
  }
}

function describeEntry(e: PolicyMapEntry): string {
  const port = e.proto === 0 ? 'ANY' : formatPort(e);
  return `{identity ${e.identity}, ${port}${e.deny ? ', deny' : ''}} from ${e.ruleRefs.join('; ')}`;
}

function describeLookup(r: LookupResult): string {
  if (r.verdict === 'miss') return `no entry -> drop (${dropReasonString(r.dropReason!)}, ${-r.dropReason!})`;
  const how = `${r.matchType} match on ${describeEntry(r.entry!)}`;
  return r.verdict === 'deny' ? `deny -> drop (${dropReasonString(r.dropReason!)}, ${-r.dropReason!}), ${how}` : `allow, ${how}`;
}

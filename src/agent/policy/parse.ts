/**
 * Policy documents in, policy model out: YAML (one or many documents) or an
 * API body, validated whole, then normalized to PolicyRules.
 *
 * API:
 *   parsePolicies(text, file?) -> Policy[]   every document, or throw PolicyError "FILE:LINE:COL: field: problem"
 *   parsePolicy(obj) -> Policy               one document (an API body), or throw PolicyError "field: problem"
 *   PolicyError                              .field, .problem, .status = 400
 *
 * Normalization follows what Cilium does when it reads these objects
 * (pkg/k8s network policy and CNP parsing):
 *   - a namespaced policy's subject only selects pods of its namespace
 *     (metadata.namespace, default "default");
 *   - its peer selectors too, unless they name a namespace themselves
 *     (io.kubernetes.pod.namespace or namespace labels) or a reserved label;
 *   - protocol ANY (the CiliumNetworkPolicy default) is TCP + UDP + SCTP;
 *   - a CiliumNetworkPolicy rule with ports but no peer selector applies to
 *     every peer (identity 0); with neither it allows nothing — yet it still
 *     turns enforcement on (the documented `ingress: [{}]` default deny); an
 *     explicitly empty fromCIDR/fromCIDRSet/fromEntities selects nothing;
 *   - NetworkPolicy: policyTypes default to Ingress, plus Egress when egress
 *     rules exist; rules of a direction not in policyTypes are ignored (as
 *     Kubernetes does); an empty or missing `from`/`to` is every peer (the
 *     `all` entity, identity 0) and empty or missing `ports` every port;
 *     namespaceSelector matches namespace labels (here only
 *     kubernetes.io/metadata.name), `{}` every namespace; a port without a
 *     protocol is TCP and without a number every port of that protocol.
 */
import { LineCounter, parseAllDocuments, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, DEFAULT_NAMESPACE, canonicalPrefix } from '../identity.ts';
import { fromLabelSelector, scopeToNamespace, withNamespace, type LabelSelectorInput, type Selector } from './selector.ts';
import {
  cnpSchema,
  knpSchema,
  UNSUPPORTED_FIELDS,
  ICMP_TYPES,
  L3_FIELDS,
  portValue,
  type CnpDoc,
  type CnpRule,
  type CnpIngress,
  type CnpEgress,
  type KnpDoc,
  type KnpPeer,
  type KnpPort,
} from './schema.ts';
import { PROTO, type Direction, type Entity, type Peer, type PeerRule, type Policy, type PolicyRule, type PortProto } from './model.ts';

/** A policy document problem, naming the field. */
export class PolicyError extends Error {
  override name = 'PolicyError';
  /** HTTP status for the API. */
  readonly status = 400;
  constructor(
    message: string,
    /** "spec.ingress[0].toPorts[0].ports[0].port" ("" for the whole document). */
    readonly field: string,
    readonly problem: string,
  ) {
    super(message);
  }
}

type FieldPath = (string | number)[];

/** "spec.ingress[0].toPorts" from ['spec', 'ingress', 0, 'toPorts']. */
export function fieldName(fp: readonly (string | number)[]): string {
  return fp.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** One validation problem in one line: unsupported and unknown fields by name, missing ones as "required". */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const unsupported = issue.keys.filter((k) => UNSUPPORTED_FIELDS[k] !== undefined);
    if (unsupported.length > 0) return unsupported.map((k) => `${k}: ${UNSUPPORTED_FIELDS[k]}`).join('; ');
    return `unknown field(s) ${issue.keys.join(', ')}`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'required';
  return issue.message;
}

/** A validated document, or the first problem with its field path. */
type Checked = { ok: true; doc: { kind: 'CiliumNetworkPolicy'; d: CnpDoc } | { kind: 'NetworkPolicy'; d: KnpDoc } } | { ok: false; path: FieldPath; problem: string };

function check(obj: unknown): Checked {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { ok: false, path: [], problem: 'must be a mapping (a policy document)' };
  const kind = (obj as Record<string, unknown>).kind;
  let res;
  if (kind === 'CiliumNetworkPolicy') res = cnpSchema.safeParse(obj, { reportInput: true });
  else if (kind === 'NetworkPolicy') res = knpSchema.safeParse(obj, { reportInput: true });
  else if (kind === 'CiliumClusterwideNetworkPolicy') return { ok: false, path: ['kind'], problem: 'CiliumClusterwideNetworkPolicy is not supported (namespaced policies only)' };
  else return { ok: false, path: ['kind'], problem: kind === undefined ? 'required' : 'must be CiliumNetworkPolicy (cilium.io/v2) or NetworkPolicy (networking.k8s.io/v1)' };
  if (!res.success) {
    const issue = res.error.issues[0]!;
    return { ok: false, path: issue.path.filter((k): k is string | number => typeof k !== 'symbol'), problem: issueMessage(issue) };
  }
  return { ok: true, doc: kind === 'CiliumNetworkPolicy' ? { kind, d: res.data as CnpDoc } : { kind: 'NetworkPolicy', d: res.data as KnpDoc } };
}

/** Validate and normalize one document (an API body). */
export function parsePolicy(obj: unknown): Policy {
  const c = check(obj);
  if (!c.ok) {
    const field = fieldName(c.path);
    throw new PolicyError(`${field || '(document)'}: ${c.problem}`, field, c.problem);
  }
  return normalize(c.doc);
}

/**
 * Validate and normalize every document of a YAML text (documents split by
 * "---"; empty ones skipped). One bad document rejects the whole text.
 */
export function parsePolicies(text: string, file = '<policy>'): Policy[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false });
  // An empty stream carries its errors itself; documents carry theirs.
  const errors = docs.length === 0 ? ((docs as { errors?: { pos: [number, number]; message: string }[] }).errors ?? []) : docs.flatMap((d) => d.errors);
  if (errors.length > 0) {
    const e = errors[0]!;
    const p = lc.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0]!;
    throw new PolicyError(`${file}:${p.line}:${p.col}: ${msg}`, '', msg);
  }
  const out: Policy[] = [];
  const seen = new Map<string, string>();
  for (const doc of docs) {
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const c = check(obj);
    const where = (fp: FieldPath): string => locate(doc, lc, file, fp);
    if (!c.ok) {
      const field = fieldName(c.path);
      throw new PolicyError(`${where(c.path)}: ${field || '(document)'}: ${c.problem}`, field, c.problem);
    }
    const p = normalize(c.doc);
    const first = seen.get(p.id);
    if (first !== undefined) {
      const problem = `${p.id} is already defined at ${first}`;
      throw new PolicyError(`${where(['metadata', 'name'])}: metadata.name: ${problem}`, 'metadata.name', problem);
    }
    seen.set(p.id, where(['metadata', 'name']));
    out.push(p);
  }
  return out;
}

/** "FILE:LINE:COL" of the deepest YAML node on `fieldPath` that exists. */
function locate(doc: Document, lc: LineCounter, file: string, fieldPath: FieldPath): string {
  for (let len = fieldPath.length; len >= 0; len--) {
    const node = len === 0 ? doc.contents : doc.getIn(fieldPath.slice(0, len), true);
    if (isNode(node) && node.range) {
      const p = lc.linePos(node.range[0]);
      return `${file}:${p.line}:${p.col}`;
    }
  }
  return file;
}

function normalize(doc: { kind: 'CiliumNetworkPolicy'; d: CnpDoc } | { kind: 'NetworkPolicy'; d: KnpDoc }): Policy {
  return doc.kind === 'CiliumNetworkPolicy' ? normalizeCnp(doc.d) : normalizeKnp(doc.d);
}

/* ---- CiliumNetworkPolicy ---- */

function normalizeCnp(d: CnpDoc): Policy {
  const ns = d.metadata.namespace ?? DEFAULT_NAMESPACE;
  const id = `CiliumNetworkPolicy ${ns}/${d.metadata.name}`;
  const specs: [string, CnpRule][] = [];
  if (d.spec) specs.push(['spec', d.spec]);
  d.specs?.forEach((s, i) => specs.push([`specs[${i}]`, s]));
  const rules = specs.map(([path, spec]) => cnpRule(id, path, ns, spec));
  return { kind: 'CiliumNetworkPolicy', name: d.metadata.name, namespace: ns, id, rules };
}

function cnpRule(policy: string, path: string, ns: string, spec: CnpRule): PolicyRule {
  const subjectSel = fromLabelSelector(spec.endpointSelector as LabelSelectorInput, 'any');
  const has = (a: readonly unknown[] | undefined): boolean => (a?.length ?? 0) > 0;
  const enforces = { ingress: has(spec.ingress) || has(spec.ingressDeny), egress: has(spec.egress) || has(spec.egressDeny) };
  const ingress = [
    ...(spec.ingress ?? []).map((r, i) => cnpPeerRule(r, `${path}.ingress[${i}]`, false, 'from', ns)),
    ...(spec.ingressDeny ?? []).map((r, i) => cnpPeerRule(r, `${path}.ingressDeny[${i}]`, true, 'from', ns)),
  ];
  const egress = [
    ...(spec.egress ?? []).map((r, i) => cnpPeerRule(r, `${path}.egress[${i}]`, false, 'to', ns)),
    ...(spec.egressDeny ?? []).map((r, i) => cnpPeerRule(r, `${path}.egressDeny[${i}]`, true, 'to', ns)),
  ];
  return {
    ref: path === 'spec' ? policy : `${policy} ${path}`,
    policy,
    subject: withNamespace(subjectSel, ns),
    enforces,
    defaultDeny: { ingress: enforces.ingress && spec.enableDefaultDeny?.ingress !== false, egress: enforces.egress && spec.enableDefaultDeny?.egress !== false },
    ingress,
    egress,
  };
}

function cnpPeerRule(r: CnpIngress | CnpEgress, field: string, deny: boolean, dir: 'from' | 'to', ns: string): PeerRule {
  const rec = r as Record<string, unknown>;
  const [epF, cidrF, setF, entF] = L3_FIELDS[dir];
  const eps = rec[epF] as LabelSelectorInput[] | undefined;
  const cidrs = rec[cidrF] as string[] | undefined;
  const sets = rec[setF] as { cidr: string; except?: string[] }[] | undefined;
  const ents = rec[entF] as Entity[] | undefined;
  const ports = cnpPorts(r, field);
  let peers: Peer[];
  if (eps && eps.length > 0) {
    peers = eps.map((s, i) => ({ kind: 'endpoints', selector: scopeToNamespace(fromLabelSelector(s, 'any'), ns), field: `${field}.${epF}[${i}]` }));
  } else if (cidrs !== undefined) {
    peers = cidrs.map((c, i) => ({ kind: 'cidr', cidr: canonicalPrefix(c).toString(), except: [], field: `${field}.${cidrF}[${i}]` }));
  } else if (sets !== undefined) {
    peers = sets.map((s, i) => ({ kind: 'cidr', cidr: canonicalPrefix(s.cidr).toString(), except: (s.except ?? []).map((e) => canonicalPrefix(e).toString()), field: `${field}.${setF}[${i}]` }));
  } else if (ents !== undefined) {
    peers = ents.map((e, i) => ({ kind: 'entity', entity: e, field: `${field}.${entF}[${i}]` }));
  } else {
    // No L3 selector: with ports, every peer (L4-only); without, nothing.
    peers = ports ? [{ kind: 'entity', entity: 'all', field: `${field} (no peer selector: every peer)` }] : [];
  }
  return { field, deny, peers, ...(ports ? { ports } : {}) };
}

/** toPorts and icmps of a rule; undefined when it names none (every port). */
function cnpPorts(r: CnpIngress | CnpEgress, field: string): PortProto[] | undefined {
  const out: PortProto[] = [];
  r.toPorts?.forEach((pr, i) =>
    pr.ports.forEach((p, j) => {
      const f = `${field}.toPorts[${i}].ports[${j}]`;
      const port = p.port === undefined ? 0 : (portValue(p.port, true) as number);
      const endPort = port === 0 ? 0 : (p.endPort ?? port);
      const protos =
        p.protocol === 'ANY' ? [PROTO.TCP, PROTO.UDP, PROTO.SCTP] : [{ TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP, ICMP: PROTO.ICMP, ICMPv6: PROTO.ICMPV6 }[p.protocol]];
      for (const proto of protos) out.push({ proto, port, endPort, field: f });
    }),
  );
  r.icmps?.forEach((ir, i) =>
    ir.fields.forEach((f, j) => {
      const type = typeof f.type === 'number' ? f.type : (ICMP_TYPES[f.family][f.type] ?? Number(f.type));
      out.push({ proto: f.family === 'IPv6' ? PROTO.ICMPV6 : PROTO.ICMP, port: type, endPort: type, field: `${field}.icmps[${i}].fields[${j}]` });
    }),
  );
  return (r.toPorts?.length ?? 0) + (r.icmps?.length ?? 0) > 0 ? out : undefined;
}

/* ---- Kubernetes NetworkPolicy ---- */

function normalizeKnp(d: KnpDoc): Policy {
  const ns = d.metadata.namespace ?? DEFAULT_NAMESPACE;
  const id = `NetworkPolicy ${ns}/${d.metadata.name}`;
  const s = d.spec;
  // Kubernetes defaulting: no (or an empty) policyTypes means Ingress, plus Egress when egress rules exist.
  const types = s.policyTypes?.length ? s.policyTypes : ['Ingress', ...((s.egress?.length ?? 0) > 0 ? (['Egress'] as const) : [])];
  const on: Record<Direction, boolean> = { ingress: types.includes('Ingress'), egress: types.includes('Egress') };
  const ingress = on.ingress ? (s.ingress ?? []).map((r, i) => knpPeerRule(r.from, r.ports, `spec.ingress[${i}]`, 'from', ns)) : [];
  const egress = on.egress ? (s.egress ?? []).map((r, i) => knpPeerRule(r.to, r.ports, `spec.egress[${i}]`, 'to', ns)) : [];
  const rule: PolicyRule = {
    ref: id,
    policy: id,
    subject: withNamespace(fromLabelSelector(s.podSelector as LabelSelectorInput, 'k8s'), ns),
    enforces: on,
    defaultDeny: on,
    ingress,
    egress,
  };
  return { kind: 'NetworkPolicy', name: d.metadata.name, namespace: ns, id, rules: [rule] };
}

function knpPeerRule(peersIn: KnpPeer[] | undefined, portsIn: KnpPort[] | undefined, field: string, dir: 'from' | 'to', ns: string): PeerRule {
  const peers: Peer[] =
    peersIn && peersIn.length > 0
      ? peersIn.map((p, i) => knpPeer(p, `${field}.${dir}[${i}]`, ns))
      : [{ kind: 'entity', entity: 'all', field: `${field} (no ${dir}: every peer)` }];
  const ports =
    portsIn && portsIn.length > 0
      ? portsIn.map((p, i): PortProto => {
          const port = p.port === undefined ? 0 : (portValue(p.port, false) as number);
          return { proto: { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP }[p.protocol], port, endPort: port === 0 ? 0 : (p.endPort ?? port), field: `${field}.ports[${i}]` };
        })
      : undefined;
  return { field, deny: false, peers, ...(ports ? { ports } : {}) };
}

function knpPeer(p: KnpPeer, field: string, ns: string): Peer {
  if (p.ipBlock) {
    return { kind: 'cidr', cidr: canonicalPrefix(p.ipBlock.cidr).toString(), except: (p.ipBlock.except ?? []).map((e) => canonicalPrefix(e).toString()), field: `${field}.ipBlock` };
  }
  const pod = p.podSelector ? fromLabelSelector(p.podSelector as LabelSelectorInput, 'k8s') : { requirements: [] };
  if (!p.namespaceSelector) return { kind: 'endpoints', selector: withNamespace(pod, ns), field: `${field}.podSelector` };
  const nsSel = fromLabelSelector(p.namespaceSelector as LabelSelectorInput, 'k8s', NAMESPACE_LABELS_PREFIX);
  const anyNs: Selector = { requirements: [{ source: 'k8s', key: POD_NAMESPACE_LABEL, op: 'Exists', values: [] }] };
  const selector: Selector = {
    requirements: [...(nsSel.requirements.length > 0 ? nsSel : anyNs).requirements, ...pod.requirements],
  };
  return { kind: 'endpoints', selector, field: `${field}.${p.podSelector ? 'namespaceSelector+podSelector' : 'namespaceSelector'}` };
}

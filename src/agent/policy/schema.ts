/**
 * Schemas of the two policy documents Tapestry reads, as users write them:
 * CiliumNetworkPolicy (cilium.io/v2) and Kubernetes NetworkPolicy
 * (networking.k8s.io/v1), the L3/L4 subset.
 *
 * API:
 *   cnpSchema, knpSchema        zod schemas of whole documents
 *   CnpDoc, KnpDoc, …           their validated types
 *   UNSUPPORTED_FIELDS          real fields of those APIs Tapestry rejects, with why
 *   ICMP_TYPES                  ICMP type names by family
 *
 * Validation follows the APIs' own rules where users meet them: the
 * CRD/OpenAPI shapes, Kubernetes' NetworkPolicy validation (ports 1-65535,
 * endPort ≥ port, ipBlock.except strictly inside cidr, one peer kind per
 * ipBlock), and Cilium's rule sanitizer (one kind of L3 selector per rule,
 * icmps not beside toPorts, except inside its CIDR). Anything else — L7
 * rules, FQDNs, services, node selectors, named ports — is rejected by name
 * rather than ignored, so no policy is applied with a part silently missing.
 */
import { z } from 'zod';
import { parseCidr, ipToBigInt, bigIntToIp } from '../cidr.ts';
import { canonicalPrefix, prefixContains, POD_NAMESPACE_LABEL } from '../identity.ts';
import { ENTITIES } from './model.ts';

/** Fields of the real APIs that Tapestry does not implement, and what to say. */
export const UNSUPPORTED_FIELDS: Readonly<Record<string, string>> = {
  fromRequires: 'deprecated in Cilium and not supported',
  toRequires: 'deprecated in Cilium and not supported',
  toFQDNs: 'DNS-based policy needs a DNS proxy, which Tapestry lacks',
  toServices: 'not supported',
  fromGroups: 'not supported',
  toGroups: 'not supported',
  fromNodes: 'node selectors are not supported',
  toNodes: 'node selectors are not supported',
  nodeSelector: 'host policies are not supported',
  rules: 'L7 rules need a proxy, which Tapestry lacks',
  listener: 'L7 listeners need a proxy, which Tapestry lacks',
  terminatingTLS: 'TLS interception is not supported',
  originatingTLS: 'TLS interception is not supported',
  serverNames: 'TLS SNI matching is not supported',
  authentication: 'mutual authentication is not supported',
  cidrGroupRef: 'CiliumCIDRGroups are not supported',
  cidrGroupSelector: 'CiliumCIDRGroups are not supported',
  labels: 'rule labels are not supported',
};

/** ICMP type names Cilium accepts in icmps[].fields[].type, by family. */
export const ICMP_TYPES: Readonly<Record<'IPv4' | 'IPv6', Readonly<Record<string, number>>>> = {
  IPv4: {
    EchoReply: 0, DestinationUnreachable: 3, Redirect: 5, Echo: 8, EchoRequest: 8, RouterAdvertisement: 9, RouterSelection: 10,
    TimeExceeded: 11, ParameterProblem: 12, Timestamp: 13, TimestampReply: 14, Photuris: 40, ExtendedEchoRequest: 42, ExtendedEchoReply: 43,
  },
  IPv6: {
    DestinationUnreachable: 1, PacketTooBig: 2, TimeExceeded: 3, ParameterProblem: 4, EchoRequest: 128, EchoReply: 129,
    MulticastListenerQuery: 130, MulticastListenerReport: 131, MulticastListenerDone: 132, RouterSolicitation: 133,
    RouterAdvertisement: 134, NeighborSolicitation: 135, NeighborAdvertisement: 136, RedirectMessage: 137,
    ExtendedEchoRequest: 160, ExtendedEchoReply: 161,
  },
};

type Ctx = z.core.$RefinementCtx<unknown>;
const fail = (ctx: Ctx, path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });

/* ---- names, labels, selectors ---- */

const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { message: 'must be lowercase letters, digits, "-" and "." (a DNS subdomain)' });
const dnsLabel = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: 'must be lowercase letters, digits and "-" (a DNS label)' });

const K8S_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const SOURCE = /^[A-Za-z0-9-]+:/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Label key problem, or undefined; `sourced`: Cilium keys may start with "source:". */
function labelKeyProblem(k: string, sourced: boolean): string | undefined {
  const m = sourced ? SOURCE.exec(k) : null;
  const key = m ? k.slice(m[0].length) : k;
  if (!K8S_KEY.test(key) || key.split('/').pop()!.length > 63) {
    return `bad label key "${k}" (${sourced ? '[source:]' : ''}[prefix/]name, name ≤ 63 letters, digits, "-", "_", ".")`;
  }
  return undefined;
}

const labelValue = z
  .string()
  .max(63, { message: 'must be at most 63 characters' })
  .regex(LABEL_VALUE, { message: 'must be letters, digits, "-", "_" or ".", starting and ending with a letter or digit' });

const requirement = (sourced: boolean) =>
  z
    .object({
      key: z.string().superRefine((k, ctx) => {
        const p = labelKeyProblem(k, sourced);
        if (p) fail(ctx, [], p);
      }),
      operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist'], { message: 'must be In, NotIn, Exists or DoesNotExist' }),
      values: z.array(labelValue).optional(),
    })
    .strict()
    .superRefine((r, ctx) => {
      const n = r.values?.length ?? 0;
      if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) fail(ctx, ['values'], `must not be empty for ${r.operator}`);
      if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) fail(ctx, ['values'], `must be empty for ${r.operator}`);
    });

const labelSelector = (sourced: boolean) =>
  z
    .object({
      matchLabels: z
        .record(z.string(), labelValue)
        .superRefine((m, ctx) => {
          for (const k of Object.keys(m)) {
            const p = labelKeyProblem(k, sourced);
            if (p) fail(ctx, [k], p);
          }
        })
        .optional(),
      matchExpressions: z.array(requirement(sourced)).optional(),
    })
    .strict();

/** A selector in a CiliumNetworkPolicy (keys may carry a source: "k8s:app", "reserved:host"). */
export const cnpSelectorSchema = labelSelector(true);
/** A selector in a NetworkPolicy (plain Kubernetes keys). */
export const knpSelectorSchema = labelSelector(false);
/** A written label selector. */
export type LabelSelectorDoc = z.infer<typeof cnpSelectorSchema>;

const metadata = z
  .object({
    name: dnsSubdomain,
    namespace: dnsLabel.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    // Server-set fields, present when a policy is exported with kubectl get -o yaml.
    uid: z.unknown().optional(),
    resourceVersion: z.unknown().optional(),
    generation: z.unknown().optional(),
    creationTimestamp: z.unknown().optional(),
    managedFields: z.unknown().optional(),
  })
  .strict();

/* ---- CIDRs and ports ---- */

/** Problem with a CIDR text, or undefined. `bare`: a lone address means a host prefix (Cilium allows it). */
export function cidrProblem(s: string, bare: boolean): string | undefined {
  if (parseCidr(s.includes('/') || !bare ? s : `${s}/${s.includes(':') ? 128 : 32}`)) return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (m && parseCidr(`${m[1]}/${m[1]!.includes(':') ? 128 : 32}`)) {
    const fam = m[1]!.includes(':') ? 6 : 4;
    const bits = fam === 4 ? 32 : 128;
    const len = Number(m[2]);
    if (len <= bits) {
      const host = BigInt(bits - len);
      const net = (ipToBigInt(m[1]!) >> host) << host;
      return `has bits set past the prefix length (did you mean ${bigIntToIp(net, fam)}/${len}?)`;
    }
  }
  return `not a CIDR (a.b.c.d/len or x::/len${bare ? ', or an address' : ''})`;
}

const cidrString = (bare: boolean) =>
  z.string().superRefine((s, ctx) => {
    const p = cidrProblem(s, bare);
    if (p) fail(ctx, [], p);
  });

/** except[] entries must lie strictly inside the CIDR. */
function checkExcept(cidr: string, except: readonly string[] | undefined, ctx: Ctx, bare: boolean): void {
  if (cidrProblem(cidr, bare)) return;
  const outer = canonicalPrefix(cidr);
  except?.forEach((e, i) => {
    if (cidrProblem(e, bare)) return;
    const inner = canonicalPrefix(e);
    if (!prefixContains(outer, inner) || inner.prefixLen === outer.prefixLen) fail(ctx, ['except', i], `${e} is not strictly inside ${cidr}`);
  });
}

/** A written port (number or string): the number, or a problem. `zero`: 0 means every port (Cilium). */
export function portValue(v: number | string, zero: boolean): number | string {
  const range = zero ? 'must be 1-65535 (or 0 for every port)' : 'must be 1-65535';
  if (typeof v === 'string') {
    if (/^[0-9]+$/.test(v)) v = Number(v);
    else if (/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(v)) return `named port "${v}" is not supported (Tapestry pods declare no container ports); use the number`;
    else return range;
  }
  if (!Number.isInteger(v) || v < (zero ? 0 : 1) || v > 65535) return range;
  return v;
}

const portField = z.union([z.number(), z.string()], { message: 'must be a port number' });
const endPortField = z.number({ message: 'must be a port number' }).int({ message: 'must be 1-65535' }).min(1, { message: 'must be 1-65535' }).max(65535, { message: 'must be 1-65535' });

/** port + endPort checks shared by both kinds. */
function checkPortRange(p: { port?: number | string | undefined; endPort?: number | undefined }, ctx: Ctx, zero: boolean): number | undefined {
  if (p.port === undefined) {
    if (p.endPort !== undefined) fail(ctx, ['endPort'], 'needs a port');
    return undefined;
  }
  const n = portValue(p.port, zero);
  if (typeof n === 'string') {
    fail(ctx, ['port'], n);
    return undefined;
  }
  if (p.endPort !== undefined) {
    if (n === 0) fail(ctx, ['endPort'], 'needs a port other than 0');
    else if (p.endPort < n) fail(ctx, ['endPort'], `must be ≥ port (${n})`);
  }
  return n;
}

/* ---- CiliumNetworkPolicy ---- */

const cnpPortProtocol = z
  .object({
    port: portField.optional(),
    endPort: endPortField.optional(),
    protocol: z.enum(['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6', 'ANY'], { message: 'must be TCP, UDP, SCTP, ICMP, ICMPv6 or ANY' }).default('ANY'),
  })
  .strict()
  .superRefine((p, ctx) => {
    const n = checkPortRange(p, ctx, true);
    if ((p.protocol === 'ICMP' || p.protocol === 'ICMPv6') && n !== undefined && n !== 0) fail(ctx, ['port'], `${p.protocol} has no ports; match ICMP types with icmps`);
  });

const cnpPortRule = z
  .object({ ports: z.array(cnpPortProtocol).min(1, { message: 'needs at least one port' }) })
  .strict();

const icmpField = z
  .object({
    family: z.enum(['IPv4', 'IPv6'], { message: 'must be IPv4 or IPv6' }).default('IPv4'),
    type: z.union([z.number(), z.string()], { message: 'must be an ICMP type number or name' }),
  })
  .strict()
  .superRefine((f, ctx) => {
    const t = typeof f.type === 'number' ? f.type : (ICMP_TYPES[f.family][f.type] ?? (/^[0-9]+$/.test(f.type) ? Number(f.type) : undefined));
    if (t === 0) {
      // The policy map key carries the type in the port, where 0 means "every port": an exact type 0 has no
      // key (Cilium had the same flaw, cilium/cilium#41304). Refuse rather than allow or deny all ICMP.
      fail(ctx, ['type'], 'type 0 (EchoReply) cannot be matched on its own (port 0 means every type in the policy map); replies to allowed echo requests pass through conntrack');
      return;
    }
    if (typeof f.type === 'number') {
      if (!Number.isInteger(f.type) || f.type < 0 || f.type > 255) fail(ctx, ['type'], 'must be 0-255 or an ICMP type name');
    } else if (ICMP_TYPES[f.family][f.type] === undefined && !/^[0-9]+$/.test(f.type)) {
      fail(ctx, ['type'], `unknown ${f.family} ICMP type "${f.type}" (known: ${Object.keys(ICMP_TYPES[f.family]).join(', ')})`);
    } else if (/^[0-9]+$/.test(f.type) && Number(f.type) > 255) fail(ctx, ['type'], 'must be 0-255 or an ICMP type name');
  });

const icmpRule = z.object({ fields: z.array(icmpField).min(1, { message: 'needs at least one field' }) }).strict();

const cidrSet = z
  .object({ cidr: cidrString(true), except: z.array(cidrString(true)).optional() })
  .strict()
  .superRefine((s, ctx) => checkExcept(s.cidr, s.except, ctx, true));

const entity = z.enum(ENTITIES, { message: `must be one of ${ENTITIES.join(', ')}` });

/** The L3 fields of one direction, by their written names. */
export const L3_FIELDS = {
  from: ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities'],
  to: ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities'],
} as const;

/** Cilium's sanitizer: one kind of L3 selector per rule; icmps and toPorts in separate rules. */
function checkCnpRule(r: Record<string, unknown>, ctx: Ctx, dir: 'from' | 'to'): void {
  const present = L3_FIELDS[dir].filter((f) => Array.isArray(r[f]) && (r[f] as unknown[]).length > 0);
  if (present.length > 1) fail(ctx, [], `combining ${present.join(' and ')} in one rule is not supported (as in Cilium); write one rule for each`);
  if (Array.isArray(r.icmps) && r.icmps.length > 0 && Array.isArray(r.toPorts) && r.toPorts.length > 0) {
    fail(ctx, [], 'icmps may not sit beside toPorts in one rule (as in Cilium); write one rule for each');
  }
}

const cnpIngress = z
  .object({
    fromEndpoints: z.array(cnpSelectorSchema).optional(),
    fromCIDR: z.array(cidrString(true)).optional(),
    fromCIDRSet: z.array(cidrSet).optional(),
    fromEntities: z.array(entity).optional(),
    toPorts: z.array(cnpPortRule).optional(),
    icmps: z.array(icmpRule).optional(),
  })
  .strict()
  .superRefine((r, ctx) => checkCnpRule(r, ctx, 'from'));

const cnpEgress = z
  .object({
    toEndpoints: z.array(cnpSelectorSchema).optional(),
    toCIDR: z.array(cidrString(true)).optional(),
    toCIDRSet: z.array(cidrSet).optional(),
    toEntities: z.array(entity).optional(),
    toPorts: z.array(cnpPortRule).optional(),
    icmps: z.array(icmpRule).optional(),
  })
  .strict()
  .superRefine((r, ctx) => checkCnpRule(r, ctx, 'to'));

/** One CiliumNetworkPolicy rule (spec, or an entry of specs). */
export const cnpRuleSchema = z
  .object({
    description: z.string().optional(),
    endpointSelector: cnpSelectorSchema,
    ingress: z.array(cnpIngress).optional(),
    ingressDeny: z.array(cnpIngress).optional(),
    egress: z.array(cnpEgress).optional(),
    egressDeny: z.array(cnpEgress).optional(),
    enableDefaultDeny: z.object({ ingress: z.boolean().optional(), egress: z.boolean().optional() }).strict().optional(),
  })
  .strict();

type CnpRuleIn = z.infer<typeof cnpRuleSchema>;

/** A CiliumNetworkPolicy document. */
export const cnpSchema = z
  .object({
    apiVersion: z.literal('cilium.io/v2', { message: 'must be cilium.io/v2 for a CiliumNetworkPolicy' }),
    kind: z.literal('CiliumNetworkPolicy'),
    metadata,
    spec: cnpRuleSchema.optional(),
    specs: z.array(cnpRuleSchema).min(1, { message: 'must not be empty' }).optional(),
    status: z.unknown().optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (!d.spec && !d.specs) fail(ctx, ['spec'], 'required (or specs)');
    // The subject is always limited to the policy's namespace; naming another one selects nothing, so say so.
    const ns = d.metadata.namespace ?? 'default';
    const specs: [(string | number)[], CnpRuleIn][] = [...(d.spec ? [[['spec'], d.spec] as [(string | number)[], CnpRuleIn]] : []), ...(d.specs ?? []).map((s, i): [(string | number)[], CnpRuleIn] => [['specs', i], s])];
    for (const [path, spec] of specs) {
      for (const [k, v] of Object.entries(spec.endpointSelector.matchLabels ?? {})) {
        const key = k.startsWith('k8s:') || k.startsWith('any:') ? k.slice(4) : k;
        if (key === POD_NAMESPACE_LABEL && v !== ns) {
          fail(ctx, [...path, 'endpointSelector', 'matchLabels', k], `a policy in namespace "${ns}" only selects pods of that namespace; set metadata.namespace instead`);
        }
      }
    }
  });

/** A validated CiliumNetworkPolicy. */
export type CnpDoc = z.infer<typeof cnpSchema>;
/** A validated CiliumNetworkPolicy rule. */
export type CnpRule = z.infer<typeof cnpRuleSchema>;
/** One validated ingress / ingressDeny entry. */
export type CnpIngress = z.infer<typeof cnpIngress>;
/** One validated egress / egressDeny entry. */
export type CnpEgress = z.infer<typeof cnpEgress>;

/* ---- Kubernetes NetworkPolicy ---- */

const knpPort = z
  .object({
    protocol: z.enum(['TCP', 'UDP', 'SCTP'], { message: 'must be TCP, UDP or SCTP' }).default('TCP'),
    port: portField.optional(),
    endPort: endPortField.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    checkPortRange(p, ctx, false);
  });

const ipBlock = z
  .object({ cidr: cidrString(false), except: z.array(cidrString(false)).optional() })
  .strict()
  .superRefine((b, ctx) => checkExcept(b.cidr, b.except, ctx, false));

const knpPeer = z
  .object({ podSelector: knpSelectorSchema.optional(), namespaceSelector: knpSelectorSchema.optional(), ipBlock: ipBlock.optional() })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.podSelector && !p.namespaceSelector && !p.ipBlock) fail(ctx, [], 'needs podSelector, namespaceSelector or ipBlock');
    if (p.ipBlock && (p.podSelector || p.namespaceSelector)) fail(ctx, ['ipBlock'], 'cannot be combined with podSelector or namespaceSelector');
  });

const knpIngress = z.object({ from: z.array(knpPeer).optional(), ports: z.array(knpPort).optional() }).strict();
const knpEgress = z.object({ to: z.array(knpPeer).optional(), ports: z.array(knpPort).optional() }).strict();

/** A Kubernetes NetworkPolicy document. */
export const knpSchema = z
  .object({
    apiVersion: z.literal('networking.k8s.io/v1', { message: 'must be networking.k8s.io/v1 for a NetworkPolicy' }),
    kind: z.literal('NetworkPolicy'),
    metadata,
    spec: z
      .object({
        podSelector: knpSelectorSchema,
        policyTypes: z.array(z.enum(['Ingress', 'Egress'], { message: 'must be Ingress or Egress' })).optional(),
        ingress: z.array(knpIngress).optional(),
        egress: z.array(knpEgress).optional(),
      })
      .strict(),
    status: z.unknown().optional(),
  })
  .strict();

/** A validated NetworkPolicy. */
export type KnpDoc = z.infer<typeof knpSchema>;
/** One validated NetworkPolicy peer. */
export type KnpPeer = z.infer<typeof knpPeer>;
/** One validated NetworkPolicy port. */
export type KnpPort = z.infer<typeof knpPort>;

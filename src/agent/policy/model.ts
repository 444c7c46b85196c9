/**
 * The policy model both document kinds are parsed into: what a rule selects,
 * which peers it names, and which protocols and ports.
 *
 * API: Policy, PolicyRule, PeerRule, Peer, PortProto, Entity/ENTITIES,
 *      PROTO, protoName(n), formatPort(p)
 *
 * A CiliumNetworkPolicy spec (or each of its specs) and a Kubernetes
 * NetworkPolicy each become one PolicyRule. Selectors are already scoped to
 * the policy's namespace; ANY protocols are already expanded; Kubernetes'
 * "empty from = every source" is already the `all` entity. Every part keeps
 * the field path it came from, for traces.
 */
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import type { Selector } from './selector.ts';

/** Traffic direction as seen from the selected endpoint. */
export type Direction = 'ingress' | 'egress';

/** Cilium's policy entities (pkg/policy/api/entity.go). */
export const ENTITIES = [
  'all',
  'world',
  'world-ipv4',
  'world-ipv6',
  'cluster',
  'host',
  'remote-node',
  'init',
  'health',
  'unmanaged',
  'kube-apiserver',
  'ingress',
  'none',
] as const;
/** A policy entity name. */
export type Entity = (typeof ENTITIES)[number];

/** Protocol numbers of policy map keys (0 = any protocol). */
export const PROTO = { ANY: 0, ICMP: IPPROTO_ICMP, TCP: IPPROTO_TCP, UDP: IPPROTO_UDP, ICMPV6: IPPROTO_ICMPV6, SCTP: IPPROTO_SCTP } as const;

/** "TCP", "UDP", "SCTP", "ICMP", "ICMPv6", "ANY", or the number. */
export function protoName(p: number): string {
  switch (p) {
    case PROTO.ANY: return 'ANY';
    case PROTO.TCP: return 'TCP';
    case PROTO.UDP: return 'UDP';
    case PROTO.SCTP: return 'SCTP';
    case PROTO.ICMP: return 'ICMP';
    case PROTO.ICMPV6: return 'ICMPv6';
    default: return String(p);
  }
}

/** A peer a rule names. */
export type Peer =
  | { kind: 'endpoints'; selector: Selector; field: string }
  | { kind: 'cidr'; cidr: string; except: readonly string[]; field: string }
  | { kind: 'entity'; entity: Entity; field: string };

/** One protocol and port range (ICMP: the type in `port`). port 0 = every port, then endPort is 0. */
export interface PortProto {
  proto: number;
  port: number;
  endPort: number;
  field: string;
}

/** "80/TCP", "8000-8080/UDP", "ANY", "TCP" (every port), "type 8/ICMP". */
export function formatPort(p: { proto: number; port: number; endPort: number }): string {
  if (p.proto === PROTO.ANY) return 'ANY';
  const isIcmp = p.proto === PROTO.ICMP || p.proto === PROTO.ICMPV6;
  if (p.port === 0 && !isIcmp) return `${protoName(p.proto)} (every port)`;
  const range = p.endPort > p.port ? `${p.port}-${p.endPort}` : `${p.port}`;
  return isIcmp ? `type ${range}/${protoName(p.proto)}` : `${range}/${protoName(p.proto)}`;
}

/** One entry of ingress / ingressDeny / egress / egressDeny. */
export interface PeerRule {
  /** Where it is written: "spec.ingress[0]". */
  field: string;
  deny: boolean;
  /** Peers it applies to (any of them); empty = none (the rule allows or denies nothing). */
  peers: readonly Peer[];
  /** Protocols and ports (any of them); undefined = every protocol and port. */
  ports?: readonly PortProto[];
}

/** One rule: a subject selector and its rules per direction. */
export interface PolicyRule {
  /** "CiliumNetworkPolicy default/rule1" (+ " specs[1]" for the specs list). */
  ref: string;
  /** The policy it belongs to: "CiliumNetworkPolicy default/rule1". */
  policy: string;
  /** The endpoints it applies to (scoped to the policy's namespace). */
  subject: Selector;
  /** Directions it puts under enforcement (has rules there, incl. deny; NetworkPolicy: policyTypes). */
  enforces: Readonly<Record<Direction, boolean>>;
  /** Of those, the directions where it makes the default deny (CiliumNetworkPolicy enableDefaultDeny: false opts out). */
  defaultDeny: Readonly<Record<Direction, boolean>>;
  ingress: readonly PeerRule[];
  egress: readonly PeerRule[];
}

/** A parsed, validated policy document. */
export interface Policy {
  kind: 'CiliumNetworkPolicy' | 'NetworkPolicy';
  name: string;
  namespace: string;
  /** "CiliumNetworkPolicy default/rule1". */
  id: string;
  rules: readonly PolicyRule[];
}

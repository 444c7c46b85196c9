/**
 * The policy check on the packet path: may this endpoint talk to (egress)
 * or hear from (ingress) a peer identity on this protocol and port
 * (bpf/lib/policy.h policy_can_egress/ingress, __policy_can_access; facts §7).
 * The map and its writers are policy-map.ts.
 *
 * API:
 *   policyCanAccess(pm, identity, egress, proto, dport, len, out?) -> out
 *   policyCanEgress(pm, dstIdentity, proto, dport, len, out?)      egress = true
 *   policyCanIngress(pm, srcIdentity, proto, dport, len, out?)     egress = false
 *   PolicyVerdict { verdict, matchType, proxyPort, authType, slot }  reusable result
 *   POLICY_MATCH, POLICY_MATCH_NAMES                               policy-verdict match types
 *   icmp4FragNeededBypass(proto, type, code, allowIcmpFragNeeded?) frag-needed skips policy
 *
 * Use (allocation-free; one PolicyVerdict per stage):
 *   if (!icmp4FragNeededBypass(proto, icmpType, icmpCode)) {
 *     const r = policyCanIngress(pm, srcId, proto, proto === IPPROTO_ICMP ? icmpType : dport, len, st);
 *     if (r.verdict < 0) return r.verdict; // DROP.POLICY (133) or DROP.POLICY_DENY (181)
 *   }
 *
 * Lookup order, most specific first:
 *   1 identity + protocol + port    match L3-L4
 *   2 ANY      + protocol + port    match L4-Only
 *   3 identity + protocol           match L3-Proto
 *   4 ANY      + protocol           match Proto-Only
 *   5 identity                      match L3-Only
 *   6 ANY                           match all
 * as two longest-prefix lookups, one with the peer's identity and one with
 * identity 0, keeping the longer match and, at equal length, the peer's.
 * With port ranges (prefixes between 48 and 64) the same rule applies:
 * ANY + TCP 80 (64 bits) beats identity + TCP 64-127 (58 bits). When the
 * peer's match is a whole port (64 bits) nothing can beat it, and the
 * second lookup is skipped. A packet from identity 0 itself needs one
 * lookup, and its matches count as the ANY rows.
 *
 * The matched entry's packet and byte counters count the packet, allowed
 * or denied. A deny entry gives DROP.POLICY_DENY; no entry, DROP.POLICY;
 * an allow, 0. Proxy redirects and auth are left to the caller: the
 * entry's proxy_port and auth_type are reported in `out`, the verdict
 * stays 0 (Cilium returns the proxy port as the verdict and checks the
 * auth map, DROP_POLICY_AUTH_REQUIRED 189). Untracked fragments (Cilium:
 * L3-only lookup, else DROP_FRAG_NOSUPPORT) are not handled here.
 *
 * ICMP: rules that name ICMP types are written as ports of protocol 1
 * (ICMPv6: 58), the type as the port number; the caller passes the
 * packet's ICMP type as `dport`. A rule for the protocol alone matches any
 * type. Port 0 means "any port", so a rule for type 0 (echo reply) alone
 * is not expressible; replies of tracked flows skip policy anyway.
 */
import * as pmm from './policy-map.ts';
import type { PolicyMap } from './policy-map.ts';
import { DROP } from './drop-reasons.ts';
import * as ip from '../../wire/ip.ts';
import * as icmp4 from '../../wire/icmp4.ts';

// Module-local copies: under tsx each use of an imported binding is a getter
// call (see conntrack.ts).
const VS = pmm.POLICY_VAL.SIZE, V_FLAGS = pmm.POLICY_VAL.FLAGS, V_PLEN = pmm.POLICY_VAL.PREFIX_LEN;
const V_PROXY = pmm.POLICY_VAL.PROXY_PORT, V_AUTH = pmm.POLICY_VAL.AUTH_TYPE;
const V_PACKETS = pmm.POLICY_VAL.PACKETS, V_BYTES = pmm.POLICY_VAL.BYTES;
const K_LABEL = pmm.POLICY_KEY.SEC_LABEL, K_EGRESS = pmm.POLICY_KEY.EGRESS;
const K_PROTO = pmm.POLICY_KEY.PROTOCOL, K_DPORT = pmm.POLICY_KEY.DPORT;
const F_DENY = pmm.POLICY_F_DENY, F_WPROTO = pmm.POLICY_F_WILDCARD_PROTOCOL, F_WPORT = pmm.POLICY_F_WILDCARD_DPORT;
const FULL = pmm.POLICY_FULL_PREFIX;
const DROP_POLICY = DROP.POLICY, DROP_POLICY_DENY = DROP.POLICY_DENY;
const IPPROTO_ICMP = ip.IPPROTO_ICMP, ICMP_DEST_UNREACH = icmp4.ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED = icmp4.ICMP_FRAG_NEEDED;

/** Policy-verdict match types (bpf/lib/policy_log.h; keep in sync with monitor decoding). */
export const POLICY_MATCH = { NONE: 0, L3_ONLY: 1, L3_L4: 2, L4_ONLY: 3, ALL: 4, L3_PROTO: 5, PROTO_ONLY: 6 } as const;
/** The names `cilium monitor` prints after "match", by match type. */
export const POLICY_MATCH_NAMES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'] as const;

const M_NONE = POLICY_MATCH.NONE, M_L3_ONLY = POLICY_MATCH.L3_ONLY, M_L3_L4 = POLICY_MATCH.L3_L4;
const M_L4_ONLY = POLICY_MATCH.L4_ONLY, M_ALL = POLICY_MATCH.ALL;
const M_L3_PROTO = POLICY_MATCH.L3_PROTO, M_PROTO_ONLY = POLICY_MATCH.PROTO_ONLY;

/** Result of one check; keep one per stage and pass it in. */
export class PolicyVerdict {
  /** 0 allow, DROP.POLICY (no entry) or DROP.POLICY_DENY. */
  verdict = 0;
  /** POLICY_MATCH.* of the entry used (NONE on a miss). */
  matchType = 0;
  /** The entry's proxy_port (0 = no redirect). */
  proxyPort = 0;
  /** The entry's auth_type (0 = none). */
  authType = 0;
  /** The entry's value slot in pm.map, or -1. */
  slot = -1;
}

/**
 * Check a packet against an endpoint's policy map and count it on the
 * entry that decides. `identity` is the peer (destination on egress,
 * source on ingress); `dport` the L4 destination port, or the ICMP type
 * for ICMP/ICMPv6; `len` the packet length for the byte counter.
 */
export function policyCanAccess(
  pm: PolicyMap, identity: number, egress: boolean, proto: number, dport: number, len: number,
  out: PolicyVerdict = new PolicyVerdict(),
): PolicyVerdict {
  const map = pm.map, key = pm.lookupKey, vals = map.values;
  key[K_LABEL] = identity & 0xff;
  key[K_LABEL + 1] = (identity >>> 8) & 0xff;
  key[K_LABEL + 2] = (identity >>> 16) & 0xff;
  key[K_LABEL + 3] = identity >>> 24;
  key[K_EGRESS] = egress ? 1 : 0;
  key[K_PROTO] = proto;
  key[K_DPORT] = dport >>> 8;
  key[K_DPORT + 1] = dport & 0xff;
  let slot = map.lookup(key, 0);
  let any = identity === 0;
  if (!any && (slot < 0 || vals[slot * VS + V_PLEN]! < FULL)) {
    key[K_LABEL] = key[K_LABEL + 1] = key[K_LABEL + 2] = key[K_LABEL + 3] = 0;
    const wild = map.lookup(key, 0);
    // The ANY match wins only when strictly longer: ties go to the peer's entry.
    if (wild >= 0 && (slot < 0 || vals[wild * VS + V_PLEN]! > vals[slot * VS + V_PLEN]!)) {
      slot = wild;
      any = true;
    }
  }
  out.slot = slot;
  if (slot < 0) {
    out.verdict = DROP_POLICY;
    out.matchType = M_NONE;
    out.proxyPort = out.authType = 0;
    return out;
  }
  const o = slot * VS, flags = vals[o + V_FLAGS]!;
  // Counters: u64 LE as two u32 halves, carrying into the high half.
  const view = map.view;
  const p = view.getUint32(o + V_PACKETS, true) + 1;
  view.setUint32(o + V_PACKETS, p >>> 0, true);
  if (p > 0xffffffff) view.setUint32(o + V_PACKETS + 4, (view.getUint32(o + V_PACKETS + 4, true) + 1) >>> 0, true);
  const b = view.getUint32(o + V_BYTES, true) + len;
  view.setUint32(o + V_BYTES, b >>> 0, true);
  if (b > 0xffffffff) view.setUint32(o + V_BYTES + 4, (view.getUint32(o + V_BYTES + 4, true) + 1) >>> 0, true);
  out.verdict = (flags & F_DENY) !== 0 ? DROP_POLICY_DENY : 0;
  out.matchType = (flags & F_WPROTO) !== 0 ? (any ? M_ALL : M_L3_ONLY)
    : (flags & F_WPORT) !== 0 ? (any ? M_PROTO_ONLY : M_L3_PROTO)
      : (any ? M_L4_ONLY : M_L3_L4);
  out.proxyPort = (vals[o + V_PROXY]! << 8) | vals[o + V_PROXY + 1]!;
  out.authType = vals[o + V_AUTH]!;
  return out;
}

/** policyCanAccess for a packet leaving the endpoint towards `dstIdentity`. */
export function policyCanEgress(
  pm: PolicyMap, dstIdentity: number, proto: number, dport: number, len: number, out?: PolicyVerdict,
): PolicyVerdict {
  return policyCanAccess(pm, dstIdentity, true, proto, dport, len, out);
}

/** policyCanAccess for a packet arriving at the endpoint from `srcIdentity`. */
export function policyCanIngress(
  pm: PolicyMap, srcIdentity: number, proto: number, dport: number, len: number, out?: PolicyVerdict,
): PolicyVerdict {
  return policyCanAccess(pm, srcIdentity, false, proto, dport, len, out);
}

/**
 * True when the packet is an ICMPv4 "fragmentation needed" (type 3 code 4)
 * and the `allow-icmp-frag-needed` option (default on) lets it through
 * without a policy check, so path-MTU discovery works whatever the policy.
 * The caller reads type and code from the ICMP header. IPv4 only, as the
 * option's name says; ICMPv6 Packet Too Big is not covered by it.
 */
export function icmp4FragNeededBypass(proto: number, icmpType: number, icmpCode: number, allowIcmpFragNeeded = true): boolean {
  return allowIcmpFragNeeded && proto === IPPROTO_ICMP && icmpType === ICMP_DEST_UNREACH && icmpCode === ICMP_FRAG_NEEDED;
}

/**
 * Datapath events: a bounded ring of fixed-size records the packet path
 * writes and readers poll (Cilium's perf event ring, bpf/lib/common.h and
 * pkg/monitor). A reader that falls behind loses the oldest records and is
 * told how many; the writer never waits.
 *
 * API:
 *   new EventRing(capacity?)
 *   ring.enabled                          false: emitters return at once (no reader)
 *   ring.policyVerdict(src, remote, verdict, egress, matchType, flow)
 *   ring.read(since, max) -> { events, next, lost }
 *   FlowInfo                              a packet's addresses, ports, protocol, TCP flags
 *   formatPolicyVerdict(ev)               Cilium's monitor line
 *
 * Record (u32 words): type, subtype, source endpoint, remote identity,
 * verdict (s32), dport, proto, flags (bit 0 egress, bit 1 IPv6, bits 2-4
 * match type), family-tagged addresses (4 + 4 words), sport, dport, TCP
 * flags, hash. Policy verdicts now; drops and traces grow into the same
 * ring.
 */
import { formatIpv4, formatIpv6 } from '../../wire/addr.ts';

/** Cilium's monitor message types (pkg/monitor/api/types.go). */
export const EVENT_TYPE = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5 } as const;

const W = { TYPE: 0, SUBTYPE: 1, SOURCE: 2, REMOTE: 3, VERDICT: 4, DPORT: 5, PROTO: 6, FLAGS: 7, SRC: 8, DST: 12, SPORT: 16, FLOW_DPORT: 17, TCP: 18, HASH: 19, SIZE: 20 } as const;

/** A packet as the events describe it; filled by the stage that emits. */
export class FlowInfo {
  v6 = false;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  proto = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
}

/** One event, decoded (JSON-able). */
export interface PolicyVerdictEvent {
  seq: number;
  type: 'policy-verdict';
  source: number;
  remoteIdentity: number;
  verdict: number;
  action: 'allow' | 'deny';
  direction: 'ingress' | 'egress';
  matchType: number;
  proto: number;
  ipv6: boolean;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  tcpFlags: number;
  hash: number;
}

/** The ring. */
export class EventRing {
  readonly words: Int32Array;
  /** Records written so far (the next record's sequence number). */
  head = 0;
  /** Emitters do nothing unless something reads (monitor off costs a branch). */
  enabled = false;

  constructor(readonly capacity = 4096) {
    this.words = new Int32Array(capacity * W.SIZE);
  }

  policyVerdict(source: number, remote: number, verdict: number, egress: boolean, matchType: number, f: FlowInfo): void {
    if (!this.enabled) return;
    const w = this.words;
    const o = (this.head % this.capacity) * W.SIZE;
    this.head++;
    w[o + W.TYPE] = EVENT_TYPE.POLICY_VERDICT;
    w[o + W.SUBTYPE] = 0;
    w[o + W.SOURCE] = source;
    w[o + W.REMOTE] = remote;
    w[o + W.VERDICT] = verdict;
    w[o + W.DPORT] = f.dport;
    w[o + W.PROTO] = f.proto;
    w[o + W.FLAGS] = (egress ? 1 : 0) | (f.v6 ? 2 : 0) | ((matchType & 7) << 2);
    let h = 0x811c9dc5;
    for (let k = 0; k < 4; k++) {
      const s = (f.src[4 * k]! << 24) | (f.src[4 * k + 1]! << 16) | (f.src[4 * k + 2]! << 8) | f.src[4 * k + 3]!;
      const d = (f.dst[4 * k]! << 24) | (f.dst[4 * k + 1]! << 16) | (f.dst[4 * k + 2]! << 8) | f.dst[4 * k + 3]!;
      w[o + W.SRC + k] = s;
      w[o + W.DST + k] = d;
      h = Math.imul(h ^ s ^ d, 0x01000193);
    }
    w[o + W.SPORT] = f.sport;
    w[o + W.FLOW_DPORT] = f.dport;
    w[o + W.TCP] = f.tcpFlags;
    w[o + W.HASH] = Math.imul(h ^ ((f.sport << 16) | f.dport) ^ f.proto, 0x01000193);
  }

  /** Records from sequence `since` on (at most `max`); `lost` counts those already overwritten. */
  read(since: number, max = 1000): { events: PolicyVerdictEvent[]; next: number; lost: number } {
    const oldest = Math.max(0, this.head - this.capacity);
    const start = Math.max(since, oldest);
    const lost = start - Math.max(0, since);
    const end = Math.min(this.head, start + max);
    const events: PolicyVerdictEvent[] = [];
    for (let s = start; s < end; s++) events.push(this.decode(s));
    return { events, next: end, lost: Math.max(0, lost) };
  }

  private decode(seq: number): PolicyVerdictEvent {
    const w = this.words;
    const o = (seq % this.capacity) * W.SIZE;
    const flags = w[o + W.FLAGS]!;
    const v6 = (flags & 2) !== 0;
    const addr = (at: number): string => {
      if (!v6) return formatIpv4(w[o + at + 3]! >>> 0);
      const b = new Uint8Array(16);
      for (let k = 0; k < 4; k++) {
        const x = w[o + at + k]!;
        b[4 * k] = x >>> 24;
        b[4 * k + 1] = (x >>> 16) & 0xff;
        b[4 * k + 2] = (x >>> 8) & 0xff;
        b[4 * k + 3] = x & 0xff;
      }
      return formatIpv6(b, 0);
    };
    const verdict = w[o + W.VERDICT]!;
    return {
      seq,
      type: 'policy-verdict',
      source: w[o + W.SOURCE]!,
      remoteIdentity: w[o + W.REMOTE]! >>> 0,
      verdict,
      action: verdict < 0 ? 'deny' : 'allow',
      direction: flags & 1 ? 'egress' : 'ingress',
      matchType: (flags >> 2) & 7,
      proto: w[o + W.PROTO]!,
      ipv6: v6,
      src: addr(W.SRC),
      dst: addr(W.DST),
      sport: w[o + W.SPORT]!,
      dport: w[o + W.FLOW_DPORT]!,
      tcpFlags: w[o + W.TCP]!,
      hash: w[o + W.HASH]! >>> 0,
    };
  }
}

const MATCH_NAMES = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'];
const PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'icmpv6', 132: 'sctp' };

/** Cilium's policy-verdict monitor line (facts §9). */
export function formatPolicyVerdict(e: PolicyVerdictEvent): string {
  const hp = (a: string, p: number) => (e.ipv6 ? `[${a}]:${p}` : `${a}:${p}`);
  let summary: string;
  if (e.proto === 6 || e.proto === 17) {
    const flags = e.proto === 6 ? tcpFlagNames(e.tcpFlags) : '';
    summary = `${hp(e.src, e.sport)} -> ${hp(e.dst, e.dport)} ${PROTO_NAMES[e.proto]}${flags ? ` ${flags}` : ''}`;
  } else {
    summary = `${e.src} -> ${e.dst} ${PROTO_NAMES[e.proto] ?? `proto ${e.proto}`}`;
  }
  return (
    `Policy verdict log: flow 0x${e.hash.toString(16)} local EP ID ${e.source}, remote ID ${e.remoteIdentity}, proto ${e.proto}, ` +
    `${e.direction}, action ${e.action}, auth: disabled, match ${MATCH_NAMES[e.matchType] ?? 'none'}, ${summary}`
  );
}

/** TCP flags in Cilium's order: SYN, ACK, RST, FIN. */
function tcpFlagNames(f: number): string {
  const out: string[] = [];
  if (f & 0x02) out.push('SYN');
  if (f & 0x10) out.push('ACK');
  if (f & 0x04) out.push('RST');
  if (f & 0x01) out.push('FIN');
  return out.join(', ');
}

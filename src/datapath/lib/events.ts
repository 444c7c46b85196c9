/**
 * Datapath events: a bounded ring of fixed-size records the packet path
 * writes and readers poll (Cilium's perf event ring, bpf/lib/common.h and
 * pkg/monitor). A reader that falls behind loses the oldest records and is
 * told how many; the writer never waits.
 *
 * API:
 *   new EventRing(capacity?)
 *   ring.enabled                          false: emitters return at once (no reader)
 *   ring.traceEnabled                     trace events (one per forwarded frame) only while a reader asks
 *   ring.policyVerdict(src, remote, verdict, egress, matchType, flow)
 *   ring.drop(src, reason, srcId, dstId, dstEp, ifindex, len, flow)
 *   ring.trace(src, point, srcId, dstId, dstEp, ifindex, len, flow)
 *   ring.read(since, max) -> { events, next, lost }
 *   FlowInfo, flowFromFrame(flow, buf, off, len)   a packet's addresses, ports, protocol, TCP flags
 *   formatEvent(ev)                       Cilium's monitor line for any event
 *   OBS_POINT, OBS_POINT_NAMES            trace observation points (to-endpoint, to-stack, …)
 *
 * Record (u32 words): type, subtype, source endpoint, remote identity,
 * verdict (s32), dport, proto, flags (bit 0 egress, bit 1 IPv6, bits 2-4
 * match type), family-tagged addresses (4 + 4 words), sport, dport, TCP
 * flags, hash. Policy verdicts now; drops and traces grow into the same
 * ring.
 */
import { formatIpv4, formatIpv6 } from '../../wire/addr.ts';
import { dropReasonString } from './drop-reasons.ts';
import { reservedIdentityName } from './identity.ts';

/** Cilium's monitor message types (pkg/monitor/api/types.go). */
export const EVENT_TYPE = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5 } as const;

const W = { TYPE: 0, SUBTYPE: 1, SOURCE: 2, REMOTE: 3, VERDICT: 4, DPORT: 5, PROTO: 6, FLAGS: 7, SRC: 8, DST: 12, SPORT: 16, FLOW_DPORT: 17, TCP: 18, HASH: 19, DST_ID: 20, DST_EP: 21, IFINDEX: 22, LEN: 23, SIZE: 24 } as const;

/** Trace observation points (bpf/lib/trace.h). */
export const OBS_POINT = { TO_LXC: 0, TO_PROXY: 1, TO_HOST: 2, TO_STACK: 3, TO_OVERLAY: 4, FROM_LXC: 5, FROM_PROXY: 6, FROM_HOST: 7, FROM_STACK: 8, FROM_OVERLAY: 9, FROM_NETWORK: 10, TO_NETWORK: 11 } as const;
export const OBS_POINT_NAMES = ['to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy', 'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network'] as const;

/** A packet as the events describe it; filled by the stage that emits (IPv4 in bytes 12..15). */
export class FlowInfo {
  v6 = false;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  proto = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
}

/** Fields every decoded event has. */
interface EventBase {
  seq: number;
  source: number;
  ipv6: boolean;
  proto: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  tcpFlags: number;
  hash: number;
}

/** A drop (type 1): subtype = reason. */
export interface DropEvent extends EventBase {
  type: 'drop';
  reason: number;
  reasonString: string;
  srcIdentity: number;
  dstIdentity: number;
  dstEndpoint: number;
  ifindex: number;
  len: number;
}

/** A trace (type 4): subtype = observation point. */
export interface TraceEvent extends EventBase {
  type: 'trace';
  point: number;
  pointName: string;
  srcIdentity: number;
  dstIdentity: number;
  dstEndpoint: number;
  ifindex: number;
  len: number;
}

/** Any decoded event. */
export type DatapathEvent = PolicyVerdictEvent | DropEvent | TraceEvent;

/** One policy verdict, decoded (JSON-able). */
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
    const o = this.begin(EVENT_TYPE.POLICY_VERDICT, 0, source, f);
    const w = this.words;
    w[o + W.REMOTE] = remote;
    w[o + W.VERDICT] = verdict;
    w[o + W.FLAGS] = (egress ? 1 : 0) | (f.v6 ? 2 : 0) | ((matchType & 7) << 2);
  }

  /** A dropped frame: `reason` positive (Cilium's drop code), identities as far as known. */
  drop(source: number, reason: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number, f: FlowInfo): void {
    if (!this.enabled) return;
    const o = this.begin(EVENT_TYPE.DROP, reason, source, f);
    this.fill(o, srcId, dstId, dstEp, ifindex, len);
  }

  /** A forwarded frame at observation point `point` (only while traceEnabled). */
  trace(source: number, point: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number, f: FlowInfo): void {
    if (!this.traceEnabled) return;
    const o = this.begin(EVENT_TYPE.TRACE, point, source, f);
    this.fill(o, srcId, dstId, dstEp, ifindex, len);
  }

  /** Trace events are on only while someone reads them. */
  traceEnabled = false;

  private fill(o: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number): void {
    const w = this.words;
    w[o + W.REMOTE] = srcId;
    w[o + W.DST_ID] = dstId;
    w[o + W.DST_EP] = dstEp;
    w[o + W.IFINDEX] = ifindex;
    w[o + W.LEN] = len;
  }

  /** Claim the next record and write the common fields; returns its word offset. */
  private begin(type: number, subtype: number, source: number, f: FlowInfo): number {
    const w = this.words;
    const o = (this.head % this.capacity) * W.SIZE;
    this.head++;
    w[o + W.TYPE] = type;
    w[o + W.SUBTYPE] = subtype;
    w[o + W.SOURCE] = source;
    w[o + W.PROTO] = f.proto;
    w[o + W.FLAGS] = f.v6 ? 2 : 0;
    w[o + W.VERDICT] = 0;
    w[o + W.DPORT] = f.dport;
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
    return o;
  }

  /** Records from sequence `since` on (at most `max`); `lost` counts those already overwritten. */
  read(since: number, max = 1000): { events: DatapathEvent[]; next: number; lost: number } {
    const oldest = Math.max(0, this.head - this.capacity);
    const start = Math.max(since, oldest);
    const lost = start - Math.max(0, since);
    const end = Math.min(this.head, start + max);
    const events: DatapathEvent[] = [];
    for (let s = start; s < end; s++) events.push(this.decode(s));
    return { events, next: end, lost: Math.max(0, lost) };
  }

  private decode(seq: number): DatapathEvent {
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
    const type = w[o + W.TYPE]!;
    const sub = w[o + W.SUBTYPE]!;
    if (type === EVENT_TYPE.DROP || type === EVENT_TYPE.TRACE) {
      const base = {
        seq, source: w[o + W.SOURCE]!, ipv6: v6, proto: w[o + W.PROTO]!, src: addr(W.SRC), dst: addr(W.DST),
        sport: w[o + W.SPORT]!, dport: w[o + W.FLOW_DPORT]!, tcpFlags: w[o + W.TCP]!, hash: w[o + W.HASH]! >>> 0,
        srcIdentity: w[o + W.REMOTE]! >>> 0, dstIdentity: w[o + W.DST_ID]! >>> 0, dstEndpoint: w[o + W.DST_EP]!, ifindex: w[o + W.IFINDEX]!, len: w[o + W.LEN]!,
      };
      return type === EVENT_TYPE.DROP
        ? { ...base, type: 'drop', reason: sub, reasonString: dropReasonString(sub) }
        : { ...base, type: 'trace', point: sub, pointName: OBS_POINT_NAMES[sub] ?? `point-${sub}` };
    }
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

/** Cilium's packet summary: "<src>:<sport> -> <dst>:<dport> tcp SYN, ACK" or "<src> -> <dst> icmp". */
function summaryOf(e: EventBase): string {
  const hp = (a: string, p: number) => (e.ipv6 ? `[${a}]:${p}` : `${a}:${p}`);
  if (e.proto === 6 || e.proto === 17) {
    const flags = e.proto === 6 ? tcpFlagNames(e.tcpFlags) : '';
    return `${hp(e.src, e.sport)} -> ${hp(e.dst, e.dport)} ${PROTO_NAMES[e.proto]}${flags ? ` ${flags}` : ''}`;
  }
  return `${e.src} -> ${e.dst} ${PROTO_NAMES[e.proto] ?? `proto ${e.proto}`}`;
}

/** An identity as the monitor prints it: reserved ones by name (unless numeric). */
function ident(id: number, numeric: boolean): string {
  return numeric ? String(id) : (reservedIdentityName(id) ?? String(id));
}

/** Cilium's monitor line for any event (facts §9; `numeric` is `-n`). */
export function formatEvent(e: DatapathEvent, numeric = false): string {
  if (e.type === 'policy-verdict') return formatPolicyVerdict(e);
  const ids = `identity ${ident(e.srcIdentity, numeric)}->${ident(e.dstIdentity, numeric)}`;
  if (e.type === 'drop') {
    return `xx drop (${e.reasonString}) flow 0x${e.hash.toString(16)} to endpoint ${e.dstEndpoint}, ifindex ${e.ifindex}, file ${FILE_NAMES[e.source === 0 ? 1 : 2]}:0, , ${ids}: ${summaryOf(e)}`;
  }
  const prefix = e.point === OBS_POINT.TO_LXC ? `-> endpoint ${e.dstEndpoint}` : e.point === OBS_POINT.FROM_LXC ? `<- endpoint ${e.source}` : e.pointName.startsWith('to-') ? `-> ${e.pointName.slice(3)}` : `<- ${e.pointName.slice(5)}`;
  return `${prefix} flow 0x${e.hash.toString(16)} , ${ids} state new ifindex ${e.ifindex} orig-ip 0.0.0.0: ${summaryOf(e)}`;
}

/** bpf source files by Cilium's file ID (pkg/monitor/api/files.go): where a drop happened. */
const FILE_NAMES: Record<number, string> = { 1: 'bpf_host.c', 2: 'bpf_lxc.c', 3: 'bpf_overlay.c' };

/** Cilium's policy-verdict monitor line (facts §9). */
export function formatPolicyVerdict(e: PolicyVerdictEvent): string {
  const summary = summaryOf(e);
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

/** Fill `f` from an Ethernet frame at buf[off..off+len): IPv4/IPv6 addresses, L4 ports and TCP flags. */
export function flowFromFrame(f: FlowInfo, buf: Uint8Array, off: number, len: number): void {
  f.src.fill(0);
  f.dst.fill(0);
  f.proto = f.sport = f.dport = f.tcpFlags = 0;
  f.v6 = false;
  if (len < 14) return;
  const et = (buf[off + 12]! << 8) | buf[off + 13]!;
  const ip = off + 14;
  let l4 = -1;
  if (et === 0x0800 && len >= 34) {
    for (let k = 0; k < 4; k++) {
      f.src[12 + k] = buf[ip + 12 + k]!;
      f.dst[12 + k] = buf[ip + 16 + k]!;
    }
    f.proto = buf[ip + 9]!;
    l4 = ip + (buf[ip]! & 0xf) * 4;
  } else if (et === 0x86dd && len >= 54) {
    f.v6 = true;
    f.src.set(buf.subarray(ip + 8, ip + 24));
    f.dst.set(buf.subarray(ip + 24, ip + 40));
    f.proto = buf[ip + 6]!;
    l4 = ip + 40;
  }
  if (l4 < 0 || l4 + 4 > off + len) return;
  if (f.proto === 6 || f.proto === 17) {
    f.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    f.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    if (f.proto === 6 && l4 + 14 <= off + len) f.tcpFlags = buf[l4 + 13]!;
  }
}

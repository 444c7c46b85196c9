/**
 * Datapath events: a bounded ring of fixed-size records the packet path
 * writes and readers poll (Cilium's perf event ring, bpf/lib/common.h and
 * pkg/monitor). A reader that falls behind loses the oldest records and is
 * told how many; the writer never waits.
 *
 * API:
 *   new EventRing(capacity?)
 *   ring.enabled                          false: emitters return at once (no reader)
 *   ring.traceEnabled                     trace events only while a reader asks
 *   ring.debugEnabled                     debug events only while a reader asks
 *   ring.aggregate                        monitor aggregation (medium): see datapath.ts traceReason
 *   ring.now, ring.timeBase               batch time (ms, set per batch) and what decode adds to it
 *   ring.policyVerdict(src, remote, verdict, egress, matchType, flow)
 *   ring.drop(src, reason, srcId, dstId, dstEp, ifindex, len, flow, hook)   hook: DROP_HOOK
 *   ring.trace(src, point, reason, srcId, dstId, dstEp, ifindex, len, flow)
 *   ring.stage(slot, src, point, srcId, ifindex, len, flow) / ring.commit(slot, reason)
 *                                         a from-* trace written before conntrack ran, kept or not after
 *   ring.debug(src, subtype, hash, arg1, arg2, arg3)
 *   ring.read(since, max) -> { events, next, lost }
 *   ring.readRaw(since, max) -> RawEvents     the records copied out, undecoded (what the worker hands over)
 *   decodeEvents(raw) -> DatapathEvent[]      decoding, on the reader's thread
 *   ring.shareHead(cell)                      publish the record count in shared memory (readers skip idle polls)
 *   FlowInfo, flowFromFrame(flow, buf, off, len)   a packet's addresses, ports, protocol, TCP flags
 *   formatEvent(ev)                       Cilium's monitor line for any event
 *   OBS_POINT, OBS_POINT_NAMES            trace observation points (to-endpoint, to-stack, …)
 *   TRACE_REASON, TRACE_REASON_NAMES      trace reasons (new, established, reply, related, …, unknown)
 *   DBG                                   debug message subtypes
 *
 * Record (u32 words): type, subtype, source endpoint, remote identity,
 * verdict (s32), dport, proto, flags (bit 0 egress, bit 1 IPv6, bits 2-4
 * match type), family-tagged addresses (4 + 4 words), sport, dport, TCP
 * flags, hash, destination identity and endpoint, ifindex, length, trace
 * reason; the batch time (ms) in a parallel Float64Array. Debug records
 * keep their three arguments in the identity/endpoint words.
 */
import { formatIpv4, formatIpv6 } from '../../wire/addr.ts';
import { dropReasonString } from './drop-reasons.ts';
import { reservedIdentityName } from './identity.ts';

/** Cilium's monitor message types (pkg/monitor/api/types.go). */
export const EVENT_TYPE = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5 } as const;

const W = { TYPE: 0, SUBTYPE: 1, SOURCE: 2, REMOTE: 3, VERDICT: 4, DPORT: 5, PROTO: 6, FLAGS: 7, SRC: 8, DST: 12, SPORT: 16, FLOW_DPORT: 17, TCP: 18, HASH: 19, DST_ID: 20, DST_EP: 21, IFINDEX: 22, LEN: 23, REASON: 24, SIZE: 25 } as const;
/** Debug arguments share the words of the identities and endpoint. */
const ARG1 = W.REMOTE, ARG2 = W.DST_ID, ARG3 = W.DST_EP;

/**
 * Trace reasons (bpf/lib/trace.h enum trace_reason): the conntrack result
 * of the frame, CT_NEW..CT_RELATED by value; UNKNOWN when no lookup ran.
 * Keep in sync with conntrack.ts CT_NEW.. and Hubble's mapping in flows.ts.
 */
export const TRACE_REASON = { NEW: 0, ESTABLISHED: 1, REPLY: 2, RELATED: 3, REOPENED: 4, UNKNOWN: 5 } as const;
/** Cilium's monitor names of the trace reasons (pkg/monitor/datapath_trace.go). */
export const TRACE_REASON_NAMES = ['new', 'established', 'reply', 'related', 'reopened', 'unknown'] as const;

/**
 * Debug message subtypes, Cilium's numbers (bpf/lib/dbg.h, mirrored in
 * pkg/monitor/datapath_debug.go) for the messages Tapestry emits.
 * LB4_BACKEND_MAPPED has no Cilium twin (its LB lines print a slot, not a
 * backend ID): a number of Tapestry's, above Cilium's range.
 */
export const DBG = { CT_VERDICT: 15, CT_LOOKUP4_1: 48, CT_LOOKUP4_2: 49, CT_CREATED4: 50, CT_LOOKUP6_1: 51, CT_LOOKUP6_2: 52, CT_CREATED6: 53, LB4_BACKEND_MAPPED: 200 } as const;

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
  /** When the datapath recorded it: the batch's time in ms, plus the ring's timeBase (wall clock in the agent). */
  time: number;
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

/**
 * Where a drop happened: the program (Cilium's hook) and the source file
 * Cilium would name in its drop line.
 */
export const DROP_HOOKS = [
  { hook: 'unknown', file: 0 },
  { hook: 'from-container', file: 2 },
  { hook: 'to-container', file: 2 },
  { hook: 'from-netdev', file: 1 },
  { hook: 'from-host', file: 1 },
  { hook: 'xdp', file: 4 },
] as const;
/** Index of each hook in DROP_HOOKS. */
export const DROP_HOOK = { UNKNOWN: 0, FROM_CONTAINER: 1, TO_CONTAINER: 2, FROM_NETDEV: 3, FROM_HOST: 4, XDP: 5 } as const;

/** A drop (type 1): subtype = reason. */
export interface DropEvent extends EventBase {
  type: 'drop';
  reason: number;
  reasonString: string;
  /** The program that dropped it (DROP_HOOKS). */
  hook: string;
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
  /** TRACE_REASON.*: the frame's conntrack result. */
  reason: number;
  reasonName: string;
  srcIdentity: number;
  dstIdentity: number;
  dstEndpoint: number;
  ifindex: number;
  len: number;
}

/** A debug message (type 2): Cilium's DebugMsg, its text already rendered. */
export interface DebugEvent {
  seq: number;
  time: number;
  type: 'debug';
  source: number;
  subtype: number;
  hash: number;
  arg1: number;
  arg2: number;
  arg3: number;
  message: string;
}

/** Any decoded event. */
export type DatapathEvent = PolicyVerdictEvent | DropEvent | TraceEvent | DebugEvent;

/** One policy verdict, decoded (JSON-able). */
export interface PolicyVerdictEvent {
  seq: number;
  time: number;
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
  /** Batch time of each record, ms. */
  readonly times: Float64Array;
  /** Records written so far (the next record's sequence number). */
  head = 0;
  /** Emitters do nothing unless something reads (monitor off costs a branch). */
  enabled = false;
  /** Trace events are on only while someone reads them. */
  traceEnabled = false;
  /** Debug events likewise (`monitor --type debug`). */
  debugEnabled = false;
  /** Monitor aggregation medium: traces only for reported conntrack packets (datapath.ts). */
  aggregate = true;
  /** Time of the batch being processed, ms (the datapath sets it per batch). */
  now = 0;
  /** Added to `now` when decoding (the worker's performance.timeOrigin: wall-clock ms). */
  timeBase = 0;
  /** Shared cell the record count is mirrored into (low 31 bits), or null. */
  private headCell: Int32Array | null = null;
  /** from-* traces written before the programs ran, per frame slot (see stage/commit). */
  private readonly staged: Int32Array;
  private readonly stagedTime: Float64Array;
  private readonly stagedOn: Uint8Array;

  /** `stageSlots`: two per frame of a batch (BATCH_MAX 256): the arrival point and from-overlay. */
  constructor(readonly capacity = 4096, stageSlots = 512) {
    this.words = new Int32Array(capacity * W.SIZE);
    this.times = new Float64Array(capacity);
    this.staged = new Int32Array(stageSlots * W.SIZE);
    this.stagedTime = new Float64Array(stageSlots);
    this.stagedOn = new Uint8Array(stageSlots);
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
  drop(source: number, reason: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number, f: FlowInfo, hook = 0): void {
    if (!this.enabled) return;
    const o = this.begin(EVENT_TYPE.DROP, reason, source, f);
    this.fill(this.words, o, srcId, dstId, dstEp, ifindex, len);
    this.words[o + W.REASON] = hook;
  }

  /** A forwarded frame at observation point `point` with trace reason `reason` (only while traceEnabled). */
  trace(source: number, point: number, reason: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number, f: FlowInfo): void {
    if (!this.traceEnabled) return;
    const o = this.begin(EVENT_TYPE.TRACE, point, source, f);
    this.fill(this.words, o, srcId, dstId, dstEp, ifindex, len);
    this.words[o + W.REASON] = reason;
  }

  /**
   * Write a from-* trace for frame slot `slot` aside: it is observed as the
   * frame arrives, but whether it is reported (and with which reason)
   * depends on the conntrack lookups that run later. commit() keeps it.
   */
  stage(slot: number, source: number, point: number, srcId: number, ifindex: number, len: number, f: FlowInfo): void {
    const w = this.staged;
    const o = slot * W.SIZE;
    writeHeader(w, o, EVENT_TYPE.TRACE, point, source, f);
    this.fill(w, o, srcId, 0, 0, ifindex, len);
    this.stagedTime[slot] = this.now;
    this.stagedOn[slot] = 1;
  }

  /** Forget what slot `slot` staged (a new batch). */
  unstage(slot: number): void {
    this.stagedOn[slot] = 0;
  }

  /** Move slot `slot`'s staged trace into the ring with `reason` (reason < 0: drop it). */
  commit(slot: number, reason: number): void {
    if (this.stagedOn[slot] === 0) return;
    this.stagedOn[slot] = 0;
    if (reason < 0 || !this.traceEnabled) return;
    const o = this.claim();
    const so = slot * W.SIZE;
    const w = this.words, st = this.staged;
    for (let k = 0; k < W.SIZE; k++) w[o + k] = st[so + k]!; // no subarray(): nothing allocated per frame
    w[o + W.REASON] = reason;
    this.times[(this.head - 1) % this.capacity] = this.stagedTime[slot]!;
  }

  /** A debug message (only while debugEnabled; the caller checks, to build no arguments for nothing). */
  debug(source: number, subtype: number, hash: number, arg1: number, arg2: number, arg3: number): void {
    const o = this.claim();
    const w = this.words;
    w[o + W.TYPE] = EVENT_TYPE.DEBUG;
    w[o + W.SUBTYPE] = subtype;
    w[o + W.SOURCE] = source;
    w[o + W.HASH] = hash;
    w[o + ARG1] = arg1;
    w[o + ARG2] = arg2;
    w[o + ARG3] = arg3;
  }

  private fill(w: Int32Array, o: number, srcId: number, dstId: number, dstEp: number, ifindex: number, len: number): void {
    w[o + W.REMOTE] = srcId;
    w[o + W.DST_ID] = dstId;
    w[o + W.DST_EP] = dstEp;
    w[o + W.IFINDEX] = ifindex;
    w[o + W.LEN] = len;
  }

  /**
   * Mirror the record count into `cell[0]` (a SharedArrayBuffer the
   * reader's thread holds), so a reader learns that nothing happened
   * without asking the datapath thread.
   */
  shareHead(cell: Int32Array): void {
    this.headCell = cell;
    cell[0] = this.head & 0x7fffffff;
  }

  /** Claim the next record (stamped with the batch time); returns its word offset. */
  private claim(): number {
    const slot = this.head % this.capacity;
    this.head++;
    if (this.headCell !== null) this.headCell[0] = this.head & 0x7fffffff;
    this.times[slot] = this.now;
    return slot * W.SIZE;
  }

  /** Claim the next record and write the common fields; returns its word offset. */
  private begin(type: number, subtype: number, source: number, f: FlowInfo): number {
    const o = this.claim();
    writeHeader(this.words, o, type, subtype, source, f);
    return o;
  }

  /** Records from sequence `since` on (at most `max`), decoded; `lost` counts those already overwritten. */
  read(since: number, max = 1000): { events: DatapathEvent[]; next: number; lost: number } {
    const raw = this.readRaw(since, max);
    return { events: decodeEvents(raw), next: raw.next, lost: raw.lost };
  }

  /**
   * Records from sequence `since` on (at most `max`), copied out as they
   * are: the datapath thread only copies words; decoding (strings,
   * objects) happens on the reader's side (decodeEvents).
   */
  readRaw(since: number, max = 1000): RawEvents {
    const oldest = Math.max(0, this.head - this.capacity);
    const start = Math.max(since, oldest);
    const lost = Math.max(0, start - Math.max(0, since));
    const end = Math.min(this.head, start + max);
    const n = Math.max(0, end - start);
    const words = new Int32Array(n * W.SIZE);
    const times = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const slot = (start + k) % this.capacity;
      words.set(this.words.subarray(slot * W.SIZE, (slot + 1) * W.SIZE), k * W.SIZE);
      times[k] = this.times[slot]!;
    }
    return { words, times, first: start, next: end, lost, timeBase: this.timeBase };
  }
}

/** Records as readRaw copies them out: W.SIZE words each, their times, the first one's sequence. */
export interface RawEvents {
  words: Int32Array;
  times: Float64Array;
  first: number;
  next: number;
  lost: number;
  timeBase: number;
}

/** Decode what readRaw copied out. */
export function decodeEvents(raw: RawEvents): DatapathEvent[] {
  const out: DatapathEvent[] = [];
  for (let k = 0; k < raw.times.length; k++) out.push(decodeRecord(raw.words, k * W.SIZE, raw.first + k, raw.timeBase + raw.times[k]!));
  return out;
}

/** One record at word offset `o` of `w`. */
function decodeRecord(w: Int32Array, o: number, seq: number, time: number): DatapathEvent {
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
  if (type === EVENT_TYPE.DEBUG) {
    const arg1 = w[o + ARG1]! >>> 0, arg2 = w[o + ARG2]! >>> 0, arg3 = w[o + ARG3]! >>> 0;
    return { seq, time, type: 'debug', source: w[o + W.SOURCE]!, subtype: sub, hash: w[o + W.HASH]! >>> 0, arg1, arg2, arg3, message: debugMessage(sub, arg1, arg2, arg3) };
  }
  if (type === EVENT_TYPE.DROP || type === EVENT_TYPE.TRACE) {
    const base = {
      seq, time, source: w[o + W.SOURCE]!, ipv6: v6, proto: w[o + W.PROTO]!, src: addr(W.SRC), dst: addr(W.DST),
      sport: w[o + W.SPORT]!, dport: w[o + W.FLOW_DPORT]!, tcpFlags: w[o + W.TCP]!, hash: w[o + W.HASH]! >>> 0,
      srcIdentity: w[o + W.REMOTE]! >>> 0, dstIdentity: w[o + W.DST_ID]! >>> 0, dstEndpoint: w[o + W.DST_EP]!, ifindex: w[o + W.IFINDEX]!, len: w[o + W.LEN]!,
    };
    if (type === EVENT_TYPE.DROP) return { ...base, type: 'drop', reason: sub, reasonString: dropReasonString(sub), hook: DROP_HOOKS[w[o + W.REASON]!]?.hook ?? 'unknown' };
    const reason = w[o + W.REASON]!;
    return { ...base, type: 'trace', point: sub, pointName: OBS_POINT_NAMES[sub] ?? `point-${sub}`, reason, reasonName: TRACE_REASON_NAMES[reason] ?? String(reason) };
  }
  const verdict = w[o + W.VERDICT]!;
  return {
    seq,
    time,
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

/** The common fields of a record at word offset `o` of `w`: type, source, the packet and its flow hash. */
function writeHeader(w: Int32Array, o: number, type: number, subtype: number, source: number, f: FlowInfo): void {
  w[o + W.TYPE] = type;
  w[o + W.SUBTYPE] = subtype;
  w[o + W.SOURCE] = source;
  w[o + W.PROTO] = f.proto;
  w[o + W.FLAGS] = f.v6 ? 2 : 0;
  w[o + W.VERDICT] = 0;
  w[o + W.DPORT] = f.dport;
  w[o + W.REASON] = TRACE_REASON.UNKNOWN;
  for (let k = 0; k < 4; k++) {
    w[o + W.SRC + k] = (f.src[4 * k]! << 24) | (f.src[4 * k + 1]! << 16) | (f.src[4 * k + 2]! << 8) | f.src[4 * k + 3]!;
    w[o + W.DST + k] = (f.dst[4 * k]! << 24) | (f.dst[4 * k + 1]! << 16) | (f.dst[4 * k + 2]! << 8) | f.dst[4 * k + 3]!;
  }
  w[o + W.SPORT] = f.sport;
  w[o + W.FLOW_DPORT] = f.dport;
  w[o + W.TCP] = f.tcpFlags;
  w[o + W.HASH] = flowHash(f);
}

/**
 * The flow hash trace and drop records carry (FNV-1a style over the
 * addresses, ports and protocol); debug records use it as Cilium's MARK,
 * so a debug line names the same flow as the trace lines.
 */
export function flowHash(f: FlowInfo): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < 4; k++) {
    const s = (f.src[4 * k]! << 24) | (f.src[4 * k + 1]! << 16) | (f.src[4 * k + 2]! << 8) | f.src[4 * k + 3]!;
    const d = (f.dst[4 * k]! << 24) | (f.dst[4 * k + 1]! << 16) | (f.dst[4 * k + 2]! << 8) | f.dst[4 * k + 3]!;
    h = Math.imul(h ^ s ^ d, 0x01000193);
  }
  return Math.imul(h ^ ((f.sport << 16) | f.dport) ^ f.proto, 0x01000193) >>> 0;
}

const CT_VERDICT_NAMES = ['New', 'Established', 'Reply', 'Related'];

/** Cilium's text of a debug message (pkg/monitor/datapath_debug.go), for the subtypes of DBG. */
function debugMessage(sub: number, a1: number, a2: number, a3: number): string {
  switch (sub) {
    case DBG.CT_LOOKUP4_1:
      return `Conntrack lookup 1/2: src=${formatIpv4(a1)}:${a3 & 0xffff} dst=${formatIpv4(a2)}:${a3 >>> 16}`;
    case DBG.CT_LOOKUP6_1:
      return `Conntrack lookup 1/2: src=[::${hex16(a1)}]:${a3 & 0xffff} dst=[::${hex16(a2)}]:${a3 >>> 16}`;
    case DBG.CT_LOOKUP4_2:
    case DBG.CT_LOOKUP6_2:
      return `Conntrack lookup 2/2: nexthdr=${a1 >>> 8} flags=${a1 & 0xff}`;
    case DBG.CT_VERDICT:
      return `CT verdict: ${CT_VERDICT_NAMES[a1] ?? dropReasonString(a1)}, revnat=${a2}`;
    case DBG.CT_CREATED4:
      return `Conntrack create: proxy-port=${a1 >>> 16} revnat=${a1 & 0xffff} src-identity=${a2} lb=${formatIpv4(a3)}`;
    case DBG.CT_CREATED6:
      return `Conntrack create: proxy-port=${a1 >>> 16} revnat=${a1 & 0xffff} src-identity=${a2}`;
    case DBG.LB4_BACKEND_MAPPED:
      return `Successfully mapped addr=${formatIpv4(a1)} port=${a2} to backend_id=${a3}`;
    default:
      return `Unknown message type=${sub} arg1=${a1} arg2=${a2}`;
  }
}

/** The last 32 bits of an IPv6 address as Cilium's debug lines print them ("a:b"). */
function hex16(x: number): string {
  return `${(x >>> 16).toString(16)}:${(x & 0xffff).toString(16)}`;
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
  if (e.type === 'debug') return `CPU 00: MARK 0x${e.hash.toString(16)} FROM ${e.source} DEBUG: ${e.message}`;
  const ids = `identity ${ident(e.srcIdentity, numeric)}->${ident(e.dstIdentity, numeric)}`;
  if (e.type === 'drop') {
    return `xx drop (${e.reasonString}) flow 0x${e.hash.toString(16)} to endpoint ${e.dstEndpoint}, ifindex ${e.ifindex}, file ${DROP_FILE_NAMES[DROP_HOOKS.find((h) => h.hook === e.hook)?.file || (e.source === 0 ? 1 : 2)]}:0, , ${ids}: ${summaryOf(e)}`;
  }
  return `${tracePrefix(e)} flow 0x${e.hash.toString(16)} , ${ids} state ${e.reasonName} ifindex ${e.ifindex} orig-ip ${e.ipv6 ? '::' : '0.0.0.0'}: ${summaryOf(e)}`;
}

/** Where a trace was observed, as Cilium's trace line starts (pkg/monitor/datapath_trace.go). */
function tracePrefix(e: TraceEvent): string {
  switch (e.point) {
    case OBS_POINT.TO_LXC:
      return `-> endpoint ${e.dstEndpoint}`;
    case OBS_POINT.FROM_LXC:
      return `<- endpoint ${e.source}`;
    case OBS_POINT.TO_HOST:
      return '-> host from';
    default:
      return e.pointName.startsWith('to-') ? `-> ${e.pointName.slice(3)}` : `<- ${e.pointName.slice(5)}`;
  }
}

/** bpf source files by Cilium's file ID (pkg/monitor/api/files.go): where a drop happened. */
export const DROP_FILE_NAMES: Record<number, string> = { 1: 'bpf_host.c', 2: 'bpf_lxc.c', 3: 'bpf_overlay.c', 4: 'bpf_xdp.c' };

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

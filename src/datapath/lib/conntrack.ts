/**
 * Connection tracking: lookup, create and delete over the tables of
 * conntrack-map.ts (Cilium bpf/lib/conntrack.h: ct_lookup4/6, __ct_lookup,
 * ct_update_timeout, ct_create4/6, ct_delete4/6).
 *
 * API:
 *   new Conntrack(opts?)                      tables + timeouts + counters + "map full" signal
 *   ctLookup4/6(ct, tuple, dir, tcpFlags, pktLen, now, state)
 *                                             → CT_NEW | CT_ESTABLISHED | CT_REPLY | CT_RELATED | DROP_*
 *   ctCreate4/6(ct, tuple, dir, tcpFlags, pktLen, now, state) → 0 | DROP.CT_CREATE_FAILED
 *   ctDelete4/6(ct, tuple)                    → 0 | ENOENT
 *   CtState                                   preallocated per-stage result (and create input)
 *   CT_NEW…CT_RELATED, CT_EGRESS/INGRESS/SERVICE, CT_DEFAULT_TIMEOUTS
 *
 * Use (allocation-free):
 *   const fl = ctTuple4Fill(t, b, ipOff, l4Off, l4Len);     // TCP flags, or DROP (< 0)
 *   let r = fl < 0 ? fl : ctLookup4(ct, t, CT_EGRESS, fl, frameLen, now, st);
 *   if (r === CT_NEW) r = ctCreate4(ct, t, CT_EGRESS, fl, frameLen, now, st); // (after policy)
 *
 * Tuple orientation: ctLookup takes the tuple in packet layout and leaves it
 * equal to the key of the entry it hit — for REPLY/RELATED the packet layout
 * with the opposite direction flag, for ESTABLISHED/NEW the reversed (stored)
 * orientation, for CT_SERVICE the packet layout with TUPLE_F_SERVICE — so a
 * CT_NEW tuple goes straight to ctCreate, as in Cilium.
 *
 * Time: `now` is in seconds from whatever monotonic origin the caller uses;
 * lifetimes are stored as u32 `now + timeout`. Nothing here reads a clock.
 *
 * Deviations from Cilium:
 *  - An entry whose lifetime has passed (lifetime < now) is treated as
 *    absent by lookups; Cilium keeps hitting it until GC removes it. This
 *    makes behaviour independent of when GC last ran, and testable. A
 *    create over it overwrites it in place.
 *  - Create failure model. Cilium's LRU tables evict, and map_update_elem
 *    fails only under memory pressure (then DROP_CT_CREATE_FAILED and a
 *    fill-up signal). LruHashMap never fails for room, so Conntrack has
 *    `evict` (default true = Cilium's behaviour); with `evict: false` a full
 *    table refuses new keys, which is how "CT: Map insertion failed (155)"
 *    and the GC signal are reproduced. Any negative map.update is a failure too.
 *  - LRU recency: lookups use peek() and touch the entry (map.lookup) only
 *    when the packet is reported (new flags, close, or CT_REPORT_INTERVAL
 *    passed), so recency has the report interval's granularity. The
 *    kernel's LRU is approximate too (a reference bit per lookup, lists
 *    rotated in batches); this skips the list relinking (2–4 cache misses
 *    at 1 M entries) on most packets. map.stats no longer counts every packet.
 *
 * Service entries: a SYN on a closing service entry whose last_tx_report +
 * svcCloseRebalance <= now returns CT_NEW untouched (new backend selection);
 * otherwise a SYN on any closing entry is the general reopen: reset, refresh,
 * CT_NEW, and the caller re-creates.
 */
import type { LruHashMap } from '../../maps/lru-hash.ts';
import * as ip from '../../wire/ip.ts';
import * as tcp from '../../wire/tcp.ts';
import { DROP as DROPS } from './drop-reasons.ts';
import * as ctm from './conntrack-map.ts';
import type { CtMapSizes, CtMaps, CtTupleLayout } from './conntrack-map.ts';

// Module-local copies of everything the packet path uses from other modules.
// Under tsx (tests, benches) each use of an imported binding is a getter call;
// that was 42 % of ctLookup4's time before these copies. (An esbuild bundle
// hoists imports to plain variables, so there it makes no difference.)
const E = ctm.CT_ENTRY, CT_F = ctm.CT_F, CT_F_CLOSING = ctm.CT_F_CLOSING, CT4 = ctm.CT4, CT6 = ctm.CT6;
const TUPLE_F_IN = ctm.TUPLE_F_IN, TUPLE_F_OUT = ctm.TUPLE_F_OUT;
const TUPLE_F_RELATED = ctm.TUPLE_F_RELATED, TUPLE_F_SERVICE = ctm.TUPLE_F_SERVICE;
const ctKnownProto = ctm.ctKnownProto, ctTupleReverse = ctm.ctTupleReverse;
const IPPROTO_TCP = ip.IPPROTO_TCP;
const TCP_FLAG_FIN = tcp.TCP_FLAG_FIN, TCP_FLAG_RST = tcp.TCP_FLAG_RST, TCP_FLAG_SYN = tcp.TCP_FLAG_SYN;
const DROP = { CT_UNKNOWN_PROTO: DROPS.CT_UNKNOWN_PROTO, CT_CREATE_FAILED: DROPS.CT_CREATE_FAILED } as const;

/** Lookup result: no entry (caller may create). */
export const CT_NEW = 0;
/** Lookup result: forward packet of a tracked connection. */
export const CT_ESTABLISHED = 1;
/** Lookup result: reply packet of a tracked connection. */
export const CT_REPLY = 2;
/** Lookup result: ICMP error related to a tracked connection. */
export const CT_RELATED = 3;

/** Direction: leaving an endpoint. */
export const CT_EGRESS = 0;
/** Direction: towards an endpoint. */
export const CT_INGRESS = 1;
/** Direction: service (load-balancer) lookup. */
export const CT_SERVICE = 2;

/** Signal bits in Conntrack.fullSignal (Cilium SIGNAL_PROTO_V4 / V6). */
export const CT_SIGNAL_V4 = 1;
/** IPv6 table full. */
export const CT_SIGNAL_V6 = 2;

/** Lifetimes in seconds (agent flags bpf-ct-timeout-*). */
export interface CtTimeouts {
  /** regular-tcp: established TCP. */
  tcp: number;
  /** regular-tcp-syn: until the first non-SYN packet. */
  tcpSyn: number;
  /** regular-tcp-fin: once both sides close. */
  tcpClose: number;
  /** regular-any: UDP, ICMP, SCTP, related. */
  any: number;
  /** service-tcp. */
  svcTcp: number;
  /** service-any. */
  svcAny: number;
  /** service-tcp-grace: CT_SERVICE_CLOSE_REBALANCE. */
  svcCloseRebalance: number;
}

/** Cilium's agent defaults. */
export const CT_DEFAULT_TIMEOUTS: Readonly<CtTimeouts> = Object.freeze({
  tcp: 8000, tcpSyn: 60, tcpClose: 10, any: 60, svcTcp: 8000, svcAny: 60, svcCloseRebalance: 60,
});

/** Conntrack construction options. */
export interface CtOptions {
  /** Table sizes (Cilium defaults otherwise). Ignored when `maps` is given. */
  sizes?: Partial<CtMapSizes>;
  /** Existing tables to use. */
  maps?: CtMaps;
  /** Lifetimes. */
  timeouts?: Partial<CtTimeouts>;
  /** Full tables recycle their LRU entry (true, Cilium) or refuse new entries (false). */
  evict?: boolean;
  /** TCP flags recorded in flags_seen (CT_REPORT_FLAGS; Helm 'all' = 0xff, agent default SYN|FIN|RST). */
  reportFlags?: number;
  /** CT_REPORT_INTERVAL in seconds (5). */
  reportInterval?: number;
  /** Shared storage for the tables. */
  shared?: boolean;
  /** Hash seed for the tables. */
  seed?: number;
}

/** Entry counters (plain numbers, bumped on the packet path). */
export class CtStats {
  /** Entries created (main entries, not companions). */
  created = 0;
  /** RELATED companion entries created. */
  relatedCreated = 0;
  /** Entries removed by ctDelete. */
  deleted = 0;
  /** Creates that failed (DROP_CT_CREATE_FAILED). */
  createFailed = 0;
  /** Closing entries reopened by a SYN. */
  reopened = 0;
}

/** Tables, lifetimes, counters and the "map full" signal: the `ct` argument of every call. */
export class Conntrack {
  /** The four tables. */
  readonly maps: CtMaps;
  /** Lifetimes in seconds. */
  readonly timeouts: CtTimeouts;
  /** Counters. */
  readonly stats = new CtStats();
  /** See CtOptions.evict. */
  evict: boolean;
  /** See CtOptions.reportFlags. */
  reportFlags: number;
  /** See CtOptions.reportInterval. */
  reportInterval: number;
  /** CT_SIGNAL_V4 | CT_SIGNAL_V6 bits set by a failed create; the GC takes them. */
  fullSignal = 0;
  /** Scratch key for companion entries (largest family). */
  readonly relKey = new Uint8Array(CT6.SIZE);

  constructor(opts: CtOptions = {}) {
    this.maps = opts.maps ?? ctm.createCtMaps(opts.sizes, { shared: opts.shared, seed: opts.seed });
    this.timeouts = { ...CT_DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.evict = opts.evict ?? true;
    this.reportFlags = opts.reportFlags ?? 0xff;
    this.reportInterval = opts.reportInterval ?? 5;
  }

  /** Read and clear the "map full" signal bits. */
  takeFullSignal(): number {
    const s = this.fullSignal;
    this.fullSignal = 0;
    return s;
  }
}

/** struct ct_state: what a lookup found, and what a create stores. Preallocate one per stage. */
export class CtState {
  /** rev_nat_index. */
  revNat = 0;
  /** backend_id (service entries). */
  backendId = 0;
  /** src_sec_id: source identity. */
  srcSecId = 0;
  /** ifindex. */
  ifindex = 0;
  /** nat_port (host order). */
  natPort = 0;
  /**
   * Entry flags (CT_F_*). On create, only LB_LOOPBACK, NODE_PORT,
   * PROXY_REDIRECT, DSR_INTERNAL, FROM_L7LB, FROM_TUNNEL and NAT64 are taken.
   */
  flags = 0;
  /** Lifetime of the entry after the call. */
  lifetime = 0;
  /** Slot of the entry hit or created in `map`, -1 if none. */
  slot = -1;
  /** The table `slot` is in (null before the first call). */
  map: LruHashMap | null = null;
  /** Monitor aggregation: the packet carried new flags or the report interval passed (emit a trace). */
  report = false;

  /** Zero everything (before filling it as create input). */
  reset(): void {
    this.revNat = this.backendId = this.srcSecId = this.ifindex = this.natPort = this.flags = this.lifetime = 0;
    this.slot = -1;
    this.map = null;
    this.report = false;
  }
}

const CREATE_FLAGS = CT_F.NAT64 | CT_F.LB_LOOPBACK | CT_F.NODE_PORT | CT_F.PROXY_REDIRECT | CT_F.DSR_INTERNAL |
  CT_F.FROM_L7LB | CT_F.FROM_TUNNEL;
const VS = E.SIZE;

/** Record the packet's flags into rx/tx_flags_seen; report on new flags or after the interval. */
function report(ct: Conntrack, v: DataView, o: number, dir: number, seen: number, now: number, st: CtState): void {
  const fo = dir === CT_INGRESS ? E.RX_FLAGS_SEEN : E.TX_FLAGS_SEEN;
  const lo = dir === CT_INGRESS ? E.LAST_RX_REPORT : E.LAST_TX_REPORT;
  const acc = v.getUint8(o + fo);
  const merged = acc | seen;
  if (merged !== acc || v.getUint32(o + lo, true) + ct.reportInterval < now) {
    v.setUint8(o + fo, merged);
    v.setUint32(o + lo, now >>> 0, true);
    st.report = true;
  }
}

/** ct_update_timeout: refresh the lifetime (SYN phase vs established) and record flags. */
function refresh(ct: Conntrack, v: DataView, o: number, isTcp: boolean, dir: number, tcpFlags: number,
  now: number, st: CtState): void {
  const T = ct.timeouts;
  let life: number;
  if (isTcp) {
    let f = v.getUint16(o + E.FLAGS, true);
    if ((tcpFlags & TCP_FLAG_SYN) === 0 && (f & CT_F.SEEN_NON_SYN) === 0) {
      f |= CT_F.SEEN_NON_SYN;
      v.setUint16(o + E.FLAGS, f, true);
    }
    life = (f & CT_F.SEEN_NON_SYN) === 0 ? T.tcpSyn : dir === CT_SERVICE ? T.svcTcp : T.tcp;
  } else {
    life = dir === CT_SERVICE ? T.svcAny : T.any;
  }
  v.setUint32(o + E.LIFETIME, (now + life) >>> 0, true);
  report(ct, v, o, dir, isTcp ? tcpFlags & ct.reportFlags : 0, now, st);
}

/** Copy the entry at `o` into the caller's state. */
function fillState(v: DataView, o: number, map: LruHashMap, slot: number, st: CtState): void {
  st.revNat = v.getUint16(o + E.REV_NAT, true);
  st.backendId = v.getUint32(o + E.BACKEND_ID, true);
  st.srcSecId = v.getUint32(o + E.SRC_SEC_ID, true);
  st.ifindex = v.getUint16(o + E.IFINDEX, true);
  st.natPort = v.getUint16(o + E.NAT_PORT, true);
  st.flags = v.getUint16(o + E.FLAGS, true);
  st.lifetime = v.getUint32(o + E.LIFETIME, true);
  st.slot = slot;
  st.map = map;
}

/**
 * __ct_lookup on a hit: account the packet, refresh, apply TCP close/reopen.
 * Returns CT_ESTABLISHED, or CT_NEW when a SYN hits a closing entry (the
 * caller re-creates it; a service entry past the rebalance time is left as is).
 */
function hit(ct: Conntrack, map: LruHashMap, t: Uint8Array, slot: number, isTcp: boolean, dir: number, tcpFlags: number,
  pktLen: number, now: number, st: CtState): number {
  const v = map.view, o = slot * VS;
  if (dir === CT_SERVICE && (tcpFlags & TCP_FLAG_SYN) !== 0 && isTcp &&
    (v.getUint16(o + E.FLAGS, true) & CT_F_CLOSING) !== 0 &&
    v.getUint32(o + E.LAST_TX_REPORT, true) + ct.timeouts.svcCloseRebalance <= now) return CT_NEW;
  v.setFloat64(o + E.PACKETS, v.getFloat64(o + E.PACKETS, true) + 1, true);
  v.setFloat64(o + E.BYTES, v.getFloat64(o + E.BYTES, true) + pktLen, true);
  let ret = CT_ESTABLISHED;
  // Timeouts refresh only while the entry is alive (not both sides closing).
  if ((v.getUint16(o + E.FLAGS, true) & CT_F_CLOSING) !== CT_F_CLOSING) refresh(ct, v, o, isTcp, dir, tcpFlags, now, st);
  if (isTcp) {
    let f = v.getUint16(o + E.FLAGS, true);
    if ((tcpFlags & (TCP_FLAG_RST | TCP_FLAG_FIN)) !== 0) {
      // CLOSE (checked before SYN). An RST before SYN was seen both ways closes both sides.
      const bothSyn = (v.getUint8(o + E.RX_FLAGS_SEEN) & v.getUint8(o + E.TX_FLAGS_SEEN) & TCP_FLAG_SYN) !== 0;
      if (dir === CT_SERVICE || ((tcpFlags & TCP_FLAG_RST) !== 0 && !bothSyn)) f |= CT_F_CLOSING;
      else f |= dir === CT_INGRESS ? CT_F.RX_CLOSING : CT_F.TX_CLOSING;
      v.setUint16(o + E.FLAGS, f, true);
      st.report = true;
      if ((f & CT_F_CLOSING) === CT_F_CLOSING) {
        v.setUint32(o + E.LIFETIME, (now + ct.timeouts.tcpClose) >>> 0, true);
        report(ct, v, o, dir, tcpFlags & ct.reportFlags, now, st);
      }
    } else if ((tcpFlags & TCP_FLAG_SYN) !== 0 && (f & CT_F_CLOSING) !== 0) {
      // CREATE on a closing entry: reset, refresh; CT_NEW so the caller re-creates.
      v.setUint16(o + E.FLAGS, f & ~(CT_F_CLOSING | CT_F.SEEN_NON_SYN), true);
      v.setUint8(o + E.RX_FLAGS_SEEN, 0);
      v.setUint8(o + E.TX_FLAGS_SEEN, 0);
      refresh(ct, v, o, isTcp, dir, tcpFlags, now, st);
      ct.stats.reopened++;
      ret = CT_NEW;
    }
  }
  fillState(v, o, map, slot, st);
  // Recency: touch the LRU only when the packet is reported (new flags, or
  // CT_REPORT_INTERVAL passed): see "LRU recency" in the header.
  if (st.report) map.lookup(t, 0);
  return ret;
}

/** True when the entry at `slot` has outlived its lifetime (treated as absent). */
function expired(map: LruHashMap, slot: number, now: number): boolean {
  return map.view.getUint32(slot * VS + E.LIFETIME, true) < now;
}

/** ct_lookup over family `L` (the worker behind ctLookup4/6). */
function _ctLookup(L: CtTupleLayout, tcp: LruHashMap, any: LruHashMap, ct: Conntrack, t: Uint8Array, dir: number,
  tcpFlags: number, pktLen: number, now: number, st: CtState): number {
  const nh = t[L.NEXTHDR]!;
  if (!ctKnownProto(L, nh)) return DROP.CT_UNKNOWN_PROTO;
  const isTcp = nh === IPPROTO_TCP;
  const map = isTcp ? tcp : any;
  const related = t[L.FLAGS]! & TUPLE_F_RELATED;
  st.slot = -1;
  st.map = map;
  st.report = false;
  if (dir === CT_SERVICE) {
    // Service scope: forward only, packet layout.
    t[L.FLAGS] = TUPLE_F_SERVICE | related;
    const s = map.peek(t, 0);
    return s < 0 || expired(map, s, now) ? CT_NEW : hit(ct, map, t, s, isTcp, dir, tcpFlags, pktLen, now, st);
  }
  // BIDIR: the reply tuple first (packet layout, opposite flag).
  t[L.FLAGS] = (dir === CT_EGRESS ? TUPLE_F_IN : TUPLE_F_OUT) | related;
  let s = map.peek(t, 0);
  if (s >= 0 && !expired(map, s, now) && hit(ct, map, t, s, isTcp, dir, tcpFlags, pktLen, now, st) !== CT_NEW) {
    return related !== 0 ? CT_RELATED : CT_REPLY;
  }
  // Then the forward tuple.
  ctTupleReverse(L, t);
  s = map.peek(t, 0);
  if (s >= 0 && !expired(map, s, now)) return hit(ct, map, t, s, isTcp, dir, tcpFlags, pktLen, now, st);
  st.slot = -1;
  return CT_NEW;
}

/** Insert `key` into `map` under the failure model (see header); slot or -1 (counted, signalled). */
function insert(ct: Conntrack, map: LruHashMap, key: Uint8Array, signal: number): number {
  let s: number;
  if (!ct.evict && map.count >= map.maxEntries && map.peek(key, 0) < 0) s = -1;
  else s = map.update(key, 0);
  if (s < 0) {
    ct.stats.createFailed++;
    ct.fullSignal |= signal;
    return -1;
  }
  return s;
}

/** ct_create over family `L` (the worker behind ctCreate4/6). */
function _ctCreate(L: CtTupleLayout, tcp: LruHashMap, any: LruHashMap, signal: number, ct: Conntrack, t: Uint8Array,
  dir: number, tcpFlags: number, pktLen: number, now: number, st: CtState): number {
  const nh = t[L.NEXTHDR]!;
  if (!ctKnownProto(L, nh)) return DROP.CT_UNKNOWN_PROTO;
  const isTcp = nh === IPPROTO_TCP;
  const map = isTcp ? tcp : any;
  const related = t[L.FLAGS]! & TUPLE_F_RELATED;
  t[L.FLAGS] = related | (dir === CT_EGRESS ? TUPLE_F_OUT : dir === CT_INGRESS ? TUPLE_F_IN : TUPLE_F_SERVICE);
  const s = insert(ct, map, t, signal);
  if (s < 0) return DROP.CT_CREATE_FAILED;
  const vals = map.values, v = map.view, o = s * VS, T = ct.timeouts;
  for (let i = 0; i < VS; i++) vals[o + i] = 0;
  // New TCP entries count as SYN-seen: SYN timeout until a non-SYN packet.
  const life = isTcp ? T.tcpSyn : dir === CT_SERVICE ? T.svcAny : T.any;
  v.setUint32(o + E.LIFETIME, (now + life) >>> 0, true);
  v.setUint16(o + E.FLAGS, st.flags & CREATE_FLAGS, true);
  v.setUint16(o + E.REV_NAT, st.revNat, true);
  v.setUint32(o + E.BACKEND_ID, st.backendId, true);
  v.setUint32(o + E.SRC_SEC_ID, st.srcSecId, true);
  v.setUint16(o + E.IFINDEX, st.ifindex, true);
  v.setUint16(o + E.NAT_PORT, st.natPort, true);
  v.setFloat64(o + E.PACKETS, 1, true);
  v.setFloat64(o + E.BYTES, pktLen, true);
  const seen = isTcp ? tcpFlags & ct.reportFlags : 0;
  if (dir === CT_INGRESS) {
    v.setUint8(o + E.RX_FLAGS_SEEN, seen);
    v.setUint32(o + E.LAST_RX_REPORT, now >>> 0, true);
  } else {
    v.setUint8(o + E.TX_FLAGS_SEEN, seen);
    v.setUint32(o + E.LAST_TX_REPORT, now >>> 0, true);
  }
  ct.stats.created++;
  fillState(v, o, map, s, st);
  st.report = true;
  if (dir === CT_SERVICE || related !== 0) return 0;
  // Companion entry so ICMP errors between the two hosts resolve to CT_RELATED.
  const k = ct.relKey;
  for (let i = 0; i < L.SPORT; i++) k[i] = t[i]!;
  k[L.DPORT] = k[L.DPORT + 1] = k[L.SPORT] = k[L.SPORT + 1] = 0;
  k[L.NEXTHDR] = L.ICMP;
  k[L.FLAGS] = t[L.FLAGS]! | TUPLE_F_RELATED;
  const r = insert(ct, any, k, signal);
  // The main entry stays on failure and times out, as in Cilium.
  if (r < 0) return DROP.CT_CREATE_FAILED;
  const rv = any.values, ro = r * VS;
  for (let i = 0; i < VS; i++) rv[ro + i] = vals[o + i]!;
  any.view.setUint16(ro + E.FLAGS, any.view.getUint16(ro + E.FLAGS, true) | CT_F.SEEN_NON_SYN, true);
  ct.stats.relatedCreated++;
  return 0;
}

/** ct_delete over family `L`. */
function _ctDelete(L: CtTupleLayout, tcp: LruHashMap, any: LruHashMap, ct: Conntrack, t: Uint8Array): number {
  const r = (t[L.NEXTHDR] === IPPROTO_TCP ? tcp : any).delete(t, 0);
  if (r === 0) ct.stats.deleted++;
  return r;
}

/**
 * ct_lookup4: look up the 14-byte `t` (packet layout, from ctTuple4Fill) for
 * a packet of `pktLen` bytes with TCP flags `tcpFlags` at time `now` (s).
 * Fills `st` on a hit; leaves `t` as the key hit / to create (see header).
 */
export function ctLookup4(ct: Conntrack, t: Uint8Array, dir: number, tcpFlags: number, pktLen: number, now: number,
  st: CtState): number {
  const m = ct.maps;
  return _ctLookup(CT4, m.tcp4, m.any4, ct, t, dir, tcpFlags, pktLen, now, st);
}

/** ct_lookup6: ctLookup4 for a 38-byte IPv6 tuple. */
export function ctLookup6(ct: Conntrack, t: Uint8Array, dir: number, tcpFlags: number, pktLen: number, now: number,
  st: CtState): number {
  const m = ct.maps;
  return _ctLookup(CT6, m.tcp6, m.any6, ct, t, dir, tcpFlags, pktLen, now, st);
}

/**
 * ct_create4: create the entry for `t` as left by a CT_NEW lookup (flags set
 * from `dir`), with rev_nat/backend/identity/ifindex/flags from `st`, plus the
 * RELATED companion for endpoint directions. 0 or DROP.CT_CREATE_FAILED.
 */
export function ctCreate4(ct: Conntrack, t: Uint8Array, dir: number, tcpFlags: number, pktLen: number, now: number,
  st: CtState): number {
  const m = ct.maps;
  return _ctCreate(CT4, m.tcp4, m.any4, CT_SIGNAL_V4, ct, t, dir, tcpFlags, pktLen, now, st);
}

/** ct_create6: ctCreate4 for a 38-byte IPv6 tuple. */
export function ctCreate6(ct: Conntrack, t: Uint8Array, dir: number, tcpFlags: number, pktLen: number, now: number,
  st: CtState): number {
  const m = ct.maps;
  return _ctCreate(CT6, m.tcp6, m.any6, CT_SIGNAL_V6, ct, t, dir, tcpFlags, pktLen, now, st);
}

/** ct_delete4: remove the entry keyed exactly by `t` (stored orientation); 0 or ENOENT. */
export function ctDelete4(ct: Conntrack, t: Uint8Array): number {
  return _ctDelete(CT4, ct.maps.tcp4, ct.maps.any4, ct, t);
}

/** ct_delete6: ctDelete4 for a 38-byte IPv6 tuple. */
export function ctDelete6(ct: Conntrack, t: Uint8Array): number {
  return _ctDelete(CT6, ct.maps.tcp6, ct.maps.any6, ct, t);
}

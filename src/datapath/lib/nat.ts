/**
 * IPv4 SNAT (masquerade) on the packet path: frames in, frames out, no I/O
 * (Cilium bpf/lib/nat.h: snat_v4_nat, snat_v4_rev_nat, snat_v4_new_mapping,
 * __snat_clamp_port_range, the RFC 5508 ICMP error paths; the GC side of
 * pkg/maps/nat; facts §2). The caller decides *whether* to masquerade
 * (snat_v4_needs_masquerade) and runs conntrack; this file only translates.
 *
 * API:
 *   new Snat4(opts?)   maxEntries (524288), minPort (32768), maxPort (65535),
 *                      retries (128), random (u32 source), shared, seed
 *   snat.egress(b, i, ip4, natAddr, now, needsCt) → 0 | DROP_*
 *       leaving: find the OUT entry or create the pair, rewrite the source
 *   snat.ingress(b, i, ip4, natAddr, now) → 1 translated | 0 not ours | DROP_*
 *       arriving for natAddr: rewrite the destination back to the pod
 *   snat.dsrCreate(backend, client, bport, cport, proto, vip, vport, now)   DSR: replies leave as vip:vport
 *   snat.dsrRevNat(b, i, ip4) → boolean      DSR reply: source back to the service (OUT entry)
 *   snat.deleteMapping(saddr, daddr, sport, dport, nexthdr) → boolean
 *   snat.deleteMappingKey(key, off) → boolean     the same from a 14-byte OUT key
 *   snat.onCtDelete                               CtGcDeleteHook (conntrack-gc.ts)
 *   snat.takeGcSignal()                           read and clear the port-pressure signal
 *   snat.clamp(v)                                 __snat_clamp_port_range of a u16
 *   counters: created, retries, exhausted, restored, deleted
 *   results of the last successful call: needsCt, port (translated port)
 *
 * Protocols. TCP and UDP by ports. ICMP echo request: the identifier is
 * the source port and is rewritten like one; an echo reply leaving is not
 * NATed (0, untouched) and one arriving is matched by its identifier as
 * destination port. Destination unreachable / fragmentation needed (3/4)
 * is translated through the quoted header both ways (RFC 5508 §4.2: outer
 * address, quoted address and port, quoted IP checksum, ICMP checksum;
 * the quoted L4 checksum is left as is). Leaving: other dest-unreach codes
 * → UNKNOWN_ICMP4_CODE (143), other ICMP types and protocols →
 * NAT_UNSUPP_PROTO (168). Arriving, anything else is "not ours" (0).
 * Truncated headers → INVALID (134). Fragments: no fragment tracking, so
 * a leaving fragment is FRAG_NOSUPPORT (157), as Cilium without
 * ENABLE_IPV4_FRAGMENTS; an arriving one is passed on untouched (0).
 *
 * Allocation (snat_v4_new_mapping): keep the source port when it lies in
 * [minPort, maxPort], else clamp a 16-bit random v as
 * min + ((v·(max−min+1)) >>> 16). The IN entry is inserted first with
 * BPF_NOEXIST; a taken port is retried up to `retries` times (after the
 * first failure a new random draw, later clamp(prev + 1)); exhaustion →
 * NAT_NO_MAPPING (167). Then the OUT entry; if that insert fails the IN
 * entry is deleted. More than 64 retries for one mapping sets gcSignal
 * (Cilium's SNAT port-pressure signal to the agent GC).
 *
 * NB: clamp(prev + 1) rescales prev + 1 into the range instead of stepping
 * by one, so after the random redraw the walk visits few distinct ports
 * (16 to 30 in 32768..65535 before it cycles; a fixed point in small
 * ranges): a busy range runs dry well before every port is taken. Kept as
 * specified (facts §2).
 * Leaving frag-needed errors never create a mapping: without one they
 * pass untouched (0).
 *
 * Deviation: on an OUT hit the IN entry is looked up too, which keeps it
 * recent in the LRU, and re-inserted when it is gone. LruHashMap evicts
 * exactly the least recently used entry; without this, a flow whose
 * replies pause would lose its IN half first and the replies would then
 * pass untranslated while the OUT half lives on.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import type { LruHashMap } from '../../maps/lru-hash.ts';
import { BPF_ANY, BPF_NOEXIST } from '../../maps/map.ts';
import * as cs from '../../wire/checksum.ts';
import * as ip from '../../wire/ip.ts';
import { DROP as DROPS } from './drop-reasons.ts';
import { CT4, TUPLE_F_IN as F_IN, TUPLE_F_OUT as F_OUT } from './conntrack-map.ts';
import type { CtGcDeleteHook } from './conntrack-gc.ts';
import { NAT_VAL as V, createNatMap4, natKey4, natNeedsCt, natVal4 } from './nat-map.ts';
import { l4Replace16, rewrite4 } from './l4-rewrite.ts';

// Local copies for the packet path (imported bindings are getter calls under tsx; see conntrack.ts).
const csumReplace16 = cs.csumReplace16, csumReplace32 = cs.csumReplace32;
const IPPROTO_TCP = ip.IPPROTO_TCP, IPPROTO_UDP = ip.IPPROTO_UDP, IPPROTO_ICMP = ip.IPPROTO_ICMP;
const TUPLE_F_IN = F_IN, TUPLE_F_OUT = F_OUT, VS = V.SIZE, V_ADDR = V.ADDR, V_PORT = V.PORT;
const DROP = {
  INVALID: DROPS.INVALID, FRAG_NOSUPPORT: DROPS.FRAG_NOSUPPORT, UNKNOWN_ICMP4_CODE: DROPS.UNKNOWN_ICMP4_CODE,
  NAT_NO_MAPPING: DROPS.NAT_NO_MAPPING, NAT_UNSUPP_PROTO: DROPS.NAT_UNSUPP_PROTO,
} as const;
const ICMP_ECHOREPLY = 0, ICMP_DEST_UNREACH = 3, ICMP_ECHO = 8, ICMP_FRAG_NEEDED = 4;
/** Retries above which a mapping signals port pressure (Cilium SNAT_SIGNAL_THRES). */
const SIGNAL_THRES = 64;

const get16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const get32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** Snat4 options. */
export interface Snat4Options {
  /** Map entries (NAT_MAP_SIZE_V4). */
  maxEntries?: number;
  /** Lowest NAT port (NodePort max + 1 = 32768). */
  minPort?: number;
  /** Highest NAT port (65535). */
  maxPort?: number;
  /** Collision retries per mapping (SNAT_COLLISION_RETRIES, 128). */
  retries?: number;
  /** u32 random source; only the low 16 bits are used (injectable for tests). */
  random?: () => number;
  /** Map on SharedArrayBuffer (agent-side dumps). */
  shared?: boolean;
  /** Map hash seed. */
  seed?: number;
}

/** IPv4 SNAT: the map, the port range, scratch keys and counters. */
export class Snat4 {
  /** cilium_snat_v4_external. */
  readonly map: LruHashMap;
  /** Lowest NAT port. */
  readonly minPort: number;
  /** Highest NAT port. */
  readonly maxPort: number;
  /** Collision retries per mapping. */
  readonly maxRetries: number;
  /** Mappings (OUT/IN pairs) created. */
  created = 0;
  /** Ports found taken while allocating, over all mappings. */
  retries = 0;
  /** Allocations that ran out of retries (NAT_NO_MAPPING). */
  exhausted = 0;
  /** Evicted IN entries put back by egress (see header). */
  restored = 0;
  /** Pairs removed by deleteMapping / the CT GC hook. */
  deleted = 0;
  /** 1 when an allocation needed more than 64 retries; the agent GC takes it. */
  gcSignal = 0;
  /** needs_ct of the mapping used by the last successful egress/ingress. */
  needsCt = false;
  /** Translated port (host order) of the last successful egress/ingress: NAT port out, pod port in. */
  port = 0;
  private readonly random: () => number;
  private readonly range: number;
  /** Scratch: the packet's own tuple (OUT key leaving, IN key arriving). */
  private readonly k = new Uint8Array(CT4.SIZE);
  /** Scratch: the other half of the pair. */
  private readonly k2 = new Uint8Array(CT4.SIZE);
  /** Scratch: value being written. */
  private readonly val = new Uint8Array(VS);
  /** Scratch: OUT key for deleteMapping and the GC hook. */
  private readonly kDel = new Uint8Array(CT4.SIZE);

  constructor(opts: Snat4Options = {}) {
    this.minPort = opts.minPort ?? 32768;
    this.maxPort = opts.maxPort ?? 65535;
    if (!(this.minPort >= 1 && this.minPort <= this.maxPort && this.maxPort <= 65535)) {
      throw new RangeError(`snat: bad port range ${this.minPort}-${this.maxPort}`);
    }
    this.range = this.maxPort - this.minPort + 1;
    this.maxRetries = opts.retries ?? 128;
    this.random = opts.random ?? (() => (Math.random() * 0x100000000) >>> 0);
    this.map = createNatMap4({ maxEntries: opts.maxEntries, shared: opts.shared, seed: opts.seed });
  }

  /** __snat_clamp_port_range: map a u16 onto [minPort, maxPort]. */
  clamp(v: number): number {
    return this.minPort + (((v & 0xffff) * this.range) >>> 16);
  }

  /** Read and clear the port-pressure signal. */
  takeGcSignal(): number {
    const s = this.gcSignal;
    this.gcSignal = 0;
    return s;
  }

  /**
   * snat_v4_nat: masquerade frame i (IPv4 header bound in `ip4`, which the
   * caller has length-checked) as it leaves behind `natAddr`. Returns 0
   * (translated, or an echo reply / ICMP error with no mapping left as is)
   * or a negative DROP code (see header).
   */
  egress(b: FrameBatch, i: number, ip4: Ipv4View, natAddr: number, now: number, needsCt: boolean): number {
    const buf = b.buf;
    const proto = ip4.protocol();
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_ICMP) return DROP.NAT_UNSUPP_PROTO;
    if (ip4.isFragment()) return DROP.FRAG_NOSUPPORT;
    const l4Off = ip4.payloadOffset();
    const l4Len = ip4.o + ip4.totalLen() - l4Off;
    let sport: number, dport: number, field: number;
    if (proto === IPPROTO_ICMP) {
      if (l4Len < 8) return DROP.INVALID;
      const type = buf[l4Off]!;
      if (type === ICMP_ECHOREPLY) return 0;
      if (type === ICMP_DEST_UNREACH) {
        if (buf[l4Off + 1] !== ICMP_FRAG_NEEDED) return DROP.UNKNOWN_ICMP4_CODE;
        return this.icmpError(b, i, ip4, l4Off, l4Len, natAddr, true);
      }
      if (type !== ICMP_ECHO) return DROP.NAT_UNSUPP_PROTO;
      sport = get16(buf, l4Off + 4);
      dport = 0;
      field = 4;
    } else {
      if (l4Len < (proto === IPPROTO_TCP ? 20 : 8)) return DROP.INVALID;
      sport = get16(buf, l4Off);
      dport = get16(buf, l4Off + 2);
      field = 0;
    }
    const src = ip4.src(), dst = ip4.dst();
    const map = this.map, k = this.k;
    natKey4(k, src, dst, sport, dport, proto, TUPLE_F_OUT);
    const s = map.lookup(k, 0);
    let addr: number, port: number;
    if (s >= 0) {
      const v = map.values, o = s * VS;
      addr = get32(v, o + V_ADDR);
      port = get16(v, o + V_PORT);
      needsCt = natNeedsCt(v, o);
      this.keepIn(src, dst, sport, dport, proto, addr, port, now, needsCt);
    } else {
      port = this.newMapping(src, dst, sport, dport, proto, natAddr, now, needsCt);
      if (port < 0) return port;
      addr = natAddr;
    }
    rewrite4(b, i, ip4, l4Off, proto, false, addr, 0);
    l4Replace16(b, i, l4Off, proto, field, port);
    this.needsCt = needsCt;
    this.port = port;
    return 0;
  }

  /**
   * snat_v4_rev_nat: frame i arrives for `natAddr`; if it belongs to a
   * mapping, rewrite its destination back to the pod. 1 translated, 0 not
   * ours (no entry, destination port outside the range, not for natAddr,
   * or a kind of packet SNAT does not translate), or a DROP code.
   */
  ingress(b: FrameBatch, i: number, ip4: Ipv4View, natAddr: number, _now: number): number {
    const buf = b.buf;
    const proto = ip4.protocol();
    if (ip4.dst() !== natAddr) return 0;
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_ICMP) return 0;
    if (ip4.isFragment()) return 0;
    const l4Off = ip4.payloadOffset();
    const l4Len = ip4.o + ip4.totalLen() - l4Off;
    let sport: number, dport: number, field: number;
    if (proto === IPPROTO_ICMP) {
      if (l4Len < 8) return DROP.INVALID;
      const type = buf[l4Off]!;
      if (type === ICMP_DEST_UNREACH && buf[l4Off + 1] === ICMP_FRAG_NEEDED) {
        return this.icmpError(b, i, ip4, l4Off, l4Len, natAddr, false);
      }
      if (type !== ICMP_ECHOREPLY) return 0;
      sport = 0;
      dport = get16(buf, l4Off + 4);
      field = 4;
    } else {
      if (l4Len < (proto === IPPROTO_TCP ? 20 : 8)) return DROP.INVALID;
      sport = get16(buf, l4Off);
      dport = get16(buf, l4Off + 2);
      field = 2;
    }
    if (dport < this.minPort || dport > this.maxPort) return 0;
    const map = this.map;
    natKey4(this.k, ip4.src(), natAddr, sport, dport, proto, TUPLE_F_IN);
    const s = map.lookup(this.k, 0);
    if (s < 0) return 0;
    const v = map.values, o = s * VS;
    const port = get16(v, o + V_PORT);
    rewrite4(b, i, ip4, l4Off, proto, true, get32(v, o + V_ADDR), 0);
    l4Replace16(b, i, l4Off, proto, field, port);
    this.needsCt = natNeedsCt(v, o);
    this.port = port;
    return 1;
  }

  /**
   * Fragmentation needed, either way (RFC 5508 §4.2). The quoted packet is
   * the reverse of the flow's packets, so its reversed tuple is the key:
   * leaving, the OUT key of the pod's flow (the pod quotes what the peer
   * sent it); arriving, the IN key (the peer quotes what we sent). Leaving
   * rewrites the outer source, quoted destination and quoted destination
   * port; arriving the outer destination, quoted source and source port.
   */
  private icmpError(b: FrameBatch, i: number, ip4: Ipv4View, l4Off: number, l4Len: number, natAddr: number, egress: boolean): number {
    const buf = b.buf;
    const q = l4Off + 8;
    if (l4Len < 8 + 20 || buf[q]! >>> 4 !== 4) return DROP.INVALID;
    const ihl = (buf[q]! & 0x0f) << 2;
    if (ihl < 20 || l4Len < 8 + ihl + 8) return DROP.INVALID;
    const iproto = buf[q + 9]!, isrc = get32(buf, q + 12), idst = get32(buf, q + 16);
    const r = q + ihl;
    // Inner "ports" in packet terms, and where the one to rewrite sits (-1: absent).
    let isport: number, idport: number, sOff = -1, dOff = -1;
    if (iproto === IPPROTO_TCP || iproto === IPPROTO_UDP) {
      isport = get16(buf, r);
      idport = get16(buf, r + 2);
      sOff = r;
      dOff = r + 2;
    } else if (iproto === IPPROTO_ICMP) {
      const t = buf[r]!, id = get16(buf, r + 4);
      isport = t === ICMP_ECHO ? id : 0;
      idport = t === ICMP_ECHOREPLY ? id : 0;
      if (t === ICMP_ECHO) sOff = r + 4;
      else if (t === ICMP_ECHOREPLY) dOff = r + 4;
    } else {
      return egress ? DROP.NAT_UNSUPP_PROTO : 0;
    }
    const portOff = egress ? dOff : sOff;
    if (portOff < 0) return 0;
    if (egress) {
      if (ip4.src() !== idst) return 0;
    } else {
      if (isrc !== natAddr || isport < this.minPort || isport > this.maxPort) return 0;
    }
    natKey4(this.k, idst, isrc, idport, isport, iproto, egress ? TUPLE_F_OUT : TUPLE_F_IN);
    const map = this.map;
    const s = map.lookup(this.k, 0);
    if (s < 0) return 0;
    const v = map.values, o = s * VS;
    const addr = get32(v, o + V_ADDR), port = get16(v, o + V_PORT);
    // Outer header: address only (ICMP has no pseudo-header).
    rewrite4(b, i, ip4, l4Off, IPPROTO_ICMP, !egress, addr, 0);
    // Quoted header: its address and checksum, then the port; the ICMP checksum covers all three.
    const aOff = q + (egress ? 16 : 12), cOff = q + 10;
    const oldA = egress ? idst : isrc, oldC = get16(buf, cOff), oldP = get16(buf, portOff);
    const newC = csumReplace32(oldC, oldA, addr);
    buf[aOff] = addr >>> 24;
    buf[aOff + 1] = (addr >>> 16) & 0xff;
    buf[aOff + 2] = (addr >>> 8) & 0xff;
    buf[aOff + 3] = addr & 0xff;
    buf[cOff] = newC >>> 8;
    buf[cOff + 1] = newC & 0xff;
    buf[portOff] = port >>> 8;
    buf[portOff + 1] = port & 0xff;
    let ic = get16(buf, l4Off + 2);
    ic = csumReplace32(ic, oldA, addr);
    ic = csumReplace16(ic, oldC, newC);
    ic = csumReplace16(ic, oldP, port);
    buf[l4Off + 2] = ic >>> 8;
    buf[l4Off + 3] = ic & 0xff;
    this.needsCt = natNeedsCt(v, o);
    this.port = port;
    return egress ? 0 : 1;
  }

  /**
   * snat_v4_new_mapping: allocate a port for the OUT tuple in this.k and
   * insert IN then OUT. Returns the NAT port or DROP.NAT_NO_MAPPING.
   */
  private newMapping(src: number, dst: number, sport: number, dport: number, proto: number, natAddr: number,
    now: number, needsCt: boolean): number {
    const map = this.map, k2 = this.k2, val = this.val;
    const min = this.minPort, max = this.maxPort, n = this.maxRetries;
    let port = sport >= min && sport <= max ? sport : this.clamp(this.random());
    natVal4(val, 0, now, needsCt, src, sport);
    let r = 0;
    for (; r < n; r++) {
      natKey4(k2, dst, natAddr, dport, port, proto, TUPLE_F_IN);
      if (map.update(k2, 0, val, 0, BPF_NOEXIST) >= 0) break;
      port = this.clamp(r === 0 ? this.random() : port + 1);
    }
    this.retries += r;
    if (r > SIGNAL_THRES) this.gcSignal = 1;
    if (r === n) {
      this.exhausted++;
      return DROP.NAT_NO_MAPPING;
    }
    natVal4(val, 0, now, needsCt, natAddr, port);
    if (map.update(this.k, 0, val, 0, BPF_ANY) < 0) {
      map.delete(k2, 0);
      return DROP.NAT_NO_MAPPING;
    }
    this.created++;
    return port;
  }

  /**
   * snat_v4_create_dsr (backend node of a DSR flow): an OUT entry keyed by
   * the reply tuple backend:bport → client:cport whose translation is the
   * service vip:vport. No IN half: the replies' answers never come back
   * here translated. Rewritten on every call (UDP carries the option on
   * every packet). False when the map refuses the entry.
   */
  dsrCreate(backend: number, client: number, bport: number, cport: number, proto: number, vip: number, vport: number, now: number): boolean {
    natKey4(this.k, backend, client, bport, cport, proto, TUPLE_F_OUT);
    natVal4(this.val, 0, now, true, vip, vport);
    return this.map.update(this.k, 0, this.val, 0, BPF_ANY) >= 0;
  }

  /**
   * nodeport_rev_dnat_fwd_ipv4 for DSR: the reply bound in ip4 (TCP/UDP,
   * length-checked) leaves with the service address and port of its OUT
   * entry as source. False when there is none (left untouched).
   */
  dsrRevNat(b: FrameBatch, i: number, ip4: Ipv4View): boolean {
    const buf = b.buf;
    const proto = ip4.protocol();
    const l4Off = ip4.payloadOffset();
    natKey4(this.k, ip4.src(), ip4.dst(), get16(buf, l4Off), get16(buf, l4Off + 2), proto, TUPLE_F_OUT);
    const s = this.map.lookup(this.k, 0);
    if (s < 0) return false;
    const v = this.map.values, o = s * VS;
    rewrite4(b, i, ip4, l4Off, proto, false, get32(v, o + V_ADDR), get16(v, o + V_PORT));
    return true;
  }

  /** Touch the IN half of a live mapping; put it back if it was evicted (see header). */
  private keepIn(src: number, dst: number, sport: number, dport: number, proto: number, addr: number, port: number,
    now: number, needsCt: boolean): void {
    const map = this.map, k2 = this.k2;
    natKey4(k2, dst, addr, dport, port, proto, TUPLE_F_IN);
    if (map.lookup(k2, 0) >= 0) return;
    natVal4(this.val, 0, now, needsCt, src, sport);
    if (map.update(k2, 0, this.val, 0, BPF_NOEXIST) >= 0) this.restored++;
  }

  /** Remove the pair whose OUT tuple is pod saddr:sport → peer daddr:dport (ICMP echo: sport = id, dport = 0). */
  deleteMapping(saddr: number, daddr: number, sport: number, dport: number, nexthdr: number): boolean {
    natKey4(this.kDel, saddr, daddr, sport, dport, nexthdr, TUPLE_F_OUT);
    return this.deleteMappingKey(this.kDel, 0);
  }

  /**
   * Remove the pair whose OUT key is key[off, off + 14). The IN half goes
   * only while it still translates back to this pod address and port.
   */
  deleteMappingKey(key: Uint8Array, off: number): boolean {
    const map = this.map;
    const s = map.peek(key, off);
    if (s < 0) return false;
    const v = map.values, o = s * VS;
    const pod = get32(key, off + CT4.SADDR), podPort = get16(key, off + CT4.SPORT);
    const k2 = this.k2;
    natKey4(k2, get32(key, off + CT4.DADDR), get32(v, o + V_ADDR), get16(key, off + CT4.DPORT), get16(v, o + V_PORT),
      key[off + CT4.NEXTHDR]!, TUPLE_F_IN);
    const r = map.peek(k2, 0);
    if (r >= 0 && get32(v, r * VS + V_ADDR) === pod && get16(v, r * VS + V_PORT) === podPort) map.delete(k2, 0);
    map.delete(key, off);
    this.deleted++;
    return true;
  }

  /**
   * CtGcDeleteHook: when an IPv4 OUT conntrack entry (a pod-initiated flow)
   * expires, remove its NAT pair. CT keys are stored reversed,
   * {daddr=pod, saddr=peer, dport=peer port, sport=pod port}
   * (conntrack-map.ts), so the OUT NAT key is the CT key with the two
   * addresses swapped and the port bytes kept where they are.
   */
  readonly onCtDelete: CtGcDeleteHook = (family, key, keyOff) => {
    if (family !== 'ipv4' || key[keyOff + CT4.FLAGS] !== TUPLE_F_OUT) return;
    const nh = key[keyOff + CT4.NEXTHDR]!;
    if (nh !== IPPROTO_TCP && nh !== IPPROTO_UDP && nh !== IPPROTO_ICMP) return;
    const k = this.kDel;
    for (let j = 0; j < 4; j++) {
      k[CT4.DADDR + j] = key[keyOff + CT4.SADDR + j]!;
      k[CT4.SADDR + j] = key[keyOff + CT4.DADDR + j]!;
    }
    for (let j = CT4.DPORT; j < CT4.FLAGS; j++) k[j] = key[keyOff + j]!;
    k[CT4.FLAGS] = TUPLE_F_OUT;
    this.deleteMappingKey(k, 0);
  };
}

/** The GC hook of `snat` (the same function as snat.onCtDelete). */
export function natCtDeleteHook(snat: Snat4): CtGcDeleteHook {
  return snat.onCtDelete;
}

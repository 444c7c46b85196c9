/**
 * Conntrack maps: the tuple key, the ct_entry value, the four global tables
 * and the tuple helpers the packet path uses (Cilium bpf/lib/conntrack_map.h,
 * the structs in bpf/lib/common.h, ct_extract_ports4/6 and
 * ipv4_ct_tuple_reverse from bpf/lib/conntrack.h, pkg/maps/ctmap/ctmap.go).
 *
 * API:
 *   TUPLE_F_OUT / IN / RELATED / SERVICE       tuple flags
 *   CT4, CT6                                   key offsets (ipv4/ipv6_ct_tuple)
 *   CT_ENTRY, CT_F                             value offsets, flag bits (ct_entry)
 *   createCtMaps(sizes?, opts?) → CtMaps       cilium_ct{4,_any4,6,_any6}_global
 *   getCtMap4/6(maps, nexthdr)                 TCP table or the "any" table
 *   ctTuple4Fill / ctTuple6Fill                scratch tuple from packet bytes
 *   ctTuple4Reverse / ctTuple6Reverse          ipv4_ct_tuple_reverse, in place
 *   ctTuple4Layout / ctTuple6Layout            the same layouts for dumps and tests
 *
 *   ipv4_ct_tuple (14 B, packed)   ipv6_ct_tuple (38 B, packed)
 *   +0  daddr   u32 (be)           +0  daddr[16]
 *   +4  saddr   u32 (be)           +16 saddr[16]
 *   +8  dport   be16               +32 dport be16
 *   +10 sport   be16               +34 sport be16
 *   +12 nexthdr u8                 +36 nexthdr u8
 *   +13 flags   u8 (TUPLE_F_*)     +37 flags u8
 *
 * Packet layout (what the Fill helpers write, as Cilium's lookups start):
 * daddr/saddr = the packet's destination/source address, but the 4 port
 * bytes are copied as they sit in the L4 header into dport,sport — so
 * `dport` holds the packet's *source* port and `sport` its destination port.
 * Cilium's struct comment says it: address names are right for the reply
 * direction, port names for the original direction. After ctLookup the key
 * of a connection client C:c → server S:s is {daddr=C, saddr=S, dport=s,
 * sport=c}; a service entry keeps the packet layout {VIP, client, cport, sport}.
 *
 *   ct_entry (64 B; all integers little-endian host order)
 *   +0  nat_addr[16]    SNAT address (IPv4 in +0..3); newer Cilium's union arm
 *   +16 backend_id u32  service entries (Cilium: u64; backend IDs are u32)
 *   +20 lifetime u32    absolute expiry, seconds of the caller's `now`
 *   +24 packets f64     (Cilium u64; float64 is exact to 2^53)
 *   +32 bytes   f64
 *   +40 flags u16       CT_F_* (rx_closing bit0 … from_tunnel bit10)
 *   +42 rev_nat_index u16
 *   +44 ifindex u16
 *   +46 nat_port u16    newer Cilium (there it replaces ifindex)
 *   +48 tx_flags_seen u8
 *   +49 rx_flags_seen u8
 *   +50 (pad 2)
 *   +52 src_sec_id u32
 *   +56 last_tx_report u32
 *   +60 last_rx_report u32
 *
 * Deviations: reserved0 (unused since Cilium 1.16) is replaced by the NAT
 * address so NAT can live in the entry as in newer Cilium, while backend_id,
 * ifindex and nat_port each keep a field of their own (no union: 64 B still
 * fits). rev_nat_index and nat_port are host order (Cilium keeps them in
 * network order) because only Tapestry reads them. Memory: with LruHashMap's
 * overhead (12 B of links + 8 B buckets × capacity/maxEntries) an IPv4 entry
 * costs 14 + 64 + 12 + 16 = 106 B at 2^19 or 2^20 entries.
 */
import { LruHashMap } from '../../maps/lru-hash.ts';
import { defineLayout } from '../../maps/key-layout.ts';
import * as ip from '../../wire/ip.ts';
import { DROP as DROPS } from './drop-reasons.ts';

// Local copies for the packet path (imported bindings are getter calls under tsx; see conntrack.ts).
const IPPROTO_ICMP = ip.IPPROTO_ICMP, IPPROTO_ICMPV6 = ip.IPPROTO_ICMPV6, IPPROTO_SCTP = ip.IPPROTO_SCTP;
const IPPROTO_TCP = ip.IPPROTO_TCP, IPPROTO_UDP = ip.IPPROTO_UDP;
const DROP = { CT_INVALID_HDR: DROPS.CT_INVALID_HDR, CT_UNKNOWN_PROTO: DROPS.CT_UNKNOWN_PROTO } as const;

/** Tuple flag: endpoint-initiated (egress) flow. */
export const TUPLE_F_OUT = 0;
/** Tuple flag: flow towards an endpoint (ingress). */
export const TUPLE_F_IN = 1;
/** Tuple flag: ICMP error related to a flow (and the companion entries that match them). */
export const TUPLE_F_RELATED = 2;
/** Tuple flag: service (load-balancer) entry. */
export const TUPLE_F_SERVICE = 4;

/** Byte offsets of a CT tuple; CT4 and CT6 share this shape so one code path serves both. */
export interface CtTupleLayout {
  readonly DADDR: number;
  readonly SADDR: number;
  readonly DPORT: number;
  readonly SPORT: number;
  readonly NEXTHDR: number;
  readonly FLAGS: number;
  /** Address length (4 or 16). */
  readonly ADDR_LEN: number;
  /** Key size. */
  readonly SIZE: number;
  /** ICMP protocol of the family (companion RELATED entries). */
  readonly ICMP: number;
}

/** ipv4_ct_tuple offsets (14 B). */
export const CT4: CtTupleLayout = Object.freeze({
  DADDR: 0, SADDR: 4, DPORT: 8, SPORT: 10, NEXTHDR: 12, FLAGS: 13, ADDR_LEN: 4, SIZE: 14, ICMP: IPPROTO_ICMP,
});
/** ipv6_ct_tuple offsets (38 B: 16 + 16 + 2 + 2 + 1 + 1). */
export const CT6: CtTupleLayout = Object.freeze({
  DADDR: 0, SADDR: 16, DPORT: 32, SPORT: 34, NEXTHDR: 36, FLAGS: 37, ADDR_LEN: 16, SIZE: 38, ICMP: IPPROTO_ICMPV6,
});

/** ct_entry field offsets (see the box above). */
export const CT_ENTRY = {
  NAT_ADDR: 0, BACKEND_ID: 16, LIFETIME: 20, PACKETS: 24, BYTES: 32, FLAGS: 40, REV_NAT: 42, IFINDEX: 44,
  NAT_PORT: 46, TX_FLAGS_SEEN: 48, RX_FLAGS_SEEN: 49, SRC_SEC_ID: 52, LAST_TX_REPORT: 56, LAST_RX_REPORT: 60, SIZE: 64,
} as const;

/** ct_entry flag bits (the u16 bitfield; names as `cilium bpf ct list` prints them). */
export const CT_F = {
  RX_CLOSING: 1 << 0,
  TX_CLOSING: 1 << 1,
  /** reserved1 in ct_entry; the Go dump calls the bit Nat64. */
  NAT64: 1 << 2,
  LB_LOOPBACK: 1 << 3,
  SEEN_NON_SYN: 1 << 4,
  NODE_PORT: 1 << 5,
  PROXY_REDIRECT: 1 << 6,
  DSR_INTERNAL: 1 << 7,
  FROM_L7LB: 1 << 8,
  RESERVED2: 1 << 9,
  FROM_TUNNEL: 1 << 10,
} as const;

/** Both closing bits. */
export const CT_F_CLOSING = CT_F.RX_CLOSING | CT_F.TX_CLOSING;

/** ipv4_ct_tuple for dumps and tests (the packet path writes bytes at CT4 offsets). */
export const ctTuple4Layout = defineLayout({
  daddr: 'u32be', saddr: 'u32be', dport: 'u16be', sport: 'u16be', nexthdr: 'u8', flags: 'u8',
});
/** ipv6_ct_tuple for dumps and tests. */
export const ctTuple6Layout = defineLayout({
  daddr: 'bytes16', saddr: 'bytes16', dport: 'u16be', sport: 'u16be', nexthdr: 'u8', flags: 'u8',
});
/** CT_MAP_SIZE_TCP default (pkg/option/config.go). */
export const CT_MAP_SIZE_TCP = 524288;
/** CT_MAP_SIZE_ANY default. */
export const CT_MAP_SIZE_ANY = 262144;

/** Entries per table. */
export interface CtMapSizes {
  tcp4: number;
  any4: number;
  tcp6: number;
  any6: number;
}

/** The four global conntrack tables. */
export interface CtMaps {
  /** cilium_ct4_global: IPv4 TCP. */
  readonly tcp4: LruHashMap;
  /** cilium_ct_any4_global: IPv4 UDP, ICMP, SCTP and the RELATED companions. */
  readonly any4: LruHashMap;
  /** cilium_ct6_global: IPv6 TCP. */
  readonly tcp6: LruHashMap;
  /** cilium_ct_any6_global: IPv6 everything else. */
  readonly any6: LruHashMap;
}

/** Options for createCtMaps. */
export interface CtMapOptions {
  /** Allocate on SharedArrayBuffer so the agent thread can attach() and dump. */
  shared?: boolean;
  /** Hash seed (tests and benches); random per map otherwise. */
  seed?: number;
}

/** Create the four tables, Cilium's default sizes unless given (Cilium accepts 1024…16Mi; tests use less). */
export function createCtMaps(sizes: Partial<CtMapSizes> = {}, opts: CtMapOptions = {}): CtMaps {
  const mk = (name: string, keySize: number, maxEntries: number): LruHashMap =>
    new LruHashMap({ name, keySize, valueSize: CT_ENTRY.SIZE, maxEntries, shared: opts.shared, seed: opts.seed });
  return {
    tcp4: mk('cilium_ct4_global', CT4.SIZE, sizes.tcp4 ?? CT_MAP_SIZE_TCP),
    any4: mk('cilium_ct_any4_global', CT4.SIZE, sizes.any4 ?? CT_MAP_SIZE_ANY),
    tcp6: mk('cilium_ct6_global', CT6.SIZE, sizes.tcp6 ?? CT_MAP_SIZE_TCP),
    any6: mk('cilium_ct_any6_global', CT6.SIZE, sizes.any6 ?? CT_MAP_SIZE_ANY),
  };
}

/** get_ct_map4: the TCP table for TCP, the "any" table for everything else. */
export function getCtMap4(maps: CtMaps, nexthdr: number): LruHashMap {
  return nexthdr === IPPROTO_TCP ? maps.tcp4 : maps.any4;
}

/** get_ct_map6. */
export function getCtMap6(maps: CtMaps, nexthdr: number): LruHashMap {
  return nexthdr === IPPROTO_TCP ? maps.tcp6 : maps.any6;
}

/** True for the L4 protocols conntrack tracks in family `L` (TCP, UDP, SCTP, the family's ICMP). */
export function ctKnownProto(L: CtTupleLayout, nexthdr: number): boolean {
  return nexthdr === IPPROTO_TCP || nexthdr === IPPROTO_UDP || nexthdr === IPPROTO_SCTP || nexthdr === L.ICMP;
}

/** ipv4_ct_tuple_reverse / ipv6_ct_tuple_reverse: swap addresses and ports and flip TUPLE_F_IN, in place. */
export function ctTupleReverse(L: CtTupleLayout, t: Uint8Array): void {
  const d = L.DADDR, s = L.SADDR, n = L.ADDR_LEN;
  for (let i = 0; i < n; i++) {
    const x = t[d + i]!;
    t[d + i] = t[s + i]!;
    t[s + i] = x;
  }
  const p = L.DPORT, q = L.SPORT;
  let x = t[p]!;
  t[p] = t[q]!;
  t[q] = x;
  x = t[p + 1]!;
  t[p + 1] = t[q + 1]!;
  t[q + 1] = x;
  t[L.FLAGS] = t[L.FLAGS]! ^ TUPLE_F_IN;
}

/** ipv4_ct_tuple_reverse on a 14-byte tuple. */
export function ctTuple4Reverse(t: Uint8Array): void {
  ctTupleReverse(CT4, t);
}

/** ipv6_ct_tuple_reverse on a 38-byte tuple. */
export function ctTuple6Reverse(t: Uint8Array): void {
  ctTupleReverse(CT6, t);
}

// ICMP types that make a tuple RELATED (RFC 792 / RFC 4443 error messages).
const ICMP_ECHOREPLY = 0, ICMP_DEST_UNREACH = 3, ICMP_ECHO = 8, ICMP_TIME_EXCEEDED = 11, ICMP_PARAMETERPROB = 12;
const ICMPV6_DEST_UNREACH = 1, ICMPV6_PARAMPROB = 4, ICMPV6_ECHO_REQUEST = 128, ICMPV6_ECHO_REPLY = 129;

/**
 * ct_extract_ports: write ports (packet layout) and the RELATED flag for the
 * L4 header at b[l4Off, l4Off + l4Len); flags byte is reset to 0 or RELATED.
 * Returns the TCP flags byte (0 for other protocols) or a negative DROP code.
 */
function fillPorts(L: CtTupleLayout, t: Uint8Array, nh: number, b: Uint8Array, l4Off: number, l4Len: number): number {
  const p = L.DPORT;
  t[L.FLAGS] = 0;
  if (nh === IPPROTO_TCP || nh === IPPROTO_UDP || nh === IPPROTO_SCTP) {
    const min = nh === IPPROTO_TCP ? 20 : nh === IPPROTO_UDP ? 8 : 12;
    if (l4Len < min) return DROP.CT_INVALID_HDR;
    // The L4 header's sport,dport land in the tuple's dport,sport (see header).
    t[p] = b[l4Off]!;
    t[p + 1] = b[l4Off + 1]!;
    t[p + 2] = b[l4Off + 2]!;
    t[p + 3] = b[l4Off + 3]!;
    return nh === IPPROTO_TCP ? b[l4Off + 13]! : 0;
  }
  if (nh !== L.ICMP) return DROP.CT_UNKNOWN_PROTO;
  if (l4Len < 8) return DROP.CT_INVALID_HDR;
  t[p] = t[p + 1] = t[p + 2] = t[p + 3] = 0;
  const type = b[l4Off]!;
  const v6 = nh === IPPROTO_ICMPV6;
  const req = v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO;
  const rep = v6 ? ICMPV6_ECHO_REPLY : ICMP_ECHOREPLY;
  if (type === req) {
    // Echo request: identifier in dport.
    t[p] = b[l4Off + 4]!;
    t[p + 1] = b[l4Off + 5]!;
  } else if (type === rep) {
    // Echo reply: identifier in sport.
    t[p + 2] = b[l4Off + 4]!;
    t[p + 3] = b[l4Off + 5]!;
  } else if (v6 ? type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB
    : type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED || type === ICMP_PARAMETERPROB) {
    // Errors relate by outer addresses only; the quoted packet is not parsed.
    t[L.FLAGS] = TUPLE_F_RELATED;
  }
  return 0;
}

/**
 * Fill a 14-byte scratch tuple from the IPv4 packet at b[ipOff] whose L4
 * header is b[l4Off, l4Off + l4Len): addresses, protocol, ports (packet
 * layout, ICMP rules), flags 0 or RELATED. Returns the TCP flags (0 for non-TCP)
 * or DROP.CT_INVALID_HDR / DROP.CT_UNKNOWN_PROTO. Allocation-free.
 */
export function ctTuple4Fill(t: Uint8Array, b: Uint8Array, ipOff: number, l4Off: number, l4Len: number): number {
  // IPv4 header: saddr at +12, daddr at +16, protocol at +9.
  for (let i = 0; i < 4; i++) {
    t[CT4.DADDR + i] = b[ipOff + 16 + i]!;
    t[CT4.SADDR + i] = b[ipOff + 12 + i]!;
  }
  const nh = b[ipOff + 9]!;
  t[CT4.NEXTHDR] = nh;
  return fillPorts(CT4, t, nh, b, l4Off, l4Len);
}

/**
 * Fill a 38-byte scratch tuple from the IPv6 packet at b[ipOff]; `nexthdr`
 * is the upper-layer protocol after extension headers (the caller walked
 * them), its header at b[l4Off, l4Off + l4Len). Returns as ctTuple4Fill.
 */
export function ctTuple6Fill(t: Uint8Array, b: Uint8Array, ipOff: number, nexthdr: number, l4Off: number, l4Len: number): number {
  // IPv6 header: saddr at +8, daddr at +24.
  for (let i = 0; i < 16; i++) {
    t[CT6.DADDR + i] = b[ipOff + 24 + i]!;
    t[CT6.SADDR + i] = b[ipOff + 8 + i]!;
  }
  t[CT6.NEXTHDR] = nexthdr;
  return fillPorts(CT6, t, nexthdr, b, l4Off, l4Len);
}

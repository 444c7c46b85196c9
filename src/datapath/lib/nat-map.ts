/**
 * The IPv4 SNAT map, cilium_snat_v4_external (Cilium bpf/lib/nat.h
 * struct ipv4_nat_entry, pkg/maps/nat/; facts §2).
 *
 * API:
 *   NAT_VAL                                  value offsets (ipv4_nat_entry)
 *   NAT_MAP_SIZE_V4                          default max entries (524288)
 *   createNatMap4(opts?) → LruHashMap        the map
 *   natKey4(k, saddr, daddr, sport, dport, nexthdr, flags)   fill a scratch key
 *   natVal4(v, o, created, needsCt, addr, port)              fill a value at v[o]
 *   natCreated(values, o) / natNeedsCt(values, o)            read the host-order fields
 *   natTuple4Layout / natEntry4Layout        the same layouts for dumps and tests
 *
 * Key: the 14-byte ipv4_ct_tuple of conntrack-map.ts (CT4 offsets), but in
 * packet layout with every name right: saddr/sport are the real source of
 * the packet the entry matches, daddr/dport its destination (the CT
 * table's stored keys differ: see conntrack-map.ts). A mapping of pod P:p
 * talking to peer R:r through NAT address N, port n, is two entries:
 *
 *   OUT {saddr=P, daddr=R, sport=p, dport=r, flags=TUPLE_F_OUT} → {addr=N, port=n}
 *   IN  {saddr=R, daddr=N, sport=r, dport=n, flags=TUPLE_F_IN}  → {addr=P, port=p}
 *
 * ICMP echo: the identifier is the source port of a request (OUT: sport=id,
 * dport=0) and the destination port of the reply (IN: sport=0, dport=id).
 *
 *   ipv4_nat_entry (40 B: 38 B of fields, aligned to its u64s)
 *   +0  created  u64 (le)   time of creation, seconds of the caller's `now`
 *   +8  needs_ct u64 (le)   bit 0: the caller runs conntrack on this flow
 *   +16 pad1     u64
 *   +24 pad2     u64
 *   +32 addr     be32       OUT: to_saddr (NAT address); IN: to_daddr (pod)
 *   +36 port     be16       OUT: to_sport;               IN: to_dport
 *   +38 (pad 2)
 *
 * addr and port are in network order because the packet path compares and
 * copies them against packet bytes; created and needs_ct are host order as
 * the BPF map holds them on x86.
 */
import { LruHashMap } from '../../maps/lru-hash.ts';
import { defineLayout } from '../../maps/key-layout.ts';
import { CT4 } from './conntrack-map.ts';

/** ipv4_nat_entry field offsets (see the box above). */
export const NAT_VAL = { CREATED: 0, NEEDS_CT: 8, PAD1: 16, PAD2: 24, ADDR: 32, PORT: 36, SIZE: 40 } as const;

/** Default size of cilium_snat_v4_external: (CT TCP + CT any) · 2/3 (pkg/option/config.go). */
export const NAT_MAP_SIZE_V4 = 524288;

/** Options for createNatMap4. */
export interface NatMapOptions {
  /** Entries (NAT_MAP_SIZE_V4). */
  maxEntries?: number;
  /** Allocate on SharedArrayBuffer so the agent thread can attach() and dump. */
  shared?: boolean;
  /** Hash seed (tests and benches); random otherwise. */
  seed?: number;
}

/** Create cilium_snat_v4_external. */
export function createNatMap4(opts: NatMapOptions = {}): LruHashMap {
  return new LruHashMap({
    name: 'cilium_snat_v4_external', keySize: CT4.SIZE, valueSize: NAT_VAL.SIZE,
    maxEntries: opts.maxEntries ?? NAT_MAP_SIZE_V4, shared: opts.shared, seed: opts.seed,
  });
}

/** The key as a layout (dumps and tests; the packet path writes bytes at CT4 offsets). */
export const natTuple4Layout = defineLayout({
  daddr: 'u32be', saddr: 'u32be', dport: 'u16be', sport: 'u16be', nexthdr: 'u8', flags: 'u8',
});

/** The value as a layout. */
export const natEntry4Layout = defineLayout({
  created: 'u64', needs_ct: 'u64', pad1: 'pad8', pad2: 'pad8', addr: 'u32be', port: 'u16be', pad3: 'pad2',
});

/** Fill the 14-byte scratch key `k` (addresses u32, ports host-order numbers). */
export function natKey4(k: Uint8Array, saddr: number, daddr: number, sport: number, dport: number, nexthdr: number, flags: number): void {
  k[0] = daddr >>> 24;
  k[1] = (daddr >>> 16) & 0xff;
  k[2] = (daddr >>> 8) & 0xff;
  k[3] = daddr & 0xff;
  k[4] = saddr >>> 24;
  k[5] = (saddr >>> 16) & 0xff;
  k[6] = (saddr >>> 8) & 0xff;
  k[7] = saddr & 0xff;
  k[8] = dport >>> 8;
  k[9] = dport & 0xff;
  k[10] = sport >>> 8;
  k[11] = sport & 0xff;
  k[12] = nexthdr;
  k[13] = flags;
}

/** Write a whole value at v[o]: created (s), needs_ct, translated address and port. */
export function natVal4(v: Uint8Array, o: number, created: number, needsCt: boolean, addr: number, port: number): void {
  for (let i = 0; i < NAT_VAL.SIZE; i++) v[o + i] = 0;
  // u64 little-endian from a non-negative number below 2^53.
  const lo = created >>> 0, hi = Math.floor(created / 4294967296) >>> 0;
  const c = o + NAT_VAL.CREATED;
  v[c] = lo & 0xff;
  v[c + 1] = (lo >>> 8) & 0xff;
  v[c + 2] = (lo >>> 16) & 0xff;
  v[c + 3] = lo >>> 24;
  v[c + 4] = hi & 0xff;
  v[c + 5] = (hi >>> 8) & 0xff;
  v[c + 6] = (hi >>> 16) & 0xff;
  v[c + 7] = hi >>> 24;
  v[o + NAT_VAL.NEEDS_CT] = needsCt ? 1 : 0;
  const a = o + NAT_VAL.ADDR;
  v[a] = addr >>> 24;
  v[a + 1] = (addr >>> 16) & 0xff;
  v[a + 2] = (addr >>> 8) & 0xff;
  v[a + 3] = addr & 0xff;
  v[o + NAT_VAL.PORT] = port >>> 8;
  v[o + NAT_VAL.PORT + 1] = port & 0xff;
}

/** `created` of the value at v[o]. */
export function natCreated(v: Uint8Array, o: number): number {
  const c = o + NAT_VAL.CREATED;
  const lo = (v[c]! | (v[c + 1]! << 8) | (v[c + 2]! << 16) | (v[c + 3]! << 24)) >>> 0;
  const hi = (v[c + 4]! | (v[c + 5]! << 8) | (v[c + 6]! << 16) | (v[c + 7]! << 24)) >>> 0;
  return hi * 4294967296 + lo;
}

/** needs_ct bit of the value at v[o]. */
export function natNeedsCt(v: Uint8Array, o: number): boolean {
  return (v[o + NAT_VAL.NEEDS_CT]! & 1) !== 0;
}

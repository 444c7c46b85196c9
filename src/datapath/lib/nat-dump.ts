/**
 * SNAT dumps for the API and CLI: entries as plain objects (`-o json`) and
 * the lines of `cilium bpf nat list` (pkg/maps/nat/ipv4.go NatKey4/NatEntry4
 * String and ToString; facts §9).
 *
 * API:
 *   natDump(src, now) → NatDumpEntry[]    every entry of a Snat4 (or of its map, attached elsewhere)
 *   formatNatEntry(e) → string            one `nat list` line
 *   natList(src, now) → string[]          every line
 *
 * Line:
 *   `<PROTO> OUT <src>:<sport> -> <dst>:<dport> XLATE_SRC <ip>:<port> Created=<n>sec ago NeedsCT=<0|1>`
 *   `<PROTO> IN <src>:<sport> -> <dst>:<dport> XLATE_DST <ip>:<port> Created=<n>sec ago NeedsCT=<0|1>`
 * src/dst are the key's saddr:sport and daddr:dport as named (nat-map.ts:
 * packet layout, names right), so OUT reads pod -> peer and IN peer -> NAT
 * address. `n` = now − created. PROTO as conntrack-dump.ts prints it.
 */
import { LruHashMap } from '../../maps/lru-hash.ts';
import { formatIpv4 } from '../../wire/addr.ts';
import { CT4, TUPLE_F_IN } from './conntrack-map.ts';
import { NAT_VAL, natCreated, natNeedsCt } from './nat-map.ts';
import type { Snat4 } from './nat.ts';

/** One entry, decoded. */
export interface NatDumpEntry {
  family: 'ipv4';
  /** Map name. */
  map: string;
  /** Protocol number and name. */
  nexthdr: number;
  proto: string;
  /** OUT: pod-side tuple → XLATE_SRC; IN: reply tuple → XLATE_DST. */
  type: 'OUT' | 'IN';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Translated address and port (to_saddr/to_sport or to_daddr/to_dport). */
  xlateAddr: string;
  xlatePort: number;
  /** Creation time and its age in seconds at `now`. */
  created: number;
  age: number;
  needsCt: boolean;
}

// The names conntrack-dump.ts prints (Cilium's u8proto).
const PROTO_NAMES: Record<number, string> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

/** Decode every entry (control path), in map order. */
export function natDump(src: Snat4 | LruHashMap, now: number): NatDumpEntry[] {
  const map = src instanceof LruHashMap ? src : src.map;
  const v = map.values, out: NatDumpEntry[] = [];
  map.iterate((k, ko, slot) => {
    const nh = k[ko + CT4.NEXTHDR]!;
    const o = slot * NAT_VAL.SIZE;
    const created = natCreated(v, o);
    out.push({
      family: 'ipv4', map: map.name, nexthdr: nh, proto: PROTO_NAMES[nh] ?? String(nh),
      type: (k[ko + CT4.FLAGS]! & TUPLE_F_IN) !== 0 ? 'IN' : 'OUT',
      src: formatIpv4(u32(k, ko + CT4.SADDR)), sport: u16(k, ko + CT4.SPORT),
      dst: formatIpv4(u32(k, ko + CT4.DADDR)), dport: u16(k, ko + CT4.DPORT),
      xlateAddr: formatIpv4(u32(v, o + NAT_VAL.ADDR)), xlatePort: u16(v, o + NAT_VAL.PORT),
      created, age: Math.floor(now) - created, needsCt: natNeedsCt(v, o),
    });
  });
  return out;
}

/** One `cilium bpf nat list` line. */
export function formatNatEntry(e: NatDumpEntry): string {
  return `${e.proto} ${e.type} ${e.src}:${e.sport} -> ${e.dst}:${e.dport} ` +
    `${e.type === 'OUT' ? 'XLATE_SRC' : 'XLATE_DST'} ${e.xlateAddr}:${e.xlatePort} ` +
    `Created=${e.age}sec ago NeedsCT=${e.needsCt ? 1 : 0}`;
}

/** Every line of `cilium bpf nat list` at time `now`. */
export function natList(src: Snat4 | LruHashMap, now: number): string[] {
  return natDump(src, now).map(formatNatEntry);
}

/**
 * Conntrack dumps for the API and CLI: entries as objects, and the lines of
 * `cilium bpf ct list global` (pkg/maps/ctmap/types.go CtKey4Global.Dump
 * with reverse=true + CtEntry.StringWithTimeDiff; pkg/u8proto for names).
 *
 * API:
 *   ctDumpMap(map, family, now) → CtDumpEntry[]     one table
 *   ctDump(maps, now) → CtDumpEntry[]               tcp4, any4, tcp6, any6 in that order
 *   formatCtEntry(e) → string                       one `ct list` line (no trailing " \n")
 *   ctListGlobal(maps, now) → string[]              every line
 *   ctFlagNames(flags) → string[]                   names of the set CT_F bits
 *
 * Orientation. The stored key pairs daddr with sport and saddr with dport
 * (see conntrack-map.ts). For OUT and IN entries the client C:c → server
 * S:s is {daddr=C, sport=c, saddr=S, dport=s} and prints "C:c -> S:s", i.e.
 * `<daddr>:<sport> -> <saddr>:<dport>` — the connection as its first packet
 * went. SVC entries are stored in packet layout {daddr=VIP, saddr=client,
 * dport=client port, sport=service port} and print
 * `<saddr>:<dport> -> <daddr>:<sport>` = client -> VIP. Both are what
 * Cilium's Dump(reverse=true) prints. IPv6 addresses are bracketed.
 *
 * Line: `<PROTO> <OUT|IN|SVC> <src>:<sport> -> <dst>:<dport> [related ]
 * expires=<t> (remaining: <n> sec(s)) Packets=<n> Bytes=<n> RxFlagsSeen=0x<2 hex>
 * LastRxReport=<t> TxFlagsSeen=0x<2 hex> LastTxReport=<t> Flags=0x<4 hex>
 * [ <names> ] RevNAT=<n> SourceSecurityID=<id> IfIndex=<n> BackendID=<n>`.
 * Bit 9 has no name (Cilium's Reserved1 is neither named nor "Unknown");
 * bits above 10 print as "Unknown=0x<4 hex> ". Entries with nexthdr 0 are
 * skipped, as in Cilium.
 */
import type { LruHashMap } from '../../maps/lru-hash.ts';
import { formatIpv4, formatIpv6 } from '../../wire/addr.ts';
import {
  CT4, CT6, CT_ENTRY as E, TUPLE_F_IN, TUPLE_F_RELATED, TUPLE_F_SERVICE,
  type CtMaps, type CtTupleLayout,
} from './conntrack-map.ts';

/** One entry, decoded. */
export interface CtDumpEntry {
  family: 'ipv4' | 'ipv6';
  /** Table name. */
  map: string;
  /** Protocol number and name (Cilium's u8proto names). */
  nexthdr: number;
  proto: string;
  /** OUT, IN or SVC. */
  type: 'OUT' | 'IN' | 'SVC';
  related: boolean;
  /** Raw tuple flags. */
  tupleFlags: number;
  /** Display orientation (see header). */
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Absolute expiry and seconds left at `now` (negative once expired). */
  expires: number;
  remaining: number;
  packets: number;
  bytes: number;
  rxFlagsSeen: number;
  lastRxReport: number;
  txFlagsSeen: number;
  lastTxReport: number;
  /** CT_F bits and their names. */
  flags: number;
  flagNames: string[];
  revNat: number;
  srcSecId: number;
  ifindex: number;
  backendId: number;
  natPort: number;
  /** NAT address, '' when none. */
  natAddr: string;
}

const FLAG_NAMES: readonly (string | null)[] = [
  'RxClosing', 'TxClosing', 'Nat64', 'LBLoopback', 'SeenNonSyn', 'NodePort', 'ProxyRedirect', 'DSRInternal',
  'FromL7LB', null, 'FromTunnel',
];

const PROTO_NAMES: Record<number, string> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

/** Names of the set ct_entry flag bits, in bit order. */
export function ctFlagNames(flags: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < FLAG_NAMES.length; i++) {
    const n = FLAG_NAMES[i];
    if (n && (flags & (1 << i)) !== 0) out.push(n);
  }
  return out;
}

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');

function addr(L: CtTupleLayout, k: Uint8Array, o: number): string {
  return L.ADDR_LEN === 4
    ? formatIpv4(((k[o]! << 24) | (k[o + 1]! << 16) | (k[o + 2]! << 8) | k[o + 3]!) >>> 0)
    : formatIpv6(k, o);
}

/** Decode every entry of one conntrack table (control path). */
export function ctDumpMap(map: LruHashMap, family: 'ipv4' | 'ipv6', now: number): CtDumpEntry[] {
  const L = family === 'ipv4' ? CT4 : CT6;
  const v = map.view, out: CtDumpEntry[] = [];
  map.iterate((k, ko, slot) => {
    const nh = k[ko + L.NEXTHDR]!;
    if (nh === 0) return;
    const tf = k[ko + L.FLAGS]!;
    const d = addr(L, k, ko + L.DADDR), s = addr(L, k, ko + L.SADDR);
    const dp = (k[ko + L.DPORT]! << 8) | k[ko + L.DPORT + 1]!;
    const sp = (k[ko + L.SPORT]! << 8) | k[ko + L.SPORT + 1]!;
    const svc = (tf & TUPLE_F_SERVICE) !== 0;
    const o = slot * E.SIZE;
    const lifetime = v.getUint32(o + E.LIFETIME, true);
    const flags = v.getUint16(o + E.FLAGS, true);
    let nat = false;
    for (let i = 0; i < L.ADDR_LEN; i++) if (map.values[o + E.NAT_ADDR + i] !== 0) nat = true;
    out.push({
      family, map: map.name, nexthdr: nh, proto: PROTO_NAMES[nh] ?? String(nh),
      type: svc ? 'SVC' : (tf & TUPLE_F_IN) !== 0 ? 'IN' : 'OUT', related: (tf & TUPLE_F_RELATED) !== 0, tupleFlags: tf,
      src: svc ? s : d, sport: svc ? dp : sp, dst: svc ? d : s, dport: svc ? sp : dp,
      expires: lifetime, remaining: lifetime - Math.floor(now),
      packets: v.getFloat64(o + E.PACKETS, true), bytes: v.getFloat64(o + E.BYTES, true),
      rxFlagsSeen: v.getUint8(o + E.RX_FLAGS_SEEN), lastRxReport: v.getUint32(o + E.LAST_RX_REPORT, true),
      txFlagsSeen: v.getUint8(o + E.TX_FLAGS_SEEN), lastTxReport: v.getUint32(o + E.LAST_TX_REPORT, true),
      flags, flagNames: ctFlagNames(flags),
      revNat: v.getUint16(o + E.REV_NAT, true), srcSecId: v.getUint32(o + E.SRC_SEC_ID, true),
      ifindex: v.getUint16(o + E.IFINDEX, true), backendId: v.getUint32(o + E.BACKEND_ID, true),
      natPort: v.getUint16(o + E.NAT_PORT, true), natAddr: nat ? addr(L, map.values, o + E.NAT_ADDR) : '',
    });
  });
  return out;
}

/** Decode the four tables: tcp4, any4, tcp6, any6. */
export function ctDump(maps: CtMaps, now: number): CtDumpEntry[] {
  return [
    ...ctDumpMap(maps.tcp4, 'ipv4', now), ...ctDumpMap(maps.any4, 'ipv4', now),
    ...ctDumpMap(maps.tcp6, 'ipv6', now), ...ctDumpMap(maps.any6, 'ipv6', now),
  ];
}

/** One `cilium bpf ct list global` line (without Cilium's trailing " \n"). */
export function formatCtEntry(e: CtDumpEntry): string {
  const ep = (a: string, p: number): string => (e.family === 'ipv6' ? `[${a}]:${p}` : `${a}:${p}`);
  const unknown = e.flags & ~((1 << FLAG_NAMES.length) - 1);
  const names = e.flagNames.map((n) => `${n} `).join('') + (unknown !== 0 ? `Unknown=0x${hex(unknown, 4)} ` : '');
  return `${e.proto} ${e.type} ${ep(e.src, e.sport)} -> ${ep(e.dst, e.dport)} ${e.related ? 'related ' : ''}` +
    `expires=${e.expires} (remaining: ${e.remaining} sec(s)) Packets=${e.packets} Bytes=${e.bytes} ` +
    `RxFlagsSeen=0x${hex(e.rxFlagsSeen, 2)} LastRxReport=${e.lastRxReport} ` +
    `TxFlagsSeen=0x${hex(e.txFlagsSeen, 2)} LastTxReport=${e.lastTxReport} ` +
    `Flags=0x${hex(e.flags, 4)} [ ${names}] RevNAT=${e.revNat} SourceSecurityID=${e.srcSecId} ` +
    `IfIndex=${e.ifindex} BackendID=${e.backendId}`;
}

/** Every line of `cilium bpf ct list global` at time `now`. */
export function ctListGlobal(maps: CtMaps, now: number): string[] {
  return ctDump(maps, now).map(formatCtEntry);
}

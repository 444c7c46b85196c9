/**
 * cilium_ipcache: every address the node knows, by longest prefix, with its
 * security identity and the node it lives behind (bpf/lib/eps.h,
 * pkg/maps/ipcache/ipcache.go).
 *
 * API:
 *   createIpcache(maxEntries?)                    the LPM map (512000 entries)
 *   Ipcache.upsert4(ip, len, identity, tunnelEp)   control path (ip, tunnelEp: u32)
 *   Ipcache.upsert6(ip16, len, identity, tunnelEp)
 *   Ipcache.delete4 / delete6
 *   Ipcache.lookup4(ip) -> slot | -1               packet path (scratch key, no allocation)
 *   Ipcache.lookup6(buf, off) -> slot | -1
 *   Ipcache.identity(slot), .tunnelEndpoint(slot)  value fields
 *   Ipcache.dump() -> rows                         for `bpf ipcache list`
 *
 *   key (24 B)                                      value (12 B)
 *   +0  prefixlen u32 (LE)  32 static bits + IP len +0 sec_identity u32 (LE)
 *   +4  cluster_id u16                              +4 tunnel_endpoint be32
 *   +6  pad u8                                      +8 pad u16
 *   +7  family u8 (1 IPv4, 2 IPv6)                  +10 key u8 (encryption key index)
 *   +8  addr[16] (IPv4 in the first 4 B)            +11 flags u8 (bit 0 skip_tunnel)
 *
 * The 32 static bits are cluster_id, pad and family: a lookup always matches
 * them exactly, so IPv4 and IPv6 prefixes never shadow one another.
 */
import { LpmTrieMap } from '../../maps/lpm-trie.ts';
import { formatIpv4, formatIpv6 } from '../../wire/addr.ts';
import { get32, set32 } from '../../wire/bytes.ts';

/** IPCACHE_MAP_SIZE (pkg/maps/ipcache). */
export const IPCACHE_MAP_SIZE = 512000;
export const IPC_KEY = { PREFIXLEN: 0, CLUSTER_ID: 4, FAMILY: 7, ADDR: 8, SIZE: 24 } as const;
export const IPC_VAL = { SEC_ID: 0, TUNNEL_EP: 4, KEY: 10, FLAGS: 11, SIZE: 12 } as const;
/** Static (always-matched) key bits ahead of the address. */
export const IPC_STATIC_PREFIX = 32;
const FAMILY_V4 = 1;
const FAMILY_V6 = 2;

/** One row of `bpf ipcache list`. */
export interface IpcacheRow {
  prefix: string;
  identity: number;
  tunnelEndpoint: string;
  encryptKey: number;
  flags: string;
}

/** The ipcache and its packet-path lookups. */
export class Ipcache {
  readonly map: LpmTrieMap;
  private readonly k4 = new Uint8Array(IPC_KEY.SIZE);
  private readonly k6 = new Uint8Array(IPC_KEY.SIZE);
  private readonly kc = new Uint8Array(IPC_KEY.SIZE);
  private readonly v = new Uint8Array(IPC_VAL.SIZE);

  constructor(maxEntries = IPCACHE_MAP_SIZE) {
    this.map = new LpmTrieMap({ name: 'cilium_ipcache', keySize: IPC_KEY.SIZE, valueSize: IPC_VAL.SIZE, maxEntries });
    this.k4[IPC_KEY.FAMILY] = FAMILY_V4;
    this.k4[IPC_KEY.PREFIXLEN] = IPC_STATIC_PREFIX + 32;
    this.k6[IPC_KEY.FAMILY] = FAMILY_V6;
    this.k6[IPC_KEY.PREFIXLEN] = IPC_STATIC_PREFIX + 128;
  }

  /** Insert or replace an IPv4 prefix. */
  upsert4(ip: number, len: number, identity: number, tunnelEndpoint: number): void {
    const k = this.ctlKey(FAMILY_V4, len, 32);
    set32(k, IPC_KEY.ADDR, ip);
    this.write(k, identity, tunnelEndpoint);
  }

  /** Insert or replace an IPv6 prefix (16 address bytes). */
  upsert6(ip: Uint8Array, len: number, identity: number, tunnelEndpoint: number): void {
    const k = this.ctlKey(FAMILY_V6, len, 128);
    k.set(ip.subarray(0, 16), IPC_KEY.ADDR);
    this.write(k, identity, tunnelEndpoint);
  }

  delete4(ip: number, len: number): void {
    const k = this.ctlKey(FAMILY_V4, len, 32);
    set32(k, IPC_KEY.ADDR, ip);
    this.map.delete(k, 0);
  }

  delete6(ip: Uint8Array, len: number): void {
    const k = this.ctlKey(FAMILY_V6, len, 128);
    k.set(ip.subarray(0, 16), IPC_KEY.ADDR);
    this.map.delete(k, 0);
  }

  /** Longest match for IPv4 address `ip`; value slot or -1. */
  lookup4(ip: number): number {
    set32(this.k4, IPC_KEY.ADDR, ip);
    return this.map.lookup(this.k4, 0);
  }

  /** Longest match for the IPv6 address at buf[off..off+16). */
  lookup6(buf: Uint8Array, off: number): number {
    const k = this.k6;
    for (let j = 0; j < 16; j++) k[IPC_KEY.ADDR + j] = buf[off + j]!;
    return this.map.lookup(k, 0);
  }

  identity(slot: number): number {
    return this.map.view.getUint32(slot * IPC_VAL.SIZE + IPC_VAL.SEC_ID, true);
  }

  /** Tunnel endpoint (u32; 0 = not behind another node). */
  tunnelEndpoint(slot: number): number {
    return this.map.view.getUint32(slot * IPC_VAL.SIZE + IPC_VAL.TUNNEL_EP, false);
  }

  /** Every entry, for the CLI. */
  dump(): IpcacheRow[] {
    const rows: IpcacheRow[] = [];
    this.map.iterate((key, koff, slot) => {
      const fam = key[koff + IPC_KEY.FAMILY];
      const len = new DataView(key.buffer, key.byteOffset).getUint32(koff + IPC_KEY.PREFIXLEN, true) - IPC_STATIC_PREFIX;
      const addr = fam === FAMILY_V4 ? formatIpv4(get32(key, koff + IPC_KEY.ADDR)) : formatIpv6(key.subarray(koff + IPC_KEY.ADDR, koff + IPC_KEY.ADDR + 16));
      const te = this.tunnelEndpoint(slot);
      const v = this.map.values;
      rows.push({
        prefix: `${addr}/${len}`,
        identity: this.identity(slot),
        tunnelEndpoint: formatIpv4(te),
        encryptKey: v[slot * IPC_VAL.SIZE + IPC_VAL.KEY]!,
        flags: v[slot * IPC_VAL.SIZE + IPC_VAL.FLAGS]! & 1 ? 'skiptunnel' : '<none>',
      });
    });
    return rows.sort((a, b) => a.prefix.localeCompare(b.prefix, 'en', { numeric: true }));
  }

  private ctlKey(family: number, len: number, max: number): Uint8Array {
    if (!Number.isInteger(len) || len < 0 || len > max) throw new RangeError(`ipcache: prefix length ${len} out of 0..${max}`);
    const k = this.kc;
    k.fill(0);
    new DataView(k.buffer).setUint32(IPC_KEY.PREFIXLEN, IPC_STATIC_PREFIX + len, true);
    k[IPC_KEY.FAMILY] = family;
    return k;
  }

  private write(k: Uint8Array, identity: number, tunnelEndpoint: number): void {
    const v = this.v;
    v.fill(0);
    const dv = new DataView(v.buffer);
    dv.setUint32(IPC_VAL.SEC_ID, identity >>> 0, true);
    dv.setUint32(IPC_VAL.TUNNEL_EP, tunnelEndpoint >>> 0, false);
    const r = this.map.update(k, 0, v, 0);
    if (r < 0) throw new Error(`cilium_ipcache: update failed (${r})`);
  }
}

/**
 * cilium_tunnel_map: pod CIDR -> the node that owns it, the fallback when
 * an ipcache entry carries no tunnel endpoint (bpf/lib/encap.h,
 * bpf/lib/common.h struct tunnel_key / tunnel_value).
 *
 * API:
 *   new TunnelMap(maxEntries?)
 *   t.upsert4(prefix, len, endpoint) / t.delete4(prefix, len)    control path (u32s)
 *   t.lookup4(ip) -> endpoint u32 | 0                             packet path
 *   t.dump() -> [{ prefix, endpoint }]                            `bpf tunnel list`
 *
 *   key (20 B)                                  value (20 B)
 *   +0  ip[16] (network address of a pod CIDR)  +0  ip[16] (tunnel endpoint)
 *   +16 family u8                               +16 family u8
 *   +17 prefix length u8 (Cilium: pad)         +17 key u8 (IPsec SPI, unused)
 *   +18 cluster_id u16                          +18 pad u16
 *
 * Cilium looks this map up with the destination masked by the cluster's
 * pod-CIDR mask (IPV4_MASK); Tapestry keeps the mask of every prefix it
 * holds (few: one per node) and tries them longest first, so nodes with
 * different CIDR sizes work too. Deviation: the key's pad byte carries the
 * prefix length. Without it an address masked to one length could hit a
 * prefix of another that happens to share the network address (10.0.7.7
 * masked to /16 is 10.0.0.0, the key of 10.0.0.0/24), and 10.0.0.0/16 and
 * 10.0.0.0/24 would overwrite each other.
 */
import { HashMap } from '../../maps/hash.ts';
import { formatIpv4 } from '../../wire/addr.ts';
import { get32, set32 } from '../../wire/bytes.ts';

export const TUNNEL_KEY = { IP: 0, FAMILY: 16, PREFIXLEN: 17, CLUSTER_ID: 18, SIZE: 20 } as const;
export const TUNNEL_VAL = { IP: 0, FAMILY: 16, KEY: 17, SIZE: 20 } as const;
/** TUNNEL_ENDPOINT_MAP_SIZE. */
export const TUNNEL_MAP_SIZE = 65536;

/** The tunnel map. */
export class TunnelMap {
  readonly map: HashMap;
  private readonly key = new Uint8Array(TUNNEL_KEY.SIZE);
  private readonly val = new Uint8Array(TUNNEL_VAL.SIZE);
  /** Prefix lengths in use, longest first, with their reference counts. */
  private lens: number[] = [];
  private readonly lenRefs = new Map<number, number>();

  constructor(maxEntries = TUNNEL_MAP_SIZE) {
    this.map = new HashMap({ name: 'cilium_tunnel_map', keySize: TUNNEL_KEY.SIZE, valueSize: TUNNEL_VAL.SIZE, maxEntries });
    this.key[TUNNEL_KEY.FAMILY] = 1;
  }

  upsert4(prefix: number, len: number, endpoint: number): void {
    this.fillKey(mask(prefix, len), len);
    const isNew = this.map.peek(this.key, 0) < 0;
    const v = this.val;
    v.fill(0);
    set32(v, TUNNEL_VAL.IP, endpoint);
    v[TUNNEL_VAL.FAMILY] = 1;
    const r = this.map.update(this.key, 0, v, 0);
    if (r < 0) throw new Error(`cilium_tunnel_map: update failed (${r})`);
    if (!isNew) return;
    this.lenRefs.set(len, (this.lenRefs.get(len) ?? 0) + 1);
    this.lens = [...this.lenRefs.keys()].sort((a, b) => b - a);
  }

  delete4(prefix: number, len: number): void {
    this.fillKey(mask(prefix, len), len);
    if (this.map.delete(this.key, 0) < 0) return;
    this.unref(len);
  }

  /** The tunnel endpoint for `ip`, or 0. */
  lookup4(ip: number): number {
    const lens = this.lens;
    for (let k = 0; k < lens.length; k++) {
      this.fillKey(mask(ip, lens[k]!), lens[k]!);
      const s = this.map.lookup(this.key, 0);
      if (s >= 0) return get32(this.map.values, s * TUNNEL_VAL.SIZE + TUNNEL_VAL.IP);
    }
    return 0;
  }

  dump(): { prefix: string; endpoint: string }[] {
    const rows: { prefix: string; endpoint: string }[] = [];
    this.map.iterate((k, ko, slot) => {
      const net = get32(k, ko);
      rows.push({ prefix: `${formatIpv4(net)}:0`, endpoint: `${formatIpv4(get32(this.map.values, slot * TUNNEL_VAL.SIZE))}:0` });
    });
    return rows.sort((a, b) => a.prefix.localeCompare(b.prefix, 'en', { numeric: true }));
  }

  private fillKey(net: number, len: number): void {
    set32(this.key, TUNNEL_KEY.IP, net);
    this.key[TUNNEL_KEY.PREFIXLEN] = len;
  }

  private unref(len: number): void {
    const n = (this.lenRefs.get(len) ?? 1) - 1;
    if (n > 0) this.lenRefs.set(len, n);
    else this.lenRefs.delete(len);
    this.lens = [...this.lenRefs.keys()].sort((a, b) => b - a);
  }
}

function mask(ip: number, len: number): number {
  return len === 0 ? 0 : (ip & (0xffffffff << (32 - len))) >>> 0;
}

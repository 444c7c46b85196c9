/**
 * The XDP prefilter: source CIDRs whose traffic is dropped at the earliest
 * point, before anything else looks at it (Cilium bpf/bpf_xdp.c check_v4,
 * pkg/datapath/prefilter; `cilium prefilter list|update|delete`).
 *
 * API:
 *   new Prefilter(maxEntries?)
 *   pf.denied4(src) -> bool               packet path: is the IPv4 source deny-listed?
 *   pf.update(cidrs, revision?) -> rev    control path: add prefixes ("a.b.c.d/len")
 *   pf.delete(cidrs, revision?) -> rev    remove prefixes
 *   pf.list() -> { revision, cidrs }      for `prefilter list`
 *   pf.hits                               frames dropped by the prefilter
 *
 * Cilium keeps two maps per family: cilium_cidr_v4_fix (hash of /32s) and
 * cilium_cidr_v4_dyn (LPM trie for everything else). Tapestry keeps one
 * LPM trie, cilium_cidr_v4_dyn (4-byte prefix length + 4-byte address):
 * its per-length hashing already makes /32 lookups one probe, so the fixed
 * map would add nothing. The uplink carries no IPv6, so there is no v6 map.
 *
 * Revision: every change bumps it; a change that names a revision other
 * than the current one is refused, so two writers cannot undo each other
 * (Cilium's --revision check).
 */
import { LpmTrieMap } from '../../maps/lpm-trie.ts';
import { get32, set32 } from '../../wire/bytes.ts';
import { formatIpv4 } from '../../wire/addr.ts';

/** Entries of the prefilter map (Cilium's CIDR4_LMAP_ELEMS). */
export const PREFILTER_MAP_SIZE = 1024;

/** A refused prefilter change; names the field. */
export class PrefilterError extends Error {
  override name = 'PrefilterError';
}

/** Parse "a.b.c.d/len" (or a bare address, /32) into [network u32, len]; throws naming the CIDR. */
export function parseCidr4(s: string): [number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s.trim());
  if (m === null) throw new PrefilterError(`cidr: "${s}" is not an IPv4 CIDR (a.b.c.d/len)`);
  const o = m.slice(1, 5).map(Number);
  const len = m[5] === undefined ? 32 : Number(m[5]);
  if (o.some((x) => x > 255) || len > 32) throw new PrefilterError(`cidr: "${s}" is not an IPv4 CIDR (a.b.c.d/len)`);
  const ip = ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return [(ip & mask) >>> 0, len];
}

/** The deny list the XDP stage consults. */
export class Prefilter {
  readonly map: LpmTrieMap;
  revision = 1;
  /** Frames dropped because their source was deny-listed. */
  hits = 0;
  private readonly key = new Uint8Array(8);
  private readonly ctl = new Uint8Array(8);

  constructor(maxEntries = PREFILTER_MAP_SIZE) {
    this.map = new LpmTrieMap({ name: 'cilium_cidr_v4_dyn', keySize: 8, valueSize: 1, maxEntries });
    this.key[0] = 32;
  }

  /** Packet path: is `src` (u32) inside a deny-listed prefix? */
  denied4(src: number): boolean {
    if (this.map.count === 0) return false;
    set32(this.key, 4, src);
    return this.map.lookup(this.key, 0) >= 0;
  }

  /** Add prefixes; all or nothing. Returns the new revision. */
  update(cidrs: readonly string[], revision?: number): number {
    this.checkRevision(revision);
    const parsed = cidrs.map(parseCidr4);
    if (this.map.count + parsed.length > this.map.maxEntries) throw new PrefilterError(`cidr: the prefilter holds at most ${this.map.maxEntries} prefixes`);
    for (const [ip, len] of parsed) {
      this.fill(ip, len);
      this.map.update(this.ctl, 0);
    }
    return ++this.revision;
  }

  /** Remove prefixes (each must be present); all or nothing. Returns the new revision. */
  delete(cidrs: readonly string[], revision?: number): number {
    this.checkRevision(revision);
    const parsed = cidrs.map(parseCidr4);
    for (const [ip, len] of parsed) {
      this.fill(ip, len);
      if (this.map.lookupExact(this.ctl, 0) < 0) throw new PrefilterError(`cidr: ${formatIpv4(ip)}/${len} is not in the prefilter`);
    }
    for (const [ip, len] of parsed) {
      this.fill(ip, len);
      this.map.delete(this.ctl, 0);
    }
    return ++this.revision;
  }

  /** The deny list, sorted by address then length. */
  list(): { revision: number; cidrs: string[] } {
    const rows: [number, number][] = [];
    this.map.iterate((k, ko) => {
      rows.push([get32(k, ko + 4), k[ko]!]);
    });
    rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return { revision: this.revision, cidrs: rows.map(([ip, len]) => `${formatIpv4(ip)}/${len}`) };
  }

  private checkRevision(revision: number | undefined): void {
    if (revision !== undefined && revision !== this.revision) throw new PrefilterError(`revision: ${revision} is not the current revision ${this.revision} (list again and retry)`);
  }

  private fill(ip: number, len: number): void {
    this.ctl.fill(0);
    this.ctl[0] = len;
    set32(this.ctl, 4, ip);
  }
}

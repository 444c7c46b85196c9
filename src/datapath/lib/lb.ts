/**
 * Service load balancing on the packet path (Cilium bpf/lib/lb.h:
 * lb4_lookup_service, lb4_select_backend_id, lb4_local, lb4_xlate,
 * lb4_rev_nat; facts §3).
 *
 * API:
 *   new Lb4(maps, ct)                         scratch state + the maps
 *   lb.lookupService(vip, dport) -> slot | -1 frontend (slot 0) lookup, scope external
 *   lb.sourceRangeOk(revNat, client) -> bool   loadBalancerSourceRanges check (lb4_src_range_ok)
 *   lb.local(b, i, ip4, l4, tcpFlags, now, svcSlot) -> backend slot | DROP code
 *       CT_SERVICE lookup; on CT_NEW select a backend (random or Maglev)
 *       and create the service entry; an entry whose backend is gone, or a
 *       SYN to a terminating one, selects again; otherwise the connection
 *       stays on its backend (terminating backends drain).
 *   lb.dnat(b, i, ip4, l4Off, proto, beSlot)  rewrite daddr/dport, fix checksums
 *   lb.revNat(b, i, ip4, l4Off, proto, revNat) rewrite saddr/sport back to the frontend
 *   lb.revNatIndex / lb.backendId / lb.noBackend   results of the last local() call
 *
 * Checksums: rewrite4 (l4-rewrite.ts) updates the IPv4 header and the L4
 * checksum, honouring virtio-net NEEDS_CSUM (partial) frames: an address
 * change adjusts the partial sum, a port change leaves it alone.
 *
 * Maglev tables live beside the maps (Cilium: cilium_lb4_maglev, outer map
 * keyed by rev_nat_index), built off the packet path and swapped whole.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import { IPPROTO_TCP } from '../../wire/ip.ts';
import { TCP_FLAG_SYN } from '../../wire/tcp.ts';
import { DROP } from './drop-reasons.ts';
import { AFF_KEY, AFF_VAL, BE_STATE, BE_VAL, LB_SCOPE, RNAT_VAL, SRC_RANGE_KEY, SVC_F, SVC_KEY, SVC_VAL, backendKey, revNatKey, srcRangeKey4, svcKey4, type LbMaps } from './lb-map.ts';
import { get16, get32, set32 } from '../../wire/bytes.ts';
import { BPF_ANY } from '../../maps/map.ts';
import { CT_NEW, CT_SERVICE, CtState, ctCreate4, ctLookup4, type Conntrack } from './conntrack.ts';
import { CT4, CT_ENTRY, ctTuple4Fill } from './conntrack-map.ts';
import { maglevFlowHash4Host } from './jhash.ts';
import { rewrite4 } from './l4-rewrite.ts';

/** Selection algorithms (Cilium bpf-lb-algorithm). */
export const LB_ALG = { RANDOM: 0, MAGLEV: 1 } as const;

/** Per-service Maglev state: the table of backend IDs, by rev_nat_index. */
export interface MaglevEntry {
  table: Uint32Array;
  /** HASH_INIT4_SEED of the configured Maglev seed. */
  seed4: number;
}

/** The IPv4 load balancer: maps, Maglev tables and per-stage scratch. */
export class Lb4 {
  /** Algorithm per rev_nat_index (absent: random). */
  readonly algorithm: Uint8Array = new Uint8Array(65536);
  /** Forwarding mode per rev_nat_index (nodeport.ts FWD_MODE; 0: the node's mode). */
  readonly fwdMode: Uint8Array = new Uint8Array(65536);
  /** Maglev tables per rev_nat_index. */
  readonly maglev: (MaglevEntry | undefined)[] = [];
  /** rev_nat_index of the service the last local() call handled. */
  revNatIndex = 0;
  /** Backend ID the last successful local() call chose (debug events). */
  backendId = 0;
  /** Source of randomness for the random algorithm (tests may replace it). */
  rand: () => number = () => (Math.random() * 0x100000000) >>> 0;
  private readonly key = new Uint8Array(SVC_KEY.SIZE);
  private readonly beKey = new Uint8Array(4);
  private readonly affKey = new Uint8Array(AFF_KEY.SIZE);
  private readonly srKey = new Uint8Array(SRC_RANGE_KEY.SIZE);
  private readonly t = new Uint8Array(CT4.SIZE);
  private readonly st = new CtState();

  constructor(
    readonly maps: LbMaps,
    private readonly ct: Conntrack,
  ) {}

  /** Frontend lookup (slot 0, scope external); the service value's slot or -1. */
  lookupService(vip: number, dport: number): number {
    svcKey4(this.key, vip, dport, 0, 0, LB_SCOPE.EXT);
    return this.maps.services.lookup(this.key, 0);
  }

  /** Is `client` (u32) inside one of service `revNat`'s source ranges? */
  sourceRangeOk(revNat: number, client: number): boolean {
    srcRangeKey4(this.srKey, revNat, client, 32);
    return this.maps.sourceRange.lookup(this.srKey, 0) >= 0;
  }

  /** Backend map slot of backend `id`, or -1. */
  backend(id: number): number {
    backendKey(this.beKey, id);
    return this.maps.backends.lookup(this.beKey, 0);
  }

  /**
   * The backend ID for a new connection to the service at `svcSlot`, or 0
   * when it has no active backend. With session affinity the client's last
   * backend is reused while it is active and the client came back within
   * the service's timeout (lb4_affinity_backend_id_by_addr).
   */
  private select(svcSlot: number, vip: number, dport: number, client: number, clientPort: number, proto: number, now: number): number {
    const sv = this.maps.services.view;
    const so = svcSlot * SVC_VAL.SIZE;
    const count = sv.getUint16(so + SVC_VAL.COUNT, true);
    if (count === 0) return 0;
    const revNat = sv.getUint16(so + SVC_VAL.REV_NAT, true);
    if ((this.maps.services.values[so + SVC_VAL.FLAGS]! & SVC_F.AFFINITY) === 0) return this.pick(revNat, count, vip, dport, client, clientPort, proto);
    const timeout = sv.getUint32(so + SVC_VAL.AFFINITY_TIMEOUT, true);
    const k = this.affKey;
    set32(k, AFF_KEY.CLIENT, client);
    k[4] = revNat & 0xff;
    k[5] = revNat >>> 8;
    const aff = this.maps.affinity;
    let slot = aff.lookup(k, 0);
    if (slot >= 0) {
      const last = aff.view.getUint32(slot * AFF_VAL.SIZE + AFF_VAL.LAST_USED, true);
      const id = aff.view.getUint32(slot * AFF_VAL.SIZE + AFF_VAL.BACKEND_ID, true);
      const be = this.backend(id);
      if (last + timeout > now && be >= 0 && this.maps.backends.values[be * BE_VAL.SIZE + BE_VAL.FLAGS] === BE_STATE.ACTIVE) {
        aff.view.setUint32(slot * AFF_VAL.SIZE + AFF_VAL.LAST_USED, now, true);
        return id;
      }
    }
    const id = this.pick(revNat, count, vip, dport, client, clientPort, proto);
    if (id === 0) return 0;
    slot = aff.update(k, 0, undefined, 0, BPF_ANY);
    if (slot >= 0) {
      aff.view.setUint32(slot * AFF_VAL.SIZE + AFF_VAL.LAST_USED, now, true);
      aff.view.setUint32(slot * AFF_VAL.SIZE + AFF_VAL.BACKEND_ID, id, true);
    }
    return id;
  }

  /** Random or Maglev choice among the service's `count` active backends. */
  private pick(revNat: number, count: number, vip: number, dport: number, client: number, clientPort: number, proto: number): number {
    if (this.algorithm[revNat] === LB_ALG.MAGLEV) {
      const m = this.maglev[revNat];
      if (m !== undefined) {
        const h = maglevFlowHash4Host(client, clientPort, dport, proto, m.seed4);
        return m.table[h % m.table.length]!;
      }
    }
    // Cilium's random selection: slot = prandom % count + 1.
    svcKey4(this.key, vip, dport, (this.rand() % count) + 1, 0, LB_SCOPE.EXT);
    const s = this.maps.services.lookup(this.key, 0);
    return s < 0 ? 0 : this.maps.services.view.getUint32(s * SVC_VAL.SIZE + SVC_VAL.BACKEND_ID, true);
  }

  /**
   * lb4_local: pin the connection of the frame bound in `ip4` (TCP or UDP,
   * L4 header at l4Off) to a backend through its CT_SERVICE entry. Returns
   * the backend's map slot, DROP.NO_SERVICE when the service has no
   * backend, or another DROP code. Sets revNatIndex.
   */
  local(b: FrameBatch, i: number, ip4: Ipv4View, l4Off: number, tcpFlags: number, now: number, svcSlot: number): number {
    const buf = b.buf;
    const so = svcSlot * SVC_VAL.SIZE;
    const sv = this.maps.services.view;
    this.revNatIndex = sv.getUint16(so + SVC_VAL.REV_NAT, true);
    const t = this.t;
    const vip = ip4.dst();
    const client = ip4.src();
    const proto = ip4.protocol();
    const clientPort = get16(buf, l4Off);
    const dport = get16(buf, l4Off + 2);
    // Service tuple in packet layout (the lookup sets TUPLE_F_SERVICE).
    const r = ctTuple4Fill(t, buf, ip4.o, l4Off, ip4.o + ip4.totalLen() - l4Off);
    if (r < 0) return r;
    const st = this.st;
    const ret = ctLookup4(this.ct, t, CT_SERVICE, tcpFlags, b.len[i]!, now, st);
    if (ret < 0) return ret;
    if (ret !== CT_NEW) {
      const be = this.backend(st.backendId);
      const syn = proto === IPPROTO_TCP && (tcpFlags & TCP_FLAG_SYN) !== 0;
      this.backendId = st.backendId;
      if (be >= 0 && (this.maps.backends.values[be * BE_VAL.SIZE + BE_VAL.FLAGS] === BE_STATE.ACTIVE || !syn)) return be;
      // Backend gone, or a new SYN towards a draining one: select again and re-pin.
      const id = this.select(svcSlot, vip, dport, client, clientPort, proto, now);
      if (id === 0) return DROP.NO_SERVICE;
      if (st.map !== null && st.slot >= 0) st.map.view.setUint32(st.slot * st.map.valueSize + CT_ENTRY.BACKEND_ID, id, true);
      this.backendId = id;
      const nb = this.backend(id);
      return nb < 0 ? DROP.NO_SERVICE : nb;
    }
    const id = this.select(svcSlot, vip, dport, client, clientPort, proto, now);
    if (id === 0) return DROP.NO_SERVICE;
    const be = this.backend(id);
    if (be < 0) return DROP.NO_SERVICE;
    st.reset();
    st.backendId = this.backendId = id;
    st.revNat = this.revNatIndex;
    const c = ctCreate4(this.ct, t, CT_SERVICE, tcpFlags, b.len[i]!, now, st);
    return c < 0 ? c : be;
  }

  /** lb4_xlate: DNAT the frame to the backend at map slot `beSlot`. */
  dnat(b: FrameBatch, i: number, ip4: Ipv4View, l4Off: number, proto: number, beSlot: number): void {
    const v = this.maps.backends.values;
    const o = beSlot * BE_VAL.SIZE;
    rewrite4(b, i, ip4, l4Off, proto, true, get32(v, o + BE_VAL.ADDRESS), get16(v, o + BE_VAL.PORT));
  }

  /** lb4_rev_nat: restore the frontend as source of a reply (rev_nat_index from its CT entry). */
  revNat(b: FrameBatch, i: number, ip4: Ipv4View, l4Off: number, proto: number, revNat: number): boolean {
    revNatKey(this.beKey, revNat);
    const s = this.maps.revNat.lookup(this.beKey, 0);
    if (s < 0) return false;
    const v = this.maps.revNat.values;
    const o = s * RNAT_VAL.SIZE;
    rewrite4(b, i, ip4, l4Off, proto, false, get32(v, o + RNAT_VAL.ADDRESS), get16(v, o + RNAT_VAL.PORT));
    return true;
  }
}

/**
 * Service table writer: turns a service (frontend + backends) into the
 * entries of cilium_lb4_services_v2 / backends_v3 / reverse_nat and, for
 * Maglev services, a freshly built lookup table swapped in whole (Cilium's
 * pkg/service → lbmap). Control path only; the packet path reads the maps.
 *
 * API:
 *   new ServiceWriter(lb)
 *   w.upsert(spec)     write or rewrite one service (frontend slot 0, backend slots 1..count)
 *   w.delete(revNat)   remove it
 *
 * Backends in state terminating or maintenance, and weight-0 backends, stay
 * in the backend map (connections pinned to them keep flowing: draining) but
 * get no service slot and no Maglev slot, so new connections avoid them.
 */
import { BPF_ANY } from '../maps/map.ts';
import { BE_STATE, BE_VAL, LB_SCOPE, RNAT_VAL, SRC_RANGE_KEY, SVC_VAL, backendKey, revNatKey, srcRangeKey4, svcKey4 } from './lib/lb-map.ts';
import { set16, set32 } from '../wire/bytes.ts';
import { LB_ALG, type Lb4 } from './lib/lb.ts';
import { generateRing, DEFAULT_TABLE_SIZE, MAGLEV_PRIMES, checkTableSize } from './lib/maglev.ts';

/** A backend as the writer needs it. */
export interface BackendSpec {
  /** Backend ID (cluster-unique per address/port/protocol; 0 is never used). */
  id: number;
  /** IPv4 address as u32. */
  ip: number;
  port: number;
  weight: number;
  state: keyof typeof BE_STATE_BY_NAME;
  /** Maglev name (Cilium's Backend.String()). */
  name: string;
}

/** A service frontend with its backends. */
export interface ServiceSpec {
  /** rev_nat_index, also the service ID. */
  revNat: number;
  /** Frontend IPv4 as u32 and port. */
  vip: number;
  port: number;
  /** SVC_F_* flags (type, local scope, affinity…). */
  flags: number;
  /** SVC_F2_* flags (internal local scope…). */
  flags2?: number;
  /** Session affinity timeout in seconds (with SVC_F.AFFINITY). */
  affinityTimeout?: number;
  algorithm: 'random' | 'maglev';
  backends: BackendSpec[];
  /** A Maglev table built elsewhere (the agent builds it off the datapath thread). */
  maglevTable?: Uint32Array;
  /** Forwarding mode of this service from outside (nodeport.ts FWD_MODE; default: the node's). */
  fwdMode?: number;
  /** loadBalancerSourceRanges as [network u32, prefix length] (with SVC_F.SOURCE_RANGE). */
  sourceRanges?: [number, number][];
  /** Maglev table size and seeds. */
  maglevM?: number;
  murmurSeed?: number;
  seed4?: number;
}

const BE_STATE_BY_NAME = { active: BE_STATE.ACTIVE, terminating: BE_STATE.TERMINATING, quarantined: BE_STATE.QUARANTINED, maintenance: BE_STATE.MAINTENANCE } as const;

/** Writes services into the LB maps. */
export class ServiceWriter {
  private readonly key = new Uint8Array(12);
  private readonly small = new Uint8Array(4);
  /** Backend slot counts and backend IDs written per service, to clean up on rewrite. */
  private readonly written = new Map<number, { vip: number; port: number; count: number; backends: number[]; ranges: [number, number][] }>();
  private readonly srKey = new Uint8Array(SRC_RANGE_KEY.SIZE);

  constructor(private readonly lb: Lb4) {}

  /** Write or rewrite a service. */
  upsert(s: ServiceSpec): void {
    const m = this.lb.maps;
    for (const be of s.backends) {
      const k = this.beKey(be.id);
      const slot = m.backends.update(k, 0, undefined, 0, BPF_ANY);
      if (slot < 0) throw new Error(`cilium_lb4_backends_v3: update failed (${slot})`);
      const v = m.backends.values;
      const o = slot * BE_VAL.SIZE;
      v.fill(0, o, o + BE_VAL.SIZE);
      set32(v, o + BE_VAL.ADDRESS, be.ip);
      set16(v, o + BE_VAL.PORT, be.port);
      v[o + BE_VAL.FLAGS] = BE_STATE_BY_NAME[be.state];
    }
    const active = s.backends.filter((b) => b.state === 'active' && b.weight > 0);
    // Backend slots first, then the frontend, so a reader never sees a count past the slots.
    active.forEach((be, i) => {
      const slot = this.svcSlot(s.vip, s.port, i + 1);
      m.services.view.setUint32(slot * SVC_VAL.SIZE + SVC_VAL.BACKEND_ID, be.id, true);
      m.services.view.setUint16(slot * SVC_VAL.SIZE + SVC_VAL.REV_NAT, s.revNat, true);
    });
    const prev = this.written.get(s.revNat);
    if (prev) {
      for (let i = active.length + 1; i <= prev.count; i++) {
        svcKey4(this.key, prev.vip, prev.port, i, 0, LB_SCOPE.EXT);
        m.services.delete(this.key, 0);
      }
      if (prev.vip !== s.vip || prev.port !== s.port) this.deleteSlots(prev.vip, prev.port, 0, Math.min(prev.count, active.length));
    }
    if (s.algorithm === 'maglev') {
      const table = s.maglevTable ?? maglevTableFor(active, s.maglevM ?? DEFAULT_TABLE_SIZE, s.murmurSeed);
      if (!MAGLEV_PRIMES.includes(table.length)) throw new RangeError(`maglevTable: ${table.length} entries is not a Maglev table size`);
      this.lb.maglev[s.revNat] = { table, seed4: s.seed4 ?? 0 };
      this.lb.algorithm[s.revNat] = LB_ALG.MAGLEV;
    } else {
      this.lb.maglev[s.revNat] = undefined;
      this.lb.algorithm[s.revNat] = LB_ALG.RANDOM;
    }
    // Source ranges before the frontend that asks for them; stale ones after.
    const ranges = s.sourceRanges ?? [];
    for (const [ip, len] of ranges) {
      srcRangeKey4(this.srKey, s.revNat, ip, len);
      if (m.sourceRange.update(this.srKey, 0, undefined, 0, BPF_ANY) < 0) throw new Error('cilium_lb4_source_range: update failed (map full)');
    }
    this.lb.fwdMode[s.revNat] = s.fwdMode ?? 0;
    const f = this.svcSlot(s.vip, s.port, 0);
    const sv = m.services.view;
    const fo = f * SVC_VAL.SIZE;
    sv.setUint32(fo + SVC_VAL.AFFINITY_TIMEOUT, s.affinityTimeout ?? 0, true);
    sv.setUint16(fo + SVC_VAL.COUNT, active.length, true);
    sv.setUint16(fo + SVC_VAL.REV_NAT, s.revNat, true);
    m.services.values[fo + SVC_VAL.FLAGS] = s.flags & 0xff;
    m.services.values[fo + SVC_VAL.FLAGS2] = (s.flags2 ?? 0) & 0xff;
    const rk = this.revKey(s.revNat);
    const rs = m.revNat.update(rk, 0, undefined, 0, BPF_ANY);
    if (rs < 0) throw new Error(`cilium_lb4_reverse_nat: update failed (${rs})`);
    set32(m.revNat.values, rs * RNAT_VAL.SIZE + RNAT_VAL.ADDRESS, s.vip);
    set16(m.revNat.values, rs * RNAT_VAL.SIZE + RNAT_VAL.PORT, s.port);
    for (const [ip, len] of prev?.ranges ?? []) if (!ranges.some(([a, l]) => a === ip && l === len)) this.deleteRange(s.revNat, ip, len);
    this.written.set(s.revNat, { vip: s.vip, port: s.port, count: active.length, backends: s.backends.map((b) => b.id), ranges });
  }

  private deleteRange(revNat: number, ip: number, len: number): void {
    srcRangeKey4(this.srKey, revNat, ip, len);
    this.lb.maps.sourceRange.delete(this.srKey, 0);
  }

  /** Remove a service's frontend, slots, reverse-NAT entry and Maglev table. Backends stay for draining connections. */
  delete(revNat: number): boolean {
    const prev = this.written.get(revNat);
    if (!prev) return false;
    this.deleteSlots(prev.vip, prev.port, 0, prev.count);
    for (const [ip, len] of prev.ranges) this.deleteRange(revNat, ip, len);
    this.lb.maps.revNat.delete(this.revKey(revNat), 0);
    this.lb.maglev[revNat] = undefined;
    this.written.delete(revNat);
    return true;
  }

  private deleteSlots(vip: number, port: number, from: number, to: number): void {
    for (let i = from; i <= to; i++) {
      svcKey4(this.key, vip, port, i, 0, LB_SCOPE.EXT);
      this.lb.maps.services.delete(this.key, 0);
    }
  }

  private svcSlot(vip: number, port: number, slot: number): number {
    svcKey4(this.key, vip, port, slot, 0, LB_SCOPE.EXT);
    const s = this.lb.maps.services.update(this.key, 0, undefined, 0, BPF_ANY);
    if (s < 0) throw new Error(`cilium_lb4_services_v2: update failed (${s})`);
    return s;
  }

  private beKey(id: number): Uint8Array {
    backendKey(this.small, id);
    return this.small;
  }

  private revKey(revNat: number): Uint8Array {
    revNatKey(this.small, revNat);
    return this.small;
  }
}

/** The Maglev table for a service's active backends (Cilium orders them by name inside). */
export function maglevTableFor(active: readonly Pick<BackendSpec, 'id' | 'name' | 'weight'>[], m: number, murmurSeed?: number): Uint32Array {
  return generateRing(active.map((b) => ({ id: b.id, name: b.name, weight: b.weight })), checkTableSize(m), murmurSeed);
}

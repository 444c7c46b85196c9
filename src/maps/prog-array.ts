/**
 * ProgArray: BPF_MAP_TYPE_PROG_ARRAY, the tail-call table.
 *
 * API: new ProgArray<P>({ name?, maxEntries }); get(id), set(id, prog),
 * delete(id), has(id), iterate(cb), clear(), count, stats, maxEntries.
 *
 * Kernel counterpart: kernel/bpf/arraymap.c (prog_array_map_*) and the
 * bpf_tail_call() helper. A tail call to an empty slot or an id beyond
 * maxEntries does not jump; the caller falls through, which is how Cilium
 * ends up at DROP_MISSED_TAIL_CALL (bpf/lib/tailcall.h): `get()` returns
 * undefined and the engine reports that drop.
 *
 * Several ids may hold the same program (Cilium aliases CILIUM_CALL_*_FROM_NETDEV
 * and _FROM_OVERLAY to the _FROM_LXC program); nothing here de-duplicates.
 * Values are JS objects, not bytes, so this map is not a BpfMap and cannot be
 * shared between threads.
 */

import { E2BIG, EINVAL, ENOENT, MapStats, type MapType } from './map.ts';

/** ProgArray options. */
export interface ProgArrayOptions {
  /** Map name; defaults to "prog_array". */
  name?: string;
  /** Number of tail-call ids (0 .. maxEntries - 1). */
  maxEntries: number;
}

/** Tail-call id → program table (BPF_MAP_TYPE_PROG_ARRAY). */
export class ProgArray<P> {
  /** BPF map type. */
  readonly type: MapType = 'prog_array';
  /** Map name. */
  readonly name: string;
  /** Number of ids. */
  readonly maxEntries: number;
  /** lookups = get() calls, hits = jumps taken, misses = missed tail calls. */
  readonly stats = new MapStats();
  private readonly progs: (P | undefined)[];
  private n = 0;

  constructor(opts: ProgArrayOptions) {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 1) throw new RangeError(`ProgArray ${opts.name ?? ''}: bad maxEntries`);
    this.name = opts.name ?? this.type;
    this.maxEntries = opts.maxEntries;
    this.progs = new Array<P | undefined>(opts.maxEntries).fill(undefined);
  }

  /** Ids holding a program. */
  get count(): number {
    return this.n;
  }

  /** Program at `id`, or undefined (missed tail call) when empty or out of range. */
  get(id: number): P | undefined {
    this.stats.lookups++;
    const p = id >>> 0 === id && id < this.maxEntries ? this.progs[id] : undefined;
    if (p === undefined) this.stats.misses++;
    else this.stats.hits++;
    return p;
  }

  /** Whether `id` holds a program (no stats). */
  has(id: number): boolean {
    return id >>> 0 === id && id < this.maxEntries && this.progs[id] !== undefined;
  }

  /** Install `prog` at `id`, replacing any previous one; 0, E2BIG (id out of range) or EINVAL (undefined prog). */
  set(id: number, prog: P): number {
    if (id >>> 0 !== id || id >= this.maxEntries) return E2BIG;
    if (prog === undefined) return EINVAL;
    if (this.progs[id] === undefined) this.n++;
    this.progs[id] = prog;
    this.stats.updates++;
    return 0;
  }

  /** Empty slot `id`; 0, ENOENT (already empty) or E2BIG (out of range). */
  delete(id: number): number {
    if (id >>> 0 !== id || id >= this.maxEntries) return E2BIG;
    if (this.progs[id] === undefined) return ENOENT;
    this.progs[id] = undefined;
    this.n--;
    this.stats.deletes++;
    return 0;
  }

  /** Visit occupied ids in order; return false from cb to stop. */
  iterate(cb: (id: number, prog: P) => boolean | void): void {
    for (let id = 0; id < this.maxEntries; id++) {
      const p = this.progs[id];
      if (p !== undefined && cb(id, p) === false) return;
    }
  }

  /** Empty every slot. */
  clear(): void {
    this.progs.fill(undefined);
    this.n = 0;
  }
}

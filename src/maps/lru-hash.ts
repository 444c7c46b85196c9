/**
 * LruHashMap: BPF_MAP_TYPE_LRU_HASH. Conntrack (cilium_ct4_global, 524288
 * entries; cilium_ct_any4_global, 262144) and SNAT maps sit on this.
 *
 * API: new LruHashMap({ name?, keySize, valueSize, maxEntries, shared?, seed? }),
 * LruHashMap.attach(descriptor); lookup (touches), peek (does not), update
 * (touches; evicts when full), delete, iterate, clear, oldest, newest,
 * olderThan, plus everything HashMap has.
 *
 * Kernel counterpart: kernel/bpf/hashtab.c (htab_lru_map_*) over
 * kernel/bpf/bpf_lru_list.c.
 *
 * Semantics kept: inserting into a full map never fails for lack of room,
 * it recycles the least recently used entry (counted in stats.evictions);
 * BPF_NOEXIST / BPF_EXIST still give EEXIST / ENOENT; lookup and update
 * mark the entry as used.
 *
 * Exact, not approximate: the kernel's LRU is approximate on purpose (per-CPU
 * free lists, a reference bit set on lookup, active/inactive lists rotated in
 * batches), which means it may evict a recently used entry or evict before
 * the map is full. One writer thread needs none of that, so this keeps an
 * exact intrusive doubly-linked list (prev/next Int32Arrays indexed by slot):
 * every operation stays O(1), and a lookup hit costs at most six int32
 * stores. Datapath code must not depend on exact order (Cilium's doesn't):
 * it only relies on "full map still accepts new flows".
 *
 * Memory per entry: keySize + valueSize + 8 (prev/next) + 4 (slot link)
 * + 8 * capacity / maxEntries (Robin Hood buckets: 10.7 to 21.3 bytes
 * depending on power-of-two rounding; 16 at 524288). Cilium's TCP CT map
 * (524288 x 14-byte tuple + 56-byte ct_entry): 98 B/entry, 49 MiB.
 */

import { HashMap } from './hash.ts';
import { M_USER } from './hash-core.ts';
import {
  BPF_ANY, BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT,
  copyBytes, zeroBytes,
  type MapOptions, type MapType, type SharedMapDescriptor,
} from './map.ts';

/** meta index: most recently used slot (-1 = empty list). */
const M_HEAD = M_USER;
/** meta index: least recently used slot (-1 = empty list). */
const M_TAIL = M_USER + 1;

/** A fixed-capacity hash map that recycles its least recently used entry when full. */
export class LruHashMap extends HashMap {
  /** Towards the more recently used neighbour, by slot (-1 = none). */
  private readonly prev: Int32Array;
  /** Towards the less recently used neighbour, by slot (-1 = none). */
  private readonly next: Int32Array;

  constructor(opts: MapOptions, attach?: SharedMapDescriptor) {
    super(opts, attach);
    this.prev = this.mem.i32('prev', opts.maxEntries);
    this.next = this.mem.i32('next', opts.maxEntries);
    if (attach === undefined) this.core.meta[M_HEAD] = this.core.meta[M_TAIL] = -1;
  }

  /** BPF map type. */
  override get type(): MapType {
    return 'lru_hash';
  }

  /** Map over the shared storage of an LRU map created elsewhere with `{ shared: true }` (read side). */
  static override attach(desc: SharedMapDescriptor): LruHashMap {
    if (desc.type !== 'lru_hash') throw new TypeError(`attach: ${desc.name} is a ${desc.type} map`);
    return new LruHashMap(desc, desc);
  }

  /** Find the key and mark it most recently used; returns its slot or -1. */
  override lookup(key: Uint8Array, off: number): number {
    const core = this.core;
    const b = core.findBucket(key, off, core.hash(key, off, this.keySize));
    this.stats.lookups++;
    if (b < 0) {
      this.stats.misses++;
      return -1;
    }
    this.stats.hits++;
    const slot = core.slotAt(b);
    if (core.meta[M_HEAD] !== slot) {
      this.unlink(slot);
      this.pushHead(slot);
    }
    return slot;
  }

  /**
   * Insert or overwrite and mark most recently used; returns the slot, or
   * EINVAL / EEXIST / ENOENT. A full map evicts its least recently used entry.
   */
  override update(key: Uint8Array, off: number, value?: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return EINVAL;
    const vs = this.valueSize;
    if (value !== undefined && valueOff + vs > value.length) return EINVAL;
    const core = this.core, ks = this.keySize;
    const h = core.hash(key, off, ks);
    const b = core.findBucket(key, off, h);
    let slot: number;
    if (b >= 0) {
      if (flags === BPF_NOEXIST) return EEXIST;
      slot = core.slotAt(b);
      if (core.meta[M_HEAD] !== slot) {
        this.unlink(slot);
        this.pushHead(slot);
      }
      if (value !== undefined) copyBytes(this.values, slot * vs, value, valueOff, vs);
    } else {
      if (flags === BPF_EXIST) return ENOENT;
      if (core.count >= this.maxEntries) {
        const victim = core.meta[M_TAIL]!;
        this.unlink(victim);
        core.removeSlot(victim, core.hash(core.keys, victim * ks, ks));
        this.stats.evictions++;
      }
      slot = core.insert(key, off, h);
      this.pushHead(slot);
      if (value !== undefined) copyBytes(this.values, slot * vs, value, valueOff, vs);
      else zeroBytes(this.values, slot * vs, vs);
    }
    this.stats.updates++;
    return slot;
  }

  /** Remove the key; 0 or ENOENT. Safe on the entry being visited by iterate(). */
  override delete(key: Uint8Array, off: number): number {
    const core = this.core;
    const b = core.findBucket(key, off, core.hash(key, off, this.keySize));
    if (b < 0) return ENOENT;
    this.unlink(core.slotAt(b));
    core.removeBucket(b);
    this.stats.deletes++;
    return 0;
  }

  /** Remove every entry. */
  override clear(): void {
    super.clear();
    this.core.meta[M_HEAD] = this.core.meta[M_TAIL] = -1;
  }

  /** Slot of the least recently used entry (next to be evicted), or -1. */
  oldest(): number {
    return this.core.meta[M_TAIL]!;
  }

  /** Slot of the most recently used entry, or -1. */
  newest(): number {
    return this.core.meta[M_HEAD]!;
  }

  /** The next less recently used slot after `slot`, or -1: walk newest() → olderThan() → … */
  olderThan(slot: number): number {
    return this.next[slot]!;
  }

  private unlink(s: number): void {
    const prev = this.prev, next = this.next, meta = this.core.meta;
    const p = prev[s]!, n = next[s]!;
    if (p >= 0) next[p] = n;
    else meta[M_HEAD] = n;
    if (n >= 0) prev[n] = p;
    else meta[M_TAIL] = p;
  }

  private pushHead(s: number): void {
    const prev = this.prev, next = this.next, meta = this.core.meta;
    const h = meta[M_HEAD]!;
    prev[s] = -1;
    next[s] = h;
    if (h >= 0) prev[h] = s;
    else meta[M_TAIL] = s;
    meta[M_HEAD] = s;
  }
}

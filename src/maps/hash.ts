/**
 * HashMap: BPF_MAP_TYPE_HASH with preallocated storage.
 *
 * API: new HashMap({ name?, keySize, valueSize, maxEntries, shared?, seed? }),
 * HashMap.attach(descriptor); lookup, peek, update, delete, iterate, clear,
 * keys, describe, count, capacity, stats, values, view, byteSize.
 *
 * Kernel counterpart: kernel/bpf/hashtab.c (htab_map_update_elem and
 * friends). Semantics kept: update flags ANY/NOEXIST/EXIST, a full map
 * refuses new keys with -E2BIG, delete of a missing key is -ENOENT.
 * Difference: an overwrite updates the value in place (the kernel swaps in a
 * fresh element), so a slot stays valid for as long as its key is present.
 *
 * The table itself (Robin Hood probing, backward-shift deletion, murmur3)
 * is in hash-core.ts, shared with LruHashMap and LpmTrieMap.
 */

import { HashCore, randomSeed } from './hash-core.ts';
import {
  BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT,
  MapMemory, MapStats, checkMapOptions, copyBytes, zeroBytes,
  type BpfMap, type IterateFn, type MapOptions, type MapType, type SharedMapDescriptor,
} from './map.ts';

/** A fixed-capacity hash map with byte keys and in-place values (BPF_MAP_TYPE_HASH). */
export class HashMap implements BpfMap {
  /** BPF map type (a getter, so subclasses' names default correctly during construction). */
  get type(): MapType {
    return 'hash';
  }
  /** Map name. */
  readonly name: string;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** Capacity. */
  readonly maxEntries: number;
  /** Values, valueSize bytes per slot. */
  readonly values: Uint8Array;
  /** DataView over values. */
  readonly view: DataView;
  /** Operation counters. */
  readonly stats = new MapStats();
  /** The open-addressing index and slot storage. */
  protected readonly core: HashCore;
  /** Storage allocator (knows whether buffers are shared). */
  protected readonly mem: MapMemory;

  constructor(opts: MapOptions, attach?: SharedMapDescriptor) {
    checkMapOptions(opts, 'HashMap');
    this.name = opts.name ?? this.type;
    this.keySize = opts.keySize;
    this.valueSize = opts.valueSize;
    this.maxEntries = opts.maxEntries;
    this.mem = new MapMemory(opts.shared === true || attach !== undefined, attach);
    this.core = new HashCore(opts.keySize, opts.valueSize, opts.maxEntries, opts.seed ?? randomSeed(), this.mem);
    this.values = this.core.values;
    this.view = this.core.view;
  }

  /** Map over the shared storage of a map created elsewhere with `{ shared: true }` (read side). */
  static attach(desc: SharedMapDescriptor): HashMap {
    if (desc.type !== 'hash') throw new TypeError(`attach: ${desc.name} is a ${desc.type} map`);
    return new HashMap(desc, desc);
  }

  /** Entries present. */
  get count(): number {
    return this.core.count;
  }

  /** Stored keys, keySize bytes per slot (the key of slot s is at s * keySize). */
  get keys(): Uint8Array {
    return this.core.keys;
  }

  /** Bytes of typed-array storage. */
  get byteSize(): number {
    return this.mem.byteSize;
  }

  /** Bucket count of the index (power of two, >= maxEntries / 0.75). */
  get capacity(): number {
    return this.core.capacity;
  }

  /** Find the key; returns its slot or -1. */
  lookup(key: Uint8Array, off: number): number {
    const core = this.core;
    const b = core.findBucket(key, off, core.hash(key, off, this.keySize));
    this.stats.lookups++;
    if (b < 0) {
      this.stats.misses++;
      return -1;
    }
    this.stats.hits++;
    return core.slotAt(b);
  }

  /** Like lookup but without counting or (for LRU) touching: the control-path read. */
  peek(key: Uint8Array, off: number): number {
    const core = this.core;
    const b = core.findBucket(key, off, core.hash(key, off, this.keySize));
    return b < 0 ? -1 : core.slotAt(b);
  }

  /** Insert or overwrite; returns the slot, or EINVAL / EEXIST / ENOENT / E2BIG. */
  update(key: Uint8Array, off: number, value?: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return EINVAL;
    const vs = this.valueSize;
    if (value !== undefined && valueOff + vs > value.length) return EINVAL;
    const core = this.core;
    const h = core.hash(key, off, this.keySize);
    const b = core.findBucket(key, off, h);
    let slot: number;
    if (b >= 0) {
      if (flags === BPF_NOEXIST) return EEXIST;
      slot = core.slotAt(b);
      if (value !== undefined) copyBytes(this.values, slot * vs, value, valueOff, vs);
    } else {
      if (flags === BPF_EXIST) return ENOENT;
      slot = core.insert(key, off, h);
      if (slot < 0) return E2BIG;
      if (value !== undefined) copyBytes(this.values, slot * vs, value, valueOff, vs);
      else zeroBytes(this.values, slot * vs, vs);
    }
    this.stats.updates++;
    return slot;
  }

  /** Remove the key; 0 or ENOENT. Safe on the entry being visited by iterate(). */
  delete(key: Uint8Array, off: number): number {
    const core = this.core;
    const b = core.findBucket(key, off, core.hash(key, off, this.keySize));
    if (b < 0) return ENOENT;
    core.removeBucket(b);
    this.stats.deletes++;
    return 0;
  }

  /** Visit entries in slot order; return false from cb to stop. Deleting the visited entry is safe. */
  iterate(cb: IterateFn): void {
    this.core.iterate(cb);
  }

  /** Remove every entry. */
  clear(): void {
    this.core.clear();
  }

  /** Descriptor for attach() in another thread (needs `{ shared: true }`). */
  describe(): SharedMapDescriptor {
    return this.mem.describe(this.type, this.name, this.keySize, this.valueSize, this.maxEntries, this.core.seed);
  }
}

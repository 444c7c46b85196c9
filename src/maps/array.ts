/**
 * ArrayMap: BPF_MAP_TYPE_ARRAY. Index key (u32, host order = little-endian),
 * fixed size, every slot always exists (zeroed at creation), no delete.
 *
 * API: new ArrayMap({ name?, valueSize, maxEntries, shared? }) (keySize is
 * always 4), ArrayMap.attach(descriptor); lookup(key, off), slotOf(index),
 * update, delete (EINVAL), iterate, clear (zeroes values), describe,
 * count, stats, values, view, byteSize.
 *
 * Kernel counterpart: kernel/bpf/arraymap.c. Semantics kept: lookup of an
 * index >= maxEntries is a miss; update of such an index is -E2BIG;
 * BPF_NOEXIST is always -EEXIST (every element exists); delete is -EINVAL.
 * The slot of index i is i, so the packet path can skip lookup() entirely
 * and use slotOf(i) or `i * valueSize` directly after its own bounds check.
 */

import {
  BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL,
  MapMemory, MapStats, checkMapOptions, copyBytes,
  type BpfMap, type IterateFn, type MapType, type SharedMapDescriptor,
} from './map.ts';

/** ArrayMap options: like MapOptions, but the key is always a u32 index. */
export interface ArrayMapOptions {
  /** Map name; defaults to "array". */
  name?: string;
  /** Value size in bytes. */
  valueSize: number;
  /** Number of elements. */
  maxEntries: number;
  /** Allocate values on SharedArrayBuffer so other threads can attach(). */
  shared?: boolean;
}

/** Key size of every array map: one u32 index. */
export const ARRAY_KEY_SIZE = 4;

/** A fixed array of values indexed by a u32 key (BPF_MAP_TYPE_ARRAY). */
export class ArrayMap implements BpfMap {
  /** Map name. */
  readonly name: string;
  /** Key size in bytes: always 4. */
  readonly keySize = ARRAY_KEY_SIZE;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** Number of elements. */
  readonly maxEntries: number;
  /** Values, valueSize bytes per index. */
  readonly values: Uint8Array;
  /** DataView over values. */
  readonly view: DataView;
  /** Operation counters. */
  readonly stats = new MapStats();
  private readonly mem: MapMemory;
  /** Key handed to iterate() callbacks. */
  private readonly iterKey = new Uint8Array(ARRAY_KEY_SIZE);

  constructor(opts: ArrayMapOptions, attach?: SharedMapDescriptor) {
    checkMapOptions({ ...opts, keySize: ARRAY_KEY_SIZE }, 'ArrayMap');
    this.name = opts.name ?? this.type;
    this.valueSize = opts.valueSize;
    this.maxEntries = opts.maxEntries;
    this.mem = new MapMemory(opts.shared === true || attach !== undefined, attach);
    this.values = this.mem.u8('values', opts.maxEntries * opts.valueSize);
    this.view = new DataView(this.values.buffer, this.values.byteOffset, this.values.byteLength);
  }

  /** BPF map type. */
  get type(): MapType {
    return 'array';
  }

  /** Map over the shared storage of an array created elsewhere with `{ shared: true }` (read side). */
  static attach(desc: SharedMapDescriptor): ArrayMap {
    if (desc.type !== 'array') throw new TypeError(`attach: ${desc.name} is a ${desc.type} map`);
    return new ArrayMap(desc, desc);
  }

  /** Every element exists: always maxEntries. */
  get count(): number {
    return this.maxEntries;
  }

  /** Bytes of typed-array storage. */
  get byteSize(): number {
    return this.mem.byteSize;
  }

  /** Slot of the u32 index at `key[off]` (the index itself), or -1 when out of range. */
  lookup(key: Uint8Array, off: number): number {
    const i = (key[off]! | (key[off + 1]! << 8) | (key[off + 2]! << 16) | (key[off + 3]! << 24)) >>> 0;
    this.stats.lookups++;
    if (i >= this.maxEntries) {
      this.stats.misses++;
      return -1;
    }
    this.stats.hits++;
    return i;
  }

  /** Slot of a numeric index, or -1 when out of range (no key bytes needed). */
  slotOf(index: number): number {
    return index >>> 0 === index && index < this.maxEntries ? index : -1;
  }

  /** Overwrite element `key[off]` (u32); returns the slot, or EINVAL / EEXIST / E2BIG. */
  update(key: Uint8Array, off: number, value?: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return EINVAL;
    const vs = this.valueSize;
    if (value !== undefined && valueOff + vs > value.length) return EINVAL;
    const i = (key[off]! | (key[off + 1]! << 8) | (key[off + 2]! << 16) | (key[off + 3]! << 24)) >>> 0;
    if (i >= this.maxEntries) return E2BIG;
    if (flags === BPF_NOEXIST) return EEXIST;
    if (value !== undefined) copyBytes(this.values, i * vs, value, valueOff, vs);
    this.stats.updates++;
    return i;
  }

  /** Array elements cannot be deleted: always EINVAL. */
  delete(_key: Uint8Array, _off: number): number {
    return EINVAL;
  }

  /** Visit every index in order with a 4-byte LE key; return false from cb to stop. */
  iterate(cb: IterateFn): void {
    const k = this.iterKey;
    for (let i = 0; i < this.maxEntries; i++) {
      k[0] = i & 0xff;
      k[1] = (i >>> 8) & 0xff;
      k[2] = (i >>> 16) & 0xff;
      k[3] = i >>> 24;
      if (cb(k, 0, i) === false) return;
    }
  }

  /** Zero every element (elements themselves cannot go away). */
  clear(): void {
    this.values.fill(0);
  }

  /** Descriptor for attach() in another thread (needs `{ shared: true }`). */
  describe(): SharedMapDescriptor {
    return this.mem.describe(this.type, this.name, this.keySize, this.valueSize, this.maxEntries, 0);
  }
}

/**
 * The common contract of Tapestry's BPF-style maps.
 *
 * Every map stores fixed-size byte keys and fixed-size byte values in typed
 * arrays sized once, at construction, from `maxEntries` (BPF maps are
 * preallocated the same way). The packet path never allocates:
 *
 *   - a key is `(buf, off)`: the caller keeps one scratch key buffer and
 *     writes the fields at their layout offsets (see key-layout.ts);
 *   - `lookup` returns a *slot* (>= 0) or -1; the value lives in
 *     `map.values` at `slot * valueSize` (read/write it in place through
 *     `map.values` / `map.view`, like the value pointer bpf_map_lookup_elem
 *     returns);
 *   - `update` returns the slot or a negative errno-like code and never
 *     throws.
 *
 * API: BPF_ANY / BPF_NOEXIST / BPF_EXIST, ENOENT / E2BIG / EEXIST / EINVAL /
 * ENOSPC, BpfMap, MapType, MapOptions, MapStats, SharedMapDescriptor,
 * MapMemory (typed-array allocator, optionally on SharedArrayBuffer).
 *
 * Kernel counterpart: include/uapi/linux/bpf.h (BPF_MAP_TYPE_*, update flags).
 *
 * Threads: with `{ shared: true }` all storage sits on SharedArrayBuffers so
 * another thread can `attach()` and read a dump. Writers must be
 * single-threaded: nothing here is atomic, and a concurrent reader sees a
 * racy snapshot (like dumping a BPF map while the datapath runs).
 */

/** Update flag: create a new entry or overwrite an existing one. */
export const BPF_ANY = 0;
/** Update flag: create only; fail with EEXIST if the key exists. */
export const BPF_NOEXIST = 1;
/** Update flag: overwrite only; fail with ENOENT if the key is missing. */
export const BPF_EXIST = 2;

/** No such entry (delete/update-with-BPF_EXIST of a missing key). */
export const ENOENT = -2;
/** Map full (hash maps), or index out of range (array maps), as the kernel returns. */
export const E2BIG = -7;
/** Entry exists (update with BPF_NOEXIST). */
export const EEXIST = -17;
/** Invalid argument: bad flags, bad prefix length, operation unsupported by the map type. */
export const EINVAL = -22;
/** LPM trie full: the kernel's trie_update_elem returns -ENOSPC, not -E2BIG. */
export const ENOSPC = -28;

/** Map types, named after BPF_MAP_TYPE_* in lower case. */
export type MapType = 'hash' | 'lru_hash' | 'lpm_trie' | 'array' | 'prog_array';

/** Operation counters every map keeps (plain numbers; cheap to bump on the packet path). */
export class MapStats {
  /** lookup() calls. */
  lookups = 0;
  /** lookup() calls that found an entry. */
  hits = 0;
  /** lookup() calls that found nothing. */
  misses = 0;
  /** Successful update() calls (inserts and overwrites). */
  updates = 0;
  /** Successful delete() calls. */
  deletes = 0;
  /** Entries pushed out by LRU replacement. */
  evictions = 0;

  /** Zero every counter. */
  reset(): void {
    this.lookups = this.hits = this.misses = 0;
    this.updates = this.deletes = this.evictions = 0;
  }
}

/** Iteration callback: the key is `key[keyOff .. keyOff + keySize)`, the value is at `slot`. Return `false` to stop. */
export type IterateFn = (key: Uint8Array, keyOff: number, slot: number) => boolean | void;

/** What every byte-keyed map offers. */
export interface BpfMap {
  /** Map name (for dumps, metrics and errors), e.g. "cilium_ct4_global". */
  readonly name: string;
  /** BPF map type. */
  readonly type: MapType;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** Fixed capacity. */
  readonly maxEntries: number;
  /** Entries present now. */
  readonly count: number;
  /** All values, `valueSize` bytes per slot. */
  readonly values: Uint8Array;
  /** DataView over `values`, for multi-byte fields. */
  readonly view: DataView;
  /** Operation counters. */
  readonly stats: MapStats;
  /** Find `key[off .. off + keySize)`; returns its slot or -1. */
  lookup(key: Uint8Array, off: number): number;
  /**
   * Insert or overwrite; returns the slot or a negative code.
   * Without `value`, a new entry's value is zeroed and an existing one is
   * left as is, for the caller to fill in place.
   */
  update(key: Uint8Array, off: number, value?: Uint8Array, valueOff?: number, flags?: number): number;
  /** Remove the entry; 0 or a negative code. */
  delete(key: Uint8Array, off: number): number;
  /** Visit every entry; deleting the visited entry from the callback is safe. */
  iterate(cb: IterateFn): void;
  /** Remove every entry. */
  clear(): void;
  /** Bytes of typed-array storage this map holds (its whole preallocated footprint). */
  readonly byteSize: number;
}

/** Constructor options shared by the byte-keyed maps. */
export interface MapOptions {
  /** Map name; defaults to the map type. */
  name?: string;
  /** Key size in bytes. */
  keySize: number;
  /** Value size in bytes (0 allowed: a set). */
  valueSize: number;
  /** Capacity; storage is preallocated for exactly this many entries. */
  maxEntries: number;
  /** Allocate storage on SharedArrayBuffer so other threads can attach(). */
  shared?: boolean;
  /** Hash seed (hash-based maps); random per map when omitted, like the kernel's hashrnd. */
  seed?: number;
}

/** Everything another thread needs to attach to a shared map (structured-cloneable). */
export interface SharedMapDescriptor {
  /** Map type of the writer. */
  type: MapType;
  /** Map name. */
  name: string;
  /** Key size. */
  keySize: number;
  /** Value size. */
  valueSize: number;
  /** Capacity. */
  maxEntries: number;
  /** Hash seed in use. */
  seed: number;
  /** Named storage buffers. */
  buffers: Record<string, SharedArrayBuffer>;
}

/**
 * Allocates a map's typed arrays by name, on ArrayBuffer or SharedArrayBuffer,
 * or re-wraps the buffers of a descriptor when attaching to another thread's map.
 */
export class MapMemory {
  /** Every buffer allocated so far, by name. */
  readonly buffers: Record<string, ArrayBufferLike> = {};
  /** Total bytes allocated. */
  byteSize = 0;

  constructor(readonly shared: boolean, private readonly from?: SharedMapDescriptor) {}

  /** True when wrapping another map's buffers (do not initialise state). */
  get attached(): boolean {
    return this.from !== undefined;
  }

  private raw(name: string, bytes: number): ArrayBufferLike {
    let buf: ArrayBufferLike;
    if (this.from) {
      buf = this.from.buffers[name]!;
      if (!buf || buf.byteLength !== bytes) throw new Error(`attach: buffer "${name}" missing or wrong size`);
    } else {
      buf = this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    }
    this.buffers[name] = buf;
    this.byteSize += bytes;
    return buf;
  }

  /** A zeroed Uint8Array of `n` bytes. */
  u8(name: string, n: number): Uint8Array {
    return new Uint8Array(this.raw(name, n));
  }

  /** A zeroed Int32Array of `n` elements. */
  i32(name: string, n: number): Int32Array {
    return new Int32Array(this.raw(name, n * 4));
  }

  /** Build the descriptor for attach(); throws unless the storage is shared. */
  describe(type: MapType, name: string, keySize: number, valueSize: number, maxEntries: number, seed: number): SharedMapDescriptor {
    if (!this.shared) throw new Error(`map ${name}: describe() needs { shared: true }`);
    return { type, name, keySize, valueSize, maxEntries, seed, buffers: this.buffers as Record<string, SharedArrayBuffer> };
  }
}

/** Validate sizes common to all maps; throws (construction is control path). */
export function checkMapOptions(o: MapOptions, what: string): void {
  const ok = (n: number, min: number) => Number.isInteger(n) && n >= min && n <= 0x7fffffff;
  if (!ok(o.keySize, 1) || !ok(o.valueSize, 0) || !ok(o.maxEntries, 1)) {
    throw new RangeError(`${what} ${o.name ?? ''}: bad keySize/valueSize/maxEntries`);
  }
}

/** Copy `n` value bytes into `dst[dstOff ..]` without allocating a subarray. */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number): void {
  if (srcOff === 0 && src.length === n) {
    dst.set(src, dstOff);
    return;
  }
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/** Zero `n` bytes at `dst[off ..]` (a loop beats fill() for the small values maps carry). */
export function zeroBytes(dst: Uint8Array, off: number, n: number): void {
  if (n > 64) {
    dst.fill(0, off, off + n);
    return;
  }
  for (let i = 0; i < n; i++) dst[off + i] = 0;
}

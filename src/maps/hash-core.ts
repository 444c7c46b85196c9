/**
 * The open-addressing table under HashMap, LruHashMap and LpmTrieMap.
 *
 * API: murmur3(buf, off, len, seed), murmurMix, murmurFmix, nextPow2, randomSeed,
 * HashCore (hash, findBucket, slotAt, insert, removeBucket, removeSlot, isLive,
 * iterate, clear, count), LIVE and the M_* meta indexes. Internal to src/maps.
 *
 * Kernel counterpart: kernel/bpf/hashtab.c (preallocated htab). Design after
 * Snabb's ctable (Robin Hood open addressing over flat arrays), with one
 * change: the table stores *slot indices*, not entries.
 *
 *   buckets  Int32Array [hash0, slot0+1, hash1, slot1+1, ...]   (capacity pairs)
 *   keys     Uint8Array  slot * keySize                          (maxEntries)
 *   values   Uint8Array  slot * valueSize                        (maxEntries)
 *   link     Int32Array  LIVE, or the next free slot (-1 = end)  (maxEntries)
 *   meta     Int32Array  COUNT, HWM, FREE + room for the owner's scalars
 *
 * Why this split: a slot is the "value pointer" callers hold on to, so it
 * must never move while its entry lives. Buckets do move (Robin Hood swaps,
 * backward-shift deletion), but a bucket is only two int32s: moving one is
 * cheap and never touches keys or values. It also makes iteration a plain
 * scan of slots [0, HWM), which stays safe when the callback deletes the
 * entry it is visiting (GC needs that) since deletion only frees that slot.
 *
 * Why Robin Hood + backward shift: no tombstones, so a table that churns
 * for days (conntrack) never degrades and never needs a rehash; a miss stops
 * as soon as the probe distance exceeds the resident's distance, so misses
 * (the common case for new flows) cost about as much as hits. The full
 * 32-bit hash sits next to the slot in the bucket, so a probe reads one
 * cache line and compares key bytes only on a hash match.
 *
 * Why murmur3 x86_32: Math.imul makes it a handful of integer ops per 4-byte
 * block in V8, with full avalanche. The kernel uses jhash; we need no
 * compatibility with its bucket order, only a good seeded hash (the seed is
 * random per map by default, like htab's hashrnd, so packet-chosen keys
 * cannot be aimed at one probe chain).
 *
 * Load: capacity = next power of two >= maxEntries / 0.75, so a full map is
 * at most 75 % loaded (between 37.5 % and 75 % depending on rounding).
 */

import { MapMemory } from './map.ts';

/** `link[slot]` value of a slot that holds an entry. */
export const LIVE = -2;
/** meta index: entries present. */
export const M_COUNT = 0;
/** meta index: high-water mark; slots >= HWM were never used. */
export const M_HWM = 1;
/** meta index: head of the free-slot chain (-1 = empty). */
export const M_FREE = 2;
/** meta indexes from here on belong to the owning map. */
export const M_USER = 3;
/** meta length: M_USER + room for the owner's scalars. */
const META_SLOTS = 8;
/** Maximum load factor before rounding capacity up. */
const MAX_LOAD = 0.75;

/** Smallest power of two >= n (n >= 1). */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** MurmurHash3 body step: mix one 32-bit block `k` into state `h`. */
export function murmurMix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3 finalizer (fmix32): full avalanche of `h`. */
export function murmurFmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** MurmurHash3 x86_32 of `buf[off .. off+len)`, as a signed int32. */
export function murmur3(buf: Uint8Array, off: number, len: number, seed: number): number {
  let h = seed | 0;
  let i = off;
  const end = off + (len & ~3);
  while (i < end) {
    h = murmurMix(h, buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    i += 4;
  }
  const tail = len & 3;
  if (tail !== 0) {
    let k = buf[i]!;
    if (tail > 1) k |= buf[i + 1]! << 8;
    if (tail > 2) k |= buf[i + 2]! << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  return murmurFmix(h ^ len);
}

/** A random 32-bit seed. */
export function randomSeed(): number {
  return (Math.random() * 0x100000000) | 0;
}

/** Robin Hood hash index over preallocated key/value slots. Internal to src/maps. */
export class HashCore {
  /** Bucket count (power of two). */
  readonly capacity: number;
  /** capacity - 1. */
  readonly mask: number;
  /** Bucket pairs: [hash, slot + 1]; slot + 1 === 0 marks an empty bucket. */
  readonly buckets: Int32Array;
  /** Stored keys, keySize bytes per slot. */
  readonly keys: Uint8Array;
  /** Stored values, valueSize bytes per slot. */
  readonly values: Uint8Array;
  /** DataView over values. */
  readonly view: DataView;
  /** LIVE for used slots; free-chain next index otherwise. */
  readonly link: Int32Array;
  /** Scalars that must be visible to attached readers: count, HWM, free head, owner's. */
  readonly meta: Int32Array;

  constructor(
    readonly keySize: number,
    readonly valueSize: number,
    readonly maxEntries: number,
    readonly seed: number,
    mem: MapMemory,
  ) {
    this.capacity = nextPow2(Math.ceil(maxEntries / MAX_LOAD));
    this.mask = this.capacity - 1;
    this.buckets = mem.i32('buckets', this.capacity * 2);
    this.keys = mem.u8('keys', maxEntries * keySize);
    this.values = mem.u8('values', maxEntries * valueSize);
    this.view = new DataView(this.values.buffer, this.values.byteOffset, this.values.byteLength);
    this.link = mem.i32('link', maxEntries);
    this.meta = mem.i32('meta', META_SLOTS);
    if (!mem.attached) this.meta[M_FREE] = -1;
  }

  /** Entries present. */
  get count(): number {
    return this.meta[M_COUNT]!;
  }

  /** Hash `len` key bytes with this table's seed. */
  hash(buf: Uint8Array, off: number, len: number): number {
    return murmur3(buf, off, len, this.seed);
  }

  /** Bucket holding `key[off ..]` with hash `h`, or -1. */
  findBucket(key: Uint8Array, off: number, h: number): number {
    const buckets = this.buckets, keys = this.keys, mask = this.mask, ks = this.keySize;
    let b = h & mask;
    for (let d = 0; ; d++) {
      const s1 = buckets[2 * b + 1]!;
      if (s1 === 0) return -1;
      const bh = buckets[2 * b]!;
      if (bh === h) {
        const k = (s1 - 1) * ks;
        let i = 0;
        while (i < ks && keys[k + i] === key[off + i]) i++;
        if (i === ks) return b;
      }
      // Robin Hood invariant: a resident closer to home than we are means our key is absent.
      if (((b - (bh & mask)) & mask) < d) return -1;
      b = (b + 1) & mask;
    }
  }

  /** Slot referenced by bucket `b`. */
  slotAt(b: number): number {
    return this.buckets[2 * b + 1]! - 1;
  }

  /**
   * Take a free slot, copy the key in and index it under hash `h`.
   * The caller has checked the key is absent; returns the slot, or -1 when all slots are used.
   */
  insert(key: Uint8Array, off: number, h: number): number {
    const meta = this.meta;
    let slot = meta[M_FREE]!;
    if (slot >= 0) {
      meta[M_FREE] = this.link[slot]!;
    } else {
      slot = meta[M_HWM]!;
      if (slot >= this.maxEntries) return -1;
      meta[M_HWM] = slot + 1;
    }
    this.link[slot] = LIVE;
    const keys = this.keys, ks = this.keySize, k = slot * ks;
    for (let i = 0; i < ks; i++) keys[k + i] = key[off + i]!;
    meta[M_COUNT]!++;

    const buckets = this.buckets, mask = this.mask;
    let ch = h, cs = slot + 1;
    let b = h & mask;
    for (let d = 0; ; d++) {
      const s1 = buckets[2 * b + 1]!;
      if (s1 === 0) {
        buckets[2 * b] = ch;
        buckets[2 * b + 1] = cs;
        return slot;
      }
      const bh = buckets[2 * b]!;
      const bd = (b - (bh & mask)) & mask;
      if (bd < d) {
        // Take from the rich: the resident is nearer its home than we are, so it moves on.
        buckets[2 * b] = ch;
        buckets[2 * b + 1] = cs;
        ch = bh;
        cs = s1;
        d = bd;
      }
      b = (b + 1) & mask;
    }
  }

  /** Unindex bucket `b` (backward shift) and free its slot; returns the freed slot. */
  removeBucket(b: number): number {
    const buckets = this.buckets, mask = this.mask;
    const slot = buckets[2 * b + 1]! - 1;
    let nb = (b + 1) & mask;
    for (;;) {
      const s1 = buckets[2 * nb + 1]!;
      if (s1 === 0 || ((nb - (buckets[2 * nb]! & mask)) & mask) === 0) break;
      buckets[2 * b] = buckets[2 * nb]!;
      buckets[2 * b + 1] = s1;
      b = nb;
      nb = (nb + 1) & mask;
    }
    buckets[2 * b] = 0;
    buckets[2 * b + 1] = 0;
    const meta = this.meta;
    this.link[slot] = meta[M_FREE]!;
    meta[M_FREE] = slot;
    meta[M_COUNT]!--;
    return slot;
  }

  /** Remove the entry in `slot`, whose key hashes to `h` (LRU eviction path). */
  removeSlot(slot: number, h: number): void {
    const buckets = this.buckets, mask = this.mask, s1 = slot + 1;
    let b = h & mask;
    while (buckets[2 * b + 1] !== s1) b = (b + 1) & mask;
    this.removeBucket(b);
  }

  /** Whether `slot` holds an entry. */
  isLive(slot: number): boolean {
    return slot >= 0 && slot < this.maxEntries && this.link[slot] === LIVE;
  }

  /**
   * Visit live slots in slot order. Deleting the visited entry is safe; entries
   * inserted during the walk may or may not be visited (they may reuse a freed slot).
   */
  iterate(cb: (key: Uint8Array, keyOff: number, slot: number) => boolean | void): void {
    const link = this.link, ks = this.keySize;
    for (let s = 0; s < this.meta[M_HWM]!; s++) {
      if (link[s] === LIVE && cb(this.keys, s * ks, s) === false) return;
    }
  }

  /** Drop every entry (O(capacity)). */
  clear(): void {
    this.buckets.fill(0);
    this.meta[M_COUNT] = 0;
    this.meta[M_HWM] = 0;
    this.meta[M_FREE] = -1;
  }
}

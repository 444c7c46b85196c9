/**
 * MurmurHash3 x64_128 (Austin Appleby's SMHasher `MurmurHash3_x64_128`), the
 * hash Cilium's Maglev uses for backend offset/skip.
 *
 * API: murmur3x64_128Into(bytes, off, len, seed, out) (fast, no allocation),
 * murmur3x64_128(bytes, seed) → [h1, h2] as bigint, u64Mod(hi, lo, m)
 * for exact `h % m` without BigInt.
 *
 * Mirrors: Cilium pkg/murmur3 `Hash128(data, seed)` as called from
 * pkg/maglev/maglev.go (facts §3 "Maglev table": the u32 seed goes into both
 * 64-bit halves, zero-extended).
 *
 * Representation: every u64 is a (hi, lo) pair of 32-bit halves held in
 * local numbers; 64-bit multiplies are built from 16-bit partial products
 * (exact in doubles) plus Math.imul for the cross terms that only reach the
 * high half. Blocks and the tail are read little-endian, as on x86.
 * `out` receives the 16-byte digest as four u32 words in memory order:
 * [h1.lo, h1.hi, h2.lo, h2.hi].
 *
 * Deviations: none. Inputs longer than 2^53 bytes are not supported (JS).
 */

// Constants as (hi, lo) halves.
const C1H = 0x87c37b91, C1L = 0x114253d5; // c1 = 0x87c37b91114253d5
const C2H = 0x4cf5ad43, C2L = 0x2745937f; // c2 = 0x4cf5ad432745937f
const F1H = 0xff51afd7, F1L = 0xed558ccd; // fmix64 multiplier 1
const F2H = 0xc4ceb9fe, F2L = 0x1a85ec53; // fmix64 multiplier 2
const TWO32 = 4294967296;

// Result registers of the last mul64 / fmix64: a typed array, so the 32-bit
// values are stored unboxed (module-level `let`s holding numbers ≥ 2^30
// become heap numbers in V8 and allocate on every write).
const R = new Int32Array(2); // [hi, lo]

/** R = low 64 bits of (ah:al) * (bh:bl) (typed-array stores wrap to 32 bits). Inputs may be int32 or u32. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  // Full 64-bit product of the low words from 16-bit pieces (each < 2^32).
  const a0 = al & 0xffff, a1 = al >>> 16;
  const b0 = bl & 0xffff, b1 = bl >>> 16;
  const t = a0 * b0; // < 2^32
  const m = a1 * b0 + a0 * b1; // < 2^33
  const lo = t + (m & 0xffff) * 65536; // < 2^33 (m & 0xffff: ToInt32 keeps the low bits)
  const carry = lo >= TWO32 ? 1 : 0;
  const mHi = (m - (m & 0xffff)) / 65536; // floor(m / 2^16), exact
  R[1] = lo;
  // High word: a1*b1 + carries, plus the cross terms (only their low 32 bits matter).
  R[0] = a1 * b1 + mHi + carry + Math.imul(ah, bl) + Math.imul(al, bh);
}

/** Little-endian u32 load (as int32). */
function le32(k: Uint8Array, o: number): number {
  return k[o]! | (k[o + 1]! << 8) | (k[o + 2]! << 16) | (k[o + 3]! << 24);
}

/** Little-endian load of `n` (0..4) bytes, zero-filled. */
function le32Partial(k: Uint8Array, o: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = (v << 8) | k[o + i]!;
  return v;
}

/**
 * MurmurHash3 x64_128 of `len` bytes at `off`, seed `seed` (u32).
 * Writes [h1.lo, h1.hi, h2.lo, h2.hi] (u32 each) into `out[0..3]`.
 */
export function murmur3x64_128Into(
  bytes: Uint8Array,
  off: number,
  len: number,
  seed: number,
  out: Uint32Array,
): void {
  let h1h = 0, h1l = seed >>> 0;
  let h2h = 0, h2l = seed >>> 0;
  let k1h = 0, k1l = 0, k2h = 0, k2l = 0, x = 0, y = 0, s = 0;
  const nblocks = Math.floor(len / 16);
  let o = off;
  for (let i = 0; i < nblocks; i++, o += 16) {
    k1l = le32(bytes, o); k1h = le32(bytes, o + 4);
    k2l = le32(bytes, o + 8); k2h = le32(bytes, o + 12);
    // k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1
    mul64(k1h, k1l, C1H, C1L);
    x = (R[0]! << 31) | (R[1]! >>> 1); y = (R[1]! << 31) | (R[0]! >>> 1); // rotl 31
    mul64(x, y, C2H, C2L);
    h1h ^= R[0]!; h1l ^= R[1]!;
    // h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729
    x = (h1h << 27) | (h1l >>> 5); y = (h1l << 27) | (h1h >>> 5);
    s = (y >>> 0) + (h2l >>> 0);
    h1l = s >>> 0; h1h = (x + h2h + (s >= TWO32 ? 1 : 0)) | 0;
    mul64(h1h, h1l, 0, 5);
    s = (R[1]! >>> 0) + 0x52dce729;
    h1l = s >>> 0; h1h = (R[0]! + (s >= TWO32 ? 1 : 0)) | 0;
    // k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2
    mul64(k2h, k2l, C2H, C2L);
    x = (R[1]! << 1) | (R[0]! >>> 31); y = (R[0]! << 1) | (R[1]! >>> 31); // rotl 33 = swap + rotl 1
    mul64(x, y, C1H, C1L);
    h2h ^= R[0]!; h2l ^= R[1]!;
    // h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5
    x = (h2h << 31) | (h2l >>> 1); y = (h2l << 31) | (h2h >>> 1);
    s = (y >>> 0) + (h1l >>> 0);
    h2l = s >>> 0; h2h = (x + h1h + (s >= TWO32 ? 1 : 0)) | 0;
    mul64(h2h, h2l, 0, 5);
    s = (R[1]! >>> 0) + 0x38495ab5;
    h2l = s >>> 0; h2h = (R[0]! + (s >= TWO32 ? 1 : 0)) | 0;
  }
  // Tail: 0..15 bytes; bytes 8..14 form k2, bytes 0..7 form k1 (LE, zero-filled).
  const rem = len & 15;
  if (rem > 8) {
    const n = rem - 8;
    k2l = le32Partial(bytes, o + 8, n < 4 ? n : 4);
    k2h = n > 4 ? le32Partial(bytes, o + 12, n - 4) : 0;
    mul64(k2h, k2l, C2H, C2L);
    x = (R[1]! << 1) | (R[0]! >>> 31); y = (R[0]! << 1) | (R[1]! >>> 31);
    mul64(x, y, C1H, C1L);
    h2h ^= R[0]!; h2l ^= R[1]!;
  }
  if (rem > 0) {
    const n = rem > 8 ? 8 : rem;
    k1l = le32Partial(bytes, o, n < 4 ? n : 4);
    k1h = n > 4 ? le32Partial(bytes, o + 4, n - 4) : 0;
    mul64(k1h, k1l, C1H, C1L);
    x = (R[0]! << 31) | (R[1]! >>> 1); y = (R[1]! << 31) | (R[0]! >>> 1);
    mul64(x, y, C2H, C2L);
    h1h ^= R[0]!; h1l ^= R[1]!;
  }
  // Finalization: h1 ^= len; h2 ^= len; h1 += h2; h2 += h1; fmix both; h1 += h2; h2 += h1.
  const lenHi = Math.floor(len / TWO32) | 0;
  h1l ^= len >>> 0; h1h ^= lenHi;
  h2l ^= len >>> 0; h2h ^= lenHi;
  s = (h1l >>> 0) + (h2l >>> 0); h1l = s >>> 0; h1h = (h1h + h2h + (s >= TWO32 ? 1 : 0)) | 0;
  s = (h2l >>> 0) + (h1l >>> 0); h2l = s >>> 0; h2h = (h2h + h1h + (s >= TWO32 ? 1 : 0)) | 0;
  fmix64(h1h, h1l); h1h = R[0]!; h1l = R[1]!;
  fmix64(h2h, h2l); h2h = R[0]!; h2l = R[1]!;
  s = (h1l >>> 0) + (h2l >>> 0); h1l = s >>> 0; h1h = (h1h + h2h + (s >= TWO32 ? 1 : 0)) | 0;
  s = (h2l >>> 0) + (h1l >>> 0); h2l = s >>> 0; h2h = (h2h + h1h + (s >= TWO32 ? 1 : 0)) | 0;
  out[0] = h1l; out[1] = h1h; out[2] = h2l; out[3] = h2h;
}

/** fmix64 finalizer: R = fmix64(h:l). */
function fmix64(h: number, l: number): void {
  l ^= h >>> 1; // k ^= k >> 33
  mul64(h, l, F1H, F1L);
  h = R[0]!; l = R[1]! ^ (h >>> 1);
  mul64(h, l, F2H, F2L);
  R[1] = R[1]! ^ (R[0]! >>> 1);
}

const scratch = new Uint32Array(4);

/** MurmurHash3 x64_128 of all of `bytes` → [h1, h2] as u64 bigints (convenience; allocates). */
export function murmur3x64_128(bytes: Uint8Array, seed: number): [bigint, bigint] {
  murmur3x64_128Into(bytes, 0, bytes.length, seed, scratch);
  return [
    (BigInt(scratch[1]!) << 32n) | BigInt(scratch[0]!),
    (BigInt(scratch[3]!) << 32n) | BigInt(scratch[2]!),
  ];
}

/**
 * Exact `(hi * 2^32 + lo) mod m` for a u64 given as halves and 1 ≤ m < 2^21,
 * without BigInt: (hi mod m)·(2^32 mod m) < 2^42 stays exact in a double.
 */
export function u64Mod(hi: number, lo: number, m: number): number {
  return (((hi >>> 0) % m) * (TWO32 % m) + (lo >>> 0)) % m;
}

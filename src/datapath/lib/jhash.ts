/**
 * The Linux kernel's Jenkins hash (lookup3 flavour) and Cilium's flow hashes for Maglev.
 *
 * API: JHASH_INITVAL, jhash3Words, jhash2Words, jhash1Word, jhash (bytes),
 * maglevFlowHash4, maglevFlowHash6, maglevFlowHash4Host, bswap16, bswap32.
 *
 * Mirrors: include/linux/jhash.h (== Cilium bpf/lib/jhash.h) and Cilium
 * bpf/lib/hash.h (hash_from_tuple_v4 / hash_from_tuple_v6), facts §3 "Selection".
 *
 * Arithmetic: everything is u32 modulo 2^32. The algorithm only adds,
 * subtracts, xors and rotates, so `(x + y) | 0` / `(x - y) | 0` wrap exactly
 * (both operands are < 2^32 in magnitude, so the double sum is exact before
 * ToInt32). Internally values live as int32 (`| 0`) and are converted to u32
 * (`>>> 0`) only on return. Rotations use `>>>` for the right part: the
 * signed-shift trap (`x >> n` smears the sign bit) is avoided throughout.
 *
 * Byte order (important): the BPF program hashes struct fields *as they sit
 * in memory* read as native little-endian integers (x86/arm64). So a be32
 * address or be16 port taken "as a number" by the datapath is the byte-swapped
 * value: 10.0.0.1 (bytes 0a 00 00 01) is seen as 0x0100000a, port 80 (bytes
 * 00 50) as 0x5000. maglevFlowHash4/6 take those raw values; the `...Host`
 * helper takes ordinary host-order numbers and swaps them for you.
 *
 * Deviations: none known. jhash() loads bytes little-endian as the kernel
 * does on x86 (__get_unaligned_cpu32); on a big-endian kernel it would differ.
 */

/** The kernel's arbitrary initial value (`JHASH_INITVAL`). */
export const JHASH_INITVAL = 0xdeadbeef;

/** 32-bit rotate left (n in 1..31). */
function rol32(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

// Scratch state for the mix/final rounds: module-level so the hot path does
// not allocate (the kernel's macros modify a, b, c in place).
let A = 0;
let B = 0;
let C = 0;

/** `__jhash_mix(a, b, c)` on the scratch registers: mix 3 u32 reversibly. */
function mix(): void {
  let a = A, b = B, c = C;
  a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
  a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
  A = a; B = b; C = c;
}

/** `__jhash_final(a, b, c)` on the scratch registers: final mixing into C. */
function final(): void {
  let a = A, b = B, c = C;
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  A = a; B = b; C = c;
}

/** `__jhash_nwords`: add initval to each word, final-mix, return c (u32). */
function nwords(a: number, b: number, c: number, initval: number): number {
  A = (a + initval) | 0;
  B = (b + initval) | 0;
  C = (c + initval) | 0;
  final();
  return C >>> 0;
}

/** `jhash_3words(a, b, c, initval)`: hash exactly three u32 words. */
export function jhash3Words(a: number, b: number, c: number, initval: number): number {
  // initval + JHASH_INITVAL + (3 << 2), wrapped to 32 bits.
  return nwords(a, b, c, (initval + JHASH_INITVAL + 12) | 0);
}

/** `jhash_2words(a, b, initval)`: hash exactly two u32 words. */
export function jhash2Words(a: number, b: number, initval: number): number {
  return nwords(a, b, 0, (initval + JHASH_INITVAL + 8) | 0);
}

/** `jhash_1word(a, initval)`: hash exactly one u32 word. */
export function jhash1Word(a: number, initval: number): number {
  return nwords(a, 0, 0, (initval + JHASH_INITVAL + 4) | 0);
}

/** Little-endian u32 load of 4 bytes at `o` (as int32). */
function le32(k: Uint8Array, o: number): number {
  return k[o]! | (k[o + 1]! << 8) | (k[o + 2]! << 16) | (k[o + 3]! << 24);
}

/**
 * `jhash(key, length, initval)`: hash `len` bytes of `bytes` from `off`.
 * @remarks Equals Bob Jenkins' lookup3 `hashlittle()`; bytes are loaded
 * little-endian as the kernel does on x86. `off + len` must be in bounds.
 */
export function jhash(bytes: Uint8Array, off: number, len: number, initval: number): number {
  // a = b = c = JHASH_INITVAL + length + initval
  const init = (JHASH_INITVAL + len + initval) | 0;
  A = init; B = init; C = init;
  let o = off;
  let n = len;
  // All but the last block: strictly more than 12 bytes left (the last, even
  // a full 12, goes through the tail and __jhash_final, not __jhash_mix).
  while (n > 12) {
    A = (A + le32(bytes, o)) | 0;
    B = (B + le32(bytes, o + 4)) | 0;
    C = (C + le32(bytes, o + 8)) | 0;
    mix();
    n -= 12;
    o += 12;
  }
  if (n === 0) return C >>> 0; // zero-length: nothing to finalize
  // Tail of 1..12 bytes, each byte added at its little-endian position.
  let a = 0, b = 0, c = 0;
  for (let i = n - 1; i >= 0; i--) {
    const v = bytes[o + i]! << ((i & 3) << 3);
    if (i < 4) a = (a + v) | 0;
    else if (i < 8) b = (b + v) | 0;
    else c = (c + v) | 0;
  }
  A = (A + a) | 0;
  B = (B + b) | 0;
  C = (C + c) | 0;
  final();
  return C >>> 0;
}

/** Swap the bytes of a u16 (host port number ⇄ raw be16 as loaded on LE). */
export function bswap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

/** Swap the bytes of a u32 (host-order address ⇄ raw be32 as loaded on LE). */
export function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/**
 * Cilium's IPv4 Maglev flow hash (`hash_from_tuple_v4`, bpf/lib/hash.h):
 * `jhash_3words(tuple.saddr, (tuple.dport << 16) | tuple.sport, tuple.nexthdr, HASH_INIT4_SEED)`.
 * @remarks All inputs are the *raw* tuple fields as the BPF program loads them
 * on a little-endian host: `saddr` = the 4 network-order address bytes read as
 * LE u32 (10.0.0.1 → 0x0100000a); `tupleDport`/`tupleSport` = the 2 network-
 * order port bytes read as LE u16 (port 80 → 0x5000). Per facts §3 the LB
 * tuple is stored swapped: tuple.saddr = client address, tuple.dport = client
 * port, tuple.sport = service port; daddr (the VIP) is deliberately excluded.
 * Use maglevFlowHash4Host if you hold ordinary host-order numbers.
 */
export function maglevFlowHash4(
  saddr: number,
  tupleDport: number,
  tupleSport: number,
  nexthdr: number,
  seed: number,
): number {
  // (__u32)dport << 16 | sport: `<< 16` of a u16 can set bit 31, but the
  // int32 result is exactly the right bit pattern for the additions below.
  return jhash3Words(saddr, ((tupleDport & 0xffff) << 16) | (tupleSport & 0xffff), nexthdr & 0xff, seed);
}

/**
 * maglevFlowHash4 from host-order numbers: client IPv4 as a u32 (10.0.0.1 =
 * 0x0a000001), client and service ports as plain numbers. Swaps to the raw LE
 * view the datapath hashes, so results match Cilium on x86/arm64.
 */
export function maglevFlowHash4Host(
  clientAddr: number,
  clientPort: number,
  servicePort: number,
  nexthdr: number,
  seed: number,
): number {
  return maglevFlowHash4(bswap32(clientAddr), bswap16(clientPort), bswap16(servicePort), nexthdr, seed);
}

/**
 * Cilium's IPv6 Maglev flow hash (`hash_from_tuple_v6`, bpf/lib/hash.h).
 * @remarks Exactly: a,b,c = saddr words p1,p2,p3; __jhash_mix; a += p4;
 * b += (tuple.dport << 16) | tuple.sport; c += nexthdr; __jhash_mix;
 * a += HASH_INIT6_SEED; __jhash_final; return c. No JHASH_INITVAL is added.
 * The facts only say "mixes 4 address words, seed HASH_INIT6_SEED"; this
 * sequence was read from bpf/lib/hash.h in a stored Cilium snapshot (the same
 * file as the v4 formula the facts quote). Words and ports are raw LE loads of
 * network-order bytes, as in maglevFlowHash4 (s0 = bytes 0..3 of the client
 * address read little-endian, and so on).
 */
export function maglevFlowHash6(
  s0: number,
  s1: number,
  s2: number,
  s3: number,
  tupleDport: number,
  tupleSport: number,
  nexthdr: number,
  seed6: number,
): number {
  A = s0 | 0;
  B = s1 | 0;
  C = s2 | 0;
  mix();
  A = (A + s3) | 0;
  B = (B + (((tupleDport & 0xffff) << 16) | (tupleSport & 0xffff))) | 0;
  C = (C + (nexthdr & 0xff)) | 0;
  mix();
  A = (A + seed6) | 0;
  final();
  return C >>> 0;
}

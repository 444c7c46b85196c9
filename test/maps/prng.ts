/**
 * Test helpers for map tests: a seeded PRNG (mulberry32) and key builders.
 */

/** A seeded PRNG returning uint32s (mulberry32): same seed, same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Integer in [0, n) from a uint32 source. */
export function below(rnd: () => number, n: number): number {
  return rnd() % n;
}

/** Hex of `buf[off .. off+len)`: the model's Map key. */
export function hexOf(buf: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += buf[off + i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * Write a 14-byte ipv4_ct_tuple-shaped key for id `n` into `buf[off..]`:
 * daddr, saddr (be32), dport, sport (be16), nexthdr, flags — fields vary
 * with n so keys differ in several places, like real tuples.
 */
export function ctKey(buf: Uint8Array, off: number, n: number): Uint8Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(off, 0x0a000000 + (n % 65521), false);
  dv.setUint32(off + 4, 0x0a010000 + ((n * 7) >>> 16), false);
  dv.setUint16(off + 8, 80 + (n % 3), false);
  dv.setUint16(off + 10, 1024 + ((n >>> 2) & 0xffff), false);
  buf[off + 12] = n & 1 ? 6 : 17;
  buf[off + 13] = (n >>> 20) & 3;
  return buf;
}

/**
 * murmur3-128.ts: MurmurHash3 x64_128 against published reference values.
 *
 * Vector sources:
 *  - SMHasher verification value for MurmurHash3_x64_128 = 0x6384BA69
 *    (aappleby/smhasher main.cpp hash list, "Murmur3F"; the same constant is
 *    checked by Guava's Murmur3_128HashFunctionTest and FFmpeg's murmur3 test).
 *    Procedure (SMHasher VerificationTest): for i in 0..255, key = bytes
 *    0,1,…,i-1, seed = 256-i, digest (16 bytes, h1 then h2, little-endian) goes
 *    to hashes[16i]; hash the 4096-byte `hashes` with seed 0; the first 4 bytes
 *    read little-endian must equal the constant. Covers every length 0..255:
 *    empty, 1..15-byte tails, multiples of 16 and every block+tail mix.
 *  - github.com/spaolacci/murmur3 murmur_test.go (`data` table, h64_1/h64_2
 *    columns): 5 strings × seeds 0, 1, 0x2a, including the empty string.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { murmur3x64_128, murmur3x64_128Into, u64Mod } from '../../src/datapath/lib/murmur3-128.ts';
import { prng } from '../maps/prng.ts';

const enc = (s: string) => new TextEncoder().encode(s);

// [seed, h1, h2, input] from spaolacci/murmur3 murmur_test.go
const SPAOLACCI: [number, bigint, bigint, string][] = [
  [0x00, 0x0000000000000000n, 0x0000000000000000n, ''],
  [0x00, 0xcbd8a7b341bd9b02n, 0x5b1e906a48ae1d19n, 'hello'],
  [0x00, 0x342fac623a5ebc8en, 0x4cdcbc079642414dn, 'hello, world'],
  [0x00, 0xb89e5988b737affcn, 0x664fc2950231b2cbn, '19 Jan 2038 at 3:14:07 AM'],
  [0x00, 0xcd99481f9ee902c9n, 0x695da1a38987b6e7n, 'The quick brown fox jumps over the lazy dog.'],
  [0x01, 0x4610abe56eff5cb5n, 0x51622daa78f83583n, ''],
  [0x01, 0xa78ddff5adae8d10n, 0x128900ef20900135n, 'hello'],
  [0x01, 0x8b95f808840725c6n, 0x1597ed5422bd493bn, 'hello, world'],
  [0x01, 0x2a929de9c8f97b2fn, 0x56a41d99af43a2dbn, '19 Jan 2038 at 3:14:07 AM'],
  [0x01, 0xfb3325171f9744dan, 0xaaf8b92a5f722952n, 'The quick brown fox jumps over the lazy dog.'],
  [0x2a, 0xf02aa77dfa1b8523n, 0xd1016610da11cbb9n, ''],
  [0x2a, 0xc4b8b3c960af6f08n, 0x2334b875b0efbc7an, 'hello'],
  [0x2a, 0xb91864d797caa956n, 0xd5d139a55afe6150n, 'hello, world'],
  [0x2a, 0xfd8f19ebdc8c6b6an, 0xd30fdc310fa08ff9n, '19 Jan 2038 at 3:14:07 AM'],
  [0x2a, 0x74f33c659cda5af7n, 0x4ec7a891caf316f0n, 'The quick brown fox jumps over the lazy dog.'],
];

test('matches spaolacci/murmur3 reference strings (seeds 0, 1, 42)', () => {
  for (const [seed, h1, h2, s] of SPAOLACCI) {
    assert.deepEqual(murmur3x64_128(enc(s), seed), [h1, h2], `${JSON.stringify(s)} seed ${seed}`);
  }
});

test('SMHasher verification value 0x6384BA69 (all lengths 0..255, seeds 256-i)', () => {
  const key = new Uint8Array(256);
  const hashes = new Uint8Array(256 * 16);
  const words = new Uint32Array(4);
  const dv = new DataView(hashes.buffer);
  for (let i = 0; i < 256; i++) {
    key[i] = i;
    murmur3x64_128Into(key, 0, i, 256 - i, words);
    for (let w = 0; w < 4; w++) dv.setUint32(i * 16 + w * 4, words[w]!, true);
  }
  murmur3x64_128Into(hashes, 0, hashes.length, 0, words);
  assert.equal(words[0], 0x6384ba69);
});

test('Into honours the offset and writes [h1.lo, h1.hi, h2.lo, h2.hi]', () => {
  const s = enc('The quick brown fox jumps over the lazy dog.');
  const buf = new Uint8Array(s.length + 9);
  buf.set(s, 3);
  const out = new Uint32Array(4);
  murmur3x64_128Into(buf, 3, s.length, 0x2a, out);
  assert.deepEqual(Array.from(out), [0x9cda5af7, 0x74f33c65, 0xcaf316f0, 0x4ec7a891]);
  // Seeds are u32: a negative int32 seed means the same bits.
  murmur3x64_128Into(s, 0, s.length, -1, out);
  const [h1] = murmur3x64_128(s, 0xffffffff);
  assert.equal((BigInt(out[1]!) << 32n) | BigInt(out[0]!), h1);
});

test('u64Mod is exact against BigInt for all Maglev sizes', () => {
  const rnd = prng(99);
  const ms = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 65520, 131070, 2];
  const edge = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff];
  for (let t = 0; t < 2000; t++) {
    const hi = t < 25 ? edge[t % 5]! : rnd();
    const lo = t < 25 ? edge[Math.floor(t / 5)]! : rnd();
    const m = ms[t % ms.length]!;
    const want = Number(((BigInt(hi) << 32n) | BigInt(lo)) % BigInt(m));
    assert.equal(u64Mod(hi, lo, m), want, `hi ${hi} lo ${lo} m ${m}`);
  }
});

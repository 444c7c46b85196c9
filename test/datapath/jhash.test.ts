/**
 * jhash.ts: the kernel's Jenkins hash and Cilium's Maglev flow hashes.
 *
 * Vector sources:
 *  - Cilium bpf/tests/jhash_test.c: jhash_3words(123, 234, 345, 456) = 2698615579,
 *    jhash_3words(0, 0, 0, 0) = 459859287.
 *  - Bob Jenkins' lookup3.c driver5() (hashlittle, which the kernel's jhash()
 *    equals: same init 0xdeadbeef + length + initval, same mix/final, LE loads):
 *    ("", 0) → 0xdeadbeef, ("", 0xdeadbeef) → 0xbd5b7dde, ("", 0xbd5b7dde) →
 *    0x9c093ccd, ("Four score and seven years ago", 0) → 0x17770551, (…, 1) → 0xcd628161.
 * No published vectors were found for jhash_2words/jhash_1word or Cilium's
 * hash_from_tuple_v4/v6 with the default seeds; those are checked against
 * `ref*` below, an independent BigInt, table-driven re-derivation written for
 * this test from the algorithm's description (not from jhash.ts), and the
 * pinned literals were produced by that reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bswap16, bswap32, jhash, jhash1Word, jhash2Words, jhash3Words, maglevFlowHash4,
  maglevFlowHash4Host, maglevFlowHash6,
} from '../../src/datapath/lib/jhash.ts';
import { prng } from '../maps/prng.ts';

// ---- independent reference (BigInt, table-driven) ----
const M32 = 0xffffffffn;
type Regs = [bigint, bigint, bigint]; // a, b, c
const rol = (x: bigint, r: number) => ((x << BigInt(r)) | (x >> BigInt(32 - r))) & M32;
// mix: x -= z; x ^= rol(z, r); z += y   — as (x, y, z, r) register indexes
const MIX: [number, number, number, number][] = [
  [0, 1, 2, 4], [1, 2, 0, 6], [2, 0, 1, 8], [0, 1, 2, 16], [1, 2, 0, 19], [2, 0, 1, 4],
];
// final: x ^= y; x -= rol(y, r)
const FINAL: [number, number, number][] = [
  [2, 1, 14], [0, 2, 11], [1, 0, 25], [2, 1, 16], [0, 2, 4], [1, 0, 14], [2, 1, 24],
];
function refMix(v: Regs): void {
  for (const [x, y, z, r] of MIX) {
    v[x] = (v[x]! - v[z]! + (1n << 32n)) & M32;
    v[x] = v[x]! ^ rol(v[z]!, r);
    v[z] = (v[z]! + v[y]!) & M32;
  }
}
function refFinal(v: Regs): void {
  for (const [x, y, r] of FINAL) {
    v[x] = v[x]! ^ v[y]!;
    v[x] = (v[x]! - rol(v[y]!, r) + (1n << 32n)) & M32;
  }
}
const u = (x: number) => BigInt(x >>> 0);
function refWords(words: number[], initval: number): number {
  const iv = (u(initval) + 0xdeadbeefn + BigInt(words.length * 4)) & M32;
  const v: Regs = [0n, 0n, 0n];
  for (let i = 0; i < 3; i++) v[i] = (u(words[i] ?? 0) + iv) & M32;
  refFinal(v);
  return Number(v[2]);
}
function refBytes(k: Uint8Array, initval: number): number {
  const init = (0xdeadbeefn + BigInt(k.length) + u(initval)) & M32;
  const v: Regs = [init, init, init];
  const word = (o: number) => { // LE u32 of up to 4 bytes, zero-padded
    let w = 0n;
    for (let i = 3; i >= 0; i--) w = (w << 8n) | BigInt(o + i < k.length ? k[o + i]! : 0);
    return w;
  };
  let o = 0;
  for (; k.length - o > 12; o += 12) {
    for (let i = 0; i < 3; i++) v[i] = (v[i]! + word(o + 4 * i)) & M32;
    refMix(v);
  }
  if (k.length === o) return Number(v[2]);
  for (let i = 0; i < 3; i++) v[i] = (v[i]! + word(o + 4 * i)) & M32;
  refFinal(v);
  return Number(v[2]);
}
function refV6(s: number[], ports: number, nexthdr: number, seed: number): number {
  const v: Regs = [u(s[0]!), u(s[1]!), u(s[2]!)];
  refMix(v);
  v[0] = (v[0] + u(s[3]!)) & M32; v[1] = (v[1] + u(ports)) & M32; v[2] = (v[2] + u(nexthdr)) & M32;
  refMix(v);
  v[0] = (v[0] + u(seed)) & M32;
  refFinal(v);
  return Number(v[2]);
}

const enc = (s: string) => new TextEncoder().encode(s);
const HASH_INIT4_SEED = 1910299206; // Cilium default, from JLfvgnHc2kaSUFaI bytes 4..7
const HASH_INIT6_SEED = 2454738568; // bytes 8..11

test('jhash_3words matches Cilium bpf/tests/jhash_test.c', () => {
  assert.equal(jhash3Words(123, 234, 345, 456), 2698615579);
  assert.equal(jhash3Words(0, 0, 0, 0), 459859287);
  // The BigInt reference must reproduce the published vectors too.
  assert.equal(refWords([123, 234, 345], 456), 2698615579);
  assert.equal(refWords([0, 0, 0], 0), 459859287);
  assert.equal(refBytes(enc('Four score and seven years ago'), 1), 0xcd628161);
});

test('jhash over bytes matches lookup3 driver5 vectors (hashlittle)', () => {
  const four = enc('Four score and seven years ago');
  const empty = new Uint8Array(0);
  assert.equal(jhash(empty, 0, 0, 0), 0xdeadbeef);
  assert.equal(jhash(empty, 0, 0, 0xdeadbeef), 0xbd5b7dde);
  assert.equal(jhash(empty, 0, 0, 0xbd5b7dde), 0x9c093ccd);
  assert.equal(jhash(four, 0, four.length, 0), 0x17770551);
  assert.equal(jhash(four, 0, four.length, 1), 0xcd628161);
  // Same bytes at an offset inside a larger buffer.
  const padded = new Uint8Array(four.length + 7);
  padded.set(four, 5);
  assert.equal(jhash(padded, 5, four.length, 0), 0x17770551);
});

test('jhash of 12/8/4 LE bytes equals jhash_3words/2words/1word (kernel identity)', () => {
  const rnd = prng(7);
  for (let t = 0; t < 200; t++) {
    const w = [rnd(), rnd(), rnd()];
    const iv = rnd();
    const b = new Uint8Array(12);
    const dv = new DataView(b.buffer);
    w.forEach((x, i) => dv.setUint32(i * 4, x, true));
    assert.equal(jhash(b, 0, 12, iv), jhash3Words(w[0]!, w[1]!, w[2]!, iv));
    assert.equal(jhash(b, 0, 8, iv), jhash2Words(w[0]!, w[1]!, iv));
    assert.equal(jhash(b, 0, 4, iv), jhash1Word(w[0]!, iv));
  }
});

test('all variants agree with the BigInt reference (random, incl. high-bit words)', () => {
  const rnd = prng(1234);
  const edge = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xdeadbeef];
  for (let t = 0; t < 500; t++) {
    const pick = () => (t % 3 === 0 ? edge[rnd() % edge.length]! : rnd());
    const a = pick(), b = pick(), c = pick(), iv = pick();
    assert.equal(jhash3Words(a, b, c, iv), refWords([a, b, c], iv));
    assert.equal(jhash2Words(a, b, iv), refWords([a, b], iv));
    assert.equal(jhash1Word(a, iv), refWords([a], iv));
    const ports = ((rnd() & 0xffff) * 65536 + (rnd() & 0xffff)) >>> 0;
    assert.equal(
      maglevFlowHash6(a, b, c, iv, ports >>> 16, ports & 0xffff, 17, HASH_INIT6_SEED),
      refV6([a, b, c, iv], ports, 17, HASH_INIT6_SEED),
    );
  }
  for (let len = 0; len <= 50; len++) {
    const k = new Uint8Array(len).map(() => rnd() & 0xff);
    const iv = rnd();
    assert.equal(jhash(k, 0, len, iv), refBytes(k, iv), `len ${len}`);
  }
  for (const x of [jhash3Words(0xffffffff, 0x80000000, 0xffffffff, 0xffffffff), jhash(enc('x'), 0, 1, -1)]) {
    assert.ok(Number.isInteger(x) && x >= 0 && x <= 0xffffffff, `u32 result expected, got ${x}`);
  }
});

test('maglevFlowHash4 hashes the raw tuple fields as loaded on a little-endian host', () => {
  // Client 10.0.0.1:12345 → service port 80, TCP. Lay the tuple fields out in
  // memory in network order and read them back as the BPF program does (LE).
  const mem = new Uint8Array(8);
  const dv = new DataView(mem.buffer);
  dv.setUint32(0, 0x0a000001, false); // tuple.saddr = client address (be32)
  dv.setUint16(4, 12345, false); // tuple.dport = client port (be16)
  dv.setUint16(6, 80, false); // tuple.sport = service port (be16)
  const saddr = dv.getUint32(0, true), dport = dv.getUint16(4, true), sport = dv.getUint16(6, true);
  assert.equal(saddr, 0x0100000a);
  assert.equal(sport, 0x5000);
  assert.equal(saddr, bswap32(0x0a000001));
  assert.equal(dport, bswap16(12345));
  const want = refWords([saddr, ((dport << 16) | sport) >>> 0, 6], HASH_INIT4_SEED);
  assert.equal(maglevFlowHash4(saddr, dport, sport, 6, HASH_INIT4_SEED), want);
  assert.equal(maglevFlowHash4Host(0x0a000001, 12345, 80, 6, HASH_INIT4_SEED), want);
});

test('maglevFlowHash4 with Cilium default HASH_INIT4_SEED on a few tuples (pinned)', () => {
  // [client addr, client port, service port, proto] → hash; literals from the BigInt reference.
  const cases: [number, number, number, number, number][] = [
    [0x0a000001, 12345, 80, 6, 3759877885],
    [0xc0a80164, 40000, 443, 6, 3537245812],
    [0xac100005, 53, 53, 17, 1981435535],
    [0xffffffff, 65535, 65535, 17, 720788227],
  ];
  for (const [addr, cport, sport, proto, want] of cases) {
    const ref = refWords([bswap32(addr), ((bswap16(cport) << 16) | bswap16(sport)) >>> 0, proto], HASH_INIT4_SEED);
    assert.equal(ref, want, 'reference reproduces the pinned value');
    assert.equal(maglevFlowHash4Host(addr, cport, sport, proto, HASH_INIT4_SEED), want);
  }
});

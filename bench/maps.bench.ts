/**
 * Micro-benchmark of src/maps against the naive alternative, measured in the same run.
 *
 *   node --import tsx bench/maps.bench.ts            (all cases)
 *   node --import tsx bench/maps.bench.ts lpm        (cases whose name matches /lpm/)
 *
 * Cases (one op per call; keys pre-generated, visited in a random order):
 *   - hash / lru: lookup hit, lookup miss, update (overwrite) with 14-byte
 *     ipv4_ct_tuple keys at 1k and 500k entries (maxEntries 1024 / 524288,
 *     Cilium's TCP CT size); lru also "insert+evict" on a full map (new-flow churn).
 *   - lpm: longest-prefix lookup of IPv4 addresses in a BGP-like table of 1k and
 *     100k prefixes (every length /8../32 present, plus /0), and an ipcache-like
 *     table (100k /32 + 64 CIDRs + /0).
 * Baseline ("js-map"): a JS Map keyed by a string built from the same key bytes
 * (what a naive implementation would do); LRU baseline = Map with delete+set to
 * touch; LPM baseline = one Map lookup per prefix length in use, longest first.
 * After mitata's report, a table gives ns/op for both and the speed-up.
 */

import { bench, do_not_optimize, group, run } from 'mitata';
import { HashMap, LpmTrieMap, LruHashMap } from '../src/maps/index.ts';

const KS = 14;
const VS = 56; // sizeof(struct ct_entry)
const ORDER = 1 << 16;

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
const rnd = prng(42);

/** `n` random, distinct-enough 14-byte CT tuples in one buffer. */
function tuples(n: number): Uint8Array {
  const b = new Uint8Array(n * KS);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < n; i++) {
    const o = i * KS;
    dv.setUint32(o, 0x0a000000 | (rnd() & 0xffffff), false);
    dv.setUint32(o + 4, 0x0a000000 | (rnd() & 0xffffff), false);
    dv.setUint16(o + 8, rnd() & 0xffff, false);
    dv.setUint16(o + 10, 443, false);
    b[o + 12] = 6;
    b[o + 13] = rnd() & 1;
  }
  return b;
}

/** Random visiting order of `n` items, ORDER long. */
function order(n: number): Int32Array {
  const o = new Int32Array(ORDER);
  for (let i = 0; i < ORDER; i++) o[i] = rnd() % n;
  return o;
}

/** The naive key: a string built from the key bytes. */
function strKey(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(b[off + i]!);
  return s;
}

const value = new Uint8Array(VS).fill(7);
const pairs: [string, string, string][] = []; // [group, ours, baseline]

function hashCases(kind: 'hash' | 'lru', n: number, maxEntries: number): void {
  const label = `${kind} ${n >= 1000 ? `${Math.round(n / 1000)}k` : n}`;
  const m = kind === 'hash'
    ? new HashMap({ keySize: KS, valueSize: VS, maxEntries, seed: 1 })
    : new LruHashMap({ keySize: KS, valueSize: VS, maxEntries, seed: 1 });
  const base = new Map<string, Uint8Array>();
  const present = tuples(n), absent = tuples(n), fresh = tuples(ORDER);
  for (let i = 0; i < n; i++) {
    m.update(present, i * KS, value);
    base.set(strKey(present, i * KS, KS), new Uint8Array(VS));
  }
  const ord = order(n);
  const lruTouch = kind === 'lru';
  let i = 0;
  const name = (op: string) => `${label} ${op}`;
  const add = (op: string, ours: () => unknown, naive: () => unknown) => {
    group(name(op), () => {
      bench(`tapestry ${name(op)}`, ours);
      bench(`js-map ${name(op)}`, naive);
    });
    pairs.push([name(op), `tapestry ${name(op)}`, `js-map ${name(op)}`]);
  };
  add('lookup hit', () => do_not_optimize(m.lookup(present, ord[i++ & (ORDER - 1)]! * KS)), () => {
    const k = strKey(present, ord[i++ & (ORDER - 1)]! * KS, KS);
    const v = base.get(k);
    if (lruTouch && v !== undefined) {
      base.delete(k);
      base.set(k, v);
    }
    do_not_optimize(v);
  });
  add('lookup miss', () => do_not_optimize(m.lookup(absent, ord[i++ & (ORDER - 1)]! * KS)),
    () => do_not_optimize(base.get(strKey(absent, ord[i++ & (ORDER - 1)]! * KS, KS))));
  add('update', () => do_not_optimize(m.update(present, ord[i++ & (ORDER - 1)]! * KS, value)), () => {
    const k = strKey(present, ord[i++ & (ORDER - 1)]! * KS, KS);
    const v = base.get(k)!;
    if (lruTouch) base.delete(k);
    v.set(value);
    base.set(k, v);
  });
  if (kind === 'lru' && n === maxEntries) {
    // Map is full: every new key evicts the oldest one (keys cycle; by the time one returns it was evicted).
    add('insert+evict', () => do_not_optimize(m.update(fresh, (i++ & (ORDER - 1)) * KS, value)), () => {
      const k = strKey(fresh, (i++ & (ORDER - 1)) * KS, KS);
      if (!base.has(k) && base.size >= maxEntries) base.delete(base.keys().next().value!);
      base.set(k, new Uint8Array(VS).fill(7));
    });
  }
}

/** IPv4 LPM table with `n` prefixes, `lenOf()` picking each prefix length. */
function lpmCase(label: string, n: number, lenOf: () => number): void {
  const m = new LpmTrieMap({ keySize: 8, valueSize: 8, maxEntries: n + 1, seed: 1 });
  const base = new Map<string, number>();
  const lens = new Set<number>();
  const key = new Uint8Array(8);
  const dv = new DataView(key.buffer);
  const prefixes: number[] = [];
  const put = (addr: number, len: number) => {
    const masked = len === 0 ? 0 : (addr & (0xffffffff << (32 - len))) >>> 0;
    dv.setUint32(0, len, true);
    dv.setUint32(4, masked, false);
    if (m.update(key, 0, undefined) >= 0) {
      base.set(`${strKey(key, 4, 4)}/${len}`, len);
      lens.add(len);
      prefixes.push(masked, len);
    }
  };
  put(0, 0);
  while (m.count < n + 1) put(rnd(), lenOf());
  const lensDesc = [...lens].sort((a, b) => b - a);
  // Query addresses: 90 % inside a random stored prefix (random host bits), 10 % anywhere (→ /0).
  const q = new Uint8Array(ORDER * 8);
  const qv = new DataView(q.buffer);
  for (let j = 0; j < ORDER; j++) {
    const p = (rnd() % (prefixes.length / 2)) * 2;
    const len = prefixes[p + 1]!;
    const host = len === 32 ? 0 : rnd() & (0xffffffff >>> len);
    qv.setUint32(j * 8, 32, true);
    qv.setUint32(j * 8 + 4, rnd() % 10 === 0 ? rnd() : (prefixes[p]! | host) >>> 0, false);
  }
  const scratch = new Uint8Array(4);
  const sdv = new DataView(scratch.buffer);
  let i = 0;
  const g = `lpm ${label}`;
  group(g, () => {
    bench(`tapestry ${g}`, () => do_not_optimize(m.lookup(q, (i++ & (ORDER - 1)) * 8)));
    bench(`js-map ${g}`, () => {
      const addr = qv.getUint32((i++ & (ORDER - 1)) * 8 + 4, false);
      for (const len of lensDesc) {
        sdv.setUint32(0, len === 0 ? 0 : (addr & (0xffffffff << (32 - len))) >>> 0, false);
        const v = base.get(`${strKey(scratch, 0, 4)}/${len}`);
        if (v !== undefined) return do_not_optimize(v);
      }
      return do_not_optimize(-1);
    });
  });
  pairs.push([`${g} (${lensDesc.length} lengths)`, `tapestry ${g}`, `js-map ${g}`]);
}

/** BGP-like length mix: mostly /24, every length /8../32 present. */
function bgpLen(): number {
  const r = rnd() % 100;
  if (r < 55) return 24;
  if (r < 75) return 16 + (rnd() % 8);
  if (r < 80) return 8 + (rnd() % 8);
  return 25 + (rnd() % 8);
}

hashCases('hash', 1000, 1024);
hashCases('hash', 500_000, 524_288);
hashCases('lru', 1000, 1024);
hashCases('lru', 500_000, 524_288);
hashCases('lru', 524_288, 524_288);
lpmCase('1k bgp-like', 1000, bgpLen);
lpmCase('100k bgp-like', 100_000, bgpLen);
lpmCase('100k ipcache-like', 100_000, () => (rnd() % 1600 === 0 ? 8 + (rnd() % 17) : 32));

const filter = process.argv[2] ? new RegExp(process.argv[2]) : undefined;
const { benchmarks } = await run(filter ? { filter } : {});
const avg = new Map<string, number>();
for (const t of benchmarks) {
  const s = t.runs[0]?.stats;
  if (s) avg.set(t.alias, s.avg);
}

const lru = new LruHashMap({ keySize: KS, valueSize: VS, maxEntries: 524_288 });
console.log(`\nLruHashMap 524288 x (14 B key + 56 B value): ${(lru.byteSize / 2 ** 20).toFixed(1)} MiB, ${(lru.byteSize / 524_288).toFixed(1)} B/entry`);
console.log(`\n${'case'.padEnd(40)} ${'tapestry ns/op'.padStart(15)} ${'js-map ns/op'.padStart(13)} ${'speed-up'.padStart(9)}`);
for (const [name, ours, naive] of pairs) {
  const a = avg.get(ours), b = avg.get(naive);
  if (a === undefined || b === undefined) continue;
  console.log(`${name.padEnd(40)} ${a.toFixed(1).padStart(15)} ${b.toFixed(1).padStart(13)} ${`${(b / a).toFixed(2)}x`.padStart(9)}`);
}

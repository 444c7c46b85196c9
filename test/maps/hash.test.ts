/** HashMap (BPF_MAP_TYPE_HASH): semantics, flags, capacity, iteration, differential vs a JS Map model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, HashMap, murmur3,
} from '../../src/maps/index.ts';
import { below, ctKey, hexOf, prng } from './prng.ts';

const KS = 14;
const VS = 8;

function mk(maxEntries: number, seed = 1): HashMap {
  return new HashMap({ name: 'test_hash', keySize: KS, valueSize: VS, maxEntries, seed });
}

test('murmur3 x86_32 matches the reference vectors', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const h = (s: string, seed: number) => murmur3(enc(s), 0, enc(s).length, seed) >>> 0;
  assert.equal(h('', 0), 0);
  assert.equal(h('', 1), 0x514e28b7);
  assert.equal(h('hello', 0), 0x248bfa47);
  assert.equal(h('The quick brown fox jumps over the lazy dog', 0), 0x2e4ff723);
});

test('insert, lookup, overwrite, delete round-trip', () => {
  const m = mk(16);
  const k = ctKey(new Uint8Array(KS), 0, 42);
  const v = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  assert.equal(m.lookup(k, 0), -1);
  const slot = m.update(k, 0, v);
  assert.ok(slot >= 0);
  assert.equal(m.count, 1);
  assert.equal(m.lookup(k, 0), slot);
  assert.deepEqual(m.values.subarray(slot * VS, slot * VS + VS), v);
  // Overwrite from an offset inside a larger buffer.
  const big = new Uint8Array(20);
  big.set([9, 9, 9, 9, 9, 9, 9, 9], 5);
  assert.equal(m.update(k, 0, big, 5), slot);
  assert.deepEqual(Array.from(m.values.subarray(slot * VS, slot * VS + VS)), [9, 9, 9, 9, 9, 9, 9, 9]);
  // In-place write through the view is what lookups see.
  m.view.setUint32(slot * VS, 0xdeadbeef, true);
  assert.equal(m.view.getUint32(m.lookup(k, 0) * VS, true), 0xdeadbeef);
  assert.equal(m.delete(k, 0), 0);
  assert.equal(m.lookup(k, 0), -1);
  assert.equal(m.delete(k, 0), ENOENT);
  assert.equal(m.count, 0);
  assert.deepEqual({ ...m.stats }, { lookups: 4, hits: 2, misses: 2, updates: 2, deletes: 1, evictions: 0 });
});

test('key at an offset inside a larger buffer', () => {
  const m = mk(4);
  const buf = new Uint8Array(64);
  ctKey(buf, 30, 7);
  const slot = m.update(buf, 30);
  const k2 = ctKey(new Uint8Array(KS), 0, 7);
  assert.equal(m.lookup(k2, 0), slot);
});

test('update without value: zeroed on insert, left as is on overwrite', () => {
  const m = mk(2);
  const k = ctKey(new Uint8Array(KS), 0, 1);
  const s = m.update(k, 0, Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1));
  m.delete(k, 0);
  const s2 = m.update(k, 0); // reuses the freed slot: must come back zeroed
  assert.equal(s2, s);
  assert.deepEqual(Array.from(m.values.subarray(s2 * VS, s2 * VS + VS)), [0, 0, 0, 0, 0, 0, 0, 0]);
  m.values[s2 * VS] = 77;
  assert.equal(m.update(k, 0), s2);
  assert.equal(m.values[s2 * VS], 77);
});

test('flags: NOEXIST on existing → EEXIST, EXIST on missing → ENOENT, bad flags → EINVAL', () => {
  const m = mk(8);
  const k = ctKey(new Uint8Array(KS), 0, 3);
  assert.equal(m.update(k, 0, undefined, 0, BPF_EXIST), ENOENT);
  const s = m.update(k, 0, undefined, 0, BPF_NOEXIST);
  assert.ok(s >= 0);
  assert.equal(m.update(k, 0, undefined, 0, BPF_NOEXIST), EEXIST);
  assert.equal(m.update(k, 0, undefined, 0, BPF_EXIST), s);
  assert.equal(m.update(k, 0, undefined, 0, BPF_ANY), s);
  assert.equal(m.update(k, 0, undefined, 0, 7), EINVAL);
  assert.equal(m.update(k, 0, new Uint8Array(4)), EINVAL); // value shorter than valueSize
});

test('full map refuses new keys with E2BIG but still overwrites existing ones', () => {
  const m = mk(100);
  assert.ok(m.capacity >= 100 / 0.75 && (m.capacity & (m.capacity - 1)) === 0);
  const k = new Uint8Array(KS);
  for (let i = 0; i < 100; i++) assert.ok(m.update(ctKey(k, 0, i), 0) >= 0);
  assert.equal(m.update(ctKey(k, 0, 100), 0), E2BIG);
  assert.ok(m.update(ctKey(k, 0, 5), 0) >= 0);
  assert.equal(m.delete(ctKey(k, 0, 5), 0), 0);
  assert.ok(m.update(ctKey(k, 0, 100), 0) >= 0);
  assert.equal(m.count, 100);
  for (let i = 0; i <= 100; i++) assert.equal(m.lookup(ctKey(k, 0, i), 0) >= 0, i !== 5);
});

test('iterate visits each entry once and survives deleting the visited entry', () => {
  const m = mk(500);
  const k = new Uint8Array(KS);
  for (let i = 0; i < 500; i++) m.values[m.update(ctKey(k, 0, i), 0) * VS] = i & 0xff;
  const seen = new Set<string>();
  m.iterate((key, off, slot) => {
    seen.add(hexOf(key, off, KS));
    if (m.values[slot * VS]! % 2 === 0) assert.equal(m.delete(key, off), 0); // GC-style
  });
  assert.equal(seen.size, 500);
  assert.equal(m.count, 250);
  let left = 0;
  m.iterate((_key, _off, slot) => {
    assert.equal(m.values[slot * VS]! % 2, 1);
    left++;
  });
  assert.equal(left, 250);
  let n = 0;
  m.iterate(() => ++n < 10 ? undefined : false); // early stop
  assert.equal(n, 10);
});

test('clear empties the map and it stays usable', () => {
  const m = mk(64);
  const k = new Uint8Array(KS);
  for (let i = 0; i < 64; i++) m.update(ctKey(k, 0, i), 0);
  m.clear();
  assert.equal(m.count, 0);
  assert.equal(m.lookup(ctKey(k, 0, 1), 0), -1);
  for (let i = 0; i < 64; i++) assert.ok(m.update(ctKey(k, 0, i + 1000), 0) >= 0);
  assert.equal(m.count, 64);
});

test('shared storage: an attached reader sees the writer\'s entries', () => {
  const w = new HashMap({ name: 'shared_hash', keySize: KS, valueSize: VS, maxEntries: 64, shared: true });
  assert.ok(w.values.buffer instanceof SharedArrayBuffer);
  const k = new Uint8Array(KS);
  const s = w.update(ctKey(k, 0, 9), 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  const desc = structuredClone(w.describe());
  const r = HashMap.attach(desc);
  assert.equal(r.count, 1);
  assert.equal(r.peek(k, 0), s);
  assert.equal(r.values[s * VS + 7], 8);
  w.update(ctKey(k, 0, 10), 0);
  assert.equal(r.count, 2);
  assert.throws(() => mk(4).describe());
});

/** Differential run: the map and a Map<string, {slot, value}> model must agree after every op. */
function differential(maxEntries: number, keySpace: number, ops: number, seed: number, keySize = KS): void {
  const rnd = prng(seed);
  const m = new HashMap({ keySize, valueSize: VS, maxEntries, seed });
  const model = new Map<string, { slot: number; value: number[] }>();
  const key = new Uint8Array(keySize + 3);
  const val = new Uint8Array(VS);
  const put = (n: number) => {
    const k = new Uint8Array(Math.max(KS, keySize));
    ctKey(k, 0, n * 2654435761);
    for (let i = 0; i < keySize; i++) key[3 + i] = k[i % KS]! ^ (i >= KS ? n & 0xff : 0);
    return hexOf(key, 3, keySize);
  };
  for (let op = 0; op < ops; op++) {
    const id = put(below(rnd, keySpace));
    const want = model.get(id);
    const r = below(rnd, 10);
    if (r < 4) {
      const slot = m.lookup(key, 3);
      if (!want) assert.equal(slot, -1, `op ${op}: phantom hit`);
      else {
        assert.equal(slot, want.slot, `op ${op}: slot moved`);
        assert.deepEqual(Array.from(m.values.subarray(slot * VS, slot * VS + VS)), want.value);
        const b = below(rnd, VS), x = below(rnd, 256); // in-place write
        m.values[slot * VS + b] = x;
        want.value[b] = x;
      }
    } else if (r < 8) {
      const flags = below(rnd, 3);
      const withValue = below(rnd, 2) === 0;
      for (let i = 0; i < VS; i++) val[i] = rnd() & 0xff;
      const got = m.update(key, 3, withValue ? val : undefined, 0, flags);
      if (want && flags === BPF_NOEXIST) assert.equal(got, EEXIST);
      else if (!want && flags === BPF_EXIST) assert.equal(got, ENOENT);
      else if (!want && model.size >= maxEntries) assert.equal(got, E2BIG);
      else {
        assert.ok(got >= 0, `op ${op}: update failed ${got}`);
        if (want) {
          assert.equal(got, want.slot);
          if (withValue) want.value = Array.from(val);
        } else {
          model.set(id, { slot: got, value: withValue ? Array.from(val) : new Array(VS).fill(0) });
        }
      }
    } else {
      assert.equal(m.delete(key, 3), want ? 0 : ENOENT);
      model.delete(id);
    }
    assert.equal(m.count, model.size);
  }
  const seen = new Set<string>();
  m.iterate((k, off, slot) => {
    const id = hexOf(k, off, keySize);
    assert.equal(model.get(id)?.slot, slot);
    seen.add(id);
  });
  assert.equal(seen.size, model.size);
}

test('differential vs Map model: 100k ops under capacity pressure (75 % load)', () => {
  differential(1536, 3000, 100_000, 0xc0ffee);
});

test('differential vs Map model: tiny map, odd key sizes (tail-only hashing)', () => {
  differential(7, 20, 20_000, 7, 3);
  differential(50, 120, 20_000, 8, 17);
});

/** LruHashMap (BPF_MAP_TYPE_LRU_HASH): eviction order, touching, flags, differential vs an LRU model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BPF_EXIST, BPF_NOEXIST, EEXIST, ENOENT, LruHashMap } from '../../src/maps/index.ts';
import { below, ctKey, hexOf, prng } from './prng.ts';

const KS = 14;
const VS = 4;

function mk(maxEntries: number, seed = 3): LruHashMap {
  return new LruHashMap({ name: 'test_lru', keySize: KS, valueSize: VS, maxEntries, seed });
}
const k = new Uint8Array(KS);
const key = (n: number) => ctKey(k, 0, n);

/** Keys (by id stored in the value) from most to least recently used. */
function order(m: LruHashMap): number[] {
  const out: number[] = [];
  for (let s = m.newest(); s >= 0; s = m.olderThan(s)) out.push(m.view.getUint32(s * VS, true));
  return out;
}
function put(m: LruHashMap, n: number, flags = 0): number {
  const s = m.update(key(n), 0, undefined, 0, flags);
  if (s >= 0) m.view.setUint32(s * VS, n, true);
  return s;
}

test('type and basic round-trip', () => {
  const m = mk(4);
  assert.equal(m.type, 'lru_hash');
  assert.equal(m.name, 'test_lru');
  assert.equal(new LruHashMap({ keySize: 4, valueSize: 0, maxEntries: 1 }).name, 'lru_hash');
  const s = put(m, 1);
  assert.equal(m.lookup(key(1), 0), s);
  assert.equal(m.delete(key(1), 0), 0);
  assert.equal(m.lookup(key(1), 0), -1);
  assert.equal(m.delete(key(1), 0), ENOENT);
  assert.equal(m.oldest(), -1);
  assert.equal(m.newest(), -1);
});

test('full map evicts the least recently used entry, in insertion order', () => {
  const m = mk(4);
  for (let i = 1; i <= 4; i++) put(m, i);
  assert.deepEqual(order(m), [4, 3, 2, 1]);
  put(m, 5); // evicts 1
  assert.equal(m.stats.evictions, 1);
  assert.equal(m.lookup(key(1), 0), -1);
  put(m, 6); // evicts 2
  put(m, 7); // evicts 3
  assert.equal(m.stats.evictions, 3);
  assert.deepEqual(order(m), [7, 6, 5, 4]);
  assert.equal(m.count, 4);
});

test('lookup and update touch an entry and protect it from eviction; peek does not', () => {
  const m = mk(3);
  put(m, 1);
  put(m, 2);
  put(m, 3); // LRU order (old → new): 1 2 3
  assert.ok(m.lookup(key(1), 0) >= 0); // 2 3 1
  put(m, 4); // evicts 2
  assert.equal(m.peek(key(2), 0), -1);
  assert.deepEqual(order(m), [4, 1, 3]);
  put(m, 3); // overwrite touches: 1 4 3
  assert.ok(m.peek(key(1), 0) >= 0); // peek: no touch
  put(m, 5); // evicts 1
  assert.deepEqual(order(m), [5, 3, 4]);
  assert.equal(m.stats.evictions, 2);
});

test('flags keep BPF semantics; NOEXIST still evicts on a full map', () => {
  const m = mk(2);
  put(m, 1);
  put(m, 2);
  assert.equal(put(m, 1, BPF_NOEXIST), EEXIST);
  assert.equal(put(m, 9, BPF_EXIST), ENOENT);
  assert.equal(m.stats.evictions, 0);
  // Failed updates touch nothing, so 1 is still the oldest.
  assert.ok(put(m, 3, BPF_NOEXIST) >= 0);
  assert.deepEqual(order(m), [3, 2]);
  assert.equal(m.stats.evictions, 1);
});

test('delete unlinks from the LRU list (head, middle, tail)', () => {
  const m = mk(5);
  for (let i = 1; i <= 5; i++) put(m, i);
  m.delete(key(3), 0);
  m.delete(key(5), 0);
  m.delete(key(1), 0);
  assert.deepEqual(order(m), [4, 2]);
  put(m, 6);
  put(m, 7);
  put(m, 8);
  put(m, 9); // evicts 2
  assert.deepEqual(order(m), [9, 8, 7, 6, 4]);
});

test('iterate with deletion of the visited entry (GC pattern) keeps the list consistent', () => {
  const m = mk(1000);
  for (let i = 0; i < 1000; i++) put(m, i);
  let visited = 0;
  m.iterate((kb, off, slot) => {
    visited++;
    if (m.view.getUint32(slot * VS, true) % 3 === 0) m.delete(kb, off);
  });
  assert.equal(visited, 1000);
  assert.equal(m.count, 666);
  const o = order(m);
  assert.equal(o.length, 666);
  assert.deepEqual(o, Array.from({ length: 1000 }, (_, i) => 999 - i).filter((i) => i % 3 !== 0));
});

test('clear resets the list', () => {
  const m = mk(3);
  put(m, 1);
  put(m, 2);
  m.clear();
  assert.equal(m.count, 0);
  assert.deepEqual(order(m), []);
  put(m, 3);
  assert.deepEqual(order(m), [3]);
});

test('shared LRU: attached reader walks the same list', () => {
  const w = new LruHashMap({ keySize: KS, valueSize: VS, maxEntries: 8, shared: true, seed: 1 });
  put(w, 1);
  put(w, 2);
  const r = LruHashMap.attach(structuredClone(w.describe()));
  assert.deepEqual(order(r), [2, 1]);
  assert.throws(() => LruHashMap.attach({ ...w.describe(), type: 'hash' }));
});

test('memory: bytes per entry at Cilium\'s TCP CT size (524288, 14-byte key, 56-byte ct_entry)', () => {
  const m = new LruHashMap({ keySize: 14, valueSize: 56, maxEntries: 524288 });
  const perEntry = m.byteSize / m.maxEntries;
  // key 14 + value 56 + prev/next 8 + link 4 + buckets 16 (capacity 2^20, 8 B each) = 98
  assert.ok(perEntry < 100, `bytes/entry ${perEntry}`);
});

/** Differential run against an exact LRU model built on Map's insertion order. */
function differential(maxEntries: number, keySpace: number, ops: number, seed: number): void {
  const rnd = prng(seed);
  const m = mk(maxEntries, seed);
  const model = new Map<string, number>(); // id → value (u32); order = LRU (first = oldest)
  const touch = (id: string, v: number) => {
    model.delete(id);
    model.set(id, v);
  };
  let evictions = 0;
  for (let op = 0; op < ops; op++) {
    const n = below(rnd, keySpace);
    key(n);
    const id = hexOf(k, 0, KS);
    const have = model.has(id);
    const r = below(rnd, 10);
    if (r < 4) {
      const s = m.lookup(k, 0);
      assert.equal(s >= 0, have, `op ${op}`);
      if (have) {
        assert.equal(m.view.getUint32(s * VS, true), model.get(id));
        touch(id, model.get(id)!);
      }
    } else if (r < 8) {
      const flags = below(rnd, 3);
      const v = rnd();
      const s = m.update(k, 0, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24), 0, flags);
      if (have && flags === BPF_NOEXIST) assert.equal(s, EEXIST);
      else if (!have && flags === BPF_EXIST) assert.equal(s, ENOENT);
      else {
        assert.ok(s >= 0);
        if (!have && model.size >= maxEntries) {
          model.delete(model.keys().next().value!);
          evictions++;
        }
        touch(id, v);
      }
    } else {
      assert.equal(m.delete(k, 0), have ? 0 : ENOENT);
      model.delete(id);
    }
    assert.equal(m.count, model.size);
    assert.equal(m.stats.evictions, evictions);
  }
  // Final LRU order must match the model exactly.
  const newestFirst: string[] = [];
  for (let s = m.newest(); s >= 0; s = m.olderThan(s)) newestFirst.push(hexOf(m.keys, s * KS, KS));
  assert.deepEqual(newestFirst.reverse(), [...model.keys()]);
  if (model.size > 0) assert.equal(hexOf(m.keys, m.oldest() * KS, KS), model.keys().next().value);
}

test('differential vs exact-LRU model: 100k ops, key space 3× capacity', () => {
  differential(1000, 3000, 100_000, 0xbeef);
});

test('differential vs exact-LRU model: capacity 1 and 2', () => {
  differential(1, 4, 5000, 1);
  differential(2, 5, 5000, 2);
});

/** ArrayMap (BPF_MAP_TYPE_ARRAY): preexisting zeroed slots, bounds, no delete. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayMap, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL } from '../../src/maps/index.ts';

const idx = (i: number) => {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, i, true);
  return k;
};

test('all slots exist and start zeroed; slot of index i is i', () => {
  const m = new ArrayMap({ name: 'cilium_events_cfg', valueSize: 8, maxEntries: 4 });
  assert.equal(m.type, 'array');
  assert.equal(m.keySize, 4);
  assert.equal(m.count, 4);
  for (let i = 0; i < 4; i++) {
    assert.equal(m.lookup(idx(i), 0), i);
    assert.equal(m.view.getBigUint64(i * 8, true), 0n);
  }
  assert.equal(m.slotOf(3), 3);
  assert.equal(m.slotOf(4), -1);
  assert.equal(m.slotOf(-1), -1);
});

test('bounds: lookup past the end misses, update past the end is E2BIG', () => {
  const m = new ArrayMap({ valueSize: 4, maxEntries: 4 });
  assert.equal(m.lookup(idx(4), 0), -1);
  assert.equal(m.lookup(idx(0xffffffff), 0), -1);
  assert.equal(m.update(idx(4), 0, Uint8Array.of(1, 2, 3, 4)), E2BIG);
  assert.deepEqual({ lookups: m.stats.lookups, hits: m.stats.hits, misses: m.stats.misses }, { lookups: 2, hits: 0, misses: 2 });
});

test('update writes values; NOEXIST → EEXIST; EXIST fine; delete → EINVAL', () => {
  const m = new ArrayMap({ valueSize: 4, maxEntries: 4 });
  assert.equal(m.update(idx(2), 0, Uint8Array.of(1, 2, 3, 4)), 2);
  assert.deepEqual(Array.from(m.values.subarray(8, 12)), [1, 2, 3, 4]);
  assert.equal(m.update(idx(2), 0, Uint8Array.of(5, 5, 5, 5), 0, BPF_NOEXIST), EEXIST);
  assert.equal(m.update(idx(2), 0, Uint8Array.of(6, 6, 6, 6), 0, BPF_EXIST), 2);
  assert.equal(m.update(idx(2), 0, undefined, 0, 3), EINVAL);
  assert.equal(m.delete(idx(2), 0), EINVAL);
  assert.equal(m.values[8], 6);
  m.clear();
  assert.equal(m.values[8], 0);
  assert.equal(m.count, 4);
});

test('iterate visits every index in order with its LE key', () => {
  const m = new ArrayMap({ valueSize: 1, maxEntries: 300 });
  const seen: number[] = [];
  m.iterate((k, off, slot) => {
    assert.equal(new DataView(k.buffer, k.byteOffset).getUint32(off, true), slot);
    seen.push(slot);
    return slot < 299;
  });
  assert.equal(seen.length, 300);
  let n = 0;
  m.iterate(() => ++n < 5);
  assert.equal(n, 5);
});

test('shared array attaches', () => {
  const w = new ArrayMap({ valueSize: 4, maxEntries: 2, shared: true });
  w.update(idx(1), 0, Uint8Array.of(9, 0, 0, 0));
  const r = ArrayMap.attach(structuredClone(w.describe()));
  assert.equal(r.values[4], 9);
});

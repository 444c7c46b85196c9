/** ProgArray (BPF_MAP_TYPE_PROG_ARRAY): missing slots, aliases, bounds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E2BIG, EINVAL, ENOENT, ProgArray } from '../../src/maps/index.ts';

type Prog = { name: string };

test('a missing slot is a missed tail call (undefined) and is counted', () => {
  const pa = new ProgArray<Prog>({ name: 'cilium_calls_00001', maxEntries: 8 });
  assert.equal(pa.type, 'prog_array');
  assert.equal(pa.get(3), undefined);
  assert.equal(pa.get(100), undefined); // beyond maxEntries: also a miss
  assert.equal(pa.get(-1), undefined);
  assert.equal(pa.get(1.5), undefined);
  assert.equal(pa.stats.misses, 4);
});

test('set/get/delete and aliases', () => {
  const pa = new ProgArray<Prog>({ maxEntries: 8 });
  const fromLxc = { name: 'ipv4-from-lxc' };
  assert.equal(pa.set(7, fromLxc), 0);
  assert.equal(pa.set(6, fromLxc), 0); // alias: FROM_NETDEV → FROM_LXC
  assert.equal(pa.get(7), fromLxc);
  assert.equal(pa.get(6), fromLxc);
  assert.equal(pa.count, 2);
  assert.equal(pa.has(6), true);
  assert.equal(pa.delete(7), 0);
  assert.equal(pa.delete(7), ENOENT);
  assert.equal(pa.get(7), undefined);
  assert.equal(pa.get(6), fromLxc);
  assert.equal(pa.count, 1);
  assert.equal(pa.set(8, fromLxc), E2BIG);
  assert.equal(pa.delete(8), E2BIG);
  assert.equal(pa.set(1, undefined as unknown as Prog), EINVAL);
  pa.set(6, { name: 'replacement' });
  assert.equal(pa.count, 1);
  assert.equal(pa.get(6)?.name, 'replacement');
});

test('iterate and clear', () => {
  const pa = new ProgArray<Prog>({ maxEntries: 5 });
  pa.set(4, { name: 'b' });
  pa.set(1, { name: 'a' });
  const seen: string[] = [];
  pa.iterate((id, p) => void seen.push(`${id}:${p.name}`));
  assert.deepEqual(seen, ['1:a', '4:b']);
  pa.clear();
  assert.equal(pa.count, 0);
  assert.equal(pa.get(1), undefined);
});

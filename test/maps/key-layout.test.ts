/** defineLayout: packed offsets, read/write round-trips, byte order, padding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineLayout, HashMap } from '../../src/maps/index.ts';

/** struct ipv4_ct_tuple (bpf/lib/common.h), 14 bytes packed. */
const CT_TUPLE4 = defineLayout({ daddr: 'u32be', saddr: 'u32be', dport: 'u16be', sport: 'u16be', nexthdr: 'u8', flags: 'u8' });

test('ipv4_ct_tuple: size 14, packed offsets', () => {
  assert.equal(CT_TUPLE4.size, 14);
  assert.deepEqual({ ...CT_TUPLE4.offsets }, { daddr: 0, saddr: 4, dport: 8, sport: 10, nexthdr: 12, flags: 13 });
});

test('write then read round-trips; bytes are big-endian where declared', () => {
  const rec = { daddr: 0x0a000001, saddr: 0x0a000002, dport: 80, sport: 40000, nexthdr: 6, flags: 1 };
  const b = CT_TUPLE4.write(rec);
  assert.deepEqual(Array.from(b), [10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0x9c, 0x40, 6, 1]);
  assert.deepEqual(CT_TUPLE4.read(b), rec);
  assert.equal(CT_TUPLE4.get(b, 0, 'sport'), 40000);
  CT_TUPLE4.set(b, 0, 'flags', 4);
  assert.equal(b[13], 4);
  assert.equal(CT_TUPLE4.format(b), 'daddr=167772161 saddr=167772162 dport=80 sport=40000 nexthdr=6 flags=4');
});

test('write at an offset into an existing buffer; untouched fields stay', () => {
  const buf = new Uint8Array(20).fill(0xee);
  CT_TUPLE4.write({ nexthdr: 17 }, buf, 3);
  assert.equal(buf[3 + 12], 17);
  assert.equal(buf[3], 0xee);
  assert.equal(CT_TUPLE4.read(buf, 3).nexthdr, 17);
});

test('padding, host-order, u64 and bytes fields (ipcache key and value shapes)', () => {
  const IPCACHE_KEY = defineLayout({ prefixlen: 'u32', cluster_id: 'u16', pad: 'pad', family: 'u8', addr: 'bytes16' });
  assert.equal(IPCACHE_KEY.size, 24);
  assert.equal(IPCACHE_KEY.offsets.addr, 8);
  const addr = new Uint8Array(16).fill(0xab);
  const b = new Uint8Array(24).fill(0xff);
  IPCACHE_KEY.write({ prefixlen: 160, cluster_id: 0, family: 2, addr }, b);
  assert.equal(b[0], 160); // host order = little-endian
  assert.equal(b[6], 0); // padding zeroed
  const r = IPCACHE_KEY.read(b);
  assert.deepEqual(Object.keys(r), ['prefixlen', 'cluster_id', 'family', 'addr']);
  assert.deepEqual(r.addr, addr);
  const V = defineLayout({ packets: 'u64', bytes: 'u64be', pad4: 'pad4' });
  assert.equal(V.size, 20);
  const vb = V.write({ packets: 1n, bytes: 2n ** 40n });
  assert.deepEqual(V.read(vb), { packets: 1n, bytes: 2n ** 40n });
  assert.throws(() => defineLayout({ x: 'u24' as 'u8' }));
  assert.throws(() => IPCACHE_KEY.write({ addr: new Uint8Array(4) }));
});

test('packet path writes at declared offsets into a scratch key; map sees the same key', () => {
  const m = new HashMap({ keySize: CT_TUPLE4.size, valueSize: 4, maxEntries: 4, seed: 1 });
  const slot = m.update(CT_TUPLE4.write({ daddr: 1, saddr: 2, dport: 3, sport: 4, nexthdr: 6, flags: 0 }), 0);
  const scratch = new Uint8Array(CT_TUPLE4.size);
  const dv = new DataView(scratch.buffer);
  const o = CT_TUPLE4.offsets;
  dv.setUint32(o.daddr, 1);
  dv.setUint32(o.saddr, 2);
  dv.setUint16(o.dport, 3);
  dv.setUint16(o.sport, 4);
  scratch[o.nexthdr] = 6;
  scratch[o.flags] = 0;
  assert.equal(m.lookup(scratch, 0), slot);
});

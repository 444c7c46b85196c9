/** LpmTrieMap (BPF_MAP_TYPE_LPM_TRIE): longest match, /0, IPv4/IPv6/ipcache/policy keys, differential vs brute force. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOSPC, LpmTrieMap,
} from '../../src/maps/index.ts';
import { below, hexOf, prng } from './prng.ts';

/** `{ u32 prefixlen LE, data }` key. */
function lpmKey(plen: number, data: ArrayLike<number>): Uint8Array {
  const k = new Uint8Array(4 + data.length);
  new DataView(k.buffer).setUint32(0, plen, true);
  k.set(data, 4);
  return k;
}
const v4 = (plen: number, ip: string) => lpmKey(plen, ip.split('.').map(Number));
const val = (n: number) => Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);

function mk4(maxEntries = 64): LpmTrieMap {
  return new LpmTrieMap({ name: 'test_lpm4', keySize: 8, valueSize: 4, maxEntries, seed: 11 });
}
function hit(m: LpmTrieMap, k: Uint8Array): number {
  const s = m.lookup(k, 0);
  return s < 0 ? -1 : m.view.getUint32(s * 4, true);
}

test('IPv4: longest prefix wins, /0 default route catches the rest', () => {
  const m = mk4();
  m.update(v4(8, '10.0.0.0'), 0, val(8));
  m.update(v4(16, '10.1.0.0'), 0, val(16));
  m.update(v4(24, '10.1.2.0'), 0, val(24));
  m.update(v4(32, '10.1.2.3'), 0, val(32));
  assert.equal(hit(m, v4(32, '10.1.2.3')), 32);
  assert.equal(hit(m, v4(32, '10.1.2.4')), 24);
  assert.equal(hit(m, v4(32, '10.1.3.4')), 16);
  assert.equal(hit(m, v4(32, '10.9.3.4')), 8);
  assert.equal(hit(m, v4(32, '11.0.0.1')), -1);
  m.update(v4(0, '0.0.0.0'), 0, val(0));
  assert.equal(hit(m, v4(32, '11.0.0.1')), 0);
  assert.deepEqual(m.prefixLengths(), [32, 24, 16, 8, 0]);
  assert.deepEqual({ lookups: m.stats.lookups, hits: m.stats.hits, misses: m.stats.misses }, { lookups: 6, hits: 5, misses: 1 });
});

test('bits past prefixlen are ignored on update, lookup and delete; iterate shows masked keys', () => {
  const m = mk4();
  const s = m.update(v4(20, '192.168.255.255'), 0, val(20)); // stored as 192.168.240.0/20
  assert.equal(m.update(v4(20, '192.168.240.0'), 0, undefined, 0, BPF_NOEXIST), EEXIST);
  assert.equal(m.lookupExact(v4(20, '192.168.241.7'), 0), s);
  assert.equal(hit(m, v4(32, '192.168.243.1')), 20);
  assert.equal(hit(m, v4(32, '192.168.239.1')), -1);
  m.iterate((k, off) => {
    assert.equal(hexOf(k, off, 8), '14000000c0a8f000');
  });
  assert.equal(m.delete(v4(20, '192.168.250.1'), 0), 0);
  assert.equal(m.count, 0);
});

test('lookup key prefixlen bounds the match (kernel semantics)', () => {
  const m = mk4();
  m.update(v4(8, '10.0.0.0'), 0, val(8));
  m.update(v4(24, '10.1.2.0'), 0, val(24));
  assert.equal(hit(m, v4(16, '10.1.2.3')), 8);
  assert.equal(hit(m, v4(4, '10.1.2.3')), -1);
});

test('delete removes the exact prefix only', () => {
  const m = mk4();
  m.update(v4(16, '10.1.0.0'), 0, val(16));
  m.update(v4(24, '10.1.2.0'), 0, val(24));
  assert.equal(m.delete(v4(32, '10.1.2.3'), 0), ENOENT);
  assert.equal(m.delete(v4(23, '10.1.2.0'), 0), ENOENT);
  assert.equal(m.delete(v4(24, '10.1.2.0'), 0), 0);
  assert.equal(hit(m, v4(32, '10.1.2.3')), 16);
  assert.deepEqual(m.prefixLengths(), [16]);
  assert.equal(m.stats.deletes, 1);
});

test('flags, bad prefix length, full map → ENOSPC', () => {
  const m = mk4(3);
  assert.equal(m.update(v4(33, '1.2.3.4'), 0), EINVAL);
  assert.equal(m.update(v4(8, '1.0.0.0'), 0, undefined, 0, BPF_EXIST), ENOENT);
  assert.ok(m.update(v4(8, '1.0.0.0'), 0) >= 0);
  assert.ok(m.update(v4(8, '2.0.0.0'), 0) >= 0);
  assert.ok(m.update(v4(8, '3.0.0.0'), 0) >= 0);
  assert.equal(m.update(v4(8, '4.0.0.0'), 0), ENOSPC);
  assert.ok(m.update(v4(8, '3.0.0.0'), 0, val(5), 0, BPF_EXIST) >= 0); // overwrite still fine
  assert.equal(m.update(v4(8, '1.0.0.0'), 0, undefined, 0, 9), EINVAL);
  assert.throws(() => new LpmTrieMap({ keySize: 4, valueSize: 4, maxEntries: 1 }));
});

test('IPv6 (16-byte data): longest match, ::/0', () => {
  const m = new LpmTrieMap({ keySize: 20, valueSize: 4, maxEntries: 16, seed: 5 });
  const a = (...w: number[]) => w.flatMap((x) => [x >>> 8, x & 0xff]);
  m.update(lpmKey(0, new Array(16).fill(0)), 0, val(0));
  m.update(lpmKey(32, a(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)), 0, val(32));
  m.update(lpmKey(64, a(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0)), 0, val(64));
  m.update(lpmKey(127, a(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x10)), 0, val(127));
  m.update(lpmKey(128, a(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x11)), 0, val(128));
  const q = (...w: number[]) => hit(m, lpmKey(128, a(...w)));
  assert.equal(q(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x11), 128);
  assert.equal(q(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x10), 127);
  assert.equal(q(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0x12), 64);
  assert.equal(q(0x2001, 0xdb8, 9, 2, 0, 0, 0, 0x12), 32);
  assert.equal(q(0xfe80, 0, 0, 0, 0, 0, 0, 1), 0);
});

test('ipcache-shaped keys: 32 static bits keep IPv4 and IPv6 apart', () => {
  // data: cluster_id u16, pad u8, family u8 (1 v4, 2 v6), addr[16]; prefix = 32 + IP prefix
  const m = new LpmTrieMap({ name: 'cilium_ipcache', keySize: 24, valueSize: 4, maxEntries: 64, seed: 2 });
  const k = (family: number, plen: number, addr: number[]) => {
    const d = new Array(20).fill(0);
    d[3] = family;
    addr.forEach((b, i) => (d[4 + i] = b));
    return lpmKey(32 + plen, d);
  };
  m.update(k(1, 0, []), 0, val(2)); // world-ipv4 0.0.0.0/0
  m.update(k(2, 0, []), 0, val(3)); // world-ipv6 ::/0
  m.update(k(1, 32, [10, 0, 1, 5]), 0, val(1234));
  assert.equal(hit(m, k(1, 32, [10, 0, 1, 5])), 1234);
  assert.equal(hit(m, k(1, 32, [10, 0, 1, 6])), 2);
  assert.equal(hit(m, k(2, 128, [10, 0, 1, 5])), 3);
});

test('policy-shaped keys: partial port prefixes encode port ranges', () => {
  // data: sec_label u32, egress u8, protocol u8, dport be16; 40 static bits, +8 proto, +16 port
  const m = new LpmTrieMap({ name: 'cilium_policy_00001', keySize: 12, valueSize: 4, maxEntries: 64, seed: 3 });
  const k = (plen: number, id: number, proto: number, port: number) =>
    lpmKey(plen, [id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff, 0, proto, port >>> 8, port & 0xff]);
  m.update(k(60, 1000, 6, 8000), 0, val(1)); // TCP 8000-8015
  m.update(k(64, 1000, 6, 8008), 0, val(2)); // TCP 8008 exactly
  m.update(k(48, 1000, 17, 0), 0, val(3)); // any UDP port
  m.update(k(40, 2000, 0, 0), 0, val(4)); // identity 2000, anything
  assert.equal(hit(m, k(64, 1000, 6, 8008)), 2);
  assert.equal(hit(m, k(64, 1000, 6, 8015)), 1);
  assert.equal(hit(m, k(64, 1000, 6, 8016)), -1);
  assert.equal(hit(m, k(64, 1000, 17, 53)), 3);
  assert.equal(hit(m, k(64, 2000, 6, 443)), 4);
});

/** Differential run against a brute-force longest-prefix model. */
function differential(dataLen: number, maxEntries: number, ops: number, seed: number, lengths: number[]): void {
  const rnd = prng(seed);
  const maxBits = dataLen * 8;
  const m = new LpmTrieMap({ keySize: 4 + dataLen, valueSize: 4, maxEntries, seed });
  type E = { plen: number; data: Uint8Array; value: number };
  const model = new Map<string, E>();
  // Addresses come from a small pool of "networks" so prefixes nest and overlap.
  const bases = Array.from({ length: 8 }, () => Uint8Array.from({ length: dataLen }, () => rnd() & 0xff));
  const randData = () => {
    const d = bases[below(rnd, bases.length)]!.slice();
    const flip = below(rnd, maxBits + 1); // keep a random-length common prefix with the base
    for (let b = flip; b < maxBits; b++) if (rnd() & 1) d[b >>> 3]! ^= 0x80 >>> (b & 7);
    return d;
  };
  const mask = (d: Uint8Array, plen: number) => {
    const o = d.slice();
    for (let b = plen; b < maxBits; b++) o[b >>> 3]! &= ~(0x80 >>> (b & 7));
    return o;
  };
  const id = (plen: number, d: Uint8Array) => `${plen}/${hexOf(mask(d, plen), 0, dataLen)}`;
  const covers = (e: E, d: Uint8Array) => {
    const full = e.plen >>> 3, r = e.plen & 7;
    for (let i = 0; i < full; i++) if (d[i] !== e.data[i]) return false;
    return r === 0 || ((d[full]! ^ e.data[full]!) & (0xff00 >> r) & 0xff) === 0;
  };
  const brute = (plen: number, d: Uint8Array) => {
    let best: E | undefined;
    for (const e of model.values()) {
      if (e.plen > plen || (best && best.plen >= e.plen)) continue;
      if (covers(e, d)) best = e;
    }
    return best;
  };
  for (let op = 0; op < ops; op++) {
    const d = randData();
    const r = below(rnd, 10);
    if (r < 5) {
      const plen = below(rnd, 4) === 0 ? below(rnd, maxBits + 1) : maxBits;
      const s = m.lookup(lpmKey(plen, d), 0);
      const want = brute(plen, d);
      assert.equal(s < 0 ? undefined : m.view.getUint32(s * 4, true), want?.value, `op ${op}`);
    } else {
      const plen = lengths[below(rnd, lengths.length)]!;
      const key = lpmKey(plen, d);
      const have = model.has(id(plen, d));
      if (r < 8) {
        const v = rnd();
        const s = m.update(key, 0, val(v));
        if (!have && model.size >= maxEntries) assert.equal(s, ENOSPC);
        else {
          assert.ok(s >= 0);
          model.set(id(plen, d), { plen, data: mask(d, plen), value: v });
        }
      } else {
        assert.equal(m.delete(key, 0), have ? 0 : ENOENT);
        model.delete(id(plen, d));
      }
    }
    assert.equal(m.count, model.size);
  }
  assert.ok(m.stats.hits > ops / 10 && m.stats.misses > ops / 10 && m.stats.deletes > ops / 200, "test exercises hits, misses and deletes");
  assert.deepEqual(m.prefixLengths(), [...new Set([...model.values()].map((e) => e.plen))].sort((a, b) => b - a));
}

test('differential vs brute force: IPv4, every length 0..32', () => {
  differential(4, 400, 30_000, 0x1234, Array.from({ length: 33 }, (_, i) => i));
});

test('differential vs brute force: IPv6, mixed lengths incl. odd bit counts', () => {
  differential(16, 300, 20_000, 0x5678, [0, 1, 7, 8, 9, 31, 48, 56, 63, 64, 65, 100, 127, 128]);
});

test('differential vs brute force: odd data sizes (5 bytes) and ipcache-sized keys (20 bytes)', () => {
  differential(5, 200, 10_000, 0x9abc, [0, 3, 8, 31, 32, 33, 39, 40]);
  differential(20, 200, 10_000, 0xdef0, [0, 32, 40, 56, 64, 96, 120, 159, 160]);
});

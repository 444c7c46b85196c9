/**
 * The node's address maps on their own: cilium_ipcache (longest prefix,
 * families apart), cilium_tunnel_map (pod CIDR -> node, mixed prefix
 * lengths) and the underlay neighbour table (held frames, ARP retries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipcache } from '../../src/datapath/lib/ipcache.ts';
import { TunnelMap } from '../../src/datapath/lib/tunnel-map.ts';
import { NeighTable } from '../../src/datapath/lib/neigh.ts';
import { parseIpv4 as ip, parseIpv6, parseMac } from '../../src/wire/addr.ts';

const mac = (s: string) => parseMac(s);
/** A held frame: a zero virtio-net header and one byte to tell it apart. */
const frame = (tag: number) => Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, tag);
/** An IPv6 address in a 40-byte buffer at offset 24, where an IPv6 header keeps its destination. */
const v6 = (s: string) => ({ at: () => { const buf = new Uint8Array(40); buf.set(parseIpv6(s), 24); return buf; } });

/** Identity and tunnel endpoint of the ipcache's answer for an IPv4 address, or null. */
function get4(c: Ipcache, a: string): [number, number] | null {
  const s = c.lookup4(ip(a));
  return s < 0 ? null : [c.identity(s), c.tunnelEndpoint(s)];
}

function get6(c: Ipcache, a: string): number | null {
  const s = c.lookup6(v6(a).at(), 24);
  return s < 0 ? null : c.identity(s);
}

test('ipcache: /32 beats /24 beats /0, whatever the insertion order', () => {
  for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
    const c = new Ipcache(64);
    const rows: [string, number, number, number][] = [
      ['0.0.0.0', 0, 2, 0],
      ['10.0.2.0', 24, 2, ip('192.168.1.2')],
      ['10.0.2.10', 32, 3000, ip('192.168.1.2')],
    ];
    for (const k of order) {
      const [a, len, id, tep] = rows[k]!;
      c.upsert4(ip(a), len, id, tep);
    }
    assert.deepEqual(get4(c, '10.0.2.10'), [3000, ip('192.168.1.2')], `/32 wins (order ${order})`);
    assert.deepEqual(get4(c, '10.0.2.11'), [2, ip('192.168.1.2')], `/24 wins over /0 (order ${order})`);
    assert.deepEqual(get4(c, '8.8.8.8'), [2, 0], `/0 catches the rest (order ${order})`);
  }
});

test('ipcache: deleting the /32 falls back to the /24, then to the /0', () => {
  const c = new Ipcache(64);
  c.upsert4(0, 0, 2, 0);
  c.upsert4(ip('10.0.2.0'), 24, 5, 7);
  c.upsert4(ip('10.0.2.10'), 32, 3000, 7);
  c.delete4(ip('10.0.2.10'), 32);
  assert.deepEqual(get4(c, '10.0.2.10'), [5, 7]);
  c.delete4(ip('10.0.2.0'), 24);
  assert.deepEqual(get4(c, '10.0.2.10'), [2, 0]);
  c.delete4(0, 0);
  assert.equal(get4(c, '10.0.2.10'), null);
});

test('ipcache: IPv4 and IPv6 prefixes never shadow one another', () => {
  const c = new Ipcache(64);
  // ::/0 has no address bits at all: only the family tells it apart from 0.0.0.0/0.
  c.upsert6(parseIpv6('::'), 0, 10, 0);
  assert.equal(get4(c, '10.0.0.1'), null, 'an IPv6 default route does not answer IPv4 lookups');
  // An IPv6 prefix whose first bytes equal an IPv4 address.
  c.upsert6(parseIpv6('a00:1::'), 32, 4000, 0);
  assert.equal(get4(c, '10.0.0.1'), null, 'IPv6 a00:1::/32 does not match IPv4 10.0.0.1');
  c.upsert4(0, 0, 9, 0);
  c.upsert4(ip('10.0.0.1'), 32, 3000, 0);
  assert.equal(get6(c, 'a00:1::5'), 4000, 'IPv4 10.0.0.1/32 does not match IPv6 a00:1::5');
  assert.equal(get6(c, 'fd00::1'), 10, 'IPv4 0.0.0.0/0 does not answer IPv6 lookups');
  assert.deepEqual(get4(c, '10.0.0.1'), [3000, 0]);
  assert.deepEqual(get4(c, '10.0.0.2'), [9, 0]);
});

test('ipcache: IPv6 longest prefix', () => {
  const c = new Ipcache(64);
  c.upsert6(parseIpv6('::'), 0, 2, 0);
  c.upsert6(parseIpv6('fd00:2::'), 64, 2, ip('192.168.1.2'));
  c.upsert6(parseIpv6('fd00:2::a'), 128, 3000, ip('192.168.1.2'));
  const s = c.lookup6(v6('fd00:2::a').at(), 24);
  assert.equal(c.identity(s), 3000);
  assert.equal(c.tunnelEndpoint(s), ip('192.168.1.2'));
  const t = c.lookup6(v6('fd00:2::b').at(), 24);
  assert.equal(c.identity(t), 2);
  assert.equal(c.tunnelEndpoint(t), ip('192.168.1.2'));
  assert.equal(c.tunnelEndpoint(c.lookup6(v6('fd00:3::a').at(), 24)), 0);
});

test('ipcache: prefix lengths out of range are refused', () => {
  const c = new Ipcache(8);
  assert.throws(() => c.upsert4(0, 33, 2, 0), RangeError);
  assert.throws(() => c.upsert6(parseIpv6('::'), 129, 2, 0), RangeError);
  assert.throws(() => c.upsert4(0, -1, 2, 0), RangeError);
});

test('tunnel map: longest prefix across nodes with different pod CIDR sizes', () => {
  const t = new TunnelMap(64);
  t.upsert4(ip('10.0.0.0'), 16, ip('192.168.1.9'));
  t.upsert4(ip('10.0.2.0'), 24, ip('192.168.1.2'));
  t.upsert4(ip('10.0.2.128'), 25, ip('192.168.1.3'));
  t.upsert4(ip('10.1.0.0'), 24, ip('192.168.1.4'));
  assert.equal(t.lookup4(ip('10.0.2.200')), ip('192.168.1.3'), '/25 beats /24');
  assert.equal(t.lookup4(ip('10.0.2.5')), ip('192.168.1.2'), '/24 beats /16');
  assert.equal(t.lookup4(ip('10.0.7.1')), ip('192.168.1.9'), 'the /16 covers the rest');
  assert.equal(t.lookup4(ip('10.1.0.77')), ip('192.168.1.4'));
  assert.equal(t.lookup4(ip('10.2.0.1')), 0, 'no prefix: 0');
});

test('tunnel map: an address outside every prefix is not matched by a prefix of another length', () => {
  // 10.0.0.0/24 on one node, a /16 elsewhere: 10.0.7.7 masked to /16 is
  // 10.0.0.0, the /24's network address, but it is not inside the /24.
  const t = new TunnelMap(64);
  t.upsert4(ip('10.0.0.0'), 24, ip('192.168.1.2'));
  t.upsert4(ip('10.5.0.0'), 16, ip('192.168.1.3'));
  assert.equal(t.lookup4(ip('10.0.0.7')), ip('192.168.1.2'));
  assert.equal(t.lookup4(ip('10.0.7.7')), 0, '10.0.7.7 is in no pod CIDR');
  assert.equal(t.lookup4(ip('10.5.3.3')), ip('192.168.1.3'));
});

test('tunnel map: prefixes sharing a network address but not a length are kept apart', () => {
  const t = new TunnelMap(64);
  t.upsert4(ip('10.0.0.0'), 16, ip('192.168.1.9'));
  t.upsert4(ip('10.0.0.0'), 24, ip('192.168.1.2'));
  assert.equal(t.lookup4(ip('10.0.0.5')), ip('192.168.1.2'), '/24 beats /16');
  assert.equal(t.lookup4(ip('10.0.9.5')), ip('192.168.1.9'), 'the /16 is still there');
  t.delete4(ip('10.0.0.0'), 24);
  assert.equal(t.lookup4(ip('10.0.0.5')), ip('192.168.1.9'));
  t.delete4(ip('10.0.0.0'), 16);
  assert.equal(t.lookup4(ip('10.0.0.5')), 0);
});

test('tunnel map: update, delete, host bits ignored, dump', () => {
  const t = new TunnelMap(64);
  t.upsert4(ip('10.0.2.77'), 24, ip('192.168.1.2'));
  assert.equal(t.lookup4(ip('10.0.2.1')), ip('192.168.1.2'), 'host bits of the prefix are masked off');
  t.upsert4(ip('10.0.2.0'), 24, ip('192.168.1.5'));
  assert.equal(t.lookup4(ip('10.0.2.1')), ip('192.168.1.5'), 'upsert replaces the endpoint');
  assert.deepEqual(t.dump(), [{ prefix: '10.0.2.0:0', endpoint: '192.168.1.5:0' }]);
  t.delete4(ip('10.0.2.0'), 24);
  assert.equal(t.lookup4(ip('10.0.2.1')), 0);
  assert.deepEqual(t.dump(), []);
  t.delete4(ip('10.0.2.0'), 24); // deleting twice is harmless
  t.upsert4(0, 0, ip('192.168.1.7'));
  assert.equal(t.lookup4(ip('1.2.3.4')), ip('192.168.1.7'), 'a /0 matches everything');
});

test('neigh: an unknown neighbour holds up to 3 frames; requests repeat no more than once per retry interval', () => {
  const n = new NeighTable();
  const gw = ip('192.168.1.254');
  assert.equal(n.lookup(gw), -1);
  assert.equal(n.hold(gw, frame(1), 1000), true, 'first frame: request now');
  assert.equal(n.hold(gw, frame(2), 1500), false, 'within the retry interval: no new request');
  assert.equal(n.hold(gw, frame(3), 1999), false);
  assert.equal(n.hold(gw, frame(4), 2000), true, 'retry interval passed: request again');
  assert.equal(n.queueDrops, 1, 'the 4th frame does not fit in the queue');
  assert.equal(n.unresolved, 1);
  assert.equal(n.hasReady, false);
  n.learn(gw, mac('02:00:00:00:00:fe'), 0, 2100);
  assert.equal(n.unresolved, 0);
  assert.equal(n.hasReady, true);
  const r = n.takeReady();
  assert.equal(r.length, 1);
  assert.equal(r[0]!.ip, gw);
  assert.deepEqual(r[0]!.frames.map((f) => f[10]), [1, 2, 3], 'the first three frames, in order');
  assert.equal(n.hasReady, false, 'takeReady empties the ready list');
  assert.deepEqual(n.takeReady(), []);
  const o = n.lookup(gw);
  assert.ok(o >= 0, 'resolved');
  assert.equal(Buffer.from(n.macs.subarray(o, o + 6)).toString('hex'), '0200000000fe');
});

test('neigh: maxPending and retryMs are configurable; learning without waiting frames readies nothing', () => {
  const n = new NeighTable({ maxPending: 1, retryMs: 50 });
  const a = ip('192.168.1.2');
  assert.equal(n.hold(a, frame(1), 0), true);
  assert.equal(n.hold(a, frame(2), 49), false);
  assert.equal(n.hold(a, null, 50), true, 'a retry without a frame');
  assert.equal(n.queueDrops, 1);
  const b = ip('192.168.1.3');
  assert.equal(n.hold(b, null, 0), true);
  n.learn(b, mac('02:00:00:00:00:03'), 0, 1);
  assert.equal(n.hasReady, false, 'nothing was waiting for b');
  n.learn(a, mac('02:00:00:00:00:02'), 0, 2);
  assert.deepEqual(n.takeReady().map((r) => [r.ip, r.frames.length]), [[a, 1]]);
});

test('neigh: a changed MAC is relearnt in place; many neighbours grow the table', () => {
  const n = new NeighTable();
  const a = ip('192.168.1.2');
  n.learn(a, mac('02:00:00:00:00:02'), 0, 0);
  const o = n.lookup(a);
  n.learn(a, mac('02:00:00:00:00:22'), 0, 5000);
  assert.equal(n.lookup(a), o, 'same entry');
  assert.equal(n.dump(6000)[0]!.mac, '02:00:00:00:00:22');
  assert.equal(n.dump(6000)[0]!.ageSeconds, 1);
  for (let k = 0; k < 200; k++) n.learn(ip('10.9.0.0') + k, Uint8Array.of(2, 0, 0, 0, k >> 8, k & 0xff), 0, 0);
  for (let k = 0; k < 200; k += 37) {
    const x = n.lookup(ip('10.9.0.0') + k);
    assert.equal(n.macs[x + 5], k & 0xff, `neighbour ${k} keeps its MAC after the table grew`);
  }
  assert.equal(n.macs[n.lookup(a) + 5], 0x22);
});

/**
 * Conntrack GC (src/datapath/lib/conntrack-gc.ts): what a run deletes, the
 * onDelete hook, per-table stats and metrics, and Cilium's adaptive interval.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CT4, CT_ENTRY as E, TUPLE_F_RELATED } from '../../src/datapath/lib/conntrack-map.ts';
import {
  CT_EGRESS, CT_NEW, CT_SIGNAL_V4, Conntrack, CtState, ctCreate4, ctCreate6, ctLookup4,
} from '../../src/datapath/lib/conntrack.ts';
import { CtGc, ctGcNextInterval, type CtFamilyName } from '../../src/datapath/lib/conntrack-gc.ts';

/** Create an egress flow 10.0.<n>.1:<n> → 10.1.0.1:80 (TCP or UDP) at `now` via lookup + create. */
function flow4(ct: Conntrack, n: number, proto: 6 | 17, now: number): number {
  const t = new Uint8Array(CT4.SIZE);
  t.set([10, 1, 0, 1], CT4.DADDR);
  t.set([10, 0, (n >> 8) & 0xff, n & 0xff], CT4.SADDR);
  t[CT4.DPORT] = n >> 8;
  t[CT4.DPORT + 1] = n & 0xff;
  t[CT4.SPORT + 1] = 80;
  t[CT4.NEXTHDR] = proto;
  const st = new CtState();
  assert.equal(ctLookup4(ct, t, CT_EGRESS, proto === 6 ? 2 : 0, 60, now, st), CT_NEW);
  return ctCreate4(ct, t, CT_EGRESS, proto === 6 ? 2 : 0, 60, now, st);
}

const mk = (n = 100, evict = true) => new Conntrack({ sizes: { tcp4: n, any4: n, tcp6: n, any6: n }, seed: 5, evict });

test('run deletes only entries with lifetime < now, in every table, and calls onDelete first', () => {
  const ct = mk();
  for (let i = 1; i <= 10; i++) assert.equal(flow4(ct, i, 6, 0), 0);   // lifetime 60 (SYN timeout)
  for (let i = 11; i <= 15; i++) assert.equal(flow4(ct, i, 17, 100), 0); // lifetime 160
  const t6 = new Uint8Array(38);
  t6[15] = 1;
  t6[31] = 2;
  t6[36] = 17;
  assert.equal(ctCreate6(ct, t6, CT_EGRESS, 0, 80, 0, new CtState()), 0); // lifetime 60, + ICMPv6 companion
  assert.equal(ct.maps.any4.count, 15 + 5, 'TCP and UDP companions plus UDP entries');
  const seen: { family: CtFamilyName; map: string; lifetime: number; related: boolean }[] = [];
  const gc = new CtGc(ct, {
    onDelete: (family, key, off, slot, map) => {
      const lifetime = map.view.getUint32(slot * E.SIZE + E.LIFETIME, true);
      seen.push({ family, map: map.name, lifetime, related: (key[off + (family === 'ipv4' ? 13 : 37)]! & TUPLE_F_RELATED) !== 0 });
    },
    hrtime: () => 0,
  });
  gc.run(60);
  assert.equal(seen.length, 0, 'lifetime == now is still alive');
  gc.run(61);
  assert.equal(ct.maps.tcp4.count, 0);
  assert.equal(ct.maps.any4.count, 10, 'UDP entries and their companions (160) stay; the TCP companions (60) go');
  assert.equal(ct.maps.tcp6.count + ct.maps.any6.count, 0);
  assert.equal(seen.length, 10 + 10 + 2);
  assert.ok(seen.every((s) => s.lifetime < 61), 'value readable in the hook, before deletion');
  assert.equal(seen.filter((s) => s.related).length, 10 + 1);
  assert.equal(seen.filter((s) => s.family === 'ipv6').length, 2);
  const run = gc.lastRun!;
  assert.deepEqual(run.tables.map((t) => [t.family, t.protocol, t.map, t.alive, t.deleted]), [
    ['ipv4', 'TCP', 'cilium_ct4_global', 0, 10],
    ['ipv4', 'non-TCP', 'cilium_ct_any4_global', 10, 10],
    ['ipv6', 'TCP', 'cilium_ct6_global', 0, 0],
    ['ipv6', 'non-TCP', 'cilium_ct_any6_global', 0, 2],
  ]);
  gc.run(161);
  assert.equal(ct.maps.any4.count, 0);
  assert.equal(gc.totalDeleted, 32);
  const m = gc.metrics();
  const runs = m.find((x) => x.name === 'cilium_datapath_conntrack_gc_runs_total' && x.labels.family === 'ipv4' && x.labels.protocol === 'TCP');
  assert.equal(runs?.value, 3);
  assert.equal(runs?.labels.status, 'completed');
  const del = m.find((x) => x.name === 'cilium_datapath_conntrack_gc_entries' && x.labels.protocol === 'non-TCP' &&
    x.labels.family === 'ipv4' && x.labels.status === 'deleted');
  assert.equal(del?.value, 10);
  assert.ok(m.some((x) => x.name === 'cilium_datapath_conntrack_gc_duration_seconds'), 'duration samples');
});

test('interval math: shrink above 25 %, grow below 5 %, clamp at 0.9, floor 10 s, ceiling 12 h', () => {
  assert.equal(ctGcNextInterval(300, 0.5), 150);
  assert.equal(ctGcNextInterval(300, 0.3), 210);
  assert.equal(ctGcNextInterval(301, 0.3), 211, 'rounded to whole seconds');
  assert.equal(ctGcNextInterval(300, 0.95), 30, 'ratio capped at 0.9');
  assert.equal(ctGcNextInterval(300, 5), 30);
  assert.equal(ctGcNextInterval(20, 0.9), 10, 'floor');
  assert.equal(ctGcNextInterval(300, 0.25), 300, '0.25 is not above 0.25');
  assert.equal(ctGcNextInterval(300, 0.05), 300, '0.05 is not below 0.05');
  assert.equal(ctGcNextInterval(300, 0.1), 300);
  assert.equal(ctGcNextInterval(300, 0.01), 450);
  assert.equal(ctGcNextInterval(300, 0), 450);
  assert.equal(ctGcNextInterval(40000, 0), 43200, 'ceiling');
  assert.equal(ctGcNextInterval(400, 0, 10, 500), 500, 'configured maximum');
});

test('adaptive schedule: ratio = deleted / maxEntries; run() returns the next interval; nextRunAt/due', () => {
  const ct = mk(100);
  const gc = new CtGc(ct, { now: 1000 });
  assert.equal(gc.nextRunAt(), 1300, 'first run after the 5 min starting interval');
  assert.equal(gc.due(1299), false);
  assert.equal(gc.due(1300), true);
  for (let i = 1; i <= 50; i++) flow4(ct, i, 6, 1000); // 50/100 of tcp4 expire at 1061
  assert.equal(gc.run(1300), 150);
  assert.equal(gc.lastRun!.ratio, 0.5);
  assert.equal(gc.nextRunAt(), 1450);
  assert.equal(gc.run(1450), 225, 'nothing deleted: × 1.5');
  assert.equal(gc.run(1675), 338);
  // A fixed interval ignores the ratio.
  const fixed = new CtGc(mk(100), { interval: 60 });
  assert.equal(fixed.run(60), 60);
  assert.equal(fixed.nextRunAt(), 120);
});

test('a "map full" signal makes the next run due after the holdoff; that run covers the signalled family only', () => {
  const ct = mk(4, false);
  const gc = new CtGc(ct, { now: 0 });
  assert.equal(flow4(ct, 1, 17, 0), 0); // any4: entry + companion
  assert.equal(flow4(ct, 2, 17, 0), 0); // any4 now full (4)
  assert.equal(ct.fullSignal, 0);
  assert.equal(flow4(ct, 3, 17, 0), -155);
  assert.equal(ct.fullSignal, CT_SIGNAL_V4, 'a failed insert signalled');
  assert.equal(gc.nextRunAt(), 1);
  assert.equal(gc.due(1), true);
  gc.run(100); // everything expired at 61
  const run = gc.lastRun!;
  assert.equal(run.bySignal, true);
  assert.deepEqual(run.tables.map((t) => t.family), ['ipv4', 'ipv4']);
  assert.equal(ct.fullSignal, 0, 'signal consumed');
  assert.equal(ct.maps.any4.count, 0);
  // Ratio 4/4 = 1 scaled by 300/100 → capped at 0.9 → 300 × 0.1 = 30.
  assert.equal(run.ratio, 3);
  assert.equal(run.interval, 30);
  assert.equal(gc.nextRunAt(), 130);
});

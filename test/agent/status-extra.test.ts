/** Drops of the last minute come from samples of the counters; controllers report the GC's last run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropHistory, controllers } from '../../src/agent/status-extra.ts';

test('DropHistory: only drops counted since the sample a minute ago', () => {
  let count = 5;
  const h = new DropHistory(() => ({ drops: [{ reason: 133, reasonString: 'Policy denied', direction: 'INGRESS', count }] }), 60_000);
  assert.deepEqual(h.lastMinute(), [], 'nothing new since the first sample');
  count = 12;
  assert.deepEqual(h.lastMinute().map((d) => d.count), [7], 'seven since');
  h.stop();
});

test('controllers: the GC with its last run and next run', () => {
  const c = controllers({ gc: { lastRun: { at: 100, interval: 300 }, nextRunAt: 400, now: 130 } }, true);
  assert.deepEqual(c[0], { name: 'ct-map-gc', status: 'ok', lastRun: '30s ago', detail: 'next in 270s, interval 300s' });
  assert.equal(controllers(null, false)[1]!.status, 'failing');
  assert.equal(controllers({ gc: { lastRun: null, nextRunAt: 300, now: 0 } }, true)[0]!.lastRun, 'never');
});

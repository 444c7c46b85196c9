/**
 * Service lookup cost with 10 vs 100,000 services (issue target: flat,
 * 100k within 1.2x of 10), and backend selection per new connection
 * (random vs Maglev), against the baseline measured in the same run: a JS
 * Map keyed by "vip:port" strings, what a naive implementation would use.
 *
 * Run: node --import tsx bench/lb.bench.ts
 */
import { bench, do_not_optimize, run, summary } from 'mitata';
import { createLbMaps } from '../src/datapath/lib/lb-map.ts';
import { Lb4 } from '../src/datapath/lib/lb.ts';
import { Conntrack } from '../src/datapath/lib/conntrack.ts';
import { ServiceWriter } from '../src/datapath/services.ts';

function build(n: number) {
  const lb = new Lb4(createLbMaps({ services: Math.max(65536, n * 4), backends: 65536, revNat: 65536 }), new Conntrack({ sizes: { tcp4: 1024, any4: 1024, tcp6: 16, any6: 16 } }));
  const w = new ServiceWriter(lb);
  const naive = new Map<string, number>();
  const vips: number[] = [];
  for (let i = 0; i < n; i++) {
    const vip = (0x0a600000 + i) >>> 0; // 10.96.x.y
    vips.push(vip);
    w.upsert({ revNat: (i % 65535) + 1, vip, port: 80, flags: 0, algorithm: 'random', backends: [{ id: 1 + (i % 1000), ip: 0x0ac80002 + (i % 200), port: 8080, weight: 100, state: 'active', name: `b${i % 1000}` }] });
    naive.set(`${vip}:80`, i);
  }
  return { lb, naive, vips };
}

const small = build(10);
const large = build(100_000);
let k = 0;

summary(() => {
  bench('lookupService, 10 services', () => {
    k = (k + 1) % 10;
    do_not_optimize(small.lb.lookupService(small.vips[k]!, 80));
  });
  bench('lookupService, 100,000 services', () => {
    k = (k + 7919) % 100_000;
    do_not_optimize(large.lb.lookupService(large.vips[k]!, 80));
  });
  bench('baseline: Map<string>, 100,000 services', () => {
    k = (k + 7919) % 100_000;
    do_not_optimize(large.naive.get(`${large.vips[k]!}:80`));
  });
});

await run();

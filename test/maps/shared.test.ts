/** { shared: true }: a worker thread attaches to the writer's SharedArrayBuffers and reads a dump. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { LruHashMap } from '../../src/maps/index.ts';
import { ctKey } from './prng.ts';

test('worker reads a dump of a shared LRU map', async () => {
  const m = new LruHashMap({ name: 'cilium_ct4_global', keySize: 14, valueSize: 4, maxEntries: 100, shared: true });
  const k = new Uint8Array(14);
  for (let i = 0; i < 150; i++) m.view.setUint32(m.update(ctKey(k, 0, i), 0) * 4, i, true); // 50 evicted
  for (let i = 100; i < 110; i++) m.delete(ctKey(k, 0, i), 0);
  const reply = await new Promise<{ count: number; dump: { slot: number; key: number[]; value: number }[] }>((resolve, reject) => {
    // Workers do not inherit the tsx loader hooks: register them first, then load the TS reader.
    const reader = new URL('./shared-reader.ts', import.meta.url).href;
    const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(reader)}); })`;
    const w = new Worker(boot, { eval: true, workerData: m.describe() });
    w.once('message', (msg) => {
      void w.terminate();
      resolve(msg);
    });
    w.once('error', reject);
  });
  assert.equal(reply.count, 90);
  assert.deepEqual(reply.dump.map((e) => e.value).sort((a, b) => a - b), [...Array.from({ length: 90 }, (_, i) => i < 50 ? 50 + i : 60 + i)]);
  for (const e of reply.dump) assert.deepEqual(e.key, Array.from(ctKey(new Uint8Array(14), 0, e.value)));
});

/** Worker used by shared.test.ts: attaches to a shared LRU map and dumps it back to the parent. */
import { parentPort, workerData } from 'node:worker_threads';
import { LruHashMap, type SharedMapDescriptor } from '../../src/maps/index.ts';

const m = LruHashMap.attach(workerData as SharedMapDescriptor);
const dump: { slot: number; key: number[]; value: number }[] = [];
m.iterate((key, off, slot) => {
  dump.push({ slot, key: Array.from(key.subarray(off, off + m.keySize)), value: m.view.getUint32(slot * m.valueSize, true) });
});
parentPort!.postMessage({ count: m.count, dump });

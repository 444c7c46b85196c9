// Worker entry. Node 20 does not pass the parent's module hooks (tsx) on to
// worker threads, so the worker registers tsx itself and then loads the
// TypeScript datapath worker.
import { register } from 'tsx/esm/api';

register();
await import('./datapath-worker.ts');

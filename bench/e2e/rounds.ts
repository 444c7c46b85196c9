/**
 * The rounds loop the cluster, policy and observability legs share.
 *
 *   runRounds(results, order, { runs, duration, log }, hooks)
 *
 * - `interleaved`: every leg up, then round r runs every leg in turn (load
 *   drifting on the shared cores hits all legs alike), then `after` on the
 *   legs that came up, then all down in reverse order.
 * - `sequential`: each leg up, its rounds, `after`, down, before the next.
 * Legs that fail to come up are skipped (setUp records why); teardown always
 * runs; an abort (SIGINT) ends the loop at the next step.
 */
import { isAborted } from './proc.ts';

/** What a kind of leg plugs into the loop. */
export interface RoundHooks<R, U extends { leg: string }> {
  setUp(result: R): Promise<U | null>;
  round(up: U, result: R, r: number): Promise<void>;
  tearDown(up: U, result: R): Promise<void>;
  /** After the rounds, on the legs that are up (e.g. captures). */
  after?(legs: { up: U; result: R }[]): Promise<void>;
}

export async function runRounds<R, U extends { leg: string }>(
  results: readonly R[],
  order: 'interleaved' | 'sequential',
  opts: { runs: number; duration: number; log: (m: string) => void },
  hooks: RoundHooks<R, U>,
): Promise<void> {
  if (order === 'sequential') {
    for (const result of results) {
      if (isAborted()) break;
      const up = await hooks.setUp(result);
      if (!up) continue;
      try {
        for (let r = 1; r <= opts.runs && !isAborted(); r++) await hooks.round(up, result, r);
        if (hooks.after && !isAborted()) await hooks.after([{ up, result }]);
      } finally {
        await hooks.tearDown(up, result);
      }
    }
    return;
  }
  const ups: { up: U; result: R }[] = [];
  try {
    for (const result of results) {
      if (isAborted()) break;
      const up = await hooks.setUp(result);
      if (up) ups.push({ up, result });
    }
    if (ups.length && !isAborted()) opts.log(`\n== measuring ${ups.map((u) => u.up.leg).join(', ')} interleaved, ${opts.runs} round(s) of ${opts.duration} s`);
    for (let r = 1; r <= opts.runs && !isAborted(); r++) {
      for (const { up, result } of ups) if (!isAborted()) await hooks.round(up, result, r);
    }
    if (hooks.after && ups.length && !isAborted()) await hooks.after(ups);
  } finally {
    for (const { up, result } of ups.reverse()) await hooks.tearDown(up, result);
  }
}

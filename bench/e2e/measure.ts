/**
 * Drives the legs: bring topologies up, run the traffic tests `runs` times
 * (TCP 1 stream, TCP N streams, UDP ping-pong, in that order within a run),
 * take them down. A failing test is recorded and the remaining ones still
 * run; a leg that cannot come up is marked failed and the others go on.
 *
 * API: runLegs, LegPlan, LegResult, LegOptions, median
 */
import type { Cleanups } from './cleanup.ts';
import { iperfTcp } from './iperf.ts';
import { isAborted } from './proc.ts';
import { sockperfPingPong } from './sockperf.ts';
import type { LegName, Topology } from './topology.ts';

/** Raw samples of one leg, one entry per round (NaN where that test failed), plus what went wrong. */
export interface LegResult {
  leg: LegName;
  /** False when the leg could not be brought up or no test succeeded. */
  ok: boolean;
  errors: string[];
  tcp1: number[];
  tcpN: number[];
  p50: number[];
  p99: number[];
  retransmits1: number[];
  extras: Record<string, number>;
  notes: string[];
}

/** What runLeg needs to know. */
export interface LegOptions {
  runs: number;
  /** Seconds per iperf3 / sockperf test. */
  duration: number;
  /** Streams for the parallel TCP test; 0 skips it. */
  streams: number;
  log: (msg: string) => void;
}

/** Median of the finite samples (mean of the middle two for an even count); NaN when there are none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `step`, logging and recording its error instead of throwing. */
async function attempt<T>(what: string, result: LegResult, log: (m: string) => void, step: () => Promise<T>): Promise<T | null> {
  try {
    return await step();
  } catch (err) {
    const msg = `${what}: ${(err as Error).message}`;
    result.errors.push(msg);
    log(`    ! ${msg}`);
    return null;
  }
}

/** A leg to run: its name and how to bring it up. */
export interface LegPlan {
  leg: LegName;
  up: (cleanups: Cleanups) => Promise<Topology>;
}

/** Brings one leg up; on failure the result records why and the topology is null. */
async function setUp(plan: LegPlan, cleanups: Cleanups, log: (m: string) => void): Promise<{ result: LegResult; topo: Topology | null }> {
  const result: LegResult = {
    leg: plan.leg, ok: false, errors: [], tcp1: [], tcpN: [], p50: [], p99: [], retransmits1: [], extras: {}, notes: [],
  };
  log(`\n== ${plan.leg}: setting up`);
  const t0 = Date.now();
  const topo = await attempt('setup', result, log, () => plan.up(cleanups));
  if (!topo) {
    log(`== ${plan.leg}: FAILED to come up; leg skipped`);
    return { result, topo: null };
  }
  result.extras = topo.extras; // shared objects: teardown may still add to them
  result.notes = topo.notes;
  log(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${topo.nsA} -> ${topo.nsB})`);
  if (topo.extras.rssIdleMB !== undefined) log(`   agent idle RSS ${topo.extras.rssIdleMB.toFixed(1)} MB (before any traffic)`);
  return { result, topo };
}

/** One round of tests on one leg: TCP 1 stream, TCP N streams, UDP ping-pong. */
async function measureRound(topo: Topology, result: LegResult, r: number, opts: LegOptions): Promise<void> {
  const { log } = opts;
  const one = await attempt(`run ${r} iperf3 1 stream`, result, log, () => iperfTcp(topo.nsA, topo.nsB, topo.ipB, opts.duration, 1));
  result.tcp1.push(one ? one.gbps : NaN);
  result.retransmits1.push(one ? one.retransmits : NaN);
  let line = `   ${topo.leg.padEnd(8)} run ${r}/${opts.runs}: tcp1 ${one ? one.gbps.toFixed(2) : '-'} Gbit/s`;
  if (opts.streams > 0) {
    const many = await attempt(`run ${r} iperf3 ${opts.streams} streams`, result, log, () =>
      iperfTcp(topo.nsA, topo.nsB, topo.ipB, opts.duration, opts.streams),
    );
    result.tcpN.push(many ? many.gbps : NaN);
    line += `, tcp${opts.streams} ${many ? many.gbps.toFixed(2) : '-'} Gbit/s`;
  }
  const pp = await attempt(`run ${r} sockperf`, result, log, () => sockperfPingPong(topo.nsA, topo.nsB, topo.ipB, opts.duration));
  result.p50.push(pp ? pp.p50 : NaN);
  result.p99.push(pp ? pp.p99 : NaN);
  log(`${line}, rtt p50 ${pp ? pp.p50.toFixed(1) : '-'} / p99 ${pp ? pp.p99.toFixed(1) : '-'} us`);
}

/** Takes a leg down, recording (not throwing) a failure, and marks whether it produced figures. */
async function tearDown(topo: Topology, result: LegResult, log: (m: string) => void): Promise<void> {
  await attempt('teardown', result, log, () => topo.down());
  log(`== ${topo.leg}: torn down`);
}

/**
 * Runs all legs; never throws.
 * - `interleaved`: all legs up at once, then round r runs every leg in turn, so
 *   load drifting on the shared cores hits all legs alike; then all go down.
 * - `sequential`: each leg up, its runs, down, before the next leg starts.
 */
export async function runLegs(plans: LegPlan[], cleanups: Cleanups, opts: LegOptions, order: 'interleaved' | 'sequential'): Promise<LegResult[]> {
  const results: LegResult[] = [];
  const finish = (r: LegResult): void => {
    r.ok = [...r.tcp1, ...r.p50].some(Number.isFinite);
  };
  if (order === 'sequential') {
    for (const plan of plans) {
      if (isAborted()) break;
      const { result, topo } = await setUp(plan, cleanups, opts.log);
      results.push(result);
      if (!topo) continue;
      try {
        for (let r = 1; r <= opts.runs && !isAborted(); r++) await measureRound(topo, result, r, opts);
      } finally {
        await tearDown(topo, result, opts.log);
      }
      finish(result);
    }
    return results;
  }
  const up: { result: LegResult; topo: Topology }[] = [];
  try {
    for (const plan of plans) {
      if (isAborted()) break;
      const { result, topo } = await setUp(plan, cleanups, opts.log);
      results.push(result);
      if (topo) up.push({ result, topo });
    }
    if (up.length) opts.log(`\n== measuring ${up.map((u) => u.topo.leg).join(', ')} interleaved, ${opts.runs} round(s)`);
    for (let r = 1; r <= opts.runs && !isAborted(); r++) {
      for (const { result, topo } of up) {
        if (isAborted()) break;
        await measureRound(topo, result, r, opts);
      }
    }
  } finally {
    for (const { result, topo } of up.reverse()) await tearDown(topo, result, opts.log);
  }
  for (const r of results) finish(r);
  return results;
}

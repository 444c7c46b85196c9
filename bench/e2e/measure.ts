/**
 * Drives the legs: bring topologies up, run the traffic tests `runs` times
 * (TCP 1 stream, TCP N streams, UDP ping-pong, in that order within a run),
 * then, once per leg, connection setup through services (measureServices);
 * take them down. A failing test is recorded and the remaining ones still
 * run; a leg that cannot come up is marked failed and the others go on.
 *
 * API: runLegs, LegPlan, LegResult, LegOptions, median
 */
import type { Cleanups } from './cleanup.ts';
import { iperfTcp } from './iperf.ts';
import { attempt, isAborted } from './proc.ts';
import { connSetup, startConnServer, SVC_PORT, SVC_TARGET_PORT, type ConnSetup } from './services.ts';
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
  /** TCP single stream A→ClusterIP→B per round (legs with a ClusterIP for iperf3 only). */
  tcp1Svc: number[];
  /** Connection setup A→B directly and through the last of N services (once per run, after the rounds). */
  connSetup: ConnSetup[];
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
  /** Service counts for the connection-setup test, increasing (e.g. [10, 10000]); empty skips it. */
  services: number[];
  /** Sequential connections per connection-setup figure. */
  connCount: number;
  log: (msg: string) => void;
}

/** Median of the finite samples (mean of the middle two for an even count); NaN when there are none. */
export function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A leg to run: its name and how to bring it up. */
export interface LegPlan {
  leg: LegName;
  up: (cleanups: Cleanups) => Promise<Topology>;
}

/** Brings one leg up; on failure the result records why and the topology is null. */
async function setUp(plan: LegPlan, cleanups: Cleanups, log: (m: string) => void): Promise<{ result: LegResult; topo: Topology | null }> {
  const result: LegResult = {
    leg: plan.leg, ok: false, errors: [], tcp1: [], tcpN: [], p50: [], p99: [], retransmits1: [], tcp1Svc: [], connSetup: [], extras: {}, notes: [],
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
  const vip = topo.services?.iperfVip;
  if (vip) {
    const svc = await attempt(`run ${r} iperf3 1 stream via ClusterIP ${vip}`, result, log, () =>
      iperfTcp(topo.nsA, topo.nsB, topo.ipB, opts.duration, 1, vip),
    );
    result.tcp1Svc.push(svc ? svc.gbps : NaN);
    line += `, via ClusterIP ${svc ? svc.gbps.toFixed(2) : '-'} Gbit/s`;
  }
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

/** Time limits of the service phase: loading the services, and each connection-setup figure. */
const SVC_LOAD_DEADLINE_MS = 150_000;
const CONN_DEADLINE_MS = 20_000;

/**
 * Connection setup on one leg: straight to pod B, then through the last of
 * N services for each N in opts.services. Runs once, after the rounds.
 */
async function measureServices(topo: Topology, result: LegResult, opts: LegOptions): Promise<void> {
  const { log } = opts;
  const svc = topo.services;
  if (!svc || opts.services.length === 0 || isAborted()) return;
  const stop = await attempt('connection server', result, log, () =>
    startConnServer(topo.nsB, topo.ipB, SVC_LOAD_DEADLINE_MS + (opts.services.length + 1) * (CONN_DEADLINE_MS + 20_000)),
  );
  if (!stop) return;
  try {
    const direct = await attempt('connection setup direct', result, log, () => connSetup(topo.nsA, topo.ipB, SVC_TARGET_PORT, opts.connCount, CONN_DEADLINE_MS));
    if (direct) result.connSetup.push({ services: 0, ...direct, loadMs: NaN });
    log(`   ${topo.leg.padEnd(8)} connect+first byte, pod->pod: p50 ${direct ? direct.p50Us.toFixed(0) : '-'} us`);
    for (const n of opts.services) {
      if (isAborted()) break;
      const t0 = Date.now();
      const vip = await attempt(`loading ${n} services`, result, log, () => svc.load(n, SVC_LOAD_DEADLINE_MS));
      if (!vip) break;
      const loadMs = Date.now() - t0;
      const cs = await attempt(`connection setup with ${n} services`, result, log, () => connSetup(topo.nsA, vip, SVC_PORT, opts.connCount, CONN_DEADLINE_MS));
      if (cs) result.connSetup.push({ services: n, ...cs, loadMs });
      log(`   ${topo.leg.padEnd(8)} connect+first byte via ${vip} (last of ${n} services, loaded in ${(loadMs / 1000).toFixed(1)} s): p50 ${cs ? cs.p50Us.toFixed(0) : '-'} us`);
    }
  } finally {
    await stop();
    await attempt('removing services', result, log, () => svc.unload());
  }
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
        await measureServices(topo, result, opts);
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
    const withSvc = up.filter((u) => u.topo.services);
    if (withSvc.length && opts.services.length) opts.log(`\n== connection setup through services (${opts.services.join(' then ')}), ${opts.connCount} sequential connections each`);
    for (const { result, topo } of withSvc) await measureServices(topo, result, opts);
  } finally {
    for (const { result, topo } of up.reverse()) await tearDown(topo, result, opts.log);
  }
  for (const r of results) finish(r);
  return results;
}

/**
 * Observability cost: the single-node Tapestry leg (topology-tapestry.ts)
 * four times over, one agent each, identical configs (but events-off's
 * `monitor: { enabled: false }`), differing only in who is looking while
 * the stream runs.
 *
 *   leg        during the measurement                               datapath events
 *   events-off nobody; agent config `monitor: { enabled: false }`   none (event code paths
 *                                                                    out of the datapath)
 *   off        nobody (the flow store still polls drops, no trace)   drops only
 *   monitor    tapestry monitor --type trace --type drop             trace on, aggregated (5 s lease,
 *                                                                    renewed by each read)
 *   capture    tapestry capture --hook from-container                frames copied into a
 *              --hook to-container -w FILE                          bounded session buffer
 *
 * events-off is the baseline of "monitor off costs nothing measurable"
 * (off against events-off); off is the baseline of the reader legs.
 *
 * Separate agents, so the "off" agent has never had a reader (the product's
 * idle state) and no trace lease can leak from one leg into another. Every
 * leg is up before the first round; each round runs every leg in turn (one
 * iperf3 TCP stream a→b, the first second omitted), as the other legs do.
 *
 * The reader is started before the stream and waited for (its "Listening"
 * line comes after its first trace=1 read), and stopped after it; it runs
 * with `--duration` as a bound of its own. The capture gets the same
 * bound, is stopped with SIGINT (it then ends the session and writes the
 * file), and its file is deleted after the packet count is read. Capture
 * sessions keep frames up to their cap (`--count`, at most 1,000,000) and
 * count the rest as lost; both figures are reported.
 *
 * API: runObservabilityLegs, OBSERVABILITY_LEGS, OBSERVABILITY_LEG_NAMES,
 *      ObservabilityLegName, ObservabilityLegResult, ObservabilityOptions
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cleanups } from './cleanup.ts';
import { iperfTcp } from './iperf.ts';
import { runRounds } from './rounds.ts';
import { attempt, type Background, BenchError, sleep, startBackground, stopProcess } from './proc.ts';
import type { Topology } from './topology.ts';
import { upTapestry, type TapestryOptions } from './topology-tapestry.ts';

/** The legs, in run and table order; events-off is off's baseline, off the readers'. */
export type ObservabilityLegName = 'events-off' | 'off' | 'monitor' | 'capture';

/** How each leg is set up; `tag` goes into its namespace prefix (`<prefix>v<tag>a|b|c`). */
export const OBSERVABILITY_LEGS: Record<ObservabilityLegName, { tag: string; what: string }> = {
  'events-off': { tag: 'e', what: 'nobody reading events, agent config `monitor: { enabled: false }` (event code paths out of the datapath)' },
  off: { tag: 'f', what: 'nobody reading events (the flow store polls drops without trace: the idle state)' },
  monitor: { tag: 'm', what: '`tapestry monitor --type trace --type drop` reading during the stream (trace events on, monitor aggregation medium)' },
  capture: { tag: 'c', what: '`tapestry capture --hook from-container --hook to-container --count 1000000 -w FILE` during the stream' },
};
export const OBSERVABILITY_LEG_NAMES = Object.keys(OBSERVABILITY_LEGS) as ObservabilityLegName[];

/** Samples of one leg. */
export interface ObservabilityLegResult {
  leg: ObservabilityLegName;
  ok: boolean;
  errors: string[];
  notes: string[];
  /** Per round, Gbit/s (NaN where the round failed). */
  tcp1: number[];
  retransmits: number[];
  /** monitor: event lines the reader printed, per round. */
  events: number[];
  /** capture: frames written to the file and frames lost (buffer full), per round. */
  captured: number[];
  lost: number[];
  rssIdleMB: number;
}

/** What the legs need. */
export interface ObservabilityOptions {
  prefix: string;
  runs: number;
  duration: number;
  agent: TapestryOptions;
  log: (msg: string) => void;
}

/** The capture's frame cap: the CLI's maximum (src/datapath/capture.ts MAX_COUNT). */
const CAPTURE_COUNT = 1_000_000;
/** Time the reader or capture gets to attach before the stream starts. */
const ATTACH_MS = 1_000;
/** Limit for the reader's first line. */
const READER_READY_MS = 10_000;
/** Time the capture gets after SIGINT to end its session and write the file. */
const CAPTURE_STOP_MS = 30_000;

interface LegUp {
  leg: ObservabilityLegName;
  topo: Topology;
  socket: string;
  /** Per-leg temp directory for capture files. */
  dir: string;
}

/** Starts the CLI (`bin/tapestry`, or --agent-cmd) against the leg's socket. */
function startCli(opts: ObservabilityOptions, socket: string, args: string[], onLine?: (l: string) => void): Background {
  const full = ['--socket', socket, ...args];
  const bg = opts.agent.agentCmd
    ? startBackground('sh', ['-c', `exec ${opts.agent.agentCmd} "$@"`, 'tapestry', ...full], { cwd: opts.agent.repoRoot, traffic: true, ...(onLine ? { onLine } : {}) })
    : startBackground(join(opts.agent.repoRoot, 'bin', 'tapestry'), full, { cwd: opts.agent.repoRoot, traffic: true, ...(onLine ? { onLine } : {}) });
  return bg;
}

/** One stream with a monitor reader attached; returns the measurement and the event lines read. */
async function withMonitor(up: LegUp, opts: ObservabilityOptions): Promise<{ gbps: number; retransmits: number; events: number }> {
  let lines = 0;
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const reader = startCli(opts, up.socket, ['monitor', '--type', 'trace', '--type', 'drop', '--duration', String(opts.duration + 15)], (l) => {
    if (l.startsWith('Listening for events')) onReady();
    else lines++;
  });
  try {
    const outcome = await Promise.race([ready.then(() => 'ready'), reader.exited.then((c) => `exited with ${c}`), sleep(READER_READY_MS).then(() => 'timeout')]);
    if (outcome !== 'ready') throw new BenchError(`monitor did not attach (${outcome}): ${reader.output().trim().slice(-200)}`);
    await sleep(ATTACH_MS);
    const r = await iperfTcp(up.topo.nsA, up.topo.nsB, up.topo.ipB, opts.duration, 1);
    return { ...r, events: lines };
  } finally {
    await stopProcess(reader, 3_000, 'SIGINT');
  }
}

/** One stream with a capture running; returns the measurement and the capture's counts. */
async function withCapture(up: LegUp, r: number, opts: ObservabilityOptions): Promise<{ gbps: number; retransmits: number; captured: number; lost: number }> {
  const file = join(up.dir, `round${r}.pcapng`);
  const cap = startCli(opts, up.socket, [
    'capture', '--hook', 'from-container', '--hook', 'to-container',
    '--count', String(CAPTURE_COUNT), '--duration', String(opts.duration + 15), '-w', file,
  ]);
  try {
    await sleep(ATTACH_MS);
    if (cap.child.exitCode !== null) throw new BenchError(`capture exited early (${cap.child.exitCode}): ${cap.output().trim().slice(-200)}`);
    const m = await iperfTcp(up.topo.nsA, up.topo.nsB, up.topo.ipB, opts.duration, 1);
    await stopProcess(cap, CAPTURE_STOP_MS, 'SIGINT');
    const line = /(\d+) packets captured(?:, (\d+) lost)?/.exec(cap.output());
    if (!line) throw new BenchError(`capture printed no count: ${cap.output().trim().slice(-200)}`);
    return { ...m, captured: Number(line[1]), lost: Number(line[2] ?? 0) };
  } finally {
    await stopProcess(cap, CAPTURE_STOP_MS, 'SIGINT');
    await rm(file, { force: true });
  }
}

/** One round on one leg. */
async function measureRound(up: LegUp, result: ObservabilityLegResult, r: number, opts: ObservabilityOptions): Promise<void> {
  const what = `run ${r} iperf3 1 stream`;
  let extra = '';
  if (up.leg === 'off' || up.leg === 'events-off') {
    const m = await attempt(what, result, opts.log, () => iperfTcp(up.topo.nsA, up.topo.nsB, up.topo.ipB, opts.duration, 1));
    result.tcp1.push(m ? m.gbps : NaN);
    result.retransmits.push(m ? m.retransmits : NaN);
  } else if (up.leg === 'monitor') {
    const m = await attempt(`${what} with a monitor`, result, opts.log, () => withMonitor(up, opts));
    result.tcp1.push(m ? m.gbps : NaN);
    result.retransmits.push(m ? m.retransmits : NaN);
    result.events.push(m ? m.events : NaN);
    if (m) extra = `, ${m.events} event lines read`;
  } else {
    const m = await attempt(`${what} with a capture`, result, opts.log, () => withCapture(up, r, opts));
    result.tcp1.push(m ? m.gbps : NaN);
    result.retransmits.push(m ? m.retransmits : NaN);
    result.captured.push(m ? m.captured : NaN);
    result.lost.push(m ? m.lost : NaN);
    if (m) extra = `, ${m.captured} frames captured, ${m.lost} lost`;
  }
  const g = result.tcp1[result.tcp1.length - 1]!;
  opts.log(`   ${up.leg.padEnd(10)} run ${r}/${opts.runs}: tcp1 ${Number.isFinite(g) ? g.toFixed(2) : '-'} Gbit/s${extra}`);
}

/** Brings one leg's agent up; null when it could not come up (the result says why). */
async function setUp(leg: ObservabilityLegName, cleanups: Cleanups, opts: ObservabilityOptions, result: ObservabilityLegResult): Promise<LegUp | null> {
  const nsPrefix = `${opts.prefix}v${OBSERVABILITY_LEGS[leg].tag}`;
  opts.log(`\n== observability ${leg}: setting up (${OBSERVABILITY_LEGS[leg].what})`);
  const t0 = Date.now();
  const agent: TapestryOptions = leg === 'events-off' ? { ...opts.agent, extras: { ...opts.agent.extras, monitor: { enabled: false } } } : opts.agent;
  const topo = await attempt('setup', result, opts.log, () => upTapestry(opts.prefix, cleanups, { ...agent, nsPrefix }));
  if (!topo) {
    opts.log(`== observability ${leg}: FAILED to come up; leg skipped`);
    return null;
  }
  const dir = await mkdtemp(join(tmpdir(), `tapestry-bench-${nsPrefix}-obs-`));
  // Registered after the agent, so it runs first on an abort (newest first); capture files go with it.
  const dropDir = cleanups.add(`observability ${leg} capture directory`, () => rm(dir, { recursive: true, force: true }));
  const down = topo.down;
  topo.down = async () => {
    await dropDir();
    await down();
  };
  result.notes = topo.notes;
  result.rssIdleMB = topo.extras.rssIdleMB ?? NaN;
  opts.log(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${topo.nsA} -> ${topo.nsB}), idle RSS ${result.rssIdleMB.toFixed(1)} MB`);
  return { leg, topo, socket: topo.apiSocket!, dir };
}

/** Takes a leg down (recording, not throwing, failures). */
async function tearDown(up: LegUp, result: ObservabilityLegResult, log: (m: string) => void): Promise<void> {
  await attempt('teardown', result, log, () => up.topo.down());
  log(`== observability ${up.leg}: torn down`);
}

/**
 * Runs the legs; never throws.
 * - `interleaved`: every leg up, then each round runs every leg in turn,
 *   then all go down.
 * - `sequential`: each leg up, its rounds, down.
 */
export async function runObservabilityLegs(
  legs: readonly ObservabilityLegName[],
  cleanups: Cleanups,
  opts: ObservabilityOptions,
  order: 'interleaved' | 'sequential',
): Promise<ObservabilityLegResult[]> {
  const results = legs.map(
    (leg): ObservabilityLegResult => ({ leg, ok: false, errors: [], notes: [], tcp1: [], retransmits: [], events: [], captured: [], lost: [], rssIdleMB: NaN }),
  );
  await runRounds(results, order, opts, {
    setUp: (result) => setUp(result.leg, cleanups, opts, result),
    round: (up, result, r) => measureRound(up, result, r, opts),
    tearDown: (up, result) => tearDown(up, result, opts.log),
  });
  for (const r of results) r.ok = r.tcp1.some(Number.isFinite);
  return results;
}

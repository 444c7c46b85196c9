/**
 * Cross-node legs: two-node clusters (src/testbed/cluster.ts), each node a
 * network namespace on one underlay bridge, one pod per node, and the
 * outside host 10.99.0.100 (iperf3 -s on 5201) on the same bridge.
 *
 *   leg              nodes                         measured
 *   kernel-vxlan     2 kernel nodes, vx0 (8472)    pod→pod, the baseline
 *   tapestry-vxlan   2 Tapestry nodes, VXLAN       pod→pod; pod→world (masquerade)
 *   kernel-native    2 kernel nodes, plain routes  pod→pod, the native baseline
 *   tapestry-native  2 Tapestry nodes, native      pod→pod
 *
 * Every figure is one iperf3 TCP stream (the first second omitted) for
 * `duration` seconds: pod a on node 1 to pod a on node 2, or to the outside
 * host. Like the single-node legs, every cluster is up before the first
 * round and each round runs every leg in turn (`sequential`: one cluster
 * at a time). After the rounds, on each Tapestry leg, one longer run per
 * captured flow under watchKernelReplies (kernel-replies.ts) counts the
 * resets and unreachables the node kernels sent.
 *
 * Every cluster registers its teardown before it starts building, so an
 * abort while Cluster.up() is still running stops the agents it started
 * (which makes it fail and remove what it built) and then sweeps the
 * cluster's namespaces and temp dirs; a normal finish runs cluster.down().
 *
 * API: runClusterLegs, CLUSTER_LEGS, CLUSTER_LEG_NAMES, ClusterLegName,
 *      FlowName, FLOW_LABEL, ClusterLegResult, CaptureResult, ClusterOptions,
 *      sweep, abandon (teardown of a cluster by prefix; the north-south legs use them too)
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterSpec, type PodHandle } from '../../src/testbed/cluster.ts';
import type { Cleanups, Step } from './cleanup.ts';
import { iperfClient, iperfTcp, type IperfResult } from './iperf.ts';
import { watchKernelReplies, type KernelReplies } from './kernel-replies.ts';
import { deleteNetns, listNetns, reachable, tcpConnects } from './netns.ts';
import { runRounds } from './rounds.ts';
import { attempt, BenchError, isAborted, run, sleep } from './proc.ts';

/** The cross-node legs, in run and table order. */
export type ClusterLegName = 'kernel-vxlan' | 'tapestry-vxlan' | 'kernel-native' | 'tapestry-native';
/** What a leg measures: between the two nodes' pods, or from a pod to the outside host. */
export type FlowName = 'pod-pod' | 'pod-world';

/** How each leg is built and what it measures. */
export const CLUSTER_LEGS: Record<
  ClusterLegName,
  { tapestry: boolean; mode: 'tunnel' | 'native'; tag: string; flows: FlowName[]; capture: FlowName[]; baseline?: ClusterLegName }
> = {
  'kernel-vxlan': { tapestry: false, mode: 'tunnel', tag: 'kv', flows: ['pod-pod'], capture: [] },
  'tapestry-vxlan': { tapestry: true, mode: 'tunnel', tag: 'tv', flows: ['pod-pod', 'pod-world'], capture: ['pod-pod', 'pod-world'], baseline: 'kernel-vxlan' },
  'kernel-native': { tapestry: false, mode: 'native', tag: 'kn', flows: ['pod-pod'], capture: [] },
  'tapestry-native': { tapestry: true, mode: 'native', tag: 'tn', flows: ['pod-pod'], capture: ['pod-pod'], baseline: 'kernel-native' },
};
export const CLUSTER_LEG_NAMES = Object.keys(CLUSTER_LEGS) as ClusterLegName[];

/** Flow names as the reports print them. */
export const FLOW_LABEL: Record<FlowName, string> = { 'pod-pod': 'pod→pod', 'pod-world': 'pod→world' };

/** One capture run: the flow's throughput while captured and what the node kernels sent. */
export interface CaptureResult {
  flow: FlowName;
  seconds: number;
  gbps: number;
  error?: string;
  replies?: KernelReplies;
}

/** Raw samples of one cross-node leg, one entry per round (NaN where that test failed). */
export interface ClusterLegResult {
  leg: ClusterLegName;
  /** False when the cluster could not be built or no test succeeded. */
  ok: boolean;
  errors: string[];
  notes: string[];
  tcp1: Partial<Record<FlowName, number[]>>;
  retransmits: Partial<Record<FlowName, number[]>>;
  captures: CaptureResult[];
}

/** What runClusterLegs needs. */
export interface ClusterOptions {
  /** Run prefix (choosePrefix()); cluster k's namespaces start with `<prefix>c<tag>`. */
  prefix: string;
  runs: number;
  /** Seconds per iperf3 test in the rounds. */
  duration: number;
  /** Seconds of traffic per captured flow; 0 skips the captures. */
  captureSeconds: number;
  agentTimeoutMs: number;
  log: (msg: string) => void;
}

/** A cluster that is up, with the two pods the flows use. */
interface LegUp {
  leg: ClusterLegName;
  cluster: Cluster;
  from: PodHandle;
  to: PodHandle;
  down: Step;
}

/** How long an abandoned Cluster.up() gets to notice its agents are gone and clean up itself. */
const ABANDON_MS = 30_000;
/** Margin of each tcpdump's own time bound over the captured traffic. */
const CAPTURE_MARGIN_S = 30;

/** The two-node cluster of `leg`. */
function specOf(leg: ClusterLegName, opts: ClusterOptions): ClusterSpec {
  const shape = CLUSTER_LEGS[leg];
  const nodes = [1, 2].map((k) => ({ name: `n${k}`, pods: [{ name: 'a', labels: { app: `bench${k}` } }] }));
  return {
    prefix: `${opts.prefix}c${shape.tag}`,
    nodes: shape.tapestry ? nodes : [],
    kernelNodes: shape.tapestry ? [] : nodes,
    routingMode: shape.mode,
    tunnelProtocol: 'vxlan',
    masquerade: true,
    agentTimeoutMs: opts.agentTimeoutMs,
  };
}

/** Sends `sig` to every process inside a namespace whose name starts with `prefix`. */
async function signalNetnsOf(prefix: string, sig: NodeJS.Signals): Promise<number> {
  let n = 0;
  for (const ns of (await listNetns()).filter((x) => x.startsWith(prefix))) {
    const r = await run('ip', ['netns', 'pids', ns], { timeoutMs: 10_000 });
    for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
      if (!(pid > 1) || pid === process.pid) continue;
      try {
        process.kill(pid, sig);
        n++;
      } catch {
        // already gone
      }
    }
  }
  return n;
}

/**
 * Removes what a cluster with `prefix` may have left: processes in its
 * namespaces, the namespaces, its temp dirs and its agents' config dirs.
 * Returns the namespaces it had to delete.
 */
export async function sweep(prefix: string): Promise<string[]> {
  const left = (await listNetns()).filter((ns) => ns.startsWith(prefix));
  if (left.length) {
    await signalNetnsOf(prefix, 'SIGKILL');
    for (const ns of left) await deleteNetns(ns);
  }
  const esc = prefix.replace(/[.]/g, '\\.');
  const clusterDir = new RegExp(`^${esc}-cluster-[A-Za-z0-9]{6}$`);
  const agentDir = new RegExp(`^${esc}-[A-Za-z0-9]{6}$`);
  for (const d of await readdir(tmpdir())) {
    const path = join(tmpdir(), d);
    const mine = clusterDir.test(d) || (agentDir.test(d) && (await stat(join(path, 'agent.yaml')).then(() => true, () => false)));
    if (mine) await rm(path, { recursive: true, force: true });
  }
  return left;
}

/**
 * Stops a Cluster.up() that is still running: its agents are signalled
 * until it gives up (it then removes what it built itself) or resolves (we
 * take the cluster down), for at most ABANDON_MS.
 */
export async function abandon(prefix: string, pending: Promise<Cluster>): Promise<void> {
  let settled = false;
  const done = pending.then((c) => c.down(), () => undefined).finally(() => (settled = true));
  const deadline = Date.now() + ABANDON_MS;
  while (!settled && Date.now() < deadline) {
    await signalNetnsOf(prefix, 'SIGTERM');
    await Promise.race([done, sleep(1_000)]);
  }
}

/** MTU of `dev` in `ns`, for the notes (NaN if unreadable). */
async function mtuOf(ns: string, dev: string): Promise<number> {
  const r = await run('ip', ['-n', ns, '-j', 'link', 'show', dev], { timeoutMs: 5_000 });
  return r.code === 0 ? ((JSON.parse(r.stdout) as { mtu?: number }[])[0]?.mtu ?? NaN) : NaN;
}

/** Builds the cluster of `leg` and checks both flows' reachability; teardown is registered before anything exists. */
async function upLeg(leg: ClusterLegName, cleanups: Cleanups, opts: ClusterOptions, result: ClusterLegResult): Promise<LegUp> {
  const spec = specOf(leg, opts);
  let cluster: Cluster | null = null;
  let pending: Promise<Cluster> | null = null;
  const down = cleanups.add(`cluster ${leg} (${spec.prefix}*)`, async () => {
    if (cluster) await cluster.down();
    else if (pending) await abandon(spec.prefix, pending);
    const left = await sweep(spec.prefix);
    if (left.length) result.notes.push(`namespaces left after teardown (deleted by the harness): ${left.join(', ')}`);
  });
  try {
    pending = Cluster.up(spec);
    cluster = await pending;
    const all = [...cluster.nodes, ...cluster.kernelNodes];
    const from = all[0]!.pods[0]!;
    const to = all[1]!.pods[0]!;
    if (!(await reachable(from.ns, to.ns, to.ipv4))) throw new BenchError(`${from.ns} cannot reach ${to.ipv4} on the other node`);
    if (CLUSTER_LEGS[leg].flows.includes('pod-world') && !(await tcpConnects(from.ns, cluster.outside.ip, 80))) {
      throw new BenchError(`${from.ns} cannot reach the outside host ${cluster.outside.ip}:80`);
    }
    const shape = CLUSTER_LEGS[leg];
    const how = shape.tapestry
      ? `2 Tapestry nodes (one bin/tapestry agent each), ${shape.mode === 'tunnel' ? 'VXLAN tunnel (UDP 8472)' : 'native routing'}, masquerade on`
      : shape.mode === 'tunnel'
        ? '2 kernel nodes, vx0 `vxlan external dstport 8472` with per-route encap, ip_forward=1'
        : '2 kernel nodes, pod CIDRs routed via the other node, ip_forward=1';
    result.notes.push(`${how}; pod MTU ${await mtuOf(from.ns, 'eth0')}, underlay MTU ${await mtuOf(all[0]!.ns, 'eth0')}`);
    return { leg, cluster, from, to, down };
  } catch (err) {
    await down();
    throw err;
  }
}

/** One single-stream iperf3 run of `flow` on a leg. */
function runFlow(up: LegUp, flow: FlowName, seconds: number): Promise<IperfResult> {
  return flow === 'pod-pod' ? iperfTcp(up.from.ns, up.to.ns, up.to.ipv4, seconds, 1) : iperfClient(up.from.ns, up.cluster.outside.ip, seconds, 1);
}

/** One round on one leg: each of its flows once. */
async function measureRound(up: LegUp, result: ClusterLegResult, r: number, opts: ClusterOptions): Promise<void> {
  const parts: string[] = [];
  for (const flow of CLUSTER_LEGS[up.leg].flows) {
    if (isAborted()) return;
    const one = await attempt(`run ${r} ${FLOW_LABEL[flow]}`, result, opts.log, () => runFlow(up, flow, opts.duration));
    (result.tcp1[flow] ??= []).push(one ? one.gbps : NaN);
    (result.retransmits[flow] ??= []).push(one ? one.retransmits : NaN);
    parts.push(`${FLOW_LABEL[flow]} ${one ? one.gbps.toFixed(2) : '-'} Gbit/s`);
  }
  opts.log(`   ${up.leg.padEnd(15)} run ${r}/${opts.runs}: ${parts.join(', ')}`);
}

/** The capture runs of one leg (its `capture` flows), once per run, after the rounds. */
async function measureCaptures(up: LegUp, result: ClusterLegResult, opts: ClusterOptions): Promise<void> {
  const s = opts.captureSeconds;
  for (const flow of CLUSTER_LEGS[up.leg].capture) {
    if (s <= 0 || isAborted()) return;
    opts.log(`   ${up.leg.padEnd(15)} ${FLOW_LABEL[flow]} for ${s} s, capturing on tapestry_host (each node) and the underlay bridge...`);
    const out = await attempt(`capture ${FLOW_LABEL[flow]}`, result, opts.log, () =>
      watchKernelReplies(up.cluster, s + CAPTURE_MARGIN_S, () => runFlow(up, flow, s)),
    );
    if (!out) {
      result.captures.push({ flow, seconds: s, gbps: NaN, error: result.errors[result.errors.length - 1] });
      continue;
    }
    const { replies } = out;
    const cap: CaptureResult = { flow, seconds: s, gbps: out.value?.gbps ?? NaN, replies };
    if (out.error) {
      cap.error = out.error.message;
      result.errors.push(`capture ${FLOW_LABEL[flow]}: iperf3: ${out.error.message}`);
    }
    result.captures.push(cap);
    const hosts = replies.hosts.map((h) => `${h.node} ${h.frames}`).join(', ');
    opts.log(
      `   ${up.leg.padEnd(15)} ${FLOW_LABEL[flow]} ${Number.isFinite(cap.gbps) ? cap.gbps.toFixed(2) : '-'} Gbit/s while captured: ` +
        `${replies.rst} RST, ${replies.unreach} ICMP unreachable from node kernels/addresses ` +
        `(frames the kernels sent on tapestry_host: ${hosts}; other RST/unreach on the bridge ${replies.bridge.otherRst}/${replies.bridge.otherUnreach}; ` +
        `${replies.verified ? 'canaries seen, nothing dropped' : 'NOT verified: a canary is missing or the capture dropped frames'})`,
    );
    for (const line of replies.samples) opts.log(`      ${line}`);
    if (replies.kept) opts.log(`      pcap files kept in ${replies.kept}`);
  }
}

/** Marks whether a leg produced any figure. */
function finish(r: ClusterLegResult): void {
  r.ok = Object.values(r.tcp1).some((xs) => xs.some(Number.isFinite)) || r.captures.some((c) => c.replies !== undefined);
}

/** Builds one leg, logging; null when it could not come up (the result says why). */
async function setUp(leg: ClusterLegName, cleanups: Cleanups, opts: ClusterOptions, result: ClusterLegResult): Promise<LegUp | null> {
  opts.log(`\n== ${leg}: setting up`);
  const t0 = Date.now();
  const up = await attempt('setup', result, opts.log, () => upLeg(leg, cleanups, opts, result));
  if (!up) opts.log(`== ${leg}: FAILED to come up; leg skipped`);
  else opts.log(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${up.from.ns} -> ${up.to.ns})`);
  return up;
}

async function tearDown(up: LegUp, result: ClusterLegResult, log: (m: string) => void): Promise<void> {
  await attempt('teardown', result, log, () => up.down());
  log(`== ${up.leg}: torn down`);
}

/**
 * Runs the cross-node legs; never throws.
 * - `interleaved`: every cluster up, then each round runs every leg in turn,
 *   then the captures, then all go down.
 * - `sequential`: each cluster up, its rounds and captures, down.
 */
export async function runClusterLegs(
  legs: readonly ClusterLegName[],
  cleanups: Cleanups,
  opts: ClusterOptions,
  order: 'interleaved' | 'sequential',
): Promise<ClusterLegResult[]> {
  const results = legs.map((leg): ClusterLegResult => ({ leg, ok: false, errors: [], notes: [], tcp1: {}, retransmits: {}, captures: [] }));
  await runRounds(results, order, opts, {
    setUp: (result) => setUp(result.leg, cleanups, opts, result),
    round: (up, result, r) => measureRound(up, result, r, opts),
    tearDown: (up, result) => tearDown(up, result, opts.log),
    after: async (legs) => {
      const capturing = legs.filter((u) => CLUSTER_LEGS[u.up.leg].capture.length > 0);
      if (capturing.length && opts.captureSeconds > 0) opts.log(`\n== kernel replies: ${opts.captureSeconds} s of traffic per flow, captured`);
      for (const { up, result } of capturing) await measureCaptures(up, result, opts);
    },
  });
  for (const r of results) finish(r);
  return results;
}

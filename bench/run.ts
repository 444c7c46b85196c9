/**
 * `npm run bench`: micro-benchmarks, then the end-to-end comparison of
 * Tapestry against the kernel and OVS's userspace datapath on one node,
 * then the network policy comparison (Tapestry with no policy against the
 * same with policies that allow the stream, enforcement probed), then the
 * observability cost (Tapestry with nobody reading events against the same
 * with a monitor reader attached and with a capture running), then the
 * cross-node legs (two-node clusters: Tapestry's VXLAN and native routing
 * against the kernel's, pod→world through masquerade, and the count of
 * resets and unreachables the node kernels send), then the north-south
 * legs (the outside host through a NodePort to a backend on the other node:
 * the kernel's nftables DNAT against Tapestry in SNAT and DSR modes, the
 * prefilter under a flood, the DSR reply path captured), then a fresh
 * BENCHMARKS.md with this run's figures.
 *
 *   node --import tsx bench/run.ts [--only micro,e2e,policy,observability,cluster,nodeport] [--no-policy] [--no-observability] [--no-cluster] [--no-nodeport] [--runs N] ...
 *
 * Everything the run creates (namespaces, clusters, OVS daemons, agents,
 * traffic servers, captures) is registered for teardown, which runs on a
 * normal finish, on an error and on SIGINT/SIGTERM. A leg that cannot come
 * up is reported as failed and the others still run. Exit status: 0 when
 * the run completed (whatever the figures), 1 on a harness error or bad
 * options.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs, USAGE, type BenchArgs } from './e2e/args.ts';
import {
  clusterSectionMarkdown,
  e2eMarkdown,
  microMarkdown,
  nodePortSectionMarkdown,
  observabilitySectionMarkdown,
  policySectionMarkdown,
  previousSection,
  renderBenchmarksMd,
} from './e2e/benchmarks-md.ts';
import { Cleanups, installSignalHandlers } from './e2e/cleanup.ts';
import { runClusterLegs, type ClusterLegResult } from './e2e/cluster-legs.ts';
import { clusterConsoleReport, summarizeCluster } from './e2e/cluster-report.ts';
import { runLegs, type LegResult } from './e2e/measure.ts';
import { findMicroBenches, runMicroBenches } from './e2e/micro.ts';
import { choosePrefix } from './e2e/netns.ts';
import { runNodePortLegs, type NodePortLegResult } from './e2e/nodeport-legs.ts';
import { nodePortConsoleReport, summarizeNodePort } from './e2e/nodeport-report.ts';
import { runObservabilityLegs, type ObservabilityLegResult } from './e2e/observability-legs.ts';
import { observabilityConsoleReport, summarizeObservability } from './e2e/observability-report.ts';
import { runPolicyLegs, type PolicyLegResult } from './e2e/policy-legs.ts';
import { policyConsoleReport, summarizePolicy } from './e2e/policy-report.ts';
import { BenchError, isAborted } from './e2e/proc.ts';
import { consoleReport, summarize } from './e2e/report.ts';
import { systemInfo, systemLine } from './e2e/sysinfo.ts';
import type { LegName, Topology } from './e2e/topology.ts';
import { upKernel } from './e2e/topology-kernel.ts';
import { ovsAvailable, upOvs } from './e2e/topology-ovs.ts';
import { upTapestry } from './e2e/topology-tapestry.ts';

/** Repository root: the parent of bench/. */
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Progress goes to stdout, in order with the micro-benchmarks' own output. */
const log = (msg: string): void => console.log(msg);

/** The set-up function for each leg. */
function legUp(leg: LegName, prefix: string, args: BenchArgs): (c: Cleanups) => Promise<Topology> {
  switch (leg) {
    case 'kernel':
      return (c) => upKernel(prefix, c);
    case 'ovs':
      return async (c) => {
        const why = await ovsAvailable();
        if (why) throw new BenchError(why);
        return upOvs(prefix, c);
      };
    case 'tapestry':
      return (c) =>
        upTapestry(prefix, c, {
          repoRoot: REPO_ROOT,
          agentCmd: args.agentCmd,
          readyTimeoutMs: args.agentTimeout * 1000,
          verbose: args.verbose,
        });
  }
}

/** Runs the legs (interleaved or one after another) and returns their samples. */
async function endToEnd(args: BenchArgs, prefix: string, cleanups: Cleanups): Promise<LegResult[]> {
  log(`\n# End to end: legs ${args.legs.join(', ')}; ${args.runs} run(s) x ${args.duration} s, ${args.order}; namespaces ${prefix}*`);
  const plans = args.legs.map((leg) => ({ leg, up: legUp(leg, prefix, args) }));
  return runLegs(plans, cleanups, { runs: args.runs, duration: args.duration, streams: args.streams, services: args.services, connCount: args.connCount, log }, args.order);
}

/** Runs the policy legs and returns their samples. */
async function policyComparison(args: BenchArgs, prefix: string, cleanups: Cleanups): Promise<PolicyLegResult[]> {
  log(`\n# Network policy: legs ${args.policyLegs.join(', ')}; ${args.runs} run(s) x ${args.duration} s, ${args.order}; namespaces ${prefix}p*`);
  return runPolicyLegs(
    args.policyLegs,
    cleanups,
    {
      prefix,
      runs: args.runs,
      duration: args.duration,
      agent: { repoRoot: REPO_ROOT, agentCmd: args.agentCmd, readyTimeoutMs: args.agentTimeout * 1000, verbose: args.verbose },
      log,
    },
    args.order,
  );
}

/** Runs the observability legs and returns their samples. */
async function observabilityCost(args: BenchArgs, prefix: string, cleanups: Cleanups): Promise<ObservabilityLegResult[]> {
  log(`\n# Observability cost: legs ${args.observabilityLegs.join(', ')}; ${args.runs} run(s) x ${args.duration} s, ${args.order}; namespaces ${prefix}v*`);
  return runObservabilityLegs(
    args.observabilityLegs,
    cleanups,
    {
      prefix,
      runs: args.runs,
      duration: args.duration,
      agent: { repoRoot: REPO_ROOT, agentCmd: args.agentCmd, readyTimeoutMs: args.agentTimeout * 1000, verbose: args.verbose },
      log,
    },
    args.order,
  );
}

/** Runs the cross-node legs and returns their samples. */
async function crossNode(args: BenchArgs, prefix: string, cleanups: Cleanups): Promise<ClusterLegResult[]> {
  const capture = args.captureDuration > 0 ? `; captures ${args.captureDuration} s per flow` : '; no captures';
  log(`\n# Cross-node: legs ${args.clusterLegs.join(', ')}; ${args.runs} run(s) x ${args.duration} s, ${args.order}${capture}; namespaces ${prefix}c*`);
  return runClusterLegs(
    args.clusterLegs,
    cleanups,
    { prefix, runs: args.runs, duration: args.duration, captureSeconds: args.captureDuration, agentTimeoutMs: args.agentTimeout * 1000, log },
    args.order,
  );
}

/** Runs the north-south legs and returns their samples. */
async function northSouth(args: BenchArgs, prefix: string, cleanups: Cleanups): Promise<NodePortLegResult[]> {
  const reply = args.replyDuration > 0 ? `; reply path captured ${args.replyDuration} s` : '; no reply-path capture';
  log(`\n# North-south: legs ${args.nodeportLegs.join(', ')}; ${args.runs} run(s) x ${args.duration} s, ${args.connCount} connections, ${args.order}${reply}; namespaces ${prefix}x*`);
  return runNodePortLegs(
    args.nodeportLegs,
    cleanups,
    { prefix, runs: args.runs, duration: args.duration, connCount: args.connCount, replySeconds: args.replyDuration, agentTimeoutMs: args.agentTimeout * 1000, log },
    args.order,
  );
}

/** Entry point; returns the exit status. */
async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs(argv);
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const netns = args.parts.e2e || args.parts.policy || args.parts.observability || args.parts.cluster || args.parts.nodeport;
  if (netns && process.getuid?.() !== 0) {
    throw new BenchError('the end-to-end, policy, observability, cross-node and north-south benchmarks need root (network namespaces); use --only micro otherwise');
  }
  const cleanups = new Cleanups();
  installSignalHandlers(cleanups);
  try {
    const sys = await systemInfo();
    log(`# Tapestry benchmarks — ${systemLine(sys)}`);
    const parts: { e2e?: string; policy?: string; observability?: string; cluster?: string; nodeport?: string; micro?: string } = {};
    const mdPath = join(REPO_ROOT, 'BENCHMARKS.md');

    if (args.parts.micro) {
      const files = await findMicroBenches(REPO_ROOT, args.micro);
      log(`\n# Micro-benchmarks: ${files.length ? files.join(', ') : 'none found (bench/*.bench.ts)'}`);
      const results = await runMicroBenches(REPO_ROOT, files, cleanups, log);
      // --micro: the files left out keep their previous output.
      const merge = args.micro
        ? { previous: previousSection(await readFile(mdPath, 'utf8').catch(() => null), 'micro'), files: await findMicroBenches(REPO_ROOT) }
        : undefined;
      parts.micro = microMarkdown(results, sys, merge);
    }
    // One prefix for the run: single-node legs use <prefix>k|o|t*, policy legs <prefix>p*, observability legs <prefix>v*, clusters <prefix>c*,
    // north-south clusters <prefix>x*.
    const prefix = netns ? await choosePrefix() : '';
    if (args.parts.e2e) {
      const results = await endToEnd(args, prefix, cleanups);
      if (isAborted()) return 130; // the signal handler tears down and exits
      const summary = summarize(results, args.runs, args.duration, args.streams, args.services);
      log(`\n${consoleReport(summary)}`);
      parts.e2e = e2eMarkdown(summary, sys);
    }
    if (args.parts.policy && !isAborted()) {
      const results = await policyComparison(args, prefix, cleanups);
      if (isAborted()) return 130; // the signal handler tears down and exits
      const summary = summarizePolicy(results, args.runs, args.duration);
      log(`\n${policyConsoleReport(summary)}`);
      parts.policy = policySectionMarkdown(summary, sys);
    }
    if (args.parts.observability && !isAborted()) {
      const results = await observabilityCost(args, prefix, cleanups);
      if (isAborted()) return 130; // the signal handler tears down and exits
      const summary = summarizeObservability(results, args.runs, args.duration);
      log(`\n${observabilityConsoleReport(summary)}`);
      parts.observability = observabilitySectionMarkdown(summary, sys);
    }
    if (args.parts.cluster && !isAborted()) {
      const results = await crossNode(args, prefix, cleanups);
      if (isAborted()) return 130; // the signal handler tears down and exits
      const summary = summarizeCluster(results, args.runs, args.duration, args.captureDuration);
      log(`\n${clusterConsoleReport(summary)}`);
      parts.cluster = clusterSectionMarkdown(summary, sys);
    }
    if (args.parts.nodeport && !isAborted()) {
      const results = await northSouth(args, prefix, cleanups);
      if (isAborted()) return 130; // the signal handler tears down and exits
      const summary = summarizeNodePort(results, args.runs, args.duration, args.connCount, args.replyDuration);
      log(`\n${nodePortConsoleReport(summary)}`);
      parts.nodeport = nodePortSectionMarkdown(summary, sys);
    }

    if (isAborted()) return 130; // the signal handler tears down and exits
    if (args.write) {
      const previous = await readFile(mdPath, 'utf8').catch(() => null);
      await writeFile(mdPath, renderBenchmarksMd(previous, parts));
      log(`\nwrote ${mdPath}`);
    }
    return 0;
  } finally {
    await cleanups.runAll();
  }
}

// After a signal, the handler in cleanup.ts owns the exit (once teardown is done).
main(process.argv.slice(2)).then(
  (code) => {
    if (!isAborted()) process.exit(code);
  },
  (err: unknown) => {
    if (isAborted()) return;
    console.error(err instanceof BenchError ? `bench: ${err.message}` : err);
    process.exit(1);
  },
);

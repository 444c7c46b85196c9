/**
 * `npm start`: the guided tour. Brings up two Tapestry nodes in VXLAN
 * tunnel mode with two pods each and an outside host (topology.ts draws
 * it), runs real traffic through the userspace datapath — same node,
 * across nodes over IPv4 and IPv6, a ClusterIP with a backend on each
 * node, masquerade to the outside, NodePorts from outside in SNAT and DSR
 * mode through each node, the node stack to a remote pod, one
 * spoofing attempt — prints every step as it happens, shows node n1
 * through the CLI and every node's counters, tears everything down and
 * exits non-zero if any step did not go as expected.
 *
 * Teardown is guaranteed: on a failed step, on an exception, and on
 * SIGINT/SIGTERM (the command in flight is killed, the cluster removed,
 * exit 130/143). A second signal kills the agents and deletes the run's
 * namespaces at once.
 *
 * Files: topology.ts (the cluster), traffic.ts (the steps), inspect.ts
 * (CLI excerpts, per-node counters), report.ts (output), run.ts (bounded,
 * killable commands).
 */
import { spawnSync } from 'node:child_process';
import { netnsWithPrefix, runPrefix } from '../testbed/agent-process.ts';
import { Cluster } from '../testbed/cluster.ts';
import { cliExcerpts, nodeSummary } from './inspect.ts';
import { failed, finalLine, record, say } from './report.ts';
import { killAll, markStopping, stopping } from './run.ts';
import { describe, tourOf, tourSpec } from './topology.ts';
import * as traffic from './traffic.ts';
import { northSouth } from './north-south.ts';

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
const started = Date.now();
const prefix = runPrefix('tour');
let cluster: Cluster | undefined;
let downing: Promise<void> | undefined;

const seconds = (): string => ((Date.now() - started) / 1000).toFixed(1);

/** Stop what runs, stop the agents (keeping their exit codes), remove the cluster, check nothing is left. Once. */
function teardown(): Promise<void> {
  return (downing ??= (async () => {
    killAll();
    if (!cluster) return;
    const c = cluster;
    const codes = await Promise.all(c.nodes.map((n) => n.agent?.stop() ?? Promise.resolve(0)));
    await c.down();
    const left = netnsWithPrefix(prefix);
    const ok = codes.every((x) => x === 0) && left.length === 0;
    record('teardown', 'agents stopped, namespaces removed', ok, `agent exit ${codes.join('/')}, ${left.length} namespaces "${prefix}*" left`);
  })());
}

function onSignal(sig: string): void {
  if (stopping()) {
    // Second signal: do not wait for the agents' own teardown.
    killAll();
    for (const n of cluster?.nodes ?? []) n.agent?.child.kill('SIGKILL');
    for (const ns of netnsWithPrefix(prefix)) spawnSync('ip', ['netns', 'del', ns], { timeout: 5000 });
    process.exit(SIGNAL_EXIT[sig] ?? 1);
  }
  markStopping(sig);
  say(`\n${sig}: stopping the traffic and removing the cluster (again to force)`);
  killAll();
  // main() is waiting on a command that now rejects, or on Cluster.up (it tears down once that returns).
  if (cluster) void teardown();
}

async function main(): Promise<number> {
  for (const sig of Object.keys(SIGNAL_EXIT)) process.on(sig, () => onSignal(sig));
  say('Tapestry tour: two nodes, VXLAN tunnel, masquerade to an outside host; every pod frame through the userspace datapath\n');
  cluster = await Cluster.up(tourSpec(prefix));
  try {
    if (stopping()) return 1;
    const t = tourOf(cluster);
    say(`Cluster ${prefix} up in ${seconds()} s:\n${describe(t)}`);
    await traffic.startServers(t);

    say('\nSame node (n1):');
    await traffic.pingSameNode(t);
    say('\nAcross nodes, through the VXLAN tunnel:');
    await traffic.pingCrossNode(t);
    await traffic.curlCrossNode(t);
    await traffic.iperfCrossNode(t);
    say('\nService web, ClusterIP, one backend on each node:');
    await traffic.clusterIp(t);
    say('\nTo the outside, masqueraded to the node address:');
    await traffic.masquerade(t);
    say('\nFrom outside through a NodePort on each node, SNAT and DSR (the pods say which client address they saw):');
    await northSouth(t);
    say('\nNode stack to a pod on the other node:');
    await traffic.hostToPod(t);
    say('\nA spoofed source address:');
    await traffic.spoof(t);
    say('\nNode n1 through the CLI (bin/tapestry --socket <n1 API socket>):');
    await cliExcerpts(t);
    await nodeSummary(t);
    say('');
  } catch (e) {
    if (!stopping()) record('tour', 'stopped early', false, (e as Error).message);
  } finally {
    await teardown();
  }
  say(`\n${stopping() ? `stopped by ${stopping()}: ` : ''}${finalLine()} (${seconds()} s)`);
  return failed().length ? 1 : 0;
}

main().then(
  (code) => process.exit(SIGNAL_EXIT[stopping() ?? ''] ?? code),
  async (e: Error) => {
    // Cluster.up failed (it removed what it had built) or was interrupted.
    await teardown();
    if (!stopping()) process.stderr.write(`tapestry tour: ${e.message}\n`);
    const left = netnsWithPrefix(prefix);
    if (left.length) process.stderr.write(`tapestry tour: namespaces left: ${left.join(' ')}\n`);
    process.exit(SIGNAL_EXIT[stopping() ?? ''] ?? 1);
  },
);

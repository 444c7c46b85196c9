/**
 * Tapestry leg: the agent under test forwards between the pods itself.
 *
 *   ns <p>ta                    bin/tapestry agent                 ns <p>tb
 *   eth0 (TAP) 10.77.0.10/32 <-> userspace datapath (node) <-> eth0 (TAP) 10.77.0.11/32
 *   default via 10.77.0.1        + idle endpoint <p>tc 10.77.0.12
 *
 * Contract with the agent (bin/tapestry agent --config FILE):
 *   - the YAML config below; the agent creates missing namespaces and deletes
 *     the ones it created;
 *   - it prints a line containing `tapestry agent ready` on stdout once the
 *     endpoints are up;
 *   - SIGTERM makes it tear down what it created and exit.
 * The config also names a private API socket (in the run's temp directory,
 * for the service benchmark's PUT /v1/service) and one service, ClusterIP
 * 10.96.0.10:5201 with pod B as its only backend (iperf3 through a service).
 * A third endpoint is configured so that the idle-RSS figure is the one the
 * target is stated for (<= 150 MB with 3 endpoints); traffic only uses a/b.
 * The policy comparison (policy-legs.ts) starts the same agent under its own
 * namespace prefix, with pod labels and network policies in the config.
 *
 * The agent runs in its own process group, so a Ctrl-C on the terminal does
 * not reach it before the harness can send SIGTERM and wait for teardown.
 * Namespaces with this run's names that are still there after the agent
 * exited are deleted (they are this run's) and reported.
 *
 * API: upTapestry, agentConfigYaml, TapestryOptions, AgentExtras
 */
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Cleanups } from './cleanup.ts';
import { deleteNetns, listNetns, reachable } from './netns.ts';
import { BenchError, isRunning, sleep, startBackground, stopProcess, type Background } from './proc.ts';
import { treeCpuSeconds, treeMemoryKb } from './proc-stats.ts';
import { tapestryServices } from './services.ts';
import { legNs, POD, type Topology } from './topology.ts';

/** How to start the agent. */
export interface TapestryOptions {
  /** Repository root (where bin/tapestry lives). */
  repoRoot: string;
  /** Command prefix replacing bin/tapestry, run by sh; `agent --config FILE` is appended. */
  agentCmd?: string;
  /** Limit for the ready line, ms. */
  readyTimeoutMs: number;
  /** Echo the agent's output lines to stderr. */
  verbose: boolean;
  /** Namespace and TAP prefix of the three pods (default `<prefix>t`). */
  nsPrefix?: string;
  /** Labels, network policies and the port the reachability check uses (default: none, none, any free port). */
  extras?: AgentExtras;
}

/** What the policy comparison adds to the agent's config and checks. */
export interface AgentExtras {
  /** Pod labels of endpoints a, b, c. */
  labels?: { a?: Record<string, string>; b?: Record<string, string>; c?: Record<string, string> };
  /** CiliumNetworkPolicy / NetworkPolicy documents (the config's `policies`). */
  policies?: object[];
  /** Port in pod B the a→b reachability check connects to (one the policies allow). */
  probePort?: number;
  /** The config's `monitor` section (omitted: the agent's default, event code paths on). */
  monitor?: { enabled: boolean };
}

/** The line the agent prints once its endpoints are up. */
const READY = 'tapestry agent ready';
/** Time the agent gets after SIGTERM to tear down before it is killed. */
const STOP_GRACE_MS = 20_000;
/** Pause between the ready line and the idle RSS reading. */
const SETTLE_MS = 2_000;

/** The agent config for this run: node section plus endpoints a, b, c in namespaces `<nsPrefix>a|b|c`. */
export function agentConfigYaml(nsPrefix: string, socket?: string, extras: AgentExtras = {}): string {
  const labels = (w: 'a' | 'b' | 'c'): object => (extras.labels?.[w] ? { labels: extras.labels[w] } : {});
  return stringify({
    ...(socket ? { api: { socket } } : {}),
    // TAPs carry the run's prefix too while they sit in the root namespace.
    node: { name: 'bench', ipv4PodCIDR: POD.cidr, routerIPv4: POD.gateway, mtu: POD.mtu, tapPrefix: nsPrefix },
    endpoints: [
      { name: 'a', netns: `${nsPrefix}a`, ipv4: POD.ipA, ...labels('a') },
      { name: 'b', netns: `${nsPrefix}b`, ipv4: POD.ipB, ...labels('b') },
      { name: 'c', netns: `${nsPrefix}c`, ipv4: POD.ipC, ...labels('c') },
    ],
    // iperf3 needs its control and data connections on one server: exactly one backend.
    services: [{ name: 'bench', clusterIP: POD.clusterIP, ports: [{ port: 5201 }], backends: [{ ip: POD.ipB }] }],
    ...(extras.policies?.length ? { policies: extras.policies } : {}),
    ...(extras.monitor ? { monitor: extras.monitor } : {}),
  });
}

/** Last `n` lines of some output, joined for a one-line error message. */
function tail(text: string, n = 6): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  return lines.length ? lines.slice(-n).join(' | ') : '(no output)';
}

/** Starts the agent and waits for its ready line; rejects with why it did not come up. */
async function startAgent(opts: TapestryOptions, configPath: string): Promise<Background> {
  let cmd: string;
  let args: string[];
  if (opts.agentCmd) {
    cmd = 'sh';
    args = ['-c', `exec ${opts.agentCmd} "$@"`, 'tapestry-agent', 'agent', '--config', configPath];
  } else {
    cmd = join(opts.repoRoot, 'bin', 'tapestry');
    const ok = await access(cmd, constants.X_OK).then(() => true, () => false);
    if (!ok) throw new BenchError(`${cmd} not found or not executable (the agent is not built yet?); use --agent-cmd to point elsewhere`);
    args = ['agent', '--config', configPath];
  }
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const agent = startBackground(cmd, args, {
    detached: true,
    cwd: opts.repoRoot,
    onLine: (line) => {
      if (opts.verbose) console.error(`  agent| ${line}`);
      if (line.includes(READY)) onReady();
    },
  });
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    agent.exited.then((code) => `exited with ${code}` as const),
    sleep(opts.readyTimeoutMs).then(() => 'timeout' as const),
  ]);
  if (outcome === 'ready') return agent;
  await stopAgent(agent);
  const why = outcome === 'timeout' ? `no "${READY}" line within ${opts.readyTimeoutMs / 1000} s` : outcome;
  throw new BenchError(`agent (${[cmd, ...args].join(' ')}) ${why}; output: ${tail(agent.output())}`);
}

/** SIGTERM, wait for the agent's own teardown, then SIGKILL its whole process group if needed. */
async function stopAgent(agent: Background): Promise<boolean> {
  const graceful = await stopProcess(agent, STOP_GRACE_MS);
  const pgid = agent.child.pid;
  if (pgid !== undefined) {
    try {
      process.kill(-pgid, 'SIGKILL'); // leftovers in the agent's own group (it was started detached)
    } catch {
      /* group already empty */
    }
  }
  return graceful;
}

/** Starts the agent with a 3-endpoint config, reads its idle RSS, checks a→b reachability. */
export async function upTapestry(prefix: string, cleanups: Cleanups, opts: TapestryOptions): Promise<Topology> {
  const nsPrefix = opts.nsPrefix ?? legNs(prefix, 'tapestry', '');
  const nsA = `${nsPrefix}a`;
  const nsB = `${nsPrefix}b`;
  const ours = ['a', 'b', 'c'].map((w) => `${nsPrefix}${w}`);
  const dir = await mkdtemp(join(tmpdir(), `tapestry-bench-${nsPrefix}-agent-`));
  const configPath = join(dir, 'agent.yaml');
  const socket = join(dir, 'api', 'tapestry.sock');
  await writeFile(configPath, agentConfigYaml(nsPrefix, socket, opts.extras));
  const notes: string[] = [];
  let agent: Background | null = null;

  const down = cleanups.add('tapestry agent and its namespaces', async () => {
    if (agent) {
      const a = agent;
      agent = null;
      if (!(await stopAgent(a))) notes.push(`agent did not exit within ${STOP_GRACE_MS / 1000} s of SIGTERM and was killed`);
      else if (a.child.exitCode !== 0 && a.child.exitCode !== null) notes.push(`agent exited with ${a.child.exitCode} after SIGTERM`);
    }
    const left = (await listNetns()).filter((n) => ours.includes(n));
    for (const ns of left) await deleteNetns(ns);
    if (left.length) notes.push(`agent left namespaces behind (deleted by the harness): ${left.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  });

  const extras: Record<string, number> = {};
  try {
    agent = await startAgent(opts, configPath);
    const pid = agent.child.pid!;
    const cpu0 = await treeCpuSeconds(pid);
    await sleep(SETTLE_MS);
    if (!isRunning(agent.child)) throw new BenchError(`agent exited right after ready: ${tail(agent.output())}`);
    const mem = await treeMemoryKb(pid);
    extras.rssIdleMB = mem.rssKb / 1024;
    extras.cpuIdlePct = ((await treeCpuSeconds(pid)) - cpu0) / (SETTLE_MS / 1000) * 100;
    notes.push(`agent CPU while idle (${SETTLE_MS / 1000} s after ready): ${extras.cpuIdlePct.toFixed(1)} % of one core`);
    if (mem.procs.length > 1) {
      const parts = mem.procs.map((p) => `${p.comm}[${p.pid}] ${(p.rssKb / 1024).toFixed(1)} MB`).join(', ');
      notes.push(`idle RSS is summed over the agent's process tree: ${parts}`);
    }
    if (!(await reachable(nsA, nsB, POD.ipB, undefined, opts.extras?.probePort))) {
      throw new BenchError(
        `${nsA} cannot reach ${POD.ipB}${opts.extras?.probePort ? `:${opts.extras.probePort}` : ''} through the agent (idle RSS was ${extras.rssIdleMB.toFixed(1)} MB); agent output: ${tail(agent.output())}`,
      );
    }
  } catch (err) {
    await down();
    throw err;
  }
  const running = agent as Background;
  return {
    leg: 'tapestry',
    nsA,
    nsB,
    ipA: POD.ipA,
    ipB: POD.ipB,
    extras,
    notes,
    services: tapestryServices(socket, POD.ipB, POD.clusterIP),
    apiSocket: socket,
    down: async () => {
      if (isRunning(running.child) && running.child.pid !== undefined) {
        const mem = await treeMemoryKb(running.child.pid);
        extras.rssPeakMB = mem.hwmKb / 1024;
      }
      await down();
    },
  };
}

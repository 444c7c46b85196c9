/**
 * A Tapestry cluster in network namespaces from the command line, for the
 * demo and for poking at by hand (src/testbed/cluster.ts builds it; its
 * header has the topology and addressing). Needs root.
 *
 *   node --import tsx scripts/cluster.ts up [--nodes 2] [--pods 2] [--native] [--geneve]
 *        [--kernel-node] [--no-masquerade] [--no-agent] [--prefix p]
 *     Builds the cluster in a background process that holds the agents and
 *     the outside servers, prints the namespaces, addresses and the command
 *     that removes it, and exits. Everything keeps running until `down`.
 *     Agent output goes to /tmp/tapestry-cluster-<p>.log.
 *
 *   node --import tsx scripts/cluster.ts down --prefix p
 *     Stops that background process (it stops its agents and deletes its
 *     namespaces), then removes whatever is left: the processes inside, and
 *     every namespace whose name starts with p. Never anything else (besides
 *     this tool's own temp files for p: /tmp/p-cluster-XXXXXX, the agents'
 *     /tmp/p-XXXXXX config dirs, the .pid and .log files).
 *
 *   node --import tsx scripts/cluster.ts serve [same options as up]
 *     What `up` runs in the background; in the foreground, Ctrl-C removes it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { netnsWithPrefix, runPrefix } from '../src/testbed/agent-process.ts';
import { Cluster, planCluster, type ClusterSpec, type PodSpec } from '../src/testbed/cluster.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SELF = fileURLToPath(import.meta.url);
const READY = 'cluster ready';

const USAGE = `usage:
  node --import tsx scripts/cluster.ts up [--nodes 2] [--pods 2] [--native] [--geneve] [--kernel-node]
                                          [--no-masquerade] [--no-agent] [--prefix p]
  node --import tsx scripts/cluster.ts down --prefix p`;

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string', default: '2' },
    pods: { type: 'string', default: '2' },
    native: { type: 'boolean', default: false },
    geneve: { type: 'boolean', default: false },
    'kernel-node': { type: 'boolean', default: false },
    'no-masquerade': { type: 'boolean', default: false },
    'no-agent': { type: 'boolean', default: false },
    prefix: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const pidFile = (p: string): string => join(tmpdir(), `tapestry-cluster-${p}.pid`);
const logFile = (p: string): string => join(tmpdir(), `tapestry-cluster-${p}.log`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fail(msg: string): never {
  process.stderr.write(`cluster: ${msg}\n`);
  process.exit(1);
}

function int(name: string, s: string, min: number, max: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer in ${min}-${max}`);
  return n;
}

/** A prefix `down` may sweep: at least 3 characters, so it cannot match half the machine. */
function checkPrefix(p: string | undefined): string {
  if (!p || !/^[A-Za-z0-9][A-Za-z0-9_.-]{2,}$/.test(p)) fail(`--prefix must be 3 or more letters, digits, "_", "." or "-"`);
  return p;
}

/** The cluster the options describe: pods a, b, … (label app=<name>) on every node. */
function specOf(prefix: string): ClusterSpec {
  const nodes = int('nodes', opt.nodes!, 1, 20);
  const pods = int('pods', opt.pods!, 0, 10);
  const podList = (): PodSpec[] => Array.from({ length: pods }, (_, j) => String.fromCharCode(97 + j)).map((name) => ({ name, labels: { app: name } }));
  return {
    prefix,
    nodes: Array.from({ length: nodes }, (_, i) => ({ name: `n${i + 1}`, pods: podList() })),
    kernelNodes: opt['kernel-node'] ? [{ name: 'kernel', pods: podList() }] : [],
    routingMode: opt.native ? 'native' : 'tunnel',
    tunnelProtocol: opt.geneve ? 'geneve' : 'vxlan',
    masquerade: !opt['no-masquerade'],
    agent: !opt['no-agent'],
  };
}

function summary(c: Cluster, spec: ClusterSpec): string {
  const mode = spec.routingMode === 'native' ? 'native routing' : `tunnel (${spec.tunnelProtocol})`;
  const lines = [
    `cluster ${c.prefix}: ${mode}, masquerade ${spec.masquerade ? 'on' : 'off'}, agents ${spec.agent ? 'running' : 'not started'}`,
    `  underlay  ns ${c.underlay.ns}  bridge ${c.underlay.bridge}  10.99.0.0/24`,
    `  outside   ns ${c.outside.ns}  ${c.outside.ip}  (HTTP :80 answers "ip:port", iperf3 -s :5201)`,
  ];
  for (const n of [...c.nodes, ...c.kernelNodes]) {
    const kind = 'vni' in n ? 'kernel' : 'node  ';
    const api = 'config' in n && n.agent ? `  API unix:${n.config.api.socket}` : '';
    lines.push(`  ${kind}    ns ${n.ns}  ${n.name}  ${n.address}  pods ${n.podCIDR4} ${n.podCIDR6}${api}`);
    for (const pod of n.pods) lines.push(`    pod ${pod.name}   ns ${pod.ns}  ${pod.ipv4}  ${pod.ipv6}`);
  }
  const a = c.nodes[0]?.pods[0];
  const b = [...c.nodes, ...c.kernelNodes][1]?.pods[0];
  if (spec.agent && a && b) lines.push(`try:     ip netns exec ${a.ns} ping -c 3 ${b.ipv4}`);
  if (spec.agent && a) lines.push(`         ip netns exec ${a.ns} curl -s http://${c.outside.ip}/`);
  lines.push(`remove:  node --import tsx scripts/cluster.ts down --prefix ${c.prefix}`);
  return lines.join('\n');
}

/** Build, print, hold until SIGINT/SIGTERM/SIGHUP, then remove. */
async function serve(): Promise<void> {
  const prefix = checkPrefix(opt.prefix);
  const spec = specOf(prefix);
  writeFileSync(pidFile(prefix), `${process.pid}\n`);
  let cluster: Cluster;
  try {
    cluster = await Cluster.up(spec);
  } catch (e) {
    rmSync(pidFile(prefix), { force: true });
    fail((e as Error).message);
  }
  process.stdout.write(`${summary(cluster, spec)}\n${READY}\n`);
  // Pass the agents' output on (and keep their buffers from growing).
  const relay = setInterval(() => {
    for (const n of cluster.nodes) {
      if (!n.agent) continue;
      for (const chunk of n.agent.stdout.splice(0)) process.stdout.write(prefixLines(n.name, chunk));
      for (const chunk of n.agent.stderr.splice(0)) process.stderr.write(prefixLines(n.name, chunk));
    }
  }, 500);
  let stopping = false;
  const stop = async (sig: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(relay);
    process.stdout.write(`${sig}: removing cluster ${prefix}\n`);
    await cluster.down();
    rmSync(pidFile(prefix), { force: true });
    process.exit(0);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(sig));
}

const prefixLines = (name: string, chunk: string): string => chunk.replace(/^(?=.)/gm, `[${name}] `);

/** Start `serve` in the background and wait until it is ready (or has failed). */
async function up(): Promise<void> {
  const prefix = opt.prefix === undefined ? runPrefix('tc') : checkPrefix(opt.prefix);
  const spec = specOf(prefix);
  try {
    planCluster(spec, tmpdir());
  } catch (e) {
    fail((e as Error).message);
  }
  if (netnsWithPrefix(prefix).length > 0) fail(`namespaces starting with ${prefix} exist; remove them with: down --prefix ${prefix}`);
  const log = logFile(prefix);
  const fd = openSync(log, 'w');
  const args = process.argv.slice(3).filter((a, i, all) => a !== '--prefix' && all[i - 1] !== '--prefix' && !a.startsWith('--prefix='));
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, 'serve', ...args, '--prefix', prefix], { cwd: ROOT, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const deadline = Date.now() + 300_000;
  for (;;) {
    const text = readFileSync(log, 'utf8');
    if (text.includes(READY)) {
      process.stdout.write(text.slice(0, text.indexOf(READY)));
      process.stdout.write(`log:     ${log}\n`);
      child.unref();
      return;
    }
    if (exited !== undefined) fail(`building the cluster failed (exit ${exited}):\n${text}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      fail(`cluster not ready after 300 s; see ${log}`);
    }
    await sleep(200);
  }
}

/** Is `pid` alive? */
const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

/** Stop the background `serve` of `prefix`, then remove every process and namespace left with the prefix. */
async function down(): Promise<void> {
  const prefix = checkPrefix(opt.prefix);
  const pf = pidFile(prefix);
  if (existsSync(pf)) {
    const pid = Number(readFileSync(pf, 'utf8').trim());
    const cmd = alive(pid) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') : [];
    // Only our own `serve` for this prefix, not whatever reused the pid.
    if (cmd.includes(SELF) && cmd.includes('serve') && cmd.includes(prefix)) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 600 && alive(pid); i++) await sleep(100);
      if (alive(pid)) process.stderr.write(`cluster: serve (pid ${pid}) still running after 60 s; sweeping anyway\n`);
    }
    rmSync(pf, { force: true });
  }
  const left = netnsWithPrefix(prefix);
  const pids = (ns: string): number[] =>
    (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10000 }).stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
  const signal = (sig: NodeJS.Signals): number => {
    let n = 0;
    for (const ns of left) {
      for (const pid of pids(ns)) {
        try {
          process.kill(pid, sig);
          n++;
        } catch {
          // gone
        }
      }
    }
    return n;
  };
  // TERM first: an agent removes what it made.
  if (signal('SIGTERM') > 0) {
    for (let i = 0; i < 200 && left.some((ns) => pids(ns).length > 0); i++) await sleep(100);
    signal('SIGKILL');
  }
  for (const ns of left) {
    const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0 && netnsWithPrefix(ns).includes(ns)) process.stderr.write(`cluster: ip netns del ${ns}: ${r.stderr.trim()}\n`);
  }
  rmSync(logFile(prefix), { force: true });
  // Temp dirs a killed `serve` could not remove: the cluster's and its agents' (config + socket).
  const esc = prefix.replace(/[.]/g, '\\.');
  for (const d of readdirSync(tmpdir())) {
    const mine = new RegExp(`^${esc}-cluster-[A-Za-z0-9]{6}$`).test(d) || (new RegExp(`^${esc}-[A-Za-z0-9]{6}$`).test(d) && existsSync(join(tmpdir(), d, 'agent.yaml')));
    if (mine) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
  const still = netnsWithPrefix(prefix);
  process.stdout.write(still.length === 0 ? `removed cluster ${prefix}\n` : `left: ${still.join(' ')}\n`);
  if (still.length > 0) process.exit(1);
}

const cmd = positionals[0];
if (opt.help || !cmd) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(opt.help ? 0 : 2);
}
switch (cmd) {
  case 'up':
    await up();
    break;
  case 'serve':
    // Holds the cluster until a signal: keep the event loop alive even with no agents.
    setInterval(() => undefined, 1 << 30);
    await serve();
    break;
  case 'down':
    await down();
    break;
  default:
    fail(`unknown command "${cmd}"\n${USAGE}`);
}

/**
 * Network-namespace plumbing over iproute2: create and delete namespaces,
 * run commands inside them, pick a run prefix no one else uses, wait for a
 * server socket, check reachability.
 *
 * API: choosePrefix, createNetns, deleteNetns, listNetns, ipIn, execIn,
 *      nsArgs, sysctlIn, podRoutes, waitListening, reachable, tcpConnects, tcpProbe,
 *      ProbeOutcome, linkMac
 *
 * Every name this harness creates starts with the run prefix, and only
 * names it created itself are ever deleted.
 */
import { BenchError, run, runOk, sleep, startBackground, stopProcess } from './proc.ts';

/** Names of all network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const out = await runOk('ip', ['-j', 'netns', 'list']).catch(() => '[]');
  if (!out.trim()) return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

/** Names of all links in the root namespace. */
async function listLinks(): Promise<string[]> {
  const out = await runOk('ip', ['-j', 'link', 'show']);
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname);
}

/**
 * A short prefix (`tb` + pid mod 10000) that no namespace or root link uses
 * yet, so a concurrent run or someone's leftovers are never mistaken for ours.
 */
export async function choosePrefix(): Promise<string> {
  const taken = [...(await listNetns()), ...(await listLinks())];
  for (let i = 0; i < 10_000; i++) {
    const p = `tb${(process.pid + i) % 10_000}`;
    if (!taken.some((n) => n.startsWith(p))) return p;
  }
  throw new BenchError('no free tb<N> prefix for namespaces');
}

/** `ip netns exec NS cmd args...` as an argv (for spawning servers in NS). */
export function nsArgs(ns: string, cmd: string, args: readonly string[]): string[] {
  return ['netns', 'exec', ns, cmd, ...args];
}

/** Runs `cmd args` inside namespace `ns`; throws on failure. */
export function execIn(ns: string, cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return runOk('ip', nsArgs(ns, cmd, args), { timeoutMs });
}

/** Runs `ip -n NS args...`; throws on failure. */
export function ipIn(ns: string, args: readonly string[]): Promise<string> {
  return runOk('ip', ['-n', ns, ...args]);
}

/** Creates namespace `ns` with its loopback up. */
export async function createNetns(ns: string): Promise<void> {
  await runOk('ip', ['netns', 'add', ns]);
  await ipIn(ns, ['link', 'set', 'lo', 'up']);
}

/** Deletes namespace `ns` if it exists (its veths and moved TAPs go with it). */
export async function deleteNetns(ns: string): Promise<void> {
  if (!(await listNetns()).includes(ns)) return;
  await runOk('ip', ['netns', 'del', ns]);
}

/** Sets a sysctl inside `ns` (`sysctl -qw key=value`). */
export async function sysctlIn(ns: string, key: string, value: string): Promise<void> {
  await execIn(ns, 'sysctl', ['-qw', `${key}=${value}`]);
}

/**
 * Gives a pod its /32 address on `dev` and Cilium's routes: the gateway as
 * an on-link host route, and the default route through it.
 */
export async function podRoutes(ns: string, dev: string, ip: string, gateway: string, mtu: number): Promise<void> {
  await ipIn(ns, ['link', 'set', dev, 'mtu', String(mtu), 'up']);
  await ipIn(ns, ['addr', 'add', `${ip}/32`, 'dev', dev]);
  await ipIn(ns, ['route', 'add', gateway, 'dev', dev, 'scope', 'link']);
  await ipIn(ns, ['route', 'add', 'default', 'via', gateway, 'dev', dev, 'mtu', String(mtu)]);
}

/** MAC address of `dev` in `ns`. */
export async function linkMac(ns: string, dev: string): Promise<string> {
  const out = await ipIn(ns, ['-j', 'link', 'show', dev]);
  const mac = (JSON.parse(out) as { address?: string }[])[0]?.address;
  if (!mac) throw new BenchError(`no MAC on ${dev} in ${ns}`);
  return mac;
}

/** Waits until something in `ns` listens on `port` (TCP or UDP); false on timeout. */
export async function waitListening(ns: string, proto: 'tcp' | 'udp', port: number, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const flag = proto === 'tcp' ? '-Hltn' : '-Hlun';
  while (Date.now() < deadline) {
    const r = await run('ip', nsArgs(ns, 'ss', [flag, `sport = :${port}`]), { timeoutMs: 3_000 });
    if (r.code === 0 && r.stdout.trim() !== '') return true;
    await sleep(50);
  }
  return false;
}

/** Port of the short-lived TCP listener reachable() starts in the destination pod. */
const PROBE_PORT = 5299;

/**
 * True once a TCP connection from `nsFrom` to `dst` in `nsTo` succeeds
 * (retried up to `timeoutMs`). Uses node itself on both ends: the image has
 * no ping, and a TCP handshake proves both directions plus ARP/gateway work.
 * `port` is where the short-lived listener goes (a pod under a network
 * policy is only reachable on the ports it allows).
 */
export async function reachable(nsFrom: string, nsTo: string, dst: string, timeoutMs = 8_000, port = PROBE_PORT): Promise<boolean> {
  const server = startBackground(
    'ip',
    nsArgs(nsTo, process.execPath, [
      '-e',
      `const s=require('net').createServer(c=>c.end()).listen(${port},'${dst}');setTimeout(()=>s.close(),${timeoutMs + 2000}).unref()`,
    ]),
    { traffic: true },
  );
  try {
    if (!(await waitListening(nsTo, 'tcp', port))) return false;
    return await tcpConnects(nsFrom, dst, port, timeoutMs);
  } finally {
    await stopProcess(server, 1_000);
  }
}

/** True once a TCP connection from `nsFrom` to an existing server `dst`:`port` succeeds (retried up to `timeoutMs`). */
export async function tcpConnects(nsFrom: string, dst: string, port: number, timeoutMs = 8_000): Promise<boolean> {
  const client =
    `const s=require('net').connect({host:'${dst}',port:${port},timeout:1500});` +
    `s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));s.on('timeout',()=>process.exit(2))`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await run('ip', nsArgs(nsFrom, process.execPath, ['-e', client]), { timeoutMs: 5_000, traffic: true });
    if (r.code === 0) return true;
    await sleep(200);
  }
  return false;
}

/** What one TCP connection attempt ran into. */
export type ProbeOutcome = 'connected' | 'refused' | 'timeout' | 'error';

/**
 * One TCP connection attempt from `nsFrom` to `dst`:`port`, no retry:
 * `connected`, `refused` (a RST came back), `timeout` (no answer within
 * `timeoutMs`: the SYN and its retransmissions were dropped) or `error`.
 */
export async function tcpProbe(nsFrom: string, dst: string, port: number, timeoutMs = 2_500): Promise<ProbeOutcome> {
  const client =
    `const s=require('net').connect({host:'${dst}',port:${port}});const t=setTimeout(()=>process.exit(2),${timeoutMs});` +
    `s.on('connect',()=>process.exit(0));s.on('error',e=>process.exit(e.code==='ECONNREFUSED'?3:1))`;
  const r = await run('ip', nsArgs(nsFrom, process.execPath, ['-e', client]), { timeoutMs: timeoutMs + 5_000, traffic: true });
  return r.code === 0 ? 'connected' : r.code === 3 ? 'refused' : r.code === 2 ? 'timeout' : 'error';
}

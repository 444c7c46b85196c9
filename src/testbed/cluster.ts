/**
 * A multi-node cluster in network namespaces, for the end-to-end tests, the
 * benchmarks and the demo: an underlay bridge, Tapestry nodes (one agent
 * each, run inside the node's namespace), optional kernel-only nodes that
 * speak VXLAN through the Linux kernel's own vxlan device (the interop
 * peer), and an "outside" host with an echo-address HTTP server and iperf3.
 *
 * API:
 *   planCluster(spec, dir) -> ClusterPlan   names, addresses and agent configs; pure
 *   Cluster.up(spec) -> Cluster             build it all (tears down and rethrows on failure)
 *   cluster.nodes[i] / kernelNodes[i]       handles (i = k - 1): ns, address, pods, agent
 *   cluster.outside / cluster.underlay      { ns, ip } / { ns, bridge }
 *   cluster.sh(ns, cmd, args, opts)         run a command in a namespace, bounded in time
 *   cluster.down()                          stop agents and servers, delete our namespaces; idempotent
 *   tapPrefixOf(prefix)                     the agents' TAP name prefix
 *
 * Topology and addressing (k numbers all nodes from 1, Tapestry nodes first,
 * kernel nodes after them; <p> is the run prefix every namespace starts with):
 *
 *                         ns <p>u: bridge br0 (10.99.0.0/24, no address)
 *        port n1            port n2            port k3            port o
 *          |                  |                  |                  |
 *        eth0               eth0               eth0               eth0
 *     ns <p>n1           ns <p>n2           ns <p>k3           ns <p>o
 *     10.99.0.11         10.99.0.12         10.99.0.13         10.99.0.100
 *     (owned by the      (Tapestry)         (kernel: vx0,      HTTP :80 ("ip:port\n"),
 *      agent, no                             routes, nft)       iperf3 -s :5201
 *      kernel address)
 *     pods: ns <p>n1-<pod>                  pods: ns <p>k3-<pod>, veth eth0 <-> p<j>
 *
 *   node k: underlay 10.99.0.(10+k)/24, eth0 MAC 02:99:00:00:00:<hex(10+k)>,
 *           pod CIDRs 10.200.k.0/24 and fd00:200:k::/64, router 10.200.k.1,
 *           pod j (0-based) 10.200.k.(10+j) and fd00:200:k::(10+j) unless given.
 *   Interface names are fixed and short (br0, n<k>, k<k>, o, eth0, p<j>, vx0);
 *   every one is created directly in its namespace, never in the root one.
 *
 * Tapestry node: eth0 is up with no address and IPv6 disabled on it (the
 * agent owns the node address through AF_PACKET), ip_forward=0. The pods'
 * namespaces are created here, before the agent starts, because a namespace
 * made by `ip netns add` under `ip netns exec` is a bind mount in that
 * private mount namespace and cannot be entered from the root one. For the
 * same reason, create the namespace of an endpoint added later through the
 * API from the root namespace first (`ip netns add <p>n1-x`).
 *
 * Kernel node: the kernel owns eth0's address and routes (ip_forward=1).
 * Tunnel mode: vx0 is `vxlan external dstport 8472` with ARP off (the
 * kernel then uses vx0's own MAC as the inner destination, no neighbour
 * resolution over the overlay) and every other node's pod CIDRs are routed
 * `dev vx0 encap ip id VNI dst <its underlay address>`; VNI defaults to 2,
 * the world identity, which Tapestry reads as the source identity. Frames
 * arriving on vx0 carry whatever inner destination MAC the sender chose, so
 * the kernel marks them PACKET_OTHERHOST and ip_rcv drops them; an nftables
 * netdev ingress chain on vx0 (table `tapestry_interop`) rewrites the inner
 * `ether daddr` to vx0's MAC and sets `meta pkttype host`, with a counter.
 * Native mode: pod CIDRs routed via the node's underlay address, IPv4 only
 * (the kernel refuses IPv6 routes with an IPv4 gateway).
 *
 * Outside: routes every pod CIDR via its node, so un-masqueraded replies go back.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, sh, type ShResult } from './agent-process.ts';

/** The underlay bridge, inside `<prefix>u`. */
export const UNDERLAY_BRIDGE = 'br0';
/** The outside host's underlay address. */
export const OUTSIDE_IP = '10.99.0.100';
/** VXLAN UDP port of the kernel nodes (Cilium's default). */
export const VXLAN_PORT = 8472;
/** The kernel nodes' VXLAN device. */
export const KERNEL_VXLAN_DEV = 'vx0';
/** Default VNI the kernel nodes send with: Cilium's reserved world identity. */
export const WORLD_ID = 2;
/** The nftables table that lets kernel nodes accept foreign inner MACs. */
export const INTEROP_NFT_TABLE = 'tapestry_interop';

/** A pod to create on a node. */
export interface PodSpec {
  name: string;
  labels?: Record<string, string>;
  ipv4?: string;
  ipv6?: string;
}

/** A node and its pods. */
export interface NodeSpec {
  name: string;
  pods: PodSpec[];
}

/** A kernel-only node; `vni` overrides `ClusterSpec.kernelVni`. */
export interface KernelNodeSpec extends NodeSpec {
  vni?: number;
}

/** What to build. */
export interface ClusterSpec {
  /** From runPrefix(); every namespace name starts with it. */
  prefix: string;
  nodes: NodeSpec[];
  routingMode?: 'tunnel' | 'native';
  tunnelProtocol?: 'vxlan' | 'geneve';
  masquerade?: boolean;
  /** Passed through into every node's config. */
  services?: unknown[];
  /** Passed through into every node's config when given (`loadBalancer: { mode: 'dsr', ... }`). */
  loadBalancer?: Record<string, unknown>;
  /** Passed through into every node's config when given (`prefilter: { deny: [CIDR] }`). */
  prefilter?: Record<string, unknown>;
  /** Nodes whose overlay is the kernel's vxlan device, no Tapestry. */
  kernelNodes?: KernelNodeSpec[];
  /** VNI the kernel nodes send with (default 2, world). */
  kernelVni?: number;
  /** Start one agent per Tapestry node (default true). */
  agent?: boolean;
  /** How long each agent may take to become ready (default 60 s). */
  agentTimeoutMs?: number;
}

/** A pod's handle. */
export interface PodHandle {
  name: string;
  ns: string;
  ipv4: string;
  ipv6: string;
  labels: Record<string, string>;
}

/** What every node handle has. */
interface BaseNodeHandle {
  /** k: 1-based over all nodes, Tapestry first. */
  index: number;
  name: string;
  ns: string;
  /** Underlay address, without prefix length. */
  address: string;
  /** eth0's MAC. */
  mac: string;
  podCIDR4: string;
  podCIDR6: string;
  /** The pods' gateway (10.200.k.1). */
  router4: string;
  pods: PodHandle[];
}

/** A Tapestry node. */
export interface NodeHandle extends BaseNodeHandle {
  /** The config its agent runs with (start one yourself with it when `agent: false`). */
  config: AgentConfigDoc;
  agent?: AgentProcess;
}

/** A kernel-only node. */
export interface KernelNodeHandle extends BaseNodeHandle {
  vni: number;
  /** The VXLAN device (tunnel mode only). */
  vxlan?: { dev: string; mac: string; port: number };
}

/** Another node as an agent config lists it. */
export interface RemoteNodeDoc {
  name: string;
  address: string;
  ipv4PodCIDR: string;
  ipv6PodCIDR: string;
  endpoints: { name: string; labels: Record<string, string>; ipv4: string; ipv6: string }[];
}

/** The agent config generated for a Tapestry node (see src/agent/config.ts). */
export interface AgentConfigDoc {
  node: {
    name: string;
    ipv4PodCIDR: string;
    ipv6PodCIDR: string;
    tapPrefix: string;
    uplink: { device: string; address: string };
  };
  endpoints: { name: string; netns: string; labels: Record<string, string>; ipv4: string; ipv6: string }[];
  services: unknown[];
  cluster: {
    routingMode: 'tunnel' | 'native';
    tunnelProtocol: 'vxlan' | 'geneve';
    masquerade: boolean;
    nodes: RemoteNodeDoc[];
  };
  api: { socket: string };
  loadBalancer?: Record<string, unknown>;
  prefilter?: Record<string, unknown>;
}

/** Everything Cluster.up will build, decided up front. */
export interface ClusterPlan {
  prefix: string;
  routingMode: 'tunnel' | 'native';
  underlay: { ns: string; bridge: string };
  outside: { ns: string; ip: string; mac: string };
  nodes: NodeHandle[];
  kernelNodes: KernelNodeHandle[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_NODES = 89; // 10 + k stays below the outside host's .100
const MAX_PODS = 200;

/** The agents' TAP prefix: the run prefix, lowercase alphanumeric, starting with a letter, ≤ 10 chars. */
export function tapPrefixOf(prefix: string): string {
  let s = prefix.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (!/^[a-z]/.test(s)) s = `t${s}`;
  return s.slice(0, 10);
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** Names, addresses and agent configs for `spec`; agent sockets go under `dir`. Throws on an invalid spec. */
export function planCluster(spec: ClusterSpec, dir: string): ClusterPlan {
  const p = spec.prefix;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(p)) throw new Error(`cluster: prefix "${p}" must be letters, digits, "_", "." or "-"`);
  const kernelSpecs = spec.kernelNodes ?? [];
  const all = [...spec.nodes, ...kernelSpecs];
  if (all.length > MAX_NODES) throw new Error(`cluster: ${all.length} nodes, at most ${MAX_NODES}`);
  const routingMode = spec.routingMode ?? 'tunnel';
  const tunnelProtocol = spec.tunnelProtocol ?? 'vxlan';
  if (kernelSpecs.length > 0 && routingMode === 'tunnel' && tunnelProtocol !== 'vxlan') {
    throw new Error('cluster: kernel nodes speak VXLAN only (this kernel has no geneve link type)');
  }
  const seen = new Set<string>();
  for (const n of all) {
    if (!DNS_LABEL.test(n.name)) throw new Error(`cluster: node name "${n.name}" is not a DNS label`);
    if (seen.has(n.name)) throw new Error(`cluster: node name "${n.name}" is used twice`);
    seen.add(n.name);
    if (n.pods.length > MAX_PODS) throw new Error(`cluster: node ${n.name} has ${n.pods.length} pods, at most ${MAX_PODS}`);
    const pods = new Set<string>();
    for (const pod of n.pods) {
      if (!DNS_LABEL.test(pod.name)) throw new Error(`cluster: pod name "${pod.name}" on ${n.name} is not a DNS label`);
      if (pods.has(pod.name)) throw new Error(`cluster: pod name "${pod.name}" is used twice on ${n.name}`);
      pods.add(pod.name);
    }
  }

  const base = (n: NodeSpec, k: number, nsPrefix: string): BaseNodeHandle => ({
    index: k,
    name: n.name,
    ns: `${p}${nsPrefix}${k}`,
    address: `10.99.0.${10 + k}`,
    mac: `02:99:00:00:00:${hex2(10 + k)}`,
    podCIDR4: `10.200.${k}.0/24`,
    podCIDR6: `fd00:200:${k}::/64`,
    router4: `10.200.${k}.1`,
    pods: n.pods.map((pod, j) => ({
      name: pod.name,
      ns: `${p}${nsPrefix}${k}-${pod.name}`,
      ipv4: pod.ipv4 ?? `10.200.${k}.${10 + j}`,
      ipv6: pod.ipv6 ?? `fd00:200:${k}::${10 + j}`,
      labels: pod.labels ?? {},
    })),
  });
  const tap = spec.nodes.map((n, i) => base(n, i + 1, 'n'));
  const kern: KernelNodeHandle[] = kernelSpecs.map((n, i) => {
    const b = base(n, spec.nodes.length + i + 1, 'k');
    const vni = n.vni ?? spec.kernelVni ?? WORLD_ID;
    if (!Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new Error(`cluster: VNI ${vni} of ${n.name} is not in 1-16777215`);
    return {
      ...b,
      vni,
      ...(routingMode === 'tunnel' ? { vxlan: { dev: KERNEL_VXLAN_DEV, mac: `02:98:00:00:00:${hex2(10 + b.index)}`, port: VXLAN_PORT } } : {}),
    };
  });
  const remote = (n: BaseNodeHandle): RemoteNodeDoc => ({
    name: n.name,
    address: n.address,
    ipv4PodCIDR: n.podCIDR4,
    ipv6PodCIDR: n.podCIDR6,
    endpoints: n.pods.map((pod) => ({ name: pod.name, labels: pod.labels, ipv4: pod.ipv4, ipv6: pod.ipv6 })),
  });
  const everyone: BaseNodeHandle[] = [...tap, ...kern];
  const nodes: NodeHandle[] = tap.map((n) => ({
    ...n,
    config: {
      node: {
        name: n.name,
        ipv4PodCIDR: n.podCIDR4,
        ipv6PodCIDR: n.podCIDR6,
        tapPrefix: tapPrefixOf(p),
        uplink: { device: 'eth0', address: `${n.address}/24` },
      },
      endpoints: n.pods.map((pod) => ({ name: pod.name, netns: pod.ns, labels: pod.labels, ipv4: pod.ipv4, ipv6: pod.ipv6 })),
      services: spec.services ?? [],
      cluster: {
        routingMode,
        tunnelProtocol,
        masquerade: spec.masquerade ?? true,
        nodes: everyone.filter((o) => o !== n).map(remote),
      },
      api: { socket: join(dir, `${n.name}.sock`) },
      ...(spec.loadBalancer ? { loadBalancer: spec.loadBalancer } : {}),
      ...(spec.prefilter ? { prefilter: spec.prefilter } : {}),
    },
  }));
  return {
    prefix: p,
    routingMode,
    underlay: { ns: `${p}u`, bridge: UNDERLAY_BRIDGE },
    outside: { ns: `${p}o`, ip: OUTSIDE_IP, mac: '02:99:00:00:00:64' },
    nodes,
    kernelNodes: kern,
  };
}

/**
 * The outside host's HTTP server: answers every request with the client's
 * address and port as the server sees them. It exits on SIGTERM and when
 * its parent dies (stdin reaches EOF; setpriv's parent-death signal too).
 */
const OUTSIDE_SERVER_JS = `
const http = require('node:http');
const s = http.createServer((q, r) => {
  r.setHeader('content-type', 'text/plain');
  r.end(q.socket.remoteAddress + ':' + q.socket.remotePort + '\\n');
});
s.listen(80, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
`;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => existsSync(f));

/** Run a command and throw, naming it, unless it exits 0. */
function must(ns: string | null, cmd: string, args: readonly string[], input?: string): string {
  const r = sh(ns, cmd, args, input === undefined ? {} : { input });
  if (r.status !== 0) {
    const where = ns ? `(in ${ns}) ` : '';
    throw new Error(`cluster: ${where}${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}${input ? `\n  input:\n    ${input.trim().split('\n').join('\n    ')}` : ''}`);
  }
  return r.stdout;
}

/** Several `ip` commands inside `ns`, in one process. */
function ipIn(ns: string, lines: readonly string[]): void {
  must(null, 'ip', ['-n', ns, '-batch', '-'], lines.join('\n') + '\n');
}

/** Set sysctls inside `ns`. */
function sysctlIn(ns: string, settings: Record<string, string | number>): void {
  must(ns, 'sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/** A running cluster. */
export class Cluster {
  readonly nodes: NodeHandle[];
  readonly kernelNodes: KernelNodeHandle[];
  readonly outside: { ns: string; ip: string };
  readonly underlay: { ns: string; bridge: string };
  readonly prefix: string;
  /** Namespaces made by this cluster, in creation order. */
  private readonly created: string[] = [];
  private readonly children: ChildProcess[] = [];
  private downing: Promise<void> | undefined;

  private constructor(
    readonly plan: ClusterPlan,
    /** Temp dir for the agents' API sockets. */
    readonly dir: string,
  ) {
    this.prefix = plan.prefix;
    this.nodes = plan.nodes;
    this.kernelNodes = plan.kernelNodes;
    this.outside = { ns: plan.outside.ns, ip: plan.outside.ip };
    this.underlay = plan.underlay;
  }

  /** Build the cluster `spec` describes; on any failure, remove what was built and rethrow. */
  static async up(spec: ClusterSpec): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), `${spec.prefix}-cluster-`));
    let plan: ClusterPlan;
    try {
      plan = planCluster(spec, dir);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const c = new Cluster(plan, dir);
    try {
      c.buildUnderlay();
      c.buildOutside();
      await c.startOutsideServers();
      for (const n of c.nodes) c.buildTapestryNode(n);
      for (const n of c.kernelNodes) c.buildKernelNode(n);
      if (spec.agent ?? true) {
        // One at a time: the first start may rebuild the bundle (bin/tapestry).
        for (const n of c.nodes) {
          n.agent = await AgentProcess.start(c.prefix, n.config, spec.agentTimeoutMs ?? 60000, { netns: n.ns, socket: n.config.api.socket });
        }
      }
      return c;
    } catch (e) {
      await c.down();
      throw e;
    }
  }

  /** Run a command inside namespace `ns` (or the root one with null), bounded in time (default 20 s). */
  sh(ns: string | null, cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): ShResult {
    return sh(ns, cmd, args, opts);
  }

  /** Every namespace this cluster made. */
  get namespaces(): readonly string[] {
    return this.created;
  }

  /** Stop agents and servers, delete our namespaces. Safe to call again, and after a partial build. */
  down(): Promise<void> {
    return (this.downing ??= this._down());
  }

  private async _down(): Promise<void> {
    const agents = this.nodes.flatMap((n) => (n.agent ? [n.agent] : []));
    // All agents first, so none loses its namespace while another one sweeps.
    await Promise.all(agents.map((a) => a.stop().catch(() => null)));
    await Promise.all(this.children.map(stopChild));
    for (const ns of [...this.created].reverse()) {
      // Stragglers (a test's server, say) would keep the namespace alive after it is unmounted.
      for (const pid of netnsPids(ns)) killPid(pid);
      spawnSync('ip', ['netns', 'del', ns], { timeout: 10000 });
    }
    // Also removes namespaces an agent made for API-created endpoints.
    for (const a of agents) await a.stopAndSweep().catch(() => null);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Create a namespace, refusing one that exists (it is not ours to delete later). */
  private addNetns(ns: string): void {
    if (existsSync(`/run/netns/${ns}`)) throw new Error(`cluster: namespace ${ns} already exists`);
    this.created.push(ns);
    must(null, 'ip', ['netns', 'add', ns]);
    ipIn(ns, ['link set lo up']);
  }

  /** Connect `ns` to the bridge: its `eth0` <-> `port` in the underlay namespace. */
  private plug(ns: string, port: string, mac: string): void {
    const u = this.underlay;
    must(null, 'ip', ['link', 'add', 'eth0', 'address', mac, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', u.ns]);
    ipIn(u.ns, [`link set ${port} master ${u.bridge}`, `link set ${port} up`]);
  }

  private buildUnderlay(): void {
    const u = this.underlay;
    this.addNetns(u.ns);
    // Before any link exists, so no bridge port ever sends IPv6 (DAD, RS) on the underlay.
    sysctlIn(u.ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
    ipIn(u.ns, [`link add ${u.bridge} type bridge`, `link set ${u.bridge} up`]);
  }

  private buildOutside(): void {
    const o = this.plan.outside;
    this.addNetns(o.ns);
    sysctlIn(o.ns, { 'net.ipv6.conf.default.disable_ipv6': 1 });
    this.plug(o.ns, 'o', o.mac);
    ipIn(o.ns, [
      `addr add ${o.ip}/24 dev eth0`,
      'link set eth0 up',
      ...[...this.nodes, ...this.kernelNodes].map((n) => `route add ${n.podCIDR4} via ${n.address} dev eth0`),
    ]);
  }

  private buildTapestryNode(n: NodeHandle): void {
    this.addNetns(n.ns);
    this.plug(n.ns, `n${n.index}`, n.mac);
    sysctlIn(n.ns, { 'net.ipv4.ip_forward': 0, 'net.ipv6.conf.eth0.disable_ipv6': 1 });
    ipIn(n.ns, ['link set eth0 up']);
    for (const pod of n.pods) this.addNetns(pod.ns);
  }

  private buildKernelNode(n: KernelNodeHandle): void {
    this.addNetns(n.ns);
    this.plug(n.ns, `k${n.index}`, n.mac);
    sysctlIn(n.ns, {
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv6.conf.eth0.disable_ipv6': 1,
      'net.ipv6.conf.default.accept_dad': 0,
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
    });
    ipIn(n.ns, [`addr add ${n.address}/24 dev eth0`, 'link set eth0 up']);
    const mtu = n.vxlan ? 1450 : 1500;
    if (n.vxlan) {
      const vx = n.vxlan;
      ipIn(n.ns, [
        `link add ${vx.dev} address ${vx.mac} type vxlan external dstport ${vx.port} nolearning`,
        // NOARP: the kernel sends with vx0's own MAC as inner destination, no ARP/ND over the overlay.
        `link set ${vx.dev} arp off mtu ${mtu} up`,
      ]);
      must(n.ns, 'nft', ['-f', '-'], interopRuleset(vx.dev, vx.mac));
    }
    n.pods.forEach((pod, j) => {
      this.addNetns(pod.ns);
      sysctlIn(pod.ns, { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 });
      must(null, 'ip', ['link', 'add', 'eth0', 'netns', pod.ns, 'type', 'veth', 'peer', 'name', `p${j}`, 'netns', n.ns]);
      ipIn(pod.ns, [
        `link set eth0 mtu ${mtu} up`,
        `addr add ${pod.ipv4}/32 dev eth0`,
        `addr add ${pod.ipv6}/128 dev eth0 nodad`,
        `route add ${n.router4} dev eth0 scope link`,
        `route add default via ${n.router4} dev eth0`,
        'route add ::/0 via fe80::1 dev eth0',
      ]);
      ipIn(n.ns, [
        `link set p${j} mtu ${mtu} up`,
        `addr add ${n.router4}/32 dev p${j}`,
        `addr add fe80::1/64 dev p${j} nodad`,
        `route add ${pod.ipv4}/32 dev p${j}`,
        `route add ${pod.ipv6}/128 dev p${j}`,
      ]);
    });
    const others = [...this.nodes, ...this.kernelNodes].filter((o) => o !== n);
    ipIn(
      n.ns,
      others.flatMap((o) =>
        n.vxlan
          ? [
              `route add ${o.podCIDR4} dev ${n.vxlan.dev} encap ip id ${n.vni} dst ${o.address} ttl 64`,
              `route add ${o.podCIDR6} dev ${n.vxlan.dev} encap ip id ${n.vni} dst ${o.address} ttl 64`,
            ]
          : [`route add ${o.podCIDR4} via ${o.address} dev eth0`],
      ),
    );
  }

  /** HTTP echo-address server on :80 and `iperf3 -s` on :5201 in the outside namespace. */
  private async startOutsideServers(): Promise<void> {
    const ns = this.outside.ns;
    // The parent-death signal bounds them even if this process is killed outright.
    const guard = SETPRIV ? [SETPRIV, '--pdeathsig', 'TERM'] : [];
    const http = spawn('ip', ['netns', 'exec', ns, ...guard, process.execPath, '-e', OUTSIDE_SERVER_JS, ns], { stdio: ['pipe', 'ignore', 'pipe'] });
    const iperf = spawn('ip', ['netns', 'exec', ns, ...guard, 'iperf3', '-s', '-p', '5201'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const errs: string[] = [];
    for (const c of [http, iperf]) {
      this.children.push(c);
      c.stderr!.setEncoding('utf8').on('data', (d: string) => errs.push(d));
      // Neither keeps a test process alive if it forgets down(); they die with it.
      c.unref();
      (c.stderr as unknown as { unref?: () => void }).unref?.();
    }
    (http.stdin as unknown as { unref?: () => void }).unref?.();
    const deadline = Date.now() + 10000;
    for (;;) {
      const ports = sh(ns, 'ss', ['-Hltn']).stdout;
      if (/:80\s/.test(ports) && /:5201\s/.test(ports)) return;
      if (http.exitCode !== null || iperf.exitCode !== null || Date.now() > deadline) {
        throw new Error(`cluster: outside servers did not start: ${errs.join('').trim() || 'timeout'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The netdev ingress chain that makes a kernel node accept frames whatever their inner destination MAC. */
function interopRuleset(dev: string, mac: string): string {
  return `table netdev ${INTEROP_NFT_TABLE} {
  chain ${dev}_ingress {
    type filter hook ingress device "${dev}" priority 0; policy accept;
    meta pkttype other counter ether daddr set ${mac} meta pkttype set host
  }
}
`;
}

/** Processes whose network namespace is `ns`. */
function netnsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10000 });
  return (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number).filter((n) => n > 1 && n !== process.pid);
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** SIGTERM, SIGKILL after 3 s; resolves when the child has exited. */
async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((res) => c.once('exit', () => res()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

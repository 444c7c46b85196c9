/**
 * North-south legs: the outside host (10.99.0.100) reaches a NodePort
 * service through node 1's address, 10.99.0.11, and the only backend is a
 * pod on node 2 (src/testbed/cluster.ts, native routing, so no leg pays
 * for a tunnel and DSR can use the IPv4 option):
 *
 *   outside 10.99.0.100 --> node 1 :30080/:30081 --> node 2 --> pod np 10.200.2.10 :5201/:8080
 *                                 (DNAT, SNAT or DSR)             iperf3 -s, echo server
 *
 *   leg                 nodes       node 1 does
 *   kernel-nft          2 kernel    nftables prerouting `dnat to numgen random mod N map {…}`,
 *                                   marked, + `masquerade` of the marked (SNAT; no IPVS here);
 *                                   netdev ingress drop of the deny-listed CIDR, counted
 *   tapestry-snat       2 Tapestry  loadBalancer.mode snat
 *   tapestry-dsr        2 Tapestry  loadBalancer.mode dsr (the backend's node answers
 *                                   the client itself)
 *   tapestry-prefilter  2 Tapestry  snat, and prefilter.deny [10.99.0.200/32]
 *
 * Per round and leg: one iperf3 TCP stream to node1:30080 (first second
 * omitted), then `connCount` sequential connections to node1:30081 (echo
 * server; conn-rate.ts). Legs with a prefilter add a flood round: the
 * outside host sends UDP from 10.99.0.200 (a secondary /32 on its eth0,
 * inside the deny-listed CIDR) to node 1 for the whole length of a second
 * iperf3 stream, and the drop counter (XDP_DROP of node 1's uplink; for the
 * kernel its nftables rule counter) is read around the flood. After the
 * rounds, the reply-path check on tapestry-dsr (and, as the control that
 * shows the capture sees replies when they exist, on tapestry-snat): one
 * `replySeconds` iperf3 stream while tcpdump on node 1's eth0 counts the
 * reply packets (uplink-replies.ts).
 *
 * Teardown follows cluster-legs.ts: every cluster registers its teardown
 * before building, an abort stops a half-built one, and its namespaces and
 * temp dirs are swept by prefix (<prefix>x<tag>*).
 *
 * API: runNodePortLegs, NODEPORT_LEGS, NODEPORT_LEG_NAMES, NodePortLegName,
 *      NodePortLegResult, NodePortOptions, ReplyCheck, NODEPORT, DENY_SOURCE
 */
import { Cluster, OUTSIDE_IP, type ClusterSpec, type PodHandle } from '../../src/testbed/cluster.ts';
import type { Cleanups, Step } from './cleanup.ts';
import { abandon, sweep } from './cluster-legs.ts';
import { connRate, startEchoServer } from './conn-rate.ts';
import { iperfClient } from './iperf.ts';
import { nsArgs, tcpConnects, waitListening } from './netns.ts';
import { attempt, BenchError, isAborted, runOk, sleep, startBackground, stopProcess } from './proc.ts';
import { runRounds } from './rounds.ts';
import { udpFlood } from './udp-flood.ts';
import { watchUplinkReplies, type UplinkReplies } from './uplink-replies.ts';
import { kernelPrefilterDrops, kernelPrefilterRuleset, xdpDrops } from './xdp-counters.ts';

/** The north-south legs, in run and table order. */
export type NodePortLegName = 'kernel-nft' | 'tapestry-snat' | 'tapestry-dsr' | 'tapestry-prefilter';

/** How each leg is built and what runs on it. */
export const NODEPORT_LEGS: Record<
  NodePortLegName,
  { tapestry: boolean; tag: string; mode?: 'snat' | 'dsr'; prefilter: boolean; replyCheck: boolean }
> = {
  'kernel-nft': { tapestry: false, tag: 'k', prefilter: true, replyCheck: false },
  'tapestry-snat': { tapestry: true, tag: 's', mode: 'snat', prefilter: false, replyCheck: true },
  'tapestry-dsr': { tapestry: true, tag: 'd', mode: 'dsr', prefilter: false, replyCheck: true },
  'tapestry-prefilter': { tapestry: true, tag: 'p', mode: 'snat', prefilter: true, replyCheck: false },
};
export const NODEPORT_LEG_NAMES = Object.keys(NODEPORT_LEGS) as NodePortLegName[];

/** Ports: the service's frontends and NodePorts, and the backend's servers. */
export const NODEPORT = { iperf: 30080, conn: 30081, iperfTarget: 5201, connTarget: 8080, clusterIP: '10.96.0.50' } as const;
/** The outside host's extra source, inside the deny-listed CIDR. */
export const DENY_SOURCE = '10.99.0.200';
const DENY_CIDR = `${DENY_SOURCE}/32`;
/** UDP port the flood goes to on node 1 (no service there: only the prefilter stands in its way). */
const FLOOD_PORT = 9;
/** Upper bound on datagrams per flood, whatever the duration. */
const FLOOD_MAX = 50_000_000;
/** The nftables table of the kernel leg's NodePort rules. */
const KERNEL_NAT_TABLE = 'np_nodeport';
/** How long the backend's servers live at most (they are stopped with the leg). */
const SERVER_LIFE_MS = 3 * 3600_000;
/** Margin of the reply-check tcpdump's own time bound over its traffic. */
const CAPTURE_MARGIN_S = 30;

/** The NodePort service both Tapestry agents get (the kernel leg's rules mirror it). */
const SERVICE = {
  name: 'np',
  type: 'NodePort',
  clusterIP: NODEPORT.clusterIP,
  ports: [
    { port: 80, targetPort: NODEPORT.iperfTarget, nodePort: NODEPORT.iperf, protocol: 'TCP' },
    { port: 81, targetPort: NODEPORT.connTarget, nodePort: NODEPORT.conn, protocol: 'TCP' },
  ],
  selector: { app: 'np' },
};

/** The 30 s check on a leg: one stream captured on node 1's uplink. */
export interface ReplyCheck {
  seconds: number;
  gbps: number;
  error?: string;
  replies?: UplinkReplies;
}

/** Raw samples of one leg, one entry per round (NaN where that test failed). */
export interface NodePortLegResult {
  leg: NodePortLegName;
  ok: boolean;
  errors: string[];
  notes: string[];
  tcp1: number[];
  retransmits: number[];
  connPerSec: number[];
  connP50Us: number[];
  connP99Us: number[];
  connFails: number[];
  /** Prefilter legs: the stream during the flood, drops/s at the earliest hook, datagrams/s sent, dropped / sent. */
  floodTcp1: number[];
  dropPps: number[];
  sentPps: number[];
  dropShare: number[];
  replyCheck?: ReplyCheck;
}

/** What runNodePortLegs needs. */
export interface NodePortOptions {
  /** Run prefix; leg namespaces start with `<prefix>x<tag>`. */
  prefix: string;
  runs: number;
  /** Seconds per iperf3 stream in the rounds. */
  duration: number;
  /** Sequential connections per connection-rate figure. */
  connCount: number;
  /** Seconds of the captured stream in the reply-path check; 0 skips it. */
  replySeconds: number;
  agentTimeoutMs: number;
  log: (msg: string) => void;
}

/** A leg that is up. */
interface LegUp {
  leg: NodePortLegName;
  cluster: Cluster;
  /** node 1's namespace and address (the NodePort's), and the backend pod. */
  ingress: { ns: string; address: string; socket?: string };
  backend: PodHandle;
  down: Step;
}

/** The two-node cluster of `leg`: node 1 with no pod, node 2 with the backend. */
function specOf(leg: NodePortLegName, opts: NodePortOptions): ClusterSpec {
  const shape = NODEPORT_LEGS[leg];
  const nodes = [
    { name: 'n1', pods: [] },
    { name: 'n2', pods: [{ name: 'np', labels: { app: 'np' } }] },
  ];
  return {
    prefix: `${opts.prefix}x${shape.tag}`,
    nodes: shape.tapestry ? nodes : [],
    kernelNodes: shape.tapestry ? [] : nodes,
    routingMode: 'native',
    masquerade: true,
    agentTimeoutMs: opts.agentTimeoutMs,
    ...(shape.tapestry ? { services: [SERVICE], loadBalancer: { mode: shape.mode } } : {}),
    ...(shape.tapestry && shape.prefilter ? { prefilter: { deny: [DENY_CIDR] } } : {}),
  };
}

/**
 * node 1's NodePort rules for the kernel leg, kube-proxy's shape: DNAT to a
 * backend picked by numgen, marked 0x4000 (KUBE-MARK-MASQ) so postrouting
 * masquerades it (the nat hooks see a connection's first packet only).
 */
export function kernelNodePortRuleset(backends: readonly string[]): string {
  const map = (port: number): string => `numgen random mod ${backends.length} map { ${backends.map((ip, i) => `${i} : ${ip}`).join(', ')} } : ${port}`;
  return `table ip ${KERNEL_NAT_TABLE} {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport ${NODEPORT.iperf} meta mark set 0x4000 dnat to ${map(NODEPORT.iperfTarget)}
    tcp dport ${NODEPORT.conn} meta mark set 0x4000 dnat to ${map(NODEPORT.connTarget)}
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark 0x4000 masquerade
  }
}
`;
}

/** `iperf3 -s` and the echo server in the backend pod; returns their stop function. */
async function startBackendServers(pod: PodHandle): Promise<() => Promise<void>> {
  const iperf = startBackground('ip', nsArgs(pod.ns, 'iperf3', ['-s', '-p', String(NODEPORT.iperfTarget)]), { traffic: true });
  let stopEcho: (() => Promise<void>) | null = null;
  try {
    if (!(await waitListening(pod.ns, 'tcp', NODEPORT.iperfTarget))) throw new BenchError(`iperf3 server in ${pod.ns} did not start: ${iperf.output().trim()}`);
    stopEcho = await startEchoServer(pod.ns, NODEPORT.connTarget, SERVER_LIFE_MS);
  } catch (err) {
    await stopProcess(iperf, 1_000);
    throw err;
  }
  return async () => {
    await stopEcho?.();
    await stopProcess(iperf, 2_000);
  };
}

/** Builds the cluster of `leg`, its rules and servers, and checks the NodePort answers; teardown is registered first. */
async function upLeg(leg: NodePortLegName, cleanups: Cleanups, opts: NodePortOptions, result: NodePortLegResult): Promise<LegUp> {
  const spec = specOf(leg, opts);
  const shape = NODEPORT_LEGS[leg];
  let cluster: Cluster | null = null;
  let pending: Promise<Cluster> | null = null;
  let stopServers: (() => Promise<void>) | null = null;
  const down = cleanups.add(`north-south ${leg} (${spec.prefix}*)`, async () => {
    await stopServers?.().catch(() => undefined);
    if (cluster) await cluster.down();
    else if (pending) await abandon(spec.prefix, pending);
    const left = await sweep(spec.prefix);
    if (left.length) result.notes.push(`namespaces left after teardown (deleted by the harness): ${left.join(', ')}`);
  });
  try {
    pending = Cluster.up(spec);
    cluster = await pending;
    const all = [...cluster.nodes, ...cluster.kernelNodes];
    const n1 = all[0]!;
    const backend = all[1]!.pods[0]!;
    if (!shape.tapestry) {
      await runOk('ip', nsArgs(n1.ns, 'nft', ['-f', '-']), { input: kernelNodePortRuleset([backend.ipv4]), timeoutMs: 10_000 });
      await runOk('ip', nsArgs(n1.ns, 'nft', ['-f', '-']), { input: kernelPrefilterRuleset('eth0', [DENY_CIDR]), timeoutMs: 10_000 });
    }
    if (shape.prefilter) await runOk('ip', ['-n', cluster.outside.ns, 'addr', 'add', `${DENY_SOURCE}/32`, 'dev', 'eth0']);
    stopServers = await startBackendServers(backend);
    if (!(await tcpConnects(cluster.outside.ns, n1.address, NODEPORT.conn))) {
      throw new BenchError(`the outside host cannot reach the NodePort ${n1.address}:${NODEPORT.conn} (backend ${backend.ipv4}:${NODEPORT.connTarget} on node 2)`);
    }
    result.notes.push(
      shape.tapestry
        ? `2 Tapestry nodes, native routing, loadBalancer.mode ${shape.mode}${shape.prefilter ? `, prefilter.deny [${DENY_CIDR}]` : ''}; service ${SERVICE.clusterIP} NodePorts ${NODEPORT.iperf}→${NODEPORT.iperfTarget}, ${NODEPORT.conn}→${NODEPORT.connTarget}, backend ${backend.ipv4} on node 2`
        : `2 kernel nodes, native routes, ip_forward=1; node 1: nft prerouting \`tcp dport ${NODEPORT.iperf} meta mark set 0x4000 dnat to numgen random mod 1 map { 0 : ${backend.ipv4} } : ${NODEPORT.iperfTarget}\` (and ${NODEPORT.conn}→${NODEPORT.connTarget}), postrouting \`meta mark 0x4000 masquerade\`; netdev ingress \`ip saddr ${DENY_CIDR} counter drop\` on eth0`,
    );
    const socket = cluster.nodes[0]?.config.api.socket;
    return { leg, cluster, ingress: { ns: n1.ns, address: n1.address, ...(socket ? { socket } : {}) }, backend, down };
  } catch (err) {
    await down();
    throw err;
  }
}

/** Packets dropped so far at node 1's earliest hook (XDP for Tapestry, netdev ingress for the kernel). */
function earlyDrops(up: LegUp): Promise<number> {
  return up.ingress.socket ? xdpDrops(up.ingress.socket) : kernelPrefilterDrops(up.ingress.ns);
}

/**
 * The stream during a flood from the deny-listed source. The drop counter
 * is read before the flood starts and after it ends, so drops and datagrams
 * sent cover the same window (the flooder's own seconds).
 */
async function floodRound(up: LegUp, opts: NodePortOptions): Promise<{ gbps: number; dropPps: number; sentPps: number; dropShare: number }> {
  const o = up.cluster.outside;
  const d0 = await earlyDrops(up);
  // The flood outlasts the stream (1 s omitted + duration) by a margin on both sides.
  const flood = udpFlood(o.ns, DENY_SOURCE, up.ingress.address, FLOOD_PORT, opts.duration + 3, FLOOD_MAX);
  flood.catch(() => undefined);
  try {
    await sleep(700);
    const stream = await iperfClient(o.ns, up.ingress.address, opts.duration, 1, NODEPORT.iperf);
    const f = await flood;
    await sleep(300); // what is still in the uplink's ring gets its verdict
    const dropped = (await earlyDrops(up)) - d0;
    return { gbps: stream.gbps, dropPps: dropped / f.seconds, sentPps: f.sent / f.seconds, dropShare: dropped / f.sent };
  } finally {
    await flood.catch(() => undefined);
  }
}

/** One round on one leg. */
async function measureRound(up: LegUp, result: NodePortLegResult, r: number, opts: NodePortOptions): Promise<void> {
  const o = up.cluster.outside;
  const shape = NODEPORT_LEGS[up.leg];
  const tcp = await attempt(`run ${r} TCP`, result, opts.log, () => iperfClient(o.ns, up.ingress.address, opts.duration, 1, NODEPORT.iperf));
  result.tcp1.push(tcp ? tcp.gbps : NaN);
  result.retransmits.push(tcp ? tcp.retransmits : NaN);
  if (isAborted()) return;
  const deadline = Math.max(10_000, opts.connCount * 50);
  const conn = await attempt(`run ${r} connections`, result, opts.log, () => connRate(o.ns, up.ingress.address, NODEPORT.conn, opts.connCount, deadline));
  result.connPerSec.push(conn ? conn.perSec : NaN);
  result.connP50Us.push(conn ? conn.p50Us : NaN);
  result.connP99Us.push(conn ? conn.p99Us : NaN);
  result.connFails.push(conn ? conn.fails : NaN);
  const parts = [
    `TCP ${tcp ? tcp.gbps.toFixed(2) : '-'} Gbit/s`,
    conn ? `${conn.perSec.toFixed(0)} conn/s (setup p50 ${conn.p50Us.toFixed(0)} µs, p99 ${conn.p99Us.toFixed(0)} µs, ${conn.fails} failed)` : 'conn -',
  ];
  if (shape.prefilter && !isAborted()) {
    const f = await attempt(`run ${r} flood`, result, opts.log, () => floodRound(up, opts));
    result.floodTcp1.push(f ? f.gbps : NaN);
    result.dropPps.push(f ? f.dropPps : NaN);
    result.sentPps.push(f ? f.sentPps : NaN);
    result.dropShare.push(f ? f.dropShare : NaN);
    parts.push(f ? `under flood TCP ${f.gbps.toFixed(2)} Gbit/s, ${(f.dropPps / 1000).toFixed(0)} kpps dropped of ${(f.sentPps / 1000).toFixed(0)} kpps sent` : 'flood -');
  }
  opts.log(`   ${up.leg.padEnd(18)} run ${r}/${opts.runs}: ${parts.join('; ')}`);
}

/** The reply-path check of one leg: a long stream, captured on node 1's uplink. */
async function replyCheck(up: LegUp, result: NodePortLegResult, opts: NodePortOptions): Promise<void> {
  const s = opts.replySeconds;
  const o = up.cluster.outside;
  opts.log(`   ${up.leg.padEnd(18)} ${s} s stream, counting reply packets on node 1's eth0...`);
  const out = await attempt('reply check', result, opts.log, () =>
    watchUplinkReplies(up.ingress.ns, 'eth0', OUTSIDE_IP, NODEPORT.iperfTarget, s + CAPTURE_MARGIN_S, () => iperfClient(o.ns, up.ingress.address, s, 1, NODEPORT.iperf)),
  );
  if (!out) {
    result.replyCheck = { seconds: s, gbps: NaN, error: result.errors[result.errors.length - 1] ?? 'failed' };
    return;
  }
  const check: ReplyCheck = { seconds: s, gbps: out.value?.gbps ?? NaN, replies: out.replies };
  if (out.error) {
    check.error = out.error.message;
    result.errors.push(`reply check: iperf3: ${out.error.message}`);
  }
  result.replyCheck = check;
  const x = out.replies;
  opts.log(
    `   ${up.leg.padEnd(18)} ${Number.isFinite(check.gbps) ? check.gbps.toFixed(2) : '-'} Gbit/s; on node 1's eth0: ${x.replies} reply packets ` +
      `(${x.toClient} to the client, ${x.fromBackend} from the backend port), ${x.clientSyns} client SYNs, ` +
      `${Number.isFinite(x.dropped) ? x.dropped : '?'} dropped by the capture${x.verified ? '' : ' — NOT verified'}`,
  );
  for (const line of x.samples) opts.log(`      ${line}`);
}

/** Builds one leg, logging; null when it could not come up (the result says why). */
async function setUp(leg: NodePortLegName, cleanups: Cleanups, opts: NodePortOptions, result: NodePortLegResult): Promise<LegUp | null> {
  opts.log(`\n== ${leg}: setting up`);
  const t0 = Date.now();
  const up = await attempt('setup', result, opts.log, () => upLeg(leg, cleanups, opts, result));
  if (!up) opts.log(`== ${leg}: FAILED to come up; leg skipped`);
  else opts.log(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s (outside -> ${up.ingress.address}:${NODEPORT.iperf} -> ${up.backend.ipv4})`);
  return up;
}

/** Marks whether a leg produced any figure. */
function finish(r: NodePortLegResult): void {
  const any = (xs: number[]): boolean => xs.some(Number.isFinite);
  r.ok = any(r.tcp1) || any(r.connPerSec) || any(r.floodTcp1) || r.replyCheck?.replies !== undefined;
}

/**
 * Runs the north-south legs; never throws. Interleaved: every cluster up,
 * each round runs every leg in turn, then the reply-path checks, then all
 * go down; sequential: one leg at a time.
 */
export async function runNodePortLegs(
  legs: readonly NodePortLegName[],
  cleanups: Cleanups,
  opts: NodePortOptions,
  order: 'interleaved' | 'sequential',
): Promise<NodePortLegResult[]> {
  const results = legs.map(
    (leg): NodePortLegResult => ({
      leg, ok: false, errors: [], notes: [], tcp1: [], retransmits: [], connPerSec: [], connP50Us: [], connP99Us: [], connFails: [], floodTcp1: [], dropPps: [], sentPps: [], dropShare: [],
    }),
  );
  await runRounds(results, order, opts, {
    setUp: (result) => setUp(result.leg, cleanups, opts, result),
    round: (up, result, r) => measureRound(up, result, r, opts),
    tearDown: async (up, result) => {
      await attempt('teardown', result, opts.log, () => up.down());
      opts.log(`== ${up.leg}: torn down`);
    },
    after: async (ups) => {
      const checking = ups.filter((u) => NODEPORT_LEGS[u.up.leg].replyCheck);
      if (!checking.length || opts.replySeconds <= 0) return;
      opts.log(`\n== reply path: ${opts.replySeconds} s stream per leg, captured on node 1's uplink`);
      for (const { up, result } of checking) if (!isAborted()) await replyCheck(up, result, opts);
    },
  });
  for (const r of results) finish(r);
  return results;
}

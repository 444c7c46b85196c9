/**
 * "No packet answered by a node's kernel for a flow Tapestry owns", checked
 * on the wire while traffic runs across a cluster:
 *
 *   ns <p>n1 (node kernel)                      ns <p>u
 *   tapestry_host --(1)--> Tapestry --> eth0 --> br0 (2) <-- eth0 <-- Tapestry <--(1)-- tapestry_host
 *
 *   (1) tcpdump -Q out on each Tapestry node's tapestry_host: everything the
 *       node's kernel sends. That is the only way it can send: the uplink
 *       has no address, IPv6 off and an nftables netdev ingress drop chain.
 *       Every TCP reset or ICMP destination-unreachable here is counted.
 *   (2) tcpdump on the underlay bridge (promiscuous, so it sees forwarded
 *       frames), filtered in the kernel to TCP resets and ICMP/ICMPv6
 *       destination-unreachable, also inside VXLAN. Those sent from a
 *       Tapestry node's address (outer) or a node or router address
 *       (inner) are counted; others (a pod's, the outside host's) are only
 *       reported.
 *
 * A canary proves both captures live: before the traffic each node's
 * kernel sends one UDP datagram to the outside host's closed port 9, which
 * must show on that node's tapestry_host, and the outside host's ICMP port
 * unreachable must show on the bridge (it is not from a node, so it counts
 * nowhere). Each tcpdump runs under `timeout`, so even a killed harness
 * leaves no capture running past its bound (and Cluster.down() kills
 * whatever runs in its namespaces).
 *
 * API: watchKernelReplies, KernelReplies, BRIDGE_FILTER
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUTSIDE_IP, VXLAN_PORT, type Cluster } from '../../src/testbed/cluster.ts';
import { findReplies, readPcap, type Reply } from './pcap.ts';
import { nsArgs } from './netns.ts';
import { BenchError, run, sleep, startBackground, stopProcess, type Background } from './proc.ts';

/** The node kernel's side of the host device. */
const HOST_DEVICE = 'tapestry_host';
/** Closed port on the outside host the canary is sent to. */
const CANARY_PORT = 9;
/** Offsets from the outer UDP header: VXLAN (8) + inner Ethernet (14) put the inner IPv4 header at udp[30]. */
const INNER = { ethertype: 28, proto: 39, l4: 50 } as const;

/**
 * Kernel-side filter of the bridge capture: TCP resets and ICMP/ICMPv6
 * destination-unreachable, outer or inside VXLAN (inner IPv4 without options).
 */
export const BRIDGE_FILTER =
  `(tcp and tcp[tcpflags] & tcp-rst != 0) or (icmp and icmp[icmptype] == icmp-unreach) or (icmp6 and ip6[40] == 1)` +
  ` or (udp dst port ${VXLAN_PORT} and udp[${INNER.ethertype}:2] == 0x0800 and udp[30] == 0x45` +
  ` and ((udp[${INNER.proto}] == 6 and udp[${INNER.l4 + 13}] & 4 != 0) or (udp[${INNER.proto}] == 1 and udp[${INNER.l4}] == 3)))`;

/** What one capture found. */
export interface KernelReplies {
  /** Per Tapestry node: what its kernel sent on tapestry_host. */
  hosts: { node: string; frames: number; rst: number; unreach: number; canary: boolean; dropped: number }[];
  /** On the underlay bridge: resets and unreachables from node addresses, and from anyone else. */
  bridge: { nodeRst: number; nodeUnreach: number; otherRst: number; otherUnreach: number; canary: boolean; dropped: number };
  /** TCP resets sent by a node kernel (tapestry_host) or from a node address (bridge): expected 0. */
  rst: number;
  /** ICMP/ICMPv6 destination-unreachable, likewise: expected 0. */
  unreach: number;
  /** Every capture saw its canary and dropped nothing, so the counts can be trusted. */
  verified: boolean;
  /** Up to 10 of the counted packets, as text. */
  samples: string[];
  /** Up to 5 of the other resets and unreachables seen on the bridge (a pod's, the outside host's), as text. */
  otherSamples: string[];
  /** Where the pcap files were kept (when something was counted), else undefined. */
  kept?: string;
}

/** A tcpdump running under `timeout`, and the file it writes. */
interface Capture {
  bg: Background;
  file: string;
}

/** Starts tcpdump in `ns` (bounded to `boundSeconds`) and waits until it listens. */
async function startCapture(ns: string, file: string, boundSeconds: number, tcpdumpArgs: string[]): Promise<Capture> {
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const bg = startBackground(
    'ip',
    nsArgs(ns, 'timeout', ['-s', 'INT', String(Math.ceil(boundSeconds)), 'tcpdump', '-nn', '-U', '-Z', 'root', '-w', file, ...tcpdumpArgs]),
    { traffic: true, onLine: (line) => line.includes('listening on') && listening() },
  );
  const outcome = await Promise.race([ready.then(() => 'ok'), bg.exited.then((c) => `exited with ${c}`), sleep(5_000).then(() => 'no "listening on" within 5 s')]);
  if (outcome !== 'ok') {
    await stopProcess(bg, 1_000);
    throw new BenchError(`tcpdump in ${ns}: ${outcome}: ${bg.output().trim().slice(-300)}`);
  }
  return { bg, file };
}

/** Stops a capture (SIGINT: tcpdump flushes and prints its counters); returns the frames the kernel dropped. */
async function stopCapture(c: Capture): Promise<number> {
  await stopProcess(c.bg, 5_000, 'SIGINT');
  const m = /(\d+) packets? dropped by kernel/.exec(c.bg.output());
  return m ? Number(m[1]) : NaN;
}

/** One UDP datagram from `ns`'s own stack to the outside host's closed port. */
async function sendCanary(ns: string): Promise<void> {
  const js = `const s=require('dgram').createSocket('udp4');s.send('tapestry canary',${CANARY_PORT},'${OUTSIDE_IP}',()=>s.close())`;
  const r = await run('ip', nsArgs(ns, process.execPath, ['-e', js]), { timeoutMs: 10_000, traffic: true });
  if (r.code !== 0) throw new BenchError(`canary from ${ns}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(-200)}`);
}

/** Text for a counted packet. */
const describe = (where: string, r: Reply): string =>
  `${where}: ${r.inner ? 'inner ' : ''}${r.kind} ${r.src} -> ${r.dst}${r.kind === 'tcp-rst' ? ` port ${r.port}` : ` code ${r.port}${r.quotedPort >= 0 ? ` (quoting port ${r.quotedPort})` : ''}`}`;

/** Parses one pcap file into replies; an unreadable file is an error naming it. */
async function repliesIn(file: string): Promise<{ frames: number; replies: Reply[] }> {
  const frames = readPcap(await readFile(file));
  return { frames: frames.length, replies: frames.flatMap((f) => findReplies(f.data, VXLAN_PORT)) };
}

/**
 * Runs `traffic` while capturing on every Tapestry node's tapestry_host and
 * on the underlay bridge, and counts what the node kernels answered.
 * `boundSeconds` caps each tcpdump (give it the traffic's duration plus a
 * margin). The traffic's error, if any, is returned beside the counts.
 */
export async function watchKernelReplies<T>(
  cluster: Cluster,
  boundSeconds: number,
  traffic: () => Promise<T>,
): Promise<{ value?: T; error?: Error; replies: KernelReplies }> {
  if (cluster.nodes.length === 0) throw new BenchError('watchKernelReplies: the cluster has no Tapestry node');
  const dir = await mkdtemp(join(tmpdir(), `${cluster.prefix}-pcap-`));
  const started: Capture[] = [];
  let keep = false;
  try {
    const hostCaps: Capture[] = [];
    for (const n of cluster.nodes) {
      const c = await startCapture(n.ns, join(dir, `${n.name}-${HOST_DEVICE}.pcap`), boundSeconds, ['-i', HOST_DEVICE, '-Q', 'out', '-s', '256']);
      started.push(c);
      hostCaps.push(c);
    }
    const u = cluster.underlay;
    const bridgeCap = await startCapture(u.ns, join(dir, `${u.bridge}.pcap`), boundSeconds, ['-i', u.bridge, '-s', '160', BRIDGE_FILTER]);
    started.push(bridgeCap);

    for (const n of cluster.nodes) await sendCanary(n.ns);
    await sleep(300); // the outside host's ICMP answer crosses the bridge
    let value: T | undefined;
    let error: Error | undefined;
    try {
      value = await traffic();
    } catch (err) {
      error = err as Error;
    }
    await sleep(300); // a late reset after the flow's last segment still counts
    const dropped = await Promise.all(started.map(stopCapture));

    const samples: string[] = [];
    const hosts: KernelReplies['hosts'] = [];
    for (const [i, n] of cluster.nodes.entries()) {
      const { frames, replies } = await repliesIn(hostCaps[i]!.file);
      const counted = replies.filter((r) => r.kind !== 'udp');
      samples.push(...counted.map((r) => describe(`${n.name} ${HOST_DEVICE}`, r)));
      hosts.push({
        node: n.name,
        frames,
        rst: counted.filter((r) => r.kind === 'tcp-rst').length,
        unreach: counted.length - counted.filter((r) => r.kind === 'tcp-rst').length,
        canary: replies.some((r) => r.kind === 'udp' && !r.inner && r.dst === OUTSIDE_IP && r.port === CANARY_PORT),
        dropped: dropped[i]!,
      });
    }
    const nodeAddrs = new Set(cluster.nodes.map((n) => n.address));
    const innerAddrs = new Set([...nodeAddrs, ...cluster.nodes.map((n) => n.router4)]);
    const { replies: onBridge } = await repliesIn(bridgeCap.file);
    const isCanaryAnswer = (r: Reply): boolean =>
      r.kind === 'icmp-unreach' && !r.inner && r.src === OUTSIDE_IP && nodeAddrs.has(r.dst) && r.quotedPort === CANARY_PORT;
    const fromNode = onBridge.filter((r) => r.kind !== 'udp' && (r.inner ? innerAddrs : nodeAddrs).has(r.src));
    const other = onBridge.filter((r) => r.kind !== 'udp' && !fromNode.includes(r) && !isCanaryAnswer(r));
    samples.push(...fromNode.map((r) => describe(u.bridge, r)));
    const bridge = {
      nodeRst: fromNode.filter((r) => r.kind === 'tcp-rst').length,
      nodeUnreach: fromNode.filter((r) => r.kind !== 'tcp-rst').length,
      otherRst: other.filter((r) => r.kind === 'tcp-rst').length,
      otherUnreach: other.filter((r) => r.kind !== 'tcp-rst').length,
      canary: onBridge.some(isCanaryAnswer),
      dropped: dropped[dropped.length - 1]!,
    };
    const rst = hosts.reduce((a, h) => a + h.rst, 0) + bridge.nodeRst;
    const unreach = hosts.reduce((a, h) => a + h.unreach, 0) + bridge.nodeUnreach;
    keep = rst + unreach > 0;
    const replies: KernelReplies = {
      hosts,
      bridge,
      rst,
      unreach,
      verified: hosts.every((h) => h.canary && h.dropped === 0) && bridge.canary && bridge.dropped === 0,
      samples: samples.slice(0, 10),
      otherSamples: other.slice(0, 5).map((r) => describe(u.bridge, r)),
      ...(keep ? { kept: dir } : {}),
    };
    return { ...(error ? { error } : { value: value as T }), replies };
  } finally {
    await Promise.all(started.map((c) => stopProcess(c.bg, 5_000, 'SIGINT')));
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

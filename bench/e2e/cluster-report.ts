/**
 * Turns the cross-node samples into the comparison: medians, Tapestry
 * against the kernel on the same routing mode (VXLAN against the kernel's
 * vxlan device, native against kernel routes), pod→world against pod→pod
 * on the same cluster, the kernel-reply counts of the captured runs, and
 * the targets; rendered for the console and for BENCHMARKS.md.
 *
 * API: summarizeCluster, ClusterSummary, ClusterRow, clusterConsoleReport, clusterMarkdown
 */
import { CLUSTER_LEGS, FLOW_LABEL, type ClusterLegResult, type FlowName } from './cluster-legs.ts';
import { median } from './measure.ts';
import { fmt, markdownTable, ratio, textTable, cell, type Target } from './report.ts';

/** One leg and flow: medians and ratios. */
export interface ClusterRow {
  leg: ClusterLegResult['leg'];
  flow: FlowName;
  ok: boolean;
  gbps: number;
  retransmits: number;
  /** Against the kernel leg of the same routing mode (pod→pod only; 1 for the kernel itself). */
  vsKernel: number;
  /** pod→world against the same cluster's pod→pod. */
  vsPodPod: number;
}

/** Everything the reports print. */
export interface ClusterSummary {
  rows: ClusterRow[];
  targets: Target[];
  runs: number;
  duration: number;
  captureSeconds: number;
  results: ClusterLegResult[];
}

/** Tapestry's cross-node single stream over VXLAN must reach this fraction of the kernel's vxlan. */
const XNODE_TCP1_MIN_RATIO = 0.3;

const flowMedian = (r: ClusterLegResult | undefined, flow: FlowName): number => median(r?.tcp1[flow] ?? []);

/** Computes medians, ratios and target verdicts. */
export function summarizeCluster(results: ClusterLegResult[], runs: number, duration: number, captureSeconds: number): ClusterSummary {
  const byLeg = new Map(results.map((r) => [r.leg, r]));
  const rows = results.flatMap((r) =>
    CLUSTER_LEGS[r.leg].flows.map((flow): ClusterRow => {
      const gbps = flowMedian(r, flow);
      const base = CLUSTER_LEGS[r.leg].baseline;
      return {
        leg: r.leg,
        flow,
        ok: r.ok,
        gbps,
        retransmits: median(r.retransmits[flow] ?? []),
        vsKernel: flow !== 'pod-pod' ? NaN : base ? gbps / flowMedian(byLeg.get(base), 'pod-pod') : Number.isFinite(gbps) ? 1 : NaN,
        vsPodPod: flow === 'pod-pod' ? NaN : gbps / flowMedian(r, 'pod-pod'),
      };
    }),
  );

  const tv = rows.find((x) => x.leg === 'tapestry-vxlan' && x.flow === 'pod-pod');
  const kv = byLeg.get('kernel-vxlan');
  const tcp1: Target = {
    what: 'Tapestry cross-node TCP single stream, VXLAN',
    goal: `>= ${XNODE_TCP1_MIN_RATIO} x kernel vxlan`,
    measured: !tv || !kv ? 'leg not run' : Number.isFinite(tv.vsKernel) ? `${fmt(tv.vsKernel, 3)} x kernel vxlan` : !tv.ok ? 'leg failed' : 'no kernel figure in this run',
    status: !tv || !kv || !kv.ok ? 'n/a' : Number.isFinite(tv.vsKernel) && tv.vsKernel >= XNODE_TCP1_MIN_RATIO ? 'met' : 'not met',
  };

  const wanted = results.filter((r) => CLUSTER_LEGS[r.leg].capture.length > 0).flatMap((r) => CLUSTER_LEGS[r.leg].capture.map((f) => ({ r, f })));
  const caps = results.flatMap((r) => r.captures);
  const counted = caps.flatMap((c) => (c.replies ? [c.replies] : []));
  const rst = counted.reduce((a, c) => a + c.rst, 0);
  const unreach = counted.reduce((a, c) => a + c.unreach, 0);
  const missing = wanted.length - counted.length;
  const unverified = counted.filter((c) => !c.verified).length;
  const replies: Target = {
    what: 'No RST / ICMP unreachable from a node kernel for a Tapestry flow',
    goal: '0 (captures verified)',
    measured:
      captureSeconds <= 0 || wanted.length === 0
        ? 'not run'
        : `${rst} RST, ${unreach} ICMP unreachable in ${counted.length} capture(s) of ${captureSeconds} s` +
          (missing > 0 ? `; ${missing} capture(s) missing (leg or capture failed)` : '') +
          (unverified > 0 ? `; ${unverified} not verified` : ''),
    status: captureSeconds <= 0 || wanted.length === 0 ? 'n/a' : rst + unreach === 0 && missing === 0 && unverified === 0 ? 'met' : 'not met',
  };
  return { rows, targets: [tcp1, replies], runs, duration, captureSeconds, results };
}

/** Header and rows of the throughput table. */
function rows(s: ClusterSummary): { head: string[]; body: string[][] } {
  const head = ['leg', 'path', 'TCP 1 stream Gbit/s', 'vs kernel, same routing', 'vs pod→pod, same cluster', 'retransmits'];
  const body = s.rows.map((r) =>
    !r.ok
      ? [r.leg, FLOW_LABEL[r.flow], 'FAILED', '–', '–', '–']
      : [r.leg, FLOW_LABEL[r.flow] + (r.flow === 'pod-world' ? ' (masquerade)' : ''), fmt(r.gbps, 2), ratio(r.vsKernel), ratio(r.vsPodPod), fmt(r.retransmits, 0)],
  );
  return { head, body };
}

/** Header and rows of the kernel-replies table, or null when nothing was captured. */
function captureRows(s: ClusterSummary): { head: string[]; body: string[][] } | null {
  const caps = s.results.flatMap((r) => r.captures.map((c) => ({ leg: r.leg, c })));
  if (!caps.length) return null;
  const head = ['leg', 'flow', 'traffic s', 'Gbit/s meanwhile', 'RST from node kernels', 'ICMP unreach. from node kernels', 'frames kernels sent on tapestry_host', 'other RST / unreach. on bridge', 'verified'];
  const body = caps.map(({ leg, c }) => {
    const x = c.replies;
    if (!x) return [leg, FLOW_LABEL[c.flow], String(c.seconds), '–', 'FAILED', '–', '–', '–', '–'];
    return [
      leg,
      FLOW_LABEL[c.flow],
      String(c.seconds),
      fmt(c.gbps, 2),
      String(x.rst),
      String(x.unreach),
      x.hosts.map((h) => `${h.node}: ${h.frames}`).join(', '),
      `${x.bridge.otherRst} / ${x.bridge.otherUnreach}`,
      x.verified ? 'yes' : 'NO',
    ];
  });
  return { head, body };
}

/** What the capture counts, in one paragraph. */
const CAPTURE_METHOD =
  'During one iperf3 run per flow, tcpdump captured what each Tapestry node\'s kernel sent (`-Q out` on `tapestry_host`, ' +
  'its only way out: the uplink has no address, IPv6 off and an nftables netdev ingress drop chain) and every TCP RST and ' +
  'ICMP destination-unreachable on the underlay bridge, outer or inside VXLAN. Counted: RSTs and unreachables on ' +
  '`tapestry_host`, and those on the bridge from a node or router address. Not counted ("other"): those from the pods ' +
  'themselves (an iperf3 server closing its data socket with unread data resets it) or from the outside host. Verified: ' +
  "a canary UDP datagram from each node's kernel to the outside host's closed port 9 showed on that node's `tapestry_host`, " +
  "the outside host's ICMP port unreachable showed on the bridge, and no capture dropped frames.";

/** Plain-text report for the terminal. */
export function clusterConsoleReport(s: ClusterSummary): string {
  const { head, body } = rows(s);
  const out = [`Cross-node: medians of ${s.runs} run(s), ${s.duration} s per test`, ...textTable(head, body), '', 'Targets:'];
  for (const t of s.targets) out.push(`  ${t.status === 'met' ? '[met]    ' : t.status === 'n/a' ? '[n/a]    ' : '[NOT MET]'} ${t.what} ${t.goal}: ${t.measured}`);
  const c = captureRows(s);
  if (c) out.push('', 'Kernel replies during captured runs:', ...textTable(c.head, c.body));
  const notes = s.results.flatMap((r) => [...r.notes, ...r.errors].map((n) => `  ${r.leg}: ${n}`));
  if (notes.length) out.push('', 'Notes and errors:', ...notes);
  return out.join('\n');
}

/** Markdown body of the cross-node section (without the run stamp). */
export function clusterMarkdown(s: ClusterSummary): string {
  const { head, body } = rows(s);
  const md = [...markdownTable(head, body, 2), '', '| target | goal | this run | |', '|---|---|---|---|'];
  for (const t of s.targets) md.push(`| ${t.what} | ${t.goal} | ${cell(t.measured)} | ${t.status === 'met' ? '**met**' : t.status === 'n/a' ? 'n/a' : '**not met**'} |`);
  const c = captureRows(s);
  if (c) {
    md.push('', `**Kernel replies.** ${CAPTURE_METHOD}`, '', ...markdownTable(c.head, c.body, 2));
    const samples = s.results.flatMap((r) => r.captures.flatMap((x) => (x.replies?.samples ?? []).map((l) => `- ${r.leg} ${FLOW_LABEL[x.flow]}: counted: ${cell(l)}`)));
    const others = s.results.flatMap((r) => r.captures.flatMap((x) => (x.replies?.otherSamples ?? []).slice(0, 2).map((l) => `- ${r.leg} ${FLOW_LABEL[x.flow]}: other: ${cell(l)}`)));
    if (samples.length || others.length) md.push('', 'The packets behind the counts (counted ones first, then up to two "other" per capture):', '', ...samples, ...others);
  }
  md.push('', '<details><summary>Per-round samples (– where that test failed)</summary>', '');
  const list = (xs: number[] | undefined, d: number): string => (xs?.length ? xs.map((x) => fmt(x, d)).join(', ') : '–');
  md.push('| leg | path | TCP 1 stream Gbit/s | retransmits |', '|---|---|---|---|');
  for (const r of s.results) {
    for (const f of CLUSTER_LEGS[r.leg].flows) md.push(`| ${r.leg} | ${FLOW_LABEL[f]} | ${list(r.tcp1[f], 2)} | ${list(r.retransmits[f], 0)} |`);
  }
  md.push('', '</details>');
  const notes = s.results.flatMap((r) => [...r.notes.map((n) => `- ${r.leg}: ${cell(n)}`), ...r.errors.map((e) => `- ${r.leg}: **error** ${cell(e)}`)]);
  if (notes.length) md.push('', 'Legs as configured, and notes and errors from this run:', '', ...notes);
  return md.join('\n');
}

/**
 * Turns the north-south samples into the comparison: medians, every leg
 * against kernel-nft measured in the same run (single stream, connection
 * rate), the prefilter figures (drops per second at the earliest hook while
 * a stream keeps running, the stream against the same leg's without the
 * flood), the reply-path captures, and the issue's targets; rendered for
 * the console and for BENCHMARKS.md.
 *
 * API: summarizeNodePort, NodePortSummary, NodePortRow, nodePortConsoleReport, nodePortMarkdown
 */
import { median } from './measure.ts';
import { NODEPORT_LEGS, type NodePortLegResult } from './nodeport-legs.ts';
import { cell, fmt, markdownTable, ratio, textTable, type Target } from './report.ts';

/** One leg: medians and ratios. */
export interface NodePortRow {
  leg: NodePortLegResult['leg'];
  ok: boolean;
  gbps: number;
  retransmits: number;
  connPerSec: number;
  connP50Us: number;
  connP99Us: number;
  connFails: number;
  /** Against kernel-nft (1 for the kernel itself). */
  gbpsVsKernel: number;
  connVsKernel: number;
  /** Prefilter legs (NaN otherwise). */
  floodGbps: number;
  /** The stream under the flood against the same leg's stream without it. */
  floodVsClean: number;
  dropPps: number;
  sentPps: number;
  /** Dropped at the earliest hook / datagrams sent (1: the whole flood stopped there). */
  dropShare: number;
}

/** Everything the reports print. */
export interface NodePortSummary {
  rows: NodePortRow[];
  targets: Target[];
  runs: number;
  duration: number;
  connCount: number;
  replySeconds: number;
  results: NodePortLegResult[];
}

/** Computes medians, ratios and target verdicts. */
export function summarizeNodePort(results: NodePortLegResult[], runs: number, duration: number, connCount: number, replySeconds: number): NodePortSummary {
  const kernel = results.find((r) => r.leg === 'kernel-nft');
  const k = { gbps: median(kernel?.tcp1 ?? []), conn: median(kernel?.connPerSec ?? []) };
  const rows = results.map((r): NodePortRow => {
    const gbps = median(r.tcp1);
    const conn = median(r.connPerSec);
    const floodGbps = median(r.floodTcp1);
    return {
      leg: r.leg,
      ok: r.ok,
      gbps,
      retransmits: median(r.retransmits),
      connPerSec: conn,
      connP50Us: median(r.connP50Us),
      connP99Us: median(r.connP99Us),
      connFails: median(r.connFails),
      gbpsVsKernel: gbps / k.gbps,
      connVsKernel: conn / k.conn,
      floodGbps,
      floodVsClean: floodGbps / gbps,
      dropPps: median(r.dropPps),
      sentPps: median(r.sentPps),
      dropShare: median(r.dropShare),
    };
  });

  const dsr = results.find((r) => r.leg === 'tapestry-dsr');
  const check = dsr?.replyCheck;
  const x = check?.replies;
  const replies: Target = {
    what: 'DSR reply path never crosses the ingress node',
    goal: `0 reply packets on node 1's uplink in a ${replySeconds} s stream`,
    measured: !dsr
      ? 'leg not run'
      : replySeconds <= 0
        ? 'not run (--reply-duration 0)'
        : !x
          ? `capture failed${check?.error ? `: ${check.error}` : ''}`
          : `${x.replies} reply packets in ${check.seconds} s (${fmt(check.gbps, 2)} Gbit/s)` + (x.verified ? '' : '; NOT verified (no client SYN seen or capture drops)'),
    status: !dsr || replySeconds <= 0 ? 'n/a' : x && x.verified && x.replies === 0 && !check.error ? 'met' : 'not met',
  };
  const d = rows.find((r) => r.leg === 'tapestry-dsr');
  const s = rows.find((r) => r.leg === 'tapestry-snat');
  const both = d && s && Number.isFinite(d.gbps) && Number.isFinite(s.gbps);
  const dsrVsSnat: Target = {
    what: 'Outside→NodePort throughput, DSR against SNAT',
    goal: '>= 1 x SNAT (same run)',
    measured: !d || !s ? 'leg not run' : both ? `${fmt(d.gbps / s.gbps, 3)} x SNAT (${fmt(d.gbps, 2)} vs ${fmt(s.gbps, 2)} Gbit/s)` : 'leg failed',
    status: !d || !s ? 'n/a' : both && d.gbps >= s.gbps ? 'met' : 'not met',
  };
  return { rows, targets: [replies, dsrVsSnat], runs, duration, connCount, replySeconds, results };
}

/** Header and rows of the main table. */
function rows(s: NodePortSummary): { head: string[]; body: string[][] } {
  const head = ['leg', 'TCP 1 stream Gbit/s', 'vs kernel-nft', 'connections/s', 'vs kernel-nft', 'setup p50 µs', 'setup p99 µs', 'failed conns', 'retransmits'];
  const body = s.rows.map((r) =>
    !r.ok
      ? [r.leg, 'FAILED', '–', '–', '–', '–', '–', '–', '–']
      : [r.leg, fmt(r.gbps, 2), ratio(r.gbpsVsKernel), fmt(r.connPerSec, 0), ratio(r.connVsKernel), fmt(r.connP50Us, 0), fmt(r.connP99Us, 0), fmt(r.connFails, 0), fmt(r.retransmits, 0)],
  );
  return { head, body };
}

/** Header and rows of the prefilter table, or null when no leg floods. */
function floodRows(s: NodePortSummary): { head: string[]; body: string[][] } | null {
  const legs = s.rows.filter((r) => NODEPORT_LEGS[r.leg].prefilter);
  if (!legs.length) return null;
  const head = ['leg', 'dropped at', 'sent kpps', 'dropped kpps', 'dropped / sent', 'TCP Gbit/s without flood', 'TCP Gbit/s under flood', 'under / without'];
  const body = legs.map((r) => [
    r.leg,
    NODEPORT_LEGS[r.leg].tapestry ? 'XDP stage (XDP_DROP on eth0)' : 'nft netdev ingress (eth0)',
    fmt(r.sentPps / 1000, 0),
    fmt(r.dropPps / 1000, 0),
    fmt(r.dropShare, 3),
    fmt(r.gbps, 2),
    fmt(r.floodGbps, 2),
    ratio(r.floodVsClean),
  ]);
  return { head, body };
}

/** Header and rows of the reply-path table, or null when nothing was captured. */
function replyRows(s: NodePortSummary): { head: string[]; body: string[][] } | null {
  const checks = s.results.flatMap((r) => (r.replyCheck ? [{ leg: r.leg, c: r.replyCheck }] : []));
  if (!checks.length) return null;
  const head = ['leg', 'stream s', 'Gbit/s meanwhile', "reply packets on node 1's eth0", 'to the client', 'from the backend port', 'client SYNs seen', 'capture drops', 'verified'];
  const body = checks.map(({ leg, c }) => {
    const x = c.replies;
    if (!x) return [leg, String(c.seconds), '–', 'FAILED', '–', '–', '–', '–', '–'];
    return [leg, String(c.seconds), fmt(c.gbps, 2), String(x.replies), String(x.toClient), String(x.fromBackend), String(x.clientSyns), Number.isFinite(x.dropped) ? String(x.dropped) : '?', x.verified ? 'yes' : 'NO'];
  });
  return { head, body };
}

/** How the reply path is checked, in one paragraph. */
const REPLY_METHOD =
  "During one iperf3 stream outside→node1:30080 per leg, tcpdump on node 1's eth0 (in its namespace, both directions, " +
  '`--immediate-mode`, kernel filter: TCP to the client, from the backend port 5201, or SYN) kept every reply packet: to ' +
  "the client (node 1 relaying the backend's replies, as SNAT must) or from the backend port (the backend's replies " +
  "reaching node 1). DSR must show 0; SNAT is the control that shows the capture sees replies when they cross. Verified: " +
  "the client's SYNs showed in the same capture and it dropped nothing.";

/** Plain-text report for the terminal. */
export function nodePortConsoleReport(s: NodePortSummary): string {
  const { head, body } = rows(s);
  const out = [`North-south (outside → node 1 NodePort → backend on node 2): medians of ${s.runs} run(s), ${s.duration} s per stream, ${s.connCount} connections per figure`, ...textTable(head, body)];
  const f = floodRows(s);
  if (f) out.push('', 'Prefilter (UDP flood from a deny-listed source while one stream runs):', ...textTable(f.head, f.body));
  const c = replyRows(s);
  if (c) out.push('', 'Reply path (packets on the ingress node):', ...textTable(c.head, c.body));
  out.push('', 'Targets:');
  for (const t of s.targets) out.push(`  ${t.status === 'met' ? '[met]    ' : t.status === 'n/a' ? '[n/a]    ' : '[NOT MET]'} ${t.what} ${t.goal}: ${t.measured}`);
  const notes = s.results.flatMap((r) => [...r.notes, ...r.errors].map((n) => `  ${r.leg}: ${n}`));
  if (notes.length) out.push('', 'Notes and errors:', ...notes);
  return out.join('\n');
}

/** Markdown body of the north-south section (without the run stamp). */
export function nodePortMarkdown(s: NodePortSummary): string {
  const { head, body } = rows(s);
  const md = [...markdownTable(head, body, 1)];
  const f = floodRows(s);
  if (f) {
    md.push(
      '',
      '**Prefilter.** UDP (64-byte payload) from 10.99.0.200, a deny-listed source, to node 1 for the length of one stream (plus 2–3 s); ' +
        'the drop counter is read before the flood and after it, so sent and dropped cover the same seconds. Dropped / sent below 1 means part of ' +
        'the flood was lost before the hook (e.g. a full receive ring), not that it got through.',
      '',
      ...markdownTable(f.head, f.body, 2),
    );
  }
  const c = replyRows(s);
  if (c) {
    md.push('', `**Reply path.** ${REPLY_METHOD}`, '', ...markdownTable(c.head, c.body, 2));
    const samples = s.results.flatMap((r) => (r.replyCheck?.replies?.samples ?? []).slice(0, 2).map((l) => `- ${r.leg}: ${cell(l)}`));
    if (samples.length) md.push('', 'Counted packets (up to two per leg):', '', ...samples);
  }
  md.push('', '| target | goal | this run | |', '|---|---|---|---|');
  for (const t of s.targets) md.push(`| ${t.what} | ${t.goal} | ${cell(t.measured)} | ${t.status === 'met' ? '**met**' : t.status === 'n/a' ? 'n/a' : '**not met**'} |`);
  md.push('', '<details><summary>Per-round samples (– where that test failed)</summary>', '');
  const list = (xs: number[], d: number): string => (xs.length ? xs.map((x) => fmt(x, d)).join(', ') : '–');
  md.push('| leg | TCP Gbit/s | connections/s | setup p50 µs | TCP under flood Gbit/s | dropped kpps |', '|---|---|---|---|---|---|');
  for (const r of s.results) {
    md.push(`| ${r.leg} | ${list(r.tcp1, 2)} | ${list(r.connPerSec, 0)} | ${list(r.connP50Us, 0)} | ${list(r.floodTcp1, 2)} | ${list(r.dropPps.map((x) => x / 1000), 0)} |`);
  }
  md.push('', '</details>');
  const notes = s.results.flatMap((r) => [...r.notes.map((n) => `- ${r.leg}: ${cell(n)}`), ...r.errors.map((e) => `- ${r.leg}: **error** ${cell(e)}`)]);
  if (notes.length) md.push('', 'Legs as configured, and notes and errors from this run:', '', ...notes);
  return md.join('\n');
}

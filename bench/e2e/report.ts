/**
 * Turns leg samples into the comparison: medians, ratios against the
 * kernel measured in the same run, and Tapestry's targets, rendered as a
 * console table and as Markdown for BENCHMARKS.md.
 *
 * API: summarize, Summary, LegSummary, Target, consoleReport, markdownReport,
 *      fmt, ratio, textTable, markdownTable, cell (shared with cluster-report.ts)
 */
import { median, type LegResult } from './measure.ts';
import type { ConnSetup } from './services.ts';
import type { LegName } from './topology.ts';

/** Medians and kernel ratios of one leg. */
export interface LegSummary {
  leg: LegName;
  ok: boolean;
  tcp1: number;
  tcp1Ratio: number;
  tcpN: number;
  tcpNRatio: number;
  p50: number;
  p99: number;
  p50Ratio: number;
  rssIdleMB: number;
  /** TCP single stream through the ClusterIP, and its ratio to the same leg's pod→pod figure. */
  tcp1Svc: number;
  tcp1SvcRatio: number;
  raw: LegResult;
}

/** One of Tapestry's stated targets and whether this run met it. */
export interface Target {
  what: string;
  goal: string;
  measured: string;
  status: 'met' | 'not met' | 'n/a';
}

/** Everything the reports print. */
export interface Summary {
  legs: LegSummary[];
  targets: Target[];
  runs: number;
  duration: number;
  streams: number;
  /** Service counts of the connection-setup test (empty when skipped). */
  services: number[];
}

/** Tapestry TCP single stream through a ClusterIP must reach this fraction of its pod→pod figure. */
const SVC_TCP1_MIN_RATIO = 0.9;
/** Tapestry single stream must reach this fraction of the kernel's. */
const TCP1_MIN_RATIO = 0.4;
/** Tapestry's p50 RTT may be at most this multiple of the kernel's. */
const P50_MAX_RATIO = 2;
/** Tapestry agent idle RSS ceiling with 3 endpoints, MB. */
const RSS_MAX_MB = 150;

/** Computes medians, ratios vs. the kernel leg of the same run, and the target verdicts. */
export function summarize(results: LegResult[], runs: number, duration: number, streams: number, services: number[] = []): Summary {
  const kernel = results.find((r) => r.leg === 'kernel');
  const k = { tcp1: median(kernel?.tcp1 ?? []), tcpN: median(kernel?.tcpN ?? []), p50: median(kernel?.p50 ?? []) };
  const legs = results.map((r): LegSummary => {
    const tcp1 = median(r.tcp1);
    const tcpN = median(r.tcpN);
    const p50 = median(r.p50);
    return {
      leg: r.leg, ok: r.ok, tcp1, tcp1Ratio: tcp1 / k.tcp1, tcpN, tcpNRatio: tcpN / k.tcpN,
      p50, p99: median(r.p99), p50Ratio: p50 / k.p50, rssIdleMB: r.extras.rssIdleMB ?? NaN,
      tcp1Svc: median(r.tcp1Svc), tcp1SvcRatio: median(r.tcp1Svc) / tcp1, raw: r,
    };
  });
  const t = legs.find((l) => l.leg === 'tapestry');
  // Not selected (--legs) or no kernel figure to compare with -> n/a; selected but failed -> not met.
  const kernelOk = kernel?.ok ?? false;
  const verdict = (v: number | undefined, ok: (x: number) => boolean, needsKernel: boolean): Target['status'] =>
    !t || (needsKernel && !kernelOk) ? 'n/a' : v === undefined || !Number.isFinite(v) ? 'not met' : ok(v) ? 'met' : 'not met';
  const missing = (needsKernel: boolean): string =>
    !t ? 'leg not run' : !t.ok ? 'leg failed' : needsKernel && !kernelOk ? 'no kernel figure in this run' : 'not measured';
  const targets: Target[] = [
    {
      what: 'Tapestry TCP single stream',
      goal: `>= ${TCP1_MIN_RATIO} x kernel`,
      measured: t && Number.isFinite(t.tcp1Ratio) ? `${fmt(t.tcp1Ratio, 3)} x kernel` : missing(true),
      status: verdict(t?.tcp1Ratio, (x) => x >= TCP1_MIN_RATIO, true),
    },
    {
      what: 'Tapestry sockperf RTT p50',
      goal: `<= ${P50_MAX_RATIO} x kernel`,
      measured: t && Number.isFinite(t.p50Ratio) ? `${fmt(t.p50Ratio, 3)} x kernel` : missing(true),
      status: verdict(t?.p50Ratio, (x) => x <= P50_MAX_RATIO, true),
    },
    {
      what: 'Tapestry agent idle RSS, 3 endpoints',
      goal: `<= ${RSS_MAX_MB} MB`,
      measured: t && Number.isFinite(t.rssIdleMB) ? `${fmt(t.rssIdleMB, 1)} MB` : missing(false),
      status: verdict(t?.rssIdleMB, (x) => x <= RSS_MAX_MB, false),
    },
    {
      what: 'Tapestry TCP single stream pod→ClusterIP→pod',
      goal: `>= ${SVC_TCP1_MIN_RATIO} x pod→pod`,
      measured: t && Number.isFinite(t.tcp1SvcRatio) ? `${fmt(t.tcp1SvcRatio, 3)} x pod→pod` : missing(false),
      status: verdict(t?.tcp1SvcRatio, (x) => x >= SVC_TCP1_MIN_RATIO, false),
    },
  ];
  return { legs, targets, runs, duration, streams, services };
}

/** Fixed-point number, or an en dash for NaN/undefined. */
export function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

/** Ratio column text: `1.00` for the kernel itself, en dash when missing. */
export function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '–';
}

/** Header and rows of the main comparison table. */
function rows(s: Summary): { head: string[]; body: string[][] } {
  const head = ['leg', 'TCP 1 stream Gbit/s', 'ratio vs kernel', 'via ClusterIP Gbit/s', 'ClusterIP/pod-pod'];
  if (s.streams > 0) head.push(`TCP ${s.streams} streams Gbit/s`, 'ratio');
  head.push('RTT p50 µs', 'RTT p99 µs', 'p50 ratio', 'idle RSS MB');
  const body = s.legs.map((l) => {
    if (!l.ok) return [l.leg, 'FAILED', ...head.slice(2).map(() => '–')];
    const r = [l.leg, fmt(l.tcp1, 2), ratio(l.tcp1Ratio), fmt(l.tcp1Svc, 2), ratio(l.tcp1SvcRatio)];
    if (s.streams > 0) r.push(fmt(l.tcpN, 2), ratio(l.tcpNRatio));
    r.push(fmt(l.p50, 1), fmt(l.p99, 1), ratio(l.p50Ratio), fmt(l.rssIdleMB, 1));
    return r;
  });
  return { head, body };
}

/** The connection-setup figure of a leg for `n` services (0: pod→pod), if measured. */
function conn(l: LegSummary, n: number): ConnSetup | undefined {
  return l.raw.connSetup.find((c) => c.services === n);
}

/** Header and rows of the connection-setup table (legs that measured it), or null when none did. */
function connRows(s: Summary): { head: string[]; body: string[][] } | null {
  const legs = s.legs.filter((l) => l.raw.connSetup.length > 0);
  if (!legs.length || !s.services.length) return null;
  const big = s.services[s.services.length - 1]!;
  const small = s.services[0]!;
  const head = ['leg', 'pod→pod p50 µs'];
  for (const n of s.services) head.push(`${n.toLocaleString('en-US')} svc p50 µs`, 'p99 µs');
  if (s.services.length > 1) head.push(`p50 ${big.toLocaleString('en-US')}/${small.toLocaleString('en-US')}`);
  head.push('load time');
  const body = legs.map((l) => {
    const r = [l.leg, fmt(conn(l, 0)?.p50Us, 0)];
    for (const n of s.services) r.push(fmt(conn(l, n)?.p50Us, 0), fmt(conn(l, n)?.p99Us, 0));
    if (s.services.length > 1) r.push(ratio((conn(l, big)?.p50Us ?? NaN) / (conn(l, small)?.p50Us ?? NaN)));
    r.push(s.services.map((n) => `${n}: ${fmt((conn(l, n)?.loadMs ?? NaN) / 1000, 1)} s`).join(', '));
    return r;
  });
  return { head, body };
}

/** Plain-text table. */
export function textTable(head: string[], body: string[][]): string[] {
  const width = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...body.map(line)];
}

/** One sentence on what the connection-setup test does. */
function connMethod(s: Summary): string {
  const n = s.legs.map((l) => l.raw.connSetup[0]?.count).find((c) => c !== undefined) ?? 0;
  return (
    `Connection setup (connect() to first byte, ${n} sequential connections from pod A, p50/p99) to a server in pod B: ` +
    `straight to B:8080, then to VIP:80 of the last of N services (all VIP:80 -> B:8080). ` +
    `kernel: kube-proxy-style linear nftables DNAT chain in the router namespace, one rule per service; ` +
    `tapestry: services added through PUT /v1/service.`
  );
}

/** Plain-text report for the terminal: the table, the targets, failures. */
export function consoleReport(s: Summary): string {
  const { head, body } = rows(s);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(width[i]!)).join('  ').trimEnd();
  const out = [
    `End to end: medians of ${s.runs} run(s), ${s.duration} s per test`,
    line(head),
    line(width.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    'Targets:',
    ...s.targets.map((t) => `  ${t.status === 'met' ? '[met]    ' : t.status === 'n/a' ? '[n/a]    ' : '[NOT MET]'} ${t.what} ${t.goal}: ${t.measured}`),
  ];
  const c = connRows(s);
  if (c) out.push('', connMethod(s), ...textTable(c.head, c.body));
  const notes = s.legs.flatMap((l) => [...l.raw.notes, ...l.raw.errors].map((n) => `  ${l.leg}: ${n}`));
  if (notes.length) out.push('', 'Notes and errors:', ...notes);
  return out.join('\n');
}

/** Escapes characters that would break a Markdown table cell. */
export function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** A Markdown table, the first `left` columns left-aligned and the others right-aligned. */
export function markdownTable(head: string[], body: string[][], left = 1): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < left ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.map(cell).join(' | ')} |`)];
}

/** Markdown for BENCHMARKS.md: comparison table, targets, per-run samples, notes, failures. */
export function markdownReport(s: Summary): string {
  const { head, body } = rows(s);
  const md: string[] = [];
  md.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const r of body) md.push(`| ${r.map(cell).join(' | ')} |`);
  md.push('', '| target | goal | this run | |', '|---|---|---|---|');
  for (const t of s.targets) md.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.status === 'met' ? '**met**' : t.status === 'n/a' ? 'n/a' : '**not met**'} |`);
  const c = connRows(s);
  if (c) {
    md.push('', `**Services.** ${connMethod(s)}`, '');
    md.push(`| ${c.head.join(' | ')} |`, `|${c.head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const r of c.body) md.push(`| ${r.map(cell).join(' | ')} |`);
  }
  md.push('', '<details><summary>Per-round samples (– where that test failed)</summary>', '');
  const list = (xs: number[], d: number): string => (xs.length ? xs.map((x) => fmt(x, d)).join(', ') : '–');
  md.push('| leg | TCP 1 stream Gbit/s | retransmits (1 stream) | via ClusterIP Gbit/s |' + (s.streams > 0 ? ` TCP ${s.streams} streams Gbit/s |` : '') + ' RTT p50 µs | RTT p99 µs |');
  md.push('|---|---|---|---|' + (s.streams > 0 ? '---|' : '') + '---|---|');
  for (const l of s.legs) {
    const r = l.raw;
    md.push(`| ${l.leg} | ${list(r.tcp1, 2)} | ${list(r.retransmits1, 0)} | ${list(r.tcp1Svc, 2)} |` + (s.streams > 0 ? ` ${list(r.tcpN, 2)} |` : '') + ` ${list(r.p50, 1)} | ${list(r.p99, 1)} |`);
  }
  md.push('', '</details>');
  const notes = s.legs.flatMap((l) => [
    ...l.raw.notes.map((n) => `- ${l.leg}: ${n}`),
    ...(l.raw.extras.rssPeakMB !== undefined ? [`- ${l.leg}: agent peak RSS (VmHWM) after the traffic tests: ${l.raw.extras.rssPeakMB.toFixed(1)} MB`] : []),
    ...l.raw.errors.map((e) => `- ${l.leg}: **error** ${cell(e)}`),
  ]);
  if (notes.length) md.push('', 'Legs as configured, and notes and errors from this run:', '', ...notes);
  return md.join('\n');
}

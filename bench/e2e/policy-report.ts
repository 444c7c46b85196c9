/**
 * Turns the policy legs' samples into the comparison: medians, each leg
 * against no-policy in the same run, the enforcement check, and the
 * target; rendered for the console and for BENCHMARKS.md.
 *
 * API: summarizePolicy, PolicySummary, PolicyRow, policyConsoleReport, policyMarkdown
 */
import { median } from './measure.ts';
import { POLICY_LEGS, type PolicyLegResult } from './policy-legs.ts';
import { cell, fmt, markdownTable, ratio, textTable, type Target } from './report.ts';

/** One leg: medians and its ratio to no-policy. */
export interface PolicyRow {
  leg: PolicyLegResult['leg'];
  ok: boolean;
  gbps: number;
  retransmits: number;
  /** Against the no-policy leg of the same run (1 for no-policy itself). */
  vsNone: number;
  /** Per round, against no-policy in the same round. */
  perRound: number[];
}

/** Everything the reports print. */
export interface PolicySummary {
  rows: PolicyRow[];
  targets: Target[];
  runs: number;
  duration: number;
  results: PolicyLegResult[];
}

/** A stream the policies allow must keep this fraction of the no-policy figure. */
const POLICY_TCP1_MIN_RATIO = 0.9;

/** Computes medians, ratios and the target verdicts. */
export function summarizePolicy(results: PolicyLegResult[], runs: number, duration: number): PolicySummary {
  const none = results.find((r) => r.leg === 'no-policy');
  const base = median(none?.tcp1 ?? []);
  const rows = results.map((r): PolicyRow => {
    const gbps = median(r.tcp1);
    return {
      leg: r.leg,
      ok: r.ok,
      gbps,
      retransmits: median(r.retransmits),
      vsNone: gbps / base,
      perRound: r.tcp1.map((x, i) => x / (none?.tcp1[i] ?? NaN)),
    };
  });
  const target = (leg: PolicyLegResult['leg'], what: string): Target => {
    const row = rows.find((x) => x.leg === leg);
    const res = results.find((x) => x.leg === leg);
    const measured = !row
      ? 'leg not run'
      : !row.ok
        ? 'leg failed'
        : !none?.ok
          ? 'no no-policy figure in this run'
          : `${fmt(row.vsNone, 3)} x no policy${res?.verified ? ', enforcement verified' : ', enforcement NOT verified'}`;
    const status: Target['status'] = !row || !none ? 'n/a' : !none.ok ? 'n/a' : Number.isFinite(row.vsNone) && row.vsNone >= POLICY_TCP1_MIN_RATIO && res?.verified ? 'met' : 'not met';
    return { what, goal: `>= ${POLICY_TCP1_MIN_RATIO} x no policy`, measured, status };
  };
  return {
    rows,
    targets: [
      target('ingress', 'Tapestry TCP single stream allowed by an ingress policy'),
      target('ingress-egress', 'Tapestry TCP single stream allowed by ingress and egress policies'),
    ],
    runs,
    duration,
    results,
  };
}

/** "b ingress 123, a egress 456" or an en dash. */
function hitsText(r: PolicyLegResult): string {
  const parts = [
    ...(Number.isFinite(r.allowPackets.ingress) ? [`b ingress ${r.allowPackets.ingress}`] : []),
    ...(Number.isFinite(r.allowPackets.egress) ? [`a egress ${r.allowPackets.egress}`] : []),
  ];
  return parts.length ? parts.join(', ') : '–';
}

/** Header and rows of the comparison table. */
function rows(s: PolicySummary): { head: string[]; body: string[][] } {
  const head = ['leg', 'TCP 1 stream Gbit/s', 'ratio vs no policy', 'retransmits', 'enforcement check', 'allow-entry packets'];
  const body = s.rows.map((row) => {
    const r = s.results.find((x) => x.leg === row.leg)!;
    if (!row.ok) return [row.leg, 'FAILED', ...head.slice(2).map(() => '–')];
    const check = r.verified === null ? 'not run' : r.verified ? `passed (${r.probes.length} probes)` : 'FAILED';
    return [row.leg, fmt(row.gbps, 2), ratio(row.vsNone), fmt(row.retransmits, 0), check, hitsText(r)];
  });
  return { head, body };
}

/** One line per probe. */
function probeLines(s: PolicySummary): string[] {
  return s.results.flatMap((r) =>
    r.probes.map(
      (p) =>
        `${r.leg}: ${p.what}: ${p.outcome}, Policy denied +${p.deniedIngress} ingress / +${p.deniedEgress} egress ` +
        `(expected ${p.expect === 'connect' ? 'a connection, no drop' : `a drop at ${p.expect === 'deny-ingress' ? "b's ingress" : "a's egress"}`}) — ${p.ok ? 'ok' : 'NOT as expected'}`,
    ),
  );
}

/** Plain-text report for the terminal. */
export function policyConsoleReport(s: PolicySummary): string {
  const { head, body } = rows(s);
  const out = [`Network policy: medians of ${s.runs} run(s), ${s.duration} s per test`, ...textTable(head, body), '', 'Targets:'];
  for (const t of s.targets) out.push(`  ${t.status === 'met' ? '[met]    ' : t.status === 'n/a' ? '[n/a]    ' : '[NOT MET]'} ${t.what} ${t.goal}: ${t.measured}`);
  const probes = probeLines(s);
  if (probes.length) out.push('', 'Enforcement probes (one connection attempt each, before the rounds):', ...probes.map((l) => `  ${l}`));
  const notes = s.results.flatMap((r) => [...r.notes, ...r.errors].map((n) => `  ${r.leg}: ${n}`));
  if (notes.length) out.push('', 'Notes and errors:', ...notes);
  return out.join('\n');
}

/** Markdown for BENCHMARKS.md: comparison table, targets, probes, per-round samples, notes. */
export function policyMarkdown(s: PolicySummary): string {
  const { head, body } = rows(s);
  const md = [...markdownTable(head, body), ''];
  md.push('| target | goal | this run | |', '|---|---|---|---|');
  for (const t of s.targets) md.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.status === 'met' ? '**met**' : t.status === 'n/a' ? 'n/a' : '**not met**'} |`);
  md.push('', 'Legs as configured:', '');
  for (const r of s.results) md.push(`- ${r.leg}: ${POLICY_LEGS[r.leg].what}`);
  const probes = probeLines(s);
  if (probes.length) md.push('', 'Enforcement probes (one connection attempt each, before the rounds; drop counters read around each):', '', ...probes.map((l) => `- ${cell(l)}`));
  md.push('', '<details><summary>Per-round samples (– where that test failed)</summary>', '');
  const list = (xs: number[], d: number): string => (xs.length ? xs.map((x) => fmt(x, d)).join(', ') : '–');
  md.push(...markdownTable(
    ['leg', 'TCP 1 stream Gbit/s', 'retransmits', 'ratio vs no policy, same round'],
    s.rows.map((row) => {
      const r = s.results.find((x) => x.leg === row.leg)!;
      return [row.leg, list(r.tcp1, 2), list(r.retransmits, 0), row.leg === 'no-policy' ? '–' : list(row.perRound, 2)];
    }),
    4,
  ));
  md.push('', '</details>');
  const notes = s.results.flatMap((r) => [...r.notes.map((n) => `- ${r.leg}: ${cell(n)}`), ...r.errors.map((e) => `- ${r.leg}: **error** ${cell(e)}`)]);
  if (notes.length) md.push('', 'Notes and errors from this run:', '', ...notes);
  return md.join('\n');
}

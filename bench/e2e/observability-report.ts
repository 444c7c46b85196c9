/**
 * Turns the observability legs' samples into the comparison: medians, each
 * leg against "off" in the same run, off against "events-off" (event code
 * paths compiled out), the monitor-off and reader targets; rendered for the
 * console and for BENCHMARKS.md.
 *
 * API: summarizeObservability, ObservabilitySummary, observabilityConsoleReport, observabilityMarkdown
 */
import { median } from './measure.ts';
import { OBSERVABILITY_LEGS, type ObservabilityLegResult } from './observability-legs.ts';
import { cell, fmt, markdownTable, ratio, textTable, type Target } from './report.ts';

/** One leg: medians and its ratio to off. */
interface ObservabilityRow {
  leg: ObservabilityLegResult['leg'];
  ok: boolean;
  gbps: number;
  retransmits: number;
  vsOff: number;
  /** Median against events-off's median (event code paths out of the datapath). */
  vsEventsOff: number;
  /** Per round, against off in the same round. */
  perRound: number[];
  /** Per round, against events-off in the same round. */
  perRoundEventsOff: number[];
}

/** Everything the reports print. */
export interface ObservabilitySummary {
  rows: ObservabilityRow[];
  targets: Target[];
  runs: number;
  duration: number;
  results: ObservabilityLegResult[];
}

/** A stream with a monitor reader attached must keep this fraction of the figure with nobody reading. */
const MONITOR_MIN_RATIO = 0.8;

/** With nobody reading, the stream must keep this fraction of the figure with the event code paths compiled out. */
const MONITOR_OFF_MIN_RATIO = 0.98;

/** Computes medians, ratios and the target verdicts. */
export function summarizeObservability(results: ObservabilityLegResult[], runs: number, duration: number): ObservabilitySummary {
  const off = results.find((r) => r.leg === 'off');
  const eoff = results.find((r) => r.leg === 'events-off');
  const base = median(off?.tcp1 ?? []);
  const eBase = median(eoff?.tcp1 ?? []);
  const rows = results.map((r): ObservabilityRow => {
    const gbps = median(r.tcp1);
    return {
      leg: r.leg,
      ok: r.ok,
      gbps,
      retransmits: median(r.retransmits),
      vsOff: gbps / base,
      vsEventsOff: gbps / eBase,
      perRound: r.tcp1.map((x, i) => x / (off?.tcp1[i] ?? NaN)),
      perRoundEventsOff: r.tcp1.map((x, i) => x / (eoff?.tcp1[i] ?? NaN)),
    };
  });
  const offRow = rows.find((x) => x.leg === 'off');
  const offMeasured = !offRow ? 'leg off not run' : !eoff ? 'leg events-off not run' : !offRow.ok ? 'leg off failed' : !eoff.ok ? 'leg events-off failed' : `${fmt(offRow.vsEventsOff, 3)} x events-off`;
  const offStatus: Target['status'] = !offRow?.ok || !eoff?.ok ? 'n/a' : Number.isFinite(offRow.vsEventsOff) && offRow.vsEventsOff >= MONITOR_OFF_MIN_RATIO ? 'met' : 'not met';
  const mon = rows.find((x) => x.leg === 'monitor');
  const measured = !mon ? 'leg not run' : !mon.ok ? 'leg failed' : !off?.ok ? 'no off figure in this run' : `${fmt(mon.vsOff, 3)} x off`;
  const status: Target['status'] = !mon || !off?.ok ? 'n/a' : Number.isFinite(mon.vsOff) && mon.vsOff >= MONITOR_MIN_RATIO ? 'met' : 'not met';
  return {
    rows,
    targets: [
      { what: 'Tapestry TCP single stream, monitor off (nobody reading events), against event code paths compiled out', goal: `>= ${MONITOR_OFF_MIN_RATIO} x events-off`, measured: offMeasured, status: offStatus },
      { what: 'Tapestry TCP single stream with a monitor reader (trace + drop) attached', goal: `>= ${MONITOR_MIN_RATIO} x off`, measured, status },
    ],
    runs,
    duration,
    results,
  };
}

/** What the observer saw, per leg (medians). */
function seen(r: ObservabilityLegResult): string {
  if (r.leg === 'monitor' && r.events.length) return `${fmt(median(r.events), 0)} event lines read`;
  if (r.leg === 'capture' && r.captured.length) return `${fmt(median(r.captured), 0)} frames captured, ${fmt(median(r.lost), 0)} lost`;
  return '–';
}

/** Header and rows of the comparison table. */
function rows(s: ObservabilitySummary): { head: string[]; body: string[][] } {
  const head = ['leg', 'TCP 1 stream Gbit/s', 'ratio vs off', 'ratio vs events-off', 'retransmits', 'observer saw (per round)'];
  const body = s.rows.map((row) => {
    const r = s.results.find((x) => x.leg === row.leg)!;
    if (!row.ok) return [row.leg, 'FAILED', ...head.slice(2).map(() => '–')];
    return [row.leg, fmt(row.gbps, 2), ratio(row.vsOff), ratio(row.vsEventsOff), fmt(row.retransmits, 0), seen(r)];
  });
  return { head, body };
}

/** Plain-text report for the terminal. */
export function observabilityConsoleReport(s: ObservabilitySummary): string {
  const { head, body } = rows(s);
  const out = [`Observability cost: medians of ${s.runs} run(s), ${s.duration} s per test`, ...textTable(head, body), '', 'Targets:'];
  for (const t of s.targets) out.push(`  ${t.status === 'met' ? '[met]    ' : t.status === 'n/a' ? '[n/a]    ' : '[NOT MET]'} ${t.what} ${t.goal}: ${t.measured}`);
  const notes = s.results.flatMap((r) => [...r.notes, ...r.errors].map((n) => `  ${r.leg}: ${n}`));
  if (notes.length) out.push('', 'Notes and errors:', ...notes);
  return out.join('\n');
}

/** Markdown for BENCHMARKS.md: comparison table, targets, legs, per-round samples, notes. */
export function observabilityMarkdown(s: ObservabilitySummary): string {
  const { head, body } = rows(s);
  const md = [...markdownTable(head, body), ''];
  md.push('| target | goal | this run | |', '|---|---|---|---|');
  for (const t of s.targets) md.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.status === 'met' ? '**met**' : t.status === 'n/a' ? 'n/a' : '**not met**'} |`);
  md.push('', 'Legs as configured:', '');
  for (const r of s.results) md.push(`- ${r.leg}: ${cell(OBSERVABILITY_LEGS[r.leg].what)}`);
  md.push('', '<details><summary>Per-round samples (– where that test failed)</summary>', '');
  const list = (xs: number[], d: number): string => (xs.length ? xs.map((x) => fmt(x, d)).join(', ') : '–');
  md.push(...markdownTable(
    ['leg', 'TCP 1 stream Gbit/s', 'retransmits', 'ratio vs off, same round', 'ratio vs events-off, same round', 'observer'],
    s.rows.map((row) => {
      const r = s.results.find((x) => x.leg === row.leg)!;
      const obs = r.leg === 'monitor' ? `events ${list(r.events, 0)}` : r.leg === 'capture' ? `captured ${list(r.captured, 0)}; lost ${list(r.lost, 0)}` : '–';
      return [row.leg, list(r.tcp1, 2), list(r.retransmits, 0), row.leg === 'off' ? '–' : list(row.perRound, 2), row.leg === 'events-off' ? '–' : list(row.perRoundEventsOff, 2), obs];
    }),
    6,
  ));
  md.push('', '</details>');
  const notes = s.results.flatMap((r) => [...r.notes.map((n) => `- ${r.leg}: ${cell(n)}`), ...r.errors.map((e) => `- ${r.leg}: **error** ${cell(e)}`)]);
  if (notes.length) md.push('', 'Notes and errors from this run:', '', ...notes);
  return md.join('\n');
}

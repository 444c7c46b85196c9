/**
 * What the tour prints: one `ok`/`FAIL` line per step as it happens, the
 * excerpts of CLI output, and the closing "N/M steps ok" line. Also the
 * small parsers that turn ping and iperf3 output into a step's detail.
 *
 * API:
 *   record(step, path, ok, detail)   print and remember one step
 *   failed()                         the steps that did not go as expected
 *   say(text) / excerpt(text, n, keep?)  plain output; n lines of a block, indented
 *   finalLine()                      "N/M steps ok[; failed: …]"
 *   pingRtt(out), iperfTcp(json), iperfUdp(json), why(result)
 */

interface Row {
  step: string;
  path: string;
  ok: boolean;
  detail: string;
}

const rows: Row[] = [];

/** Print one step the moment it is known, and keep it for the final line. */
export function record(step: string, path: string, ok: boolean, detail: string): void {
  rows.push({ step, path, ok, detail });
  process.stdout.write(`  ${ok ? 'ok  ' : 'FAIL'}  ${step.padEnd(9)} ${path.padEnd(44)} ${detail}\n`);
}

/** Steps that failed so far. */
export function failed(): readonly Row[] {
  return rows.filter((r) => !r.ok);
}

export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** The first `n` lines of `text` that `keep` accepts, indented, with a count of what was left out. */
export function excerpt(text: string, n: number, keep: (line: string, i: number) => boolean = () => true): string {
  const all = text.replace(/\s+$/, '').split('\n');
  const shown = all.filter(keep).slice(0, n);
  const left = all.length - shown.length;
  const out = shown.map((l) => `      ${l}`);
  if (left > 0) out.push(`      … ${left} more line${left === 1 ? '' : 's'}`);
  return out.join('\n');
}

/** "N/M steps ok", naming the failed ones. */
export function finalLine(): string {
  const bad = failed();
  return `${rows.length - bad.length}/${rows.length} steps ok${bad.length ? `; failed: ${bad.map((f) => `${f.step} ${f.path}`).join('; ')}` : ''}`;
}

/** "rtt avg X ms, L% loss" from ping's summary, or its last line. */
export function pingRtt(out: string): string {
  const m = /= [\d.]+\/([\d.]+)\//.exec(out);
  const loss = /(\d+)% packet loss/.exec(out);
  return m ? `rtt avg ${m[1]} ms, ${loss?.[1] ?? '?'}% loss` : (out.trim().split('\n').pop() ?? '');
}

/** Throughput and retransmits of an `iperf3 -J` TCP run; null if it did not produce a result. */
export function iperfTcp(stdout: string): { gbps: number; bytes: number; retransmits: number } | null {
  try {
    const j = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } } };
    const r = j.end.sum_received;
    return { gbps: r.bits_per_second / 1e9, bytes: r.bytes, retransmits: j.end.sum_sent.retransmits ?? 0 };
  } catch {
    return null;
  }
}

/** Rate and loss of an `iperf3 -u -J` run; null if it did not produce a result. */
export function iperfUdp(stdout: string): { mbps: number; lostPercent: number } | null {
  try {
    const j = JSON.parse(stdout) as { end: { sum: { bits_per_second: number; lost_percent: number } } };
    return { mbps: j.end.sum.bits_per_second / 1e6, lostPercent: j.end.sum.lost_percent };
  } catch {
    return null;
  }
}

/** What went wrong with a command, in one line. */
export function why(r: { status: number | null; stdout: string; stderr: string }): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').pop() ?? '';
  return text ? text.slice(0, 160) : `exit ${r.status}`;
}

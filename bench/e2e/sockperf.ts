/**
 * sockperf UDP ping-pong round-trip latency between two pods: `sockperf sr`
 * in pod B, `sockperf pp --full-rtt` in pod A, percentiles parsed from its
 * text summary. Figures are full round trips (sockperf's default would be
 * half of that), as in the peers table.
 *
 * API: sockperfPingPong, parseSockperf, SockperfResult
 */
import { BenchError, run, startBackground, stopProcess } from './proc.ts';
import { nsArgs, waitListening } from './netns.ts';

/** Round-trip percentiles from one run, µs. */
export interface SockperfResult {
  p50: number;
  p99: number;
  avg: number;
  /** Round trips observed. */
  samples: number;
}

/** Port used inside pod B. */
const SOCKPERF_PORT = 11111;

/**
 * Parses sockperf's summary lines, e.g.
 * `sockperf: ---> percentile 50.000 =   21.337` and `sockperf: ====> avg-rtt=21.643 (std-dev=3.147)`.
 */
export function parseSockperf(text: string): SockperfResult {
  const pct = new Map<string, number>();
  for (const m of text.matchAll(/percentile\s+([\d.]+)\s*=\s*([\d.]+)/g)) pct.set(Number(m[1]).toFixed(3), Number(m[2]));
  const avg = /avg-(?:rtt|lat(?:ency)?)=([\d.]+)/.exec(text);
  const obs = /Total\s+(\d+)\s+observations/.exec(text);
  const p50 = pct.get('50.000');
  const p99 = pct.get('99.000');
  if (p50 === undefined || p99 === undefined) {
    throw new BenchError(`sockperf: no percentiles in output: ${text.trim().split('\n').slice(-4).join(' | ')}`);
  }
  return { p50, p99, avg: avg ? Number(avg[1]) : NaN, samples: obs ? Number(obs[1]) : 0 };
}

/** Runs one UDP ping-pong test A→B for `seconds`. */
export async function sockperfPingPong(nsA: string, nsB: string, ipB: string, seconds: number): Promise<SockperfResult> {
  const server = startBackground('ip', nsArgs(nsB, 'sockperf', ['sr', '-i', ipB, '-p', String(SOCKPERF_PORT)]), { traffic: true });
  try {
    if (!(await waitListening(nsB, 'udp', SOCKPERF_PORT))) {
      throw new BenchError(`sockperf server in ${nsB} did not start: ${server.output().trim()}`);
    }
    const r = await run(
      'ip',
      nsArgs(nsA, 'sockperf', ['pp', '-i', ipB, '-p', String(SOCKPERF_PORT), '-t', String(seconds), '--full-rtt']),
      { timeoutMs: (seconds + 20) * 1000, traffic: true },
    );
    if (r.timedOut) throw new BenchError(`sockperf client timed out after ${seconds + 20} s`);
    if (r.code !== 0) throw new BenchError(`sockperf pp exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
    return parseSockperf(r.stdout + r.stderr);
  } finally {
    await stopProcess(server, 2_000);
  }
}

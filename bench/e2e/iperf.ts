/**
 * iperf3 TCP throughput between two pods: a one-shot server (`-s -1`) in
 * pod B, the client in pod A with JSON output (`-J`), the first second
 * omitted (`-O 1`) so slow start does not count.
 *
 * API: iperfTcp, iperfClient, parseIperfJson, IperfResult
 */
import { BenchError, run, startBackground, stopProcess } from './proc.ts';
import { nsArgs, waitListening } from './netns.ts';

/** One iperf3 run's outcome. */
export interface IperfResult {
  /** Receiver-side goodput summed over all streams, Gbit/s. */
  gbps: number;
  /** Sender retransmissions (total). */
  retransmits: number;
}

/** Port used inside pod B; every namespace has its own port space. */
const IPERF_PORT = 5201;

/** Extracts receiver throughput and retransmits from `iperf3 -J` output. */
export function parseIperfJson(text: string): IperfResult {
  let doc: {
    error?: string;
    end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } };
  };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new BenchError(`iperf3: output is not JSON: ${text.slice(0, 200)}`);
  }
  if (doc.error) throw new BenchError(`iperf3: ${doc.error}`);
  const bps = doc.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new BenchError('iperf3: no end.sum_received.bits_per_second in output');
  return { gbps: bps / 1e9, retransmits: doc.end?.sum_sent?.retransmits ?? 0 };
}

/**
 * The client side alone: TCP from `ns` to a server already listening on
 * `ip`:`port` (e.g. the cluster's outside host), `streams` streams for
 * `seconds` (+1 s omitted).
 */
export async function iperfClient(ns: string, ip: string, seconds: number, streams = 1, port = IPERF_PORT): Promise<IperfResult> {
  const r = await run(
    'ip',
    nsArgs(ns, 'iperf3', [
      '-c', ip, '-p', String(port),
      '-t', String(seconds), '-O', '1', '-P', String(streams),
      '--connect-timeout', '3000', '-J',
    ]),
    { timeoutMs: (seconds + 20) * 1000, traffic: true },
  );
  if (r.timedOut) throw new BenchError(`iperf3 client timed out after ${seconds + 20} s`);
  if (!r.stdout.trim()) {
    throw new BenchError(`iperf3 client: no output (exit ${r.code ?? r.signal}) ${r.stderr.trim().slice(-200)}`.trim());
  }
  return parseIperfJson(r.stdout);
}

/** Runs one TCP test A→B with `streams` parallel streams for `seconds` (+1 s omitted); `connectIp` (e.g. a ClusterIP) defaults to `ipB`. */
export async function iperfTcp(
  nsA: string,
  nsB: string,
  ipB: string,
  seconds: number,
  streams = 1,
  connectIp = ipB,
): Promise<IperfResult> {
  const server = startBackground('ip', nsArgs(nsB, 'iperf3', ['-s', '-1', '-B', ipB, '-p', String(IPERF_PORT)]), { traffic: true });
  try {
    if (!(await waitListening(nsB, 'tcp', IPERF_PORT))) {
      throw new BenchError(`iperf3 server in ${nsB} did not start: ${server.output().trim()}`);
    }
    return await iperfClient(nsA, connectIp, seconds, streams);
  } finally {
    await stopProcess(server, 2_000);
  }
}

/**
 * Connection setup rate: how many short TCP connections per second a path
 * carries when a client opens them one after another, and how long each
 * handshake takes (bench/e2e/conn-rate.py does the work; a tight Python
 * loop over blocking sockets costs tens of µs per connection on loopback,
 * where a node client's event loop cost hundreds and hid the path).
 *
 *   startEchoServer(ns, port, lifeMs)           an echo server in a pod (every address)
 *   connRate(ns, host, port, count, deadlineMs) N sequential connections from `ns`
 *
 * One connection: connect(), send PAYLOAD (8 bytes), read until the 8
 * bytes come back, close. Setup time is connect() to connected (SYN out,
 * SYN-ACK in, ACK sent), in µs; the rate is the connections that completed
 * the whole cycle (echo verified) over the wall time of the loop, so it
 * includes the echo round trip and the close. The client is started once
 * (its start-up is outside the timed loop); a few warm-up connections are
 * not recorded. Bounded by the count, a deadline for the loop and 2 s per
 * connection; the server exits by itself after `lifeMs`.
 *
 * API: startEchoServer, connRate, ConnRate, CONN_PAYLOAD
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nsArgs, waitListening } from './netns.ts';
import { BenchError, run, startBackground, stopProcess } from './proc.ts';

/** The client and server. */
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'conn-rate.py');
const PYTHON = '/usr/bin/python3';

/** What every connection sends and expects back. */
export const CONN_PAYLOAD = 'tapestry';

/** One connection-rate figure. */
export interface ConnRate {
  /** Completed connections per second of loop wall time. */
  perSec: number;
  /** connect() to connected, µs. */
  p50Us: number;
  p99Us: number;
  /** Connections that completed (echo verified) and that failed or timed out. */
  count: number;
  fails: number;
}

/** Percentile of sorted samples (nearest rank). */
function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Starts the echo server in `ns` on `port` (exits by itself after `lifeMs`); returns its stop function. */
export async function startEchoServer(ns: string, port: number, lifeMs: number): Promise<() => Promise<void>> {
  const server = startBackground('ip', nsArgs(ns, PYTHON, [SCRIPT, 'server', String(port), String(lifeMs / 1000)]), { traffic: true });
  if (!(await waitListening(ns, 'tcp', port))) {
    await stopProcess(server, 1_000);
    throw new BenchError(`echo server in ${ns} did not start: ${server.output().trim()}`);
  }
  return async () => {
    await stopProcess(server, 1_000);
  };
}

/** `count` sequential connections from `ns` to host:port (after `warmup`), within `deadlineMs`. */
export async function connRate(ns: string, host: string, port: number, count: number, deadlineMs: number, warmup = 10): Promise<ConnRate> {
  const args = [SCRIPT, 'client', host, String(port), String(warmup), String(count), String(deadlineMs / 1000), CONN_PAYLOAD];
  const r = await run('ip', nsArgs(ns, PYTHON, args), { timeoutMs: deadlineMs + 15_000, traffic: true });
  if (r.timedOut) throw new BenchError(`connection-rate client to ${host}:${port} timed out`);
  let doc: { setup: number[]; done: number; fails: number; seconds: number };
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    throw new BenchError(`connection-rate client to ${host}:${port}: no result (exit ${r.code ?? r.signal}) ${r.stderr.trim().slice(-200)}`);
  }
  if (!doc.done) throw new BenchError(`no connection to ${host}:${port} completed (${doc.fails} failed)`);
  const s = doc.setup.sort((a, b) => a - b);
  return { perSec: doc.done / doc.seconds, p50Us: pct(s, 50), p99Us: pct(s, 99), count: doc.done, fails: doc.fails };
}

/**
 * A bounded UDP flood from a given source address of a namespace
 * (bench/e2e/udp-flood.py: one Python process, as fast as one core sends),
 * for the prefilter benchmark: the outside host floods a node from an
 * address inside a deny-listed CIDR while a TCP stream keeps running.
 *
 * API: udpFlood, FloodResult, FLOOD_SCRIPT
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nsArgs } from './netns.ts';
import { BenchError, run } from './proc.ts';

/** The flooder. */
export const FLOOD_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'udp-flood.py');
const PYTHON = '/usr/bin/python3';

/** What the flooder did. */
export interface FloodResult {
  sent: number;
  /** sendto() calls the local stack refused (ENOBUFS and the like). */
  errors: number;
  seconds: number;
}

/**
 * Floods dst:port from `src` (an address `ns` owns) with `size`-byte
 * datagrams for `seconds` or `maxCount` datagrams, whichever ends first.
 */
export async function udpFlood(ns: string, src: string, dst: string, port: number, seconds: number, maxCount: number, size = 64): Promise<FloodResult> {
  const args = [FLOOD_SCRIPT, src, dst, String(port), String(seconds), String(maxCount), String(size)];
  const r = await run('ip', nsArgs(ns, PYTHON, args), { timeoutMs: (seconds + 15) * 1000, traffic: true });
  if (r.timedOut) throw new BenchError(`UDP flood from ${src} timed out`);
  try {
    return JSON.parse(r.stdout) as FloodResult;
  } catch {
    throw new BenchError(`UDP flood from ${src}: no result (exit ${r.code ?? r.signal}) ${r.stderr.trim().slice(-200)}`);
  }
}

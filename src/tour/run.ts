/**
 * Commands for the tour, every one bounded in time and killable: the
 * traffic runs asynchronously (never spawnSync), so a SIGINT or SIGTERM
 * reaches the tour's handler at once, which stops whatever is in flight
 * and tears the cluster down.
 *
 * API:
 *   run(ns, cmd, args, timeoutMs?)  -> Promise<ShResult>   one command, in a namespace or not
 *   serve(ns, cmd, args)            -> ChildProcess        a background server, killed by killAll()
 *   killAll()                                              SIGKILL everything started here
 *   stopping() / markStopping(sig)                         has a signal asked us to stop?
 *   sleep(ms)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ShResult } from '../testbed/agent-process.ts';

const live = new Set<ChildProcess>();
let stopSignal: string | undefined;

/** The signal that asked the tour to stop, if any. */
export function stopping(): string | undefined {
  return stopSignal;
}

/** Remember that `sig` asked us to stop; later run() calls reject at once. */
export function markStopping(sig: string): void {
  stopSignal ??= sig;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// A server dies with the tour even if the tour is killed outright (SIGKILL).
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => existsSync(f));
const guard = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL'] : [];

const argv = (ns: string | null, cmd: string, args: readonly string[]): [string, string[]] =>
  ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, [...args]];

/** Run `cmd` (inside `ns` unless null); SIGKILLed after `timeoutMs`. Never rejects except when stopping. */
export function run(ns: string | null, cmd: string, args: readonly string[], timeoutMs = 15000): Promise<ShResult> {
  if (stopSignal) return Promise.reject(new Error(`stopped by ${stopSignal}`));
  const [file, list] = argv(ns, cmd, args);
  const c = spawn(file, list, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  live.add(c);
  let stdout = '';
  let stderr = '';
  c.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    c.on('error', (e) => (stderr += e.message));
    c.on('close', (status, signal) => {
      live.delete(c);
      if (stopSignal) reject(new Error(`stopped by ${stopSignal}`));
      else resolve({ status, stdout, stderr: signal === 'SIGKILL' && !stderr ? `killed after ${timeoutMs} ms` : stderr });
    });
  });
}

/** Start a background server inside `ns`; it runs until killAll(). */
export function serve(ns: string, cmd: string, args: readonly string[]): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', ns, ...guard, cmd, ...args], { stdio: 'ignore' });
  live.add(c);
  c.on('close', () => live.delete(c));
  return c;
}

/** SIGKILL every command and server still running. */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

/**
 * Child-process helpers for the end-to-end benchmark: run a command to
 * completion with a hard time limit, start a background server, stop it,
 * and abort all of it cleanly on a signal.
 *
 * API: run, runOk, startBackground, stopProcess, isRunning, sleep,
 *      BenchError, abortWork, isAborted, inCleanup, killPidfile, killMentioning
 *
 * Every command has a deadline: a stuck iperf3 or ovs-vsctl must not hang
 * the harness, and a traffic generator must never outlive its run.
 *
 * Abort protocol (SIGINT/SIGTERM): abortWork() marks the run aborted, kills
 * every traffic process (spawned with `traffic: true`) and waits for
 * in-flight set-up commands to finish. From then on run() and
 * startBackground() refuse to start anything, except inside inCleanup(), which
 * is how teardown steps run. So nothing new is created while, or after,
 * teardown deletes what exists.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

/** Result of a finished command. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options for run(). */
export interface RunOptions {
  /** Hard limit; the command gets SIGKILL after it. Default 30 s. */
  timeoutMs?: number;
  /** Text written to the command's stdin (then stdin is closed). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** A traffic generator or probe: killed at once on abort. */
  traffic?: boolean;
  /** Own process group, so a terminal Ctrl-C does not hit it (daemons starting up). */
  detached?: boolean;
}

/** An error whose message is meant for the user as is (no stack needed). */
export class BenchError extends Error {
  override name = 'BenchError';
}

/** Marks code running as a teardown step (allowed to spawn after an abort). */
const cleanupContext = new AsyncLocalStorage<true>();
/** Set once a signal asked the run to stop. */
let aborted = false;
/** Commands started by run() that have not finished yet. */
const inflight = new Set<Promise<unknown>>();
/** Traffic processes alive now (killed on abort). */
const traffic = new Set<ChildProcess>();

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True once abortWork() has been called. */
export function isAborted(): boolean {
  return aborted;
}

/** Runs `fn` as teardown: its commands still run after an abort. */
export function inCleanup<T>(fn: () => Promise<T>): Promise<T> {
  return cleanupContext.run(true, fn);
}

/** Throws if the run is aborted and the caller is not a teardown step. */
function refuseIfAborted(cmd: string): void {
  if (aborted && !cleanupContext.getStore()) throw new BenchError(`aborted: not starting ${cmd}`);
}

/** Stops new work, kills traffic processes, waits (up to `waitMs`) for in-flight commands. */
export async function abortWork(waitMs = 15_000): Promise<void> {
  aborted = true;
  for (const child of traffic) child.kill('SIGKILL');
  await Promise.race([Promise.allSettled([...inflight]), sleep(waitMs)]);
}

/** Runs `cmd args` to completion (or to its deadline) and collects its output; rejects only when aborted. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    refuseIfAborted(cmd);
  } catch (err) {
    return Promise.reject(err);
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const done = new Promise<RunResult>((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      detached: opts.detached ?? false,
    });
    if (opts.traffic) traffic.add(child);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      traffic.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    };
    child.on('error', (err) => {
      stderr += `${err.message}\n`;
      finish(127, null);
    });
    child.on('close', finish);
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
  inflight.add(done);
  void done.finally(() => inflight.delete(done));
  return done;
}

/** Like run(), but throws a BenchError naming the command when it does not exit 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 30_000} ms` : `exit ${r.code ?? r.signal}`;
    const detail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new BenchError(`${cmd} ${args.join(' ')}: ${why}${detail ? `: ${detail}` : ''}`);
  }
  return r.stdout;
}

/** A long-running child (a server) whose output is kept for diagnostics. */
export interface Background {
  child: ChildProcess;
  /** Everything it printed so far (last 32–64 KB), stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
}

/** Options for startBackground(). */
export interface BackgroundOptions {
  /** Own process group: a terminal Ctrl-C does not reach it. */
  detached?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for each complete output line. */
  onLine?: (line: string) => void;
  /** A traffic server: killed at once on abort. */
  traffic?: boolean;
}

/** Starts `cmd args` in the background; throws if the run is aborted. */
export function startBackground(cmd: string, args: readonly string[], opts: BackgroundOptions = {}): Background {
  refuseIfAborted(cmd);
  let out = '';
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
    cwd: opts.cwd,
    env: opts.env ?? process.env,
  });
  if (opts.traffic) traffic.add(child);
  // One line buffer per stream, so stdout and stderr lines never splice together.
  const taker = (): ((d: string) => void) => {
    let partial = '';
    return (d: string): void => {
      out += d;
      if (out.length > 64_000) out = out.slice(-32_000);
      if (!opts.onLine) return;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.onLine(line);
    };
  };
  child.stdout?.setEncoding('utf8').on('data', taker());
  child.stderr?.setEncoding('utf8').on('data', taker());
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      out += `${err.message}\n`;
      traffic.delete(child);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      traffic.delete(child);
      resolve(code ?? (signal ? 128 : null));
    });
  });
  return { child, output: () => out, exited };
}

/** True while the child has neither exited nor been reaped. */
export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` (default SIGTERM), waits up to `graceMs`, then SIGKILLs; true if it left in the grace time. */
export async function stopProcess(bg: Background, graceMs = 3_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<boolean> {
  if (!isRunning(bg.child)) return true;
  bg.child.kill(signal);
  const graceful = await Promise.race([bg.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!graceful && isRunning(bg.child)) {
    bg.child.kill('SIGKILL');
    await Promise.race([bg.exited, sleep(2_000)]);
  }
  return graceful;
}

/** True if a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, up to 3 s for it to go, then SIGKILL. */
async function terminate(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 30 && alive(pid); i++) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Stops the daemon whose pid is in `pidfile` (a pid file this run's daemon wrote). */
export async function killPidfile(pidfile: string): Promise<void> {
  const pid = Number((await readFile(pidfile, 'utf8').catch(() => '')).trim());
  if (pid > 1) await terminate(pid);
}

/**
 * Stops every process whose command line contains `marker`, which must be
 * a path unique to this run (e.g. its mkdtemp directory), so only daemons
 * this run started can match.
 */
export async function killMentioning(marker: string): Promise<void> {
  for (const name of await readdir('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) await terminate(pid);
  }
}

/** Runs `step`, logging and recording its error in `result.errors` instead of throwing; null when it failed. */
export async function attempt<T>(what: string, result: { errors: string[] }, log: (m: string) => void, step: () => Promise<T>): Promise<T | null> {
  try {
    return await step();
  } catch (err) {
    const msg = `${what}: ${(err as Error).message}`;
    result.errors.push(msg);
    log(`    ! ${msg}`);
    return null;
  }
}

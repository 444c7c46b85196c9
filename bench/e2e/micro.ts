/**
 * Micro-benchmarks: every `bench/*.bench.ts` (mitata), or the ones named
 * with --micro, run as its own child process, `node --import tsx FILE`,
 * output passed straight through to the terminal and kept for
 * BENCHMARKS.md. Colours are turned off (NO_COLOR) so the kept text is
 * plain.
 *
 * API: findMicroBenches, runMicroBenches, MicroResult
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cleanups } from './cleanup.ts';
import { BenchError } from './proc.ts';

/** Output of one micro-bench file. */
export interface MicroResult {
  file: string;
  code: number | null;
  seconds: number;
  output: string;
}

/** Hard limit for one micro-bench file. */
const MICRO_TIMEOUT_MS = 15 * 60_000;

/**
 * `bench/*.bench.ts` files, sorted (paths relative to the repo root); with
 * `only`, just those names (`policy` for bench/policy.bench.ts), and a
 * BenchError for a name that has no file.
 */
export async function findMicroBenches(repoRoot: string, only: string[] | null = null): Promise<string[]> {
  const names = await readdir(join(repoRoot, 'bench')).catch(() => [] as string[]);
  const all = names.filter((n) => n.endsWith('.bench.ts')).sort();
  if (!only) return all.map((n) => `bench/${n}`);
  const stems = all.map((n) => n.slice(0, -'.bench.ts'.length));
  const unknown = only.filter((m) => !stems.includes(m));
  if (unknown.length) throw new BenchError(`--micro: no bench/${unknown[0]}.bench.ts (there are: ${stems.join(', ')})`);
  return all.filter((_, i) => only.includes(stems[i]!)).map((n) => `bench/${n}`);
}

/** Strips ANSI escape sequences a bench may print despite NO_COLOR. */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '');
}

/** Our environment with colours off (FORCE_COLOR, even empty, would override NO_COLOR). */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.FORCE_COLOR;
  return env;
}

/** Runs one file, teeing its output to our stdout; never throws. */
function runOne(repoRoot: string, file: string, cleanups: Cleanups): Promise<MicroResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: plainEnv(),
    });
    const kill = cleanups.add(`micro-bench ${file}`, async () => {
      child.kill('SIGKILL');
    });
    const timer = setTimeout(() => {
      output += `\n(killed after ${MICRO_TIMEOUT_MS / 60_000} min)\n`;
      child.kill('SIGKILL');
    }, MICRO_TIMEOUT_MS);
    const tee = (to: NodeJS.WriteStream) => (d: Buffer): void => {
      to.write(d);
      output += d.toString('utf8');
    };
    child.stdout.on('data', tee(process.stdout));
    child.stderr.on('data', tee(process.stderr));
    child.on('error', (err) => (output += `${err.message}\n`));
    child.on('close', (code) => {
      clearTimeout(timer);
      void kill(); // already exited: this only drops the registered step
      resolve({ file, code, seconds: (Date.now() - t0) / 1000, output: plain(output) });
    });
  });
}

/** Runs every micro-bench file in turn. */
export async function runMicroBenches(
  repoRoot: string,
  files: string[],
  cleanups: Cleanups,
  log: (m: string) => void,
): Promise<MicroResult[]> {
  const results: MicroResult[] = [];
  for (const file of files) {
    log(`\n== micro: node --import tsx ${file}`);
    const r = await runOne(repoRoot, file, cleanups);
    log(`== micro: ${file} ${r.code === 0 ? 'done' : `FAILED (exit ${r.code})`} in ${r.seconds.toFixed(1)} s`);
    results.push(r);
  }
  return results;
}

/**
 * A real `tapestry agent` process for the tour, the end-to-end tests and the
 * benchmarks: writes its config, spawns it, waits until it is ready, runs
 * commands inside namespaces, talks to its API, and always cleans up —
 * SIGTERM first (the agent tears down what it made), then deletes any
 * namespace with the run's prefix that is left.
 *
 * API:
 *   runPrefix(tag)                        short unique prefix for names (≤ 15-char interfaces)
 *   sh(ns, cmd, args, opts)               run a command, in a namespace or not, bounded in time
 *   AgentProcess.start(prefix, config, timeoutMs?, { netns?, socket? })
 *                                         write config, spawn agent (inside `netns` through
 *                                         `ip netns exec`, which execs it: SIGTERM still
 *                                         reaches the agent), wait for "ready"
 *   a.api(method, path, body?)            call the agent API
 *   a.stop()                              SIGTERM, wait for the agent's own teardown
 *   a.stopAndSweep()                      stop, then delete leftover namespaces with the prefix
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { api } from '../cli/client.ts';

const ROOT = resolve(import.meta.dirname, '../..');
/** The CLI entry point tests run. */
export const TAPESTRY = join(ROOT, 'bin/tapestry');

/** A prefix unique to this run: tag + 4 digits of the pid + a counter. */
let seq = 0;
export function runPrefix(tag: string): string {
  return `${tag}${process.pid % 10000}${(seq++).toString(36)}`;
}

/** Result of a command. */
export interface ShResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command (optionally inside a namespace), bounded in time. */
export function sh(ns: string | null, cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): ShResult {
  const argv = ns ? ['netns', 'exec', ns, cmd, ...args] : [...args];
  const r = spawnSync(ns ? 'ip' : cmd, argv, { encoding: 'utf8', timeout: opts.timeoutMs ?? 20000, input: opts.input ?? '' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Namespaces whose name starts with `prefix`. */
export function netnsWithPrefix(prefix: string): string[] {
  const out = spawnSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }).stdout.trim();
  if (!out) return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name).filter((n) => n.startsWith(prefix));
}

/** A running agent. */
export class AgentProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  private exitCode: number | null = null;
  private exited: Promise<number | null>;

  private constructor(
    readonly prefix: string,
    readonly dir: string,
    readonly socket: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((res) => child.on('exit', (code) => res((this.exitCode = code))));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.stdout.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.stderr.push(d));
  }

  /**
   * Start an agent on `config` (an object written as YAML); resolves once it is ready.
   * `opts.netns` runs it inside that namespace; `opts.socket` is its API socket
   * (default: in the agent's own temp dir).
   */
  static async start(prefix: string, config: unknown, timeoutMs = 60000, opts: { netns?: string; socket?: string } = {}): Promise<AgentProcess> {
    const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    const cfgPath = join(dir, 'agent.yaml');
    writeFileSync(cfgPath, stringify(config));
    const socket = opts.socket ?? join(dir, 'tapestry.sock');
    const argv = ['--socket', socket, 'agent', '--config', cfgPath];
    const child = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, TAPESTRY, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(TAPESTRY, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = new AgentProcess(prefix, dir, socket, child);
    const deadline = Date.now() + timeoutMs;
    while (!h.stdout.join('').includes('tapestry agent ready')) {
      if (h.exitCode !== null) throw new Error(`agent exited with ${h.exitCode}: ${h.stderr.join('')}`);
      if (Date.now() > deadline) {
        await h.stopAndSweep();
        throw new Error(`agent not ready after ${timeoutMs} ms: ${h.stderr.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return h;
  }

  /** Run a command inside namespace `ns`. */
  sh(ns: string, cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): ShResult {
    return sh(ns, cmd, args, opts);
  }

  /** Call the agent's API. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return api<T>(method, path, body, this.socket);
  }

  /** Is the agent process still running? */
  get alive(): boolean {
    return this.exitCode === null;
  }

  /** Stop the agent (SIGTERM, then SIGKILL after 20 s); returns its exit code. */
  async stop(): Promise<number | null> {
    if (this.exitCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 20000);
      await this.exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
    return this.exitCode;
  }

  /** Stop, then delete every namespace with our prefix that is left (even if the agent crashed). */
  async stopAndSweep(): Promise<number | null> {
    const code = await this.stop();
    for (const ns of netnsWithPrefix(this.prefix)) spawnSync('ip', ['netns', 'del', ns]);
    return code;
  }
}

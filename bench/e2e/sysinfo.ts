/**
 * The machine a run happened on, stamped on every generated section:
 * date, kernel, CPU model and count, Node version, traffic tool versions.
 *
 * API: systemInfo, SystemInfo, systemLine
 */
import { cpus, release } from 'node:os';
import { run } from './proc.ts';

/** Facts about this run's machine. */
export interface SystemInfo {
  date: string;
  kernel: string;
  cpu: string;
  cores: number;
  node: string;
  tools: string;
}

/** First line of `cmd args` (stdout or stderr), or '?' when it fails. */
async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 5_000 });
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? '?';
}

/** Collects the machine facts (tool versions best-effort). */
export async function systemInfo(): Promise<SystemInfo> {
  const list = cpus();
  const iperf = (await firstLine('iperf3', ['--version'])).replace(/\s*\(.*$/, '');
  const sockperf = (await firstLine('sockperf', ['--version'])).replace(/^sockperf,\s*/, 'sockperf ');
  const ovs = (await firstLine('ovs-vswitchd', ['--version'])).replace(/^ovs-vswitchd\s*\(Open vSwitch\)\s*/, 'ovs ');
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    kernel: release(),
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    tools: [iperf, sockperf, ovs].join(', '),
  };
}

/** One-line stamp, e.g. `2025-01-01T00:00:00Z · kernel 6.1.0 · Intel ... × 2 · node v20.x`. */
export function systemLine(s: SystemInfo): string {
  return `${s.date} · kernel ${s.kernel} · ${s.cpu} × ${s.cores} cores · node ${s.node} · ${s.tools}`;
}

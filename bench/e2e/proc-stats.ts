/**
 * Memory and CPU of a process tree from /proc: VmRSS (now) and VmHWM
 * (peak), and user+system CPU time, of a pid plus all its descendants, so a
 * launcher script or helper child does not hide part of the agent.
 *
 * API: treeMemoryKb, treeCpuSeconds, descendants, ProcMemory
 */
import { readdir, readFile } from 'node:fs/promises';

/** Pids of every live descendant of `root` (children, grandchildren, ...). */
export async function descendants(root: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Field 4 (ppid) follows the parenthesised comm, which may itself hold spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest.length > 1) parentOf.set(Number(name), Number(rest[1]));
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const [pid, ppid] of parentOf) {
      if (ppid === p) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

/** One `Vm*: N kB` field of /proc/<pid>/status, 0 if the process is gone. */
async function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** One process's share of a tree's memory. */
export interface ProcMemory {
  pid: number;
  comm: string;
  rssKb: number;
}

/** Current (VmRSS) and peak (VmHWM) resident kB summed over `pid` and its descendants, with a per-process breakdown. */
export async function treeMemoryKb(pid: number): Promise<{ rssKb: number; hwmKb: number; procs: ProcMemory[] }> {
  const pids = [pid, ...(await descendants(pid))];
  let rssKb = 0;
  let hwmKb = 0;
  const procs: ProcMemory[] = [];
  for (const p of pids) {
    const rss = await statusKb(p, 'VmRSS');
    rssKb += rss;
    hwmKb += await statusKb(p, 'VmHWM');
    const comm = (await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '?')).trim();
    procs.push({ pid: p, comm, rssKb: rss });
  }
  return { rssKb, hwmKb, procs };
}

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on Linux x86 and arm64). */
const USER_HZ = 100;

/** User + system CPU seconds consumed so far by `pid`, its live descendants and the children they reaped. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of [pid, ...(await descendants(pid))]) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After comm, rest[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
    // cutime/cstime only cover reaped children, so adding them never double-counts a live one.
    for (const i of [11, 12, 13, 14]) ticks += Number(rest[i] ?? 0);
  }
  return ticks / USER_HZ;
}

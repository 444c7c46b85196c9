/**
 * iproute2 from the agent: namespaces and links are configured with the
 * same `ip` tool users and tests use (dependencies.md §2), `-batch` for
 * several commands at once, `-n NS` to act inside a namespace.
 *
 * API: ip(args, ns?), ipBatch(lines, ns?), netnsList(), netnsAdd(ns), netnsDel(ns),
 *      linkExists(name, ns?), netnsSysctl(ns, settings)
 *
 * Errors carry the command line and ip's own message; a missing `ip` binary
 * gets one line saying which Debian package to install.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** An `ip` command failed. */
export class IpError extends Error {
  override name = 'IpError';
}

/** Run `ip [-n ns] args…`; resolves to stdout. */
export async function ip(args: readonly string[], ns?: string): Promise<string> {
  const argv = ns ? ['-n', ns, ...args] : [...args];
  try {
    const { stdout } = await run('ip', argv, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new IpError('`ip` not found: install the Debian package iproute2 (apt-get install iproute2)');
    throw new IpError(`ip ${argv.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** Run several `ip` commands in one process (`ip -batch -`). */
export async function ipBatch(lines: readonly string[], ns?: string): Promise<void> {
  if (lines.length === 0) return;
  const argv = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', argv, (e, _out, stderr) => {
      if (e) reject(new IpError(`ip ${argv.join(' ')}: ${(stderr || e.message).trim()}\n  commands:\n    ${lines.join('\n    ')}`));
      else resolve();
    });
    child.stdin!.end(lines.join('\n') + '\n');
  });
}

/** Names of the existing network namespaces. */
export async function netnsList(): Promise<string[]> {
  const out = await ip(['-j', 'netns', 'list']);
  if (!out.trim()) return [];
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

/** Create a namespace. */
export async function netnsAdd(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
}

/** Delete a namespace (its links go with it). */
export async function netnsDel(ns: string): Promise<void> {
  await ip(['netns', 'del', ns]);
}

/** Does a link exist (in `ns`, or the current namespace)? */
export async function linkExists(name: string, ns?: string): Promise<boolean> {
  try {
    await ip(['link', 'show', 'dev', name], ns);
    return true;
  } catch {
    return false;
  }
}

/** Set sysctls inside a namespace (`ip netns exec NS sysctl -qw k=v …`). */
export async function netnsSysctl(ns: string, settings: Record<string, string>): Promise<void> {
  await ip(['netns', 'exec', ns, 'sysctl', '-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/**
 * Helpers the end-to-end tests share: background processes in a
 * namespace, polling, and tcpdump captures that are known to be listening.
 *
 * API: bg(children, ns, cmd, args), waitFor(what, ok, ms?), capture(ns, iface, file, filter, extra?)
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Start a background process in a namespace; the caller kills `children` in after(). */
export function bg(children: ChildProcess[], ns: string, cmd: string, args: string[]): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'ignore' });
  children.push(c);
  return c;
}

/** Poll `ok` every 100 ms until it holds; throws after `ms`. */
export async function waitFor(what: string, ok: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** tcpdump into `file` inside `ns` (at most 60 s), resolved once it is listening; stop() ends it and waits. */
export async function capture(ns: string, iface: string, file: string, filter: string, extra: string[] = []): Promise<{ stop(): Promise<void> }> {
  const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '60', 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', iface, ...extra, '-U', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcpdump on ${iface} did not start: ${err}`)), 10000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', () => {
      clearTimeout(t);
      reject(new Error(`tcpdump exited: ${err}`));
    });
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      if (p.exitCode === null) {
        p.kill('SIGINT');
        await new Promise((r) => p.once('exit', r));
      }
    },
  };
}

/**
 * CLI: `tapestry capture --hook H [--hook H …] [--endpoint ID]
 * [--filter 'host A and port N'] [--count N] [--duration S] -w FILE`:
 * frames seen at datapath hooks, written as pcapng (one interface per hook,
 * a verdict comment per frame) for tcpdump, tshark or Wireshark. Stops at
 * the count, after the duration, or on Ctrl-C, and always ends the session.
 *
 * API: registerCaptureCommands(program, ctx)
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { api, ApiError } from './client.ts';
import { PcapngWriter } from '../datapath/lib/pcapng.ts';
import { HOOKS, parseFilter } from '../datapath/capture.ts';
import type { CaptureReadJson } from '../agent/capture-routes.ts';

interface Ctx {
  sock: () => string | undefined;
}

interface Opts {
  hook: string[];
  endpoint?: string;
  filter?: string;
  count: string;
  duration?: string;
  write: string;
}

const POLL_MS = 200;

/** Integer option in [min, max], or a one-line error. */
function intOpt(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new ApiError(`--${name} ${v}: expected an integer ${min}..${max}`);
  return n;
}

export function registerCaptureCommands(program: Command, ctx: Ctx): void {
  program
    .command('capture')
    .description('capture frames at datapath hooks into a pcapng file')
    .requiredOption('--hook <hook>', `hook to capture at, repeatable (${HOOKS.join(', ')})`, (v: string, acc: string[]) => [...acc, v], [])
    .option('--endpoint <id>', 'only frames of this endpoint')
    .option('--filter <expr>', "'host A', 'port N' or 'host A and port N'")
    .option('--count <n>', 'stop after this many frames', '1000')
    .option('--duration <s>', 'stop after this many seconds')
    .requiredOption('-w, --write <file>', 'pcapng file to write')
    .action(async (o: Opts) => {
      for (const h of o.hook) if (!(HOOKS as readonly string[]).includes(h)) throw new ApiError(`--hook ${h}: expected one of ${HOOKS.join(', ')}`);
      if (o.filter !== undefined) {
        try {
          parseFilter(o.filter);
        } catch (e) {
          throw new ApiError(`--filter: ${(e as Error).message}`);
        }
      }
      const count = intOpt('count', o.count, 1, 1_000_000);
      const durationMs = o.duration !== undefined ? intOpt('duration', o.duration, 1, 86400) * 1000 : Infinity;
      const body = { hooks: [...new Set(o.hook)], count, ...(o.endpoint !== undefined ? { endpoint: intOpt('endpoint', o.endpoint, 1, 0xffff) } : {}), ...(o.filter !== undefined ? { filter: o.filter } : {}) };
      const { id } = await api<{ id: number }>('POST', '/v1/capture', body, ctx.sock());

      const w = new PcapngWriter();
      const ifaces = new Map<string, number>();
      for (const h of body.hooks) ifaces.set(h, w.addInterface(h));
      let n = 0;
      let lost = 0;
      let interrupted = false;
      const onSigint = (): void => {
        interrupted = true;
      };
      process.once('SIGINT', onSigint);
      const deadline = Date.now() + durationMs;
      try {
        for (;;) {
          const r = await api<CaptureReadJson>('GET', `/v1/capture/${id}`, undefined, ctx.sock());
          for (const rec of r.records) {
            w.addPacket(ifaces.get(rec.hook)!, rec.tsUs, Buffer.from(rec.data, 'base64'), rec.comment);
            n++;
          }
          lost = r.lost;
          if (r.done || interrupted || Date.now() >= deadline) break;
          await new Promise((res) => setTimeout(res, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
        }
      } finally {
        process.removeListener('SIGINT', onSigint);
        await api('DELETE', `/v1/capture/${id}`, undefined, ctx.sock()).catch(() => undefined);
        writeFileSync(o.write, w.bytes());
      }
      process.stderr.write(`${n} packets captured${lost > 0 ? `, ${lost} lost (buffer full)` : ''}\n`);
    });
}

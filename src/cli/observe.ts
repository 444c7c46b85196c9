/**
 * CLI: `tapestry observe`, the agent's flows as `hubble observe` shows them:
 * compact lines by default, `-o json` one Hubble envelope
 * (`{"flow":{…},"node_name":…,"time":…}`) per line. Filters run in the
 * agent (`GET /v1/flows?pod=…&verdict=…`); `--follow` polls for new flows.
 *
 * API: registerObserveCommand(program, ctx), observeQuery(options)
 */
import { Option, type Command } from 'commander';
import { api } from './client.ts';
import { formatFlowCompact, type FlowEnvelope } from '../agent/flows.ts';

interface Ctx {
  sock: () => string | undefined;
  print: (json: boolean, value: unknown, text: () => string) => void;
  output: () => Option;
}

interface ObserveOptions {
  pod?: string;
  fromPod?: string;
  toPod?: string;
  verdict?: string;
  protocol?: string;
  port?: string;
  ip?: string;
  last?: string;
  follow?: boolean;
  duration?: string;
  output?: string;
}

interface FlowsJson { flows: FlowEnvelope[]; next: number; lost: number }

/** Hubble shows this many flows when neither --last nor --follow is given. */
const DEFAULT_LAST = 20;

/** The API query string for the filters. */
export function observeQuery(o: ObserveOptions): URLSearchParams {
  const q = new URLSearchParams();
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) q.set(k, v);
  };
  set('pod', o.pod);
  set('from_pod', o.fromPod);
  set('to_pod', o.toPod);
  set('verdict', o.verdict?.toUpperCase());
  set('protocol', o.protocol?.toLowerCase());
  set('port', o.port);
  set('ip', o.ip);
  return q;
}

export function registerObserveCommand(program: Command, ctx: Ctx): void {
  const { sock } = ctx;
  program
    .command('observe')
    .description('flows through the datapath, as Hubble shows them (FORWARDED ones while someone observes)')
    .option('--pod <[ns/]pod>', 'flows from or to this pod')
    .option('--from-pod <[ns/]pod>', 'flows from this pod')
    .option('--to-pod <[ns/]pod>', 'flows to this pod')
    .addOption(new Option('--verdict <verdict>', 'only this verdict').choices(['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR', 'TRACED', 'TRANSLATED']))
    .addOption(new Option('--protocol <proto>', 'only this L4 protocol').choices(['tcp', 'udp', 'icmp']))
    .option('--port <port>', 'source or destination port')
    .option('--ip <address>', 'source or destination address')
    .option('--last <n>', `the last N matching flows (default ${DEFAULT_LAST} unless --follow)`)
    .option('-f, --follow', 'keep printing new flows (Ctrl-C stops)')
    .option('--duration <seconds>', 'with --follow: stop after this long')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'compact']))
    .action(async (o: ObserveOptions) => {
      const json = o.output === 'json';
      const q = observeQuery(o);
      const show = (r: FlowsJson) => {
        for (const e of r.flows) process.stdout.write(json ? `${JSON.stringify(e)}\n` : `${formatFlowCompact(e.flow)}\n`);
      };
      const last = o.last ?? (o.follow ? undefined : String(DEFAULT_LAST));
      const first = new URLSearchParams(q);
      if (last !== undefined) first.set('last', last);
      else first.set('since', String(Number.MAX_SAFE_INTEGER));
      let r = await api<FlowsJson>('GET', `/v1/flows?${first}`, undefined, sock());
      show(r);
      if (!o.follow) return;
      const end = o.duration !== undefined ? Date.now() + Number(o.duration) * 1000 : Infinity;
      while (Date.now() < end) {
        await new Promise((res) => setTimeout(res, 200));
        const next = new URLSearchParams(q);
        next.set('since', String(r.next));
        r = await api<FlowsJson>('GET', `/v1/flows?${next}`, undefined, sock());
        show(r);
      }
    });
}

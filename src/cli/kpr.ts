/**
 * Kube-proxy replacement in the CLI: the `status` rows about north-south
 * load balancing (Cilium's "KubeProxyReplacement" line and its verbose
 * "KubeProxyReplacement Details" block) and `tapestry prefilter
 * list|update|delete` (Cilium's `cilium prefilter`).
 *
 * API: kprLines(status), kprDetails(status), registerPrefilterCommands(program, ctx)
 */
import type { Command, Option } from 'commander';
import { api } from './client.ts';

/** `kubeProxyReplacement` of GET /v1/status. */
export interface KprJson {
  mode: 'snat' | 'dsr' | 'hybrid';
  dsrDispatch: 'opt' | 'geneve';
  acceleration: 'disabled' | 'native';
  algorithm: 'random' | 'maglev';
  nodePortRange: [number, number];
  devices: string[];
  nodePortAddresses: string[];
  announced: string[];
  datapath: {
    counts: Record<string, number>;
    prefilter: { hits: number; entries: number; revision: number };
    xdp: { aborted: number; drop: number; pass: number; tx: number; redirect: number } | null;
  } | null;
}

const MODE = { snat: 'SNAT', dsr: 'DSR', hybrid: 'Hybrid' } as const;

/** The one-line summary: `True [eth0 10.99.0.11] (mode SNAT, XDP Disabled)`. */
export function kprLines(k: KprJson | undefined): [string, string][] {
  if (!k) return [];
  const dev = k.devices.length > 0 ? `[${k.devices.join(', ')} ${k.nodePortAddresses.at(-1) ?? ''}]` : '[no uplink]';
  return [['KubeProxyReplacement', `True   ${dev}   mode ${MODE[k.mode]}, XDP acceleration ${k.acceleration === 'native' ? 'Native' : 'Disabled'}`]];
}

/** `status --verbose`: Cilium's details block plus the datapath counters behind it. */
export function kprDetails(k: KprJson | undefined): string {
  if (!k) return '';
  const d = k.datapath;
  const rows: [string, string][] = [
    ['Status', 'True'],
    ['Socket LB', 'Disabled'],
    ['Protocols', 'TCP, UDP'],
    ['Devices', k.devices.length > 0 ? `${k.devices.join(', ')}   ${k.nodePortAddresses.join(', ')}` : 'none'],
    ['Mode', MODE[k.mode]],
    ...(k.mode !== 'snat' ? [['DSR Dispatch Mode', k.dsrDispatch === 'geneve' ? 'Geneve' : 'IP Option/Extension'] as [string, string]] : []),
    ['Backend Selection', k.algorithm === 'maglev' ? 'Maglev' : 'Random'],
    ['Session Affinity', 'Enabled'],
    ['Graceful Termination', 'Enabled'],
    ['NAT46/64 Support', 'Disabled'],
    ['XDP Acceleration', k.acceleration === 'native' ? 'Native' : 'Disabled'],
    ['L2 Announcements', k.announced.length > 0 ? k.announced.join(', ') : 'none from this node'],
  ];
  let out = `KubeProxyReplacement Details:\n${rows.map(([a, b]) => `  ${`${a}:`.padEnd(24)}${b}`).join('\n')}`;
  out += `\n  Services:\n  - ClusterIP:      Enabled\n  - NodePort:       Enabled (Range: ${k.nodePortRange[0]}-${k.nodePortRange[1]})\n  - LoadBalancer:   Enabled\n  - externalIPs:    Enabled\n  - HostPort:       Disabled`;
  if (d) {
    const c = d.counts;
    out += `\n  NodePort packets: local ${c.local ?? 0}, SNAT ${c.snat ?? 0} (replies ${c.rev ?? 0}), DSR ${c.dsr ?? 0}; as a DSR backend: ${c.dsrIngress ?? 0} in, ${c.dsrReply ?? 0} replies`;
    if (d.xdp) out += `\n  XDP verdicts:    pass ${d.xdp.pass}, drop ${d.xdp.drop}, tx ${d.xdp.tx}, redirect ${d.xdp.redirect}, aborted ${d.xdp.aborted}`;
    out += `\n  Prefilter:       ${d.prefilter.entries} prefixes (revision ${d.prefilter.revision}), ${d.prefilter.hits} frames dropped`;
  }
  return out;
}

interface Ctx {
  sock: () => string | undefined;
  print: (json: boolean, value: unknown, text: () => string) => void;
  output: () => Option;
}

/** `tapestry prefilter list|update|delete`. */
export function registerPrefilterCommands(program: Command, ctx: Ctx): void {
  const pf = program.command('prefilter').description("the uplink's XDP prefilter: source CIDRs dropped before anything else");
  pf.command('list')
    .description('the deny-listed CIDRs and the revision')
    .addOption(ctx.output())
    .action(async (o: { output?: string }) => {
      const r = await api<{ revision: number; cidrs: string[] }>('GET', '/v1/prefilter', undefined, ctx.sock());
      ctx.print(o.output === 'json', r, () => `Revision: ${r.revision}\n${r.cidrs.join('\n')}`.trimEnd());
    });
  const change = (name: 'update' | 'delete', method: 'PATCH' | 'DELETE', what: string) =>
    pf.command(name)
      .description(what)
      .requiredOption('--cidr <cidr...>', 'IPv4 CIDRs (a.b.c.d/len)')
      .option('--revision <n>', 'refuse unless the prefilter is still at this revision', (v) => Number(v))
      .action(async (o: { cidr: string[]; revision?: number }) => {
        const r = await api<{ revision: number }>(method, '/v1/prefilter', { cidrs: o.cidr, ...(o.revision !== undefined ? { revision: o.revision } : {}) }, ctx.sock());
        process.stdout.write(`Revision: ${r.revision}\n`);
      });
  change('update', 'PATCH', 'add CIDRs to the deny list');
  change('delete', 'DELETE', 'remove CIDRs from the deny list');
}

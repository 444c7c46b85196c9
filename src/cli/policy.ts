/**
 * CLI: network policy, identities and the monitor — `tapestry policy
 * import|get|delete|trace`, `identity list|get`, `bpf policy get`,
 * `monitor [--type drop|trace|policy-verdict|debug]`.
 *
 * API: registerPolicyCommands(program, bpf, ctx)
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { api } from './client.ts';
import { formatTable } from './table.ts';

interface Ctx {
  sock: () => string | undefined;
  print: (json: boolean, value: unknown, text: () => string) => void;
  output: () => Option;
}

interface PolicyJson { id: string; kind: string; name: string; namespace: string; rules: unknown[] }
interface TraceJson { verdict: string; lines: string[] }
interface IdentityJson { identity: number; kind: string; labels: string[] }
interface MapRow { identity: number; direction: string; proto: number; portRange: string; deny: boolean; packets: number; bytes: number }
interface MapDump { name: string; ingress: boolean; egress: boolean; rows: MapRow[] }
interface MonitorJson { events: { line: string; type: string; source: number; dstEndpoint?: number }[]; next: number; lost: number }

const PROTO: Record<number, string> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

/** "NS:POD", an endpoint ID or name, "identity:N", or "k=v,k=v" labels. */
function peerArg(s: string): unknown {
  const m = /^identity:(\d+)$/.exec(s);
  if (m) return Number(m[1]);
  if (/^[^:=]+=[^,]*(,[^:=]+=[^,]*)*$/.test(s)) return Object.fromEntries(s.split(',').map((kv) => kv.split('=') as [string, string]));
  return s;
}

export function registerPolicyCommands(program: Command, bpf: Command, ctx: Ctx): void {
  const { sock, print, output } = ctx;
  const policy = program.command('policy').description('network policies (CiliumNetworkPolicy, NetworkPolicy)');
  policy
    .command('import <file>')
    .description('import policies from a YAML/JSON file (several documents allowed); applied at once')
    .action(async (file: string) => {
      const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
      const r = await api<PolicyJson[]>('PUT', '/v1/policy', { text }, sock());
      for (const p of r) process.stdout.write(`imported ${p.id}\n`);
    });
  policy
    .command('get [name]')
    .description('show the policies (or one)')
    .addOption(output())
    .action(async (name: string | undefined, o: { output?: string }) => {
      const r = name ? [await api<PolicyJson>('GET', `/v1/policy/${encodeURIComponent(name)}`, undefined, sock())] : await api<PolicyJson[]>('GET', '/v1/policy', undefined, sock());
      print(o.output === 'json', name ? r[0] : r, () => (r.length === 0 ? 'No policies' : formatTable([['POLICY', 'KIND', 'NAMESPACE', 'RULES'], ...r.map((p) => [p.name, p.kind, p.namespace, String(p.rules.length)])])));
    });
  policy
    .command('delete <name>')
    .description('delete a policy (name or namespace/name)')
    .action(async (name: string) => {
      const p = await api<PolicyJson>('DELETE', `/v1/policy/${encodeURIComponent(name)}`, undefined, sock());
      process.stdout.write(`deleted ${p.id}\n`);
    });
  policy
    .command('trace')
    .description('explain whether traffic would be allowed, rule by rule')
    .option('--src-k8s-pod <ns:pod>', 'source pod (NAMESPACE:POD)')
    .option('--src <peer>', 'source: endpoint ID or name, identity:N, or labels k=v,k=v')
    .option('--dst-k8s-pod <ns:pod>', 'destination pod (NAMESPACE:POD)')
    .option('--dst <peer>', 'destination: endpoint ID or name, or labels k=v,k=v')
    .option('--dport <port>', 'destination port (ICMP: type)', '0')
    .option('--protocol <proto>', 'TCP, UDP, SCTP, ICMP, ICMPv6', 'TCP')
    .addOption(output())
    .action(async (o: { srcK8sPod?: string; src?: string; dstK8sPod?: string; dst?: string; dport: string; protocol: string; output?: string }) => {
      const from = o.srcK8sPod ?? (o.src !== undefined ? peerArg(o.src) : undefined);
      const to = o.dstK8sPod ?? (o.dst !== undefined ? peerArg(o.dst) : undefined);
      if (from === undefined || to === undefined) throw new Error('policy trace: give a source (--src-k8s-pod or --src) and a destination (--dst-k8s-pod or --dst)');
      const r = await api<TraceJson>('POST', '/v1/policy/trace', { from, to, dport: Number(o.dport), proto: o.protocol }, sock());
      print(o.output === 'json', r, () => r.lines.join('\n'));
    });

  const identity = program.command('identity').description('security identities');
  identity
    .command('list')
    .addOption(output())
    .action(async (o: { output?: string }) => {
      const r = await api<IdentityJson[]>('GET', '/v1/identity', undefined, sock());
      print(o.output === 'json', r, () => formatTable([['ID', 'LABELS'], ...r.flatMap((i) => i.labels.map((l, k) => [k === 0 ? String(i.identity) : '', l]))]));
    });
  identity
    .command('get <id>')
    .addOption(output())
    .action(async (id: string, o: { output?: string }) => {
      const i = await api<IdentityJson>('GET', `/v1/identity/${encodeURIComponent(id)}`, undefined, sock());
      print(o.output === 'json', i, () => formatTable([['ID', 'LABELS'], ...i.labels.map((l, k) => [k === 0 ? String(i.identity) : '', l])]));
    });

  bpf
    .command('policy')
    .description("an endpoint's policy map (cilium_policy_<ID>)")
    .command('get <endpoint>')
    .addOption(output())
    .action(async (ep: string, o: { output?: string }) => {
      const d = await api<MapDump>('GET', `/v1/policy/map/${encodeURIComponent(ep)}`, undefined, sock());
      print(o.output === 'json', d, () =>
        `${d.name}  ingress ${d.ingress ? 'enforced' : 'not enforced'}, egress ${d.egress ? 'enforced' : 'not enforced'}\n` +
        formatTable([['POLICY', 'DIRECTION', 'IDENTITY', 'PORT/PROTO', 'PACKETS', 'BYTES'], ...d.rows.map((r) => [r.deny ? 'Deny' : 'Allow', r.direction === 'egress' ? 'Egress' : 'Ingress', r.identity === 0 ? 'ANY' : String(r.identity), r.proto === 0 ? 'ANY' : `${r.portRange}/${PROTO[r.proto] ?? r.proto}`, String(r.packets), String(r.bytes)])]),
      );
    });

  program
    .command('monitor')
    .description('datapath events as they happen: drops, traces, policy verdicts (Ctrl-C stops)')
    .addOption(new Option('--type <type...>', 'only these event types').choices(['drop', 'trace', 'policy-verdict', 'debug']))
    .option('--from-endpoint <id>', 'only events of this source endpoint')
    .option('--related-to <id>', 'only events from or to this endpoint')
    .option('-n, --numeric', 'identities as numbers')
    .option('--duration <seconds>', 'stop after this long (default: until interrupted)')
    .option('--since-start', 'replay the events still in the ring first')
    .addOption(output())
    .action(async (o: { type?: string[]; fromEndpoint?: string; relatedTo?: string; numeric?: boolean; duration?: string; sinceStart?: boolean; output?: string }) => {
      // Debug messages only when asked for (Cilium's monitor shows them with -v).
      const types = new Set(o.type ?? ['drop', 'trace', 'policy-verdict']);
      const trace = types.has('trace') ? '&trace=1' : '';
      const debug = types.has('debug') ? '&debug=1' : '';
      const q = `${trace}${debug}${o.numeric ? '&numeric=1' : ''}`;
      const end = o.duration ? Date.now() + Number(o.duration) * 1000 : Infinity;
      let since = o.sinceStart ? 0 : (await api<MonitorJson>('GET', `/v1/monitor?since=${Number.MAX_SAFE_INTEGER}${q}`, undefined, sock())).next;
      if (o.output !== 'json') process.stdout.write('Listening for events... Press Ctrl-C to quit\n');
      while (Date.now() < end) {
        const r = await api<MonitorJson>('GET', `/v1/monitor?since=${since}${q}`, undefined, sock());
        if (r.lost > 0 && o.output !== 'json') process.stdout.write(`CPU 00: Lost ${r.lost} events\n`);
        for (const e of r.events) {
          if (!types.has(e.type)) continue;
          if (o.fromEndpoint !== undefined && String(e.source) !== o.fromEndpoint) continue;
          if (o.relatedTo !== undefined && String(e.source) !== o.relatedTo && String(e.dstEndpoint ?? '') !== o.relatedTo) continue;
          process.stdout.write(o.output === 'json' ? `${JSON.stringify(e)}\n` : `${e.line}\n`);
        }
        since = r.next;
        if (r.events.length === 0) await new Promise((res) => setTimeout(res, 200));
      }
    });
}

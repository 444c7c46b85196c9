/**
 * `tapestry`: the command line, shaped like Cilium's (`status`,
 * `endpoint list`, `bpf metrics list` …). Every list command takes `-o json`.
 * Errors print one line and exit non-zero.
 */
import { Command, Option } from 'commander';
import { api, ApiError } from './client.ts';
import { formatEndpointList, formatMetricsList, formatStatus, type CountersJson, type EndpointJson, type StatusJson } from './format.ts';
import { VERSION } from '../agent/defaults.ts';
import { formatCtEntry, type CtDumpEntry } from '../datapath/lib/conntrack-dump.ts';

const program = new Command('tapestry').description("Cilium's datapath as a userspace forwarder").version(VERSION);
program.option('--socket <path>', 'agent API socket (default $TAPESTRY_SOCKET or /var/run/tapestry/tapestry.sock)');

const output = () => new Option('-o, --output <format>', 'output format').choices(['json']);
const sock = (): string | undefined => program.opts<{ socket?: string }>().socket;
const print = (json: boolean, value: unknown, text: () => string): void => {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
};

program
  .command('agent')
  .description('run the agent for one node')
  .requiredOption('--config <file>', 'agent configuration (YAML)')
  .action(async (o: { config: string }) => {
    const { runAgent } = await import('../agent/agent.ts');
    const s = sock();
    await runAgent({ config: o.config, ...(s ? { socket: s } : {}) });
  });

program
  .command('status')
  .description('agent and datapath status')
  .option('--verbose', 'per-device counters and the drop table')
  .addOption(output())
  .action(async (o: { verbose?: boolean; output?: string }) => {
    const s = await api<StatusJson>('GET', '/v1/status', undefined, sock());
    print(o.output === 'json', s, () => formatStatus(s, !!o.verbose));
  });

const endpoint = program.command('endpoint').description('manage endpoints (pods)');
endpoint
  .command('list')
  .description('list endpoints')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const eps = await api<EndpointJson[]>('GET', '/v1/endpoint', undefined, sock());
    print(o.output === 'json', eps, () => formatEndpointList(eps));
  });
endpoint
  .command('get <id>')
  .description('show one endpoint (ID or name)')
  .action(async (id: string) => {
    print(true, await api('GET', `/v1/endpoint/${encodeURIComponent(id)}`, undefined, sock()), () => '');
  });
endpoint
  .command('add')
  .description('create an endpoint: a TAP as eth0 in a network namespace (CNI ADD)')
  .requiredOption('--name <name>', 'endpoint name')
  .requiredOption('--netns <netns>', 'network namespace (created if missing)')
  .option('--label <k=v...>', 'labels', [])
  .option('--ipv4 <ip>', 'IPv4 address (default: allocated)')
  .option('--ipv6 <ip>', 'IPv6 address (default: allocated)')
  .action(async (o: { name: string; netns: string; label: string[]; ipv4?: string; ipv6?: string }) => {
    const labels: Record<string, string> = {};
    for (const l of o.label) {
      const i = l.indexOf('=');
      if (i <= 0) throw new ApiError(`--label ${l}: expected key=value`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const ep = await api('PUT', '/v1/endpoint', { name: o.name, netns: o.netns, labels, ...(o.ipv4 ? { ipv4: o.ipv4 } : {}), ...(o.ipv6 ? { ipv6: o.ipv6 } : {}) }, sock());
    print(true, ep, () => '');
  });
endpoint
  .command('delete <id>')
  .description('delete an endpoint (ID or name) (CNI DEL)')
  .action(async (id: string) => {
    const ep = await api<EndpointJson>('DELETE', `/v1/endpoint/${encodeURIComponent(id)}`, undefined, sock());
    process.stdout.write(`Endpoint ${ep.id} (${ep.name}) deleted\n`);
  });

const bpf = program.command('bpf').description('inspect datapath maps');
bpf
  .command('metrics')
  .description('datapath counters')
  .command('list')
  .description('forwards and drops by reason and direction')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const m = await api<CountersJson>('GET', '/v1/metrics/datapath', undefined, sock());
    print(o.output === 'json', m, () => formatMetricsList(m));
  });
bpf
  .command('endpoint')
  .description('local endpoint map (cilium_lxc)')
  .command('list')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const eps = await api<(EndpointJson & { mac: string; hostMac: string; interface: { ifindex: number } })[]>('GET', '/v1/endpoint', undefined, sock());
    const rows = eps.flatMap((e) =>
      [e.ipv4, e.ipv6].filter((x): x is string => !!x).map((ip) => ({ ip, id: e.id, ifindex: e.interface.ifindex, mac: e.mac, nodeMac: e.hostMac })),
    );
    print(o.output === 'json', rows, () =>
      [`${'IP ADDRESS'.padEnd(24)}LOCAL ENDPOINT INFO`, ...rows.map((r) => `${r.ip.padEnd(24)}id=${r.id} sec_id=${eps.find((e) => e.id === r.id)!.identity} flags=0x0000 ifindex=${r.ifindex} mac=${r.mac.toUpperCase()} nodemac=${r.nodeMac.toUpperCase()}`)].join('\n'),
    );
  });

const ctCmd = bpf.command('ct').description('connection tracking tables');
ctCmd
  .command('list <map>')
  .description('list conntrack entries (map: global)')
  .addOption(output())
  .action(async (map: string, o: { output?: string }) => {
    if (map !== 'global') throw new ApiError(`map: "${map}" is not a conntrack map (use: global)`);
    const entries = await api<CtDumpEntry[]>('GET', '/v1/ct', undefined, sock());
    print(o.output === 'json', entries, () => entries.map(formatCtEntry).join('\n'));
  });
ctCmd
  .command('flush <map>')
  .description('delete every conntrack entry (map: global)')
  .action(async (map: string) => {
    if (map !== 'global') throw new ApiError(`map: "${map}" is not a conntrack map (use: global)`);
    const r = await api<{ deleted: number }>('DELETE', '/v1/ct', undefined, sock());
    process.stdout.write(`Flushed ${r.deleted} entries from the conntrack tables\n`);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`Error: ${e.message}\n`);
  process.exit(e.name === 'ConfigError' || e.name === 'FatalError' ? 2 : 1);
});

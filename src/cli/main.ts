/**
 * `tapestry`: the command line, shaped like Cilium's (`status`,
 * `endpoint list`, `bpf metrics list`, `bpf ipcache list` …). Every list command takes `-o json`.
 * Errors print one line and exit non-zero.
 */
import { Command, Option } from 'commander';
import { api, ApiError } from './client.ts';
import {
  formatEndpointList,
  formatIpcacheList,
  formatMetricsList,
  formatNatList,
  formatNeighList,
  formatStatus,
  formatTunnelList,
  type CountersJson,
  type EndpointJson,
  type NeighRowJson,
  type StatusJson,
  type TunnelRowJson,
} from './format.ts';
import { VERSION } from '../agent/defaults.ts';
import { formatCtEntry, type CtDumpEntry } from '../datapath/lib/conntrack-dump.ts';
import { formatLbList, type LbRow } from '../datapath/lib/lb-dump.ts';
import type { IpcacheRow } from '../datapath/lib/ipcache.ts';
import type { NatDumpEntry } from '../datapath/lib/nat-dump.ts';
import { formatTable } from './table.ts';
import { registerPolicyCommands } from './policy.ts';
import { registerMetricsCommands } from './metrics.ts';
import { registerObserveCommand } from './observe.ts';
import { registerCaptureCommands } from './capture.ts';
import { registerPrefilterCommands } from './kpr.ts';

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
  .option('--verbose', 'per-device counters, remote nodes and the drop table')
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
  .option('--label <label...>', 'labels as key=value', [])
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

interface ServiceJson {
  name: string;
  frontends: { revNat: number; address: string; port: number; protocol: string; type: string; backends: { ip: string; port: number; state: string; weight: number }[] }[];
}

const service = program.command('service').description('manage services (load balancing)');
service
  .command('list')
  .description("list services (cilium service list's columns)")
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const svcs = await api<ServiceJson[]>('GET', '/v1/service', undefined, sock());
    print(o.output === 'json', svcs, () => {
      const rows = [['ID', 'Frontend', 'Service Type', 'Backend']];
      for (const s of svcs) {
        for (const f of s.frontends) {
          const bes = f.backends.map((b, i) => `${i + 1} => ${b.ip}:${b.port}/${f.protocol} (${b.state})`);
          rows.push([String(f.revNat), `${f.address}:${f.port}/${f.protocol}`, f.type, bes[0] ?? '']);
          for (const b of bes.slice(1)) rows.push(['', '', '', b]);
        }
      }
      return formatTable(rows);
    });
  });
service
  .command('add')
  .description('create or update a service')
  .requiredOption('--name <name>', 'service name')
  .requiredOption('--cluster-ip <ip>', 'frontend address (ClusterIP)')
  .requiredOption('--port <spec...>', 'ports as PORT[:TARGET][/PROTO], e.g. 80:8080/TCP')
  .option('--selector <label...>', 'endpoint labels (k=v) selecting the backends', [])
  .option('--backend <addr...>', 'explicit backends as IP[:PORT]', [])
  .option('--external-ip <ip...>', 'more frontends (ExternalIPs)', [])
  .option('--load-balancer-ip <ip>', 'LoadBalancer frontend')
  .addOption(new Option('--algorithm <alg>', 'backend selection').choices(['random', 'maglev']))
  .action(async (o: { name: string; clusterIp: string; port: string[]; selector: string[]; backend: string[]; externalIp: string[]; loadBalancerIp?: string; algorithm?: string }) => {
    const ports = o.port.map((p) => {
      const m = /^(\d+)(?::(\d+))?(?:\/(TCP|UDP))?$/i.exec(p);
      if (!m) throw new ApiError(`--port ${p}: expected PORT[:TARGET][/TCP|UDP]`);
      return { port: Number(m[1]), ...(m[2] ? { targetPort: Number(m[2]) } : {}), protocol: (m[3] ?? 'TCP').toUpperCase() };
    });
    const selector: Record<string, string> = {};
    for (const kv of o.selector) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new ApiError(`--selector ${kv}: expected key=value`);
      selector[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const backends = o.backend.map((b) => {
      const [ip, port] = b.split(':');
      return { ip, ...(port ? { port: Number(port) } : {}) };
    });
    const body = {
      name: o.name,
      clusterIP: o.clusterIp,
      ports,
      ...(o.selector.length ? { selector } : {}),
      ...(backends.length ? { backends } : {}),
      ...(o.externalIp.length ? { externalIPs: o.externalIp } : {}),
      ...(o.loadBalancerIp ? { loadBalancerIP: o.loadBalancerIp } : {}),
      ...(o.algorithm ? { algorithm: o.algorithm } : {}),
    };
    print(true, await api('PUT', '/v1/service', body, sock()), () => '');
  });
service
  .command('delete <name>')
  .description('delete a service')
  .action(async (name: string) => {
    await api('DELETE', `/v1/service/${encodeURIComponent(name)}`, undefined, sock());
    process.stdout.write(`Service ${name} deleted\n`);
  });

const lbCmd = bpf.command('lb').description('load-balancer maps');
lbCmd
  .command('list')
  .description('the service map (cilium_lb4_services_v2), backends resolved')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const rows = await api<LbRow[]>('GET', '/v1/lb', undefined, sock());
    print(o.output === 'json', rows, () => formatLbList(rows));
  });
lbCmd
  .command('maglev')
  .description('Maglev lookup tables')
  .command('list <service>')
  .description('the Maglev table of a service (name or rev-NAT ID)')
  .addOption(output())
  .action(async (svc: string, o: { output?: string }) => {
    const tabs = await api<{ revNat: number; frontend: string; table: number[] | null }[]>('GET', `/v1/lb/maglev/${encodeURIComponent(svc)}`, undefined, sock());
    print(o.output === 'json', tabs, () =>
      formatTable([['SVC ID', 'FRONTEND', 'LUT'], ...tabs.map((t) => [String(t.revNat), t.frontend, t.table ? `[${t.table.join(' ')}]` : '(random selection: no table)'])]),
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

bpf
  .command('ipcache')
  .description('IP/CIDR -> identity and tunnel endpoint (cilium_ipcache)')
  .command('list')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const rows = await api<IpcacheRow[]>('GET', '/v1/ipcache', undefined, sock());
    print(o.output === 'json', rows, () => formatIpcacheList(rows));
  });
bpf
  .command('tunnel')
  .description('pod CIDR -> tunnel endpoint (cilium_tunnel_map)')
  .command('list')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const rows = await api<TunnelRowJson[]>('GET', '/v1/tunnel', undefined, sock());
    print(o.output === 'json', rows, () => formatTunnelList(rows));
  });
bpf
  .command('nat')
  .description('SNAT table of the uplink (cilium_snat_v4_external)')
  .command('list')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const rows = await api<NatDumpEntry[]>('GET', '/v1/nat', undefined, sock());
    print(o.output === 'json', rows, () => formatNatList(rows));
  });
bpf
  .command('neigh')
  .description("the uplink's neighbour table (Tapestry answers and learns ARP there, not the kernel)")
  .command('list')
  .addOption(output())
  .action(async (o: { output?: string }) => {
    const rows = await api<NeighRowJson[]>('GET', '/v1/neigh', undefined, sock());
    print(o.output === 'json', rows, () => formatNeighList(rows));
  });

registerPolicyCommands(program, bpf, { sock, print, output });
registerMetricsCommands(program, { sock, print, output });
registerObserveCommand(program, { sock, print, output });
registerCaptureCommands(program, { sock });
registerPrefilterCommands(program, { sock, print, output });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`Error: ${e.message}\n`);
  process.exit(e.name === 'ConfigError' || e.name === 'FatalError' ? 2 : 1);
});

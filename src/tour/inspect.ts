/**
 * Looking inside the nodes after the traffic: node n1 through the real CLI
 * (`bin/tapestry --socket <its API socket>`), then every node's counters
 * through the API for the summary.
 *
 * API:
 *   cliExcerpts(t)     bpf nat list, bpf ipcache list, bpf tunnel list, status of n1: a step
 *                      each, and the first lines of what it printed
 *   nodeSummary(t)     per node: conntrack entries, drop reasons and forwards, devices with
 *                      frames per wake-up
 */
import { TAPESTRY } from '../testbed/agent-process.ts';
import type { NodeHandle } from '../testbed/cluster.ts';
import type { CountersJson } from '../cli/format.ts';
import { formatTable } from '../cli/table.ts';
import { excerpt, record, say, why } from './report.ts';
import { run } from './run.ts';
import type { Tour } from './topology.ts';

/** A device's counters as GET /v1/ports returns them. */
interface PortJson {
  name: string;
  kind: string;
  rxFrames: number;
  rxBatches: number;
  txFrames: number;
  device: { rxBytes?: number };
}

/** Status rows worth showing in a tour (the rest: KVStore, Kubernetes, IPAM, Conntrack, API). */
const STATUS_ROWS = /^(Tapestry|Node|Datapath|Routing|Masquerading|Uplink|Remote nodes|Endpoints|Forwarded|Drops):/;

/**
 * Each command, the lines of its output to show (at most `lines`, those
 * `keep` accepts), and what its output must contain to count as ok.
 */
const COMMANDS: { args: string[]; lines: number; keep?: (line: string, i: number) => boolean; expect: (t: Tour) => string }[] = [
  { args: ['bpf', 'nat', 'list'], lines: 4, expect: (t) => `XLATE_SRC ${t.n1.address}:` },
  // The header and the IPv4 rows: node addresses, local pods, n2's pod CIDR and pods behind its tunnel endpoint.
  { args: ['bpf', 'ipcache', 'list'], lines: 10, keep: (l, i) => i === 0 || l.startsWith('10.'), expect: (t) => `tunnelendpoint=${t.n2.address}` },
  { args: ['bpf', 'tunnel', 'list'], lines: 3, expect: (t) => `${t.n2.address}:0` },
  { args: ['status'], lines: 10, keep: (l) => STATUS_ROWS.test(l), expect: () => 'Tunnel [vxlan' },
];

export async function cliExcerpts(t: Tour): Promise<void> {
  const socket = t.n1.config.api.socket;
  // In parallel: each CLI start costs about a second.
  const results = await Promise.all(COMMANDS.map((c) => run(null, TAPESTRY, ['--socket', socket, ...c.args], 15000)));
  COMMANDS.forEach((c, i) => {
    const r = results[i]!;
    const want = c.expect(t);
    const ok = r.status === 0 && r.stdout.includes(want);
    const n = r.stdout.trim() === '' ? 0 : r.stdout.trim().split('\n').length;
    record('cli', `n1: tapestry ${c.args.join(' ')}`, ok, r.status !== 0 ? why(r) : `${n} lines, ${ok ? 'with' : 'but no'} "${want}"`);
    if (r.status === 0) say(excerpt(r.stdout, c.lines, c.keep));
  });
}

/** Conntrack entries by type: "N (a OUT, b IN, c SVC)". */
async function conntrack(n: NodeHandle): Promise<string> {
  const conns = await n.agent!.api<{ type: string }[]>('GET', '/v1/ct');
  return `${conns.length} (${['OUT', 'IN', 'SVC'].map((ty) => `${conns.filter((c) => c.type === ty).length} ${ty}`).join(', ')})`;
}

export async function nodeSummary(t: Tour): Promise<void> {
  const nodes = [t.n1, t.n2];
  const data = await Promise.all(
    nodes.map(async (n) => ({
      n,
      ct: await conntrack(n),
      counters: await n.agent!.api<CountersJson>('GET', '/v1/metrics/datapath'),
      ports: await n.agent!.api<PortJson[]>('GET', '/v1/ports'),
    })),
  );
  say(`\nConntrack entries: ${data.map((d) => `${d.n.name} ${d.ct}`).join('; ')}; see tapestry bpf ct list global`);

  const metrics: string[][] = [['NODE', 'REASON', 'DIRECTION', 'PACKETS', 'BYTES']];
  for (const { n, counters } of data) {
    for (const f of counters.forwards) metrics.push([n.name, 'Success', f.direction, String(f.count), String(f.bytes)]);
    for (const d of counters.drops) metrics.push([n.name, d.reasonString, d.direction, String(d.count), String(d.bytes)]);
  }
  say(`\nDatapath counters per node (tapestry bpf metrics list):\n${formatTable(metrics)}`);

  const devices: string[][] = [['NODE', 'DEVICE', 'KIND', 'RX FRAMES', 'RX BATCHES', 'FRAMES/WAKE-UP', 'AVG FRAME (B)', 'TX FRAMES']];
  for (const { n, ports } of data) {
    for (const p of ports) {
      const avg = p.rxFrames && p.device.rxBytes !== undefined ? (p.device.rxBytes / p.rxFrames).toFixed(0) : '-';
      devices.push([n.name, p.name, p.kind, String(p.rxFrames), String(p.rxBatches), p.rxBatches ? (p.rxFrames / p.rxBatches).toFixed(1) : '-', avg, String(p.txFrames)]);
    }
  }
  say(`\nDevices per node:\n${formatTable(devices)}`);
}

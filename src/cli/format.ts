/**
 * Human output of the CLI, in Cilium's layouts (facts §9): `status`,
 * `endpoint list`, `bpf metrics list`, and the multi-node maps
 * (`bpf ipcache list`, `bpf tunnel list`, `bpf nat list`, `bpf neigh list`).
 * Every function is pure: API JSON in, text out (no trailing newline).
 *
 * API: formatStatus(s, verbose), formatEndpointList(eps), formatMetricsList(m),
 *      formatIpcacheList(rows), formatTunnelList(rows), formatNatList(rows),
 *      formatNeighList(rows)
 */
import { kprDetails, kprLines, type KprJson } from './kpr.ts';
import { formatTable } from './table.ts';
import type { IpcacheRow } from '../datapath/lib/ipcache.ts';
import { formatNatEntry, type NatDumpEntry } from '../datapath/lib/nat-dump.ts';

/** Endpoint as the API returns it. */
export interface EndpointJson {
  id: number;
  name: string;
  netns: string;
  labels: Record<string, string>;
  identity: number;
  ipv4: string | null;
  ipv6: string | null;
  state: string;
  policy: { ingress: string; egress: string };
}

/** Counters as the API returns them. */
export interface CountersJson {
  drops: { reason: number; reasonString: string; direction: string; count: number; bytes: number }[];
  forwards: { direction: string; count: number; bytes: number }[];
  faults?: { batches: number; frames: number };
}

/** `cilium endpoint list`: two header lines, extra labels on following lines. */
export function formatEndpointList(eps: readonly EndpointJson[]): string {
  const rows: string[][] = [
    ['ENDPOINT', 'POLICY (ingress)', 'POLICY (egress)', 'IDENTITY', 'LABELS (source:key[=value])', 'IPv6', 'IPv4', 'STATUS'],
    ['', 'ENFORCEMENT', 'ENFORCEMENT', '', '', '', '', ''],
  ];
  for (const e of eps) {
    const labels = Object.keys(e.labels)
      .sort()
      .map((k) => `k8s:${k}=${e.labels[k]}`);
    if (labels.length === 0) labels.push('no labels');
    rows.push([String(e.id), e.policy.ingress, e.policy.egress, String(e.identity), labels[0]!, e.ipv6 ?? '', e.ipv4 ?? '', e.state]);
    for (const l of labels.slice(1)) rows.push(['', '', '', '', l, '', '', '']);
  }
  return formatTable(rows);
}

/** `cilium bpf metrics list` without LINE/FILE (Tapestry has no source lines to report). */
export function formatMetricsList(m: CountersJson): string {
  const rows: string[][] = [['REASON', 'DIRECTION', 'PACKETS', 'BYTES']];
  for (const f of m.forwards) rows.push(['Success', f.direction, String(f.count), String(f.bytes)]);
  for (const d of m.drops) rows.push([d.reasonString, d.direction, String(d.count), String(d.bytes)]);
  return formatTable(rows);
}

/** Status as the API returns it. */
export interface StatusJson {
  tapestry: { state: string; version: string; uptimeSeconds: number };
  node: { name: string; ipv4PodCIDR: string; ipv6PodCIDR: string | null; routerIPv4: string; routerIPv6: string | null; mtu: number };
  /** `routing` is what agents before the cluster section sent instead of `cluster`. */
  datapath: { mode: string; thread: string; io: string; batch: number; routing?: string };
  cluster?: ClusterJson;
  endpoints: { total: number; ready: number };
  ipam: { ipv4: string; ipv6?: string };
  counters: CountersJson;
  ports: { name: string; kind: string; endpointId: number; rxFrames: number; rxBatches: number; txFrames: number; txBatches: number; txRefused: number }[];
  conntrack: {
    tables: { name: string; entries: number; maxEntries: number }[];
    gc: { lastRun: { at: number; interval: number; tables: { deleted: number }[] } | null; nextRunAt: number; now: number };
  } | null;
  api: { socket: string };
  /** Newer agents: services, policies, map fill levels, drops of the last minute, controllers. */
  services?: { total: number; frontends: number };
  policies?: number;
  maps?: { name: string; entries: number; maxEntries: number }[];
  dropsLastMinute?: { reasonString: string; direction: string; count: number }[];
  controllers?: { name: string; status: string; lastRun: string; detail: string }[];
  kubeProxyReplacement?: KprJson;
}

/** `cilium status`-shaped summary. */
export function formatStatus(s: StatusJson, verbose: boolean): string {
  const fwd = s.counters.forwards.reduce((a, f) => a + f.count, 0);
  const drops = s.counters.drops.reduce((a, d) => a + d.count, 0);
  const byReason = new Map<string, number>();
  for (const d of s.counters.drops) byReason.set(d.reasonString, (byReason.get(d.reasonString) ?? 0) + d.count);
  const dropText = drops === 0 ? '0' : `${drops} (${[...byReason].map(([r, c]) => `${r}: ${c}`).join(', ')})`;
  const lines: [string, string][] = [
    ['KVStore', 'Disabled'],
    ['Kubernetes', 'Disabled'],
    ['Tapestry', `${s.tapestry.state}   ${s.tapestry.version} (uptime ${s.tapestry.uptimeSeconds}s)`],
    ['Node', `${s.node.name}   router ${s.node.routerIPv4}${s.node.routerIPv6 ? `, ${s.node.routerIPv6}` : ''}   MTU ${s.node.mtu}`],
    ['Datapath', `${s.datapath.mode} (${s.datapath.thread} thread), ${s.datapath.io}, batch ${s.datapath.batch}`],
    ...clusterLines(s),
    ...kprLines(s.kubeProxyReplacement),
    ['Endpoints', `${s.endpoints.ready}/${s.endpoints.total} ready`],
    ['IPAM', `IPv4: ${s.ipam.ipv4}${s.ipam.ipv6 ? `, IPv6: ${s.ipam.ipv6}` : ''}`],
    ['Forwarded', String(fwd)],
    ['Drops', dropText],
    ...(s.dropsLastMinute ? [['Drops (last minute)', s.dropsLastMinute.length === 0 ? '0' : s.dropsLastMinute.map((d) => `${d.reasonString} (${d.direction}): ${d.count}`).join(', ')] as [string, string]] : []),
    ...(s.services ? [['Services', `${s.services.total} (${s.services.frontends} frontends)`] as [string, string]] : []),
    ...(s.policies !== undefined ? [['Policies', String(s.policies)] as [string, string]] : []),
    ...(s.maps ? [['BPF maps', mapsSummary(s.maps)] as [string, string]] : []),
    ...(s.controllers ? [['Controller Status', `${s.controllers.filter((c) => c.status === 'ok').length}/${s.controllers.length} healthy`] as [string, string]] : []),
    ...(s.conntrack ? [['Conntrack', conntrackText(s.conntrack)] as [string, string]] : []),
    ...(s.counters.faults && s.counters.faults.batches > 0 ? [['Datapath faults', `${s.counters.faults.batches} batches (${s.counters.faults.frames} frames) lost to exceptions: see the agent's stderr`] as [string, string]] : []),
    ['API', `unix:${s.api.socket}`],
  ];
  let out = lines.map(([k, v]) => `${`${k}:`.padEnd(25)}${v}`).join('\n');
  if (verbose) {
    const rows = [['DEVICE', 'KIND', 'ENDPOINT', 'RX FRAMES', 'RX BATCHES', 'FRAMES/BATCH', 'TX FRAMES', 'TX BATCHES', 'TX REFUSED']];
    for (const p of s.ports) {
      rows.push([p.name, p.kind, p.endpointId ? String(p.endpointId) : '-', String(p.rxFrames), String(p.rxBatches), p.rxBatches ? (p.rxFrames / p.rxBatches).toFixed(1) : '-', String(p.txFrames), String(p.txBatches), String(p.txRefused)]);
    }
    out += `\n\nDevices:\n${formatTable(rows)}`;
    if (s.cluster && s.cluster.nodes.length > 0) out += `\n\nRemote nodes:\n${formatNodeTable(s.cluster.nodes)}`;
    out += `\n\nDatapath counters:\n${formatMetricsList(s.counters)}`;
    if (s.maps) out += `\n\nBPF maps:\n${formatTable([['NAME', 'ENTRIES', 'MAX', 'FILL'], ...s.maps.map((m) => [m.name, String(m.entries), String(m.maxEntries), `${((100 * m.entries) / m.maxEntries).toFixed(1)}%`])])}`;
    if (s.kubeProxyReplacement) out += `\n\n${kprDetails(s.kubeProxyReplacement)}`;
    if (s.controllers) out += `\n\nControllers:\n${formatTable([['NAME', 'STATUS', 'LAST RUN', 'DETAIL'], ...s.controllers.map((c) => [c.name, c.status, c.lastRun, c.detail])])}`;
  }
  return out;
}

/** "11 maps, fullest cilium_ct4_global 0.1%" — the fill level users watch for. */
function mapsSummary(maps: readonly { name: string; entries: number; maxEntries: number }[]): string {
  if (maps.length === 0) return 'none';
  const fullest = maps.reduce((a, m) => (m.entries / m.maxEntries > a.entries / a.maxEntries ? m : a));
  return `${maps.length} maps, fullest ${fullest.name} ${((100 * fullest.entries) / fullest.maxEntries).toFixed(1)}% (${fullest.entries}/${fullest.maxEntries})`;
}

/** The `cluster` object of `GET /v1/status` (NodeManager.status()). */
export interface ClusterJson {
  routingMode: 'tunnel' | 'native' | 'local';
  tunnel: { protocol: string; port: number } | null;
  masquerade: boolean;
  uplink: { device: string; address: string; gateway: string | null; mac: string | null; mtu: number } | null;
  hostDevice: string | null;
  nodes: { name: string; address: string; ipv4PodCIDR: string; ipv6PodCIDR: string | null; endpoints: number }[];
}

/**
 * The status rows about the node's place in the cluster. Routing and
 * Masquerading keep the shape of Cilium's (`Network: Tunnel [vxlan]`,
 * `BPF [eth0] [IPv4: Enabled, IPv6: Disabled]`), with the tunnel port added
 * and IPv6 always Disabled (Tapestry's SNAT is IPv4-only). Uplink and
 * host-device rows appear only when there is one; the nodes row whenever
 * the node has an uplink or configured peers.
 */
function clusterLines(s: StatusJson): [string, string][] {
  const c = s.cluster;
  if (!c) return s.datapath.routing ? [['Routing', `Network: ${s.datapath.routing}`]] : [];
  const network =
    c.routingMode === 'tunnel' ? `Tunnel [${c.tunnel ? `${c.tunnel.protocol} port ${c.tunnel.port}` : 'vxlan'}]` : c.routingMode === 'native' ? 'Native' : 'local-only (no uplink)';
  const lines: [string, string][] = [
    ['Routing', `Network: ${network}`],
    ['Masquerading', c.masquerade ? `Userspace${c.uplink ? ` [${c.uplink.device}]` : ''} [IPv4: Enabled, IPv6: Disabled]` : 'Disabled'],
  ];
  if (c.uplink) {
    const u = c.uplink;
    lines.push(['Uplink', `${u.device}   ${u.address}${u.gateway ? ` via ${u.gateway}` : ''}   MAC ${u.mac ?? 'unknown'}   MTU ${u.mtu}`]);
  }
  if (c.hostDevice) lines.push(['Host device', c.hostDevice]);
  if (c.uplink || c.nodes.length > 0) {
    const names = c.nodes.map((n) => n.name).join(', ');
    lines.push(['Remote nodes', c.nodes.length === 0 ? '0' : `${c.nodes.length} (${names})`]);
  }
  return lines;
}

/** `status --verbose`: one row per remote node. */
function formatNodeTable(nodes: ClusterJson['nodes']): string {
  const rows = [['NAME', 'ADDRESS', 'IPv4 POD CIDR', 'IPv6 POD CIDR', 'ENDPOINTS']];
  for (const n of nodes) rows.push([n.name, n.address, n.ipv4PodCIDR, n.ipv6PodCIDR ?? '-', String(n.endpoints)]);
  return formatTable(rows);
}

/** `cilium bpf ipcache list`: prefix, then the remote endpoint info. */
export function formatIpcacheList(rows: readonly IpcacheRow[]): string {
  return formatTable([
    ['IP PREFIX/ADDRESS', 'IDENTITY'],
    ...rows.map((r) => [r.prefix, `identity=${r.identity} encryptkey=${r.encryptKey} tunnelendpoint=${r.tunnelEndpoint} flags=${r.flags}`]),
  ]);
}

/** A tunnel map row as the API returns it (tunnel-map.ts dump(): both already `<ip>:0`). */
export interface TunnelRowJson {
  prefix: string;
  endpoint: string;
}

/** `cilium bpf tunnel list`. */
export function formatTunnelList(rows: readonly TunnelRowJson[]): string {
  return formatTable([['TUNNEL', 'VALUE'], ...rows.map((r) => [r.prefix, r.endpoint])]);
}

/** `cilium bpf nat list`: one line per entry, no header. */
export function formatNatList(rows: readonly NatDumpEntry[]): string {
  return rows.map(formatNatEntry).join('\n');
}

/** An underlay neighbour as the API returns it. */
export interface NeighRowJson {
  ip: string;
  mac: string;
  ageSeconds: number;
}

/** `tapestry bpf neigh list`: the uplink's neighbour table (Tapestry's own; Cilium leaves this to the kernel). */
export function formatNeighList(rows: readonly NeighRowJson[]): string {
  return formatTable([['IP', 'MAC', 'AGE'], ...rows.map((r) => [r.ip, r.mac, `${r.ageSeconds}s`])]);
}

/** "N entries (T TCP, A other), GC: last run Xs ago deleted D, next in Ys". */
function conntrackText(c: NonNullable<StatusJson['conntrack']>): string {
  const total = c.tables.reduce((a, t) => a + t.entries, 0);
  const tables = c.tables.map((t) => `${t.name} ${t.entries}/${t.maxEntries}`).join(', ');
  const g = c.gc;
  const last = g.lastRun
    ? `last run ${g.now - g.lastRun.at}s ago deleted ${g.lastRun.tables.reduce((a, t) => a + t.deleted, 0)}`
    : 'not run yet';
  return `${total} entries (${tables}); GC ${last}, next in ${Math.max(0, g.nextRunAt - g.now)}s`;
}

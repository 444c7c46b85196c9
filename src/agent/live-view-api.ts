/**
 * The live view's routes on the metrics listener (metrics-server.ts pages):
 * the page itself and the JSON it polls once a second. Everything comes
 * from functions the agent passes in; nothing here reads the datapath.
 *
 * API:
 *   flowRow(envelope) -> FlowRow                    pure: a flow as one table row
 *   dropsByReason(rows) -> DropCount[]              pure: the drop counters summed over direction
 *   serviceMap(endpoints, services) -> ServiceMap   pure: nodes for the SVG
 *   liveViewPages(sources) -> Record<path, MetricsPage>
 *     GET /               the page (live-view.ts)
 *     GET /api/flows      ?since=SEQ (absent: the last 200) -> { rows, next, lost }
 *     GET /api/drops      -> { drops: DropCount[] }  (cilium_drop_count_total's counters)
 *     GET /api/services   -> ServiceMap
 *
 * Polling /api/flows counts as observing (flows.ts): while the page is
 * open, the datapath also records FORWARDED frames.
 */
import type { FlowEnvelope } from './flows.ts';
import type { MetricsPage } from './metrics-server.ts';
import { LIVE_VIEW_HTML } from './live-view.ts';

/** Flows the page asks for on its first poll. */
const FIRST_POLL_LAST = 200;

/** A flow as the page's table shows it. */
export interface FlowRow {
  time: string;
  verdict: string;
  /** Pod name ("ns/pod") or empty. */
  src: string;
  dst: string;
  srcIp: string;
  dstIp: string;
  srcPort?: number;
  dstPort?: number;
  /** Drop reason name for drops, else the Summary ("TCP Flags: SYN"). */
  info: string;
}

/** Drops of one reason, over both directions. */
export interface DropCount {
  reason: string;
  count: number;
  bytes: number;
}

/** The nodes the service map draws; edges come from the flows. */
export interface ServiceMap {
  endpoints: { name: string; ips: string[]; identity?: number }[];
  services: { name: string; frontends: string[]; backends: string[] }[];
}

/** What the agent hands the live view. */
export interface LiveViewSources {
  flows(query: URLSearchParams): Promise<{ flows: FlowEnvelope[]; next: number; lost: number }>;
  drops(): readonly { reasonString: string; count: number; bytes: number }[];
  endpoints(): readonly { name?: string; ipv4?: string; ipv6?: string; identity?: number; labels: Record<string, string> }[];
  services(): readonly { spec: { name: string }; frontends: readonly { address: string; port: number; backends: readonly { ip: string; port: number }[] }[] }[];
}

function podOf(e: FlowEnvelope['flow']['source']): string {
  return e?.pod_name ? `${e.namespace ?? 'default'}/${e.pod_name}` : '';
}

/** One flow as a table row. */
export function flowRow({ flow: f }: FlowEnvelope): FlowRow {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  return {
    time: f.time,
    verdict: f.verdict,
    src: podOf(f.source),
    dst: podOf(f.destination),
    srcIp: f.IP.source,
    dstIp: f.IP.destination,
    ...(l4?.source_port ? { srcPort: l4.source_port } : {}),
    ...(l4?.destination_port ? { dstPort: l4.destination_port } : {}),
    info: f.verdict === 'DROPPED' ? `${f.drop_reason_desc ?? String(f.drop_reason ?? '')}${f.hook ? ` at ${f.hook}` : ''}` : f.Summary,
  };
}

/** Drop counters summed per reason, largest first. */
export function dropsByReason(rows: ReturnType<LiveViewSources['drops']>): DropCount[] {
  const by = new Map<string, DropCount>();
  for (const r of rows) {
    const d = by.get(r.reasonString) ?? { reason: r.reasonString, count: 0, bytes: 0 };
    d.count += r.count;
    d.bytes += r.bytes;
    by.set(r.reasonString, d);
  }
  return [...by.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** Endpoints (named, with their addresses) and services (frontends, backends) as map nodes. */
export function serviceMap(endpoints: ReturnType<LiveViewSources['endpoints']>, services: ReturnType<LiveViewSources['services']>): ServiceMap {
  return {
    endpoints: endpoints
      .filter((e) => e.ipv4 !== undefined || e.ipv6 !== undefined)
      .map((e) => ({
        name: e.name !== undefined ? `${e.labels['io.kubernetes.pod.namespace'] ?? 'default'}/${e.name}` : (e.ipv4 ?? e.ipv6)!,
        ips: [e.ipv4, e.ipv6].filter((x): x is string => x !== undefined),
        ...(e.identity !== undefined ? { identity: e.identity } : {}),
      })),
    services: services.map((s) => ({
      name: s.spec.name,
      frontends: s.frontends.map((f) => `${f.address}:${f.port}`),
      backends: [...new Set(s.frontends.flatMap((f) => f.backends.map((b) => b.ip)))],
    })),
  };
}

const json = (v: unknown) => ({ type: 'application/json; charset=utf-8', body: JSON.stringify(v) });

/** The live view's pages for the metrics listener. */
export function liveViewPages(src: LiveViewSources): Record<string, MetricsPage> {
  return {
    '/': async () => ({ type: 'text/html; charset=utf-8', body: LIVE_VIEW_HTML }),
    '/api/flows': async (q) => {
      const since = q.get('since');
      const query = new URLSearchParams(since !== null ? { since } : { last: String(FIRST_POLL_LAST) });
      const r = await src.flows(query);
      return json({ rows: r.flows.map(flowRow), next: r.next, lost: r.lost });
    },
    '/api/drops': async () => json({ drops: dropsByReason(src.drops()) }),
    '/api/services': async () => json(serviceMap(src.endpoints(), src.services())),
  };
}

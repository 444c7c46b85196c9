/**
 * Prometheus text exposition (format 0.0.4) of what the agent already
 * keeps: nothing here counts on the packet path. The datapath's shared
 * drop/forward counters, the conntrack tables and GC, endpoint states,
 * identities and per-device batch counters are read at scrape time and
 * rendered with Cilium's metric names (facts §10) plus Tapestry's own
 * `tapestry_*` families.
 *
 * API:
 *   gatherMetrics(dp, endpoints, identities) -> MetricsInputs   (async: asks the worker)
 *   buildFamilies(inputs) -> MetricFamily[]                     (pure)
 *   renderExposition(families) -> string                        (pure)
 *   scrapeMetrics(dp, endpoints, identities) -> string          gather + build + render
 *   parseExposition(text) -> Sample[]                           for `tapestry metrics list`
 *   escapeLabelValue(s), escapeHelp(s), formatValue(v)
 *   EXPOSITION_CONTENT_TYPE
 *
 * Families are always announced (HELP and TYPE) even with no samples yet,
 * so a scraper sees the full set from the first scrape.
 */
import type { DropRow, ForwardRow } from '../datapath/lib/metrics.ts';
import type { PortStatsRow } from './worker-protocol.ts';

/** What `GET /metrics` answers with. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One sample: a metric name, its labels and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: one HELP and TYPE line, then its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: { labels: Record<string, string>; value: number }[];
}

/** The datapath counters snapshot (Metrics.snapshot()). */
export interface CountersInput {
  drops: readonly DropRow[];
  forwards: readonly ForwardRow[];
  faults: { batches: number; frames: number };
}

/** The parts of the worker's `ctStatus` answer used here. */
export interface CtStatusInput {
  tables: readonly { name: string; entries: number; maxEntries: number }[];
  /** CtGc.metrics() rows; absent from workers that predate it. */
  gcMetrics?: readonly Sample[];
}

/** Everything one scrape renders. */
export interface MetricsInputs {
  counters: CountersInput;
  ports: readonly PortStatsRow[];
  ct: CtStatusInput | null;
  /** One state name per endpoint. */
  endpointStates: readonly string[];
  /** Known security identities. */
  identities: number;
}

/** The datapath client as the scrape needs it. */
export interface MetricsDatapath {
  metrics: { snapshot(): CountersInput };
  portStats(): Promise<PortStatsRow[]>;
  request(op: { op: 'ctStatus' }): Promise<unknown>;
}

/** Endpoint states always reported, zero or not (Cilium's names, endpoint-manager.ts). */
const ENDPOINT_STATES = ['waiting-for-identity', 'ready', 'disconnecting'];

const GC_RUNS = 'cilium_datapath_conntrack_gc_runs_total';
const GC_ENTRIES = 'cilium_datapath_conntrack_gc_entries';

/** Escape a label value: backslash, double quote and line feed (the format's only escapes). */
export function escapeLabelValue(s: string): string {
  return s.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** Escape HELP text: backslash and line feed (quotes stay as they are). */
export function escapeHelp(s: string): string {
  return s.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** A sample value as the format spells it: NaN, +Inf, -Inf, else the shortest round-tripping decimal. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Record<string, string>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`).join(',')}}`;
}

/** Render families as exposition text (ends with a line feed). */
export function renderExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Turn a scrape's inputs into metric families, in a fixed order. */
export function buildFamilies(m: MetricsInputs): MetricFamily[] {
  const { counters, ports, ct } = m;
  const fam = (name: string, type: MetricFamily['type'], help: string, samples: MetricFamily['samples']): MetricFamily => ({ name, help, type, samples });
  const gc = (name: string) => (ct?.gcMetrics ?? []).filter((s) => s.name === name).map((s) => ({ labels: { ...s.labels }, value: s.value }));
  const states = new Map(ENDPOINT_STATES.map((s) => [s, 0]));
  for (const s of m.endpointStates) states.set(s, (states.get(s) ?? 0) + 1);
  const dev = (p: PortStatsRow) => p.name;
  return [
    fam('cilium_drop_count_total', 'counter', 'Packets the datapath dropped, by drop reason and direction',
      counters.drops.map((d) => ({ labels: { reason: d.reasonString, direction: d.direction }, value: d.count }))),
    fam('cilium_drop_bytes_total', 'counter', 'Bytes of the packets the datapath dropped, by drop reason and direction',
      counters.drops.map((d) => ({ labels: { reason: d.reasonString, direction: d.direction }, value: d.bytes }))),
    fam('cilium_forward_count_total', 'counter', 'Packets the datapath forwarded, by direction',
      counters.forwards.map((f) => ({ labels: { direction: f.direction }, value: f.count }))),
    fam('cilium_forward_bytes_total', 'counter', 'Bytes of the packets the datapath forwarded, by direction',
      counters.forwards.map((f) => ({ labels: { direction: f.direction }, value: f.bytes }))),
    fam('cilium_bpf_map_pressure', 'gauge', 'Fill ratio of a map: entries in use over its maximum',
      (ct?.tables ?? []).map((t) => ({ labels: { map_name: t.name }, value: t.maxEntries > 0 ? t.entries / t.maxEntries : 0 }))),
    fam('cilium_bpf_map_capacity', 'gauge', 'Maximum number of entries of a map group',
      (ct?.tables ?? []).map((t) => ({ labels: { map_group: t.name }, value: t.maxEntries }))),
    fam(GC_RUNS, 'counter', 'Conntrack garbage collection runs, by family, protocol and outcome', gc(GC_RUNS)),
    fam(GC_ENTRIES, 'gauge', 'Conntrack entries the last garbage collection run kept (alive) and removed (deleted)', gc(GC_ENTRIES)),
    fam('cilium_endpoint_state', 'gauge', 'Endpoints in each state',
      [...states].map(([s, n]) => ({ labels: { endpoint_state: s }, value: n }))),
    fam('cilium_identity', 'gauge', 'Security identities the agent knows', [{ labels: {}, value: m.identities }]),
    fam('tapestry_device_frames_total', 'counter', 'Frames a device delivered to the datapath (rx) or took from it (tx)',
      ports.flatMap((p) => [{ labels: { device: dev(p), direction: 'rx' }, value: p.rxFrames }, { labels: { device: dev(p), direction: 'tx' }, value: p.txFrames }])),
    fam('tapestry_device_batches_total', 'counter', 'Batches a device delivered to the datapath (rx) or took from it (tx)',
      ports.flatMap((p) => [{ labels: { device: dev(p), direction: 'rx' }, value: p.rxBatches }, { labels: { device: dev(p), direction: 'tx' }, value: p.txBatches }])),
    fam('tapestry_device_frames_per_batch', 'gauge', 'Mean frames per received batch since the device was attached (0 before the first)',
      ports.map((p) => ({ labels: { device: dev(p) }, value: p.rxBatches > 0 ? p.rxFrames / p.rxBatches : 0 }))),
    fam('tapestry_datapath_faults_total', 'counter', 'Batches lost because a datapath program threw (a bug; see the agent log)',
      [{ labels: {}, value: counters.faults.batches }]),
  ];
}

/** Read what a scrape needs: counters from shared memory, ports and conntrack from the worker. */
export async function gatherMetrics(dp: MetricsDatapath, endpoints: readonly { state: string }[], identities: number): Promise<MetricsInputs> {
  const [ports, ct] = await Promise.all([dp.portStats(), dp.request({ op: 'ctStatus' }) as Promise<CtStatusInput | null>]);
  return { counters: dp.metrics.snapshot(), ports, ct, endpointStates: endpoints.map((e) => e.state), identities };
}

/** One scrape: the exposition text. */
export async function scrapeMetrics(dp: MetricsDatapath, endpoints: readonly { state: string }[], identities: number): Promise<string> {
  return renderExposition(buildFamilies(await gatherMetrics(dp, endpoints, identities)));
}

/** Value text back to a number (NaN, ±Inf included). */
function parseValue(s: string): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/**
 * Samples of exposition text, in order; comments and blank lines skipped.
 * Throws on a line it cannot read, naming its number.
 */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const bad = (why: string): never => {
      throw new Error(`metrics line ${n + 1}: ${why}: ${line.slice(0, 120)}`);
    };
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line) ?? bad('no metric name');
    const name = m[1]!;
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') break;
        const k = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i)) ?? bad('bad label name');
        i += k[0].length;
        if (line[i] !== '=' || line[i + 1] !== '"') bad(`label ${k[0]} has no quoted value`);
        i += 2;
        let v = '';
        for (; i < line.length && line[i] !== '"'; i++) {
          if (line[i] !== '\\') v += line[i];
          else v += line[++i] === 'n' ? '\n' : (line[i] ?? '');
        }
        if (i >= line.length) bad('unterminated label value');
        labels[k[0]] = v;
        i++;
      }
      i++;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0] ?? '');
    if (rest[0] === undefined || rest[0] === '' || (Number.isNaN(value) && rest[0] !== 'NaN')) bad('bad value');
    out.push({ name, labels, value });
  }
  return out;
}

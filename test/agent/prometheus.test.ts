/** Prometheus exposition: exact lines from sample inputs, escaping, and the parser the CLI uses. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildFamilies,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  parseExposition,
  renderExposition,
  type MetricsInputs,
} from '../../src/agent/prometheus.ts';
import { Metrics } from '../../src/datapath/lib/metrics.ts';
import { DIR } from '../../src/engine/verdict.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { formatMetricSamples } from '../../src/cli/metrics.ts';
import type { PortStatsRow } from '../../src/agent/worker-protocol.ts';

const port = (name: string, rxFrames: number, rxBatches: number, txFrames: number, txBatches: number): PortStatsRow => ({
  port: 0, name, kind: 'endpoint', endpointId: 1, rxFrames, rxBatches, txFrames, txBatches, txRefused: 0, device: {},
});

/** A small agent: two drops, forwards both ways, one fault, two ports, CT and GC rows. */
function sample(): MetricsInputs {
  const m = new Metrics();
  m.drop(DIR.EGRESS, DROP.INVALID_SIP, 98);
  m.drop(DIR.EGRESS, DROP.INVALID_SIP, 98);
  m.drop(DIR.INGRESS, DROP.POLICY_DENY, 60);
  m.forward(DIR.EGRESS, 100);
  m.forward(DIR.INGRESS, 1500);
  m.forward(DIR.INGRESS, 500);
  m.fault(3);
  return {
    counters: m.snapshot(),
    ports: [port('eth0@pa', 10, 4, 7, 7), port('tapestry_host', 0, 0, 2, 1)],
    ct: {
      tables: [{ name: 'cilium_ct4_global', entries: 131072, maxEntries: 524288 }, { name: 'cilium_ct_any4_global', entries: 0, maxEntries: 262144 }],
      gcMetrics: [
        { name: 'cilium_datapath_conntrack_gc_runs_total', labels: { family: 'ipv4', protocol: 'TCP', status: 'completed' }, value: 2 },
        { name: 'cilium_datapath_conntrack_gc_entries', labels: { family: 'ipv4', protocol: 'TCP', status: 'alive' }, value: 5 },
        { name: 'cilium_datapath_conntrack_gc_entries', labels: { family: 'ipv4', protocol: 'TCP', status: 'deleted' }, value: 1 },
        { name: 'cilium_datapath_conntrack_gc_duration_seconds', labels: { family: 'ipv4', protocol: 'TCP', status: 'completed' }, value: 0.001 },
      ],
    },
    endpointStates: ['ready', 'ready', 'waiting-for-identity'],
    identities: 7,
  };
}

const lines = (text: string) => text.split('\n');

describe('prometheus exposition', () => {
  test('escaping: label values escape \\ " and line feed; HELP escapes \\ and line feed only', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeLabelValue('Invalid source ip'), 'Invalid source ip');
    assert.equal(escapeHelp('x\\y "q"\nz'), 'x\\\\y "q"\\nz');
  });

  test('values: integers plain, fractions shortest, NaN and infinities spelled as the format wants', () => {
    assert.deepEqual([1, 0, 0.25, 1e21, NaN, Infinity, -Infinity].map(formatValue), ['1', '0', '0.25', '1e+21', 'NaN', '+Inf', '-Inf']);
  });

  test('a family is HELP, TYPE, then one line per sample; labels in the order given', () => {
    const text = renderExposition([
      { name: 'x_total', help: 'Things\nseen', type: 'counter', samples: [{ labels: { a: 'q"uote', b: 'back\\slash' }, value: 3 }, { labels: {}, value: 4 }] },
      { name: 'y', help: 'Nothing yet', type: 'gauge', samples: [] },
    ]);
    assert.equal(text, ['# HELP x_total Things\\nseen', '# TYPE x_total counter', 'x_total{a="q\\"uote",b="back\\\\slash"} 3', 'x_total 4', '# HELP y Nothing yet', '# TYPE y gauge', ''].join('\n'));
    assert.equal(renderExposition([]), '');
  });

  test('drop and forward counters carry Cilium\'s reason strings and directions', () => {
    const l = lines(renderExposition(buildFamilies(sample())));
    for (const want of [
      '# TYPE cilium_drop_count_total counter',
      'cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"} 2',
      'cilium_drop_count_total{reason="Policy denied by denylist",direction="INGRESS"} 1',
      'cilium_drop_bytes_total{reason="Invalid source ip",direction="EGRESS"} 196',
      'cilium_drop_bytes_total{reason="Policy denied by denylist",direction="INGRESS"} 60',
      'cilium_forward_count_total{direction="INGRESS"} 2',
      'cilium_forward_count_total{direction="EGRESS"} 1',
      'cilium_forward_bytes_total{direction="INGRESS"} 2000',
      'cilium_forward_bytes_total{direction="EGRESS"} 100',
      'tapestry_datapath_faults_total 1',
    ]) assert.ok(l.includes(want), `missing line: ${want}`);
  });

  test('conntrack: map pressure is the fill ratio, capacity the maximum, GC runs and entries as the GC reports them', () => {
    const l = lines(renderExposition(buildFamilies(sample())));
    for (const want of [
      '# TYPE cilium_bpf_map_pressure gauge',
      'cilium_bpf_map_pressure{map_name="cilium_ct4_global"} 0.25',
      'cilium_bpf_map_pressure{map_name="cilium_ct_any4_global"} 0',
      'cilium_bpf_map_capacity{map_group="cilium_ct4_global"} 524288',
      '# TYPE cilium_datapath_conntrack_gc_runs_total counter',
      'cilium_datapath_conntrack_gc_runs_total{family="ipv4",protocol="TCP",status="completed"} 2',
      '# TYPE cilium_datapath_conntrack_gc_entries gauge',
      'cilium_datapath_conntrack_gc_entries{family="ipv4",protocol="TCP",status="alive"} 5',
      'cilium_datapath_conntrack_gc_entries{family="ipv4",protocol="TCP",status="deleted"} 1',
    ]) assert.ok(l.includes(want), `missing line: ${want}`);
    assert.ok(!l.some((x) => x.includes('duration_seconds')), 'GC duration is a histogram in Cilium: not rendered as a gauge');
  });

  test('endpoints by state (known states always present), identities, and device batch counters', () => {
    const l = lines(renderExposition(buildFamilies(sample())));
    for (const want of [
      'cilium_endpoint_state{endpoint_state="waiting-for-identity"} 1',
      'cilium_endpoint_state{endpoint_state="ready"} 2',
      'cilium_endpoint_state{endpoint_state="disconnecting"} 0',
      'cilium_identity 7',
      'tapestry_device_frames_total{device="eth0@pa",direction="rx"} 10',
      'tapestry_device_frames_total{device="eth0@pa",direction="tx"} 7',
      'tapestry_device_batches_total{device="eth0@pa",direction="rx"} 4',
      'tapestry_device_batches_total{device="tapestry_host",direction="tx"} 1',
      'tapestry_device_frames_per_batch{device="eth0@pa"} 2.5',
      'tapestry_device_frames_per_batch{device="tapestry_host"} 0',
    ]) assert.ok(l.includes(want), `missing line: ${want}`);
  });

  test('every family is announced once, with no samples before traffic or without a conntrack answer', () => {
    const empty: MetricsInputs = { counters: new Metrics().snapshot(), ports: [], ct: null, endpointStates: [], identities: 0 };
    const text = renderExposition(buildFamilies(empty));
    const types = lines(text).filter((x) => x.startsWith('# TYPE ')).map((x) => x.split(' ')[2]);
    assert.deepEqual(types, [
      'cilium_drop_count_total', 'cilium_drop_bytes_total', 'cilium_forward_count_total', 'cilium_forward_bytes_total',
      'cilium_bpf_map_pressure', 'cilium_bpf_map_capacity',
      'cilium_datapath_conntrack_gc_runs_total', 'cilium_datapath_conntrack_gc_entries',
      'cilium_endpoint_state', 'cilium_identity',
      'tapestry_device_frames_total', 'tapestry_device_batches_total', 'tapestry_device_frames_per_batch', 'tapestry_datapath_faults_total',
    ]);
    assert.ok(!/^cilium_drop_count_total[{ ]/m.test(text), 'no drop samples before any drop');
  });

  test('parseExposition reads back what renderExposition writes, escapes included', () => {
    const fams = buildFamilies(sample());
    fams.push({ name: 'odd', help: 'h', type: 'gauge', samples: [{ labels: { v: 'a,b}c"d\\e\nf' }, value: NaN }, { labels: {}, value: -Infinity }] });
    const want = fams.flatMap((f) => f.samples.map((s) => ({ name: f.name, labels: s.labels, value: s.value })));
    assert.deepEqual(parseExposition(renderExposition(fams)), want);
    assert.deepEqual(parseExposition('# comment\n\nm{a="1"} 2 1700000000000\n'), [{ name: 'm', labels: { a: '1' }, value: 2 }], 'timestamps are ignored');
    assert.throws(() => parseExposition('m{a=1} 2\n'), /metrics line 1: label a has no quoted value/);
    assert.throws(() => parseExposition('ok 1\nm x\n'), /metrics line 2: bad value/);
  });

  test('metrics list table: name, sorted labels, value', () => {
    const out = formatMetricSamples([
      { name: 'cilium_drop_count_total', labels: { reason: 'Invalid source ip', direction: 'EGRESS' }, value: 3 },
      { name: 'cilium_bpf_map_pressure', labels: { map_name: 'cilium_ct4_global' }, value: 0.25 },
      { name: 'cilium_identity', labels: {}, value: 7 },
    ]);
    assert.deepEqual(lines(out), [
      'Metric                    Labels                                          Value',
      'cilium_drop_count_total   direction="EGRESS" reason="Invalid source ip"   3',
      'cilium_bpf_map_pressure   map_name="cilium_ct4_global"                    0.250000',
      'cilium_identity                                                           7',
    ]);
  });
});

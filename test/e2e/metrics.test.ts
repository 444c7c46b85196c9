/**
 * End to end: the agent's Prometheus endpoint. A real agent with two pods
 * serves /metrics on an ephemeral port (read back from /v1/status, so runs
 * in parallel never collide); real pings move the forward counters, a
 * spoofed source moves `cilium_drop_count_total{reason="Invalid source ip",
 * direction="EGRESS"}`; the text is scraped over HTTP and read with a
 * parser of this file's own, and `tapestry metrics list` shows the same.
 *
 *   ns <p>a (10.216.0.10) --- eth0 (TAP) --\
 *                                           tapestry agent --- 127.0.0.1:<ephemeral>/metrics
 *   ns <p>b (10.216.0.11) --- eth0 (TAP) --/
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { startMetricsServer, type MetricsServer } from '../../src/agent/metrics-server.ts';

interface Ep {
  id: number;
  name: string;
  ipv4: string;
  netns: string;
}
interface MetricsStatus {
  enabled: boolean;
  address: string | null;
  error?: string;
}

/** One scraped sample. */
interface Row {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small exposition reader, independent of the agent's: `name{k="v",…} value`, escapes \\ \" \n. */
function parse(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unreadable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    rows.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return rows;
}

/** Sum of the samples of `name` whose labels include `want`. */
function value(rows: Row[], name: string, want: Record<string, string> = {}): number {
  return rows.filter((r) => r.name === name && Object.entries(want).every(([k, v]) => r.labels[k] === v)).reduce((a, r) => a + r.value, 0);
}

/** GET http://<address><path>: status, content type and body. */
function httpGet(address: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${address}${path}`, { agent: false, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

describe('metrics server', () => {
  test('an ephemeral port is bound and reported; the same address again is one line naming the field', async () => {
    let first: MetricsServer | undefined;
    try {
      first = await startMetricsServer('127.0.0.1:0', async () => 'm 1\n');
      assert.match(first.address, /^127\.0\.0\.1:\d+$/);
      assert.ok(!first.address.endsWith(':0'), `the real port is reported: ${first.address}`);
      const r = await httpGet(first.address, '/metrics');
      assert.deepEqual([r.status, r.type, r.body], [200, 'text/plain; version=0.0.4; charset=utf-8', 'm 1\n']);
      assert.equal((await httpGet(first.address, '/other')).status, 404);
      await assert.rejects(startMetricsServer(first.address, async () => ''), (e: Error) => e.message === `metrics.address: ${first!.address} is in use`);
    } finally {
      await first?.close();
    }
  });
});

describe('prometheus endpoint of a running agent', { timeout: 300_000 }, () => {
  const p = runPrefix('tm');
  const ns = { a: `${p}a`, b: `${p}b` };
  let agent: AgentProcess | undefined;
  let second: AgentProcess | undefined;
  let eps: Record<string, Ep> = {};
  let address = '';

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'e2e-metrics', ipv4PodCIDR: '10.216.0.0/24', mtu: 1500, tapPrefix: p },
      endpoints: [
        { name: 'a', netns: ns.a, labels: { app: 'a' }, ipv4: '10.216.0.10' },
        { name: 'b', netns: ns.b, labels: { app: 'b' }, ipv4: '10.216.0.11' },
      ],
      metrics: { address: '127.0.0.1:0' },
    });
    eps = Object.fromEntries((await agent.api<Ep[]>('GET', '/v1/endpoint')).map((e) => [e.name, e]));
    const st = await agent.api<{ metrics: MetricsStatus }>('GET', '/v1/status');
    address = st.metrics.address ?? '';
  });

  after(async () => {
    sh(ns.a, 'ip', ['addr', 'del', '10.216.0.99/32', 'dev', 'eth0']);
    await second?.stopAndSweep();
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  const scrape = async (): Promise<Row[]> => {
    const r = await httpGet(address, '/metrics');
    assert.equal(r.status, 200, `GET /metrics: ${r.body}`);
    assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
    return parse(r.body);
  };
  const ping = (from: string, to: string, extra: string[] = []) => sh(from, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...extra, to]);
  const cli = (...args: string[]) => sh(null, TAPESTRY, ['--socket', agent!.socket, ...args]);

  test('/v1/status shows the bound address; the first scrape has endpoints, identities and devices', async () => {
    assert.match(address, /^127\.0\.0\.1:[1-9]\d*$/, `status.metrics.address: ${address}`);
    const rows = await scrape();
    assert.equal(value(rows, 'cilium_endpoint_state', { endpoint_state: 'ready' }), 2);
    assert.ok(value(rows, 'cilium_identity') >= 2, 'at least the two pods\' identities');
    assert.ok(rows.some((r) => r.name === 'tapestry_device_frames_total' && r.labels['device'] === `eth0@${ns.a}`), 'pod a\'s device is listed');
    assert.equal(value(rows, 'cilium_bpf_map_capacity', { map_group: 'cilium_ct4_global' }), 524288, 'the TCP conntrack table\'s default size');
    assert.equal(value(rows, 'tapestry_datapath_faults_total'), 0);
  });

  test('ping between the pods grows the forward counters, the device counters and conntrack pressure', async () => {
    const r0 = await scrape();
    const r = ping(ns.a, eps['b']!.ipv4);
    assert.equal(r.status, 0, `a -> b: ${r.stdout}${r.stderr}`);
    const r1 = await scrape();
    const fwd = value(r1, 'cilium_forward_count_total') - value(r0, 'cilium_forward_count_total');
    assert.ok(fwd >= 6, `three echo requests and three replies forwarded, counted ${fwd}`);
    assert.ok(value(r1, 'cilium_forward_bytes_total') > value(r0, 'cilium_forward_bytes_total'), 'forwarded bytes grew');
    const rx = (rows: Row[]) => value(rows, 'tapestry_device_frames_total', { device: `eth0@${ns.a}`, direction: 'rx' });
    assert.ok(rx(r1) - rx(r0) >= 3, `pod a's device delivered ${rx(r1) - rx(r0)} frames`);
    assert.ok(value(r1, 'tapestry_device_frames_per_batch', { device: `eth0@${ns.a}` }) >= 1, 'frames per batch of a busy device is at least 1');
    assert.ok(value(r1, 'cilium_bpf_map_pressure', { map_name: 'cilium_ct_any4_global' }) > 0, 'the ICMP flow is in the "any" table');
  });

  test('a spoofed source is counted as cilium_drop_count_total{reason="Invalid source ip",direction="EGRESS"}', async () => {
    const key = { reason: 'Invalid source ip', direction: 'EGRESS' };
    const r0 = await scrape();
    sh(ns.a, 'ip', ['addr', 'add', '10.216.0.99/32', 'dev', 'eth0']);
    try {
      assert.notEqual(ping(ns.a, eps['b']!.ipv4, ['-I', '10.216.0.99']).status, 0, 'spoofed ping must not get through');
    } finally {
      sh(ns.a, 'ip', ['addr', 'del', '10.216.0.99/32', 'dev', 'eth0']);
    }
    const r1 = await scrape();
    const drops = value(r1, 'cilium_drop_count_total', key) - value(r0, 'cilium_drop_count_total', key);
    assert.ok(drops >= 3, `three spoofed echo requests dropped as 132, counted ${drops}`);
    const bytes = value(r1, 'cilium_drop_bytes_total', key) - value(r0, 'cilium_drop_bytes_total', key);
    assert.ok(bytes >= drops * 98, `at least 98 bytes per dropped echo request, counted ${bytes}`);
  });

  test('tapestry metrics list shows the same counters, as a table and as JSON', async () => {
    const rows = await scrape();
    const table = cli('metrics', 'list');
    assert.equal(table.status, 0, table.stderr);
    const lines = table.stdout.split('\n');
    assert.match(lines[0]!, /^Metric\s+Labels\s+Value$/);
    const drop = lines.find((l) => l.startsWith('cilium_drop_count_total ') && l.includes('direction="EGRESS" reason="Invalid source ip"'));
    assert.ok(drop, `a row for the 132 drops in:\n${table.stdout}`);
    assert.ok(Number(drop.trim().split(/\s+/).pop()) >= value(rows, 'cilium_drop_count_total', { reason: 'Invalid source ip', direction: 'EGRESS' }), `value in: ${drop}`);
    const json = cli('metrics', 'list', '-p', '^cilium_forward_count_total$', '-o', 'json');
    assert.equal(json.status, 0, json.stderr);
    const samples = JSON.parse(json.stdout) as Row[];
    assert.ok(samples.length > 0 && samples.every((s) => s.name === 'cilium_forward_count_total'), `only forward counts: ${json.stdout}`);
    assert.ok(samples.reduce((a, s) => a + s.value, 0) >= value(rows, 'cilium_forward_count_total'), 'JSON values are at least the earlier scrape\'s');
  });

  test('a second agent on a busy metrics address says so in one line and keeps running', async () => {
    second = await AgentProcess.start(`${p}s`, {
      node: { name: 'e2e-metrics-2', ipv4PodCIDR: '10.217.0.0/24', tapPrefix: `${p}s` },
      metrics: { address },
    });
    const err = second.stderr.join('');
    assert.equal(err.trim(), `tapestry agent: metrics.address: ${address} is in use`, 'one line on stderr');
    const st = await second.api<{ metrics: MetricsStatus }>('GET', '/v1/status');
    assert.deepEqual(st.metrics, { enabled: true, address: null, error: `metrics.address: ${address} is in use` });
    assert.ok(second.alive, 'the second agent is still running');
    assert.equal(await second.stop(), 0);
    assert.equal((await scrape()).length > 0, true, 'the first agent still serves');
  });

  test('teardown closes the endpoint', async () => {
    assert.equal(await agent!.stop(), 0);
    await assert.rejects(httpGet(address, '/metrics'), /ECONNREFUSED/);
  });
});

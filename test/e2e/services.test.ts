/**
 * End to end: services on one node. A ClusterIP with three backends picked
 * by label, a service without backends, real curl and iperf3.
 *
 *   client ──> 10.96.0.10:80 ──DNAT──> web1|web2|web3 :8080   (replies from 10.96.0.10)
 *   client ──> 10.96.0.11:80 (no backend) ──> ICMP port unreachable
 *   client ──> 10.96.0.12:5201 ──> web1 (iperf3 needs its control and data
 *              connections on one server, so this service has one backend)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';

const VIP = '10.96.0.10';
const IPERF_VIP = '10.96.0.12';

describe('services on one node', { timeout: 300_000 }, () => {
  const p = runPrefix('ts');
  const ns = (n: string) => `${p}${n}`;
  let agent: AgentProcess;
  const children: ChildProcess[] = [];
  const cli = (...args: string[]) => sh(null, TAPESTRY, ['--socket', agent.socket, ...args]);

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'svc', ipv4PodCIDR: '10.212.0.0/24', mtu: 1500, tapPrefix: p },
      endpoints: [
        { name: 'client', netns: ns('c') },
        ...[1, 2, 3].map((k) => ({ name: `web${k}`, netns: ns(`w${k}`), labels: k === 1 ? { app: 'web', role: 'iperf' } : { app: 'web' } })),
      ],
      services: [
        { name: 'web', type: 'LoadBalancer', clusterIP: VIP, ports: [{ port: 80, targetPort: 8080 }, { port: 5201 }], selector: { app: 'web' }, externalIPs: ['192.0.2.10'], loadBalancerIP: '192.0.2.11' },
        { name: 'iperf', clusterIP: IPERF_VIP, ports: [{ port: 5201 }], selector: { role: 'iperf' } },
        { name: 'mag', clusterIP: '10.96.0.15', ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'web' }, algorithm: 'maglev' },
        { name: 'local', clusterIP: '10.96.0.14', ports: [{ port: 80, targetPort: 8080 }], selector: { role: 'iperf' }, backends: [{ ip: '10.99.0.250' }], internalTrafficPolicy: 'Local' },
        { name: 'sticky', type: 'NodePort', clusterIP: '10.96.0.13', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }], selector: { app: 'web' }, sessionAffinity: 'ClientIP' },
        { name: 'empty', clusterIP: '10.96.0.11', ports: [{ port: 80 }] },
      ],
    });
    for (const k of [1, 2, 3]) {
      const srv = spawn('ip', ['netns', 'exec', ns(`w${k}`), process.execPath, '-e', `require('http').createServer((q,r)=>r.end('web${k}\\n')).listen(8080)`], { stdio: 'ignore' });
      children.push(srv);
    }
    // Every backend must be listening before the tests pick among them.
    const eps = await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint');
    for (const ep of eps.filter((e) => e.name.startsWith('web'))) {
      for (let i = 0; i < 100; i++) {
        if (sh(ns('c'), 'curl', ['-s', '--max-time', '1', `http://${ep.ipv4}:8080/`]).status === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  test('curl to a ClusterIP with three backends reaches all three', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 60 && seen.size < 3; i++) {
      const r = sh(ns('c'), 'curl', ['-s', '--max-time', '3', `http://${VIP}/`]);
      assert.equal(r.status, 0, `curl ${i}: ${r.stderr}`);
      seen.add(r.stdout.trim());
    }
    assert.deepEqual([...seen].sort(), ['web1', 'web2', 'web3']);
  });

  test('replies carry the ClusterIP as source: the client only ever sees the frontend', async () => {
    const cap = spawn('ip', ['netns', 'exec', ns('c'), 'tcpdump', '-i', 'eth0', '-nn', '-l', '-Q', 'in', '-c', '6', 'tcp'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(cap);
    let out = '';
    cap.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((res) => cap.on('exit', res));
    await new Promise((res) => setTimeout(res, 1000));
    const r = sh(ns('c'), 'curl', ['-s', '--max-time', '3', `http://${VIP}/`]);
    assert.equal(r.status, 0, r.stderr);
    await Promise.race([exited, new Promise((res) => setTimeout(res, 3000))]);
    cap.kill('SIGKILL');
    const lines = out.trim().split('\n').filter((l) => l.includes(' IP '));
    assert.ok(lines.length >= 3, `captured replies:\n${out}`);
    for (const l of lines) assert.match(l, new RegExp(` IP ${VIP.replace(/\./g, '\\.')}\\.80 > `), `reply source is the ClusterIP: ${l}`);
  });

  test('iperf3 through the ClusterIP', async () => {
    const s = spawn('ip', ['netns', 'exec', ns('w1'), 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
    children.push(s);
    await new Promise((r) => setTimeout(r, 500));
    const r = sh(ns('c'), 'iperf3', ['-c', IPERF_VIP, '-p', '5201', '-t', '2', '-J'], { timeoutMs: 30000 });
    assert.equal(r.status, 0, r.stderr || r.stdout.slice(0, 300));
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
    assert.ok(j.end.sum_received.bytes > 10_000_000, `moved ${j.end.sum_received.bytes} bytes`);
  });

  test('a backend removed while a connection runs does not break that connection', async () => {
    // A running iperf3 stream through the service, then its backend is replaced by another.
    const run = spawn('ip', ['netns', 'exec', ns('c'), 'iperf3', '-c', IPERF_VIP, '-p', '5201', '-t', '4', '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(run);
    let out = '';
    run.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number | null>((res) => run.on('exit', res));
    await new Promise((r) => setTimeout(r, 1000));
    const upd = cli('service', 'add', '--name', 'iperf', '--cluster-ip', IPERF_VIP, '--port', '5201', '--backend', '10.212.0.250');
    assert.equal(upd.status, 0, upd.stderr);
    const list = cli('service', 'list').stdout;
    assert.match(list, /terminating/, `old backends drain as terminating:\n${list}`);
    const code = await done;
    assert.equal(code, 0, `iperf3 finished: ${out.slice(-300)}`);
    const j = JSON.parse(out) as { end: { sum_received: { bytes: number } } };
    assert.ok(j.end.sum_received.bytes > 1_000_000, 'the stream kept going after the change');
  });

  test('a service without backends answers ICMP port unreachable: curl fails fast, not by timeout', () => {
    const t0 = Date.now();
    const r = sh(ns('c'), 'curl', ['-s', '--max-time', '5', 'http://10.96.0.11/']);
    const ms = Date.now() - t0;
    assert.equal(r.status, 7, `curl exit 7 (connection refused), got ${r.status}`);
    assert.ok(ms < 2000, `failed in ${ms} ms`);
  });

  test('a Maglev service: its table is built by the agent and used by the datapath', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 3; i++) {
      const r = sh(ns('c'), 'curl', ['-s', '--max-time', '3', 'http://10.96.0.15/']);
      assert.equal(r.status, 0, `curl ${i}: ${r.stderr}`);
      seen.add(r.stdout.trim());
    }
    assert.equal(seen.size, 3, `flows spread by their hash: ${[...seen]}`);
    const tabs = JSON.parse(cli('bpf', 'lb', 'maglev', 'list', 'mag', '-o', 'json').stdout) as { table: number[] }[];
    assert.equal(tabs[0]!.table.length, 16381, 'Cilium default table size');
    const counts = new Map<number, number>();
    for (const id of tabs[0]!.table) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal(counts.size, 3, 'three backends in the table');
    assert.ok(Math.max(...counts.values()) - Math.min(...counts.values()) <= 1, `equal weights, slots within 1: ${[...counts.values()]}`);
  });

  test('externalIPs and loadBalancerIP frontends reach the same backends', () => {
    for (const ip of ['192.0.2.10', '192.0.2.11']) {
      const r = sh(ns('c'), 'curl', ['-s', '--max-time', '3', `http://${ip}/`]);
      assert.equal(r.status, 0, `${ip}: ${r.stderr}`);
      assert.match(r.stdout, /^web[123]$/m);
    }
    const lb = cli('bpf', 'lb', 'list').stdout;
    assert.match(lb, /^192\.0\.2\.10:80 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[ExternalIPs\]/m);
    assert.match(lb, /^192\.0\.2\.11:80 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[LoadBalancer\]/m);
  });

  test('a NodePort answers on the node address (the router IP); ClientIP affinity keeps a client on one backend', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = sh(ns('c'), 'curl', ['-s', '--max-time', '3', 'http://10.212.0.1:30080/']);
      assert.equal(r.status, 0, `curl ${i}: ${r.stderr}`);
      seen.add(r.stdout.trim());
    }
    assert.equal(seen.size, 1, `one backend for the client: ${[...seen]}`);
    const lb = cli('bpf', 'lb', 'list').stdout;
    assert.match(lb, /^10\.212\.0\.1:30080 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[NodePort, sessionAffinity\]/m);
  });

  test('internalTrafficPolicy Local keeps only the node\'s own endpoints as backends', () => {
    for (let i = 0; i < 8; i++) {
      const r = sh(ns('c'), 'curl', ['-s', '--max-time', '2', 'http://10.96.0.14/']);
      assert.equal(r.stdout.trim(), 'web1', `connection ${i} went to the local backend (${r.status})`);
    }
    const svc = JSON.parse(cli('service', 'list', '-o', 'json').stdout) as { name: string; frontends: { backends: { ip: string }[] }[] }[];
    assert.deepEqual(svc.find((x) => x.name === 'local')!.frontends[0]!.backends.map((b) => b.ip), ['10.212.0.3']);
  });

  test('a frontend already owned by another service is refused with the field named', async () => {
    await assert.rejects(
      agent.api('PUT', '/v1/service', { name: 'dup', clusterIP: VIP, ports: [{ port: 80 }], backends: [{ ip: '10.212.0.3' }] }),
      /clusterIP: 10\.96\.0\.10:80 is already a frontend of service "web"/,
    );
    await assert.rejects(agent.api('PUT', '/v1/service', { name: 'bad', clusterIP: '10.96.0.99', ports: [{ port: 80, nodePort: 80 }] }), /ports\.0\.nodePort: must be in 30000-32767/);
  });

  test('bpf lb list shows the frontends and backends in Cilium\'s layout; -o json works', () => {
    const t = cli('bpf', 'lb', 'list').stdout;
    assert.match(t, /^SERVICE ADDRESS\s+BACKEND ADDRESS \(REVNAT_ID\) \(SLOT\)$/m);
    assert.match(t, /^10\.96\.0\.11:80 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[ClusterIP, non-routable\]/m);
    const rows = JSON.parse(cli('bpf', 'lb', 'list', '-o', 'json').stdout) as { frontend: string }[];
    assert.ok(rows.some((r) => r.frontend === `${VIP}:5201`), 'port 5201 frontend present');
  });
});

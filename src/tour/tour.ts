/**
 * `npm start`: the guided tour. Brings up the embedded default topology —
 * one node, three pods — runs real traffic through Tapestry (ping, curl,
 * iperf3, one spoofing attempt), prints what happened, tears everything
 * down and exits non-zero if any step did not go as expected.
 *
 *   client 10.200.0.10        web 10.200.0.20 (HTTP :8080)       db 10.200.0.30 (iperf3)
 *      eth0 (TAP) ------------------- tapestry agent ------------------ eth0 (TAP)
 *                  service web: ClusterIP 10.96.0.10:80 -> web:8080
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentProcess, runPrefix, sh } from '../testbed/agent-process.ts';
import { formatEndpointList, formatMetricsList, type CountersJson, type EndpointJson } from '../cli/format.ts';
import { formatTable } from '../cli/table.ts';

interface Row {
  step: string;
  path: string;
  ok: boolean;
  detail: string;
}

const rows: Row[] = [];
const children: ChildProcess[] = [];

function record(step: string, path: string, ok: boolean, detail: string): void {
  rows.push({ step, path, ok, detail });
  process.stdout.write(`  ${ok ? 'ok  ' : 'FAIL'}  ${step.padEnd(8)} ${path.padEnd(34)} ${detail}\n`);
}

function pingRtt(out: string): string {
  const m = /= [\d.]+\/([\d.]+)\//.exec(out);
  const loss = /(\d+)% packet loss/.exec(out);
  return m ? `rtt avg ${m[1]} ms, ${loss?.[1] ?? '?'}% loss` : (out.trim().split('\n').pop() ?? '');
}

async function main(): Promise<number> {
  const p = runPrefix('tour');
  const ns = { client: `${p}-client`, web: `${p}-web`, db: `${p}-db` };
  const config = {
    node: { name: 'tour', ipv4PodCIDR: '10.200.0.0/24', ipv6PodCIDR: 'fd00:200::/64', mtu: 1500, tapPrefix: p },
    endpoints: [
      { name: 'client', netns: ns.client, labels: { app: 'client' }, ipv4: '10.200.0.10', ipv6: 'fd00:200::10' },
      { name: 'web', netns: ns.web, labels: { app: 'web', tier: 'frontend' }, ipv4: '10.200.0.20', ipv6: 'fd00:200::20' },
      { name: 'db', netns: ns.db, labels: { app: 'db', tier: 'backend' }, ipv4: '10.200.0.30', ipv6: 'fd00:200::30' },
    ],
    services: [{ name: 'web', clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'web' } }],
  };
  process.stdout.write('Tapestry tour: one node, three pods, every frame through the userspace datapath\n\n');
  const agent = await AgentProcess.start(p, config);
  let code = 0;
  try {
    const eps = await agent.api<EndpointJson[]>('GET', '/v1/endpoint');
    process.stdout.write(`${formatEndpointList(eps)}\n\n`);
    const ip = (name: string, v: 4 | 6) => eps.find((e) => e.name === name)![v === 4 ? 'ipv4' : 'ipv6']!;

    process.stdout.write('Traffic:\n');
    const pairs = [['client', 'web'], ['web', 'client'], ['client', 'db'], ['db', 'client'], ['web', 'db'], ['db', 'web']] as const;
    for (const [a, b] of pairs) {
      for (const v of [4, 6] as const) {
        const r = sh(ns[a], 'ping', [`-${v}`, '-c', '3', '-i', '0.2', '-W', '2', ip(b, v)]);
        record(`ping${v === 6 ? '6' : ''}`, `${a} -> ${b} (${ip(b, v)})`, r.status === 0, pingRtt(r.stdout));
      }
    }

    const web = spawn('ip', ['netns', 'exec', ns.web, process.execPath, '-e', "require('http').createServer((q,r)=>r.end('hello from web\\n')).listen(8080)"], { stdio: 'ignore' });
    children.push(web);
    for (const [from, v] of [['client', 4], ['client', 6], ['db', 4], ['client', 0]] as const) {
      const url = v === 4 ? `http://${ip('web', 4)}:8080/` : v === 6 ? `http://[${ip('web', 6)}]:8080/` : 'http://10.96.0.10/ (ClusterIP)';
      const r = sh(ns[from], 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '--max-time', '5', '--retry', '10', '--retry-connrefused', '--retry-delay', '0', url.split(' ')[0]!]);
      const [status, t] = r.stdout.split(' ');
      record('curl', `${from} -> web ${url}`, status === '200', `HTTP ${status ?? '-'} in ${(Number(t) * 1000).toFixed(1)} ms`);
    }
    web.kill('SIGKILL');

    const iperf = spawn('ip', ['netns', 'exec', ns.db, 'iperf3', '-s', '-B', ip('db', 4)], { stdio: 'ignore' });
    children.push(iperf);
    await new Promise((r) => setTimeout(r, 500));
    const tcp = sh(ns.client, 'iperf3', ['-c', ip('db', 4), '-t', '3', '-J'], { timeoutMs: 30000 });
    try {
      const j = JSON.parse(tcp.stdout) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number } } };
      record('iperf3', `client -> db TCP, 1 stream, 3 s`, true, `${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s, ${j.end.sum_sent.retransmits} retransmits`);
    } catch {
      record('iperf3', 'client -> db TCP, 1 stream, 3 s', false, tcp.stderr.trim() || tcp.stdout.slice(0, 200));
    }
    const udp = sh(ns.client, 'iperf3', ['-c', ip('db', 4), '-u', '-b', '200M', '-t', '2', '-J'], { timeoutMs: 30000 });
    try {
      const j = JSON.parse(udp.stdout) as { end: { sum: { bits_per_second: number; lost_percent: number } } };
      record('iperf3', 'client -> db UDP, 200 Mbit/s, 2 s', j.end.sum.lost_percent < 50, `${(j.end.sum.bits_per_second / 1e6).toFixed(0)} Mbit/s, ${j.end.sum.lost_percent.toFixed(2)}% lost`);
    } catch {
      record('iperf3', 'client -> db UDP, 200 Mbit/s, 2 s', false, udp.stderr.trim() || udp.stdout.slice(0, 200));
    }
    iperf.kill('SIGKILL');

    // Expected to fail: the datapath must drop a source address that is not the pod's.
    const before = await agent.api<CountersJson>('GET', '/v1/metrics/datapath');
    sh(ns.client, 'ip', ['addr', 'add', '10.200.0.99/32', 'dev', 'eth0']);
    const spoof = sh(ns.client, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', '10.200.0.99', ip('web', 4)]);
    const after = await agent.api<CountersJson>('GET', '/v1/metrics/datapath');
    const n132 = (c: CountersJson) => c.drops.filter((d) => d.reason === 132).reduce((a, d) => a + d.count, 0);
    record('spoof', 'client as 10.200.0.99 -> web', spoof.status !== 0 && n132(after) - n132(before) >= 2, `blocked, ${n132(after) - n132(before)} drops "Invalid source ip"`);

    const conns = await agent.api<{ type: string; proto: string }[]>('GET', '/v1/ct');
    process.stdout.write(`\nConntrack: ${conns.length} entries (${['OUT', 'IN', 'SVC'].map((t) => `${conns.filter((c) => c.type === t).length} ${t}`).join(', ')}); see tapestry bpf ct list global\n`);
    const counters = await agent.api<CountersJson>('GET', '/v1/metrics/datapath');
    const ports = await agent.api<{ name: string; rxFrames: number; rxBatches: number; txFrames: number; device: { rxBytes: number } }[]>('GET', '/v1/ports');
    process.stdout.write(`\nDatapath counters (tapestry bpf metrics list):\n${formatMetricsList(counters)}\n`);
    process.stdout.write(
      `\nDevices:\n${formatTable([
        ['DEVICE', 'RX FRAMES', 'RX BATCHES', 'FRAMES/WAKE-UP', 'AVG FRAME (B)', 'TX FRAMES'],
        ...ports.map((x) => [x.name, String(x.rxFrames), String(x.rxBatches), x.rxBatches ? (x.rxFrames / x.rxBatches).toFixed(1) : '-', x.rxFrames ? (x.device.rxBytes / x.rxFrames).toFixed(0) : '-', String(x.txFrames)]),
      ])}\n`,
    );
  } finally {
    for (const c of children) c.kill('SIGKILL');
    const exit = await agent.stopAndSweep();
    const left = sh(null, 'ip', ['netns', 'list']).stdout.split('\n').filter((l) => l.startsWith(p));
    record('teardown', 'agent stopped, namespaces removed', exit === 0 && left.length === 0, exit === 0 ? `exit 0, ${left.length} namespaces left` : `agent exit ${exit}`);
  }
  const failed = rows.filter((r) => !r.ok);
  process.stdout.write(`\n${rows.length - failed.length}/${rows.length} steps ok${failed.length ? `; failed: ${failed.map((f) => `${f.step} ${f.path}`).join('; ')}` : ''}\n`);
  if (failed.length) code = 1;
  return code;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    for (const c of children) c.kill('SIGKILL');
    process.stderr.write(`tapestry tour: ${e.message}\n`);
    process.exit(1);
  },
);

/**
 * End to end: a real agent, three pods in network namespaces, real ping,
 * curl, iperf3 and raw frames. Each test names what it proves.
 *
 *   ns <p>a (10.211.0.10)      ns <p>b (10.211.0.11)      ns <p>c (allocated)
 *        eth0 (TAP)                 eth0 (TAP)                 eth0 (TAP)
 *           \________________ tapestry agent __________________/
 *                     from-container / to-container
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';

const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface Ep {
  id: number;
  name: string;
  ipv4: string;
  ipv6: string;
  mac: string;
  hostMac: string;
  netns: string;
}
interface Port {
  endpointId: number;
  rxFrames: number;
  device: { rxBytes: number };
}
interface Counters {
  drops: { reason: number; count: number }[];
  forwards: { count: number; bytes: number }[];
}

const dropsOf = (c: Counters, reason: number): number => c.drops.filter((d) => d.reason === reason).reduce((a, d) => a + d.count, 0);

describe('pods on one node', { timeout: 300_000 }, () => {
  const p = runPrefix('te');
  const ns = { a: `${p}a`, b: `${p}b`, c: `${p}c`, d: `${p}d`, keep: `${p}k` };
  let agent: AgentProcess;
  let eps: Record<string, Ep>;
  const children: ChildProcess[] = [];

  before(async () => {
    // A namespace the test owns: the agent must use it and leave it behind.
    sh(null, 'ip', ['netns', 'add', ns.keep]);
    agent = await AgentProcess.start(p, {
      node: { name: 'e2e', ipv4PodCIDR: '10.211.0.0/24', ipv6PodCIDR: 'fd00:211::/64', mtu: 1500, tapPrefix: p },
      endpoints: [
        { name: 'a', netns: ns.a, labels: { app: 'a' }, ipv4: '10.211.0.10', ipv6: 'fd00:211::10' },
        { name: 'b', netns: ns.b, labels: { app: 'b' }, ipv4: '10.211.0.11', ipv6: 'fd00:211::11' },
        { name: 'c', netns: ns.c },
        { name: 'keep', netns: ns.keep },
      ],
    });
    const list = await agent.api<Ep[]>('GET', '/v1/endpoint');
    eps = Object.fromEntries(list.map((e) => [e.name, e]));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  const counters = () => agent.api<Counters>('GET', '/v1/metrics/datapath');
  const ping = (from: string, to: string, extra: string[] = []) => sh(from, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...extra, to]);

  test('ping crosses the datapath both ways, IPv4 and IPv6', () => {
    for (const [src, dst] of [['a', 'b'], ['b', 'a'], ['a', 'c'], ['c', 'b']] as const) {
      const r4 = ping(ns[src], eps[dst]!.ipv4);
      assert.equal(r4.status, 0, `${src} -> ${dst} IPv4: ${r4.stdout}${r4.stderr}`);
      const r6 = ping(ns[src], eps[dst]!.ipv6, ['-6']);
      assert.equal(r6.status, 0, `${src} -> ${dst} IPv6: ${r6.stdout}${r6.stderr}`);
    }
  });

  test('ARP and NDP for the router are answered with the host-side MAC', () => {
    const n4 = sh(ns.a, 'ip', ['-j', 'neigh', 'show', '10.211.0.1']).stdout;
    const n6 = sh(ns.a, 'ip', ['-j', '-6', 'neigh', 'show', 'fd00:211::1']).stdout;
    assert.equal((JSON.parse(n4) as { lladdr: string }[])[0]?.lladdr, eps['a']!.hostMac);
    assert.equal((JSON.parse(n6) as { lladdr: string }[])[0]?.lladdr, eps['a']!.hostMac);
    // the router IPv6 address answers ping (Cilium's ICMPv6 echo reply)
    assert.equal(ping(ns.a, 'fd00:211::1', ['-6']).status, 0);
  });

  test('curl reaches an HTTP server in another pod', async () => {
    const srv = spawn('ip', ['netns', 'exec', ns.b, process.execPath, '-e', "require('http').createServer((q,r)=>r.end('hello from b\\n')).listen(8080)"], { stdio: 'ignore' });
    children.push(srv);
    let out = '';
    for (let i = 0; i < 50 && !out.includes('hello'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      out = sh(ns.a, 'curl', ['-s', '--max-time', '3', `http://${eps['b']!.ipv4}:8080/`]).stdout;
    }
    assert.equal(out, 'hello from b\n');
    const v6 = sh(ns.c, 'curl', ['-s', '--max-time', '3', `http://[${eps['b']!.ipv6}]:8080/`]).stdout;
    assert.equal(v6, 'hello from b\n');
    srv.kill('SIGKILL');
  });

  test('iperf3 TCP carries TSO super-frames; UDP gets through', async () => {
    const srv = spawn('ip', ['netns', 'exec', ns.b, 'iperf3', '-s', '-B', eps['b']!.ipv4, '-p', '5201'], { stdio: 'ignore' });
    children.push(srv);
    await new Promise((r) => setTimeout(r, 500));
    const portOf = async (id: number) => (await agent.api<Port[]>('GET', '/v1/ports')).find((x) => x.endpointId === id)!;
    const before = await portOf(eps['a']!.id);
    const tcp = sh(ns.a, 'iperf3', ['-c', eps['b']!.ipv4, '-t', '2', '-J'], { timeoutMs: 30000 });
    assert.equal(tcp.status, 0, tcp.stderr);
    const t = JSON.parse(tcp.stdout) as { end: { sum_received: { bytes: number } } };
    assert.ok(t.end.sum_received.bytes > 10_000_000, `TCP moved ${t.end.sum_received.bytes} bytes`);
    const afterTcp = await portOf(eps['a']!.id);
    const avg = (afterTcp.device.rxBytes - before.device.rxBytes) / (afterTcp.rxFrames - before.rxFrames);
    assert.ok(avg > 1514, `frames from the sender average ${avg.toFixed(0)} bytes: no TSO super-frames`);
    const udp = sh(ns.a, 'iperf3', ['-c', eps['b']!.ipv4, '-u', '-b', '50M', '-t', '2', '-J'], { timeoutMs: 30000 });
    assert.equal(udp.status, 0, udp.stderr);
    const u = JSON.parse(udp.stdout) as { end: { sum: { packets: number; lost_packets: number } } };
    assert.ok(u.end.sum.packets - u.end.sum.lost_packets > 100, `UDP delivered ${u.end.sum.packets - u.end.sum.lost_packets} datagrams`);
    srv.kill('SIGKILL');
  });

  test('conntrack shows the connections the pods made (CLI: bpf ct list global), and flushes', () => {
    const cli = (...args: string[]) => sh(null, TAPESTRY, ['--socket', agent.socket, ...args]);
    const r = sh(ns.a, 'curl', ['-s', '-o', '/dev/null', '--max-time', '3', `http://${eps['b']!.ipv4}:9/`]);
    assert.notEqual(r.status, 0, 'nothing listens on port 9: the SYN is answered with a RST');
    const list = cli('bpf', 'ct', 'list', 'global');
    assert.equal(list.status, 0, list.stderr);
    const line = list.stdout.split('\n').find((l) => l.startsWith(`TCP OUT ${eps['a']!.ipv4}:`) && l.includes(` -> ${eps['b']!.ipv4}:9 `));
    assert.ok(line, `an OUT entry for a -> b:9 in:\n${list.stdout}`);
    assert.match(line, /expires=\d+ \(remaining: \d+ sec\(s\)\) Packets=\d+ Bytes=\d+ RxFlagsSeen=0x[0-9a-f]{2} .* SourceSecurityID=\d+ IfIndex=\d+ BackendID=0$/);
    const json = JSON.parse(cli('bpf', 'ct', 'list', 'global', '-o', 'json').stdout) as { type: string; proto: string }[];
    assert.ok(json.some((e) => e.type === 'IN' && e.proto === 'TCP'), 'the server side has its IN entry');
    assert.match(cli('bpf', 'ct', 'flush', 'global').stdout, /^Flushed \d+ entries/);
    assert.equal(cli('bpf', 'ct', 'list', 'global').stdout.trim(), '', 'empty after flush');
  });

  test('a spoofed source address is dropped with "Invalid source ip" (132) and counted', async () => {
    sh(ns.a, 'ip', ['addr', 'add', '10.211.0.99/32', 'dev', 'eth0']);
    const c0 = await counters();
    const r = ping(ns.a, eps['b']!.ipv4, ['-I', '10.211.0.99']);
    assert.notEqual(r.status, 0, 'spoofed ping must not get through');
    const c1 = await counters();
    assert.ok(dropsOf(c1, 132) - dropsOf(c0, 132) >= 3, 'three spoofed packets counted as 132');
    sh(ns.a, 'ip', ['addr', 'del', '10.211.0.99/32', 'dev', 'eth0']);
  });

  test('TTL expiry is dropped with "TTL exceeded" (196) and counted', async () => {
    const c0 = await counters();
    assert.notEqual(ping(ns.a, eps['b']!.ipv4, ['-t', '1']).status, 0);
    assert.notEqual(ping(ns.a, eps['b']!.ipv6, ['-6', '-t', '1']).status, 0);
    const c1 = await counters();
    assert.ok(dropsOf(c1, 196) - dropsOf(c0, 196) >= 6);
  });

  test('a flood of malformed frames is dropped with reasons; the agent keeps forwarding', async () => {
    // Every frame the datapath reads from a's TAP during the flood must end
    // as a counted drop: 134 for the malformed ones, 139 for the unknown L3.
    const portA = async () => (await agent.api<Port[]>('GET', '/v1/ports')).find((x) => x.endpointId === eps['a']!.id)!.rxFrames;
    const c0 = await counters();
    const rx0 = await portA();
    const r = sh(ns.a, PY, [join(import.meta.dirname, 'flood.py'), 'eth0', eps['a']!.mac, eps['a']!.hostMac, '300'], { timeoutMs: 60000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Number(r.stdout) >= 3000, `sent ${r.stdout}`);
    let rx = 0;
    let d134 = 0;
    let d139 = 0;
    for (let i = 0; i < 50; i++) {
      await new Promise((res) => setTimeout(res, 100));
      const c = await counters();
      rx = (await portA()) - rx0;
      d134 = dropsOf(c, 134) - dropsOf(c0, 134);
      d139 = dropsOf(c, 139) - dropsOf(c0, 139);
      if (d134 + d139 >= rx) break;
    }
    assert.ok(rx >= 300, `the datapath read ${rx} flood frames`);
    assert.equal(d134 + d139, rx, `${rx} frames read, ${d134} dropped as Invalid packet, ${d139} as Unsupported L3 protocol`);
    assert.ok(d134 > 0 && d139 > 0, 'both drop reasons seen');
    assert.ok(agent.alive, 'agent survived');
    assert.equal(ping(ns.a, eps['b']!.ipv4).status, 0, 'still forwarding');
  });

  test('endpoints are added and deleted at run time through the API', async () => {
    const d = await agent.api<Ep>('PUT', '/v1/endpoint', { name: 'd', netns: ns.d, labels: { app: 'd' } });
    assert.match(d.ipv4, /^10\.211\.0\./);
    assert.equal(ping(ns.a, d.ipv4).status, 0, 'new endpoint reachable');
    await agent.api('DELETE', `/v1/endpoint/${d.id}`);
    assert.ok(!netnsWithPrefix(p).includes(ns.d), 'namespace the agent created is gone');
    assert.notEqual(ping(ns.a, d.ipv4, ['-W', '1']).status, 0, 'deleted endpoint unreachable');
  });

  test('bad API input is refused with the field named; nothing changes', async () => {
    const n0 = (await agent.api<Ep[]>('GET', '/v1/endpoint')).length;
    await assert.rejects(agent.api('PUT', '/v1/endpoint', { name: 'x', netns: `${p}x`, ipv4: '10.99.0.1' }), /ipv4: 10\.99\.0\.1 is not in node\.ipv4PodCIDR/);
    await assert.rejects(agent.api('PUT', '/v1/endpoint', { name: 'Bad_Name', netns: `${p}x` }), /^ApiError: name: /);
    await assert.rejects(agent.api('PUT', '/v1/endpoint', { name: 'a', netns: `${p}y` }), /name: endpoint "a" already exists/);
    await assert.rejects(agent.api('PUT', '/v1/endpoint', { name: 'y', netns: `${p}y`, colour: 'red' }), /unknown field\(s\) colour/);
    assert.equal((await agent.api<Ep[]>('GET', '/v1/endpoint')).length, n0);
    assert.ok(!netnsWithPrefix(p).includes(`${p}x`) && !netnsWithPrefix(p).includes(`${p}y`), 'no namespace was created for refused requests');
  });

  test('SIGTERM tears down what the agent made and leaves what it did not', async () => {
    const code = await agent.stop();
    assert.equal(code, 0);
    const left = netnsWithPrefix(p);
    assert.deepEqual(left, [ns.keep], 'only the pre-existing namespace is left');
    assert.notEqual(sh(ns.keep, 'ip', ['link', 'show', 'eth0']).status, 0, 'its eth0 (our TAP) is gone');
  });
});

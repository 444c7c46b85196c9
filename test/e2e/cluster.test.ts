/**
 * End to end: nodes on an underlay. Each cluster is built in namespaces by
 * src/testbed/cluster.ts (underlay bridge, one agent per node inside its
 * node namespace, an outside host at 10.99.0.100), and real ping, curl,
 * iperf3 and tcpdump run through it.
 *
 *   pod a@n1 ──VXLAN 8472 (VNI = identity)──> pod a@n2        tunnel mode
 *   pod a@n1 ──routed by pod CIDR──────────────> pod a@n2     native mode
 *   pod a@n1 ──SNAT to 10.99.0.11──> outside 10.99.0.100      masquerade
 *   node n1 stack <──tapestry_host──> pods                     host <-> pod
 *   pod a@n1 <──VXLAN──> pod a@k2 (the kernel's own vxlan)    interop
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, OUTSIDE_IP, type ClusterSpec } from '../../src/testbed/cluster.ts';
import { TAPESTRY, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { bg, capture, waitFor } from './netns-tools.ts';

const VIP = '10.96.0.20';

/** An HTTP server on :8080 in `ns` answering its own name. */
function nameServer(children: ChildProcess[], ns: string, name: string): void {
  bg(children, ns, process.execPath, ['-e', `require('http').createServer((q,r)=>r.end('${name}\\n')).listen(8080)`]);
}

/** Field `f` of a tshark line whose fields may be "outer,inner" lists: the outer value. */
function outer(line: string, f: number): string {
  return (line.split('\t')[f] ?? '').split(',')[0]!;
}

function ping(ns: string, dst: string, extra: string[] = []): { ok: boolean; out: string } {
  const r = sh(ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...extra, dst], { timeoutMs: 15000 });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

function cli(c: Cluster, node: number, ...args: string[]) {
  return sh(null, TAPESTRY, ['--socket', c.nodes[node]!.config.api.socket, ...args]);
}

/** Count RSTs and ICMP unreachables a node's kernel sends toward Tapestry (its only way out) while `traffic` runs. */
async function kernelAnswers(c: Cluster, traffic: () => void): Promise<{ rst: number; unreach: number; captured: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tpcap-'));
  const caps = await Promise.all(
    c.nodes.map(async (n, k) => {
      const file = join(dir, `n${k}.pcap`);
      return { file, cap: await capture(n.ns, 'tapestry_host', file, 'tcp[tcpflags] & tcp-rst != 0 or icmp[icmptype] == icmp-unreach or icmp6', ['-Q', 'out']) };
    }),
  );
  try {
    traffic();
  } finally {
    await Promise.all(caps.map(({ cap }) => cap.stop()));
  }
  let rst = 0, unreach = 0, captured = 0;
  for (const { file } of caps) {
    const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'tcp.flags.reset', '-e', 'icmp.type'], { encoding: 'utf8', timeout: 20000 });
    for (const line of r.stdout.split('\n').filter((l) => l.trim() !== '')) {
      captured++;
      const [reset, icmpType] = line.split('\t');
      if (reset === '1' || reset === 'True') rst++;
      if (icmpType === '3') unreach++;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return { rst, unreach, captured };
}

describe('two nodes, VXLAN tunnel', { timeout: 300_000 }, () => {
  const children: ChildProcess[] = [];
  let c: Cluster;
  before(async () => {
    const spec: ClusterSpec = {
      prefix: runPrefix('tc'),
      nodes: [
        { name: 'n1', pods: [{ name: 'a', labels: { app: 'client' } }, { name: 'b', labels: { app: 'web' } }] },
        { name: 'n2', pods: [{ name: 'a', labels: { app: 'other' } }, { name: 'b', labels: { app: 'web' } }] },
      ],
      services: [{ name: 'web', clusterIP: VIP, ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'web' } }],
    };
    c = await Cluster.up(spec);
    nameServer(children, c.nodes[0]!.pods[1]!.ns, 'web-n1');
    nameServer(children, c.nodes[1]!.pods[1]!.ns, 'web-n2');
    nameServer(children, c.nodes[1]!.pods[0]!.ns, 'a-n2');
    for (const [n, p] of [[0, 1], [1, 1], [1, 0]] as const) {
      const pod = c.nodes[n]!.pods[p]!;
      await waitFor(`server in ${pod.ns}`, () => sh(pod.ns, 'curl', ['-s', '--max-time', '1', 'http://127.0.0.1:8080/']).status === 0);
    }
  });
  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c?.down();
  });

  test('same node: pod to pod', () => {
    const r = ping(c.nodes[0]!.pods[0]!.ns, c.nodes[0]!.pods[1]!.ipv4);
    assert.ok(r.ok, r.out);
  });

  test('cross node: ping IPv4 and IPv6 through the tunnel', () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const r4 = ping(a.ns, b.ipv4);
    assert.ok(r4.ok, r4.out);
    const r6 = ping(a.ns, b.ipv6, ['-6']);
    assert.ok(r6.ok, r6.out);
  });

  test('cross node: curl and an iperf3 TCP stream', () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const r = sh(a.ns, 'curl', ['-s', '--max-time', '5', `http://${b.ipv4}:8080/`]);
    assert.equal(r.stdout.trim(), 'a-n2', r.stderr);
    const srv = bg(children, b.ns, 'iperf3', ['-s', '-1', '-p', '5301']);
    spawnSync('sleep', ['0.5']);
    const ip = sh(a.ns, 'iperf3', ['-c', b.ipv4, '-p', '5301', '-t', '2', '-J'], { timeoutMs: 30000 });
    srv.kill();
    assert.equal(ip.status, 0, ip.stderr + ip.stdout.slice(0, 500));
    const bytes = (JSON.parse(ip.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
    assert.ok(bytes > 10_000_000, `only ${bytes} bytes crossed`);
  });

  test('the overlay carries the source identity in the VNI (tshark decodes VXLAN)', async () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'tpvx-'));
    const file = join(dir, 'underlay.pcap');
    const cap = await capture(c.underlay.ns, c.underlay.bridge, file, 'udp port 8472');
    try {
      assert.ok(ping(a.ns, b.ipv4).ok, 'ping during capture');
    } finally {
      await cap.stop();
    }
    const t = spawnSync('tshark', ['-r', file, '-d', 'udp.port==8472,vxlan', '-T', 'fields', '-e', 'vxlan.vni', '-e', 'ip.src', '-e', 'ip.dst'], { encoding: 'utf8', timeout: 20000 });
    rmSync(dir, { recursive: true, force: true });
    const eps = JSON.parse(cli(c, 0, 'endpoint', 'list', '-o', 'json').stdout) as { name: string; identity: number }[];
    const idA = eps.find((e) => e.name === 'a')!.identity;
    const lines = t.stdout.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length >= 6, `expected VXLAN packets, got: ${t.stdout} ${t.stderr}`);
    // Requests from pod a@n1 carry its identity; both directions decode as VXLAN.
    const fromA = lines.filter((l) => outer(l, 1) === c.nodes[0]!.address);
    assert.ok(fromA.length >= 3, `no VXLAN from n1: ${lines.join(' | ')}`);
    for (const l of fromA) assert.equal(Number(outer(l, 0)), idA, `VNI of ${l}`);
  });

  test('ClusterIP with backends on both nodes', () => {
    const a = c.nodes[0]!.pods[0]!;
    const seen = new Set<string>();
    for (let k = 0; k < 30 && seen.size < 2; k++) {
      const r = sh(a.ns, 'curl', ['-s', '--max-time', '3', `http://${VIP}/`]);
      assert.equal(r.status, 0, `curl ${VIP}: ${r.stderr}`);
      seen.add(r.stdout.trim());
    }
    assert.deepEqual([...seen].sort(), ['web-n1', 'web-n2']);
  });

  test('pod to the world through masquerade', () => {
    const a = c.nodes[0]!.pods[0]!;
    const r = sh(a.ns, 'curl', ['-s', '--max-time', '5', `http://${OUTSIDE_IP}/`]);
    assert.equal(r.status, 0, r.stderr);
    // The outside server sees the node's address, not the pod's.
    assert.match(r.stdout.trim(), new RegExp(`^${c.nodes[0]!.address.replace(/\./g, '\\.')}:\\d+$`));
    const nat = cli(c, 0, 'bpf', 'nat', 'list').stdout;
    assert.match(nat, new RegExp(`TCP OUT ${a.ipv4.replace(/\./g, '\\.')}:\\d+ -> ${OUTSIDE_IP.replace(/\./g, '\\.')}:80 XLATE_SRC ${c.nodes[0]!.address.replace(/\./g, '\\.')}:\\d+`));
    assert.ok(ping(a.ns, OUTSIDE_IP).ok, 'ICMP echo through masquerade');
  });

  test('host to pods (local and remote) and pod to host', () => {
    const n1 = c.nodes[0]!;
    assert.ok(ping(n1.ns, n1.pods[0]!.ipv4).ok, 'node stack -> local pod');
    assert.ok(ping(n1.ns, c.nodes[1]!.pods[0]!.ipv4).ok, 'node stack -> remote pod');
    assert.ok(ping(n1.pods[0]!.ns, n1.address).ok, 'pod -> node address');
    assert.ok(ping(n1.pods[0]!.ns, n1.router4).ok, 'pod -> router address');
    const r = sh(n1.ns, 'curl', ['-s', '--max-time', '5', `http://${c.nodes[1]!.pods[0]!.ipv4}:8080/`]);
    assert.equal(r.stdout.trim(), 'a-n2', 'node stack curls a remote pod');
  });

  test('the outside reaches the node address through the node stack', () => {
    assert.ok(ping(c.outside.ns, c.nodes[0]!.address).ok, 'outside -> node address');
  });

  test('MTU: pods get 1450; a too-big packet gets ICMP fragmentation needed / ICMPv6 Packet Too Big', () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const link = sh(a.ns, 'ip', ['-o', 'link', 'show', 'eth0']).stdout;
    assert.match(link, /mtu 1450/);
    // Pretend the pod believes in 1500: the datapath must answer, not drop silently.
    sh(a.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1500']);
    sh(a.ns, 'ip', ['route', 'flush', 'cache']);
    try {
      const r = sh(a.ns, 'ping', ['-c', '2', '-i', '0.3', '-W', '1', '-M', 'do', '-s', '1472', b.ipv4], { timeoutMs: 10000 });
      assert.match(r.stdout + r.stderr, /mtu\s*=\s*1450/i);
      const r6 = sh(a.ns, 'ping', ['-6', '-c', '2', '-i', '0.3', '-W', '1', '-M', 'do', '-s', '1452', b.ipv6], { timeoutMs: 10000 });
      assert.match(r6.stdout + r6.stderr, /mtu\s*=\s*1450/i, 'IPv6: Packet Too Big with the tunnel MTU');
    } finally {
      sh(a.ns, 'ip', ['link', 'set', 'eth0', 'mtu', '1450']);
    }
  });

  test('no packet answered by a node kernel for flows Tapestry owns', async () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const counts = await kernelAnswers(c, () => {
      const srv = bg(children, b.ns, 'iperf3', ['-s', '-1', '-p', '5302']);
      spawnSync('sleep', ['0.5']);
      sh(a.ns, 'iperf3', ['-c', b.ipv4, '-p', '5302', '-t', '3'], { timeoutMs: 30000 });
      sh(a.ns, 'iperf3', ['-c', OUTSIDE_IP, '-t', '2'], { timeoutMs: 30000 });
      srv.kill();
    });
    assert.equal(counts.rst, 0, `kernel RSTs: ${JSON.stringify(counts)}`);
    assert.equal(counts.unreach, 0, `kernel ICMP unreachables: ${JSON.stringify(counts)}`);
  });

  test('CLI: ipcache, tunnel, nat and status', () => {
    const ipc = cli(c, 0, 'bpf', 'ipcache', 'list').stdout;
    assert.match(ipc, new RegExp(`${c.nodes[1]!.pods[0]!.ipv4.replace(/\./g, '\\.')}/32\\s+identity=\\d+ encryptkey=0 tunnelendpoint=${c.nodes[1]!.address.replace(/\./g, '\\.')}`));
    const tun = cli(c, 0, 'bpf', 'tunnel', 'list').stdout;
    assert.match(tun, /10\.200\.2\.0:0\s+10\.99\.0\.12:0/);
    const st = JSON.parse(cli(c, 0, 'status', '-o', 'json').stdout) as { cluster: { routingMode: string; uplink: { device: string }; nodes: { name: string }[] } };
    assert.equal(st.cluster.routingMode, 'tunnel');
    assert.equal(st.cluster.uplink.device, 'eth0');
    assert.deepEqual(st.cluster.nodes.map((n) => n.name), ['n2']);
    const text = cli(c, 0, 'status').stdout;
    assert.match(text, /Tunnel \[vxlan/);
  });
});

describe('two nodes, native routing', { timeout: 200_000 }, () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.up({ prefix: runPrefix('tn'), routingMode: 'native', nodes: [{ name: 'n1', pods: [{ name: 'a' }] }, { name: 'n2', pods: [{ name: 'a' }] }] });
  });
  after(async () => {
    await c?.down();
  });

  test('pods reach each other unencapsulated, routed by pod CIDR', async () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'tpnr-'));
    const file = join(dir, 'u.pcap');
    const cap = await capture(c.underlay.ns, c.underlay.bridge, file, 'icmp or udp');
    try {
      const r = ping(a.ns, b.ipv4);
      assert.ok(r.ok, r.out);
    } finally {
      await cap.stop();
    }
    const t = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'udp.dstport'], { encoding: 'utf8', timeout: 20000 });
    rmSync(dir, { recursive: true, force: true });
    const lines = t.stdout.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.some((l) => l.startsWith(`${a.ipv4}\t${b.ipv4}`)), `pod addresses on the wire: ${lines.join(' | ')}`);
    assert.ok(!lines.some((l) => l.endsWith('\t8472')), 'no VXLAN in native mode');
  });

  test('TCP across nodes in native mode', () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    const srv = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s', '-1', '-p', '5303'], { stdio: 'ignore' });
    spawnSync('sleep', ['0.5']);
    const r = sh(a.ns, 'iperf3', ['-c', b.ipv4, '-p', '5303', '-t', '2', '-J'], { timeoutMs: 30000 });
    srv.kill();
    assert.equal(r.status, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes > 10_000_000, 'bytes crossed');
  });
});

describe('two nodes, Geneve tunnel', { timeout: 200_000 }, () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.up({ prefix: runPrefix('tg'), tunnelProtocol: 'geneve', nodes: [{ name: 'n1', pods: [{ name: 'a' }] }, { name: 'n2', pods: [{ name: 'a' }] }] });
  });
  after(async () => {
    await c?.down();
  });

  test('pods reach each other over Geneve on 6081', () => {
    const a = c.nodes[0]!.pods[0]!, b = c.nodes[1]!.pods[0]!;
    assert.ok(ping(a.ns, b.ipv4).ok, 'ping over geneve');
    const r = sh(a.ns, 'curl', ['-s', '--max-time', '5', `http://${OUTSIDE_IP}/`]);
    assert.equal(r.status, 0, 'masquerade works in geneve mode too');
  });
});

describe('interop with the kernel\'s own vxlan', { timeout: 200_000 }, () => {
  let c: Cluster;
  const children: ChildProcess[] = [];
  before(async () => {
    c = await Cluster.up({ prefix: runPrefix('tk'), nodes: [{ name: 'n1', pods: [{ name: 'a' }] }], kernelNodes: [{ name: 'k2', pods: [{ name: 'a' }], vni: 4242 }] });
    nameServer(children, c.kernelNodes[0]!.pods[0]!.ns, 'kernel-pod');
    nameServer(children, c.nodes[0]!.pods[0]!.ns, 'tapestry-pod');
    await waitFor('servers', () => sh(c.kernelNodes[0]!.pods[0]!.ns, 'curl', ['-s', '--max-time', '1', 'http://127.0.0.1:8080/']).status === 0 && sh(c.nodes[0]!.pods[0]!.ns, 'curl', ['-s', '--max-time', '1', 'http://127.0.0.1:8080/']).status === 0);
  });
  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c?.down();
  });

  test('Tapestry pod <-> kernel-vxlan pod: ping and curl both ways, VNIs decoded by tshark', async () => {
    const t = c.nodes[0]!.pods[0]!, k = c.kernelNodes[0]!.pods[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'tpik-'));
    const file = join(dir, 'u.pcap');
    const cap = await capture(c.underlay.ns, c.underlay.bridge, file, 'udp port 8472');
    try {
      assert.ok(ping(t.ns, k.ipv4).ok, 'tapestry -> kernel');
      assert.ok(ping(k.ns, t.ipv4).ok, 'kernel -> tapestry');
      assert.equal(sh(t.ns, 'curl', ['-s', '--max-time', '5', `http://${k.ipv4}:8080/`]).stdout.trim(), 'kernel-pod');
      assert.equal(sh(k.ns, 'curl', ['-s', '--max-time', '5', `http://${t.ipv4}:8080/`]).stdout.trim(), 'tapestry-pod');
    } finally {
      await cap.stop();
    }
    const out = spawnSync('tshark', ['-r', file, '-d', 'udp.port==8472,vxlan', '-T', 'fields', '-e', 'ip.src', '-e', 'vxlan.vni'], { encoding: 'utf8', timeout: 20000 }).stdout;
    rmSync(dir, { recursive: true, force: true });
    const eps = JSON.parse(cli(c, 0, 'endpoint', 'list', '-o', 'json').stdout) as { identity: number }[];
    const vnisFrom = (src: string) => new Set(out.split('\n').filter((l) => outer(l, 0) === src).map((l) => Number(outer(l, 1))));
    assert.deepEqual([...vnisFrom(c.nodes[0]!.address)], [eps[0]!.identity], 'Tapestry sends its pod identity as VNI');
    assert.deepEqual([...vnisFrom(c.kernelNodes[0]!.address)], [4242], 'the kernel node sends its configured VNI');
  });
});

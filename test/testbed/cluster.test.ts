/**
 * The cluster testbed on its own, without agents (`agent: false`): the
 * plan's names, addresses and agent configs; build and teardown, also
 * after a failed step; the outside host's servers over the underlay; and
 * two kernel nodes talking VXLAN to each other through their vx0 devices.
 *
 *                 ns <p>u: br0  (tcpdump -w here)
 *          port k1 |                 | port k2
 *     ns <p>k1 eth0 10.99.0.11   ns <p>k2 eth0 10.99.0.12
 *        vx0 (VNI 77)               vx0 (VNI 78)
 *        p0 -> pod a 10.200.1.10    p0 -> pod a 10.200.2.10
 *        p1 -> pod b 10.200.1.11
 *
 * Each test builds its own cluster under a sub-prefix of the run prefix;
 * `after` removes every namespace with the run prefix, whatever happened.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/agent/config.ts';
import { netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { Cluster, INTEROP_NFT_TABLE, planCluster, type ClusterSpec } from '../../src/testbed/cluster.ts';

const p = runPrefix('tk');

/** Command lines of live processes that mention `s` (our outside server carries its namespace name). */
function processesMentioning(s: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(s) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Temp dirs a cluster with `prefix` left behind. */
const tempDirsOf = (prefix: string): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith(`${prefix}-cluster-`));

describe(`cluster testbed ${p}`, { timeout: 180_000 }, () => {
  const clusters: Cluster[] = [];
  const children: ChildProcess[] = [];
  const files: string[] = [];

  const up = async (spec: ClusterSpec): Promise<Cluster> => {
    const c = await Cluster.up(spec);
    clusters.push(c);
    return c;
  };

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const c of clusters) await c.down();
    for (const ns of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', ns]);
    for (const f of files) rmSync(f, { force: true });
  });

  test(`${p}: the plan gives deterministic names, addresses and agent configs`, () => {
    const q = `${p}p`;
    const plan = planCluster(
      {
        prefix: q,
        nodes: [
          { name: 'n1', pods: [{ name: 'a', labels: { app: 'a' } }, { name: 'b' }] },
          { name: 'n2', pods: [{ name: 'a', ipv4: '10.200.2.99' }] },
        ],
        kernelNodes: [{ name: 'kern', pods: [{ name: 'c' }] }],
        services: [{ name: 'web' }],
      },
      '/tmp/x',
    );
    assert.equal(plan.underlay.ns, `${q}u`);
    assert.equal(plan.outside.ns, `${q}o`);
    assert.deepEqual(
      [...plan.nodes, ...plan.kernelNodes].map((n) => [n.ns, n.address, n.podCIDR4, n.podCIDR6, n.pods.map((x) => x.ns)]),
      [
        [`${q}n1`, '10.99.0.11', '10.200.1.0/24', 'fd00:200:1::/64', [`${q}n1-a`, `${q}n1-b`]],
        [`${q}n2`, '10.99.0.12', '10.200.2.0/24', 'fd00:200:2::/64', [`${q}n2-a`]],
        [`${q}k3`, '10.99.0.13', '10.200.3.0/24', 'fd00:200:3::/64', [`${q}k3-c`]],
      ],
    );
    assert.equal(plan.kernelNodes[0]!.vni, 2, 'kernel nodes send with the world identity by default');
    assert.deepEqual(plan.nodes[0]!.config, {
      node: {
        name: 'n1',
        ipv4PodCIDR: '10.200.1.0/24',
        ipv6PodCIDR: 'fd00:200:1::/64',
        tapPrefix: q.slice(0, 10),
        uplink: { device: 'eth0', address: '10.99.0.11/24' },
      },
      endpoints: [
        { name: 'a', netns: `${q}n1-a`, labels: { app: 'a' }, ipv4: '10.200.1.10', ipv6: 'fd00:200:1::10' },
        { name: 'b', netns: `${q}n1-b`, labels: {}, ipv4: '10.200.1.11', ipv6: 'fd00:200:1::11' },
      ],
      services: [{ name: 'web' }],
      cluster: {
        routingMode: 'tunnel',
        tunnelProtocol: 'vxlan',
        masquerade: true,
        nodes: [
          { name: 'n2', address: '10.99.0.12', ipv4PodCIDR: '10.200.2.0/24', ipv6PodCIDR: 'fd00:200:2::/64', endpoints: [{ name: 'a', labels: {}, ipv4: '10.200.2.99', ipv6: 'fd00:200:2::10' }] },
          { name: 'kern', address: '10.99.0.13', ipv4PodCIDR: '10.200.3.0/24', ipv6PodCIDR: 'fd00:200:3::/64', endpoints: [{ name: 'c', labels: {}, ipv4: '10.200.3.10', ipv6: 'fd00:200:3::10' }] },
        ],
      },
      api: { socket: '/tmp/x/n1.sock' },
    });
    // Every generated config passes the agent's own validation, in every mode.
    for (const routingMode of ['tunnel', 'native'] as const) {
      const spec: ClusterSpec = { prefix: q, routingMode, nodes: [{ name: 'n1', pods: [{ name: 'a' }] }, { name: 'n2', pods: [] }], kernelNodes: [{ name: 'k', pods: [{ name: 'b' }] }] };
      for (const n of planCluster(spec, '/tmp/x').nodes) assert.doesNotThrow(() => parseConfig(stringify(n.config), `${n.name}.yaml`));
    }
    assert.throws(() => planCluster({ prefix: q, nodes: [], kernelNodes: [{ name: 'k', pods: [] }], tunnelProtocol: 'geneve' }, '/tmp/x'), /VXLAN only/);
    assert.throws(() => planCluster({ prefix: q, nodes: [{ name: 'x', pods: [] }, { name: 'x', pods: [] }] }, '/tmp/x'), /used twice/);
  });

  test(`${p}: builds the topology and removes every namespace it made`, async () => {
    const q = `${p}b`;
    const c = await up({
      prefix: q,
      agent: false,
      nodes: [
        { name: 'n1', pods: [{ name: 'a' }, { name: 'b' }] },
        { name: 'n2', pods: [{ name: 'a' }] },
      ],
      kernelNodes: [{ name: 'k', pods: [{ name: 'a' }] }],
    });
    const expected = [`${q}u`, `${q}o`, `${q}n1`, `${q}n1-a`, `${q}n1-b`, `${q}n2`, `${q}n2-a`, `${q}k3`, `${q}k3-a`];
    assert.deepEqual(netnsWithPrefix(q).sort(), [...expected].sort());
    assert.deepEqual([...c.namespaces].sort(), [...expected].sort());

    const ports = JSON.parse(sh(c.underlay.ns, 'ip', ['-j', 'link', 'show', 'master', c.underlay.bridge]).stdout) as { ifname: string }[];
    assert.deepEqual(ports.map((x) => x.ifname).sort(), ['k3', 'n1', 'n2', 'o']);

    // A Tapestry node: eth0 up, no address at all, IPv6 off on it, no forwarding.
    for (const n of c.nodes) {
      const [eth0] = JSON.parse(sh(n.ns, 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']).stdout) as { flags: string[]; address: string; addr_info: unknown[] }[];
      assert.ok(eth0!.flags.includes('UP'), `${n.ns} eth0 is not up: ${eth0!.flags.join(',')}`);
      assert.deepEqual(eth0!.addr_info, [], `${n.ns} eth0 has addresses`);
      assert.equal(eth0!.address, n.mac);
      assert.equal(sh(n.ns, 'sysctl', ['-n', 'net.ipv6.conf.eth0.disable_ipv6']).stdout.trim(), '1');
      assert.equal(sh(n.ns, 'sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '0');
    }
    const outsidePids = sh(null, 'ip', ['netns', 'pids', c.outside.ns]).stdout.trim().split(/\s+/).filter(Boolean);
    assert.ok(outsidePids.length >= 2, `the HTTP server and iperf3 run in ${c.outside.ns}: ${outsidePids.join(' ')}`);

    await c.down();
    await c.down(); // idempotent
    assert.deepEqual(netnsWithPrefix(q), []);
    assert.deepEqual(processesMentioning(c.outside.ns), []);
    for (const pid of outsidePids) assert.ok(!readdirSync('/proc').includes(pid), `outside process ${pid} outlived down()`);
    assert.deepEqual(tempDirsOf(q), []);
  });

  test(`${p}: a failing step tears down what was already built`, async () => {
    const q = `${p}f`;
    // The outside servers and both nodes exist by the time the bad address reaches `ip`.
    await assert.rejects(
      Cluster.up({
        prefix: q,
        agent: false,
        nodes: [{ name: 'n1', pods: [{ name: 'a' }] }],
        kernelNodes: [{ name: 'k', pods: [{ name: 'a' }, { name: 'bad', ipv4: '10.200.2.300' }] }],
      }),
      /10\.200\.2\.300/,
    );
    assert.deepEqual(netnsWithPrefix(q), []);
    assert.deepEqual(processesMentioning(`${q}o`), []);
    assert.deepEqual(tempDirsOf(q), []);
    // An invalid spec fails before anything is made.
    await assert.rejects(Cluster.up({ prefix: q, nodes: [{ name: 'Bad_Name', pods: [] }] }), /DNS label/);
    assert.deepEqual(netnsWithPrefix(q), []);
  });

  test(`${p}: the outside host answers HTTP with the client's address and runs iperf3`, async () => {
    const q = `${p}o`;
    const c = await up({ prefix: q, agent: false, nodes: [{ name: 'n1', pods: [] }], kernelNodes: [{ name: 'k', pods: [{ name: 'a' }] }] });
    const url = `http://${c.outside.ip}/`;
    const [n1] = c.nodes;
    const [k] = c.kernelNodes;
    // The Tapestry node's eth0 has no address; lend it one for this check.
    const lent = `${n1!.address}/24`;
    try {
      assert.equal(sh(n1!.ns, 'ip', ['addr', 'add', lent, 'dev', 'eth0']).status, 0);
      const r = sh(n1!.ns, 'curl', ['-s', '--max-time', '3', url]);
      assert.match(r.stdout, /^10\.99\.0\.11:\d+\n$/, `from n1: ${r.stdout}${r.stderr}`);
    } finally {
      sh(n1!.ns, 'ip', ['addr', 'del', lent, 'dev', 'eth0']);
    }
    const fromNode = sh(k!.ns, 'curl', ['-s', '--max-time', '3', url]);
    assert.match(fromNode.stdout, /^10\.99\.0\.12:\d+\n$/, `from the kernel node: ${fromNode.stdout}${fromNode.stderr}`);
    // A kernel node's pod is not masqueraded: the outside host routes its CIDR back via the node.
    const fromPod = sh(k!.pods[0]!.ns, 'curl', ['-s', '--max-time', '3', url]);
    assert.match(fromPod.stdout, /^10\.200\.2\.10:\d+\n$/, `from the kernel pod: ${fromPod.stdout}${fromPod.stderr}`);

    const ip3 = sh(k!.ns, 'iperf3', ['-c', c.outside.ip, '-p', '5201', '-t', '1', '-J'], { timeoutMs: 20000 });
    assert.equal(ip3.status, 0, ip3.stderr || ip3.stdout);
    const bytes = (JSON.parse(ip3.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
    assert.ok(bytes > 1_000_000, `iperf3 moved ${bytes} bytes`);
    await c.down();
    assert.deepEqual(netnsWithPrefix(q), []);
  });

  test(`${p}: two kernel nodes carry pod traffic over VXLAN 8472 with their configured VNIs`, async () => {
    const q = `${p}k`;
    const c = await up({
      prefix: q,
      agent: false,
      nodes: [],
      kernelVni: 77,
      kernelNodes: [
        { name: 'k1', pods: [{ name: 'a' }, { name: 'b' }] },
        { name: 'k2', vni: 78, pods: [{ name: 'a' }] },
      ],
    });
    const [k1, k2] = c.kernelNodes;
    const [a1, b1] = k1!.pods;
    const [a2] = k2!.pods;
    const pcap = join(tmpdir(), `${q}-underlay.pcap`);
    files.push(pcap);

    // 2 echo requests + 2 replies, IPv4 and IPv6: 8 VXLAN packets on the underlay.
    const dump = spawn('ip', ['netns', 'exec', c.underlay.ns, 'timeout', '20', 'tcpdump', '-i', c.underlay.bridge, '-n', '-U', '-c', '8', '-w', pcap, 'udp', 'port', '8472'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(dump);
    const dumpErr: string[] = [];
    dump.stderr!.setEncoding('utf8').on('data', (d: string) => dumpErr.push(d));
    const dumpDone = new Promise<number | null>((res) => dump.on('exit', (code) => res(code)));
    for (let i = 0; i < 100 && !dumpErr.join('').includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(dumpErr.join('').includes('listening on'), `tcpdump did not start: ${dumpErr.join('')}`);

    const ping = (from: string, to: string, v6 = false) => sh(from, 'ping', [...(v6 ? ['-6'] : []), '-c', '2', '-i', '0.2', '-W', '2', to], { timeoutMs: 10000 });
    const r4 = ping(a1!.ns, a2!.ipv4);
    assert.equal(r4.status, 0, `k1/a -> k2/a IPv4: ${r4.stdout}${r4.stderr}`);
    const r6 = ping(a1!.ns, a2!.ipv6, true);
    assert.equal(r6.status, 0, `k1/a -> k2/a IPv6: ${r6.stdout}${r6.stderr}`);
    assert.equal(await dumpDone, 0, `tcpdump: ${dumpErr.join('')}`);

    const t = sh(null, 'tshark', ['-r', pcap, '-d', 'udp.port==8472,vxlan', '-T', 'fields', '-e', 'ip.src', '-e', 'udp.dstport', '-e', 'vxlan.vni'], { timeoutMs: 30000 });
    assert.equal(t.status, 0, t.stderr);
    const rows = t.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.equal(rows.length, 8, `captured:\n${t.stdout}`);
    for (const [src, dport, vni] of rows) {
      const outer = src!.split(',')[0];
      assert.equal(dport, '8472');
      assert.equal(vni, outer === k1!.address ? '77' : outer === k2!.address ? '78' : '?', `packet from ${src} carries VNI ${vni}`);
    }

    // Each receiver accepted the other's frames only through its inner-MAC rewrite.
    for (const n of [k1!, k2!]) {
      const j = JSON.parse(sh(n.ns, 'nft', ['-j', 'list', 'table', 'netdev', INTEROP_NFT_TABLE]).stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
      const packets = j.nftables.flatMap((x) => x.rule?.expr ?? []).reduce((s, e) => s + (e.counter?.packets ?? 0), 0);
      assert.ok(packets >= 4, `${n.ns}: ${packets} frames went through the MAC rewrite`);
    }

    // A second pod on the same node shares the router address; it is reachable too.
    const rb = ping(a2!.ns, b1!.ipv4);
    assert.equal(rb.status, 0, `k2/a -> k1/b: ${rb.stdout}${rb.stderr}`);
    await c.down();
    assert.deepEqual(netnsWithPrefix(q), []);
  });
});

/**
 * End to end: clients outside the cluster reach services through the nodes
 * (src/testbed/cluster.ts: two Tapestry nodes on an underlay bridge, the
 * outside host 10.99.0.100). Real curl, iperf3, a UDP client and tcpdump.
 *
 *   outside ──> n1:NodePort ──SNAT──> pod r@n2          replies back through n1
 *   outside ──> n1:NodePort ──DSR───> pod r@n2 ──────> outside (never via n1)
 *   outside ──> n2:NodePort ────────> pod r@n2          local backend, client kept
 *   outside ──> LoadBalancer IP (ARP answered by one node), source ranges
 *   outside ──> ClusterIP: dropped (174); deny-listed source: dropped at XDP
 *
 * Cluster 1: VXLAN, loadBalancer.mode hybrid (TCP DSR, UDP SNAT), services
 * forcing snat or dsr per service. Cluster 2: Geneve with the DSR Geneve
 * option and NodePort acceleration in the XDP stage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterSpec } from '../../src/testbed/cluster.ts';
import { TAPESTRY, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { bg, capture, waitFor } from './netns-tools.ts';

const CLUSTER_IP = '10.96.0.30';
const LB_IP = '10.99.0.50';
/** Outside addresses besides 10.99.0.100: one outside the LB source range, one deny-listed. */
const OTHER_CLIENT = '10.99.0.101';
const DENIED_CLIENT = '10.99.0.102';

/** HTTP :8080 answering "<client address> <name>", UDP :8081 echoing "<client address> <name>". */
function servers(children: ChildProcess[], ns: string, name: string): void {
  const js = `const n='${name}';require('http').createServer((q,r)=>r.end(q.socket.remoteAddress.replace('::ffff:','')+' '+n+'\\n')).listen(8080,'0.0.0.0');` +
    `const u=require('dgram').createSocket('udp4');u.on('message',(m,ri)=>u.send(ri.address+' '+n+'\\n',ri.port,ri.address));u.bind(8081);`;
  bg(children, ns, process.execPath, ['-e', js]);
}

/** One UDP request from the outside host (optionally from `from`); the answer or ''. */
function udp(c: Cluster, host: string, port: number): string {
  const js = `const u=require('dgram').createSocket('udp4');u.on('message',(m)=>{process.stdout.write(m.toString());process.exit(0)});` +
    `setTimeout(()=>process.exit(1),2000);u.send('hi',${port},'${host}');`;
  return sh(c.outside.ns, process.execPath, ['-e', js], { timeoutMs: 5000 }).stdout.trim();
}

function curl(c: Cluster, url: string, from?: string): { ok: boolean; out: string; err: string } {
  const r = sh(c.outside.ns, 'curl', ['-s', '--max-time', '4', ...(from ? ['--interface', from] : []), url], { timeoutMs: 8000 });
  return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr };
}

function cli(c: Cluster, node: number, ...args: string[]) {
  return sh(null, TAPESTRY, ['--socket', c.nodes[node]!.config.api.socket, ...args]);
}

function status(c: Cluster, node: number): { counters: { drops: { reason: number; count: number }[] }; kubeProxyReplacement: { announced: string[]; datapath: { counts: Record<string, number>; prefilter: { hits: number }; xdp: Record<string, number> } } } {
  return JSON.parse(cli(c, node, 'status', '-o', 'json').stdout);
}

const drops = (c: Cluster, node: number, reason: number) => status(c, node).counters.drops.filter((d) => d.reason === reason).reduce((a, d) => a + d.count, 0);

const web = (name: string, np: number, extra: Record<string, unknown> = {}) => ({
  name, type: 'NodePort', ports: [{ port: 80, targetPort: 8080, nodePort: np }, { port: 81, targetPort: 8081, nodePort: np + 100, protocol: 'UDP' }], ...extra,
});

describe('NodePort, LoadBalancer and DSR from outside (VXLAN, hybrid mode)', { timeout: 300_000 }, () => {
  const children: ChildProcess[] = [];
  let c: Cluster;
  let n1: string, n2: string;
  before(async () => {
    const spec: ClusterSpec = {
      prefix: runPrefix('tn'),
      nodes: [
        { name: 'n1', pods: [{ name: 'l', labels: { app: 'lweb' } }] },
        { name: 'n2', pods: [{ name: 'r', labels: { app: 'rweb' } }] },
      ],
      loadBalancer: { mode: 'hybrid' },
      services: [
        web('hybrid', 30080, { clusterIP: '10.96.0.10', selector: { app: 'rweb' } }),
        web('snat', 30081, { clusterIP: '10.96.0.11', selector: { app: 'rweb' }, forwardingMode: 'snat' }),
        web('dsr', 30082, { clusterIP: '10.96.0.12', selector: { app: 'rweb' }, forwardingMode: 'dsr' }),
        web('local', 30083, { clusterIP: '10.96.0.13', selector: { app: 'lweb' }, externalTrafficPolicy: 'Local' }),
        { ...web('lb', 30084, { clusterIP: '10.96.0.14', selector: { app: 'rweb' } }), type: 'LoadBalancer', loadBalancerIP: LB_IP, loadBalancerSourceRanges: ['10.99.0.100/32'] },
        { name: 'perf', type: 'NodePort', clusterIP: '10.96.0.15', ports: [{ port: 5201, nodePort: 30085 }], selector: { app: 'rweb' } },
        { name: 'cip', clusterIP: CLUSTER_IP, ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'rweb' } },
      ],
    };
    c = await Cluster.up(spec);
    n1 = c.nodes[0]!.address;
    n2 = c.nodes[1]!.address;
    servers(children, c.nodes[0]!.pods[0]!.ns, 'l');
    servers(children, c.nodes[1]!.pods[0]!.ns, 'r');
    for (const pod of [c.nodes[0]!.pods[0]!, c.nodes[1]!.pods[0]!]) {
      await waitFor(`servers in ${pod.ns}`, () => sh(pod.ns, 'curl', ['-s', '--max-time', '1', 'http://127.0.0.1:8080/']).status === 0);
    }
    for (const a of [OTHER_CLIENT, DENIED_CLIENT]) sh(c.outside.ns, 'ip', ['addr', 'add', `${a}/24`, 'dev', 'eth0']);
  });
  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c?.down();
  });

  test('SNAT: through n1 to the backend on n2, which sees n1\'s address; TCP and UDP', () => {
    const r = curl(c, `http://${n1}:30081/`);
    assert.ok(r.ok, r.err);
    assert.equal(r.out, `${n1} r`, 'the backend sees the node that SNATed');
    assert.equal(udp(c, n1, 30181), `${n1} r`);
  });

  test('DSR: the client address reaches the backend and the replies never cross n1 (tcpdump on n1\'s underlay port)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tpnp-'));
    const f1 = join(dir, 'n1.pcap'), f2 = join(dir, 'n2.pcap');
    // Bridge ports in the underlay namespace: what each node sends (-Q in: from the node into the bridge).
    const cap1 = await capture(c.underlay.ns, 'n1', f1, `src host ${n1} and (src port 30082 or src port 30182)`, ['-Q', 'in']);
    const cap2 = await capture(c.underlay.ns, 'n2', f2, `src host ${n1} and (src port 30082 or src port 30182)`, ['-Q', 'in']);
    let r: ReturnType<typeof curl>, u: string;
    try {
      r = curl(c, `http://${n1}:30082/`);
      u = udp(c, n1, 30182);
    } finally {
      await cap1.stop();
      await cap2.stop();
    }
    const count = (f: string) => spawnSync('tshark', ['-r', f, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', timeout: 20000 }).stdout.split('\n').filter((l) => l.trim() !== '').length;
    const via1 = count(f1), via2 = count(f2);
    rmSync(dir, { recursive: true, force: true });
    assert.ok(r.ok, r.err);
    assert.equal(r.out, `${c.outside.ip} r`, 'client address preserved');
    assert.equal(u, `${c.outside.ip} r`, 'UDP in DSR too');
    assert.equal(via1, 0, 'no reply left through n1');
    assert.ok(via2 >= 3, `the replies left n2 with n1's address as source (${via2} packets)`);
  });

  test('hybrid mode: TCP by DSR, UDP by SNAT; iperf3 through the DSR NodePort', () => {
    assert.equal(curl(c, `http://${n1}:30080/`).out, `${c.outside.ip} r`);
    assert.equal(udp(c, n1, 30180), `${n1} r`);
    const srv = bg(children, c.nodes[1]!.pods[0]!.ns, 'iperf3', ['-s', '-1', '-p', '5201']);
    spawnSync('sleep', ['0.5']);
    const ip = sh(c.outside.ns, 'iperf3', ['-c', n1, '-p', '30085', '-t', '2', '-J'], { timeoutMs: 30000 });
    srv.kill();
    assert.equal(ip.status, 0, ip.stderr + ip.stdout.slice(0, 500));
    const bytes = (JSON.parse(ip.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes;
    assert.ok(bytes > 10_000_000, `only ${bytes} bytes crossed`);
  });

  test('a local backend: through n2 the client address is kept; externalTrafficPolicy Local answers only where a backend runs', () => {
    assert.equal(curl(c, `http://${n2}:30081/`).out, `${c.outside.ip} r`, 'n2 delivers locally, no SNAT');
    assert.equal(udp(c, n2, 30181), `${c.outside.ip} r`, 'UDP too');
    assert.equal(curl(c, `http://${n2}:30082/`).out, `${c.outside.ip} r`, 'a DSR service with a local backend: plain local delivery');
    assert.equal(udp(c, n2, 30180), `${c.outside.ip} r`, 'hybrid, local backend, UDP');
    assert.equal(curl(c, `http://${n1}:30083/`).out, `${c.outside.ip} l`, 'eTP=Local on the node with the backend');
    const r = curl(c, `http://${n2}:30083/`);
    assert.equal(r.ok, false, 'n2 has no local backend');
    assert.match(r.err + r.out, /refused|Couldn't connect|^$/i);
  });

  test('LoadBalancer IP: ARP answered by one node; outside the source ranges dropped with 177', () => {
    const who = [0, 1].filter((k) => status(c, k).kubeProxyReplacement.announced.includes(LB_IP));
    assert.equal(who.length, 1, 'exactly one node announces the LoadBalancer IP');
    const r = curl(c, `http://${LB_IP}/`);
    assert.ok(r.ok, r.err);
    assert.match(r.out, / r$/);
    const before177 = drops(c, who[0]!, 177);
    assert.equal(curl(c, `http://${LB_IP}/`, OTHER_CLIENT).ok, false);
    assert.ok(drops(c, who[0]!, 177) > before177, 'Denied by LB src range check counted');
  });

  test('a ClusterIP reached from outside is dropped with 174', () => {
    sh(c.outside.ns, 'ip', ['route', 'replace', `${CLUSTER_IP}/32`, 'via', n1]);
    const b = drops(c, 0, 174);
    assert.equal(curl(c, `http://${CLUSTER_IP}/`).ok, false);
    assert.ok(drops(c, 0, 174) > b, 'Is a ClusterIP counted on n1');
  });

  test('prefilter: a deny-listed source is dropped at XDP, the rest keeps flowing; CLI list/update/delete', () => {
    const up = cli(c, 0, 'prefilter', 'update', '--cidr', `${DENIED_CLIENT}/32`);
    assert.equal(up.status, 0, up.stderr);
    assert.match(cli(c, 0, 'prefilter', 'list').stdout, new RegExp(`Revision: \\d+\\n${DENIED_CLIENT.replaceAll('.', '\\.')}/32`));
    const before = status(c, 0).kubeProxyReplacement.datapath;
    assert.equal(curl(c, `http://${n1}:30081/`, DENIED_CLIENT).ok, false);
    assert.ok(curl(c, `http://${n1}:30081/`).ok, 'others still served');
    const after = status(c, 0).kubeProxyReplacement.datapath;
    assert.ok(after.prefilter.hits > before.prefilter.hits, 'prefilter hits counted');
    assert.ok(after.xdp.drop! > before.xdp.drop!, 'XDP_DROP counted');
    assert.equal(cli(c, 0, 'prefilter', 'delete', '--cidr', `${DENIED_CLIENT}/32`).status, 0);
    assert.ok(curl(c, `http://${n1}:30081/`, DENIED_CLIENT).ok, 'served again once removed');
    const bad = cli(c, 0, 'prefilter', 'update', '--cidr', '10.0.0.0/40');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /cidr: "10\.0\.0\.0\/40"/);
  });

  test('CLI: status shows the mode, bpf lb list the frontends with Cilium\'s flags', () => {
    const s = cli(c, 0, 'status');
    assert.match(s.stdout, /KubeProxyReplacement:\s+True\s+\[eth0 .*mode Hybrid/);
    const v = cli(c, 0, 'status', '--verbose').stdout;
    assert.match(v, /Mode:\s+Hybrid/);
    const lb = cli(c, 0, 'bpf', 'lb', 'list').stdout;
    assert.match(lb, new RegExp(`${n1.replaceAll('.', '\\.')}:30080 \\(0\\)\\s+0\\.0\\.0\\.0:0 \\(\\d+\\) \\(0\\) \\[NodePort\\]`));
    assert.match(lb, /10\.99\.0\.50:80 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[LoadBalancer, check source-range\]/);
    assert.match(lb, /10\.96\.0\.13:80 \(0\)\s+0\.0\.0\.0:0 \(\d+\) \(0\) \[ClusterIP, non-routable\]/);
    assert.match(lb, new RegExp(`${n1.replaceAll('.', '\\.')}:30083 \\(0\\)\\s+0\\.0\\.0\\.0:0 \\(\\d+\\) \\(0\\) \\[NodePort, Local\\]`));
  });
});

describe('DSR over Geneve with the Geneve option, NodePort acceleration in the XDP stage', { timeout: 300_000 }, () => {
  const children: ChildProcess[] = [];
  let c: Cluster;
  before(async () => {
    c = await Cluster.up({
      prefix: runPrefix('tg'),
      tunnelProtocol: 'geneve',
      nodes: [
        { name: 'n1', pods: [] },
        { name: 'n2', pods: [{ name: 'r', labels: { app: 'rweb' } }] },
      ],
      loadBalancer: { mode: 'dsr', dsrDispatch: 'geneve', acceleration: 'native' },
      services: [web('dsr', 30080, { clusterIP: '10.96.0.10', selector: { app: 'rweb' } })],
    });
    servers(children, c.nodes[1]!.pods[0]!.ns, 'r');
    const pod = c.nodes[1]!.pods[0]!;
    await waitFor(`servers in ${pod.ns}`, () => sh(pod.ns, 'curl', ['-s', '--max-time', '1', 'http://127.0.0.1:8080/']).status === 0);
  });
  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c?.down();
  });

  test('TCP and UDP reach the backend with the client address; n1 answers in XDP (XDP_TX), n2 replies directly', () => {
    const n1 = c.nodes[0]!.address;
    const before = status(c, 0).kubeProxyReplacement.datapath;
    const r = curl(c, `http://${n1}:30080/`);
    assert.ok(r.ok, r.err);
    assert.equal(r.out, `${c.outside.ip} r`);
    assert.equal(udp(c, n1, 30180), `${c.outside.ip} r`);
    const after = status(c, 0).kubeProxyReplacement.datapath;
    assert.ok(after.xdp.tx! > before.xdp.tx!, 'forwarded by the XDP stage');
    assert.ok(after.counts.dsr! >= 2, 'both flows by DSR');
    const b = status(c, 1).kubeProxyReplacement.datapath.counts;
    assert.ok(b.dsrIngress! >= 2 && b.dsrReply! >= 2, `n2 took the Geneve option and answered directly: ${JSON.stringify(b)}`);
  });
});

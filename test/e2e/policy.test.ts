/**
 * End to end: identity-based network policy, Cilium's classic demo and the
 * rule kinds around it, with real curl and iperf3 through real agents.
 *
 *   tiefighter (org=empire) ──:80──> deathstar (org=empire, class=deathstar)   allowed
 *   xwing (org=alliance)    ──:80──> deathstar                                 denied (133)
 *
 * Then: deny beats allow (181), an established connection stops when a
 * policy starts denying it, replies are never blocked, `policy trace`
 * agrees with the datapath, policy-verdict events in `monitor`; across two
 * nodes the identity travels in the VNI, and CIDR/entity rules meet the
 * world outside the cluster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { waitFor } from './netns-tools.ts';
import { Cluster, OUTSIDE_IP } from '../../src/testbed/cluster.ts';

const ALLOW_EMPIRE = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'rule1' },
  spec: {
    endpointSelector: { matchLabels: { org: 'empire', class: 'deathstar' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
  },
};

function curlOk(ns: string, url: string): boolean {
  return sh(ns, 'curl', ['-s', '-o', '/dev/null', '--max-time', '2', url], { timeoutMs: 10000 }).status === 0;
}


describe('policy on one node: the deathstar demo', { timeout: 300_000 }, () => {
  const p = runPrefix('tp');
  const ns = (n: string) => `${p}${n}`;
  let agent: AgentProcess;
  const children: ChildProcess[] = [];
  const cli = (...args: string[]) => sh(null, TAPESTRY, ['--socket', agent.socket, ...args]);
  let ds = '';
  const drops = async (code: number) => {
    const m = await agent.api<{ drops: { reason: number; count: number }[] }>('GET', '/v1/metrics/datapath');
    return m.drops.filter((d) => d.reason === code).reduce((a, d) => a + d.count, 0);
  };

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'pol', ipv4PodCIDR: '10.214.0.0/24', tapPrefix: p },
      endpoints: [
        { name: 'deathstar', netns: ns('d'), labels: { org: 'empire', class: 'deathstar' } },
        { name: 'tiefighter', netns: ns('t'), labels: { org: 'empire', class: 'tiefighter' } },
        { name: 'xwing', netns: ns('x'), labels: { org: 'alliance', class: 'xwing' } },
      ],
      services: [{ name: 'deathstar', clusterIP: '10.96.0.30', ports: [{ port: 80 }], selector: { class: 'deathstar' } }],
      policies: [ALLOW_EMPIRE],
    });
    ds = (await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint')).find((e) => e.name === 'deathstar')!.ipv4;
    children.push(spawn('ip', ['netns', 'exec', ns('d'), process.execPath, '-e', "require('http').createServer((q,r)=>r.end('Ship landed\\n')).listen(80)"], { stdio: 'ignore' }));
    children.push(spawn('ip', ['netns', 'exec', ns('d'), 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' }));
    await waitFor('deathstar', () => curlOk(ns('d'), 'http://127.0.0.1/'));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  test('tiefighter lands (directly and through the ClusterIP); xwing is denied with 133', async () => {
    assert.ok(curlOk(ns('t'), `http://${ds}/`), 'tiefighter -> deathstar');
    assert.ok(curlOk(ns('t'), 'http://10.96.0.30/'), 'tiefighter -> ClusterIP');
    const d0 = await drops(133);
    assert.ok(!curlOk(ns('x'), `http://${ds}/`), 'xwing -> deathstar must fail');
    assert.ok(!curlOk(ns('x'), 'http://10.96.0.30/'), 'xwing -> ClusterIP must fail');
    assert.ok((await drops(133)) > d0, 'Policy denied (133) counted');
    assert.ok(!curlOk(ns('t'), `http://${ds}:5201/`), 'tiefighter on another port is denied too');
  });

  test('endpoint list shows enforcement; bpf policy get shows the map', () => {
    const eps = JSON.parse(cli('endpoint', 'list', '-o', 'json').stdout) as { name: string; policy: { ingress: string; egress: string } }[];
    assert.deepEqual(eps.find((e) => e.name === 'deathstar')!.policy, { ingress: 'Enabled', egress: 'Disabled' });
    assert.deepEqual(eps.find((e) => e.name === 'xwing')!.policy, { ingress: 'Disabled', egress: 'Disabled' });
    const map = cli('bpf', 'policy', 'get', 'deathstar').stdout;
    assert.match(map, /ingress enforced/);
    assert.match(map, /Allow\s+Ingress\s+\d+\s+80\/TCP/);
  });

  test('status: drops of the last minute by reason, services, policies, map fill levels, controllers', () => {
    const st = cli('status', '--verbose');
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /Drops \(last minute\):\s+.*Policy denied \(INGRESS\): \d+/);
    assert.match(st.stdout, /Services:\s+1 \(1 frontends\)/);
    assert.match(st.stdout, /Policies:\s+1/);
    assert.match(st.stdout, /Controller Status:\s+2\/2 healthy/);
    assert.match(st.stdout, /BPF maps:\n.*\n(.*\n)*cilium_policy_\d{5}\s+\d+\s+16384/);
    assert.match(st.stdout, /ct-map-gc\s+ok/);
  });

  test('policy trace agrees with the datapath', () => {
    const ok = cli('policy', 'trace', '--src', 'tiefighter', '--dst', 'deathstar', '--dport', '80');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /Final verdict: ALLOWED/);
    const no = cli('policy', 'trace', '--src', 'xwing', '--dst', 'deathstar', '--dport', '80');
    assert.match(no.stdout, /Final verdict: DENIED/);
    const port = cli('policy', 'trace', '--src', 'tiefighter', '--dst', 'deathstar', '--dport', '5201');
    assert.match(port.stdout, /Final verdict: DENIED/);
  });

  test('monitor shows policy verdicts in Cilium\'s format', async () => {
    const mon = spawn(TAPESTRY, ['--socket', agent.socket, 'monitor', '--type', 'policy-verdict', '--duration', '6'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    mon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    curlOk(ns('x'), `http://${ds}/`);
    curlOk(ns('t'), `http://${ds}/`);
    await new Promise((r) => mon.on('exit', r));
    assert.match(out, /Policy verdict log: flow 0x[0-9a-f]+ local EP ID \d+, remote ID \d+, proto 6, ingress, action deny, auth: disabled, match none, 10\.214\.0\.\d+:\d+ -> 10\.214\.0\.\d+:80 tcp SYN/);
    assert.match(out, /ingress, action allow, auth: disabled, match L3-L4, .*:80 tcp SYN/);
  });

  test('monitor shows drops with their reason and traces of delivered packets', async () => {
    const mon = spawn(TAPESTRY, ['--socket', agent.socket, 'monitor', '--type', 'drop', '--type', 'trace', '--duration', '6'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    mon.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    curlOk(ns('x'), `http://${ds}/`);
    curlOk(ns('t'), `http://${ds}/`);
    await new Promise((r) => mon.on('exit', r));
    assert.match(out, /xx drop \(Policy denied\) flow 0x[0-9a-f]+ to endpoint \d+, ifindex \d+, file bpf_lxc\.c:0, , identity \d+->\d+: 10\.214\.0\.\d+:\d+ -> 10\.214\.0\.\d+:80 tcp SYN/);
    assert.match(out, /-> endpoint \d+ flow 0x[0-9a-f]+ , identity \d+->\d+ state new ifindex \d+ orig-ip 0\.0\.0\.0: 10\.214\.0\.\d+:\d+ -> 10\.214\.0\.\d+:80 tcp SYN/);
    assert.doesNotMatch(out, /Policy verdict log/, 'only the types asked for');
  });

  test('a deny beats the allow (181); an established connection stops once denied; deleting restores', async () => {
    // A long transfer from tiefighter (its port allowed by a second policy), then an ingress deny for it lands mid-stream.
    const allowIperf = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'iperf' }, spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }], toPorts: [{ ports: [{ port: '5201', protocol: 'TCP' }] }] }] } };
    await agent.api('PUT', '/v1/policy', allowIperf);
    const run = spawn('ip', ['netns', 'exec', ns('t'), 'iperf3', '-c', ds, '-p', '5201', '-t', '6', '-i', '1', '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let json = '';
    run.stdout!.on('data', (d: Buffer) => (json += d.toString()));
    await new Promise((r) => setTimeout(r, 2500));
    const deny = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'no-tie' }, spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, ingressDeny: [{ fromEndpoints: [{ matchLabels: { class: 'tiefighter' } }] }] } };
    const d0 = await drops(181);
    await agent.api('PUT', '/v1/policy', deny);
    await new Promise((r) => run.on('exit', r));
    const intervals = (JSON.parse(json || '{"intervals":[]}') as { intervals: { sum: { bytes: number } }[] }).intervals.map((i) => i.sum.bytes);
    assert.ok(intervals.length >= 3 && intervals[0]! > 1_000_000, `the transfer ran first: ${intervals.join(',')}`);
    assert.equal(intervals[intervals.length - 1], 0, `and stopped under the deny: ${intervals.join(',')}`);
    assert.ok((await drops(181)) > d0, 'Policy denied by denylist (181) counted');
    assert.ok(!curlOk(ns('t'), `http://${ds}/`), 'the deny beats rule1\'s allow on port 80');
    assert.ok(curlOk(ns('d'), `http://${ds}/`), 'deathstar itself still answers locally');
    await agent.api('DELETE', '/v1/policy/no-tie');
    assert.ok(curlOk(ns('t'), `http://${ds}/`), 'deleting the deny restores the allow');
  });

  test('replies are never blocked: deathstar with an egress policy allowing nothing still answers', async () => {
    const lockdown = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'lockdown' }, spec: { endpointSelector: { matchLabels: { class: 'deathstar' } }, egress: [{}] } };
    await agent.api('PUT', '/v1/policy', lockdown);
    try {
      assert.ok(curlOk(ns('t'), `http://${ds}/`), 'replies pass the egress policy');
      const tie = (await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint')).find((e) => e.name === 'tiefighter')!.ipv4;
      assert.ok(!curlOk(ns('d'), `http://${tie}:1/`), 'new connections from deathstar are denied');
    } finally {
      await agent.api('DELETE', '/v1/policy/lockdown');
    }
  });

  test('a bad policy is refused whole, naming the field', async () => {
    const bad = { ...ALLOW_EMPIRE, metadata: { name: 'bad' }, spec: { ...ALLOW_EMPIRE.spec, ingress: [{ toPorts: [{ ports: [{ port: '99999', protocol: 'TCP' }] }] }] } };
    await assert.rejects(agent.api('PUT', '/v1/policy', bad), /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);
    const names = (await agent.api<{ name: string }[]>('GET', '/v1/policy')).map((x) => x.name);
    assert.ok(!names.includes('bad'), `nothing applied: ${names.join(',')}`);
  });
});

describe('policy across nodes and toward the world', { timeout: 300_000 }, () => {
  let c: Cluster;
  const children: ChildProcess[] = [];
  before(async () => {
    c = await Cluster.up({
      prefix: runPrefix('tq'),
      nodes: [
        { name: 'n1', pods: [{ name: 'good', labels: { app: 'client' } }, { name: 'bad', labels: { app: 'other' } }] },
        { name: 'n2', pods: [{ name: 'web', labels: { app: 'web' } }] },
      ],
      services: [],
    });
    // Policies go to both agents, as the cluster would distribute them.
    const web = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'web' }, spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] } };
    const out = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'client-out' }, spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }] }, { to: [{ ipBlock: { cidr: `${OUTSIDE_IP}/32` } }], ports: [{ protocol: 'TCP', port: 80 }] }] } };
    const ent = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'other-cluster-only' }, spec: { endpointSelector: { matchLabels: { app: 'other' } }, egress: [{ toEntities: ['cluster'] }] } };
    for (const n of c.nodes) for (const doc of [web, out, ent]) await n.agent!.api('PUT', '/v1/policy', doc);
    children.push(spawn('ip', ['netns', 'exec', c.nodes[1]!.pods[0]!.ns, process.execPath, '-e', "require('http').createServer((q,r)=>r.end('web\\n')).listen(8080)"], { stdio: 'ignore' }));
    await waitFor('web', () => curlOk(c.nodes[1]!.pods[0]!.ns, 'http://127.0.0.1:8080/'));
  });
  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await c?.down();
  });

  test('the identity crosses nodes in the VNI: app=client allowed, app=other denied', () => {
    const web = c.nodes[1]!.pods[0]!;
    assert.ok(curlOk(c.nodes[0]!.pods[0]!.ns, `http://${web.ipv4}:8080/`), 'client@n1 -> web@n2');
    assert.ok(!curlOk(c.nodes[0]!.pods[1]!.ns, `http://${web.ipv4}:8080/`), 'other@n1 -> web@n2 denied');
  });

  test('NetworkPolicy ipBlock: client may reach the outside on :80 only; toEntities cluster keeps other inside', () => {
    assert.ok(curlOk(c.nodes[0]!.pods[0]!.ns, `http://${OUTSIDE_IP}/`), 'client -> outside:80 allowed by ipBlock');
    const r = sh(c.nodes[0]!.pods[0]!.ns, 'iperf3', ['-c', OUTSIDE_IP, '-t', '1', '--connect-timeout', '1500'], { timeoutMs: 10000 });
    assert.notEqual(r.status, 0, 'client -> outside:5201 denied');
    assert.ok(!curlOk(c.nodes[0]!.pods[1]!.ns, `http://${OUTSIDE_IP}/`), 'other -> world denied (cluster only)');
  });
});

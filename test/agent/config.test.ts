/** Config validation: errors name file, line, column and field; nothing half-valid passes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, podMtu, routerIPv4, routerIPv6, tunnelPort } from '../../src/agent/config.ts';
import { parseCidr, cidrContains, bigIntToIp, ipToBigInt } from '../../src/agent/cidr.ts';
import { Ipam } from '../../src/agent/ipam.ts';
import { TAPESTRY } from '../../src/testbed/agent-process.ts';

const GOOD = `node:
  name: n1
  ipv4PodCIDR: 10.200.0.0/24
  ipv6PodCIDR: fd00:200::/64
endpoints:
  - name: a
    netns: pa
    ipv4: 10.200.0.10
  - name: b
    netns: pb
`;

test('a valid config parses with defaults filled in', () => {
  const c = parseConfig(GOOD, 'x.yaml');
  assert.equal(podMtu(c), 1500);
  assert.equal(routerIPv4(c.node), '10.200.0.1');
  assert.equal(routerIPv6(c.node), 'fd00:200::1');
  assert.deepEqual(c.endpoints[1], { name: 'b', netns: 'pb', labels: {} });
});

for (const [what, text, msg] of [
  ['address outside the pod CIDR', GOOD.replace('10.200.0.10', '10.201.0.10'), /^x\.yaml:8:11: endpoints\[0\]\.ipv4: 10\.201\.0\.10 is not in node\.ipv4PodCIDR/],
  ['unknown field', GOOD.replace('netns: pa', 'netns: pa\n    colour: red'), /^x\.yaml:6:5: endpoints\[0\]: unknown field\(s\) colour/],
  ['bad name', GOOD.replace('name: a', 'name: A_b'), /^x\.yaml:6:11: endpoints\[0\]\.name: must be lowercase/],
  ['YAML syntax', 'node: [1', /^x\.yaml:1:\d+: /],
  ['host bits in a CIDR', GOOD.replace('10.200.0.0/24', '10.200.0.1/24'), /^x\.yaml:3:16: node\.ipv4PodCIDR: not an IPv4 CIDR/],
  ['duplicate netns', GOOD.replace('netns: pb', 'netns: pa'), /^x\.yaml:10:12: endpoints\[1\]\.netns: "pa" is already used by endpoints\[0\]/],
  ['missing node', 'endpoints: []', /^x\.yaml:1:1: node: /],
  ['router IP is an endpoint address', GOOD.replace('10.200.0.10', '10.200.0.1'), /endpoints\[0\]\.ipv4: 10\.200\.0\.1 is the router IP/],
  ['MTU out of range', GOOD.replace('ipv6PodCIDR', 'mtu: 70000\n  ipv6PodCIDR'), /node\.mtu: /],
] as const) {
  test(`config error: ${what}`, () =>
    assert.throws(() => parseConfig(text, 'x.yaml'), (e: Error) => e.name === 'ConfigError' && msg.test(e.message)),
  );
}

test('the agent refuses a bad config with one line naming file, line and field, exit code 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpcfg-'));
  try {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, GOOD.replace('10.200.0.10', '10.300.0.10'));
    const r = spawnSync(TAPESTRY, ['agent', '--config', f], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, new RegExp(`${f}:8:11: endpoints\\[0\\]\\.ipv4: not an IPv4 address`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CIDR arithmetic for both families', () => {
  const c = parseCidr('fd00:200::/64')!;
  assert.equal(c.nth(1), 'fd00:200::1');
  assert.ok(cidrContains(c, 'fd00:200::ffff'));
  assert.ok(!cidrContains(c, 'fd00:201::1'));
  assert.equal(bigIntToIp(ipToBigInt('::ffff:10.1.2.3'), 6), '::ffff:a01:203');
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
});

test('IPAM hands out free addresses, skips the router and reserved ones, and runs out cleanly', () => {
  const ipam = new Ipam(parseCidr('10.9.0.0/29')!, ['10.9.0.1']);
  ipam.reserve('10.9.0.3', 'x');
  const got = [1, 2, 3, 4].map((i) => ipam.allocate(`e${i}`));
  assert.deepEqual(got, ['10.9.0.2', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
  assert.throws(() => ipam.allocate('e5'), /no free address/);
  ipam.release('10.9.0.5');
  assert.equal(ipam.allocate('e6'), '10.9.0.5');
  assert.throws(() => ipam.reserve('10.9.0.1', 'y'), /reserved for the router/);
});

const CLUSTER = `node:
  name: n1
  ipv4PodCIDR: 10.200.1.0/24
  uplink: { device: eth0, address: 10.99.0.11/24, gateway: 10.99.0.1 }
cluster:
  nodes:
    - name: n2
      address: 10.99.0.12
      ipv4PodCIDR: 10.200.2.0/24
      endpoints: [{ name: a, ipv4: 10.200.2.10, labels: { app: a } }]
`;

test('cluster section: defaults (tunnel, vxlan 8472, masquerade) and the pods MTU', () => {
  const c = parseConfig(CLUSTER, 'c.yaml');
  assert.equal(c.cluster!.routingMode, 'tunnel');
  assert.equal(c.cluster!.tunnelProtocol, 'vxlan');
  assert.equal(tunnelPort(c.cluster!), 8472);
  assert.equal(c.cluster!.masquerade, true);
  assert.equal(podMtu(c), 1450, 'tunnel overhead 50 on a 1500 uplink');
  const n = parseConfig(CLUSTER.replace('cluster:\n', 'cluster:\n  routingMode: native\n  tunnelProtocol: geneve\n'), 'c.yaml');
  assert.equal(podMtu(n), 1500, 'native routing keeps the uplink MTU');
  assert.equal(tunnelPort(n.cluster!), 6081);
});

test('cluster section: errors name the field', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseConfig(text, 'c.yaml'), re);
  bad(CLUSTER.replace('  uplink: { device: eth0, address: 10.99.0.11/24, gateway: 10.99.0.1 }\n', ''), /c\.yaml:\d+:\d+: cluster: needs node\.uplink/);
  bad(CLUSTER.replace('gateway: 10.99.0.1', 'gateway: 10.98.0.1'), /node\.uplink\.gateway: 10\.98\.0\.1 is not in 10\.99\.0\.11\/24/);
  bad(CLUSTER.replace('address: 10.99.0.11/24', 'address: 10.99.0.11'), /node\.uplink\.address: not an IPv4 address with prefix length/);
  bad(CLUSTER.replace('ipv4PodCIDR: 10.200.2.0/24', 'ipv4PodCIDR: 10.200.1.0/25'), /cluster\.nodes\[0\]\.ipv4PodCIDR: 10\.200\.1\.0\/25 overlaps node\.ipv4PodCIDR/);
  bad(CLUSTER.replace('ipv4: 10.200.2.10', 'ipv4: 10.200.3.10'), /cluster\.nodes\[0\]\.endpoints\[0\]\.ipv4: 10\.200\.3\.10 is not in 10\.200\.2\.0\/24/);
  bad(CLUSTER.replace('- name: n2', '- name: n1'), /cluster\.nodes\[0\]\.name: "n1" is this node/);
  bad(CLUSTER.replace('cluster:\n', 'cluster:\n  routingMode: bgp\n'), /cluster\.routingMode/);
});

test('north-south settings: defaults, and errors naming the field', () => {
  const c = parseConfig(CLUSTER, 'c.yaml');
  assert.deepEqual([c.loadBalancer.mode, c.loadBalancer.dsrDispatch, c.loadBalancer.acceleration, c.prefilter.deny], ['snat', 'opt', 'disabled', []]);
  const ok = parseConfig(`${CLUSTER}loadBalancer: { mode: hybrid, acceleration: native }\nprefilter: { deny: [198.51.100.0/24] }\n`, 'c.yaml');
  assert.equal(ok.loadBalancer.mode, 'hybrid');
  assert.deepEqual(ok.prefilter.deny, ['198.51.100.0/24']);
  const bad = (text: string, re: RegExp) => assert.throws(() => parseConfig(text, 'c.yaml'), re);
  bad(`${CLUSTER}loadBalancer: { mode: dsr, dsrDispatch: geneve }\n`, /c\.yaml:\d+:\d+: loadBalancer\.dsrDispatch: geneve needs cluster\.tunnelProtocol: geneve/);
  bad(`${CLUSTER}loadBalancer: { mode: maglev }\n`, /loadBalancer\.mode/);
  bad(`${CLUSTER}prefilter: { deny: [10.0.0.0/33] }\n`, /prefilter\.deny\[0\]: not an IPv4 CIDR/);
  bad(`${GOOD}loadBalancer: { acceleration: native }\n`, /loadBalancer\.acceleration: native needs node\.uplink/);
  bad(`${GOOD}services:\n  - { name: s, clusterIP: 10.96.0.1, ports: [{ port: 80 }], loadBalancerSourceRanges: [10.0.0.0/8] }\n`, /services\[0\]\.loadBalancerSourceRanges: needs loadBalancerIP/);
  bad(`${GOOD}services:\n  - { name: s, clusterIP: 10.96.0.1, ports: [{ port: 80 }], forwardingMode: ipip }\n`, /services\[0\]\.forwardingMode/);
});

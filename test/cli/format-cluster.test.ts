/** CLI output for the multi-node maps and the cluster rows of `status`: exact lines from sample API rows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatIpcacheList,
  formatNatList,
  formatNeighList,
  formatStatus,
  formatTunnelList,
  type ClusterJson,
  type StatusJson,
} from '../../src/cli/format.ts';
import type { NatDumpEntry } from '../../src/datapath/lib/nat-dump.ts';

const CLUSTER: ClusterJson = {
  routingMode: 'tunnel',
  tunnel: { protocol: 'vxlan', port: 8472 },
  masquerade: true,
  uplink: { device: 'eth0', address: '192.168.50.11/24', gateway: '192.168.50.1', mac: '02:00:c0:a8:32:0b', mtu: 1500 },
  hostDevice: 'tapestry_host',
  nodes: [
    { name: 'node-b', address: '192.168.50.12', ipv4PodCIDR: '10.201.0.0/24', ipv6PodCIDR: 'fd00:201::/64', endpoints: 2 },
    { name: 'node-c', address: '192.168.50.13', ipv4PodCIDR: '10.202.0.0/24', ipv6PodCIDR: null, endpoints: 0 },
  ],
};

function status(cluster: ClusterJson | undefined): StatusJson {
  return {
    tapestry: { state: 'Ok', version: '0.1.0', uptimeSeconds: 5 },
    node: { name: 'node-a', ipv4PodCIDR: '10.200.0.0/24', ipv6PodCIDR: null, routerIPv4: '10.200.0.1', routerIPv6: null, mtu: 1450 },
    datapath: { mode: 'userspace', thread: 'worker', io: 'TAP', batch: 256 },
    ...(cluster ? { cluster } : {}),
    endpoints: { total: 0, ready: 0 },
    ipam: { ipv4: '1/254 allocated' },
    counters: { drops: [], forwards: [] },
    ports: [],
    conntrack: null,
    api: { socket: '/run/t.sock' },
  };
}

/** The value of the status row named `key`, or undefined. */
function row(text: string, key: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key}:`));
  return line === undefined ? undefined : line.slice(25);
}

test('bpf ipcache list: Cilium header and identity=… encryptkey=… tunnelendpoint=… flags=… rows', () => {
  const out = formatIpcacheList([
    { prefix: '0.0.0.0/0', identity: 2, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: '<none>' },
    { prefix: '10.201.0.0/24', identity: 6, tunnelEndpoint: '192.168.50.12', encryptKey: 0, flags: '<none>' },
    { prefix: '192.168.50.12/32', identity: 6, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: 'skiptunnel' },
  ]);
  assert.deepEqual(out.split('\n'), [
    'IP PREFIX/ADDRESS   IDENTITY',
    '0.0.0.0/0           identity=2 encryptkey=0 tunnelendpoint=0.0.0.0 flags=<none>',
    '10.201.0.0/24       identity=6 encryptkey=0 tunnelendpoint=192.168.50.12 flags=<none>',
    '192.168.50.12/32    identity=6 encryptkey=0 tunnelendpoint=0.0.0.0 flags=skiptunnel',
  ]);
});

test('bpf tunnel list: TUNNEL/VALUE header, rows as the API gives them', () => {
  const out = formatTunnelList([
    { prefix: '10.201.0.0:0', endpoint: '192.168.50.12:0' },
    { prefix: '10.202.0.0:0', endpoint: '192.168.50.13:0' },
  ]);
  assert.deepEqual(out.split('\n'), ['TUNNEL         VALUE', '10.201.0.0:0   192.168.50.12:0', '10.202.0.0:0   192.168.50.13:0']);
  assert.equal(formatTunnelList([]), 'TUNNEL   VALUE', 'an empty map still prints the header');
});

test('bpf nat list: one formatNatEntry line per entry, no header', () => {
  const base = { family: 'ipv4', map: 'cilium_snat_v4_external', nexthdr: 6, proto: 'TCP', created: 100, age: 7, needsCt: true } as const;
  const rows: NatDumpEntry[] = [
    { ...base, type: 'OUT', src: '10.200.0.10', sport: 40000, dst: '192.168.50.100', dport: 80, xlateAddr: '192.168.50.11', xlatePort: 40000 },
    { ...base, type: 'IN', src: '192.168.50.100', sport: 80, dst: '192.168.50.11', dport: 40000, xlateAddr: '10.200.0.10', xlatePort: 40000 },
  ];
  assert.deepEqual(formatNatList(rows).split('\n'), [
    'TCP OUT 10.200.0.10:40000 -> 192.168.50.100:80 XLATE_SRC 192.168.50.11:40000 Created=7sec ago NeedsCT=1',
    'TCP IN 192.168.50.100:80 -> 192.168.50.11:40000 XLATE_DST 10.200.0.10:40000 Created=7sec ago NeedsCT=1',
  ]);
  assert.equal(formatNatList([]), '', 'an empty table prints nothing');
});

test('bpf neigh list: IP / MAC / AGE table', () => {
  const out = formatNeighList([
    { ip: '192.168.50.1', mac: '02:00:c0:a8:32:01', ageSeconds: 3 },
    { ip: '192.168.50.12', mac: '02:00:c0:a8:32:0c', ageSeconds: 120 },
  ]);
  assert.deepEqual(out.split('\n'), [
    'IP              MAC                 AGE',
    '192.168.50.1    02:00:c0:a8:32:01   3s',
    '192.168.50.12   02:00:c0:a8:32:0c   120s',
  ]);
});

test('status: tunnel mode with uplink, masquerade, host device and remote nodes', () => {
  const out = formatStatus(status(CLUSTER), false);
  assert.equal(row(out, 'Routing'), 'Network: Tunnel [vxlan port 8472]');
  assert.equal(row(out, 'Masquerading'), 'Userspace [eth0] [IPv4: Enabled, IPv6: Disabled]');
  assert.equal(row(out, 'Uplink'), 'eth0   192.168.50.11/24 via 192.168.50.1   MAC 02:00:c0:a8:32:0b   MTU 1500');
  assert.equal(row(out, 'Host device'), 'tapestry_host');
  assert.equal(row(out, 'Remote nodes'), '2 (node-b, node-c)');
  assert.ok(out.includes('\nRouting:                 Network: Tunnel'), `rows are padded to 25 columns like the others:\n${out}`);
  const keys = out.split('\n').map((l) => l.split(':')[0]);
  assert.deepEqual(keys.slice(keys.indexOf('Datapath'), keys.indexOf('Endpoints') + 1), ['Datapath', 'Routing', 'Masquerading', 'Uplink', 'Host device', 'Remote nodes', 'Endpoints']);
  assert.ok(!out.includes('NAME'), `plain status has no node table:\n${out}`);
});

test('status: native routing, masquerade off, no peers yet', () => {
  const out = formatStatus(status({ ...CLUSTER, routingMode: 'native', tunnel: null, masquerade: false, nodes: [] }), false);
  assert.equal(row(out, 'Routing'), 'Network: Native');
  assert.equal(row(out, 'Masquerading'), 'Disabled');
  assert.equal(row(out, 'Remote nodes'), '0');
});

test('status: geneve tunnel shows its protocol and port', () => {
  const out = formatStatus(status({ ...CLUSTER, tunnel: { protocol: 'geneve', port: 6081 } }), false);
  assert.equal(row(out, 'Routing'), 'Network: Tunnel [geneve port 6081]');
});

test('status: local-only node has no uplink, host-device or nodes rows', () => {
  const out = formatStatus(status({ routingMode: 'local', tunnel: null, masquerade: false, uplink: null, hostDevice: null, nodes: [] }), false);
  assert.equal(row(out, 'Routing'), 'Network: local-only (no uplink)');
  assert.equal(row(out, 'Masquerading'), 'Disabled');
  assert.equal(row(out, 'Uplink'), undefined);
  assert.equal(row(out, 'Host device'), undefined);
  assert.equal(row(out, 'Remote nodes'), undefined);
});

test('status: an uplink whose MAC is not read yet, without gateway', () => {
  const out = formatStatus(status({ ...CLUSTER, uplink: { ...CLUSTER.uplink!, gateway: null, mac: null } }), false);
  assert.equal(row(out, 'Uplink'), 'eth0   192.168.50.11/24   MAC unknown   MTU 1500');
});

test('status --verbose: remote nodes in full, between devices and counters', () => {
  const out = formatStatus(status(CLUSTER), true);
  const lines = out.split('\n');
  const at = lines.indexOf('Remote nodes:');
  assert.ok(at > lines.indexOf('Devices:'), `node table follows the device table:\n${out}`);
  assert.ok(at < lines.indexOf('Datapath counters:'), `node table precedes the counters:\n${out}`);
  assert.deepEqual(lines.slice(at + 1, at + 4), [
    'NAME     ADDRESS         IPv4 POD CIDR   IPv6 POD CIDR   ENDPOINTS',
    'node-b   192.168.50.12   10.201.0.0/24   fd00:201::/64   2',
    'node-c   192.168.50.13   10.202.0.0/24   -               0',
  ]);
});

test('status from an agent without the cluster object keeps its Routing row', () => {
  const s = status(undefined);
  s.datapath.routing = 'local endpoints';
  const out = formatStatus(s, false);
  assert.equal(row(out, 'Routing'), 'Network: local endpoints');
  assert.equal(row(out, 'Masquerading'), undefined);
});

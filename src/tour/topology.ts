/**
 * The tour's cluster: two Tapestry nodes in VXLAN tunnel mode, two pods on
 * each, one ClusterIP service whose selector matches a pod on each node,
 * and the testbed's outside host (src/testbed/cluster.ts has the
 * addressing rules and builds it all).
 *
 *   ns <p>n1  10.99.0.11                         ns <p>n2  10.99.0.12
 *   client 10.200.1.10  web 10.200.1.11          web 10.200.2.10  db 10.200.2.11 (iperf3 -s)
 *   (and fd00:200:1::10, ::11)                   (and fd00:200:2::10, ::11)
 *          \        /                                  \        /
 *      tapestry agent ── eth0 ══ VXLAN, UDP 8472 ══ eth0 ── tapestry agent
 *                               bridge br0, 10.99.0.0/24
 *                                        |
 *                      outside 10.99.0.100 (HTTP :80 answers "ip:port", iperf3 -s)
 *
 *   service web: ClusterIP 10.96.0.10:80 -> app=web :8080 (web@n1, web@n2)
 *   NodePorts (north-south.ts): 30080/30081 -> web (SNAT/DSR), 30201/30202 -> db iperf3 (SNAT/DSR)
 *
 * API:
 *   tourSpec(prefix) -> ClusterSpec     what Cluster.up builds
 *   tourOf(cluster) -> Tour             the handles the steps use
 *   describe(t) -> string               the topology as printed before the traffic
 */
import type { Cluster, ClusterSpec, NodeHandle, PodHandle } from '../testbed/cluster.ts';

/** The service both web pods back. */
export const SERVICE = { name: 'web', clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }], selector: { app: 'web' } };

const np = (name: string, port: number, targetPort: number, app: string, mode: 'snat' | 'dsr') => ({
  name, type: 'NodePort', clusterIP: `10.96.1.${port % 100}`, ports: [{ port, targetPort, nodePort: port }], selector: { app }, forwardingMode: mode,
});

/** The NodePort services the north-south steps use (north-south.ts), in every node's config: web and db, SNAT and DSR. */
export const NORTH_SOUTH_SERVICES = [
  np('web-snat', 30080, 8080, 'web', 'snat'),
  np('web-dsr', 30081, 8080, 'web', 'dsr'),
  np('db-snat', 30201, 5201, 'db', 'snat'),
  np('db-dsr', 30202, 5201, 'db', 'dsr'),
];

/** Nodes n1 and n2, their four pods and the cluster they live in. */
export interface Tour {
  c: Cluster;
  n1: NodeHandle;
  n2: NodeHandle;
  client: PodHandle;
  web1: PodHandle;
  web2: PodHandle;
  db: PodHandle;
}

export function tourSpec(prefix: string): ClusterSpec {
  return {
    prefix,
    routingMode: 'tunnel',
    tunnelProtocol: 'vxlan',
    masquerade: true,
    nodes: [
      { name: 'n1', pods: [{ name: 'client', labels: { app: 'client' } }, { name: 'web', labels: { app: 'web', tier: 'frontend' } }] },
      { name: 'n2', pods: [{ name: 'web', labels: { app: 'web', tier: 'frontend' } }, { name: 'db', labels: { app: 'db', tier: 'backend' } }] },
    ],
    services: [SERVICE, ...NORTH_SOUTH_SERVICES],
  };
}

export function tourOf(c: Cluster): Tour {
  const [n1, n2] = c.nodes as [NodeHandle, NodeHandle];
  const pod = (n: NodeHandle, name: string): PodHandle => n.pods.find((p) => p.name === name)!;
  return { c, n1, n2, client: pod(n1, 'client'), web1: pod(n1, 'web'), web2: pod(n2, 'web'), db: pod(n2, 'db') };
}

export function describe(t: Tour): string {
  const lines = [`  underlay  bridge ${t.c.underlay.bridge} in ns ${t.c.underlay.ns}, 10.99.0.0/24`];
  for (const n of [t.n1, t.n2]) {
    lines.push(`  node ${n.name}   ${n.address.padEnd(12)} ns ${n.ns}, pods ${n.podCIDR4} ${n.podCIDR6}, API ${n.config.api.socket}`);
    for (const p of n.pods) lines.push(`    ${`${p.name}@${n.name}`.padEnd(10)} ${p.ipv4.padEnd(12)} ${p.ipv6.padEnd(16)} ${Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(',')}`);
  }
  lines.push(`  outside   ${t.c.outside.ip.padEnd(12)} ns ${t.c.outside.ns}, HTTP :80 answers the client's ip:port, iperf3 -s :5201`);
  lines.push(`  service   ${SERVICE.name}: ClusterIP ${SERVICE.clusterIP}:80 -> app=web :8080 (web@n1, web@n2)`);
  lines.push(`  NodePorts on every node: ${NORTH_SOUTH_SERVICES.map((s) => `${s.ports[0]!.nodePort} ${s.name}`).join(', ')}`);
  return lines.join('\n');
}

/**
 * Kernel leg: the baseline Tapestry is measured against. Linux routing
 * between two pod namespaces through a router namespace, as Cilium's
 * routing mode lays it out.
 *
 *   ns <p>ka                 ns <p>kr (router, ip_forward=1)          ns <p>kb
 *   eth0 10.77.0.10/32 ==veth== lxca    lo 10.77.0.1/32    lxcb ==veth== eth0 10.77.0.11/32
 *   default via 10.77.0.1         10.77.0.10 dev lxca                default via 10.77.0.1
 *                                 10.77.0.11 dev lxcb
 *
 * The gateway address lives on R's loopback; R answers ARP for it on both
 * veths (arp_ignore=0), which is what cilium_host's router IP does for pods.
 * The veths are created directly inside the namespaces, so no interface
 * ever appears in the root namespace.
 *
 * API: upKernel
 */
import type { Cleanups } from './cleanup.ts';
import { createNetns, deleteNetns, ipIn, reachable, podRoutes, sysctlIn } from './netns.ts';
import { BenchError } from './proc.ts';
import { kernelServices } from './services.ts';
import { legNs, POD, type Topology } from './topology.ts';

/** Builds the kernel-routing leg under `prefix`; its teardown is registered in `cleanups`. */
export async function upKernel(prefix: string, cleanups: Cleanups): Promise<Topology> {
  const nsA = legNs(prefix, 'kernel', 'a');
  const nsB = legNs(prefix, 'kernel', 'b');
  const nsR = legNs(prefix, 'kernel', 'r');
  const created: string[] = [];
  const down = cleanups.add('kernel leg namespaces', async () => {
    for (const ns of created.reverse()) await deleteNetns(ns);
  });
  try {
    for (const ns of [nsR, nsA, nsB]) {
      created.push(ns); // recorded before it exists: an abort mid-create still deletes it
      await createNetns(ns);
    }
    await sysctlIn(nsR, 'net.ipv4.ip_forward', '1');
    await sysctlIn(nsR, 'net.ipv4.conf.all.rp_filter', '0');
    await sysctlIn(nsR, 'net.ipv4.conf.default.rp_filter', '0');
    await ipIn(nsR, ['addr', 'add', `${POD.gateway}/32`, 'dev', 'lo']);
    for (const [ns, ip, host] of [
      [nsA, POD.ipA, 'lxca'],
      [nsB, POD.ipB, 'lxcb'],
    ] as const) {
      await ipIn(ns, ['link', 'add', 'eth0', 'mtu', String(POD.mtu), 'type', 'veth', 'peer', 'name', host, 'mtu', String(POD.mtu), 'netns', nsR]);
      await ipIn(nsR, ['link', 'set', host, 'up']);
      await ipIn(nsR, ['route', 'add', `${ip}/32`, 'dev', host, 'scope', 'link']);
      await podRoutes(ns, 'eth0', ip, POD.gateway, POD.mtu);
    }
    if (!(await reachable(nsA, nsB, POD.ipB))) throw new BenchError(`kernel leg: ${nsA} cannot reach ${POD.ipB}`);
  } catch (err) {
    await down();
    throw err;
  }
  return {
    leg: 'kernel',
    nsA,
    nsB,
    ipA: POD.ipA,
    ipB: POD.ipB,
    extras: {},
    notes: ['veth pairs to a router namespace, /32 pod addresses, default route via 10.77.0.1, ip_forward=1'],
    services: kernelServices(nsR, prefix, POD.ipB),
    down,
  };
}

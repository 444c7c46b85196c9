/**
 * Which LoadBalancer IPs a node announces (ServiceManager.announced()):
 * one node per service among all nodes, or — externalTrafficPolicy Local —
 * only among the nodes that run a backend; what it tells the datapath.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceManager } from '../../src/agent/service-manager.ts';
import { serviceSpecSchema } from '../../src/agent/config.ts';
import type { DatapathClient } from '../../src/agent/datapath-client.ts';
import type { Endpoint } from '../../src/agent/endpoint-manager.ts';
import type { Request } from '../../src/agent/worker-protocol.ts';

function manager(self: string, local: Record<string, string>[], peers: { name: string; pods: Record<string, string>[] }[]) {
  const sent: string[][] = [];
  const dp = { request: async (r: Omit<Request, 'id'>) => void (r.op === 'announceSet' && sent.push((r as unknown as { addrs: string[] }).addrs)) } as unknown as DatapathClient;
  const eps = local.map((labels, k) => ({ id: k + 1, name: `p${k}`, labels, ipv4: `10.200.1.${10 + k}`, state: 'ready' }) as unknown as Endpoint);
  const m = new ServiceManager(dp, () => eps, { algorithm: 'random', maglevTableSize: 16381 }, ['10.99.0.11']);
  m.l2 = { self, peers: () => peers };
  return { m, sent };
}

const lb = (name: string, ip: string, etp: 'Cluster' | 'Local') =>
  serviceSpecSchema.parse({ name, type: 'LoadBalancer', clusterIP: ip.replace('10.99.0.', '10.96.0.'), loadBalancerIP: ip, externalTrafficPolicy: etp, ports: [{ port: 80 }], selector: { app: 'web' } });

test('eTP=Local: only a node with a backend announces; eTP=Cluster: exactly one of all nodes', async () => {
  const web = { app: 'web' };
  // n1 has no web pod, n2 has one: with Local only n2 may announce.
  const n1 = manager('n1', [], [{ name: 'n2', pods: [web] }, { name: 'n3', pods: [] }]);
  const n2 = manager('n2', [web], [{ name: 'n1', pods: [] }, { name: 'n3', pods: [] }]);
  const n3 = manager('n3', [], [{ name: 'n1', pods: [] }, { name: 'n2', pods: [web] }]);
  // Three services, so a hash that ignored where the backends run would almost surely spread them.
  const ips = ['10.99.0.50', '10.99.0.51', '10.99.0.52'];
  for (const { m } of [n1, n2, n3]) for (const [k, ip] of ips.entries()) await m.upsert(lb(`local${k}`, ip, 'Local'));
  assert.deepEqual([n1, n2, n3].map(({ m }) => m.announced()), [[], ips, []]);
  assert.deepEqual(n2.sent.at(-1), ips, 'the datapath is told');
  for (const { m } of [n1, n2, n3]) for (const k of [1, 2]) await m.delete(`local${k}`);
  // Cluster: one announcer among the three, whichever it is, and all agree.
  for (const { m } of [n1, n2, n3]) await m.upsert(lb('local0', '10.99.0.50', 'Cluster'));
  assert.equal([n1, n2, n3].filter(({ m }) => m.announced().includes('10.99.0.50')).length, 1);
  // Deleting the service withdraws it.
  for (const { m } of [n1, n2, n3]) await m.delete('local0');
  assert.deepEqual(n2.sent.at(-1), []);
});

/**
 * L2 announcements: which node answers ARP for a LoadBalancer IP on the
 * underlay (Cilium's l2-announcements, pkg/l2announcer). Cilium elects the
 * announcer per service through a Kubernetes lease; Tapestry has no shared
 * store, so every agent computes the same answer from the same inputs:
 * the candidates sorted by name, indexed by a hash of the service name.
 * Candidates are every node, or — externalTrafficPolicy: Local — only the
 * nodes that run a backend (Cilium skips nodes without local endpoints
 * for such services too), so the announcer can always serve the traffic.
 *
 * API: announcer(serviceName, candidates) -> node name | undefined
 */
import { fnv1a } from './identity.ts';

/** The node that announces service `name`'s LoadBalancer IP, among `candidates` (node names). */
export function announcer(name: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const sorted = [...new Set(candidates)].sort();
  return sorted[fnv1a(name) % sorted.length];
}

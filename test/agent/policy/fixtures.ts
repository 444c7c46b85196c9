/** Shared policy fixtures: Cilium's Star Wars demo and a registry to resolve against. */
import { IdentityRegistry } from '../../../src/agent/identity.ts';
import { parsePolicies } from '../../../src/agent/policy/parse.ts';
import { policyPrefixes } from '../../../src/agent/policy/resolve.ts';
import type { Policy } from '../../../src/agent/policy/model.ts';

/** The demo's L3/L4 rule: only the empire reaches the Death Star, on 80/TCP. */
export const DEATHSTAR = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
spec:
  description: "L3-L4 policy to restrict deathstar access to empire ships only"
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`;

export const deathstar = { org: 'empire', class: 'deathstar' };
export const tiefighter = { org: 'empire', class: 'tiefighter' };
export const xwing = { org: 'alliance', class: 'xwing' };

/** Policies from YAML, a registry with these pods and the policies' CIDR identities. */
export function setup(yaml: string, pods: Record<string, string>[] = [deathstar, tiefighter, xwing]): { policies: Policy[]; registry: IdentityRegistry } {
  const policies = yaml.trim() === '' ? [] : parsePolicies(yaml, 'test.yaml');
  const registry = new IdentityRegistry();
  for (const p of pods) registry.addPod(p);
  registry.syncCidrs(policyPrefixes(policies));
  return { policies, registry };
}

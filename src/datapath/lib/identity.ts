/**
 * Reserved security identities (Cilium pkg/identity/numericidentity.go).
 *
 * API: ID.*, reservedIdentityName(id) -> "world" | … | undefined
 */

/** Numeric identities with fixed meaning. */
export const ID = {
  UNKNOWN: 0,
  HOST: 1,
  WORLD: 2,
  UNMANAGED: 3,
  HEALTH: 4,
  INIT: 5,
  REMOTE_NODE: 6,
  KUBE_APISERVER: 7,
  INGRESS: 8,
  WORLD_IPV4: 9,
  WORLD_IPV6: 10,
} as const;

/** Identity a node puts in the VNI for traffic its own stack sends (LOCAL_NODE_ID). */
export const LOCAL_NODE_ID = ID.REMOTE_NODE;

const NAMES = ['unknown', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress', 'world-ipv4', 'world-ipv6'];

/** Name of a reserved identity, as Cilium prints it ("reserved:" label without the prefix). */
export function reservedIdentityName(id: number): string | undefined {
  return NAMES[id];
}

/**
 * Security identities for label sets, the same on every node without a
 * shared allocator.
 *
 * API:
 *   labelKey(labels) -> "k1=v1;k2=v2"        canonical form (sorted keys)
 *   IdentityAllocator.for(labels) -> id      256..65535, stable for a label set
 *
 * Cilium allocates cluster identities (256…65535 for cluster 0) through the
 * Kubernetes API or the kvstore so that every node maps a label set to the
 * same number. Tapestry's agents share no store, so the number is derived
 * from the labels themselves: FNV-1a over the canonical key, folded into
 * the 65280 cluster-0 identities. Two label sets that hash alike are told
 * apart by probing to the next free number in the order an agent meets
 * them — the one case where two nodes could disagree, with odds of
 * about n²/130 000 for n distinct label sets.
 */

/** First and last cluster-0 global identity (pkg/identity/numericidentity.go). */
export const MIN_CLUSTER_IDENTITY = 256;
export const MAX_CLUSTER_IDENTITY = 65535;

/** Canonical label key: sorted "k=v" joined by ";". */
export function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(';');
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Maps label sets to identities; one per agent. */
export class IdentityAllocator {
  private readonly byKey = new Map<string, number>();
  private readonly used = new Set<number>();

  for(labels: Record<string, string>): number {
    const key = labelKey(labels);
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    const span = MAX_CLUSTER_IDENTITY - MIN_CLUSTER_IDENTITY + 1;
    let id = MIN_CLUSTER_IDENTITY + (fnv1a(key) % span);
    for (let tries = 0; this.used.has(id); tries++) {
      if (tries >= span) throw new Error('identity space exhausted');
      id = id === MAX_CLUSTER_IDENTITY ? MIN_CLUSTER_IDENTITY : id + 1;
    }
    this.byKey.set(key, id);
    this.used.add(id);
    return id;
  }
}

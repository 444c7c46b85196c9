/**
 * The agent's policy repository: policies from the config and the API,
 * resolved into every local endpoint's policy map whenever the policies,
 * the endpoints or the known identities change (Cilium's policy
 * repository + endpoint regeneration, without the wait).
 *
 * API:
 *   new PolicyManager(dp, registry, mode, endpoints, remotePods)
 *   await pm.import(text | object) -> Policy[]    validated whole, then applied
 *   await pm.delete(name) -> Policy              "name" or "namespace/name"
 *   pm.list() -> Policy[]
 *   await pm.resync()                            recompute and push every endpoint's map
 *   pm.enforcement(epId) -> { ingress, egress }  for `endpoint list`
 *   pm.trace(req) -> TraceResult                 `policy trace`
 *
 * Identities: the registry learns every pod (local and the other nodes'
 * from the cluster file) and the CIDR identities the policies name; the
 * CIDR identities go into the ipcache so that the datapath's longest-prefix
 * match gives an address the identity its rules were written for.
 */
import type { DatapathClient } from './datapath-client.ts';
import type { Endpoint } from './endpoint-manager.ts';
import { labelKey, securityLabels, type IdentityRegistry } from './identity.ts';
import { parsePolicies, parsePolicy } from './policy/parse.ts';
import { policyPrefixes, resolvePolicy, type EnforcementMode } from './policy/resolve.ts';
import { trace, type TraceRequest, type TraceResult } from './policy/trace.ts';
import type { Policy } from './policy/model.ts';

/** Serialised: resyncs and API calls never interleave. */
export class PolicyManager {
  private readonly policies = new Map<string, Policy>();
  private readonly pods = new Map<string, { labels: Record<string, string>; count: number }>();
  private readonly cidrsInIpcache = new Set<string>();
  private readonly applied = new Map<number, { ingress: boolean; egress: boolean; entries: number }>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dp: DatapathClient,
    readonly registry: IdentityRegistry,
    readonly mode: EnforcementMode,
    private readonly endpoints: () => Endpoint[],
    private readonly remotePods: () => { labels: Record<string, string> }[],
  ) {}

  /** Policies, sorted by id. */
  list(): Policy[] {
    return [...this.policies.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Import one or more policies (YAML/JSON text with `---` separators, or one document object). */
  import(doc: string | unknown, file = '<api>'): Promise<Policy[]> {
    return this.serial(async () => {
      const parsed = typeof doc === 'string' ? parsePolicies(doc, file) : [parsePolicy(doc)];
      for (const p of parsed) this.policies.set(p.id, p);
      await this.resyncNow();
      return parsed;
    });
  }

  /** Delete by "name", "namespace/name" or the full id. */
  delete(name: string): Promise<Policy> {
    return this.serial(async () => {
      const p = this.find(name);
      if (!p) throw Object.assign(new Error(`policy ${name} not found`), { status: 404 });
      this.policies.delete(p.id);
      await this.resyncNow();
      return p;
    });
  }

  find(name: string): Policy | undefined {
    return this.policies.get(name) ?? this.list().find((p) => `${p.namespace}/${p.name}` === name || p.name === name);
  }

  /** Recompute everything (after endpoints changed). */
  resync(): Promise<void> {
    return this.serial(() => this.resyncNow());
  }

  enforcement(epId: number): { ingress: boolean; egress: boolean } {
    const a = this.applied.get(epId);
    return { ingress: a?.ingress ?? false, egress: a?.egress ?? false };
  }

  trace(req: TraceRequest): TraceResult {
    return trace(this.list(), this.registry, req, { mode: this.mode });
  }

  private async resyncNow(): Promise<void> {
    this.syncPods();
    const policies = this.list();
    this.registry.syncCidrs(policyPrefixes(policies));
    await this.syncIpcache();
    const eps = this.endpoints().filter((e) => e.state === 'ready');
    for (const ep of eps) {
      const r = resolvePolicy(policies, this.registry, securityLabels(ep.labels), { mode: this.mode });
      await this.dp.request({ op: 'policySet', epId: ep.id, ingress: r.ingress.enforced, egress: r.egress.enforced, entries: r.entries });
      this.applied.set(ep.id, { ingress: r.ingress.enforced, egress: r.egress.enforced, entries: r.entries.length });
    }
    for (const id of [...this.applied.keys()]) if (!eps.some((e) => e.id === id)) this.applied.delete(id);
  }

  /** Register exactly the current pods (local endpoints + other nodes') in the identity registry. */
  private syncPods(): void {
    const want = new Map<string, { labels: Record<string, string>; count: number }>();
    for (const p of [...this.endpoints(), ...this.remotePods()]) {
      const k = labelKey(p.labels);
      const w = want.get(k);
      if (w) w.count++;
      else want.set(k, { labels: p.labels, count: 1 });
    }
    for (const [k, have] of this.pods) {
      const n = want.get(k)?.count ?? 0;
      for (let c = n; c < have.count; c++) this.registry.removePod(have.labels);
    }
    for (const [k, w] of want) {
      const n = this.pods.get(k)?.count ?? 0;
      for (let c = n; c < w.count; c++) this.registry.addPod(w.labels);
    }
    this.pods.clear();
    for (const [k, w] of want) this.pods.set(k, w);
  }

  /** CIDR identities into the ipcache (and out of it when no policy names them any more). */
  private async syncIpcache(): Promise<void> {
    const entries = this.registry.cidrEntries();
    const want = new Set(entries.map((e) => e.prefix));
    const gone = [...this.cidrsInIpcache].filter((c) => !want.has(c));
    if (gone.length > 0) await this.dp.request({ op: 'ipcacheDelete', cidrs: gone });
    if (entries.length > 0) await this.dp.request({ op: 'ipcacheUpsert', entries: entries.map((e) => ({ cidr: e.prefix, identity: e.identity })) });
    this.cidrsInIpcache.clear();
    for (const c of want) this.cidrsInIpcache.add(c);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.queue.then(fn, fn);
    this.queue = r.catch(() => undefined);
    return r;
  }
}

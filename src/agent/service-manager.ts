/**
 * Service manager: the kube-proxy-replacement control plane for one node.
 * Turns Service specs (frontends: clusterIP, externalIPs, loadBalancerIP ×
 * ports; backends: endpoints matching a selector and explicit addresses)
 * into datapath services, one per frontend address/port, each with its own
 * rev_nat_index (Cilium: one lbmap service per frontend).
 *
 * API:
 *   new ServiceManager(dp, endpoints, lbConfig)
 *   upsert(spec) / delete(name) / list()
 *   resync()       endpoints changed: recompute selector backends
 *
 * Backend IDs are allocated per backend address:port and stay stable.
 * Maglev tables are built on this (control) thread and sent whole; the
 * datapath worker only swaps the new table in.
 * A backend that leaves a service is written as terminating, not deleted:
 * connections pinned to it keep flowing (they drain); new ones avoid it.
 */
import { backendName, parseMaglevSeed } from '../datapath/lib/maglev.ts';
import { SVC_F, SVC_F2 } from '../datapath/lib/lb-map.ts';
import { maglevTableFor } from '../datapath/services.ts';
import type { ServiceSpec } from './config.ts';
import type { DatapathClient } from './datapath-client.ts';
import type { Endpoint } from './endpoint-manager.ts';
import type { DpBackend, DpService } from './worker-protocol.ts';
import { FWD_MODE } from '../datapath/lib/nodeport.ts';
import { announcer } from './l2-announce.ts';

/** This node and the others, for L2 announcements of LoadBalancer IPs. */
export interface L2Nodes {
  self: string;
  /** The other nodes and their pods' labels. */
  peers: () => { name: string; pods: Record<string, string>[] }[];
}

/** Load-balancer settings from the config. */
export interface LbSettings {
  algorithm: 'random' | 'maglev';
  maglevTableSize: number;
}

/** NodePort range (Cilium node-port-range default). */
export const NODEPORT_MIN = 30000;
export const NODEPORT_MAX = 32767;

/** A service as applied: the spec and the frontends it produced. */
export interface AppliedService {
  spec: ServiceSpec;
  frontends: { revNat: number; address: string; port: number; protocol: string; type: string; backends: DpBackend[] }[];
}

/** A request the manager refuses; names the field. */
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Owns the node's services. */
export class ServiceManager {
  /** Who this node is among the cluster's nodes (set by the agent); without it, every LoadBalancer IP is announced. */
  l2: L2Nodes | undefined;
  /** Other nodes' pods, matched by selectors (never local for traffic policies). */
  remoteEndpoints: () => { labels: Record<string, string>; ipv4?: string }[] = () => [];
  private readonly applied = new Map<string, AppliedService>();
  private readonly revNats = new Map<string, number>();
  private readonly backendIds = new Map<string, number>();
  private nextRevNat = 1;
  private nextBackendId = 1;
  private readonly seeds = parseMaglevSeed();
  /** Frontend "address:port" → the service that owns it (conflict check in O(1)). */
  private readonly frontendOwner = new Map<string, string>();
  /** NodePorts in use, by port → service name. */
  private readonly nodePorts = new Map<number, string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dp: DatapathClient,
    private readonly endpoints: () => Endpoint[],
    private readonly lb: LbSettings,
    /** The node's addresses NodePorts listen on (the router IP is cilium_host's). */
    private readonly nodeAddrs: readonly string[],
  ) {}

  list(): AppliedService[] {
    return [...this.applied.values()].sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  }

  /** Create or replace a service. */
  upsert(spec: ServiceSpec): Promise<AppliedService> {
    return this.serial(() => this._upsert(spec));
  }

  /** Delete a service by name. */
  delete(name: string): Promise<AppliedService> {
    return this.serial(async () => {
      const a = this.applied.get(name);
      if (!a) throw new ServiceError(`service "${name}" not found`, 404);
      for (const f of a.frontends) {
        await this.dp.request({ op: 'serviceDelete', revNat: f.revNat });
        this.frontendOwner.delete(`${f.address}:${f.port}`);
      }
      for (const [port, owner] of this.nodePorts) if (owner === name) this.nodePorts.delete(port);
      this.applied.delete(name);
      await this.announce();
      return a;
    });
  }

  /** LoadBalancer IPs this node announces on the underlay (answers ARP for). */
  announced(): string[] {
    const out: string[] = [];
    for (const { spec } of this.applied.values()) {
      if (!spec.loadBalancerIP) continue;
      if (this.l2 === undefined) {
        out.push(spec.loadBalancerIP);
        continue;
      }
      const sel = spec.selector ?? {};
      const matches = (labels: Record<string, string>) => Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);
      const local = spec.externalTrafficPolicy === 'Local';
      const cands: string[] = [];
      if (!local || this.endpoints().some((e) => e.state === 'ready' && matches(e.labels))) cands.push(this.l2.self);
      for (const p of this.l2.peers()) if (!local || p.pods.some(matches)) cands.push(p.name);
      if (announcer(spec.name, cands) === this.l2.self) out.push(spec.loadBalancerIP);
    }
    return out.sort();
  }

  private async announce(): Promise<void> {
    await this.dp.request({ op: 'announceSet', addrs: this.announced() });
  }

  /** Recompute every service's backends (after endpoints came or went). */
  resync(): Promise<void> {
    return this.serial(async () => {
      for (const a of [...this.applied.values()]) await this._upsert(a.spec);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async _upsert(spec: ServiceSpec): Promise<AppliedService> {
    const ext = spec.externalTrafficPolicy === 'Local' ? SVC_F.EXT_LOCAL_SCOPE : 0;
    const aff = spec.sessionAffinity === 'ClientIP' ? SVC_F.AFFINITY : 0;
    // [address, type, flags, port → frontend port]
    const frontendIps: [string, string, number, (p: ServiceSpec['ports'][number]) => number][] = [[spec.clusterIP, 'ClusterIP', aff, (p) => p.port]];
    for (const ip of spec.externalIPs) frontendIps.push([ip, 'ExternalIPs', SVC_F.EXTERNAL_IP | SVC_F.ROUTABLE | ext | aff, (p) => p.port]);
    const ranges = spec.loadBalancerSourceRanges ?? [];
    const srcRange = ranges.length > 0 ? SVC_F.SOURCE_RANGE : 0;
    if (spec.loadBalancerIP) frontendIps.push([spec.loadBalancerIP, 'LoadBalancer', SVC_F.LOADBALANCER | SVC_F.ROUTABLE | ext | aff | srcRange, (p) => p.port]);
    const fwdMode = spec.forwardingMode === 'dsr' ? FWD_MODE.DSR : spec.forwardingMode === 'snat' ? FWD_MODE.SNAT : FWD_MODE.DEFAULT;
    if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
      const ports = this.assignNodePorts(spec);
      for (const addr of this.nodeAddrs) frontendIps.push([addr, 'NodePort', SVC_F.NODEPORT | SVC_F.ROUTABLE | ext | aff, (p) => ports.get(p.port)!]);
    }
    for (const [ip, , , portOf] of frontendIps) {
      for (const p of spec.ports) {
        const owner = this.frontendOwner.get(`${ip}:${portOf(p)}`);
        if (owner !== undefined && owner !== spec.name) {
          throw new ServiceError(`clusterIP: ${ip}:${portOf(p)} is already a frontend of service "${owner}"`, 409);
        }
      }
    }
    const prev = this.applied.get(spec.name);
    const algorithm = spec.algorithm ?? this.lb.algorithm;
    const frontends: AppliedService['frontends'] = [];
    for (const port of spec.ports) {
      const target = port.targetPort ?? port.port;
      const wanted = new Map<string, { ip: string; port: number; weight: number; state: DpBackend['state'] }>();
      const sel = spec.selector;
      const local = new Set(this.endpoints().filter((e) => e.state === 'ready' && e.ipv4).map((e) => e.ipv4!));
      if (sel && Object.keys(sel).length > 0) {
        for (const ep of this.endpoints()) {
          if (!ep.ipv4 || ep.state !== 'ready') continue;
          if (Object.entries(sel).every(([k, v]) => ep.labels[k] === v)) wanted.set(`${ep.ipv4}:${target}`, { ip: ep.ipv4, port: target, weight: 100, state: 'active' });
        }
        // Pods of the other nodes (from the cluster section) are backends too, reached through the overlay.
        for (const ep of this.remoteEndpoints()) {
          if (!ep.ipv4) continue;
          if (Object.entries(sel).every(([k, v]) => ep.labels[k] === v)) wanted.set(`${ep.ipv4}:${target}`, { ip: ep.ipv4, port: target, weight: 100, state: 'active' });
        }
      }
      for (const b of spec.backends ?? []) wanted.set(`${b.ip}:${b.port ?? target}`, { ip: b.ip, port: b.port ?? target, weight: b.weight, state: b.state });
      for (const [ip, type, flags, portOf] of frontendIps) {
        const fport = portOf(port);
        const fkey = `${ip}:${fport}/${port.protocol}`;
        let revNat = this.revNats.get(fkey);
        if (revNat === undefined) {
          if (this.nextRevNat > 0xffff) throw new ServiceError('services: out of rev_nat_index values', 507);
          revNat = this.nextRevNat++;
          this.revNats.set(fkey, revNat);
        }
        // Traffic policy Local: only backends on this node (one node here:
        // the local endpoints; explicit addresses elsewhere are not local).
        const localOnly = type === 'ClusterIP' ? spec.internalTrafficPolicy === 'Local' : spec.externalTrafficPolicy === 'Local';
        const scoped = localOnly ? new Map([...wanted].filter(([, b]) => local.has(b.ip))) : wanted;
        // Backends that left the service drain as terminating.
        const old = prev?.frontends.find((f) => f.revNat === revNat)?.backends ?? [];
        const list = new Map(scoped);
        for (const b of old) {
          const k = `${b.ip}:${b.port}`;
          if (!list.has(k)) list.set(k, { ip: b.ip, port: b.port, weight: b.weight, state: 'terminating' });
        }
        const backends: DpBackend[] = [...list.values()].map((b) => ({ ...b, id: this.backendId(`${b.ip}:${b.port}`), name: backendName(b.ip, b.port) }));
        // Maglev tables are built here, on the control thread, and handed to
        // the datapath whole: the worker swaps the reference between batches.
        const maglevTable =
          algorithm === 'maglev'
            ? maglevTableFor(backends.filter((b) => b.state === 'active' && b.weight > 0), this.lb.maglevTableSize, this.seeds.murmurSeed)
            : undefined;
        const svc: DpService = {
          revNat,
          vip: ip,
          port: fport,
          flags,
          flags2: type === 'ClusterIP' && spec.internalTrafficPolicy === 'Local' ? SVC_F2.INT_LOCAL_SCOPE : 0,
          affinityTimeout: aff ? spec.sessionAffinityTimeout : 0,
          algorithm,
          backends,
          maglevM: this.lb.maglevTableSize,
          murmurSeed: this.seeds.murmurSeed,
          seed4: this.seeds.hashInit4Seed,
          ...(maglevTable ? { maglevTable } : {}),
          ...(type !== 'ClusterIP' && fwdMode !== FWD_MODE.DEFAULT ? { fwdMode } : {}),
          ...(type === 'LoadBalancer' && ranges.length > 0 ? { sourceRanges: ranges } : {}),
        };
        await this.dp.request({ op: 'serviceUpsert', svc });
        frontends.push({ revNat, address: ip, port: fport, protocol: port.protocol, type, backends });
      }
    }
    // Frontends the new spec no longer has go away.
    for (const f of prev?.frontends ?? []) {
      if (!frontends.some((n) => n.revNat === f.revNat)) await this.dp.request({ op: 'serviceDelete', revNat: f.revNat });
      this.frontendOwner.delete(`${f.address}:${f.port}`);
    }
    for (const f of frontends) this.frontendOwner.set(`${f.address}:${f.port}`, spec.name);
    const a = { spec, frontends };
    this.applied.set(spec.name, a);
    if (spec.loadBalancerIP || prev?.spec.loadBalancerIP) await this.announce();
    return a;
  }

  /** NodePort per service port: the requested one (if free) or the lowest free in the range. */
  private assignNodePorts(spec: ServiceSpec): Map<number, number> {
    const out = new Map<number, number>();
    const mine = new Set([...this.nodePorts].filter(([, n]) => n === spec.name).map(([p]) => p));
    spec.ports.forEach((p, i) => {
      let np = p.nodePort;
      // The service map key carries no protocol (Cilium's proto 0): one NodePort per port of the service.
      const twin = spec.ports.findIndex((q, j) => j < i && q.nodePort !== undefined && q.nodePort === np);
      if (twin >= 0) throw new ServiceError(`ports[${i}].nodePort: ${np} is already used by ports[${twin}] (frontends are keyed by address and port, not protocol)`, 409);
      if (np !== undefined) {
        const owner = this.nodePorts.get(np);
        if (owner !== undefined && owner !== spec.name) throw new ServiceError(`ports[${i}].nodePort: ${np} is already used by service "${owner}"`, 409);
      } else {
        np = [...mine].find((x) => ![...out.values()].includes(x));
        for (let c = NODEPORT_MIN; np === undefined && c <= NODEPORT_MAX; c++) if (!this.nodePorts.has(c) && ![...out.values()].includes(c)) np = c;
        if (np === undefined) throw new ServiceError(`ports[${i}].nodePort: no free NodePort in ${NODEPORT_MIN}-${NODEPORT_MAX}`, 507);
      }
      out.set(p.port, np);
    });
    for (const p of mine) if (![...out.values()].includes(p)) this.nodePorts.delete(p);
    for (const np of out.values()) this.nodePorts.set(np, spec.name);
    return out;
  }

  private backendId(key: string): number {
    let id = this.backendIds.get(key);
    if (id === undefined) {
      id = this.nextBackendId++;
      this.backendIds.set(key, id);
    }
    return id;
  }
}

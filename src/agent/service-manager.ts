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
 * A backend that leaves a service is written as terminating, not deleted:
 * connections pinned to it keep flowing (they drain); new ones avoid it.
 */
import { backendName, parseMaglevSeed } from '../datapath/lib/maglev.ts';
import { SVC_F } from '../datapath/lib/lb-map.ts';
import type { ServiceSpec } from './config.ts';
import type { DatapathClient } from './datapath-client.ts';
import type { Endpoint } from './endpoint-manager.ts';
import type { DpBackend, DpService } from './worker-protocol.ts';

/** Load-balancer settings from the config. */
export interface LbSettings {
  algorithm: 'random' | 'maglev';
  maglevTableSize: number;
}

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
  private readonly applied = new Map<string, AppliedService>();
  private readonly revNats = new Map<string, number>();
  private readonly backendIds = new Map<string, number>();
  private nextRevNat = 1;
  private nextBackendId = 1;
  private readonly seeds = parseMaglevSeed();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dp: DatapathClient,
    private readonly endpoints: () => Endpoint[],
    private readonly lb: LbSettings,
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
      for (const f of a.frontends) await this.dp.request({ op: 'serviceDelete', revNat: f.revNat });
      this.applied.delete(name);
      return a;
    });
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
    const frontendIps: [string, string, number][] = [[spec.clusterIP, 'ClusterIP', 0]];
    for (const ip of spec.externalIPs) frontendIps.push([ip, 'ExternalIPs', SVC_F.EXTERNAL_IP | SVC_F.ROUTABLE]);
    if (spec.loadBalancerIP) frontendIps.push([spec.loadBalancerIP, 'LoadBalancer', SVC_F.LOADBALANCER | SVC_F.ROUTABLE]);
    for (const other of this.applied.values()) {
      if (other.spec.name === spec.name) continue;
      for (const f of other.frontends) {
        for (const [ip] of frontendIps) {
          if (spec.ports.some((p) => p.port === f.port) && f.address === ip) {
            throw new ServiceError(`clusterIP: ${ip}:${f.port} is already a frontend of service "${other.spec.name}"`, 409);
          }
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
      if (sel && Object.keys(sel).length > 0) {
        for (const ep of this.endpoints()) {
          if (!ep.ipv4 || ep.state !== 'ready') continue;
          if (Object.entries(sel).every(([k, v]) => ep.labels[k] === v)) wanted.set(`${ep.ipv4}:${target}`, { ip: ep.ipv4, port: target, weight: 100, state: 'active' });
        }
      }
      for (const b of spec.backends ?? []) wanted.set(`${b.ip}:${b.port ?? target}`, { ip: b.ip, port: b.port ?? target, weight: b.weight, state: b.state });
      for (const [ip, type, flags] of frontendIps) {
        const fkey = `${ip}:${port.port}/${port.protocol}`;
        let revNat = this.revNats.get(fkey);
        if (revNat === undefined) {
          if (this.nextRevNat > 0xffff) throw new ServiceError('services: out of rev_nat_index values', 507);
          revNat = this.nextRevNat++;
          this.revNats.set(fkey, revNat);
        }
        // Backends that left the service drain as terminating.
        const old = prev?.frontends.find((f) => f.revNat === revNat)?.backends ?? [];
        const list = new Map(wanted);
        for (const b of old) {
          const k = `${b.ip}:${b.port}`;
          if (!list.has(k)) list.set(k, { ip: b.ip, port: b.port, weight: b.weight, state: 'terminating' });
        }
        const backends: DpBackend[] = [...list.values()].map((b) => ({ ...b, id: this.backendId(`${b.ip}:${b.port}`), name: backendName(b.ip, b.port) }));
        const svc: DpService = {
          revNat,
          vip: ip,
          port: port.port,
          flags,
          algorithm,
          backends,
          maglevM: this.lb.maglevTableSize,
          murmurSeed: this.seeds.murmurSeed,
          seed4: this.seeds.hashInit4Seed,
        };
        await this.dp.request({ op: 'serviceUpsert', svc });
        frontends.push({ revNat, address: ip, port: port.port, protocol: port.protocol, type, backends });
      }
    }
    // Frontends the new spec no longer has go away.
    for (const f of prev?.frontends ?? []) {
      if (!frontends.some((n) => n.revNat === f.revNat)) await this.dp.request({ op: 'serviceDelete', revNat: f.revNat });
    }
    const a = { spec, frontends };
    this.applied.set(spec.name, a);
    return a;
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

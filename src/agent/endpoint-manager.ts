/**
 * Endpoint manager: the CNI side of the agent. ADD gives a pod namespace a
 * TAP device owned by the datapath as its eth0, with its address, a /32
 * (/128) and a default route via the router IP; DEL takes it all back.
 *
 * API:
 *   new EndpointManager(node, datapath)
 *   add(spec) -> Endpoint        validate, allocate, create netns if missing, plumb
 *   remove(idOrName)             unplumb, release, delete the netns if we made it
 *   list() / get(idOrName)
 *   removeAll()                  teardown on SIGTERM
 *
 * The TAP is created by the datapath worker in the agent's namespace, then
 * moved into the pod namespace and renamed eth0 (the worker's fd keeps
 * working across the move). MACs are derived from the endpoint ID so that
 * captures are easy to read; Cilium draws them at random.
 */
import type { IdentityAllocator } from './identity.ts';
import { checkEndpointAddrs, routerIPv4, routerIPv6, type EndpointSpec, type NodeConfig } from './config.ts';
import { parseCidr } from './cidr.ts';
import { Ipam } from './ipam.ts';
import { ipBatch, netnsAdd, netnsDel, netnsList, linkExists, netnsSysctl } from './iproute.ts';
import type { DatapathClient } from './datapath-client.ts';

/** A bad endpoint request; names the field. */
export class EndpointError extends Error {
  override name = 'EndpointError';
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Endpoint states shown by `endpoint list` (Cilium's names). */
export type EndpointStateName = 'waiting-for-identity' | 'ready' | 'disconnecting';

/** A managed endpoint. */
export interface Endpoint {
  id: number;
  name: string;
  netns: string;
  labels: Record<string, string>;
  ipv4?: string;
  ipv6?: string;
  mac: string;
  hostMac: string;
  identity: number;
  ifName: string;
  ifindex: number;
  state: EndpointStateName;
  /** Whether the agent created the namespace (and so deletes it). */
  createdNetns: boolean;
}

/** Endpoint IDs are 16-bit in Cilium's maps; IDs 1..4095 are used for endpoints. */
const MAX_ENDPOINT_ID = 4095;

function macFrom(prefix: number, id: number): string {
  const b = [0x02, 0x74, prefix, 0x00, (id >> 8) & 0xff, id & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Owns endpoints and their plumbing. */
export class EndpointManager {
  private readonly byId = new Map<number, Endpoint>();
  private readonly ipam4: Ipam;
  private readonly ipam6: Ipam | undefined;
  /** Called after an endpoint was added or removed (services recompute their backends). */
  onChange: (() => void) | null = null;
  /** Serialises add/remove so concurrent API calls can't interleave plumbing. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly node: NodeConfig,
    private readonly dp: DatapathClient,
    /** The pods' MTU (podMtu(cfg)). */
    private readonly mtu: number,
    private readonly identities: IdentityAllocator,
  ) {
    this.ipam4 = new Ipam(parseCidr(node.ipv4PodCIDR)!, [routerIPv4(node)]);
    const r6 = routerIPv6(node);
    this.ipam6 = node.ipv6PodCIDR ? new Ipam(parseCidr(node.ipv6PodCIDR)!, r6 ? [r6] : []) : undefined;
  }

  /** IPAM usage for status. */
  ipamUsage(): { ipv4: string; ipv6?: string } {
    const u4 = `${this.ipam4.used}/${this.ipam4.capacity} allocated from ${this.node.ipv4PodCIDR}`;
    return this.ipam6 ? { ipv4: u4, ipv6: `${this.ipam6.used}/${this.ipam6.capacity} allocated from ${this.node.ipv6PodCIDR}` } : { ipv4: u4 };
  }

  list(): Endpoint[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  get(idOrName: string | number): Endpoint | undefined {
    const n = typeof idOrName === 'number' ? idOrName : /^\d+$/.test(idOrName) ? Number(idOrName) : NaN;
    if (!Number.isNaN(n)) return this.byId.get(n);
    return this.list().find((e) => e.name === idOrName);
  }

  /** CNI ADD. */
  add(spec: EndpointSpec): Promise<Endpoint> {
    return this.serial(() => this._add(spec));
  }

  /** CNI DEL. */
  remove(idOrName: string | number): Promise<Endpoint> {
    return this.serial(async () => {
      const ep = this.get(idOrName);
      if (!ep) throw new EndpointError(`endpoint ${idOrName} not found`, 404);
      await this._remove(ep);
      return ep;
    });
  }

  /** Remove every endpoint (agent shutdown); keeps going past failures and reports them. */
  removeAll(): Promise<string[]> {
    return this.serial(async () => {
      const errors: string[] = [];
      for (const ep of this.list()) {
        try {
          await this._remove(ep);
        } catch (e) {
          errors.push(`${ep.name}: ${(e as Error).message}`);
        }
      }
      return errors;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async _add(spec: EndpointSpec): Promise<Endpoint> {
    checkEndpointAddrs(spec, this.node, (field, msg) => {
      throw new EndpointError(`${field}: ${msg}`);
    });
    for (const e of this.byId.values()) {
      if (e.name === spec.name) throw new EndpointError(`name: endpoint "${spec.name}" already exists (id ${e.id})`, 409);
      if (e.netns === spec.netns) throw new EndpointError(`netns: "${spec.netns}" already holds endpoint ${e.name}`, 409);
    }
    const id = this.allocateId();
    const owner = `${spec.name}`;
    let ipv4: string | undefined;
    let ipv6: string | undefined;
    let createdNetns = false;
    let plumbed = false;
    try {
      if (spec.ipv4) this.ipam4.reserve(spec.ipv4, owner);
      ipv4 = spec.ipv4 ?? this.ipam4.allocate(owner);
      if (this.ipam6) {
        if (spec.ipv6) this.ipam6.reserve(spec.ipv6, owner);
        ipv6 = spec.ipv6 ?? this.ipam6.allocate(owner);
      }
    } catch (e) {
      if (ipv4) this.ipam4.release(ipv4);
      throw new EndpointError(`${spec.ipv4 && !ipv4 ? 'ipv4' : 'ipv6'}: ${(e as Error).message}`, 409);
    }
    const ep: Endpoint = {
      id,
      name: spec.name,
      netns: spec.netns,
      labels: spec.labels,
      ...(ipv4 ? { ipv4 } : {}),
      ...(ipv6 ? { ipv6 } : {}),
      mac: macFrom(0x70, id),
      hostMac: macFrom(0x68, id),
      identity: this.identityFor(spec.labels),
      ifName: '',
      ifindex: 0,
      state: 'waiting-for-identity',
      createdNetns: false,
    };
    try {
      if (!(await netnsList()).includes(spec.netns)) {
        await netnsAdd(spec.netns);
        createdNetns = true;
        ep.createdNetns = true;
      } else if (await linkExists('eth0', spec.netns)) {
        throw new EndpointError(`netns: "${spec.netns}" already has an eth0`, 409);
      }
      // Like Cilium's CNI: no duplicate address detection and no router
      // discovery on the pod's eth0 (addresses are unique by IPAM, routes static).
      if (ipv6) await netnsSysctl(spec.netns, { 'net.ipv6.conf.default.accept_dad': '0', 'net.ipv6.conf.default.accept_ra': '0' });
      const r = await this.dp.endpointAdd({
        id,
        name: ep.name,
        netns: ep.netns,
        // The kernel picks the number, so agents sharing a prefix never collide.
        tapName: `${this.node.tapPrefix}%d`,
        mac: ep.mac,
        hostMac: ep.hostMac,
        identity: ep.identity,
        ...(ipv4 ? { ipv4 } : {}),
        ...(ipv6 ? { ipv6 } : {}),
      });
      plumbed = true;
      ep.ifindex = r.ifindex;
      ep.ifName = r.name;
      await ipBatch([`link set ${ep.ifName} netns ${spec.netns} name eth0`]);
      await ipBatch(this.podCommands(ep), spec.netns);
      ep.state = 'ready';
      this.byId.set(id, ep);
      this.onChange?.();
      return ep;
    } catch (e) {
      if (plumbed) await this.dp.endpointRemove(id).catch(() => undefined);
      if (createdNetns) await netnsDel(spec.netns).catch(() => undefined);
      if (ipv4) this.ipam4.release(ipv4);
      if (ipv6) this.ipam6?.release(ipv6);
      throw e;
    }
  }

  /** What `ip -n POD -batch` runs to set the pod's side up. */
  private podCommands(ep: Endpoint): string[] {
    const r4 = routerIPv4(this.node);
    const r6 = routerIPv6(this.node);
    const cmds = [
      'link set lo up',
      `link set eth0 address ${ep.mac} mtu ${this.mtu} up`,
    ];
    if (ep.ipv4) {
      cmds.push(`addr add ${ep.ipv4}/32 dev eth0`, `route add ${r4} dev eth0 scope link`, `route add default via ${r4} dev eth0 mtu ${this.mtu}`);
    }
    if (ep.ipv6 && r6) {
      cmds.push(`addr add ${ep.ipv6}/128 dev eth0 nodad`, `route add ${r6} dev eth0`, `route add default via ${r6} dev eth0 mtu ${this.mtu}`);
    }
    return cmds;
  }

  private async _remove(ep: Endpoint): Promise<void> {
    ep.state = 'disconnecting';
    await this.dp.endpointRemove(ep.id);
    if (ep.ipv4) this.ipam4.release(ep.ipv4);
    if (ep.ipv6) this.ipam6?.release(ep.ipv6);
    this.byId.delete(ep.id);
    this.onChange?.();
    if (ep.createdNetns) await netnsDel(ep.netns);
  }

  private allocateId(): number {
    for (let id = 1; id <= MAX_ENDPOINT_ID; id++) if (!this.byId.has(id)) return id;
    throw new EndpointError('no free endpoint ID', 507);
  }

  /** Endpoints with the same labels share an identity (Cilium's rule; the full label model comes with policy). */
  private identityFor(labels: Record<string, string>): number {
    return this.identities.for(labels);
  }

}

/**
 * Datapath: one node's maps, programs and engine, composed. Frames in,
 * frames out; no threads, no native code, no clock — the worker and the
 * tests drive it the same way.
 *
 * API:
 *   new Datapath(cfg, { slab?, rxOff?, rxLen?, metrics? })
 *   dp.addEndpoint(ep, device) -> port id     attach an endpoint's TAP (or a test device)
 *   dp.removeEndpoint(id)
 *   dp.receive(port, n, now)                  frames 0..n-1 of the slab arrived on `port`
 *   dp.batch, dp.engine, dp.metrics, dp.lxc   for tests, status and the API
 *   dp.ct, dp.gc                              conntrack tables and their GC (time in seconds)
 *   dp.lb, dp.services                        service load balancing: maps and their writer
 *
 * Programs are installed into the program array once (bpf_lxc's entry
 * points and tail-call targets); an endpoint is a port whose ingress program
 * is from-container, plus its entries in cilium_lxc.
 */
import { FrameBatch, allocSlab } from '../packet/batch.ts';
import { ProgArray } from '../maps/prog-array.ts';
import type { HashMap } from '../maps/hash.ts';
import { BPF_ANY } from '../maps/map.ts';
import { Engine } from '../engine/engine.ts';
import type { Device } from '../engine/device.ts';
import type { Program } from '../engine/program.ts';
import { CALL_SIZE } from './lib/call-ids.ts';
import { Metrics } from './lib/metrics.ts';
import { EP_KEY, EP_VAL, createEndpointsMap, epKey4, epKey6 } from './lib/endpoints-map.ts';
import { installLxcPrograms, type LxcPrograms } from './programs/lxc.ts';
import { Conntrack, type CtOptions } from './lib/conntrack.ts';
import { CtGc } from './lib/conntrack-gc.ts';
import { createLbMaps } from './lib/lb-map.ts';
import { Lb4 } from './lib/lb.ts';
import { ServiceWriter } from './services.ts';

/** Node-wide settings the programs read (Cilium compiles these into node_config.h). */
export interface DatapathConfig {
  /** Router (gateway) IPv4 every pod uses, u32. */
  routerIPv4: number;
  /** Router IPv6 address, 16 bytes, or null without IPv6. */
  routerIPv6: Uint8Array | null;
  mtu: number;
  /**
   * A service without backends: answer ICMP port unreachable (Cilium's
   * service-no-backend-response=reject, the default) or drop with
   * "Service backend not found" (158).
   */
  noBackendReject?: boolean;
}

/** A local endpoint as the programs see it (Cilium: LXC_ID, LXC_IPV4, SECLABEL…). */
export interface EndpointState {
  id: number;
  name: string;
  /** Engine port of the endpoint's TAP. */
  port: number;
  /** IPv4 u32, 0 when the endpoint has none. */
  ipv4: number;
  /** IPv6 bytes, or null. */
  ipv6: Uint8Array | null;
  /** The pod's eth0 MAC. */
  mac: Uint8Array;
  /** The MAC the pod sees as its router (host-side MAC, like the lxc veth's). */
  hostMac: Uint8Array;
  identity: number;
}

/** One node's datapath. */
export class Datapath {
  readonly metrics: Metrics;
  readonly batch: FrameBatch;
  readonly lxc: HashMap;
  readonly progs = new ProgArray<Program>({ name: 'cilium_calls', maxEntries: CALL_SIZE });
  readonly engine: Engine;
  /** Endpoints by engine port, for the entry programs (per-batch lookup). */
  readonly endpointByPort: (EndpointState | undefined)[] = [];
  /** Endpoints by endpoint ID. */
  readonly endpoints = new Map<number, EndpointState>();
  readonly programs: LxcPrograms;
  /** Connection tracking: the four global tables, lifetimes and counters. */
  readonly ct: Conntrack;
  /** Conntrack garbage collector; the owner calls gc.run(now) when gc.due(now). */
  readonly gc: CtGc;
  /** Service load balancing: LB maps, Maglev tables. */
  readonly lb: Lb4;
  /** Writes services into the LB maps (control path). */
  readonly services: ServiceWriter;

  constructor(
    readonly cfg: DatapathConfig,
    opts: { slab?: ArrayBuffer; rxOff?: Uint32Array; rxLen?: Uint32Array; metrics?: ArrayBufferLike; ct?: CtOptions; gcInterval?: number; now?: number } = {},
  ) {
    this.metrics = new Metrics(opts.metrics);
    this.batch = new FrameBatch(opts.slab ?? allocSlab(), opts.rxOff, opts.rxLen);
    this.ct = new Conntrack(opts.ct);
    this.gc = new CtGc(this.ct, { interval: opts.gcInterval ?? 0, now: opts.now ?? 0 });
    this.lb = new Lb4(createLbMaps(), this.ct);
    this.services = new ServiceWriter(this.lb);
    this.lxc = createEndpointsMap();
    this.engine = new Engine(this.progs, this.metrics);
    this.programs = installLxcPrograms(this);
  }

  /** Attach an endpoint: its device becomes a port running from-container; its IPs go into cilium_lxc. */
  addEndpoint(ep: Omit<EndpointState, 'port'>, device: Device, portName = device.name): number {
    if (this.endpoints.has(ep.id)) throw new Error(`endpoint ${ep.id} already exists`);
    const port = this.engine.addPort({ name: portName, kind: 'lxc', device, ingress: this.programs.fromContainer, endpointId: ep.id });
    const st: EndpointState = { ...ep, port };
    this.endpoints.set(ep.id, st);
    this.endpointByPort[port] = st;
    const key = new Uint8Array(EP_KEY.SIZE);
    if (st.ipv4 !== 0) {
      epKey4(key, st.ipv4);
      this.writeEndpointValue(key, st);
    }
    if (st.ipv6 !== null) {
      key.fill(0);
      epKey6(key, st.ipv6, 0);
      this.writeEndpointValue(key, st);
    }
    return port;
  }

  /** Detach an endpoint and remove its map entries. */
  removeEndpoint(id: number): void {
    const st = this.endpoints.get(id);
    if (!st) return;
    const key = new Uint8Array(EP_KEY.SIZE);
    if (st.ipv4 !== 0) {
      epKey4(key, st.ipv4);
      this.lxc.delete(key, 0);
    }
    if (st.ipv6 !== null) {
      key.fill(0);
      epKey6(key, st.ipv6, 0);
      this.lxc.delete(key, 0);
    }
    this.engine.removePort(st.port);
    this.endpointByPort[st.port] = undefined;
    this.endpoints.delete(id);
  }

  /** Process frames 0..n-1 of the slab (already described in batch.off/len), received on `port` at `now` ms. */
  receive(port: number, n: number, now: number): void {
    this.batch.reset(n, port, now);
    this.engine.process(this.batch);
  }

  private writeEndpointValue(key: Uint8Array, st: EndpointState): void {
    const slot = this.lxc.update(key, 0, undefined, 0, BPF_ANY);
    if (slot < 0) throw new Error(`cilium_lxc: update failed (${slot})`);
    const v = this.lxc.values;
    const dv = this.lxc.view;
    const o = slot * EP_VAL.SIZE;
    v.fill(0, o, o + EP_VAL.SIZE);
    dv.setUint32(o + EP_VAL.IFINDEX, st.port, true);
    dv.setUint16(o + EP_VAL.LXC_ID, st.id, true);
    v.set(st.mac, o + EP_VAL.MAC);
    v.set(st.hostMac, o + EP_VAL.NODE_MAC);
    dv.setUint32(o + EP_VAL.SEC_ID, st.identity, true);
  }
}

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
import { Ipcache } from './lib/ipcache.ts';
import { TunnelMap } from './lib/tunnel-map.ts';
import { NeighTable } from './lib/neigh.ts';
import { Tunnel, type TunnelProtocol } from './lib/encap.ts';
import { NodeEgress, type UplinkState } from './lib/egress.ts';
import { Snat4, type Snat4Options } from './lib/nat.ts';
import { TunnelUdpGro } from './lib/udp-gro.ts';
import { PolicyMap, type MapStateResult, type PolicyMapEntry } from './lib/policy-map.ts';
import { DROP_HOOK, EventRing, FlowInfo, OBS_POINT, TRACE_REASON, flowFromFrame } from './lib/events.ts';
import { CB, CT_STATE_REPORT, CT_STATE_SET, META_SLOTS } from '../packet/batch.ts';
import { ID } from './lib/identity.ts';
import type { Port } from '../engine/engine.ts';
import { installHostPrograms, type HostPrograms } from './programs/host.ts';
import { installXdpProgram } from './programs/xdp.ts';
import { NodePort } from './lib/nodeport.ts';
import { Prefilter } from './lib/prefilter.ts';
import type { Ipv4View } from '../wire/ipv4.ts';
import { VNET_HDR_LEN } from '../packet/layout.ts';
import { DIR } from '../engine/verdict.ts';

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
  /** Pod traffic between nodes: encapsulated (default) or routed by pod CIDR. */
  routingMode?: 'tunnel' | 'native';
  /** Masquerade pod traffic leaving the cluster to the node's address. */
  masquerade?: boolean;
  /** Destinations never masqueraded: the cluster's pod CIDRs (u32 network, prefix length). */
  snatExclusion?: { net: number; len: number }[];
  /** Tunnel protocol and UDP port (vxlan 8472 by default). */
  tunnelProtocol?: TunnelProtocol;
  tunnelPort?: number;
  /** NodePort forwarding to remote backends (nodeport.ts LB_MODE; default SNAT). */
  lbMode?: number;
  /** How DSR carries the service: IPv4 option (default) or Geneve option (Geneve tunnels only). */
  dsrDispatch?: 'opt' | 'geneve';
  /** NodePort acceleration: load-balance in the XDP stage (Cilium loadBalancer.acceleration=native). */
  xdpAcceleration?: boolean;
}

/** What the masquerade step needs of the SNAT engine (lib/nat.ts). */
export interface Masquerade {
  /** Translate the source of a frame leaving the node; 0 or a DROP code. */
  egress(b: FrameBatch, i: number, ip4: Ipv4View, natAddr: number, now: number, needsCt: boolean): number;
  /** Reverse-translate a frame arriving for natAddr; 1 translated, 0 not ours, or a DROP code. */
  ingress(b: FrameBatch, i: number, ip4: Ipv4View, natAddr: number, now: number): number;
}

/** The node side of tapestry_host. */
export interface HostState {
  port: number;
  /** MAC Tapestry uses toward the node's stack. */
  mac: Uint8Array;
  /** MAC of the node's tapestry_host interface. */
  kernelMac: Uint8Array;
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
  /** Policy enforcement per direction, and the endpoint's policy map (cilium_policy_<ID>). */
  enforceIngress?: boolean;
  enforceEgress?: boolean;
  policy?: PolicyMap;
}

/**
 * The node's stack behind tapestry_host: a frame handed to the stack is
 * addressed to the interface's MAC (and comes from Tapestry's), as if it
 * had arrived on that interface — the kernel accepts nothing else.
 */
class StackDevice implements Device {
  readonly name: string;
  constructor(
    private readonly dev: Device,
    private readonly buf: Uint8Array,
    private readonly mac: Uint8Array,
    private readonly kernelMac: Uint8Array,
  ) {
    this.name = dev.name;
  }
  send(off: Uint32Array, len: Uint32Array, count: number): number {
    const buf = this.buf;
    for (let k = 0; k < count; k++) {
      const o = off[k]!;
      buf.set(this.kernelMac, o);
      buf.set(this.mac, o + 6);
    }
    return this.dev.send(off, len, count);
  }
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
  /** Datapath events (drops, policy verdicts, traces when asked; the monitor reads them). */
  readonly events = new EventRing();
  private readonly flow = new FlowInfo();
  /** Conntrack garbage collector; the owner calls gc.run(now) when gc.due(now). */
  readonly gc: CtGc;
  /** Service load balancing: LB maps, Maglev tables. */
  readonly lb: Lb4;
  /** Writes services into the LB maps (control path). */
  readonly services: ServiceWriter;
  /** Every address the node knows: identity and tunnel endpoint. */
  readonly ipcache = new Ipcache();
  /** Pod CIDR -> node, the encapsulation fallback. */
  readonly tunnelMap = new TunnelMap();
  /** The underlay's neighbours (Tapestry does ARP on the uplink). */
  readonly neigh = new NeighTable();
  /** The uplink, once attached. */
  uplink: UplinkState | null = null;
  /** Encapsulation for this node (with an uplink in tunnel mode). */
  tunnel: Tunnel | null = null;
  /** tapestry_host, once attached. */
  host: HostState | null = null;
  /**
   * SNAT engine of the node (with an uplink): masquerade when enabled (then
   * also `masq`), NodePort SNAT and the DSR reply entries.
   */
  snat: Snat4 | null = null;
  /** NodePort / LoadBalancer from outside (SNAT, DSR). */
  readonly nodePort: NodePort;
  /** The XDP stage's deny list. */
  readonly prefilter = new Prefilter();
  /** Addresses the uplink answers ARP for besides the node's own (LoadBalancer IPs this node announces). */
  readonly announced = new Set<number>();
  masq: Masquerade | null = null;
  /** Routing out of the node. */
  readonly egress: NodeEgress;
  private readonly natOpts: Snat4Options;
  /** UDP GSO tunnel datagrams folded on receive. */
  readonly udpGro = new TunnelUdpGro();
  readonly hostPrograms: HostPrograms;

  constructor(
    readonly cfg: DatapathConfig,
    opts: { slab?: ArrayBuffer; rxOff?: Uint32Array; rxLen?: Uint32Array; metrics?: ArrayBufferLike; ct?: CtOptions; gcInterval?: number; now?: number; nat?: Snat4Options } = {},
  ) {
    this.natOpts = opts.nat ?? {};
    this.metrics = new Metrics(opts.metrics);
    this.batch = new FrameBatch(opts.slab ?? allocSlab(), opts.rxOff, opts.rxLen);
    this.ct = new Conntrack(opts.ct);
    // NAT entries go with the conntrack entries they belong to.
    this.gc = new CtGc(this.ct, { interval: opts.gcInterval ?? 0, now: opts.now ?? 0, onDelete: (f, k, o, s, m) => this.snat?.onCtDelete(f, k, o, s, m) });
    this.lb = new Lb4(createLbMaps(), this.ct);
    this.services = new ServiceWriter(this.lb);
    this.lxc = createEndpointsMap();
    this.engine = new Engine(this.progs, this.metrics);
    this.egress = new NodeEgress(this);
    this.engine.onDrop = (b, i, code) => this.dropEvent(b, i, code);
    this.nodePort = new NodePort(this);
    this.programs = installLxcPrograms(this);
    this.hostPrograms = installHostPrograms(this);
  }

  /**
   * Attach the uplink (AF_PACKET on the node's underlay interface):
   * from-netdev runs on what it receives; the node's address is Tapestry's.
   */
  attachUplink(device: Device, u: Omit<UplinkState, 'port'>, portName = device.name): number {
    const port = this.engine.addPort({ name: portName, kind: 'netdev', device, ingress: this.hostPrograms.fromNetdev, xdp: installXdpProgram(this) });
    this.uplink = { ...u, port };
    this.snat = new Snat4(this.natOpts);
    if (this.cfg.masquerade) this.masq = this.snat;
    if ((this.cfg.routingMode ?? 'tunnel') === 'tunnel') {
      const protocol = this.cfg.tunnelProtocol ?? 'vxlan';
      this.tunnel = new Tunnel({ protocol, port: this.cfg.tunnelPort ?? (protocol === 'vxlan' ? 8472 : 6081), nodeIP: u.ip, mac: u.mac });
    }
    return port;
  }

  /**
   * Attach tapestry_host: from-host runs on what the node's stack sends;
   * frames the programs pass to the stack (TC_ACT_OK) are written to it,
   * addressed to its MAC.
   */
  attachHost(device: Device, mac: Uint8Array, kernelMac: Uint8Array, portName = device.name): number {
    const port = this.engine.addPort({ name: portName, kind: 'host', device: new StackDevice(device, this.batch.buf, mac, kernelMac), ingress: this.hostPrograms.fromHost });
    this.host = { port, mac, kernelMac };
    this.engine.stackPort = port;
    return port;
  }

  /**
   * Trace events on or off: on only while a monitor reads them. The
   * from-* points are observed as a batch arrives (engine.onReceive) and
   * from-overlay after decapsulation (traceOverlay); the to-* points as a
   * frame is queued to its port (engine.onForward).
   */
  setTrace(on: boolean): void {
    this.events.traceEnabled = on;
    this.engine.onForward = on ? (b, i, to) => this.traceEvent(b, i, to) : null;
    this.engine.onReceive = on ? (b, port) => this.traceReceive(b, port) : null;
  }

  /**
   * Trace reason of frame i, or -1 when monitor aggregation holds its
   * trace back. Cilium (bpf/lib/trace.h, monitor-aggregation medium):
   * a traced packet of a tracked connection is reported only when
   * conntrack says so — new TCP flags in this direction (SYN, FIN, RST and,
   * with CT_REPORT_FLAGS 'all' as here, any other) or CT_REPORT_INTERVAL
   * (5 s) since the last report; untracked frames are always reported.
   * Deviation: Cilium's medium also hides every from-* point
   * (TRACE_AGGREGATE_RX); Tapestry reports them under the same conntrack
   * rule as the to-* points, so a connection's first packet shows where it
   * entered as well as where it left.
   */
  private traceReason(b: FrameBatch, i: number): number {
    const s = b.meta[i * META_SLOTS + CB.CT_STATE]!;
    if ((s & CT_STATE_SET) === 0) return TRACE_REASON.UNKNOWN;
    if ((s & CT_STATE_REPORT) === 0 && this.events.aggregate) return -1;
    return s & 0xff;
  }

  private dropEvent(b: FrameBatch, i: number, code: number): void {
    if (!this.events.enabled) return;
    const src = this.endpointByPort[b.port];
    const m = i * META_SLOTS;
    const dstEp = b.meta[m + CB.DST_ENDPOINT_ID]!;
    const dst = dstEp !== 0 ? this.endpoints.get(dstEp) : undefined;
    if (this.events.traceEnabled) this.commitFrom(i, this.traceReason(b, i));
    flowFromFrame(this.flow, b.buf, b.off[i]!, b.len[i]!);
    this.events.drop(src?.id ?? 0, -code, b.meta[m + CB.SRC_LABEL]!, dst?.identity ?? 0, dstEp, b.port, b.len[i]!, this.flow, this.dropHook(b, dstEp));
  }

  /** Which program dropped a frame of this batch: the XDP stage, a destination endpoint's stage, or the port's entry program. */
  private dropHook(b: FrameBatch, dstEp: number): number {
    if (this.engine.inXdp) return DROP_HOOK.XDP;
    if (dstEp !== 0) return DROP_HOOK.TO_CONTAINER;
    const k = this.engine.ports[b.port]?.spec.kind;
    return k === 'lxc' ? DROP_HOOK.FROM_CONTAINER : k === 'netdev' ? DROP_HOOK.FROM_NETDEV : k === 'host' ? DROP_HOOK.FROM_HOST : DROP_HOOK.UNKNOWN;
  }

  private traceEvent(b: FrameBatch, i: number, to: Port): void {
    const reason = this.traceReason(b, i);
    this.commitFrom(i, reason);
    if (reason < 0) return;
    const k = to.spec.kind;
    const m = i * META_SLOTS;
    const dstEp = to.spec.endpointId ?? 0;
    const point = k === 'lxc' ? OBS_POINT.TO_LXC : k === 'host' ? OBS_POINT.TO_STACK : k === 'netdev' ? (this.tunnel !== null && this.isEncapsulated(b, i) ? OBS_POINT.TO_OVERLAY : OBS_POINT.TO_NETWORK) : OBS_POINT.TO_NETWORK;
    flowFromFrame(this.flow, b.buf, b.off[i]!, b.len[i]!);
    const dst = dstEp !== 0 ? this.endpoints.get(dstEp) : undefined;
    this.events.trace(this.endpointByPort[b.port]?.id ?? 0, point, reason, b.meta[m + CB.SRC_LABEL]!, dst?.identity ?? 0, dstEp, to.id, b.len[i]!, this.flow);
  }

  /**
   * A batch arrives while tracing: stage each frame's from-* trace
   * (from-endpoint on a pod's TAP, from-network on the uplink, from-host on
   * tapestry_host), kept or dropped once the frame's conntrack state is
   * known (commitFrom). Stage slot 2i is the arrival point, 2i+1 from-overlay.
   */
  private traceReceive(b: FrameBatch, port: Port): void {
    const k = port.spec.kind;
    const ep = this.endpointByPort[b.port];
    const point = k === 'lxc' ? OBS_POINT.FROM_LXC : k === 'netdev' ? OBS_POINT.FROM_NETWORK : k === 'host' ? OBS_POINT.FROM_HOST : -1;
    const srcId = k === 'lxc' ? (ep?.identity ?? 0) : k === 'host' ? ID.HOST : 0;
    const ev = this.events;
    for (let i = 0; i < b.n; i++) {
      ev.unstage(2 * i + 1);
      if (point < 0) {
        ev.unstage(2 * i);
        continue;
      }
      flowFromFrame(this.flow, b.buf, b.off[i]!, b.len[i]!);
      ev.stage(2 * i, ep?.id ?? 0, point, srcId, port.id, b.len[i]!, this.flow);
    }
  }

  /** from-overlay for frame i, just decapsulated (bpf_overlay's entry); the caller checks events.traceEnabled. */
  traceOverlay(b: FrameBatch, i: number): void {
    flowFromFrame(this.flow, b.buf, b.off[i]!, b.len[i]!);
    this.events.stage(2 * i + 1, 0, OBS_POINT.FROM_OVERLAY, b.meta[i * META_SLOTS + CB.SRC_LABEL]!, b.port, b.len[i]!, this.flow);
  }

  /** Keep (reason >= 0) or forget frame i's staged from-* traces. */
  private commitFrom(i: number, reason: number): void {
    this.events.commit(2 * i, reason);
    this.events.commit(2 * i + 1, reason);
  }

  /** Is frame i a tunnel packet of ours (UDP to the tunnel port)? */
  private isEncapsulated(b: FrameBatch, i: number): boolean {
    const buf = b.buf, o = b.off[i]!;
    if (b.len[i]! < 42 || buf[o + 12] !== 0x08 || buf[o + 13] !== 0x00 || buf[o + 23] !== 17) return false;
    const udp = o + 14 + (buf[o + 14]! & 0xf) * 4;
    return ((buf[udp + 2]! << 8) | buf[udp + 3]!) === this.tunnel!.cfg.port;
  }

  /** Is `ip` (u32) a destination that is never masqueraded? */
  snatExcluded(ip: number): boolean {
    const ex = this.cfg.snatExclusion;
    if (ex === undefined) return false;
    for (let k = 0; k < ex.length; k++) {
      const e = ex[k]!;
      if (e.len === 0 || ((ip ^ e.net) >>> (32 - e.len)) === 0) return true;
    }
    return false;
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

  /**
   * Install an endpoint's policy: enforcement per direction and the whole
   * map state (deny-merged; see policy-map.ts). Applies to the next packet.
   */
  setPolicy(id: number, p: { ingress: boolean; egress: boolean; entries: readonly PolicyMapEntry[] }): MapStateResult {
    const st = this.endpoints.get(id);
    if (!st) throw new Error(`endpoint ${id} not found`);
    st.policy ??= new PolicyMap(id);
    const r = st.policy.applyMapState(p.entries);
    st.enforceIngress = p.ingress;
    st.enforceEgress = p.egress;
    return r;
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
    // Tunnel packets that arrive as one UDP GSO datagram are folded before the programs run.
    if (this.tunnel !== null && port === this.uplink!.port) n = this.udpGro.run(this.batch, n, this.tunnel);
    this.batch.reset(n, port, now);
    this.events.now = now;
    this.engine.process(this.batch);
    if (this.neigh.hasReady) this.sendHeld(now);
  }

  /**
   * Frames that waited for a neighbour now resolved (already routed or
   * encapsulated): back into the slab, addressed, and sent out of the
   * uplink in one call.
   */
  private sendHeld(now: number): void {
    const up = this.uplink;
    if (up === null) return;
    const b = this.batch;
    for (const { ip, frames } of this.neigh.takeReady()) {
      b.load(frames.map((f) => f.subarray(VNET_HDR_LEN)), up.port, now, frames.map((f) => f.subarray(0, VNET_HDR_LEN)));
      const n = this.neigh.lookup(ip);
      if (n < 0) continue;
      const macs = this.neigh.macs;
      for (let j = 0; j < frames.length; j++) {
        const o = b.off[j]!;
        for (let x = 0; x < 6; x++) {
          b.buf[o + x] = macs[n + x]!;
          b.buf[o + 6 + x] = up.mac[x]!;
        }
        this.metrics.forward(DIR.EGRESS, b.len[j]!);
      }
      this.engine.ports[up.port]?.spec.device.send(b.off, b.len, frames.length);
    }
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

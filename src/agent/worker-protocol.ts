/**
 * Messages between the agent's control plane (main thread) and the datapath
 * worker. The worker owns the devices and maps; the main thread asks.
 * Counters live in a SharedArrayBuffer both threads see, so reading them
 * never waits on the datapath.
 *
 * API: Request, Response, DatapathInit, EndpointRecord, PortStatsRow
 */

/** Node-level settings the datapath needs. */
import type { PolicyMapEntry } from '../datapath/lib/policy-map.ts';
import type { CaptureOptions } from '../datapath/capture.ts';

export interface DatapathInit {
  nodeName: string;
  routerIPv4: string;
  routerIPv6?: string;
  mtu: number;
  /** No backend: ICMP port unreachable (true) or drop 158. */
  noBackendReject: boolean;
  /** Conntrack lifetimes (s), table sizes and GC interval (0: adaptive). */
  conntrack: {
    timeouts: { tcp: number; tcpSyn: number; tcpClose: number; any: number; svcTcp: number; svcAny: number };
    sizes: { tcp4: number; any4: number; tcp6: number; any6: number };
    gcInterval: number;
    evict: boolean;
  };
  /** Counters (datapath/lib/metrics.ts), shared with the main thread. */
  metrics: SharedArrayBuffer;
  /** One Int32: the event ring's record count, mirrored for readers (EventRing.shareHead). */
  eventHead: SharedArrayBuffer;
  routingMode: 'tunnel' | 'native';
  tunnelProtocol: 'vxlan' | 'geneve';
  tunnelPort: number;
  masquerade: boolean;
  /** Destinations never masqueraded (CIDRs). */
  snatExclusion: string[];
  /** Datapath events on (monitor.enabled); false: no event code runs on the packet path. */
  events: boolean;
  /** NodePort from outside: loadBalancer.mode, dsrDispatch, acceleration. */
  lbMode: 'snat' | 'dsr' | 'hybrid';
  dsrDispatch: 'opt' | 'geneve';
  xdpAcceleration: boolean;
  /** Monitor aggregation (monitor.aggregation): medium reports traces as conntrack says; none traces every frame. */
  aggregation: 'none' | 'medium';
}

/** The uplink the worker opens with AF_PACKET. */
export interface UplinkRecord {
  device: string;
  /** Node address and its subnet's prefix length. */
  ip: string;
  prefixLen: number;
  gateway?: string;
  mac: string;
  mtu: number;
}

/** tapestry_host: the TAP the worker creates in the agent's namespace. */
export interface HostRecord {
  name: string;
  /** Tapestry's MAC toward the stack, and the interface's own. */
  mac: string;
  kernelMac: string;
}

/** An ipcache entry: prefix -> identity (+ the node it lives behind). */
export interface IpcacheRecord {
  cidr: string;
  identity: number;
  tunnelEndpoint?: string;
}

/** An endpoint as the datapath sees it. */
export interface EndpointRecord {
  id: number;
  name: string;
  /** Pod namespace; the port shows as "eth0@<netns>". */
  netns: string;
  /** Name (or kernel template such as "tp%d") for the TAP while it is still in the agent's namespace. */
  tapName: string;
  mac: string;
  hostMac: string;
  ipv4?: string;
  ipv6?: string;
  identity: number;
}

/** Per-device counters for status and metrics. */
export interface PortStatsRow {
  port: number;
  name: string;
  kind: string;
  endpointId: number;
  rxFrames: number;
  rxBatches: number;
  txFrames: number;
  txBatches: number;
  txRefused: number;
  /** Counters the native device keeps (reads, writes, errors), by name. */
  device: Record<string, number>;
}

/** A backend as sent to the datapath. */
export interface DpBackend {
  id: number;
  ip: string;
  port: number;
  weight: number;
  state: 'active' | 'terminating' | 'maintenance';
  name: string;
}

/** One frontend (address, port) with its backends, as the datapath writes it. */
export interface DpService {
  revNat: number;
  vip: string;
  port: number;
  flags: number;
  flags2: number;
  /** Session affinity timeout (s), 0 without affinity. */
  affinityTimeout: number;
  algorithm: 'random' | 'maglev';
  backends: DpBackend[];
  maglevM: number;
  murmurSeed: number;
  seed4: number;
  /** Maglev services: the table, built by the agent's main thread (the worker only swaps it in). */
  maglevTable?: Uint32Array;
  /** Forwarding mode from outside (nodeport.ts FWD_MODE; 0: the node's). */
  fwdMode?: number;
  /** loadBalancerSourceRanges (CIDRs), with SVC_F.SOURCE_RANGE. */
  sourceRanges?: string[];
}

/** Main → worker. */
export type Request =
  | { id: number; op: 'init'; init: DatapathInit }
  | { id: number; op: 'endpointAdd'; ep: EndpointRecord }
  | { id: number; op: 'endpointRemove'; epId: number }
  | { id: number; op: 'portStats' }
  | { id: number; op: 'ctList' }
  | { id: number; op: 'ctFlush' }
  | { id: number; op: 'ctStatus' }
  | { id: number; op: 'serviceUpsert'; svc: DpService }
  | { id: number; op: 'serviceDelete'; revNat: number }
  | { id: number; op: 'lbList' }
  | { id: number; op: 'prefilterList' }
  | { id: number; op: 'prefilterUpdate'; cidrs: string[]; revision?: number }
  | { id: number; op: 'prefilterDelete'; cidrs: string[]; revision?: number }
  | { id: number; op: 'announceSet'; addrs: string[] }
  | { id: number; op: 'nodePortStatus' }
  | { id: number; op: 'maglevList'; revNat: number }
  | { id: number; op: 'uplinkAttach'; uplink: UplinkRecord }
  | { id: number; op: 'hostAttach'; host: HostRecord }
  | { id: number; op: 'ipcacheUpsert'; entries: IpcacheRecord[] }
  | { id: number; op: 'ipcacheDelete'; cidrs: string[] }
  | { id: number; op: 'tunnelUpsert'; entries: { cidr: string; endpoint: string }[] }
  | { id: number; op: 'ipcacheList' }
  | { id: number; op: 'tunnelList' }
  | { id: number; op: 'natList' }
  | { id: number; op: 'neighList' }
  | { id: number; op: 'policySet'; epId: number; ingress: boolean; egress: boolean; entries: PolicyMapEntry[] }
  | { id: number; op: 'policyMapDump'; epId: number }
  | { id: number; op: 'mapStats' }
  | { id: number; op: 'eventsRead'; since: number; max: number; trace?: boolean; debug?: boolean }
  | { id: number; op: 'captureStart'; capture: CaptureOptions }
  | { id: number; op: 'captureRead'; capId: number }
  | { id: number; op: 'captureStop'; capId: number }
  | { id: number; op: 'shutdown' };

/** Worker → main. */
export type Response =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: string; code?: string };

/**
 * Flows: the datapath's events as Hubble flows (pkg/hubble/parser/threefour
 * in spirit), kept on the agent's main thread in a ring of 4095 (Hubble's
 * default buffer) for `GET /v1/flows` and `tapestry observe`.
 *
 * API:
 *   eventToFlow(ev, ctx, time?) -> Flow       pure: one datapath event as a Hubble flow (proto field names)
 *   parseFlowFilter(query) -> FlowFilter      from URL parameters (pod, from_pod, to_pod, verdict, protocol, port, ip)
 *   matchFlow(flow, filter) -> boolean
 *   formatFlowCompact(flow) -> string         Hubble's compact one-line form
 *   dropReasonName(code) -> "POLICY_DENIED" | …
 *   new FlowStore(dp, ctx)  .start() .stop() .query(URLSearchParams) -> { flows: FlowEnvelope[], next }
 *   flowRoutes(dp, nodeName, localEps, remoteEps, registry)  a started store's `GET /v1/flows` for the API server
 *
 * Polling. Drops and policy verdicts are always in the worker's ring, so the
 * store polls every 200 ms without trace and keeps them even when nobody
 * watches, as Hubble does; the poll reads the ring's record count from
 * shared memory first and asks the worker only when it moved. Trace
 * events cost the datapath a record per forwarded frame, so the poll asks
 * for them only while someone has queried flows in the last 60 s: the first
 * `observe` turns FORWARDED flows on, and they stop a minute after the last.
 *
 * `time` is the event's own (the datapath batch that produced it, on the
 * wall clock). `trace_reason` and `is_reply` follow Hubble's parser
 * (pkg/hubble/parser/threefour): the datapath's reasons below "unknown"
 * shift up by one to make room for TRACE_REASON_UNKNOWN = 0 (omitted, as
 * protojson omits zero values); is_reply is set for traces with a known
 * reason (true only for reply) and false for forwarded policy verdicts
 * (first packets), absent on drops. ICMP type and code are not recorded
 * (`ICMPv4: {}`). Debug events are not flows (Hubble keeps them apart).
 */
import { randomUUID } from 'node:crypto';
import { DROP_FILE_NAMES, DROP_HOOKS, OBS_POINT, TRACE_REASON, type DatapathEvent, type DebugEvent, type TraceEvent } from '../datapath/lib/events.ts';
import { reservedIdentityName } from '../datapath/lib/identity.ts';
import { dropReasonString } from '../datapath/lib/drop-reasons.ts';
import { formatLabels, type IdentityRegistry } from './identity.ts';
import type { Handler } from './api-server.ts';

/** Hubble's default ring size (hubble-event-buffer-capacity). */
export const FLOW_RING_SIZE = 4095;
const POLL_MS = 200;
const TRACE_LEASE_MS = 60_000;
const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

/** An endpoint as flows name it. */
export interface EndpointRef {
  id?: number;
  name: string;
  labels: Record<string, string>;
  identity?: number;
}

/** What conversion needs to know about the node. */
export interface FlowContext {
  nodeName: string;
  /** A local endpoint by ID. */
  endpoint(id: number): EndpointRef | undefined;
  /** Any known endpoint (local or another node's) by address. */
  endpointByIp(ip: string): EndpointRef | undefined;
  /** An identity's labels as "source:key=value", sorted. */
  identityLabels(identity: number): string[];
}

/** Hubble's flow.Endpoint (zero values omitted). */
export interface FlowEndpoint {
  ID?: number;
  identity?: number;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
}

export type TcpFlagName = 'FIN' | 'SYN' | 'RST' | 'PSH' | 'ACK' | 'URG' | 'ECE' | 'CWR';

/** Hubble's flow.Flow, the L3/L4 fields Tapestry fills. */
export interface Flow {
  time: string;
  uuid: string;
  verdict: 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED';
  drop_reason?: number;
  IP: { source: string; destination: string; ipVersion: 'IPv4' | 'IPv6' };
  l4?: {
    TCP?: { source_port?: number; destination_port?: number; flags?: Partial<Record<TcpFlagName, true>> };
    UDP?: { source_port?: number; destination_port?: number };
    ICMPv4?: { type?: number; code?: number };
    ICMPv6?: { type?: number; code?: number };
  };
  source?: FlowEndpoint;
  destination?: FlowEndpoint;
  Type: 'L3_L4';
  node_name: string;
  event_type: { type: number; sub_type?: number };
  traffic_direction?: 'INGRESS' | 'EGRESS';
  policy_match_type?: number;
  trace_observation_point?: string;
  trace_reason?: string;
  drop_reason_desc?: string;
  /** Drops: the source file Cilium names (Hubble's flow.file) … */
  file?: { name: string };
  /** … and, Tapestry's own, the program (hook) that dropped it. */
  hook?: string;
  is_reply?: boolean;
  Summary: string;
}

/** `hubble observe -o json` prints one of these per line. */
export interface FlowEnvelope {
  flow: Flow;
  node_name: string;
  time: string;
}

/** Hubble's DropReason enum names (api/v1/flow/flow.proto); the numbers are Cilium's drop codes. */
const DROP_REASON_NAMES: Record<number, string> = {
  130: 'INVALID_SOURCE_MAC', 131: 'INVALID_DESTINATION_MAC', 132: 'INVALID_SOURCE_IP', 133: 'POLICY_DENIED',
  134: 'INVALID_PACKET_DROPPED', 135: 'CT_TRUNCATED_OR_INVALID_HEADER', 136: 'CT_MISSING_TCP_ACK_FLAG',
  137: 'CT_UNKNOWN_L4_PROTOCOL', 138: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET', 139: 'UNSUPPORTED_L3_PROTOCOL',
  140: 'MISSED_TAIL_CALL', 141: 'ERROR_WRITING_TO_PACKET', 142: 'UNKNOWN_L4_PROTOCOL', 143: 'UNKNOWN_ICMPV4_CODE',
  144: 'UNKNOWN_ICMPV4_TYPE', 145: 'UNKNOWN_ICMPV6_CODE', 146: 'UNKNOWN_ICMPV6_TYPE', 147: 'ERROR_RETRIEVING_TUNNEL_KEY',
  148: 'ERROR_RETRIEVING_TUNNEL_OPTIONS', 149: 'INVALID_GENEVE_OPTION', 150: 'UNKNOWN_L3_TARGET_ADDRESS',
  151: 'STALE_OR_UNROUTABLE_IP', 152: 'NO_MATCHING_LOCAL_CONTAINER_FOUND', 153: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM',
  154: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM', 155: 'CT_MAP_INSERTION_FAILED', 156: 'INVALID_IPV6_EXTENSION_HEADER',
  157: 'IP_FRAGMENTATION_NOT_SUPPORTED', 158: 'SERVICE_BACKEND_NOT_FOUND', 160: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT',
  162: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON', 163: 'UNKNOWN_CONNECTION_TRACKING_STATE', 164: 'LOCAL_HOST_IS_UNREACHABLE',
  165: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION', 166: 'UNSUPPORTED_L2_PROTOCOL',
  167: 'NO_MAPPING_FOR_NAT_MASQUERADE', 168: 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE', 169: 'FIB_LOOKUP_FAILED',
  170: 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED', 171: 'INVALID_IDENTITY', 172: 'UNKNOWN_SENDER', 173: 'NAT_NOT_NEEDED',
  174: 'IS_A_CLUSTERIP', 175: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', 176: 'FORBIDDEN_ICMPV6_MESSAGE',
  177: 'DENIED_BY_LB_SRC_RANGE_CHECK', 178: 'SOCKET_LOOKUP_FAILED', 179: 'SOCKET_ASSIGN_FAILED',
  180: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', 181: 'POLICY_DENY', 182: 'VLAN_FILTERED', 183: 'INVALID_VNI',
  184: 'INVALID_TC_BUFFER', 185: 'NO_SID', 186: 'MISSING_SRV6_STATE', 187: 'NAT46', 188: 'NAT64', 189: 'AUTH_REQUIRED',
  190: 'CT_NO_MAP_FOUND', 191: 'SNAT_NO_MAP_FOUND', 192: 'INVALID_CLUSTER_ID', 193: 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP',
  194: 'NO_EGRESS_GATEWAY', 195: 'UNENCRYPTED_TRAFFIC', 196: 'TTL_EXCEEDED', 197: 'NO_NODE_ID',
};

/** Hubble's enum name for a drop code; an unknown code stays a number, as protojson prints it. */
export function dropReasonName(code: number): string {
  return DROP_REASON_NAMES[code] ?? String(code);
}

/** Hubble's TraceObservationPoint names by datapath point (point 0 is TO_ENDPOINT = 101 there). */
const OBS_POINT_ENUM = ['TO_ENDPOINT', 'TO_PROXY', 'TO_HOST', 'TO_STACK', 'TO_OVERLAY', 'FROM_ENDPOINT', 'FROM_PROXY', 'FROM_HOST', 'FROM_STACK', 'FROM_OVERLAY', 'FROM_NETWORK', 'TO_NETWORK'];

/** Hubble's TraceReason names by Hubble number (datapath reason + 1 below unknown; 0 = unknown). */
const TRACE_REASON_ENUM = ['TRACE_REASON_UNKNOWN', 'NEW', 'ESTABLISHED', 'REPLY', 'RELATED', 'REOPENED', 'SRV6_ENCAP', 'SRV6_DECAP', 'ENCRYPT_OVERLAY'];

/** Hubble's TraceReason number for a datapath trace reason (decodeTraceReason). */
export function hubbleTraceReason(reason: number): number {
  if (reason === TRACE_REASON.UNKNOWN) return 0;
  return reason < TRACE_REASON.UNKNOWN ? reason + 1 : reason;
}

/** Events that become flows. */
export type FlowEvent = Exclude<DatapathEvent, DebugEvent>;

/** TCP flag bits by header bit order; Summary lists them in this order. */
const TCP_FLAGS: readonly [TcpFlagName, number][] = [['SYN', 0x02], ['ACK', 0x10], ['FIN', 0x01], ['RST', 0x04], ['PSH', 0x08], ['URG', 0x20], ['ECE', 0x40], ['CWR', 0x80]];

/** A flow endpoint from what is known of one side of the packet. */
function flowEndpoint(ctx: FlowContext, ip: string, identity: number, localId: number): FlowEndpoint | undefined {
  const ep = ctx.endpointByIp(ip) ?? (localId !== 0 ? ctx.endpoint(localId) : undefined);
  const id = identity !== 0 ? identity : (ep?.identity ?? 0);
  const out: FlowEndpoint = {};
  if (ep?.id) out.ID = ep.id;
  if (id !== 0) out.identity = id;
  if (ep) out.namespace = ep.labels[POD_NAMESPACE_LABEL] ?? 'default';
  const labels = id !== 0 ? ctx.identityLabels(id) : [];
  if (labels.length > 0) out.labels = labels;
  if (ep) out.pod_name = ep.name;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** One datapath event as a Hubble flow (facts §9: drop→DROPPED, trace→FORWARDED, policy verdict by its sign). */
export function eventToFlow(ev: FlowEvent, ctx: FlowContext, time: string = new Date(ev.time).toISOString(), uuid: string = randomUUID()): Flow {
  let verdict: Flow['verdict'];
  let srcId: number, dstId: number, srcEp = 0, dstEp = 0;
  let dropCode = 0;
  let direction: Flow['traffic_direction'];
  let subType = 0;
  let point: string | undefined;
  let typeNum: number;
  if (ev.type === 'drop') {
    typeNum = 1;
    verdict = 'DROPPED';
    dropCode = ev.reason;
    subType = ev.reason;
    srcId = ev.srcIdentity;
    dstId = ev.dstIdentity;
    dstEp = ev.dstEndpoint;
    // The event's endpoint is where the frame came from: a drop there is on its way out of that endpoint.
    const srcLocal = ctx.endpointByIp(ev.src);
    srcEp = ev.source;
    direction = ev.source !== 0 && srcLocal?.id === ev.source ? 'EGRESS' : 'INGRESS';
  } else if (ev.type === 'trace') {
    typeNum = 4;
    verdict = 'FORWARDED';
    subType = ev.point;
    srcId = ev.srcIdentity;
    dstId = ev.dstIdentity;
    srcEp = ev.source;
    dstEp = ev.dstEndpoint;
    point = OBS_POINT_ENUM[ev.point];
    direction = traceDirection(ev, ctx);
  } else {
    typeNum = 5;
    verdict = ev.verdict < 0 ? 'DROPPED' : ev.verdict > 0 ? 'REDIRECTED' : 'FORWARDED';
    if (ev.verdict < 0) dropCode = -ev.verdict;
    const local = ctx.endpoint(ev.source)?.identity ?? 0;
    const egress = ev.direction === 'egress';
    srcId = egress ? local : ev.remoteIdentity;
    dstId = egress ? ev.remoteIdentity : local;
    if (egress) srcEp = ev.source;
    else dstEp = ev.source;
    direction = egress ? 'EGRESS' : 'INGRESS';
  }
  const flow: Flow = {
    time,
    uuid,
    verdict,
    ...(dropCode !== 0 ? { drop_reason: dropCode } : {}),
    IP: { source: ev.src, destination: ev.dst, ipVersion: ev.ipv6 ? 'IPv6' : 'IPv4' },
    Type: 'L3_L4',
    node_name: ctx.nodeName,
    event_type: subType !== 0 ? { type: typeNum, sub_type: subType } : { type: typeNum },
    Summary: '',
  };
  const l4 = l4Of(ev);
  if (l4) flow.l4 = l4;
  const source = flowEndpoint(ctx, ev.src, srcId, srcEp);
  const destination = flowEndpoint(ctx, ev.dst, dstId, dstEp);
  if (source) flow.source = source;
  if (destination) flow.destination = destination;
  if (direction) flow.traffic_direction = direction;
  if (ev.type === 'policy-verdict' && ev.matchType !== 0) flow.policy_match_type = ev.matchType;
  if (point) flow.trace_observation_point = point;
  if (ev.type === 'trace') {
    const r = hubbleTraceReason(ev.reason);
    if (r !== 0) {
      flow.trace_reason = TRACE_REASON_ENUM[r] ?? String(r);
      flow.is_reply = ev.reason === TRACE_REASON.REPLY;
    }
  } else if (ev.type === 'policy-verdict' && ev.verdict >= 0) {
    flow.is_reply = false;
  }
  if (dropCode !== 0) flow.drop_reason_desc = dropReasonName(dropCode);
  if (ev.type === 'drop') {
    const h = DROP_HOOKS.find((x) => x.hook === ev.hook);
    if (h && h.file !== 0) flow.file = { name: DROP_FILE_NAMES[h.file]! };
    flow.hook = ev.hook;
  }
  flow.Summary = summaryOf(flow);
  return flow;
}

/**
 * A trace's traffic direction: the direction of the connection as the
 * observing endpoint sees it (Hubble's decodeTrafficDirection). With a
 * known trace reason: egress when the observing endpoint is the packet's
 * source, flipped for replies; so a SYN-ACK delivered to the client is
 * EGRESS (the client's connection). The observing endpoint is the
 * destination at to-endpoint (Cilium emits it from the receiving
 * endpoint's program), the event's source elsewhere. Without a reason:
 * INGRESS at to-endpoint, EGRESS elsewhere.
 */
function traceDirection(ev: TraceEvent, ctx: FlowContext): Flow['traffic_direction'] {
  const observer = ev.point === OBS_POINT.TO_LXC ? ev.dstEndpoint : ev.source;
  if (ev.reason === TRACE_REASON.UNKNOWN || observer === 0) return ev.point === OBS_POINT.TO_LXC ? 'INGRESS' : 'EGRESS';
  const isSourceEp = ctx.endpointByIp(ev.src)?.id === observer;
  return isSourceEp !== (ev.reason === TRACE_REASON.REPLY) ? 'EGRESS' : 'INGRESS';
}

function l4Of(ev: FlowEvent): Flow['l4'] | undefined {
  const ports = { ...(ev.sport ? { source_port: ev.sport } : {}), ...(ev.dport ? { destination_port: ev.dport } : {}) };
  if (ev.proto === 6) {
    const flags: Partial<Record<TcpFlagName, true>> = {};
    for (const [name, bit] of TCP_FLAGS) if (ev.tcpFlags & bit) flags[name] = true;
    return { TCP: { ...ports, ...(Object.keys(flags).length > 0 ? { flags } : {}) } };
  }
  if (ev.proto === 17) return { UDP: ports };
  if (ev.proto === 1) return { ICMPv4: {} };
  if (ev.proto === 58) return { ICMPv6: {} };
  return undefined;
}

/** Hubble's Summary: "TCP Flags: SYN, ACK", "UDP", "ICMPv4". */
function summaryOf(f: Flow): string {
  const tcp = f.l4?.TCP;
  if (tcp) return `TCP Flags: ${TCP_FLAGS.filter(([n]) => tcp.flags?.[n]).map(([n]) => n).join(', ')}`;
  if (f.l4?.UDP) return 'UDP';
  if (f.l4?.ICMPv4) return 'ICMPv4';
  if (f.l4?.ICMPv6) return 'ICMPv6';
  return 'IP';
}

/** What `observe` filters on; every given field must match. */
export interface FlowFilter {
  pod?: string;
  fromPod?: string;
  toPod?: string;
  verdict?: string;
  protocol?: string;
  port?: number;
  ip?: string;
}

/** The filter from URL parameters; throws (status 400) on a bad value. */
export function parseFlowFilter(q: URLSearchParams | undefined): FlowFilter {
  const f: FlowFilter = {};
  const bad = (msg: string) => Object.assign(new Error(msg), { status: 400 });
  const s = (k: string) => q?.get(k) ?? undefined;
  if (s('pod')) f.pod = s('pod')!;
  if (s('from_pod')) f.fromPod = s('from_pod')!;
  if (s('to_pod')) f.toPod = s('to_pod')!;
  const v = s('verdict');
  if (v) {
    if (!['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'].includes(v.toUpperCase())) throw bad(`verdict: unknown "${v}"`);
    f.verdict = v.toUpperCase();
  }
  const p = s('protocol');
  if (p) {
    if (!['tcp', 'udp', 'icmp', 'icmpv4', 'icmpv6'].includes(p.toLowerCase())) throw bad(`protocol: unknown "${p}" (tcp, udp, icmp)`);
    f.protocol = p.toLowerCase();
  }
  const port = s('port');
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw bad('port: must be 0-65535');
    f.port = n;
  }
  if (s('ip')) f.ip = s('ip')!;
  return f;
}

/** "NS/POD" matches that pod in that namespace; "POD" matches it in any namespace (prefixes, as Hubble's --pod). */
function podMatches(e: FlowEndpoint | undefined, want: string): boolean {
  if (!e?.pod_name) return false;
  const slash = want.indexOf('/');
  if (slash < 0) return e.pod_name.startsWith(want);
  return e.namespace === want.slice(0, slash) && e.pod_name.startsWith(want.slice(slash + 1));
}

export function matchFlow(f: Flow, w: FlowFilter): boolean {
  if (w.pod !== undefined && !podMatches(f.source, w.pod) && !podMatches(f.destination, w.pod)) return false;
  if (w.fromPod !== undefined && !podMatches(f.source, w.fromPod)) return false;
  if (w.toPod !== undefined && !podMatches(f.destination, w.toPod)) return false;
  if (w.verdict !== undefined && f.verdict !== w.verdict) return false;
  if (w.protocol !== undefined) {
    const ok = w.protocol === 'tcp' ? !!f.l4?.TCP : w.protocol === 'udp' ? !!f.l4?.UDP : w.protocol === 'icmpv4' ? !!f.l4?.ICMPv4 : w.protocol === 'icmpv6' ? !!f.l4?.ICMPv6 : !!(f.l4?.ICMPv4 ?? f.l4?.ICMPv6);
    if (!ok) return false;
  }
  if (w.port !== undefined) {
    const l = f.l4?.TCP ?? f.l4?.UDP;
    if ((l?.source_port ?? 0) !== w.port && (l?.destination_port ?? 0) !== w.port) return false;
  }
  if (w.ip !== undefined && f.IP.source !== w.ip && f.IP.destination !== w.ip) return false;
  return true;
}

/** "Jan  2 15:04:05.000" in UTC, as Hubble's compact output stamps a flow. */
function stamp(iso: string): string {
  const d = new Date(iso);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]!;
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}`;
}

/** One side as the compact line prints it: "ns/pod:port (ID:n)" or "ip:port (world)". */
function sideOf(f: Flow, which: 'source' | 'destination'): string {
  const e = f[which];
  const ip = which === 'source' ? f.IP.source : f.IP.destination;
  const l = f.l4?.TCP ?? f.l4?.UDP;
  const port = which === 'source' ? l?.source_port : l?.destination_port;
  const host = e?.pod_name ? `${e.namespace}/${e.pod_name}` : f.IP.ipVersion === 'IPv6' && port ? `[${ip}]` : ip;
  const id = e?.identity ?? 0;
  const reserved = reservedIdentityName(id);
  return `${host}${port ? `:${port}` : ''} (${reserved ?? `ID:${id}`})`;
}

/** Hubble's compact line: "TIME: SRC (identity) -> DST (identity) to-endpoint FORWARDED (TCP Flags: SYN)". */
export function formatFlowCompact(f: Flow): string {
  const dropped = f.verdict === 'DROPPED';
  const what =
    f.event_type.type === 5
      ? `policy-verdict:${f.traffic_direction ?? ''}`
      : f.trace_observation_point
        ? f.trace_observation_point.toLowerCase().replace('_', '-')
        : f.event_type.type === 1
          ? 'drop'
          : '';
  const tail = dropped ? `(${dropReasonString(f.drop_reason ?? 0)})` : `(${f.Summary})`;
  return `${stamp(f.time)}: ${sideOf(f, 'source')} ${dropped ? '<>' : '->'} ${sideOf(f, 'destination')} ${what} ${f.verdict} ${tail}`;
}

/** The part of the datapath client the store uses. */
export interface EventSource {
  readEvents(since: number, max: number, opts: { trace?: boolean }): Promise<{ events: DatapathEvent[]; next: number; lost: number }>;
  /** The ring's record count from shared memory, if available: unchanged since the last read means nothing to read. */
  eventHead?(): number;
}

/** The agent's flow ring, fed by polling the worker's event ring. */
export class FlowStore {
  private readonly ring: (FlowEnvelope | undefined)[] = new Array<FlowEnvelope | undefined>(FLOW_RING_SIZE);
  /** Flows stored so far (the next flow's sequence number). */
  head = 0;
  /** Events the worker overwrote before the store read them. */
  lost = 0;
  private since = 0;
  private lastQuery = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  /** eventHead() when the last read was issued (-1: read anyway). */
  private seenHead = -1;

  constructor(
    private readonly dp: EventSource,
    private readonly ctx: FlowContext,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Read what the worker has (trace events too while someone observed lately); one read at a time. */
  poll(): Promise<void> {
    return (this.inflight ??= this.pollOnce().finally(() => (this.inflight = undefined)));
  }

  private async pollOnce(): Promise<void> {
    try {
      // Nobody observing and nothing recorded since the last read: no message to the datapath thread at all.
      const head = this.dp.eventHead?.() ?? -1;
      if (head >= 0 && head === this.seenHead && this.now() - this.lastQuery >= TRACE_LEASE_MS) return;
      this.seenHead = head;
      for (;;) {
        const trace = this.now() - this.lastQuery < TRACE_LEASE_MS;
        const r = await this.dp.readEvents(this.since, 1000, trace ? { trace: true } : {});
        this.lost += r.lost;
        this.since = r.next;
        this.add(r.events);
        if (r.events.length < 1000) break;
      }
    } catch {
      // Requests fail only once the worker has stopped: so does the store.
      this.stop();
    }
  }

  /** Convert and store events (debug messages are not flows). */
  add(events: readonly DatapathEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'debug') continue;
      const time = new Date(ev.time).toISOString();
      const flow = eventToFlow(ev, this.ctx, time);
      this.ring[this.head % FLOW_RING_SIZE] = { flow, node_name: this.ctx.nodeName, time };
      this.head++;
    }
  }

  /** Flows matching `q`'s filters, oldest first: `since` (a sequence from `next`) and/or `last` N. */
  async query(q: URLSearchParams | undefined): Promise<{ flows: FlowEnvelope[]; next: number; lost: number }> {
    const filter = parseFlowFilter(q);
    this.lastQuery = this.now();
    // A read already under way may predate this query (and its trace lease): wait for it, then read afresh.
    await this.poll();
    await this.poll();
    const oldest = Math.max(0, this.head - FLOW_RING_SIZE);
    const sinceRaw = q?.get('since');
    const since = sinceRaw != null && Number.isFinite(Number(sinceRaw)) ? Math.max(oldest, Number(sinceRaw)) : oldest;
    const lastRaw = q?.get('last');
    const last = lastRaw != null ? Number(lastRaw) : Infinity;
    if (!(last >= 0)) throw Object.assign(new Error('last: must be a number'), { status: 400 });
    const flows: FlowEnvelope[] = [];
    for (let s = since; s < this.head; s++) {
      const e = this.ring[s % FLOW_RING_SIZE]!;
      if (matchFlow(e.flow, filter)) flows.push(e);
    }
    return { flows: last < flows.length ? flows.slice(flows.length - last) : flows, next: this.head, lost: this.lost };
  }
}

/** A started store over the agent's endpoints and identities, as API routes (it stops itself with the worker). */
export function flowRoutes(
  dp: EventSource,
  nodeName: string,
  local: () => readonly (EndpointRef & { ipv4?: string; ipv6?: string })[],
  remote: () => readonly { name?: string; labels: Record<string, string>; ipv4?: string; ipv6?: string }[],
  registry: IdentityRegistry,
): Record<string, Handler> {
  const byIp = (ip: string): EndpointRef | undefined => {
    const hit = (e: { ipv4?: string; ipv6?: string }) => e.ipv4 === ip || e.ipv6 === ip;
    const l = local().find(hit);
    if (l) return l;
    const r = remote().find(hit);
    return r?.name !== undefined ? { name: r.name, labels: r.labels } : undefined;
  };
  const store = new FlowStore(dp, {
    nodeName,
    endpoint: (id) => local().find((e) => e.id === id),
    endpointByIp: byIp,
    identityLabels: (id) => {
      const set = registry.labels(id);
      return set ? formatLabels(set).split(',').filter(Boolean) : [];
    },
  });
  store.start();
  return { 'GET /v1/flows': ({ query }) => store.query(query) };
}

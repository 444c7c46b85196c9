/**
 * Cilium's conntrack debug lines (the cilium_dbg calls of
 * bpf/lib/conntrack.h) for a lookup just done: lookup 1/2 and 2/2, the
 * verdict, and on CT_NEW the entry the caller creates (unless policy denies
 * it). The programs call these only while a monitor reads debug events.
 * Deviation: ports print in host order (Cilium prints the raw network-order
 * halves, so port 80 reads 20480 there).
 *
 * API:
 *   flowPorts(flow, buf, l4Off, proto, l4Len)   ports and TCP flags of a packet into a FlowInfo
 *   flow4(flow, ip4)                            the same plus the addresses of an IPv4 frame
 *   debugCt4(events, flow, ip4, source, egress, ret, srcId, revNat)
 *   debugCt6(events, flow, ip6, l4Off, source, egress, ret, srcId, proto, revNat)
 *   debugBackend4(events, flow, ip4, source, backendId)   the service backend a new flow got (after DNAT)
 */
import type { Ipv4View } from '../../wire/ipv4.ts';
import type { Ipv6View } from '../../wire/ipv6.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { set32 } from '../../wire/bytes.ts';
import { CT_NEW } from './conntrack.ts';
import { DBG, flowHash, type EventRing, type FlowInfo } from './events.ts';

/** Ports (TCP/UDP) and TCP flags of the L4 header at buf[l4, l4 + l4Len) into `flow`. */
export function flowPorts(flow: FlowInfo, buf: Uint8Array, l4: number, proto: number, l4Len: number): void {
  flow.proto = proto;
  flow.sport = flow.dport = flow.tcpFlags = 0;
  if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && l4Len >= 4) {
    flow.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    flow.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    if (proto === IPPROTO_TCP && l4Len >= 14) flow.tcpFlags = buf[l4 + 13]!;
  }
}

/** Addresses, ports and flags of the IPv4 frame bound in ip4 into `flow`. */
export function flow4(flow: FlowInfo, ip4: Ipv4View): void {
  flow.v6 = false;
  flow.src.fill(0);
  flow.dst.fill(0);
  set32(flow.src, 12, ip4.src());
  set32(flow.dst, 12, ip4.dst());
  flowPorts(flow, ip4.b, ip4.payloadOffset(), ip4.protocol(), ip4.payloadLen());
}

/** The debug lines for the IPv4 frame bound in ip4 (flow is scratch). */
export function debugCt4(ev: EventRing, flow: FlowInfo, ip4: Ipv4View, source: number, egress: boolean, ret: number, srcId: number, revNat: number): void {
  flow4(flow, ip4);
  const proto = ip4.protocol();
  const h = flowHash(flow);
  const ports = ((flow.dport << 16) | flow.sport) >>> 0;
  ev.debug(source, DBG.CT_LOOKUP4_1, h, ip4.src(), ip4.dst(), ports);
  ev.debug(source, DBG.CT_LOOKUP4_2, h, (proto << 8) | (egress ? 1 : 0), 0, 0);
  ev.debug(source, DBG.CT_VERDICT, h, ret < 0 ? -ret : ret, revNat, 0);
  if (ret === CT_NEW) ev.debug(source, DBG.CT_CREATED4, h, revNat & 0xffff, srcId, 0);
}

/** The same for the IPv6 frame bound in ip6 with its L4 header at l4Off (Cilium prints the last 32 bits of each address). */
export function debugCt6(ev: EventRing, flow: FlowInfo, ip6: Ipv6View, l4Off: number, source: number, egress: boolean, ret: number, srcId: number, proto: number, revNat: number): void {
  const buf = ip6.b;
  flow.v6 = true;
  flow.src.set(buf.subarray(ip6.srcOff(), ip6.srcOff() + 16));
  flow.dst.set(buf.subarray(ip6.dstOff(), ip6.dstOff() + 16));
  flowPorts(flow, buf, l4Off, proto, ip6.o + ip6.headerLen() + ip6.payloadLen() - l4Off);
  const h = flowHash(flow);
  const last32 = (a: Uint8Array) => ((a[12]! << 24) | (a[13]! << 16) | (a[14]! << 8) | a[15]!) >>> 0;
  ev.debug(source, DBG.CT_LOOKUP6_1, h, last32(flow.src), last32(flow.dst), ((flow.dport << 16) | flow.sport) >>> 0);
  ev.debug(source, DBG.CT_LOOKUP6_2, h, (proto << 8) | (egress ? 1 : 0), 0, 0);
  ev.debug(source, DBG.CT_VERDICT, h, ret < 0 ? -ret : ret, revNat, 0);
  if (ret === CT_NEW) ev.debug(source, DBG.CT_CREATED6, h, 0, srcId, 0);
}

/** Tapestry's line for the backend a service flow was given (the frame in ip4 is already DNATed). */
export function debugBackend4(ev: EventRing, flow: FlowInfo, ip4: Ipv4View, source: number, backendId: number): void {
  flow4(flow, ip4);
  ev.debug(source, DBG.LB4_BACKEND_MAPPED, flowHash(flow), ip4.dst(), flow.dport, backendId);
}

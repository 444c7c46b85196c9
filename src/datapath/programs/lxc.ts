/**
 * bpf_lxc: the programs on an endpoint's device (Cilium bpf/bpf_lxc.c).
 *
 *   from-container (entry, tc ingress of the pod's TAP, as seen from the node)
 *     ARP  -> CALL.ARP                 answer with the host-side MAC
 *     IPv4 -> CALL.IPV4_FROM_LXC       source check, services (DNAT), conntrack (egress),
 *                                      local delivery or stack
 *     IPv6 -> CALL.IPV6_FROM_LXC       NDP / router echo, source check, conntrack, delivery
 *     else -> DROP UNKNOWN_L3
 *   CALL.IPV4_TO_ENDPOINT / IPV6_TO_ENDPOINT
 *                                    ingress side of the destination endpoint
 *                                    (Cilium's tail_call_policy target): conntrack
 *                                    (ingress), then redirect to its device
 *   to-container (entry for frames from the node into a pod)
 *
 * Entry points only validate and dispatch; the work sits in datapath/lib.
 * Every frame ends with a verdict or a drop code; the engine's exit counts it.
 *
 * Uses per frame: CB.SRC_LABEL, CB.DST_ENDPOINT_ID, CB.IFINDEX, CB.CT_STATE (sets them).
 *
 * Conntrack runs where Cilium runs it for pod-to-pod traffic: an egress
 * lookup (and create on CT_NEW) in the source's stage, an ingress lookup in
 * the destination's, so each endpoint has its own view of the connection.
 * Deviation: non-first IP fragments carry no ports; Cilium tracks them
 * through its fragment map, Tapestry has none yet and forwards them
 * untracked (first fragments are tracked by their ports).
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { CB, CT_STATE_REPORT, CT_STATE_SET, META_SLOTS } from '../../packet/batch.ts';
import type { Program } from '../../engine/program.ts';
import { drop, redirect, tailCall, verdict } from '../../engine/program.ts';
import { DIR, TC } from '../../engine/verdict.ts';
import { ArpView } from '../../wire/arp.ts';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthernetView } from '../../wire/ethernet.ts';
import { Ipv4View } from '../../wire/ipv4.ts';
import { Ipv6View } from '../../wire/ipv6.ts';
import { Ipv6ExtInfo, ipv6WalkExt, IPV6_EXT_TRUNCATED } from '../../wire/ipv6-ext.ts';
import { Icmp6View, ICMPV6_ECHO_REQUEST, ICMPV6_PKT_TOOBIG } from '../../wire/icmp6.ts';
import { NDISC_NEIGHBOUR_SOLICITATION, NDP_NA_OVERRIDE, NDP_NA_ROUTER, NDP_NA_SOLICITED } from '../../wire/ndp.ts';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { ICMP_PORT_UNREACH } from '../../wire/icmp4.ts';
import { ipv6Equal } from '../../wire/addr.ts';
import { CALL } from '../lib/call-ids.ts';
import { DROP } from '../lib/drop-reasons.ts';
import { EP_KEY, epKey4, epKey6 } from '../lib/endpoints-map.ts';
import { arpPrepareResponse, arpValidate } from '../lib/arp.ts';
import { localDelivery } from '../lib/local-delivery.ts';
import { icmp6SendEchoReply, icmp6SendNdiscAdv } from '../lib/icmp6.ts';
import { CT_EGRESS, CT_ESTABLISHED, CT_INGRESS, CT_NEW, CT_REPLY, CtState, ctCreate4, ctCreate6, ctLookup4, ctLookup6 } from '../lib/conntrack.ts';
import { CT4, CT6, CT_F, ctTuple4Fill, ctTuple6Fill } from '../lib/conntrack-map.ts';
import { CB_NAT_NODEPORT } from '../lib/nodeport.ts';
import { icmp4SendUnreach } from '../lib/icmp4.ts';
import type { Datapath, EndpointState } from '../datapath.ts';
import { PolicyVerdict, icmp4FragNeededBypass, policyCanAccess } from '../lib/policy.ts';
import { FlowInfo } from '../lib/events.ts';
import { debugBackend4, debugCt4, debugCt6, flow4, flowPorts } from '../lib/ct-debug.ts';
import { ID } from '../lib/identity.ts';

/** The lxc programs, for attaching to ports. */
export interface LxcPrograms {
  fromContainer: Program;
  toContainer: Program;
}

/** Build the lxc programs over `dp`'s maps and install the tail-call targets. */
export function installLxcPrograms(dp: Datapath): LxcPrograms {
  const eth = new EthernetView();
  const arp = new ArpView();
  const ip4 = new Ipv4View();
  const ip6 = new Ipv6View();
  const ext = new Ipv6ExtInfo();
  const icmp6 = new Icmp6View();
  // Separate scratch keys: an IPv4 key relies on bytes 4..15 staying zero.
  const key4 = new Uint8Array(EP_KEY.SIZE);
  const key6 = new Uint8Array(EP_KEY.SIZE);
  const t4 = new Uint8Array(CT4.SIZE);
  const t6 = new Uint8Array(CT6.SIZE);
  const ctState = new CtState();
  const pv = new PolicyVerdict();
  const flow = new FlowInfo();
  const ct = dp.ct;
  const lxc = dp.lxc;

  /** cil_from_container: validate the ethertype and dispatch. */
  const fromContainer: Program = {
    name: 'cil_from_container',
    run(b: FrameBatch, vec: Uint16Array, n: number): void {
      const ep = dp.endpointByPort[b.port];
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        b.dir[i] = DIR.EGRESS;
        if (ep === undefined) {
          drop(b, i, DROP.EP_NOT_READY);
          continue;
        }
        b.meta[i * META_SLOTS + CB.SRC_LABEL] = ep.identity;
        eth.bind(buf, b.off[i]!, b.len[i]!);
        if (!eth.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        switch (eth.ethertype()) {
          case ETH_P_IP:
            tailCall(b, i, CALL.IPV4_FROM_LXC);
            break;
          case ETH_P_IPV6:
            // A node without IPv6 has no IPv6 program (Cilium built without ENABLE_IPV6).
            if (dp.cfg.routerIPv6 === null) drop(b, i, DROP.UNKNOWN_L3);
            else tailCall(b, i, CALL.IPV6_FROM_LXC);
            break;
          case ETH_P_ARP:
            tailCall(b, i, CALL.ARP);
            break;
          default:
            drop(b, i, DROP.UNKNOWN_L3);
        }
      }
    },
  };

  /** tail_handle_arp: answer for everything but the pod's own address. */
  const handleArp: Program = {
    name: 'tail_handle_arp',
    run(b, vec, n) {
      const ep = dp.endpointByPort[b.port]!;
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        const o = b.off[i]!;
        eth.bind(buf, o, b.len[i]!);
        arp.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
        if (!arp.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        if (!arpValidate(arp) || arp.tpa() === ep.ipv4) {
          // Replies, gratuitous ARP and requests for the pod's own address go to the stack.
          verdict(b, i, TC.OK);
          continue;
        }
        arpPrepareResponse(eth, arp, ep.hostMac);
        redirect(b, i, b.port);
      }
    },
  };

  /**
   * Rebind the views to frame i after a tail call (Cilium's revalidate_data):
   * Ethernet, IPv6 and the ICMPv6 header after the extension headers, which
   * tail_handle_ipv6 has already validated.
   */
  function bindIcmp6(b: FrameBatch, i: number): void {
    const o = b.off[i]!;
    eth.bind(b.buf, o, b.len[i]!);
    ip6.bind(b.buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
    ipv6WalkExt(b.buf, ip6.o, ip6.n, ext);
    icmp6.bind(b.buf, ext.off, ip6.o + ip6.headerLen() + ip6.payloadLen() - ext.off);
  }

  /**
   * Conntrack for the IPv4 frame bound in ip4: look up in direction `dir`,
   * create on CT_NEW with `srcId` as source identity. Returns the CT result
   * (CT_NEW … CT_RELATED, stored in CB.CT_STATE) or a DROP code.
   */
  function ct4(b: FrameBatch, i: number, dir: number, srcId: number, now: number, revNat = 0, pol?: EndpointState, entryFlags = 0): number {
    if (ip4.fragOffset() !== 0) return CT_NEW; // untracked non-first fragment (see header)
    const flags = ctTuple4Fill(t4, b.buf, ip4.o, ip4.payloadOffset(), ip4.payloadLen());
    if (flags < 0) return flags;
    let ret = ctLookup4(ct, t4, dir, flags, b.len[i]!, now, ctState);
    // A DSR entry is made from the reply's side (nodeport.ts): the client's packets are its replies
    // by orientation but established by meaning, and the backend's answers are the replies.
    if ((ret === CT_REPLY || ret === CT_ESTABLISHED) && (ctState.flags & CT_F.DSR_INTERNAL) !== 0) ret = ret === CT_REPLY ? CT_ESTABLISHED : CT_REPLY;
    if (dp.events.debugEnabled) debugCt4(dp.events, flow, ip4, pol?.id ?? 0, dir === CT_EGRESS, ret, srcId, ret === CT_NEW ? revNat : ctState.revNat);
    if (pol !== undefined) {
      const v = policy4(b, i, pol, dir === CT_EGRESS, ret);
      if (v < 0) return v;
    }
    if (ret === CT_NEW) {
      ctState.reset();
      ctState.srcSecId = srcId;
      ctState.revNat = revNat;
      ctState.flags = entryFlags;
      const c = ctCreate4(ct, t4, dir, flags, b.len[i]!, now, ctState);
      if (c < 0) return c;
    }
    if (ret >= 0) b.meta[i * META_SLOTS + CB.CT_STATE] = CT_STATE_SET | (ctState.report ? CT_STATE_REPORT : 0) | ret;
    return ret;
  }

  /**
   * Policy (bpf_lxc policy_can_egress4 / policy_can_access_ingress) for the
   * frame bound in ip4 after its conntrack lookup: only NEW and ESTABLISHED
   * packets are checked, in a direction the endpoint enforces; the peer is
   * the destination's identity from the ipcache (egress) or the source's
   * from the packet's metadata (ingress). Emits a policy-verdict event for
   * new connections and for every denial. 0 or a DROP code.
   */
  function policy4(b: FrameBatch, i: number, ep: EndpointState, egress: boolean, ret: number): number {
    if (ret !== CT_NEW && ret !== CT_ESTABLISHED) return 0;
    if (!(egress ? ep.enforceEgress : ep.enforceIngress) || ep.policy === undefined) return 0;
    const buf = b.buf;
    const proto = ip4.protocol();
    const l4 = ip4.payloadOffset();
    let port = 0;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && ip4.payloadLen() >= 4) port = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    else if (proto === IPPROTO_ICMP && ip4.payloadLen() >= 2) {
      if (icmp4FragNeededBypass(proto, buf[l4]!, buf[l4 + 1]!)) return 0;
      port = buf[l4]!;
    }
    const peer = egress ? peerIdentity4(ip4.dst()) : b.meta[i * META_SLOTS + CB.SRC_LABEL]!;
    // The node itself always reaches its pods (Cilium's allow-localhost default, for health checks).
    if (!egress && peer === ID.HOST) return 0;
    policyCanAccess(ep.policy, peer, egress, proto, port, b.len[i]!, pv);
    if (dp.events.enabled && (ret === CT_NEW || pv.verdict < 0)) {
      flow4(flow, ip4);
      dp.events.policyVerdict(ep.id, peer, pv.verdict, egress, pv.matchType, flow);
    }
    return pv.verdict;
  }

  /** policy4 for the IPv6 frame bound in ip6, its upper layer found by the walk in `ext`. */
  function policy6(b: FrameBatch, i: number, ep: EndpointState, egress: boolean, ret: number, proto: number): number {
    if (ret !== CT_NEW && ret !== CT_ESTABLISHED) return 0;
    if (!(egress ? ep.enforceEgress : ep.enforceIngress) || ep.policy === undefined) return 0;
    const buf = b.buf;
    const l4 = ext.off;
    const l4Len = ip6.o + ip6.headerLen() + ip6.payloadLen() - l4;
    let port = 0;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && ext.hasL4() && l4Len >= 4) port = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    else if (proto === IPPROTO_ICMPV6 && ext.hasL4() && l4Len >= 1) {
      if (buf[l4] === ICMPV6_PKT_TOOBIG) return 0; // the IPv6 twin of frag-needed
      port = buf[l4]!;
    }
    let peer: number;
    if (egress) {
      const s = dp.ipcache.lookup6(buf, ip6.dstOff());
      peer = s >= 0 ? dp.ipcache.identity(s) : ID.WORLD;
    } else peer = b.meta[i * META_SLOTS + CB.SRC_LABEL]!;
    if (!egress && peer === ID.HOST) return 0;
    policyCanAccess(ep.policy, peer, egress, proto, port, b.len[i]!, pv);
    if (dp.events.enabled && (ret === CT_NEW || pv.verdict < 0)) {
      flow.v6 = true;
      flow.src.set(buf.subarray(ip6.dstOff() - 16, ip6.dstOff()));
      flow.dst.set(buf.subarray(ip6.dstOff(), ip6.dstOff() + 16));
      flowPorts(flow, buf, l4, proto, ext.hasL4() ? l4Len : 0);
      dp.events.policyVerdict(ep.id, peer, pv.verdict, egress, pv.matchType, flow);
    }
    return pv.verdict;
  }

  /** Security identity of an IPv4 address: the ipcache's longest match, world when unknown. */
  function peerIdentity4(ip: number): number {
    const s = dp.ipcache.lookup4(ip);
    return s >= 0 ? dp.ipcache.identity(s) : ID.WORLD;
  }

  /** ct4 for the IPv6 frame bound in ip6, its upper layer found by the walk in `ext`. */
  function ct6(b: FrameBatch, i: number, proto: number, dir: number, srcId: number, now: number, pol?: EndpointState): number {
    if (!ext.hasL4()) return CT_NEW;
    const l4Len = ip6.o + ip6.headerLen() + ip6.payloadLen() - ext.off;
    const flags = ctTuple6Fill(t6, b.buf, ip6.o, proto, ext.off, l4Len);
    if (flags < 0) return flags;
    const ret = ctLookup6(ct, t6, dir, flags, b.len[i]!, now, ctState);
    if (dp.events.debugEnabled) debugCt6(dp.events, flow, ip6, ext.off, pol?.id ?? 0, dir === CT_EGRESS, ret, srcId, proto, ret === CT_NEW ? 0 : ctState.revNat);
    if (pol !== undefined) {
      const v = policy6(b, i, pol, dir === CT_EGRESS, ret, proto);
      if (v < 0) return v;
    }
    if (ret === CT_NEW) {
      ctState.reset();
      ctState.srcSecId = srcId;
      const c = ctCreate6(ct, t6, dir, flags, b.len[i]!, now, ctState);
      if (c < 0) return c;
    }
    if (ret >= 0) b.meta[i * META_SLOTS + CB.CT_STATE] = CT_STATE_SET | (ctState.report ? CT_STATE_REPORT : 0) | ret;
    return ret;
  }

  /**
   * lb4_lookup_service + lb4_local + DNAT for the TCP/UDP frame i bound in
   * ip4/eth: 0 when it is not for a service, the rev_nat_index after DNAT,
   * SVC_REJECTED when answered with ICMP port unreachable from `mac`, or a
   * DROP code.
   */
  function serviceOf(b: FrameBatch, i: number, mac: Uint8Array, now: number): number {
    const buf = b.buf;
    const proto = ip4.protocol();
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || ip4.fragOffset() !== 0 || ip4.payloadLen() < 4) return 0;
    const l4 = ip4.payloadOffset();
    const svc = dp.lb.lookupService(ip4.dst(), (buf[l4 + 2]! << 8) | buf[l4 + 3]!);
    if (svc < 0) return 0;
    const tcpFlags = proto === IPPROTO_TCP && ip4.payloadLen() >= 14 ? buf[l4 + 13]! : 0;
    const be = dp.lb.local(b, i, ip4, l4, tcpFlags, now, svc);
    if (be === DROP.NO_SERVICE && dp.cfg.noBackendReject !== false) {
      b.len[i] = icmp4SendUnreach(b, i, eth, ip4, mac, ICMP_PORT_UNREACH);
      redirect(b, i, b.port);
      return SVC_REJECTED;
    }
    if (be < 0) return be;
    dp.lb.dnat(b, i, ip4, l4, proto, be);
    if (dp.events.debugEnabled) debugBackend4(dp.events, flow, ip4, dp.endpointByPort[b.port]?.id ?? 0, dp.lb.backendId);
    return dp.lb.revNatIndex;
  }

  /** tail_handle_ipv4 (from lxc): source check, then local delivery or the stack. */
  const ipv4FromLxc: Program = {
    name: 'tail_handle_ipv4',
    run(b, vec, n) {
      const ep = dp.endpointByPort[b.port]!;
      const now = ctNow(b);
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        const o = b.off[i]!;
        eth.bind(buf, o, b.len[i]!);
        ip4.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
        if (!ip4.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        if (ip4.src() !== ep.ipv4 || ep.ipv4 === 0) {
          drop(b, i, DROP.INVALID_SIP);
          continue;
        }
        const svc = serviceOf(b, i, ep.hostMac, now);
        if (svc === SVC_REJECTED) continue;
        if (svc < 0) {
          drop(b, i, svc);
          continue;
        }
        const r = ct4(b, i, CT_EGRESS, ep.identity, now, svc, ep);
        if (r < 0) {
          drop(b, i, r);
          continue;
        }
        // A backend answering a client that came in through a NodePort (or DSR): straight back to it.
        if (r === CT_REPLY && (ctState.flags & (CT_F.NODE_PORT | CT_F.DSR_INTERNAL)) !== 0 && dp.uplink !== null &&
          dp.nodePort.reply4(b, i, eth, ip4, b.now, ctState.flags, ctState.revNat, ep.identity)) continue;
        epKey4(key4, ip4.dst());
        const slot = lxc.lookup(key4, 0);
        if (slot >= 0) localDelivery(b, i, lxc, slot, eth, ip4, ip6, false, ep.identity);
        else dp.egress.route4(b, i, eth, ip4, ep.identity, true, b.now);
      }
    },
  };

  /** tail_handle_ipv6 (from lxc): NDP and router echo first, then as IPv4. */
  const ipv6FromLxc: Program = {
    name: 'tail_handle_ipv6',
    run(b, vec, n) {
      const ep = dp.endpointByPort[b.port]!;
      const now = ctNow(b);
      const router = dp.cfg.routerIPv6;
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        const o = b.off[i]!;
        eth.bind(buf, o, b.len[i]!);
        ip6.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
        if (!ip6.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const proto = ipv6WalkExt(buf, ip6.o, ip6.n, ext);
        if (proto < 0) {
          drop(b, i, extDrop(proto));
          continue;
        }
        if (proto === IPPROTO_ICMPV6 && ext.hasL4()) {
          const t = buf[ext.off];
          if (t === NDISC_NEIGHBOUR_SOLICITATION) {
            tailCall(b, i, CALL.HANDLE_ICMP6_NS);
            continue;
          }
          if (t === ICMPV6_ECHO_REQUEST && router !== null && ip6.dstEquals(router, 0)) {
            tailCall(b, i, CALL.SEND_ICMP6_ECHO_REPLY);
            continue;
          }
        }
        if (ip6.isDstMulticast()) {
          verdict(b, i, TC.OK);
          continue;
        }
        if (ep.ipv6 === null || !ip6.srcEquals(ep.ipv6, 0)) {
          drop(b, i, DROP.INVALID_SIP);
          continue;
        }
        const r = ct6(b, i, proto, CT_EGRESS, ep.identity, now, ep);
        if (r < 0) {
          drop(b, i, r);
          continue;
        }
        epKey6(key6, buf, ip6.dstOff());
        const slot = lxc.lookup(key6, 0);
        if (slot >= 0) localDelivery(b, i, lxc, slot, eth, ip4, ip6, true, ep.identity);
        else dp.egress.route6(b, i, ip6, ep.identity, true, b.now);
      }
    },
  };

  /** tail_icmp6_handle_ns: answer for the router and for other local endpoints. */
  const handleNs: Program = {
    name: 'tail_icmp6_handle_ns',
    run(b, vec, n) {
      const ep = dp.endpointByPort[b.port]!;
      const router = dp.cfg.routerIPv6;
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        bindIcmp6(b, i);
        if (!icmp6.ndpCheckLen() || router === null) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const t = icmp6.targetOff();
        let flags: number;
        if (ipv6Equal(buf, t, router, 0)) {
          flags = NDP_NA_ROUTER | NDP_NA_SOLICITED;
        } else {
          epKey6(key6, buf, t);
          if (lxc.lookup(key6, 0) < 0 || (ep.ipv6 !== null && ipv6Equal(buf, t, ep.ipv6, 0))) {
            drop(b, i, DROP.UNKNOWN_TARGET);
            continue;
          }
          flags = NDP_NA_SOLICITED | NDP_NA_OVERRIDE;
        }
        b.len[i] = icmp6SendNdiscAdv(eth, ip6, icmp6, ep.hostMac, router, flags);
        redirect(b, i, b.port);
      }
    },
  };

  /** tail_icmp6_send_echo_reply: the router IP answers pings itself. */
  const echoReply6: Program = {
    name: 'tail_icmp6_send_echo_reply',
    run(b, vec, n) {
      const ep = dp.endpointByPort[b.port]!;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        bindIcmp6(b, i);
        if (!icmp6.checkLen() || ext.off !== ip6.payloadOffset()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        icmp6SendEchoReply(eth, ip6, icmp6, ep.hostMac);
        redirect(b, i, b.port);
      }
    },
  };

  /**
   * The destination endpoint's ingress stage (Cilium: tail_call_policy into
   * the endpoint's policy program): the ingress conntrack lookup, then the
   * endpoint's device. Policy enforcement plugs in here.
   */
  function toEndpoint(name: string, v6: boolean): Program {
    return {
      name,
      run(b, vec, n) {
        const now = ctNow(b);
        const buf = b.buf;
        for (let k = 0; k < n; k++) {
          const i = vec[k]!;
          b.dir[i] = DIR.INGRESS;
          const m = i * META_SLOTS;
          const port = b.meta[m + CB.IFINDEX]!;
          const dst = dp.endpointByPort[port];
          if (dst === undefined) {
            drop(b, i, DROP.EP_NOT_READY);
            continue;
          }
          const o = b.off[i]! + ETH_HLEN;
          const l = b.len[i]! - ETH_HLEN;
          let r: number;
          if (v6) {
            ip6.bind(buf, o, l);
            const proto = ip6.checkLen() ? ipv6WalkExt(buf, o, l, ext) : IPV6_EXT_TRUNCATED;
            r = proto < 0 ? extDrop(proto) : ct6(b, i, proto, CT_INGRESS, b.meta[m + CB.SRC_LABEL]!, now, dst);
          } else {
            ip4.bind(buf, o, l);
            // From a NodePort (nodeport.ts): the entry keeps the rev-NAT index for the reply at from-container.
            const nat = b.meta[m + CB.NAT]!;
            const npFlags = (nat & CB_NAT_NODEPORT) !== 0 ? CT_F.NODE_PORT : 0;
            r = ip4.checkLen() ? ct4(b, i, CT_INGRESS, b.meta[m + CB.SRC_LABEL]!, now, nat & 0xffff, dst, npFlags) : DROP.INVALID;
            // A reply on a connection made through a service: the client sees the frontend (lb4_rev_nat).
            if (r === CT_REPLY && ctState.revNat !== 0 && (ctState.flags & CT_F.NODE_PORT) === 0) dp.lb.revNat(b, i, ip4, ip4.payloadOffset(), ip4.protocol(), ctState.revNat);
          }
          if (r < 0) drop(b, i, r);
          else redirect(b, i, port);
        }
      },
    };
  }

  /**
   * cil_to_container: frames from the node into the pod on port b.port
   * (attached as the ingress program of the node-side device that carries
   * them). Validates and hands IP frames to the endpoint's ingress stage.
   */
  const toContainer: Program = {
    name: 'cil_to_container',
    run(b, vec, n) {
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        b.dir[i] = DIR.INGRESS;
        eth.bind(buf, b.off[i]!, b.len[i]!);
        if (!eth.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const et = eth.ethertype();
        if (et !== ETH_P_IP && et !== ETH_P_IPV6) {
          drop(b, i, DROP.UNKNOWN_L3);
          continue;
        }
        // The target endpoint comes from metadata set by whoever redirected here.
        const id = b.meta[i * META_SLOTS + CB.DST_ENDPOINT_ID]!;
        const ep = dp.endpoints.get(id);
        if (ep === undefined) {
          drop(b, i, DROP.NO_LXC);
          continue;
        }
        b.meta[i * META_SLOTS + CB.IFINDEX] = ep.port;
        tailCall(b, i, et === ETH_P_IP ? CALL.IPV4_TO_ENDPOINT : CALL.IPV6_TO_ENDPOINT);
      }
    },
  };

  const progs = dp.progs;
  progs.set(CALL.ARP, handleArp);
  progs.set(CALL.IPV4_FROM_LXC, ipv4FromLxc);
  progs.set(CALL.IPV6_FROM_LXC, ipv6FromLxc);
  progs.set(CALL.HANDLE_ICMP6_NS, handleNs);
  progs.set(CALL.SEND_ICMP6_ECHO_REPLY, echoReply6);
  progs.set(CALL.IPV4_TO_ENDPOINT, toEndpoint('tail_ipv4_to_endpoint', false));
  progs.set(CALL.IPV6_TO_ENDPOINT, toEndpoint('tail_ipv6_to_endpoint', true));
  return { fromContainer, toContainer };
}


/** Conntrack time: whole seconds of the batch's clock (lifetimes are u32 seconds, as in Cilium). */
function ctNow(b: FrameBatch): number {
  return Math.floor(b.now / 1000);
}

/** Drop code for a failed IPv6 extension-header walk: truncation is an invalid packet, a bad chain 156. */
function extDrop(walkError: number): number {
  return walkError === IPV6_EXT_TRUNCATED ? DROP.INVALID : DROP.INVALID_EXTHDR;
}

/** serviceOf(): the frame was answered with an ICMP error and already has its verdict. */
const SVC_REJECTED = -1000;

/**
 * North-south service access: NodePort, LoadBalancer and externalIPs from
 * outside the cluster (Cilium bpf/lib/nodeport.h: nodeport_lb4,
 * rev_nodeport_lb4, nodeport_dsr_ingress_ipv4, nodeport_rev_dnat_fwd_ipv4;
 * facts §3 and §4). Frames in, frames out; the programs decide where to
 * call it (from-netdev, from-overlay, the XDP stage, from-container).
 *
 * API:
 *   new NodePort(dp)
 *   np.lb4(b, i, eth, ip4, now, xdp) -> NP_PASS | NP_DONE
 *       a frame that arrived on the uplink (or out of the tunnel): not for
 *       a service -> NP_PASS, untouched; otherwise it is load-balanced and
 *       its verdict is set (NP_DONE). In the XDP stage (`xdp`), a frame for a
 *       local backend is passed on untouched (from-netdev delivers it).
 *   np.rev4(b, i, eth, ip4, now) -> bool     SNAT mode: a reply already
 *       reverse-SNATed to the client; restore the frontend, send it back
 *   np.dsrIngress4(b, i, ip4, now, addr, port)   backend node: remember the
 *       service of a DSR flow so the replies can leave with it
 *   np.reply4(b, i, eth, ip4, now, ctFlags, revNat) -> bool   from-container:
 *       a backend's reply to a NodePort client (local backend or DSR)
 *   LB_MODE, FWD_MODE, NP_PASS, NP_DONE, CB_NAT_NODEPORT
 *
 * Per flow, on the node the client reached (nodeport_lb4):
 *   not ROUTABLE (a ClusterIP)         -> drop 174 "Is a ClusterIP"
 *   SOURCE_RANGE and client not in it  -> drop 177
 *   no backend                         -> ICMP port unreachable from the frontend (or 158)
 *   backend on this node               -> DNAT, deliver; the endpoint's conntrack
 *                                         entry carries the rev-NAT index and NodePort
 *                                         flag, so the reply is translated back at
 *                                         from-container (client address preserved)
 *   remote backend, SNAT mode          -> CT entry (NodePort flag, rev-NAT), DNAT,
 *                                         SNAT to the node address, tunnel/route to it;
 *                                         replies come back here (rev4)
 *   remote backend, DSR mode           -> DNAT, service address in the IPv4 option
 *                                         (TCP SYN, every UDP packet) or the Geneve
 *                                         option; no CT entry, no SNAT: replies never
 *                                         come back here
 * Hybrid mode: DSR for TCP, SNAT for UDP. A service can ask for one mode
 * (FWD_MODE, Cilium's service.cilium.io/forwarding-mode annotation).
 * MTU: the client's packet plus what this node adds (tunnel 50 B, Geneve
 * option 12 B, IPv4 option 8 B) must fit the path; otherwise, with DF,
 * ICMP fragmentation needed quoting the packet as the client sent it
 * (before any translation) with the MTU that is left, else drop 136.
 *
 * On the backend's node (nodeport_dsr_ingress_ipv4): a packet with DSR
 * information for a local endpoint creates a conntrack entry for the
 * reply direction flagged DSR_INTERNAL and a SNAT OUT entry keyed by the
 * reply tuple holding the service address and port; the reply gets that
 * source at from-container and is routed straight to the client.
 * Like Cilium, the backend's node takes DSR information from whoever sends
 * it (it cannot tell the first node from a client forging the option); it
 * only ever changes the source of that flow's own replies. Deviation:
 * Cilium also clears a DSR entry when a SYN of the same tuple arrives
 * without the option; here such an entry simply ages out (TCP lifetimes).
 * Because that entry is made from the reply's side, the programs read a
 * DSR_INTERNAL entry the other way round (lxc.ts ct4): the client's
 * packets count as established (ingress policy applies), the backend's
 * as replies.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { CB, META_SLOTS } from '../../packet/batch.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { drop, redirect } from '../../engine/program.ts';
import { ETH_HLEN, type EthernetView } from '../../wire/ethernet.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import { Ipv6View } from '../../wire/ipv6.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { TCP_FLAG_SYN } from '../../wire/tcp.ts';
import { ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH } from '../../wire/icmp4.ts';
import { get16, get32 } from '../../wire/bytes.ts';
import { DROP } from './drop-reasons.ts';
import { BE_VAL, SVC_F, SVC_VAL } from './lb-map.ts';
import { CT_EGRESS, CT_INGRESS, CT_NEW, CT_REPLY, CtState, ctCreate4, ctLookup4 } from './conntrack.ts';
import { CT4, CT_F, ctTuple4Fill, ctTuple4Reverse } from './conntrack-map.ts';
import { EP_KEY, epKey4 } from './endpoints-map.ts';
import { localDelivery } from './local-delivery.ts';
import { icmp4SendUnreach } from './icmp4.ts';
import { ID, LOCAL_NODE_ID } from './identity.ts';
import { DSR_GENEVE_OPT_LEN, DSR_IPV4_OPT_LEN, dsrOptPush4 } from './dsr.ts';
import { ENCAP_OVERHEAD } from './encap.ts';
import type { Datapath } from '../datapath.ts';

/** Node-wide load-balancer mode (Cilium loadBalancer.mode). */
export const LB_MODE = { SNAT: 0, DSR: 1, HYBRID: 2 } as const;
/** Per-service forwarding mode (service.cilium.io/forwarding-mode): the node's mode, or one of its own. */
export const FWD_MODE = { DEFAULT: 0, SNAT: 1, DSR: 2 } as const;
/** lb4 results. */
export const NP_PASS = 0;
export const NP_DONE = 1;
/** CB.NAT for a frame delivered to a local backend: rev-NAT index | this bit (NodePort flow). */
export const CB_NAT_NODEPORT = 0x10000;

/** NodePort state and counters of one node. */
export class NodePort {
  /** Packets by path (forwarded to a local backend, SNATed, sent by DSR, …), for status and tests. */
  readonly count = { local: 0, snat: 0, dsr: 0, rev: 0, dsrIngress: 0, dsrReply: 0, reply: 0 };
  private readonly t = new Uint8Array(CT4.SIZE);
  private readonly st = new CtState();
  private readonly key = new Uint8Array(EP_KEY.SIZE);
  private readonly ip6 = new Ipv6View();

  constructor(private readonly dp: Datapath) {}

  /** Does service `revNat` forward a `proto` flow in DSR mode? */
  usesDsr(revNat: number, proto: number): boolean {
    const m = this.dp.lb.fwdMode[revNat]!;
    if (m === FWD_MODE.DSR) return true;
    if (m === FWD_MODE.SNAT) return false;
    const mode = this.dp.cfg.lbMode ?? LB_MODE.SNAT;
    return mode === LB_MODE.DSR || (mode === LB_MODE.HYBRID && proto === IPPROTO_TCP);
  }

  /** nodeport_lb4 for the IPv4 frame bound in eth/ip4 (length-checked). See the header. */
  lb4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, now: number, xdp: boolean): number {
    const dp = this.dp;
    const buf = b.buf;
    const proto = ip4.protocol();
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || ip4.fragOffset() !== 0 || ip4.payloadLen() < (proto === IPPROTO_TCP ? 20 : 8)) return NP_PASS;
    const l4 = ip4.payloadOffset();
    const vip = ip4.dst();
    const vport = get16(buf, l4 + 2);
    const lb = dp.lb;
    const svc = lb.lookupService(vip, vport);
    if (svc < 0) return NP_PASS;
    const so = svc * SVC_VAL.SIZE;
    const flags = lb.maps.services.values[so + SVC_VAL.FLAGS]!;
    const revNat = lb.maps.services.view.getUint16(so + SVC_VAL.REV_NAT, true);
    if ((flags & SVC_F.ROUTABLE) === 0) {
      drop(b, i, DROP.IS_CLUSTER_IP);
      return NP_DONE;
    }
    const client = ip4.src();
    if ((flags & SVC_F.SOURCE_RANGE) !== 0 && !lb.sourceRangeOk(revNat, client)) {
      drop(b, i, DROP.NOT_IN_SRC_RANGE);
      return NP_DONE;
    }
    const up = dp.uplink!;
    const tcpFlags = proto === IPPROTO_TCP ? buf[l4 + 13]! : 0;
    const nowS = Math.floor(now / 1000);
    const be = lb.local(b, i, ip4, l4, tcpFlags, nowS, svc);
    if (be < 0) {
      if (be === DROP.NO_SERVICE && dp.cfg.noBackendReject !== false) {
        b.len[i] = icmp4SendUnreach(b, i, eth, ip4, up.mac, ICMP_PORT_UNREACH);
        b.buf.fill(0, b.off[i]! - VNET_HDR_LEN, b.off[i]!);
        redirect(b, i, b.port);
      } else {
        drop(b, i, be);
      }
      return NP_DONE;
    }
    const beAddr = get32(lb.maps.backends.values, be * BE_VAL.SIZE + BE_VAL.ADDRESS);
    epKey4(this.key, beAddr);
    const ep = dp.lxc.lookup(this.key, 0);
    const cs = dp.ipcache.lookup4(client);
    const clientId = cs >= 0 ? dp.ipcache.identity(cs) : ID.WORLD;
    if (ep >= 0) {
      if (xdp) return NP_PASS;
      lb.dnat(b, i, ip4, l4, proto, be);
      b.meta[i * META_SLOTS + CB.NAT] = revNat | CB_NAT_NODEPORT;
      localDelivery(b, i, dp.lxc, ep, eth, ip4, this.ip6, false, clientId);
      this.count.local++;
      return NP_DONE;
    }
    // A remote backend: DSR or SNAT.
    const dsr = this.usesDsr(revNat, proto);
    const withOpt = dsr && (proto === IPPROTO_UDP || (tcpFlags & TCP_FLAG_SYN) !== 0);
    const geneve = dsr && dp.cfg.dsrDispatch === 'geneve' && dp.tunnel !== null && dp.tunnel.cfg.protocol === 'geneve';
    const limit = this.pathMtu(beAddr) - (withOpt ? (geneve ? DSR_GENEVE_OPT_LEN : DSR_IPV4_OPT_LEN) : 0);
    if (this.tooBig(b, i, ip4, l4, proto, limit)) {
      if (!ip4.dontFrag()) {
        drop(b, i, DROP.FRAG_NEEDED);
      } else {
        b.len[i] = icmp4SendUnreach(b, i, eth, ip4, up.mac, ICMP_FRAG_NEEDED, limit);
        b.buf.fill(0, b.off[i]! - VNET_HDR_LEN, b.off[i]!);
        redirect(b, i, b.port);
      }
      return NP_DONE;
    }
    lb.dnat(b, i, ip4, l4, proto, be);
    if (dsr) {
      if (withOpt && !geneve) {
        if (!dsrOptPush4(b, i, vip, vport)) {
          drop(b, i, DROP.INVALID);
          return NP_DONE;
        }
        // The frame start moved: bind the views again.
        eth.bind(buf, b.off[i]!, b.len[i]!);
        ip4.bind(buf, b.off[i]! + ETH_HLEN, b.len[i]! - ETH_HLEN);
      }
      this.count.dsr++;
      dp.egress.forward4(b, i, eth, ip4, clientId, now, geneve && withOpt ? vip : 0, vport);
      return NP_DONE;
    }
    // SNAT: the conntrack entry the replies find (rev4), then the node's address as source.
    const t = this.t;
    const st = this.st;
    const r = ctTuple4Fill(t, buf, ip4.o, l4, ip4.o + ip4.totalLen() - l4);
    if (r < 0) {
      drop(b, i, r);
      return NP_DONE;
    }
    const ret = ctLookup4(dp.ct, t, CT_EGRESS, tcpFlags, b.len[i]!, nowS, st);
    if (ret === CT_NEW) {
      st.reset();
      st.revNat = revNat;
      st.srcSecId = clientId;
      st.flags = CT_F.NODE_PORT;
      const c = ctCreate4(dp.ct, t, CT_EGRESS, tcpFlags, b.len[i]!, nowS, st);
      if (c < 0) {
        drop(b, i, c);
        return NP_DONE;
      }
    } else if (ret < 0) {
      drop(b, i, ret);
      return NP_DONE;
    }
    const n = dp.snat!.egress(b, i, ip4, up.ip, nowS, true);
    if (n < 0) {
      drop(b, i, n);
      return NP_DONE;
    }
    this.count.snat++;
    dp.egress.forward4(b, i, eth, ip4, LOCAL_NODE_ID, now);
    return NP_DONE;
  }

  /**
   * rev_nodeport_lb4: the reply bound in ip4 has been reverse-SNATed (its
   * destination is the client again); when its conntrack entry is a
   * NodePort one, restore the frontend as source and send it to the
   * client. False when it is not a NodePort reply (left as it is).
   */
  rev4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, now: number): boolean {
    const dp = this.dp;
    const proto = ip4.protocol();
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return false;
    const l4 = ip4.payloadOffset();
    const t = this.t;
    const st = this.st;
    const tcpFlags = ctTuple4Fill(t, b.buf, ip4.o, l4, ip4.o + ip4.totalLen() - l4);
    if (tcpFlags < 0) return false;
    const ret = ctLookup4(dp.ct, t, CT_INGRESS, tcpFlags, b.len[i]!, Math.floor(now / 1000), st);
    if (ret !== CT_REPLY || (st.flags & CT_F.NODE_PORT) === 0 || st.revNat === 0) return false;
    if (!dp.lb.revNat(b, i, ip4, l4, proto, st.revNat)) return false;
    this.count.rev++;
    dp.egress.forward4(b, i, eth, ip4, ID.HOST, now);
    return true;
  }

  /**
   * nodeport_dsr_ingress_ipv4: the TCP/UDP packet bound in ip4, for a
   * local endpoint, carries the service `addr`:`port` of a DSR flow.
   * Creates (or refreshes) the reply-direction conntrack entry and the SNAT
   * OUT entry the reply will be translated with.
   */
  dsrIngress4(b: FrameBatch, i: number, ip4: Ipv4View, now: number, addr: number, port: number): void {
    const dp = this.dp;
    const proto = ip4.protocol();
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || dp.snat === null) return;
    const l4 = ip4.payloadOffset();
    const t = this.t;
    const st = this.st;
    const tcpFlags = ctTuple4Fill(t, b.buf, ip4.o, l4, ip4.o + ip4.totalLen() - l4);
    if (tcpFlags < 0) return;
    ctTuple4Reverse(t);
    const nowS = Math.floor(now / 1000);
    const ret = ctLookup4(dp.ct, t, CT_EGRESS, 0, b.len[i]!, nowS, st);
    if (ret === CT_NEW) {
      st.reset();
      st.flags = CT_F.DSR_INTERNAL;
      st.srcSecId = ID.WORLD;
      if (ctCreate4(dp.ct, t, CT_EGRESS, 0, b.len[i]!, nowS, st) < 0) return;
    }
    const buf = b.buf;
    dp.snat.dsrCreate(ip4.dst(), ip4.src(), get16(buf, l4 + 2), get16(buf, l4), proto, addr, port, nowS);
    this.count.dsrIngress++;
  }

  /**
   * A local backend's reply at from-container (after its conntrack lookup
   * said CT_REPLY with entry flags `ctFlags` and `revNat`): a DSR reply
   * gets the service address from its SNAT entry, a NodePort reply its
   * frontend back; either goes straight to the client, never masqueraded.
   * False when the reply is neither (left as it is).
   */
  reply4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, now: number, ctFlags: number, revNat: number, identity: number): boolean {
    const dp = this.dp;
    const proto = ip4.protocol();
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return false;
    if ((ctFlags & CT_F.DSR_INTERNAL) !== 0) {
      if (dp.snat === null || !dp.snat.dsrRevNat(b, i, ip4)) return false;
      this.count.dsrReply++;
    } else if ((ctFlags & CT_F.NODE_PORT) !== 0 && revNat !== 0) {
      if (!dp.lb.revNat(b, i, ip4, ip4.payloadOffset(), proto, revNat)) return false;
      this.count.reply++;
    } else {
      return false;
    }
    dp.egress.forward4(b, i, eth, ip4, identity, now);
    return true;
  }

  /** MTU of the path to backend `addr`: the tunnel's inner MTU when it lives behind another node in tunnel mode. */
  private pathMtu(addr: number): number {
    const dp = this.dp;
    const up = dp.uplink!;
    if (dp.tunnel === null) return up.mtu;
    const s = dp.ipcache.lookup4(addr);
    let tep = s >= 0 ? dp.ipcache.tunnelEndpoint(s) : 0;
    if (tep === 0) tep = dp.tunnelMap.lookup4(addr);
    return tep !== 0 && tep !== up.ip ? up.mtu - ENCAP_OVERHEAD : up.mtu;
  }

  /**
   * Is the IPv4 packet bound in ip4 bigger than `limit`? A GSO super-frame
   * is judged by the segments the uplink will cut: headers + gso_size.
   */
  private tooBig(b: FrameBatch, i: number, ip4: Ipv4View, l4: number, proto: number, limit: number): boolean {
    const h = b.off[i]! - VNET_HDR_LEN;
    const buf = b.buf;
    if (buf[h + 1] === 0) return ip4.totalLen() > limit;
    const gso = buf[h + 4]! | (buf[h + 5]! << 8);
    const l4h = proto === IPPROTO_TCP ? (buf[l4 + 12]! >> 4) * 4 : 8;
    return l4 - ip4.o + l4h + gso > limit;
  }
}

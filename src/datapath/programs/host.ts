/**
 * bpf_host (and bpf_overlay's receive side): the programs on the uplink and
 * on tapestry_host (Cilium bpf/bpf_host.c, bpf/bpf_overlay.c).
 *
 *   from-netdev (uplink ingress, AF_PACKET; GRO before delivery, lib/gro.ts)
 *     ARP for the node's address   -> answer with the uplink MAC; learn the asker
 *     ARP reply to the node        -> learn the neighbour
 *     tunnel packet to the node    -> from-overlay: decapsulate, identity from
 *                                     the VNI, deliver to the endpoint or the stack
 *     to the node, masqueraded     -> reverse SNAT, deliver to the endpoint
 *     to a local pod (native mode) -> deliver, identity from the ipcache
 *     anything else for the node   -> the stack (tapestry_host)
 *   from-host (tapestry_host ingress: what the node's stack sends)
 *     ARP / IPv6 NS                -> answer for everything but the stack's own
 *                                     addresses (it routes pods and the underlay here)
 *     to a local endpoint          -> deliver with identity host
 *     elsewhere                    -> NodeEgress (tunnel, native, uplink)
 *
 * Cilium runs from-overlay on the tunnel device the kernel decapsulated
 * into; here the uplink sees the UDP packets itself and decapsulates them
 * in place, so from-overlay is a step of from-netdev.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { CB, META_SLOTS } from '../../packet/batch.ts';
import { BATCH_MAX } from '../../packet/layout.ts';
import { TcpGro } from '../lib/gro.ts';
import { drop, redirect, verdict } from '../../engine/program.ts';
import type { Program } from '../../engine/program.ts';
import { DIR, TC } from '../../engine/verdict.ts';
import { ArpView } from '../../wire/arp.ts';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthernetView } from '../../wire/ethernet.ts';
import { Ipv4View } from '../../wire/ipv4.ts';
import { Ipv6View } from '../../wire/ipv6.ts';
import { Ipv6ExtInfo, ipv6WalkExt } from '../../wire/ipv6-ext.ts';
import { Icmp6View } from '../../wire/icmp6.ts';
import { IPPROTO_ICMPV6 } from '../../wire/ip.ts';
import { NDISC_NEIGHBOUR_SOLICITATION, NDP_NA_OVERRIDE, NDP_NA_SOLICITED } from '../../wire/ndp.ts';
import { ipv6Equal } from '../../wire/addr.ts';
import { DROP } from '../lib/drop-reasons.ts';
import { EP_KEY, epKey4, epKey6 } from '../lib/endpoints-map.ts';
import { arpIsEthIpv4, arpPrepareResponse, arpValidate } from '../lib/arp.ts';
import { icmp6SendNdiscAdv } from '../lib/icmp6.ts';
import { localDelivery } from '../lib/local-delivery.ts';
import { ID } from '../lib/identity.ts';
import { NP_PASS } from '../lib/nodeport.ts';
import { DsrInfo, dsrOptFind4 } from '../lib/dsr.ts';
import type { Datapath } from '../datapath.ts';

/** The host-side programs, for attaching to ports. */
export interface HostPrograms {
  fromNetdev: Program;
  fromHost: Program;
}

const ARPOP_REQUEST = 1;

/** Build from-netdev and from-host over `dp`'s maps. */
export function installHostPrograms(dp: Datapath): HostPrograms {
  const eth = new EthernetView();
  const arp = new ArpView();
  const ip4 = new Ipv4View();
  const ip6 = new Ipv6View();
  const ext = new Ipv6ExtInfo();
  const icmp6 = new Icmp6View();
  const key4 = new Uint8Array(EP_KEY.SIZE);
  const key6 = new Uint8Array(EP_KEY.SIZE);
  const lxc = dp.lxc;
  const np = dp.nodePort;
  const dsr = new DsrInfo();

  /** Identity of an IPv4 source from the ipcache (world when unknown). */
  function srcIdentity4(ip: number): number {
    const s = dp.ipcache.lookup4(ip);
    return s >= 0 ? dp.ipcache.identity(s) : ID.WORLD;
  }

  /** IPv4 frame i bound in eth/ip4: deliver to a local endpoint; false when the destination is not one. */
  function deliver4(b: FrameBatch, i: number, identity: number): boolean {
    epKey4(key4, ip4.dst());
    const slot = lxc.lookup(key4, 0);
    if (slot < 0) return false;
    localDelivery(b, i, lxc, slot, eth, ip4, ip6, false, identity);
    return true;
  }

  function deliver6(b: FrameBatch, i: number, identity: number): boolean {
    epKey6(key6, b.buf, ip6.dstOff());
    const slot = lxc.lookup(key6, 0);
    if (slot < 0) return false;
    localDelivery(b, i, lxc, slot, eth, ip4, ip6, true, identity);
    return true;
  }

  /** ARP on the uplink: answer for the node, learn neighbours, ignore the rest of the segment. */
  function netdevArp(b: FrameBatch, i: number): void {
    const up = dp.uplink!;
    const o = b.off[i]!;
    arp.bind(b.buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
    if (!arp.checkLen() || !arpIsEthIpv4(arp)) return drop(b, i, DROP.INVALID);
    const tpa = arp.tpa();
    // The node's address, and the LoadBalancer IPs this node announces (L2 announcement).
    const forUs = tpa === up.ip || (dp.announced.size !== 0 && dp.announced.has(tpa));
    const op = arp.oper();
    // Learn from anything addressed to the node, and refresh known neighbours from gratuitous ARP.
    if (forUs || dp.neigh.lookup(arp.spa()) >= 0) dp.neigh.learn(arp.spa(), b.buf, arp.shaOff(), b.now);
    if (op === ARPOP_REQUEST && forUs) {
      arpPrepareResponse(eth, arp, up.mac);
      redirect(b, i, b.port);
      return;
    }
    verdict(b, i, TC.STOLEN);
  }

  /** Bind eth/ip4 to decapsulated frame i; false when it is not a well-formed IPv4 frame. */
  function bindInner4(b: FrameBatch, i: number): boolean {
    const o = b.off[i]!;
    eth.bind(b.buf, o, b.len[i]!);
    if (!eth.checkLen() || eth.ethertype() !== ETH_P_IP) return false;
    ip4.bind(b.buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
    return ip4.checkLen();
  }

  /**
   * The decapsulated IPv4 frame i (bound): for the node's address, NodePort
   * (a pod of another node reaching a NodePort here, or a SNAT-mode reply
   * from a remote backend); for a local endpoint, DSR information from the
   * Geneve option (dsrAddr ≠ 0) or the IPv4 option. True when the frame
   * is handled (verdict set), false to deliver it.
   */
  function overlay4(b: FrameBatch, i: number, now: number, dsrAddr: number, dsrPort: number): boolean {
    const up = dp.uplink!;
    if (ip4.dst() === up.ip) {
      if (np.lb4(b, i, eth, ip4, b.now, false) !== NP_PASS) return true;
      const snat = dp.snat;
      if (snat !== null) {
        const r = snat.ingress(b, i, ip4, up.ip, now);
        if (r < 0) {
          drop(b, i, r);
          return true;
        }
        if (r > 0) return np.rev4(b, i, eth, ip4, b.now);
      }
      return false;
    }
    if (dsrAddr !== 0) np.dsrIngress4(b, i, ip4, b.now, dsrAddr, dsrPort);
    else if (ip4.ihl() > 5 && dsrOptFind4(b.buf, ip4.o, dsr)) np.dsrIngress4(b, i, ip4, b.now, dsr.addr, dsr.port);
    return false;
  }

  /** Frames of the current batch waiting for GRO and delivery (each with its source identity in CB.SRC_LABEL). */
  const pending = new Uint16Array(BATCH_MAX);
  const gro = new TcpGro();

  /** After decapsulation or reverse SNAT: to a local endpoint, else to the stack. */
  function deliver(b: FrameBatch, i: number): void {
    const buf = b.buf;
    const o = b.off[i]!;
    const identity = b.meta[i * META_SLOTS + CB.SRC_LABEL]!;
    eth.bind(buf, o, b.len[i]!);
    const et = eth.ethertype();
    if (et === ETH_P_IP) {
      ip4.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
      if (!ip4.checkLen()) return drop(b, i, DROP.INVALID);
      // World arrives as WORLD (2) for both families (Cilium maps world-ipv4/ipv6 back by ethertype).
      if (!deliver4(b, i, identity)) verdict(b, i, TC.OK);
    } else if (et === ETH_P_IPV6) {
      ip6.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
      if (!ip6.checkLen()) return drop(b, i, DROP.INVALID);
      if (!deliver6(b, i, identity)) verdict(b, i, TC.OK);
    } else {
      drop(b, i, DROP.UNKNOWN_L3);
    }
  }

  /**
   * cil_from_netdev in three passes over the batch: classify (ARP, tunnel
   * decapsulation = from-overlay, reverse SNAT, native routing), GRO over
   * what is left for delivery, then delivery.
   */
  const fromNetdev: Program = {
    name: 'cil_from_netdev',
    run(b, vec, n) {
      const up = dp.uplink!;
      const buf = b.buf;
      const now = Math.floor(b.now / 1000);
      let m = 0;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        b.dir[i] = DIR.INGRESS;
        const o = b.off[i]!;
        eth.bind(buf, o, b.len[i]!);
        if (!eth.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const et = eth.ethertype();
        if (et === ETH_P_ARP) {
          netdevArp(b, i);
          continue;
        }
        if (et !== ETH_P_IP) {
          // No IPv6 on the underlay: nothing for the node here.
          verdict(b, i, TC.STOLEN);
          continue;
        }
        ip4.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
        if (!ip4.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const lbl = i * META_SLOTS + CB.SRC_LABEL;
        const dst = ip4.dst();
        if (dst === up.ip) {
          const tun = dp.tunnel;
          if (tun !== null && tun.isTunnel(buf, ip4.o, ip4.n)) {
            const id = tun.decap(b, i);
            if (id < 0) {
              drop(b, i, id);
              continue;
            }
            b.meta[lbl] = id;
            if (dp.engine.capture !== null) dp.engine.capture.decap(b, i);
            if (dp.events.traceEnabled) dp.traceOverlay(b, i);
            // from-overlay: NodePort first (pods of other nodes, SNAT replies), then DSR, then delivery.
            if (bindInner4(b, i) && overlay4(b, i, now, tun.dsr.addr, tun.dsr.port)) continue;
            pending[m++] = i;
            continue;
          }
          if (np.lb4(b, i, eth, ip4, b.now, false) !== NP_PASS) continue;
          const snat = dp.snat;
          if (snat !== null) {
            const r = snat.ingress(b, i, ip4, up.ip, now);
            if (r < 0) {
              drop(b, i, r);
              continue;
            }
            if (r > 0 && ip4.dst() !== up.ip) {
              if (np.rev4(b, i, eth, ip4, b.now)) continue;
              b.meta[lbl] = srcIdentity4(ip4.src());
              pending[m++] = i;
              continue;
            }
          }
          verdict(b, i, TC.OK);
          continue;
        }
        // LoadBalancer IPs and externalIPs routed or ARPed to this node; a ClusterIP from outside is refused.
        if (np.lb4(b, i, eth, ip4, b.now, false) !== NP_PASS) continue;
        if (dp.cfg.routingMode === 'native') {
          epKey4(key4, dst);
          if (lxc.lookup(key4, 0) >= 0) {
            b.meta[lbl] = srcIdentity4(ip4.src());
            if (ip4.ihl() > 5 && dsrOptFind4(buf, ip4.o, dsr)) np.dsrIngress4(b, i, ip4, b.now, dsr.addr, dsr.port);
            pending[m++] = i;
            continue;
          }
        }
        // Not for this node: a NIC without promiscuous mode would not have passed it up.
        verdict(b, i, TC.STOLEN);
      }
      if (m === 0) return;
      gro.begin();
      let d = 0;
      for (let k = 0; k < m; k++) {
        const i = pending[k]!;
        if (gro.offer(b, i)) verdict(b, i, TC.STOLEN);
        else pending[d++] = i;
      }
      gro.finish(b);
      for (let k = 0; k < d; k++) deliver(b, pending[k]!);
    },
  };

  /** ARP from the node's stack: every address but its own is behind Tapestry. */
  function hostArp(b: FrameBatch, i: number): void {
    const host = dp.host!;
    const o = b.off[i]!;
    arp.bind(b.buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
    if (!arp.checkLen()) return drop(b, i, DROP.INVALID);
    if (!arpValidate(arp) || arp.oper() !== ARPOP_REQUEST || arp.tpa() === arp.spa() || arp.tpa() === dp.uplink?.ip) {
      verdict(b, i, TC.STOLEN);
      return;
    }
    arpPrepareResponse(eth, arp, host.mac);
    redirect(b, i, b.port);
  }

  /** NS from the node's stack for an endpoint's IPv6 address: answer with Tapestry's MAC. */
  function hostNs(b: FrameBatch, i: number): boolean {
    const router = dp.cfg.routerIPv6;
    if (router === null) return false;
    const proto = ipv6WalkExt(b.buf, ip6.o, ip6.n, ext);
    if (proto !== IPPROTO_ICMPV6 || !ext.hasL4() || b.buf[ext.off] !== NDISC_NEIGHBOUR_SOLICITATION) return false;
    icmp6.bind(b.buf, ext.off, ip6.o + ip6.headerLen() + ip6.payloadLen() - ext.off);
    if (!icmp6.ndpCheckLen()) return false;
    const t = icmp6.targetOff();
    if (ipv6Equal(b.buf, t, router, 0)) return false;
    b.len[i] = icmp6SendNdiscAdv(eth, ip6, icmp6, dp.host!.mac, b.buf.slice(t, t + 16), NDP_NA_SOLICITED | NDP_NA_OVERRIDE);
    redirect(b, i, b.port);
    return true;
  }

  const fromHost: Program = {
    name: 'cil_from_host',
    run(b, vec, n) {
      const buf = b.buf;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        b.dir[i] = DIR.EGRESS;
        const o = b.off[i]!;
        eth.bind(buf, o, b.len[i]!);
        if (!eth.checkLen()) {
          drop(b, i, DROP.INVALID);
          continue;
        }
        const et = eth.ethertype();
        if (et === ETH_P_ARP) {
          hostArp(b, i);
          continue;
        }
        if (et === ETH_P_IP) {
          ip4.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
          if (!ip4.checkLen()) {
            drop(b, i, DROP.INVALID);
            continue;
          }
          if (!deliver4(b, i, ID.HOST)) dp.egress.route4(b, i, eth, ip4, ID.HOST, false, b.now);
          continue;
        }
        if (et === ETH_P_IPV6) {
          ip6.bind(buf, o + ETH_HLEN, b.len[i]! - ETH_HLEN);
          if (!ip6.checkLen()) {
            drop(b, i, DROP.INVALID);
            continue;
          }
          if (ip6.isDstMulticast()) {
            if (!hostNs(b, i)) verdict(b, i, TC.STOLEN);
            continue;
          }
          if (!deliver6(b, i, ID.HOST)) dp.egress.route6(b, i, ip6, ID.HOST, false, b.now);
          continue;
        }
        verdict(b, i, TC.STOLEN);
      }
    },
  };

  return { fromNetdev, fromHost };
}

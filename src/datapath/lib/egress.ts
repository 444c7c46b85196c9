/**
 * Leaving the node: what happens to a frame whose destination is not a
 * local endpoint (Cilium: encap_and_redirect_lxc / fib_redirect in
 * bpf_lxc, the to-netdev masquerade in bpf_host, redirect_neigh).
 *
 * API:
 *   new NodeEgress(dp)
 *   e.route4(b, i, eth, ip4, srcIdentity, fromEndpoint, now)   sets frame i's verdict
 *   e.route6(b, i, ip6, srcIdentity, fromEndpoint, now)
 *   e.forward4(b, i, eth, ip4, identity, now, dsrAddr?, dsrPort?)   NodePort forwarding, never masqueraded
 *   e.xmit(b, i, nextHop, now)                                 to the uplink via the neighbour table
 *   e.arpRequest(b, i, ip)                                     turn frame i into an ARP request
 *
 * Order of decisions for IPv4 (bpf_lxc's, with BPF host routing):
 *   1. ipcache (longest prefix) -> identity + tunnel endpoint; tunnel map as fallback
 *   2. behind another node: tunnel mode -> MTU check, encap, uplink to the endpoint;
 *                           native mode -> routed unencapsulated to that node
 *      (the next hop is the node itself on the uplink's subnet, else the gateway)
 *   3. the host (identity host) or no uplink -> the stack (tapestry_host)
 *   4. elsewhere: masquerade unless the destination is in the cluster's pod
 *      CIDRs (SNAT exclusion), then routed to the destination on the
 *      underlay subnet or to the gateway
 * The TTL is decremented where the packet is routed (2-native, 4), not
 * where it is encapsulated, as in Cilium.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { redirect, drop, verdict } from '../../engine/program.ts';
import { TC } from '../../engine/verdict.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_ARP, ETH_P_IP, EthernetView } from '../../wire/ethernet.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import type { Ipv6View } from '../../wire/ipv6.ts';
import { set16, set32 } from '../../wire/bytes.ts';
import { ICMP_FRAG_NEEDED } from '../../wire/icmp4.ts';
import { DROP } from './drop-reasons.ts';
import { ID, LOCAL_NODE_ID } from './identity.ts';
import { icmp4SendUnreach } from './icmp4.ts';
import { icmp6SendPktTooBig } from './icmp6.ts';
import type { Datapath } from '../datapath.ts';

/** The uplink, as the datapath sees it. */
export interface UplinkState {
  /** Engine port of the uplink. */
  port: number;
  /** Node address (u32), its subnet mask length, gateway (0 = none). */
  ip: number;
  prefixLen: number;
  gateway: number;
  mac: Uint8Array;
  mtu: number;
}

/** Routing out of the node. */
export class NodeEgress {
  private readonly bcast = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  private readonly eth = new EthernetView();
  /** Outer destination MAC before xmit() fills in the next hop's. */
  private readonly noMac = new Uint8Array(6);

  constructor(private readonly dp: Datapath) {}

  /** IPv4 frame i (eth/ip4 bound), not for a local endpoint. */
  route4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, srcIdentity: number, fromEndpoint: boolean, now: number): void {
    const dp = this.dp;
    const up = dp.uplink;
    if (up === null) {
      verdict(b, i, TC.OK);
      return;
    }
    const dst = ip4.dst();
    const slot = dp.ipcache.lookup4(dst);
    let tep = slot >= 0 ? dp.ipcache.tunnelEndpoint(slot) : 0;
    const dstId = slot >= 0 ? dp.ipcache.identity(slot) : ID.WORLD;
    if (tep === 0 && dstId !== ID.HOST && dstId !== ID.REMOTE_NODE) tep = dp.tunnelMap.lookup4(dst);
    // The node's own traffic to another node goes straight over the underlay; pods' goes through the tunnel.
    if (tep !== 0 && tep !== up.ip && (fromEndpoint || dstId !== ID.REMOTE_NODE)) {
      if (dp.cfg.routingMode === 'native') {
        this.routed4(b, i, eth, ip4, this.nextHop(tep), now);
        return;
      }
      const tooBig = this.checkMtu4(b, i, eth, ip4, up.mtu - 50);
      if (tooBig !== 0) {
        if (tooBig < 0) drop(b, i, tooBig);
        return;
      }
      this.encapXmit(b, i, tep, fromEndpoint ? srcIdentity : LOCAL_NODE_ID, now);
      return;
    }
    if (dstId === ID.HOST || dst === up.ip) {
      verdict(b, i, TC.OK);
      return;
    }
    // Leaving the cluster.
    const masq = dp.masq;
    if (masq !== null && dp.cfg.masquerade && !dp.snatExcluded(dst)) {
      if (fromEndpoint || ip4.src() === up.ip) {
        const r = masq.egress(b, i, ip4, up.ip, Math.floor(now / 1000), !fromEndpoint);
        if (r < 0) {
          drop(b, i, r);
          return;
        }
      }
    }
    this.routed4(b, i, eth, ip4, this.nextHop(dst), now);
  }

  /**
   * A translated NodePort frame (or its reply) to wherever its destination
   * lives: through the tunnel to another node's pod (`identity` in the
   * VNI; with Geneve, the DSR option when dsrAddr ≠ 0), routed natively
   * there, to the stack for the node itself, else routed on the underlay.
   * Never masqueraded: the NodePort code has translated it already. The
   * MTU was checked by the caller.
   */
  forward4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, identity: number, now: number, dsrAddr = 0, dsrPort = 0): void {
    const dp = this.dp;
    const up = dp.uplink!;
    const dst = ip4.dst();
    const slot = dp.ipcache.lookup4(dst);
    let tep = slot >= 0 ? dp.ipcache.tunnelEndpoint(slot) : 0;
    const dstId = slot >= 0 ? dp.ipcache.identity(slot) : ID.WORLD;
    if (tep === 0 && dstId !== ID.HOST && dstId !== ID.REMOTE_NODE) tep = dp.tunnelMap.lookup4(dst);
    if (tep !== 0 && tep !== up.ip && dstId !== ID.REMOTE_NODE) {
      if (dp.cfg.routingMode === 'native') this.routed4(b, i, eth, ip4, this.nextHop(tep), now);
      else this.encapXmit(b, i, tep, identity, now, dsrAddr, dsrPort);
      return;
    }
    if (dstId === ID.HOST || dst === up.ip) {
      verdict(b, i, TC.OK);
      return;
    }
    this.routed4(b, i, eth, ip4, this.nextHop(dst), now);
  }

  /** Next hop toward `dst` on the underlay: dst itself on the uplink's subnet, else the gateway (0: none). */
  private nextHop(dst: number): number {
    const up = this.dp.uplink!;
    return ((dst ^ up.ip) >>> (32 - up.prefixLen)) === 0 ? dst : up.gateway;
  }

  /** IPv6 frame i, not for a local endpoint: tunnel to the owning node, else the stack. */
  route6(b: FrameBatch, i: number, ip6: Ipv6View, srcIdentity: number, fromEndpoint: boolean, now: number): void {
    const dp = this.dp;
    const up = dp.uplink;
    if (up === null || dp.cfg.routingMode === 'native') {
      // Native routing needs an IPv6 underlay, which Tapestry's uplink does not have.
      verdict(b, i, TC.OK);
      return;
    }
    const slot = dp.ipcache.lookup6(b.buf, ip6.dstOff());
    const tep = slot >= 0 ? dp.ipcache.tunnelEndpoint(slot) : 0;
    if (tep === 0 || tep === up.ip) {
      verdict(b, i, TC.OK);
      return;
    }
    const h = b.off[i]! - VNET_HDR_LEN;
    if (b.buf[h + 1] === 0 && b.len[i]! - ETH_HLEN > up.mtu - 50) {
      // Too big for the tunnel: IPv6 never fragments in flight, the sender learns the MTU (RFC 8201).
      const ep = dp.endpointByPort[b.port];
      const router = dp.cfg.routerIPv6;
      if (ep === undefined || router === null) {
        drop(b, i, DROP.FRAG_NEEDED);
        return;
      }
      this.eth.bind(b.buf, b.off[i]!, b.len[i]!);
      b.len[i] = icmp6SendPktTooBig(b, i, this.eth, ip6, ep.hostMac, router, up.mtu - 50);
      redirect(b, i, b.port);
      return;
    }
    this.encapXmit(b, i, tep, fromEndpoint ? srcIdentity : LOCAL_NODE_ID, now);
  }

  /** Routed (not encapsulated) IPv4 to `nextHop` on the underlay (0: no route). */
  private routed4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, nextHop: number, now: number): void {
    if (nextHop === 0) {
      drop(b, i, DROP.NO_FIB);
      return;
    }
    if (ip4.ttl() <= 1) {
      drop(b, i, DROP.TTL_EXCEEDED);
      return;
    }
    ip4.decTtl();
    void eth;
    this.xmit(b, i, nextHop, now);
  }

  /**
   * Encapsulate frame i to `tep` and send it like any routed frame: to the
   * next hop toward the tunnel endpoint (the endpoint itself on the
   * uplink's subnet, else the gateway), resolved now or held for ARP.
   */
  private encapXmit(b: FrameBatch, i: number, tep: number, identity: number, now: number, dsrAddr = 0, dsrPort = 0): void {
    const dp = this.dp;
    const hop = this.nextHop(tep);
    if (hop === 0) {
      drop(b, i, DROP.NO_FIB);
      return;
    }
    if (!dp.tunnel!.encap(b, i, tep, identity, this.noMac, 0, dsrAddr, dsrPort)) {
      drop(b, i, DROP.WRITE_ERROR);
      return;
    }
    this.xmit(b, i, hop, now);
  }

  /**
   * Frame i leaves on the uplink to `nextHop`: Ethernet addresses from the
   * neighbour table, or held while an ARP request goes out.
   */
  xmit(b: FrameBatch, i: number, nextHop: number, now: number): void {
    const dp = this.dp;
    const up = dp.uplink!;
    const n = dp.neigh.lookup(nextHop);
    if (n < 0) {
      this.hold(b, i, nextHop, now);
      return;
    }
    const buf = b.buf;
    const o = b.off[i]!;
    const macs = dp.neigh.macs;
    for (let j = 0; j < 6; j++) {
      buf[o + j] = macs[n + j]!;
      buf[o + 6 + j] = up.mac[j]!;
    }
    redirect(b, i, up.port);
  }

  /**
   * Keep a copy of frame i (with its virtio-net header) until `ip`
   * resolves, to be encapsulated with `identity` then (-1: sent as is;
   * tunnel frames are encapsulated before they are held, since the next
   * hop is not always the tunnel endpoint); frame i itself becomes the
   * ARP request, or is consumed.
   */
  private hold(b: FrameBatch, i: number, ip: number, now: number): void {
    const o = b.off[i]!;
    const copy = b.buf.slice(o - VNET_HDR_LEN, o + b.len[i]!);
    if (this.dp.neigh.hold(ip, copy, now)) this.arpRequest(b, i, ip);
    else verdict(b, i, TC.STOLEN);
  }

  /** Rewrite frame i into "who-has ip, tell <node>" and send it out of the uplink. */
  arpRequest(b: FrameBatch, i: number, ip: number): void {
    const up = this.dp.uplink!;
    const buf = b.buf;
    const o = b.off[i]!;
    buf.set(this.bcast, o);
    buf.set(up.mac, o + 6);
    set16(buf, o + 12, ETH_P_ARP);
    const a = o + ETH_HLEN;
    set16(buf, a, 1);
    set16(buf, a + 2, ETH_P_IP);
    buf[a + 4] = 6;
    buf[a + 5] = 4;
    set16(buf, a + 6, 1);
    buf.set(up.mac, a + 8);
    set32(buf, a + 14, up.ip);
    buf.fill(0, a + 18, a + 24);
    set32(buf, a + 24, ip);
    b.len[i] = ETH_HLEN + 28;
    buf.fill(0, o - VNET_HDR_LEN, o);
    redirect(b, i, up.port);
  }

  /**
   * Too big for the tunnel: with DF answer ICMP fragmentation needed (from
   * the pod's router, with the tunnel MTU), without DF drop with 136.
   * Returns 0 when it fits, 1 when answered, or a DROP code. GSO frames are
   * cut to their gso_size at the uplink and always fit.
   */
  private checkMtu4(b: FrameBatch, i: number, eth: EthernetView, ip4: Ipv4View, mtu: number): number {
    if (ip4.totalLen() <= mtu || b.buf[b.off[i]! - VNET_HDR_LEN + 1] !== 0) return 0;
    if (!ip4.dontFrag()) return DROP.FRAG_NEEDED;
    const ep = this.dp.endpointByPort[b.port];
    const mac = ep?.hostMac ?? this.dp.uplink!.mac;
    const router = this.dp.cfg.routerIPv4;
    b.len[i] = icmp4SendUnreach(b, i, eth, ip4, mac, ICMP_FRAG_NEEDED, mtu, router);
    redirect(b, i, b.port);
    return 1;
  }
}

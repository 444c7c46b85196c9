/**
 * Tunnel encapsulation and decapsulation, VXLAN or Geneve over IPv4 (Cilium
 * bpf/lib/encap.h, bpf/lib/overlay.h; the kernel's vxlan/geneve devices do
 * the wire work there, Tapestry does it here).
 *
 * API:
 *   new Tunnel({ protocol, port, nodeIP, mac })      this node's tunnel settings
 *   t.encap(b, i, endpoint, identity, dstMac, off, dsrAddr?, dsrPort?) -> bool
 *                                                    push outer headers in front of frame i (Geneve:
 *                                                    with Cilium's DSR option when dsrAddr ≠ 0)
 *   t.isTunnel(buf, ipOff) -> bool                   outer IPv4 frame is our tunnel's UDP
 *   t.decap(b, i) -> identity | DROP                  strip outer headers, return the VNI's identity;
 *                                                    t.dsr holds a Geneve DSR option's service (or 0)
 *   flowSourcePort(buf, ipOff) -> port               outer UDP source port from the inner flow
 *
 *   +---------+----------+---------+--------------------+-------------------+
 *   | eth 14  | IPv4 20  | UDP 8   | VXLAN 8 / Geneve 8 | inner eth + IP …  |
 *   +---------+----------+---------+--------------------+-------------------+
 *   |<------------------ ENCAP_OVERHEAD = 50 ------------>|
 *
 * The VNI carries the source security identity (identity << 8 on the wire,
 * i.e. the 24-bit VNI field is the identity). The outer UDP source port is a
 * hash of the inner flow in 32768..60999, as the kernel's udp_flow_src_port
 * picks it, so ECMP on the underlay keeps a flow on one path; the outer UDP
 * checksum is 0 (allowed over IPv4, the kernel's vxlan default).
 *
 * Offloads: frame i's virtio-net header moves with it (FrameBatch.push) and
 * its csum_start / hdr_len grow by 50, so a partial inner checksum still
 * points at the inner L4 header; a GSO super-frame stays one frame here and
 * is cut into wire-sized frames at the uplink (see gso.ts).
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6 } from '../../wire/ethernet.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { ipv4HdrCsumFill } from '../../wire/checksum.ts';
import { get16, get32, set16, set32 } from '../../wire/bytes.ts';
import { VXLAN_F_VNI } from '../../wire/vxlan.ts';
import { GENEVE_F_CRITICAL } from '../../wire/geneve.ts';
import { jhash3Words } from './jhash.ts';
import { DROP } from './drop-reasons.ts';
import { DSR_GENEVE_OPT_LEN, DsrInfo, genevePutDsrOpt4, geneveReadOpts } from './dsr.ts';

/** Outer Ethernet + IPv4 + UDP + VXLAN/Geneve base header. */
export const ENCAP_OVERHEAD = 50;
const OUTER_IP = ETH_HLEN;
const OUTER_UDP = OUTER_IP + 20;
const OUTER_TUN = OUTER_UDP + 8;
/** Transparent Ethernet bridging: Geneve's protocol type for an inner Ethernet frame. */
const ETH_P_TEB = 0x6558;
/** Kernel's default ephemeral range, which udp_flow_src_port spreads over. */
const SPORT_MIN = 32768;
const SPORT_MAX = 61000;

export type TunnelProtocol = 'vxlan' | 'geneve';

/** This node's end of the tunnel. */
export interface TunnelConfig {
  protocol: TunnelProtocol;
  /** UDP destination port (8472 VXLAN, 6081 Geneve by default). */
  port: number;
  /** The node's underlay address, u32 (outer source). */
  nodeIP: number;
  /** The uplink's MAC (outer source). */
  mac: Uint8Array;
}

/** Encapsulation and decapsulation for one node. */
export class Tunnel {
  private ipId = 0;
  /** Frames decapsulated, encapsulated, and refused on decap. */
  encapped = 0;
  decapped = 0;
  /** The DSR service of the last decap()ed frame (Geneve option; 0 when absent). */
  readonly dsr = new DsrInfo();

  constructor(readonly cfg: TunnelConfig) {}

  /**
   * Put frame i inside a tunnel packet to `endpoint` (u32) carrying
   * `identity` in the VNI, sent to `dstMac` (6 bytes at dstMacOff). The
   * inner frame is left as it is. False when there is no headroom.
   */
  encap(b: FrameBatch, i: number, endpoint: number, identity: number, dstMac: Uint8Array, dstMacOff: number, dsrAddr = 0, dsrPort = 0): boolean {
    const sport = flowSourcePort(b.buf, b.off[i]! + ETH_HLEN, get16(b.buf, b.off[i]! + 12));
    const opt = dsrAddr !== 0 && this.cfg.protocol === 'geneve' ? DSR_GENEVE_OPT_LEN : 0;
    const overhead = ENCAP_OVERHEAD + opt;
    if (!b.push(i, overhead)) return false;
    const buf = b.buf;
    const o = b.off[i]!;
    const len = b.len[i]!;
    const c = this.cfg;
    // Outer Ethernet.
    for (let j = 0; j < 6; j++) {
      buf[o + j] = dstMac[dstMacOff + j]!;
      buf[o + 6 + j] = c.mac[j]!;
    }
    set16(buf, o + 12, ETH_P_IP);
    // Outer IPv4: no options, no DF (the kernel's vxlan default), TTL 64.
    const ip = o + OUTER_IP;
    buf[ip] = 0x45;
    buf[ip + 1] = 0;
    set16(buf, ip + 2, Math.min(len - ETH_HLEN, 0xffff));
    set16(buf, ip + 4, (this.ipId = (this.ipId + 1) & 0xffff));
    set16(buf, ip + 6, 0);
    buf[ip + 8] = 64;
    buf[ip + 9] = IPPROTO_UDP;
    set32(buf, ip + 12, c.nodeIP);
    set32(buf, ip + 16, endpoint);
    ipv4HdrCsumFill(buf, ip);
    // UDP, checksum 0.
    const u = o + OUTER_UDP;
    set16(buf, u, sport);
    set16(buf, u + 2, c.port);
    set16(buf, u + 4, Math.min(len - OUTER_UDP, 0xffff));
    set16(buf, u + 6, 0);
    // VXLAN: I flag + VNI; Geneve: version 0, TEB, the DSR option (critical) if any.
    const t = o + OUTER_TUN;
    if (c.protocol === 'vxlan') {
      set32(buf, t, VXLAN_F_VNI << 24);
    } else {
      buf[t] = opt >> 2;
      buf[t + 1] = opt !== 0 ? GENEVE_F_CRITICAL : 0;
      set16(buf, t + 2, ETH_P_TEB);
      if (opt !== 0) genevePutDsrOpt4(buf, t + 8, dsrAddr, dsrPort);
    }
    set32(buf, t + 4, (identity & 0xffffff) << 8);
    // Offload metadata follows the inner headers.
    adjustVnet(buf, o, overhead);
    this.encapped++;
    return true;
  }

  /** Is the IPv4 packet at buf[ipOff..) (header length checked by the caller) UDP to our tunnel port for us? */
  isTunnel(buf: Uint8Array, ipOff: number, ipLen: number): boolean {
    if (buf[ipOff + 9] !== IPPROTO_UDP || ipLen < 20 + 8 + 8) return false;
    if (get32(buf, ipOff + 16) !== this.cfg.nodeIP) return false;
    const ihl = (buf[ipOff]! & 0xf) * 4;
    return get16(buf, ipOff + ihl + 2) === this.cfg.port && (get16(buf, ipOff + 6) & 0x3fff) === 0;
  }

  /**
   * Strip the outer headers of tunnel frame i (isTunnel() already true).
   * Returns the source identity from the VNI, or a DROP code: a VXLAN
   * header without the I flag, or a Geneve header of another version or
   * not carrying Ethernet, is an invalid packet; a truncated inner frame
   * too. Geneve options: Cilium's DSR option is read into `dsr`; any other
   * critical option is "Invalid Geneve option" (149).
   */
  decap(b: FrameBatch, i: number): number {
    const buf = b.buf;
    const o = b.off[i]!;
    const ip = o + ETH_HLEN;
    const ihl = (buf[ip]! & 0xf) * 4;
    let hdr = ETH_HLEN + ihl + 8;
    const t = o + hdr;
    this.dsr.addr = 0;
    if (b.len[i]! < hdr + 8 + ETH_HLEN) return DROP.INVALID;
    if (this.cfg.protocol === 'vxlan') {
      if ((buf[t]! & VXLAN_F_VNI) === 0) return DROP.INVALID;
      hdr += 8;
    } else {
      if (buf[t]! >> 6 !== 0 || get16(buf, t + 2) !== ETH_P_TEB) return DROP.INVALID;
      const optLen = (buf[t]! & 0x3f) * 4;
      hdr += 8 + optLen;
      if (b.len[i]! < hdr + ETH_HLEN) return DROP.INVALID;
      // RFC 8926 §3.5.1: an unrecognised critical option MUST drop the packet.
      if (optLen !== 0) {
        const r = geneveReadOpts(buf, t + 8, optLen, this.dsr);
        if (r < 0) return r;
      }
    }
    const identity = get32(buf, t + 4) >>> 8;
    b.pull(i, hdr);
    adjustVnet(buf, b.off[i]!, -hdr);
    this.decapped++;
    return identity;
  }
}

/**
 * Move frame-relative offsets in the virtio-net header in front of frame
 * start `o` by `delta` bytes: csum_start when a checksum is pending,
 * hdr_len when the frame is a GSO super-frame. A checksum pending in the
 * headers a decap removed (the outer UDP checksum) goes with them: a
 * sender offloads one checksum only, so the inner ones are complete.
 */
function adjustVnet(buf: Uint8Array, o: number, delta: number): void {
  const h = o - VNET_HDR_LEN;
  if (buf[h]! & 1) {
    const cs = buf[h + 6]! | (buf[h + 7]! << 8);
    const v = cs + delta;
    if (v < 0) {
      buf[h] = buf[h]! & ~1;
      buf.fill(0, h + 6, h + 10);
    } else {
      buf[h + 6] = v & 0xff;
      buf[h + 7] = (v >> 8) & 0xff;
    }
  }
  if (buf[h + 1] !== 0) {
    const hl = buf[h + 2]! | (buf[h + 3]! << 8);
    const v = Math.max(0, hl + delta);
    buf[h + 2] = v & 0xff;
    buf[h + 3] = (v >> 8) & 0xff;
  }
}

/** Outer UDP source port: a hash of the inner addresses and ports, spread over 32768..60999. */
export function flowSourcePort(buf: Uint8Array, ipOff: number, ethertype: number): number {
  let a = 0, c = 0, p = 0;
  if (ethertype === ETH_P_IP) {
    a = get32(buf, ipOff + 12);
    c = get32(buf, ipOff + 16);
    const proto = buf[ipOff + 9];
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) p = get32(buf, ipOff + (buf[ipOff]! & 0xf) * 4);
  } else if (ethertype === ETH_P_IPV6) {
    // Every word of both addresses, folded as the kernel's ipv6_addr_hash() does.
    a = get32(buf, ipOff + 8) ^ get32(buf, ipOff + 12) ^ get32(buf, ipOff + 16) ^ get32(buf, ipOff + 20);
    c = get32(buf, ipOff + 24) ^ get32(buf, ipOff + 28) ^ get32(buf, ipOff + 32) ^ get32(buf, ipOff + 36);
    const nh = buf[ipOff + 6];
    if (nh === IPPROTO_TCP || nh === IPPROTO_UDP) p = get32(buf, ipOff + 40);
  }
  const h = jhash3Words(a, c, p, 0) >>> 0;
  return SPORT_MIN + Math.floor((h / 0x100000000) * (SPORT_MAX - SPORT_MIN));
}

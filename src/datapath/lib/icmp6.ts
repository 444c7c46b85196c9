/**
 * ICMPv6 handled by the datapath itself (Cilium bpf/lib/icmp6.h):
 * neighbour solicitations from pods and echo requests to the router IP.
 * Both are answered in place and bounced out of the port they came from.
 *
 * API:
 *   icmp6SendNdiscAdv(eth, ip6, icmp, mac, routerIp, flags) -> new frame length
 *   icmp6SendEchoReply(eth, ip6, icmp, mac)
 *   icmp6SendPktTooBig(b, i, eth, ip6, mac, src, mtu) -> new frame length (tunnel MTU)
 *
 * NA (RFC 4861 §7.2.4): destination = the solicitation's source, hop limit
 * 255, target unchanged, one Target Link-Layer Address option (type 2,
 * length 1) = `mac`. Source address = router IP, as Cilium sends it (facts
 * §11). Flags: R|S for the router, S|O for a local endpoint.
 */
import { ICMPV6_ECHO_REPLY, ICMPV6_PKT_TOOBIG, type Icmp6View } from '../../wire/icmp6.ts';
import type { FrameBatch } from '../../packet/batch.ts';
import { ND_OPT_TARGET_LL_ADDR, NDISC_NEIGHBOUR_ADVERTISEMENT } from '../../wire/ndp.ts';
import { ETH_HLEN, type EthernetView } from '../../wire/ethernet.ts';
import { IPV6_HEADER_LEN, type Ipv6View } from '../../wire/ipv6.ts';
import { IPPROTO_ICMPV6 } from '../../wire/ip.ts';
import { csumReplace16, l4CsumFill6 } from '../../wire/checksum.ts';

/** Length of an NA with one link-layer option: 24 + 8. */
const NA_LEN = 32;

/**
 * Rewrite the NS at `icmp` (already validated) into a solicited NA from
 * `mac`; returns the new frame length. The slot always has room: an NA is at
 * most 8 bytes longer than the shortest NS.
 */
export function icmp6SendNdiscAdv(eth: EthernetView, ip6: Ipv6View, icmp: Icmp6View, mac: Uint8Array, routerIp: Uint8Array, flags: number): number {
  const b = icmp.b;
  // IPv6: dst <- NS source, src <- router IP, hop limit 255, no extension headers.
  b.copyWithin(ip6.dstOff(), ip6.srcOff(), ip6.srcOff() + 16);
  ip6.setSrc(routerIp, 0);
  ip6.setHopLimit(255);
  ip6.setNextHeader(IPPROTO_ICMPV6);
  ip6.setPayloadLen(NA_LEN);
  // The ICMPv6 header follows the fixed IPv6 header directly now.
  const o = ip6.o + IPV6_HEADER_LEN;
  if (icmp.o !== o) b.copyWithin(o, icmp.o, icmp.o + 24);
  icmp.bind(b, o, NA_LEN);
  icmp.setType(NDISC_NEIGHBOUR_ADVERTISEMENT);
  icmp.setCode(0);
  b[o + 4] = flags;
  b[o + 5] = 0;
  b[o + 6] = 0;
  b[o + 7] = 0;
  b[o + 24] = ND_OPT_TARGET_LL_ADDR;
  b[o + 25] = 1;
  b.set(mac.subarray(0, 6), o + 26);
  icmp.fillChecksum(ip6.srcOff(), ip6.dstOff());
  eth.setDst(b, eth.srcOff());
  eth.setSrc(mac, 0);
  return o + NA_LEN - eth.o;
}

/** Turn an echo request into the reply in place (addresses swapped, type 129). */
export function icmp6SendEchoReply(eth: EthernetView, ip6: Ipv6View, icmp: Icmp6View, mac: Uint8Array): void {
  const b = icmp.b;
  const s = ip6.srcOff();
  const d = ip6.dstOff();
  for (let k = 0; k < 16; k++) {
    const t = b[s + k]!;
    b[s + k] = b[d + k]!;
    b[d + k] = t;
  }
  ip6.setHopLimit(64);
  // Swapping addresses leaves the pseudo-header sum unchanged; only type/code moves.
  const oldWord = (icmp.type() << 8) | icmp.code();
  icmp.setType(ICMPV6_ECHO_REPLY);
  icmp.setChecksum(csumReplace16(icmp.checksum(), oldWord, (ICMPV6_ECHO_REPLY << 8) | icmp.code()));
  eth.setDst(b, eth.srcOff());
  eth.setSrc(mac, 0);
}


/** Largest ICMPv6 error: the quote is cut so the packet fits the IPv6 minimum MTU (RFC 4443 §2.4). */
const ICMP6_ERROR_MAX = 1280;

/**
 * Rewrite the IPv6 frame i (Ethernet at b.off[i], IPv6 bound in `ip6`) into
 * an ICMPv6 Packet Too Big with `mtu`, from `src` (16 bytes: the router
 * that cannot forward it) to the packet's sender, sent from `mac`, quoting
 * as much of the packet as fits 1280 bytes. Returns the new frame length.
 */
export function icmp6SendPktTooBig(b: FrameBatch, i: number, eth: EthernetView, ip6: Ipv6View, mac: Uint8Array, src: Uint8Array, mtu: number): number {
  const buf = b.buf;
  const o = b.off[i]!;
  const ip = o + ETH_HLEN;
  const quote = Math.min(b.len[i]! - ETH_HLEN, ICMP6_ERROR_MAX - IPV6_HEADER_LEN - 8);
  const sender = buf.slice(ip + 8, ip + 24);
  // The offending packet moves behind the new IPv6 + ICMPv6 headers (overlap-safe).
  buf.copyWithin(ip + IPV6_HEADER_LEN + 8, ip, ip + quote);
  eth.setDst(buf, eth.srcOff());
  eth.setSrc(mac, 0);
  buf[ip] = 0x60;
  buf[ip + 1] = 0;
  buf[ip + 2] = 0;
  buf[ip + 3] = 0;
  const plen = 8 + quote;
  buf[ip + 4] = plen >>> 8;
  buf[ip + 5] = plen & 0xff;
  buf[ip + 6] = IPPROTO_ICMPV6;
  buf[ip + 7] = 64;
  buf.set(src.subarray(0, 16), ip + 8);
  buf.set(sender, ip + 24);
  const ic = ip + IPV6_HEADER_LEN;
  buf[ic] = ICMPV6_PKT_TOOBIG;
  buf[ic + 1] = 0;
  buf[ic + 2] = 0;
  buf[ic + 3] = 0;
  buf[ic + 4] = mtu >>> 24;
  buf[ic + 5] = (mtu >>> 16) & 0xff;
  buf[ic + 6] = (mtu >>> 8) & 0xff;
  buf[ic + 7] = mtu & 0xff;
  l4CsumFill6(buf, ic, plen, IPPROTO_ICMPV6, ip + 8, ip + 24);
  ip6.bind(buf, ip, IPV6_HEADER_LEN + plen);
  // The reply carries no offload metadata.
  buf.fill(0, o - 10, o);
  return ETH_HLEN + IPV6_HEADER_LEN + plen;
}

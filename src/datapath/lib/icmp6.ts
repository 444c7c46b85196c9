/**
 * ICMPv6 handled by the datapath itself (Cilium bpf/lib/icmp6.h):
 * neighbour solicitations from pods and echo requests to the router IP.
 * Both are answered in place and bounced out of the port they came from.
 *
 * API:
 *   icmp6SendNdiscAdv(eth, ip6, icmp, mac, routerIp, flags) -> new frame length
 *   icmp6SendEchoReply(eth, ip6, icmp, mac)
 *
 * NA (RFC 4861 §7.2.4): destination = the solicitation's source, hop limit
 * 255, target unchanged, one Target Link-Layer Address option (type 2,
 * length 1) = `mac`. Source address = router IP, as Cilium sends it (facts
 * §11). Flags: R|S for the router, S|O for a local endpoint.
 */
import { ICMPV6_ECHO_REPLY, type Icmp6View } from '../../wire/icmp6.ts';
import { ND_OPT_TARGET_LL_ADDR, NDISC_NEIGHBOUR_ADVERTISEMENT } from '../../wire/ndp.ts';
import type { EthernetView } from '../../wire/ethernet.ts';
import { IPV6_HEADER_LEN, type Ipv6View } from '../../wire/ipv6.ts';
import { IPPROTO_ICMPV6 } from '../../wire/ip.ts';
import { csumReplace16 } from '../../wire/checksum.ts';

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


/**
 * L3 forwarding rewrites (Cilium bpf/lib/l3.h ipv4_l3 / ipv6_l3): decrement
 * TTL / hop limit and rewrite the Ethernet addresses for the next hop.
 *
 * API:
 *   ipv4L3(eth, ip4, srcMac, so, dstMac, do) -> 0 | DROP.TTL_EXCEEDED
 *   ipv6L3(eth, ip6, srcMac, so, dstMac, do) -> 0 | DROP.TTL_EXCEEDED
 *
 * IPv4's header checksum is patched incrementally (RFC 1624) by
 * Ipv4View.decTtl. Neither rewrite touches L4 checksums, so frames carrying
 * a partial checksum (virtio-net NEEDS_CSUM, TSO super-frames) stay valid.
 *
 * Deviation: for IPv6 Cilium answers hop-limit expiry with ICMPv6 Time
 * Exceeded (facts §11); Tapestry drops with TTL_EXCEEDED for both families
 * for now and says so in the drop reason.
 */
import type { EthernetView } from '../../wire/ethernet.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import type { Ipv6View } from '../../wire/ipv6.ts';
import { DROP } from './drop-reasons.ts';

/** TTL check + decrement + MAC rewrite for IPv4. */
export function ipv4L3(eth: EthernetView, ip4: Ipv4View, srcMac: Uint8Array, so: number, dstMac: Uint8Array, dof: number): number {
  if (ip4.ttl() <= 1) return DROP.TTL_EXCEEDED;
  ip4.decTtl();
  eth.setSrc(srcMac, so);
  eth.setDst(dstMac, dof);
  return 0;
}

/** Hop-limit check + decrement + MAC rewrite for IPv6. */
export function ipv6L3(eth: EthernetView, ip6: Ipv6View, srcMac: Uint8Array, so: number, dstMac: Uint8Array, dof: number): number {
  if (ip6.hopLimit() <= 1) return DROP.TTL_EXCEEDED;
  ip6.decHopLimit();
  eth.setSrc(srcMac, so);
  eth.setDst(dstMac, dof);
  return 0;
}

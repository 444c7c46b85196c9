/**
 * Address and port rewrites of IPv4 frames with their checksum rules,
 * shared by the load balancer (DNAT, reverse DNAT) and SNAT (Cilium: the
 * l3_csum_replace / l4_csum_replace pairs in bpf/lib/lb.h and
 * bpf/lib/nat.h, l4_modify_port in bpf/lib/l4.h).
 *
 * API:
 *   csumPartial(b, i) → boolean                          frame i has virtio-net NEEDS_CSUM
 *   rewrite4(b, i, ip4, l4Off, proto, dst, addr, port)   new daddr (dst) or saddr, and port unless 0
 *   l4Replace16(b, i, l4Off, proto, fieldOff, value)     one 16-bit L4 field (port, ICMP echo id)
 *
 * Checksums: the IPv4 header incrementally (RFC 1624). The L4 checksum
 * through wire/checksum.ts: TCP and UDP cover the pseudo-header, so an
 * address change adjusts them; ICMP has no pseudo-header, so only a change
 * inside the message (the echo id) does. A frame whose virtio-net header
 * (the VNET_HDR_LEN bytes before b.off[i]) has NEEDS_CSUM carries only the
 * folded pseudo-header sum in its checksum field: an address change is
 * added to it as is, a port change leaves it alone (the device sums the
 * ports later). A UDP checksum of 0 ("none") stays 0.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import * as cs from '../../wire/checksum.ts';
import * as ip from '../../wire/ip.ts';
import { VIRTIO_NET_HDR_F_NEEDS_CSUM as NEEDS_CSUM } from '../../wire/virtio-net.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';

// Local copies for the packet path (imported bindings are getter calls under tsx; see conntrack.ts).
const csumReplace32 = cs.csumReplace32, l4CsumOffset = cs.l4CsumOffset;
const l4CsumReplaceAddr = cs.l4CsumReplaceAddr, l4CsumReplacePort = cs.l4CsumReplacePort;
const IPPROTO_TCP = ip.IPPROTO_TCP, IPPROTO_UDP = ip.IPPROTO_UDP, IPPROTO_ICMP = ip.IPPROTO_ICMP;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = NEEDS_CSUM, VNET_LEN = VNET_HDR_LEN;

/** True when frame i's virtio-net header asks for checksum completion (partial L4 checksum). */
export function csumPartial(b: FrameBatch, i: number): boolean {
  return (b.buf[b.off[i]! - VNET_LEN]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
}

/**
 * Rewrite the destination (`dst`) or source address and port of the IPv4
 * frame bound in `ip4`, keeping the header and L4 checksums valid (partial
 * sums per the header). Port 0 keeps the port; only TCP and UDP ports are
 * touched, other protocols get the address change alone.
 */
export function rewrite4(b: FrameBatch, i: number, ip4: Ipv4View, l4Off: number, proto: number, dst: boolean, addr: number, port: number): void {
  const buf = b.buf;
  const oldAddr = dst ? ip4.dst() : ip4.src();
  if (dst) ip4.setDst(addr);
  else ip4.setSrc(addr);
  ip4.setChecksum(csumReplace32(ip4.checksum(), oldAddr, addr));
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return;
  const partial = csumPartial(b, i);
  const at = l4Off + l4CsumOffset(proto);
  const udp = proto === IPPROTO_UDP;
  l4CsumReplaceAddr(buf, at, oldAddr, addr, partial, udp);
  if (port === 0) return;
  const p = dst ? l4Off + 2 : l4Off;
  const oldPort = (buf[p]! << 8) | buf[p + 1]!;
  buf[p] = port >>> 8;
  buf[p + 1] = port & 0xff;
  l4CsumReplacePort(buf, at, oldPort, port, partial, udp);
}

/**
 * Store `value` in the 16-bit field at b.buf[l4Off + fieldOff] of a TCP,
 * UDP or ICMP header and fix that header's checksum (a partial checksum is
 * left alone; ICMP's counts as partial only when the frame says NEEDS_CSUM).
 * Writes any value, 0 included.
 */
export function l4Replace16(b: FrameBatch, i: number, l4Off: number, proto: number, fieldOff: number, value: number): void {
  const buf = b.buf;
  const p = l4Off + fieldOff;
  const old = (buf[p]! << 8) | buf[p + 1]!;
  if (old === value) return;
  buf[p] = value >>> 8;
  buf[p + 1] = value & 0xff;
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_ICMP) return;
  l4CsumReplacePort(buf, l4Off + l4CsumOffset(proto), old, value, csumPartial(b, i), proto === IPPROTO_UDP);
}

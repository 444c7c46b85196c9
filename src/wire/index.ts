/**
 * Tapestry's wire layer: zero-copy views over packet bytes, one file per
 * protocol, in the shape of smoltcp's `wire` module. Nothing here depends
 * on any other part of Tapestry.
 *
 * THE CONTRACT
 *
 *   Every protocol has a flyweight view class (`Ipv4View`, `TcpView`, ...).
 *   Allocate one per stage, then per packet:
 *
 *     v.bind(b, off, n)    no checks; n = bytes available from off
 *     if (!v.checkLen()) -> drop (the ONE bounds check, at the parse boundary)
 *     v.ttl(), v.setTtl(x), v.payloadOffset(), ...
 *
 *   After checkLen() returns true, no accessor of that view reads or writes
 *   outside b[off, off+n) (smoltcp: "new_checked" succeeded, so accessors
 *   cannot panic). Accessors never check again, never allocate and never
 *   throw. Variable-length parts that checkLen does not cover (IPv4
 *   options, IPv6 extension headers, NDP and Geneve options) are walked by
 *   their own iterators, which check every step.
 *
 *   Re-bind after anything changes the frame's length or start (encap,
 *   decap, option insertion): Cilium's "revalidate before use" rule.
 *
 *   Setters write raw fields and never fix checksums; use the RFC 1624
 *   helpers in checksum.ts (csumReplace16/32, l4CsumReplace*) or the views'
 *   fillChecksum(). With a virtio-net NEEDS_CSUM frame the L4 checksum field
 *   is a partial sum: pass `partial = true` to the l4CsumReplace* helpers.
 *
 *   Numbers: IPv4 addresses are u32 numbers; IPv6 addresses stay in the
 *   frame (srcOff()/dstOff(), srcWord(i) as u32); MACs are 6-byte offsets.
 *
 *   `*Repr` objects and `*Parse`/`*Emit` functions allocate; they are for the
 *   control path, tests and ICMP/NDP/ARP reply generation only. Parse
 *   functions throw on malformed input; the views never do.
 *
 * Re-exports carry a protocol prefix where the module name is generic
 * (`field` -> `ipv4Field`); everything else is already prefixed.
 */

// big-endian loads and stores
export {
  get16, set16, get32, set32
} from './bytes.ts';
// IP protocol numbers
export {
  IPPROTO_HOPOPTS, IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6, IPPROTO_ROUTING,
  IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_ESP, IPPROTO_AH, IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_DSTOPTS,
  IPPROTO_SCTP, IPPROTO_EXPERIMENT, ipprotoName
} from './ip.ts';
// Internet checksum, RFC 1624 updates, partial checksums
export {
  sum16, fold, finish, ipv4PseudoSum, ipv6PseudoSum, csumReplace16, csumReplace32, csumReplaceBytes,
  ipv4HdrCsumFill, ipv4HdrCsumOk, l4CsumOffset, l4CsumFill4, l4CsumOk4, l4CsumFill6, l4CsumOk6,
  l4CsumReplaceAddr, l4CsumReplaceAddr6, l4CsumReplacePort, l4CsumFillPartial4, l4CsumFillPartial6,
  csumCompletePartial
} from './checksum.ts';
// address text <-> bytes
export {
  parseIpv4, formatIpv4, parseIpv6, parseIpv6Into, formatIpv6, parseMac, parseMacInto, formatMac, ipv6Equal,
  ipv6Copy, macEqual, macCopy
} from './addr.ts';
// Ethernet II
export {
  field as ethernetField, ETH_HLEN, ETH_ALEN, ETH_ZLEN, ETH_P_IP, ETH_P_ARP, ETH_P_TEB, ETH_P_8021Q,
  ETH_P_IPV6, ETH_P_8021AD, ETH_P_LOCAL_EXP, EthernetView, macIsBroadcast, macIsMulticast, copyMac,
  ethernetParse, ethernetEmit
} from './ethernet.ts';
export type {
  EthernetRepr
} from './ethernet.ts';
// ARP (Ethernet/IPv4)
export {
  field as arpField, ARP_LEN, ARPHRD_ETHER, ARPOP_REQUEST, ARPOP_REPLY, ArpView, arpParse, arpEmit
} from './arp.ts';
export type {
  ArpRepr
} from './arp.ts';
// IPv4
export {
  field as ipv4Field, IPV4_HEADER_LEN, IPV4_MAX_HEADER_LEN, IP_DF, IP_MF, IP_OFFMASK, IPOPT_END, IPOPT_NOOP,
  Ipv4View, IPV4_OPT_DONE, IPV4_OPT_MALFORMED, Ipv4OptIter, ipv4OptionsValid, ipv4FindOption, ipv4Parse,
  ipv4Emit
} from './ipv4.ts';
export type {
  Ipv4Repr
} from './ipv4.ts';
// IPv6 fixed header
export {
  field as ipv6Field, IPV6_HEADER_LEN, Ipv6View, ipv6Parse, ipv6Emit
} from './ipv6.ts';
export type {
  Ipv6Repr
} from './ipv6.ts';
// IPv6 extension-header walk
export {
  IPV6_EXT_TRUNCATED, IPV6_EXT_TOO_MANY, IPV6_EXT_NO_NEXT, IPV6_EXT_HBH_NOT_FIRST, IPV6_MAX_EXT_HEADERS,
  Ipv6ExtInfo, ipv6WalkExt, ipv6IsExtHeader
} from './ipv6-ext.ts';
// TCP
export {
  field as tcpField, TCP_HEADER_LEN, TCP_FLAG_FIN, TCP_FLAG_SYN, TCP_FLAG_RST, TCP_FLAG_PSH, TCP_FLAG_ACK,
  TCP_FLAG_URG, TCP_FLAG_ECE, TCP_FLAG_CWR, tcpFlagsString, tcpFlagsParse, TcpView, tcpParse, tcpEmit
} from './tcp.ts';
export type {
  TcpRepr
} from './tcp.ts';
// UDP
export {
  field as udpField, UDP_HEADER_LEN, UdpView, udpParse, udpEmit
} from './udp.ts';
export type {
  UdpRepr
} from './udp.ts';
// ICMP
export {
  field as icmp4Field, ICMP_HEADER_LEN, ICMP_ECHOREPLY, ICMP_DEST_UNREACH, ICMP_REDIRECT, ICMP_ECHO,
  ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB, ICMP_NET_UNREACH, ICMP_HOST_UNREACH, ICMP_PROT_UNREACH,
  ICMP_PORT_UNREACH, ICMP_FRAG_NEEDED, ICMP_EXC_TTL, ICMP_EXC_FRAGTIME, Icmp4View, icmp4Parse, icmp4Emit
} from './icmp4.ts';
export type {
  Icmp4Repr
} from './icmp4.ts';
// ICMPv6
export {
  field as icmp6Field, ICMPV6_HEADER_LEN, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED,
  ICMPV6_PARAMPROB, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY, Icmp6View, icmp6Parse, icmp6BufferLen, icmp6Emit
} from './icmp6.ts';
export type {
  Icmp6Repr
} from './icmp6.ts';
// NDP options
export {
  NDISC_ROUTER_SOLICITATION, NDISC_ROUTER_ADVERTISEMENT, NDISC_NEIGHBOUR_SOLICITATION,
  NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_REDIRECT, ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR,
  ND_OPT_PREFIX_INFO, ND_OPT_REDIRECT_HDR, ND_OPT_MTU, NDP_NA_ROUTER, NDP_NA_SOLICITED, NDP_NA_OVERRIDE,
  NDP_RA_MANAGED, NDP_RA_OTHER, ndpOptionsStart, NDP_OPT_DONE, NDP_OPT_MALFORMED, NdpOptIter, ndpFindLlAddr,
  ndpOptionsValid, ndpParse, ndpBufferLen, ndpEmit
} from './ndp.ts';
export type {
  NdpRepr
} from './ndp.ts';
// VXLAN
export {
  field as vxlanField, VXLAN_HEADER_LEN, VXLAN_F_VNI, VXLAN_PORT_IANA, VXLAN_PORT_CILIUM, VxlanView,
  vxlanParse, vxlanEmit
} from './vxlan.ts';
export type {
  VxlanRepr
} from './vxlan.ts';
// Geneve
export {
  field as geneveField, GENEVE_HEADER_LEN, GENEVE_PORT, GENEVE_F_OAM, GENEVE_F_CRITICAL,
  GENEVE_OPT_TYPE_CRITICAL, GENEVE_OPT_CLASS_CILIUM, GENEVE_OPT_TYPE_CILIUM_DSR, GeneveView, GENEVE_OPT_DONE,
  GENEVE_OPT_MALFORMED, GeneveOptIter, geneveFindOption, geneveParse, geneveBufferLen, geneveEmit
} from './geneve.ts';
export type {
  GeneveOption, GeneveRepr
} from './geneve.ts';
// virtio-net header
export {
  field as virtioNetField, VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_ECN, VirtioNetView, virtioNetParse, virtioNetEmit
} from './virtio-net.ts';
export type {
  VirtioNetRepr
} from './virtio-net.ts';

/**
 * IP protocol numbers shared by IPv4 (`protocol`) and IPv6 (`next header`).
 *
 * API: `IPPROTO_*` constants with the kernel's spellings (include/uapi/linux/in.h,
 * in6.h), `ipprotoName()` for trace output. The IANA "Assigned Internet
 * Protocol Numbers" registry is the source of truth for the values.
 */

/** IPv6 Hop-by-Hop Options (RFC 8200 §4.3); only valid as the first IPv6 extension header. */
export const IPPROTO_HOPOPTS = 0;
/** Internet Control Message Protocol (RFC 792). */
export const IPPROTO_ICMP = 1;
/** IP in IP encapsulation (RFC 2003). */
export const IPPROTO_IPIP = 4;
/** Transmission Control Protocol (RFC 9293). */
export const IPPROTO_TCP = 6;
/** User Datagram Protocol (RFC 768). */
export const IPPROTO_UDP = 17;
/** IPv6 encapsulation (RFC 2473). */
export const IPPROTO_IPV6 = 41;
/** IPv6 Routing header (RFC 8200 §4.4). */
export const IPPROTO_ROUTING = 43;
/** IPv6 Fragment header (RFC 8200 §4.5). */
export const IPPROTO_FRAGMENT = 44;
/** Generic Routing Encapsulation (RFC 2784). */
export const IPPROTO_GRE = 47;
/** Encapsulating Security Payload (RFC 4303); opaque, ends an extension-header walk. */
export const IPPROTO_ESP = 50;
/** Authentication Header (RFC 4302); its length is counted in 4-octet units. */
export const IPPROTO_AH = 51;
/** ICMP for IPv6 (RFC 4443). */
export const IPPROTO_ICMPV6 = 58;
/** IPv6 "No Next Header" (RFC 8200 §4.7). */
export const IPPROTO_NONE = 59;
/** IPv6 Destination Options (RFC 8200 §4.6). */
export const IPPROTO_DSTOPTS = 60;
/** Stream Control Transmission Protocol (RFC 9260). */
export const IPPROTO_SCTP = 132;
/** Reserved for experimentation (RFC 3692); pktgen's default when the next layer is raw bytes. */
export const IPPROTO_EXPERIMENT = 253;

/** Short lower-case name of an IP protocol number, or the number as text. */
export function ipprotoName(p: number): string {
  switch (p) {
    case IPPROTO_HOPOPTS: return 'hopopts';
    case IPPROTO_ICMP: return 'icmp';
    case IPPROTO_IPIP: return 'ipip';
    case IPPROTO_TCP: return 'tcp';
    case IPPROTO_UDP: return 'udp';
    case IPPROTO_IPV6: return 'ipv6';
    case IPPROTO_ROUTING: return 'routing';
    case IPPROTO_FRAGMENT: return 'fragment';
    case IPPROTO_GRE: return 'gre';
    case IPPROTO_ESP: return 'esp';
    case IPPROTO_AH: return 'ah';
    case IPPROTO_ICMPV6: return 'icmpv6';
    case IPPROTO_NONE: return 'none';
    case IPPROTO_DSTOPTS: return 'dstopts';
    case IPPROTO_SCTP: return 'sctp';
    default: return String(p);
  }
}

/**
 * IPv6 extension-header walk (RFC 8200 §4).
 *
 * Every extension header starts with Next Header (1 byte). Lengths:
 *   Hop-by-Hop (0), Routing (43), Destination Options (60): (Hdr Ext Len + 1) * 8
 *   Fragment (44): always 8 (RFC 8200 §4.5)
 *   Authentication Header (51): (Payload Len + 2) * 4 (RFC 4302 §2.2)
 * Anything else, ESP (50) included, is treated as the upper layer.
 *
 * API: `ipv6WalkExt(b, off, n, out, maxHdrs)` returns the upper-layer
 * protocol (>= 0) and fills `out` (an `Ipv6ExtInfo`, allocate once), or a
 * negative `IPV6_EXT_*` error. How Cilium reacts (bpf/lib/ipv6.h,
 * ipv6_hdrlen_offset): truncated -> DROP_INVALID (134); No Next Header or
 * too many headers -> DROP_INVALID_EXTHDR (156).
 */

/*
 * The walk runs per packet, so like the views it reads no imported bindings
 * (see bytes.ts): protocol numbers are repeated here (same values as ip.ts:
 * IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_AH,
 * IPPROTO_NONE, IPPROTO_DSTOPTS) and bytes are read inline.
 */
const HOPOPTS = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AH = 51;
const NONE = 59;
const DSTOPTS = 60;
/** Fixed IPv6 header length (IPV6_HEADER_LEN). */
const FIXED = 40;

/** A header runs past the packet. */
export const IPV6_EXT_TRUNCATED = -1;
/** More than `maxHdrs` extension headers. */
export const IPV6_EXT_TOO_MANY = -2;
/** The chain ends in No Next Header (59); Cilium drops these as INVALID_EXTHDR. */
export const IPV6_EXT_NO_NEXT = -3;
/** Hop-by-Hop Options anywhere but right after the fixed header (RFC 8200 §4.1). */
export const IPV6_EXT_HBH_NOT_FIRST = -4;

/**
 * Default bound on extension headers. Cilium's IPV6_MAX_HEADERS is 4 loop
 * rounds and one round must find the upper layer, so at most 3 extension
 * headers pass there; we keep the same limit.
 */
export const IPV6_MAX_EXT_HEADERS = 3;

/** Where the walk ended; reused across packets. */
export class Ipv6ExtInfo {
  /** Upper-layer protocol (or the last Next Header seen on error). */
  proto = 0;
  /** Offset in `b` of the upper-layer header (or of the header that failed). */
  off = 0;
  /** Number of extension headers skipped. */
  hdrCount = 0;
  /** Offset in `b` of the Fragment header, -1 if none. */
  fragHdrOff = -1;
  /** Fragment Offset in bytes (0 without a Fragment header). */
  fragOffset = 0;
  /** M flag of the Fragment header. */
  moreFrags = false;
  /** Identification of the Fragment header. */
  fragId = 0;

  /** True for a real fragment; an atomic fragment (offset 0, M clear, RFC 6946) is not one. */
  isFragment(): boolean {
    return this.fragHdrOff >= 0 && (this.fragOffset !== 0 || this.moreFrags);
  }

  /** True when the upper-layer header is in this packet (not a non-first fragment). */
  hasL4(): boolean {
    return this.fragOffset === 0;
  }

  /** Reset to "no extension headers". */
  reset(): void {
    this.proto = 0;
    this.off = 0;
    this.hdrCount = 0;
    this.fragHdrOff = -1;
    this.fragOffset = 0;
    this.moreFrags = false;
    this.fragId = 0;
  }
}

/**
 * Walk the extension headers of the IPv6 packet whose fixed header is at
 * b[off] (already past `Ipv6View.checkLen`), with `n` bytes available from
 * `off`; the walk never reads past min(n, 40 + Payload Length). Returns the
 * upper-layer protocol or an IPV6_EXT_* error; `out` says where it stopped.
 */
export function ipv6WalkExt(b: Uint8Array, off: number, n: number, out: Ipv6ExtInfo, maxHdrs = IPV6_MAX_EXT_HEADERS): number {
  out.reset();
  const end = off + Math.min(n, FIXED + ((b[off + 4] << 8) | b[off + 5]));
  let nh = b[off + 6];
  let p = off + FIXED;
  for (let count = 0; ; count++) {
    out.proto = nh;
    out.off = p;
    out.hdrCount = count;
    if (nh === HOPOPTS && count !== 0) return IPV6_EXT_HBH_NOT_FIRST;
    let len: number;
    switch (nh) {
      case HOPOPTS:
      case ROUTING:
      case DSTOPTS:
        if (p + 2 > end) return IPV6_EXT_TRUNCATED;
        len = (b[p + 1] + 1) << 3;
        break;
      case AH:
        if (p + 2 > end) return IPV6_EXT_TRUNCATED;
        len = (b[p + 1] + 2) << 2;
        break;
      case FRAGMENT: {
        len = 8;
        if (p + len > end) return IPV6_EXT_TRUNCATED;
        const w = (b[p + 2] << 8) | b[p + 3];
        out.fragHdrOff = p;
        out.fragOffset = w & 0xfff8;
        out.moreFrags = (w & 1) !== 0;
        out.fragId = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
        break;
      }
      case NONE:
        return IPV6_EXT_NO_NEXT;
      default:
        return nh;
    }
    if (count === maxHdrs) return IPV6_EXT_TOO_MANY;
    if (p + len > end) return IPV6_EXT_TRUNCATED;
    nh = b[p];
    p += len;
  }
}

/** True when `proto` is an extension header this walk skips. */
export function ipv6IsExtHeader(proto: number): boolean {
  return proto === HOPOPTS || proto === ROUTING || proto === DSTOPTS || proto === AH || proto === FRAGMENT;
}

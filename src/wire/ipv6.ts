/**
 * IPv6 fixed header (RFC 8200 §3). Extension headers: see ipv6-ext.ts.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------+---------------+---------------------------------------+
 *   |Version| Traffic Class |              Flow Label               |
 *   +-------+---------------+-------+---------------+---------------+
 *   |         Payload Length        |  Next Header  |   Hop Limit   |
 *   +-------------------------------+---------------+---------------+
 *   |                 Source Address (16 bytes, offset 8)           |
 *   |              Destination Address (16 bytes, offset 24)        |
 *   +---------------------------------------------------------------+
 *
 * API: `Ipv6View` (bind/checkLen, getters/setters, srcOff/dstOff,
 * srcWord/dstWord/setSrcWord/setDstWord (u32), setSrc/setDst/copySrcTo/
 * copyDstTo, srcEquals/dstEquals, decHopLimit), `field`, `IPV6_HEADER_LEN`,
 * `Ipv6Repr` with `ipv6Parse`/`ipv6Emit`. Addresses never become strings or
 * new arrays on the fast path.
 */

import { ipv6Copy, ipv6Equal } from './addr.ts';

/** Byte offsets of the IPv6 header fields. */
export const field = { VER_TC_FLOW: 0, PAYLOAD_LEN: 4, NXT_HDR: 6, HOP_LIMIT: 7, SRC_ADDR: 8, DST_ADDR: 24 } as const;

/** Length of the fixed IPv6 header. */
export const IPV6_HEADER_LEN = 40;

/** Zero-copy view of an IPv6 fixed header. */
export class Ipv6View {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the IPv6 header in `b`. */
  o = 0;
  /** Bytes available from `o` to the end of the frame. */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /**
   * The one bounds check: n >= 40, version 6, 40 + payloadLen <= n.
   * Jumbograms (payload length 0 plus an RFC 2675 option) are not supported.
   */
  checkLen(): boolean {
    return this.n >= IPV6_HEADER_LEN && this.b[this.o] >>> 4 === 6 &&
      IPV6_HEADER_LEN + ((this.b[this.o + 4] << 8) | this.b[this.o + 5]) <= this.n;
  }

  /** Version (6). */
  version(): number {
    return this.b[this.o] >>> 4;
  }

  /** Set the version nibble. */
  setVersion(v: number): void {
    this.b[this.o] = ((v & 0x0f) << 4) | (this.b[this.o] & 0x0f);
  }

  /** Traffic Class (DSCP << 2 | ECN). */
  trafficClass(): number {
    return ((this.b[this.o] & 0x0f) << 4) | (this.b[this.o + 1] >>> 4);
  }

  /** Set the Traffic Class. */
  setTrafficClass(v: number): void {
    const b = this.b;
    const o = this.o;
    b[o] = (b[o] & 0xf0) | ((v >>> 4) & 0x0f);
    b[o + 1] = ((v & 0x0f) << 4) | (b[o + 1] & 0x0f);
  }

  /** Flow Label (20 bits). */
  flowLabel(): number {
    const b = this.b;
    const o = this.o;
    return ((b[o + 1] & 0x0f) << 16) | (b[o + 2] << 8) | b[o + 3];
  }

  /** Set the Flow Label. */
  setFlowLabel(v: number): void {
    const b = this.b;
    const o = this.o;
    b[o + 1] = (b[o + 1] & 0xf0) | ((v >>> 16) & 0x0f);
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
  }

  /** Payload Length: bytes after the fixed header, extension headers included. */
  payloadLen(): number {
    const i = this.o + field.PAYLOAD_LEN;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the Payload Length. */
  setPayloadLen(v: number): void {
    const i = this.o + field.PAYLOAD_LEN;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Next Header (first extension header or upper-layer protocol). */
  nextHeader(): number {
    return this.b[this.o + field.NXT_HDR];
  }

  /** Set the Next Header. */
  setNextHeader(v: number): void {
    this.b[this.o + field.NXT_HDR] = v;
  }

  /** Hop Limit. */
  hopLimit(): number {
    return this.b[this.o + field.HOP_LIMIT];
  }

  /** Set the Hop Limit. */
  setHopLimit(v: number): void {
    this.b[this.o + field.HOP_LIMIT] = v;
  }

  /** Decrement the Hop Limit (no header checksum in IPv6); returns the new value. */
  decHopLimit(): number {
    const i = this.o + field.HOP_LIMIT;
    const v = (this.b[i] - 1) & 0xff;
    this.b[i] = v;
    return v;
  }

  /** Offset in `b` of the source address. */
  srcOff(): number {
    return this.o + field.SRC_ADDR;
  }

  /** Offset in `b` of the destination address. */
  dstOff(): number {
    return this.o + field.DST_ADDR;
  }

  /** Source address word w (0..3) as u32, most significant first. */
  srcWord(w: number): number {
    const b = this.b;
    const i = this.o + field.SRC_ADDR + (w << 2);
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Destination address word w (0..3) as u32. */
  dstWord(w: number): number {
    const b = this.b;
    const i = this.o + field.DST_ADDR + (w << 2);
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set source address word w (0..3). */
  setSrcWord(w: number, v: number): void {
    const b = this.b;
    const i = this.o + field.SRC_ADDR + (w << 2);
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Set destination address word w (0..3). */
  setDstWord(w: number, v: number): void {
    const b = this.b;
    const i = this.o + field.DST_ADDR + (w << 2);
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Copy 16 bytes from a[off] into the source address. */
  setSrc(a: Uint8Array, off = 0): void {
    ipv6Copy(a, off, this.b, this.o + field.SRC_ADDR);
  }

  /** Copy 16 bytes from a[off] into the destination address. */
  setDst(a: Uint8Array, off = 0): void {
    ipv6Copy(a, off, this.b, this.o + field.DST_ADDR);
  }

  /** Copy the source address to out[off]. */
  copySrcTo(out: Uint8Array, off = 0): void {
    ipv6Copy(this.b, this.o + field.SRC_ADDR, out, off);
  }

  /** Copy the destination address to out[off]. */
  copyDstTo(out: Uint8Array, off = 0): void {
    ipv6Copy(this.b, this.o + field.DST_ADDR, out, off);
  }

  /** True when the source address equals a[off..off+16). */
  srcEquals(a: Uint8Array, off = 0): boolean {
    return ipv6Equal(this.b, this.o + field.SRC_ADDR, a, off);
  }

  /** True when the destination address equals a[off..off+16). */
  dstEquals(a: Uint8Array, off = 0): boolean {
    return ipv6Equal(this.b, this.o + field.DST_ADDR, a, off);
  }

  /** True when the destination is multicast (ff00::/8, RFC 4291 §2.7). */
  isDstMulticast(): boolean {
    return this.b[this.o + field.DST_ADDR] === 0xff;
  }

  /** Header length: 40 (extension headers are payload here). */
  headerLen(): number {
    return IPV6_HEADER_LEN;
  }

  /** Offset in `b` of the first byte after the fixed header. */
  payloadOffset(): number {
    return this.o + IPV6_HEADER_LEN;
  }
}

/** Decoded IPv6 fixed header: control path, tests, ICMPv6 generation. */
export interface Ipv6Repr {
  /** Source address, 16 bytes. */
  src: Uint8Array;
  /** Destination address, 16 bytes. */
  dst: Uint8Array;
  /** Next Header. */
  nextHeader: number;
  /** Hop Limit. */
  hopLimit: number;
  /** Payload Length. */
  payloadLen: number;
  /** Traffic Class, default 0. */
  trafficClass?: number;
  /** Flow Label, default 0. */
  flowLabel?: number;
}

/** Read a checked header into a new Repr; throws on checkLen failure. */
export function ipv6Parse(v: Ipv6View): Ipv6Repr {
  if (!v.checkLen()) throw new Error('ipv6: truncated or malformed header');
  return {
    src: v.b.slice(v.srcOff(), v.srcOff() + 16),
    dst: v.b.slice(v.dstOff(), v.dstOff() + 16),
    nextHeader: v.nextHeader(),
    hopLimit: v.hopLimit(),
    payloadLen: v.payloadLen(),
    trafficClass: v.trafficClass(),
    flowLabel: v.flowLabel(),
  };
}

/** Write the 40-byte header for `r` at b[o]; returns 40. */
export function ipv6Emit(r: Ipv6Repr, b: Uint8Array, o: number): number {
  const v = new Ipv6View().bind(b, o, IPV6_HEADER_LEN);
  b[o] = 0x60;
  b[o + 1] = 0;
  v.setTrafficClass(r.trafficClass ?? 0);
  v.setFlowLabel(r.flowLabel ?? 0);
  v.setPayloadLen(r.payloadLen);
  v.setNextHeader(r.nextHeader);
  v.setHopLimit(r.hopLimit);
  v.setSrc(r.src);
  v.setDst(r.dst);
  return IPV6_HEADER_LEN;
}

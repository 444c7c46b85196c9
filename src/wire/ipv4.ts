/**
 * IPv4 header (RFC 791 §3.1).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------+-------+-----------+---+-------------------------------+
 *   |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 *   +-------+-------+-----------+---+-----+-------------------------+
 *   |         Identification        |Flags|     Fragment Offset     |
 *   +---------------+---------------+-----+-------------------------+
 *   |  Time to Live |    Protocol   |        Header Checksum        |
 *   +---------------+---------------+-------------------------------+
 *   |                   Source Address (u32)                        |
 *   |                Destination Address (u32)                      |
 *   |                Options (IHL > 5) + padding                    |
 *   +---------------------------------------------------------------+
 *
 * API: `Ipv4View` (bind/checkLen, one getter/setter per field, headerLen,
 * payloadOffset/payloadLen, fillChecksum/verifyChecksum, decTtl),
 * `Ipv4OptIter` + `ipv4OptionsValid`/`ipv4FindOption` for the options area,
 * `field`, `IPV4_HEADER_LEN`, `IP_DF`/`IP_MF`/`IP_OFFMASK`, `Ipv4Repr` with
 * `ipv4Parse`/`ipv4Emit`. Addresses are u32 numbers.
 */

import { set16 } from './bytes.ts';
import { csumReplace16, ipv4HdrCsumFill, ipv4HdrCsumOk } from './checksum.ts';

/** Byte offsets of the IPv4 header fields. */
export const field = {
  VER_IHL: 0, DSCP_ECN: 1, LENGTH: 2, IDENT: 4, FLG_OFF: 6, TTL: 8, PROTOCOL: 9, CHECKSUM: 10, SRC_ADDR: 12, DST_ADDR: 16,
} as const;

/** Length of an IPv4 header without options. */
export const IPV4_HEADER_LEN = 20;
/** Longest IPv4 header (IHL 15). */
export const IPV4_MAX_HEADER_LEN = 60;
/** Don't Fragment flag in the flags/fragment-offset word. */
export const IP_DF = 0x4000;
/** More Fragments flag in the flags/fragment-offset word. */
export const IP_MF = 0x2000;
/** Fragment offset mask (in 8-octet units) in the flags/fragment-offset word. */
export const IP_OFFMASK = 0x1fff;
/** Option type End of Option List (RFC 791): one octet, the rest is padding. */
export const IPOPT_END = 0;
/** Option type No Operation (RFC 791): one octet. */
export const IPOPT_NOOP = 1;

/** Zero-copy view of an IPv4 header. */
export class Ipv4View {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the IPv4 header in `b`. */
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
   * The one bounds check: n >= 20, version 4, 20 <= IHL*4 <= n and
   * IHL*4 <= totalLen <= n. Bytes past totalLen (Ethernet padding) are
   * allowed. Options are not inspected; use `ipv4OptionsValid`.
   */
  checkLen(): boolean {
    const b = this.b;
    const o = this.o;
    const n = this.n;
    if (n < IPV4_HEADER_LEN) return false;
    const vi = b[o];
    if (vi >>> 4 !== 4) return false;
    const hl = (vi & 0x0f) << 2;
    if (hl < IPV4_HEADER_LEN || hl > n) return false;
    const tl = (b[o + 2] << 8) | b[o + 3]; // Total Length
    return tl >= hl && tl <= n;
  }

  /** Version (4). */
  version(): number {
    return this.b[this.o] >>> 4;
  }

  /** Set the version nibble. */
  setVersion(v: number): void {
    this.b[this.o] = ((v & 0x0f) << 4) | (this.b[this.o] & 0x0f);
  }

  /** Internet Header Length in 32-bit words. */
  ihl(): number {
    return this.b[this.o] & 0x0f;
  }

  /** Set the IHL nibble (32-bit words). */
  setIhl(v: number): void {
    this.b[this.o] = (this.b[this.o] & 0xf0) | (v & 0x0f);
  }

  /** Header length in bytes (IHL * 4). */
  headerLen(): number {
    return (this.b[this.o] & 0x0f) << 2;
  }

  /** Differentiated Services Code Point (RFC 2474). */
  dscp(): number {
    return this.b[this.o + 1] >>> 2;
  }

  /** Set the DSCP. */
  setDscp(v: number): void {
    this.b[this.o + 1] = ((v & 0x3f) << 2) | (this.b[this.o + 1] & 3);
  }

  /** Explicit Congestion Notification bits (RFC 3168). */
  ecn(): number {
    return this.b[this.o + 1] & 3;
  }

  /** Set the ECN bits. */
  setEcn(v: number): void {
    this.b[this.o + 1] = (this.b[this.o + 1] & 0xfc) | (v & 3);
  }

  /** Total Length: header plus payload, in bytes. */
  totalLen(): number {
    const i = this.o + field.LENGTH;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the Total Length. */
  setTotalLen(v: number): void {
    const i = this.o + field.LENGTH;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Identification. */
  ident(): number {
    const i = this.o + field.IDENT;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the Identification. */
  setIdent(v: number): void {
    const i = this.o + field.IDENT;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Don't Fragment flag. */
  dontFrag(): boolean {
    return (this.b[this.o + field.FLG_OFF] & 0x40) !== 0;
  }

  /** Set or clear Don't Fragment. */
  setDontFrag(v: boolean): void {
    const i = this.o + field.FLG_OFF;
    this.b[i] = v ? this.b[i] | 0x40 : this.b[i] & ~0x40;
  }

  /** More Fragments flag. */
  moreFrags(): boolean {
    return (this.b[this.o + field.FLG_OFF] & 0x20) !== 0;
  }

  /** Set or clear More Fragments. */
  setMoreFrags(v: boolean): void {
    const i = this.o + field.FLG_OFF;
    this.b[i] = v ? this.b[i] | 0x20 : this.b[i] & ~0x20;
  }

  /** Fragment offset in bytes (the field counts 8-octet units). */
  fragOffset(): number {
    const i = this.o + field.FLG_OFF;
    return (((this.b[i] << 8) | this.b[i + 1]) & IP_OFFMASK) << 3;
  }

  /** Set the fragment offset in bytes (must be a multiple of 8). */
  setFragOffset(bytes: number): void {
    const i = this.o + field.FLG_OFF;
    const w = bytes >>> 3;
    this.b[i] = (this.b[i] & 0xe0) | ((w >>> 8) & 0x1f);
    this.b[i + 1] = w & 0xff;
  }

  /** True for any fragment: MF set or a non-zero offset (kernel ip_is_fragment). */
  isFragment(): boolean {
    const i = this.o + field.FLG_OFF;
    return ((this.b[i] & 0x3f) | this.b[i + 1]) !== 0; // MF or any offset bit
  }

  /** Time to Live. */
  ttl(): number {
    return this.b[this.o + field.TTL];
  }

  /** Set the TTL (checksum not updated; see decTtl). */
  setTtl(v: number): void {
    this.b[this.o + field.TTL] = v;
  }

  /** Protocol (IPPROTO_*). */
  protocol(): number {
    return this.b[this.o + field.PROTOCOL];
  }

  /** Set the protocol. */
  setProtocol(v: number): void {
    this.b[this.o + field.PROTOCOL] = v;
  }

  /** Header checksum as stored. */
  checksum(): number {
    const i = this.o + field.CHECKSUM;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Store a header checksum. */
  setChecksum(v: number): void {
    const i = this.o + field.CHECKSUM;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Source address (u32). */
  src(): number {
    const b = this.b;
    const i = this.o + field.SRC_ADDR;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the source address (checksum not updated). */
  setSrc(v: number): void {
    const b = this.b;
    const i = this.o + field.SRC_ADDR;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Destination address (u32). */
  dst(): number {
    const b = this.b;
    const i = this.o + field.DST_ADDR;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the destination address (checksum not updated). */
  setDst(v: number): void {
    const b = this.b;
    const i = this.o + field.DST_ADDR;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Recompute and store the header checksum from scratch; returns it. */
  fillChecksum(): number {
    return ipv4HdrCsumFill(this.b, this.o);
  }

  /** True when the header checksum is correct. */
  verifyChecksum(): boolean {
    return ipv4HdrCsumOk(this.b, this.o);
  }

  /**
   * Decrement the TTL and patch the checksum incrementally (RFC 1624; TTL
   * and protocol form one 16-bit word, RFC 1141 §2). Returns the new TTL.
   * The caller drops packets whose TTL is <= 1 first.
   */
  decTtl(): number {
    const b = this.b;
    const i = this.o + field.TTL;
    const ttl = b[i];
    const old = (ttl << 8) | b[i + 1];
    const nw = old - 0x100;
    b[i] = ttl - 1;
    this.setChecksum(csumReplace16(this.checksum(), old, nw));
    return ttl - 1;
  }

  /** Offset in `b` of the payload (first byte after the options). */
  payloadOffset(): number {
    return this.o + this.headerLen();
  }

  /** Payload length per Total Length (excludes Ethernet padding). */
  payloadLen(): number {
    return this.totalLen() - this.headerLen();
  }
}

/** `Ipv4OptIter.next()` result at the end of the options (or after End of Option List). */
export const IPV4_OPT_DONE = -1;
/** `Ipv4OptIter.next()` result for an option whose length is < 2 or runs past the header. */
export const IPV4_OPT_MALFORMED = -2;

/**
 * Iterator over the IPv4 options area (RFC 791 §3.1 "Options"): single-octet
 * End (0) and No-Op (1), otherwise type, length (>= 2, counting both octets)
 * and data. Allocate once and re-bind per packet.
 */
export class Ipv4OptIter {
  /** Header bytes. */
  b!: Uint8Array;
  /** Offset of the current option in `b`. */
  off = 0;
  /** Current option type. */
  type = 0;
  /** Current option length in bytes, including type and length octets. */
  len = 0;
  private pos = 0;
  private end = 0;

  /** Start iterating the options of the IPv4 header at b[ipOff]; the header must have passed checkLen. */
  bind(b: Uint8Array, ipOff: number): this {
    this.b = b;
    this.pos = ipOff + IPV4_HEADER_LEN;
    this.end = ipOff + ((b[ipOff] & 0x0f) << 2);
    return this;
  }

  /** Advance; returns the option type, IPV4_OPT_DONE or IPV4_OPT_MALFORMED. */
  next(): number {
    const p = this.pos;
    if (p >= this.end) return IPV4_OPT_DONE;
    const t = this.b[p];
    if (t === IPOPT_END) {
      this.pos = this.end;
      return IPV4_OPT_DONE;
    }
    let l = 1;
    if (t !== IPOPT_NOOP) {
      if (p + 1 >= this.end) return IPV4_OPT_MALFORMED;
      l = this.b[p + 1];
      if (l < 2 || p + l > this.end) return IPV4_OPT_MALFORMED;
    }
    this.off = p;
    this.type = t;
    this.len = l;
    this.pos = p + l;
    return t;
  }
}

const optIter = new Ipv4OptIter();

/** True when every option of the header at b[ipOff] is well formed. */
export function ipv4OptionsValid(b: Uint8Array, ipOff: number): boolean {
  const it = optIter.bind(b, ipOff);
  let t: number;
  while ((t = it.next()) >= 0);
  return t === IPV4_OPT_DONE;
}

/** Offset in `b` of the first option of `type`, -1 if absent, -2 if the options are malformed. */
export function ipv4FindOption(b: Uint8Array, ipOff: number, type: number): number {
  const it = optIter.bind(b, ipOff);
  for (;;) {
    const t = it.next();
    if (t === type) return it.off;
    if (t < 0) return t === IPV4_OPT_DONE ? -1 : -2;
  }
}

/** Decoded IPv4 header (options are skipped): control path, tests, ICMP generation. */
export interface Ipv4Repr {
  /** Source address (u32). */
  src: number;
  /** Destination address (u32). */
  dst: number;
  /** Protocol (IPPROTO_*). */
  protocol: number;
  /** Time to Live. */
  ttl: number;
  /** Payload length in bytes (Total Length minus header). */
  payloadLen: number;
  /** DSCP, default 0. */
  dscp?: number;
  /** ECN, default 0. */
  ecn?: number;
  /** Identification, default 0. */
  ident?: number;
  /** Don't Fragment, default false. */
  dontFrag?: boolean;
  /** More Fragments, default false. */
  moreFrags?: boolean;
  /** Fragment offset in bytes, default 0. */
  fragOffset?: number;
}

/** Read a checked header into a new Repr; throws on checkLen failure or a bad checksum. */
export function ipv4Parse(v: Ipv4View): Ipv4Repr {
  if (!v.checkLen()) throw new Error('ipv4: truncated or malformed header');
  if (!v.verifyChecksum()) throw new Error('ipv4: bad header checksum');
  return {
    src: v.src(), dst: v.dst(), protocol: v.protocol(), ttl: v.ttl(), payloadLen: v.payloadLen(),
    dscp: v.dscp(), ecn: v.ecn(), ident: v.ident(), dontFrag: v.dontFrag(), moreFrags: v.moreFrags(),
    fragOffset: v.fragOffset(),
  };
}

/** Write a 20-byte header for `r` at b[o], checksum included; returns 20. */
export function ipv4Emit(r: Ipv4Repr, b: Uint8Array, o: number): number {
  const v = new Ipv4View().bind(b, o, IPV4_HEADER_LEN);
  b[o] = 0x45;
  b[o + 1] = 0;
  v.setDscp(r.dscp ?? 0);
  v.setEcn(r.ecn ?? 0);
  v.setTotalLen(IPV4_HEADER_LEN + r.payloadLen);
  v.setIdent(r.ident ?? 0);
  set16(b, o + field.FLG_OFF, 0);
  v.setDontFrag(r.dontFrag ?? false);
  v.setMoreFrags(r.moreFrags ?? false);
  v.setFragOffset(r.fragOffset ?? 0);
  v.setTtl(r.ttl);
  v.setProtocol(r.protocol);
  v.setSrc(r.src);
  v.setDst(r.dst);
  v.fillChecksum();
  return IPV4_HEADER_LEN;
}

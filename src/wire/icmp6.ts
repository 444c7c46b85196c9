/**
 * ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861 §4).
 *
 *   0       1       2               4                               8
 *   +-------+-------+---------------+-------------------------------+
 *   | type  | code  |   checksum    | by type (below)               |
 *   +-------+-------+---------------+-------------------------------+
 *   echo 128/129: ident u16 @4, seq u16 @6     packet-too-big 2: MTU u32 @4
 *   param-problem 4: pointer u32 @4            RS 133: reserved; options @8
 *   RA 134: cur hop limit @4, M|O flags @5, router lifetime u16 @6,
 *           reachable time u32 @8, retrans timer u32 @12; options @16
 *   NS 135: reserved; target @8; options @24
 *   NA 136: R|S|O flags @4; target @8; options @24
 *   Redirect 137: reserved; target @8; destination @24; options @40
 *   NDP option: type u8, length u8 (8-octet units, 0 is invalid), value;
 *   source/target link-layer address options (1/2) carry a 6-byte MAC @2.
 *
 * The checksum covers an IPv6 pseudo-header (RFC 4443 §2.3). RFC 4861 §7.1
 * also requires hop limit 255 and code 0 for NDP; callers check those.
 *
 * API: `Icmp6View` (bind/checkLen/ndpCheckLen, field getters/setters incl.
 * the NDP ones, targetOff/destOff, ndpOptionsOffset, findLlAddr, fill/
 * verifyChecksum), `field`, `ICMPV6_*` constants, `Icmp6Repr` with
 * `icmp6Parse`/`icmp6Emit`/`icmp6BufferLen`. NDP message types, options and
 * the NDP part of the Repr live in ndp.ts (smoltcp splits ndisc.rs the same way).
 */

import { get32, set32 } from './bytes.ts';
import { l4CsumFill6, l4CsumOk6 } from './checksum.ts';
import { IPPROTO_ICMPV6 } from './ip.ts';
import {
  ndpBufferLen, ndpEmit, ndpFindLlAddr, ndpOptionsStart, ndpOptionsValid, ndpParse, type NdpRepr,
} from './ndp.ts';

/** Byte offsets of the ICMPv6 and NDP fields. */
export const field = {
  TYPE: 0, CODE: 1, CHECKSUM: 2, ECHO_IDENT: 4, ECHO_SEQNO: 6, MTU: 4, POINTER: 4, NA_FLAGS: 4,
  RA_CUR_HOP_LIMIT: 4, RA_FLAGS: 5, RA_ROUTER_LIFETIME: 6, RA_REACHABLE_TIME: 8, RA_RETRANS_TIMER: 12,
  TARGET: 8, REDIRECT_DEST: 24,
} as const;

/** Length of the ICMPv6 header (type, code, checksum, 4 bytes by type). */
export const ICMPV6_HEADER_LEN = 8;

/** Destination Unreachable. */
export const ICMPV6_DEST_UNREACH = 1;
/** Packet Too Big. */
export const ICMPV6_PKT_TOOBIG = 2;
/** Time Exceeded. */
export const ICMPV6_TIME_EXCEED = 3;
/** Parameter Problem. */
export const ICMPV6_PARAMPROB = 4;
/** Echo Request. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Echo Reply. */
export const ICMPV6_ECHO_REPLY = 129;
/** Zero-copy view of an ICMPv6 message; bind `n` to the ICMPv6 message length. */
export class Icmp6View {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the ICMPv6 header in `b`. */
  o = 0;
  /** Length of the ICMPv6 message. */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check for non-NDP messages: the 8-byte header fits. */
  checkLen(): boolean {
    return this.n >= ICMPV6_HEADER_LEN;
  }

  /**
   * Length rules for NDP (RFC 4861 §6.1, §7.1): the fixed part of the type
   * fits (RS 8, RA 16, NS/NA 24, Redirect 40) and every option has a
   * non-zero length and ends inside the message. False for non-NDP types.
   */
  ndpCheckLen(): boolean {
    if (this.n < ICMPV6_HEADER_LEN) return false;
    const start = ndpOptionsStart(this.b[this.o]);
    if (start < 0 || this.n < start) return false;
    return ndpOptionsValid(this.b, this.o + start, this.o + this.n);
  }

  /** Message type. */
  type(): number {
    return this.b[this.o];
  }

  /** Set the message type. */
  setType(v: number): void {
    this.b[this.o] = v;
  }

  /** Message code. */
  code(): number {
    return this.b[this.o + field.CODE];
  }

  /** Set the message code. */
  setCode(v: number): void {
    this.b[this.o + field.CODE] = v;
  }

  /** Checksum as stored. */
  checksum(): number {
    const i = this.o + field.CHECKSUM;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Store a checksum. */
  setChecksum(v: number): void {
    const i = this.o + field.CHECKSUM;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Echo identifier. */
  echoIdent(): number {
    const i = this.o + field.ECHO_IDENT;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the echo identifier. */
  setEchoIdent(v: number): void {
    const i = this.o + field.ECHO_IDENT;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Echo sequence number. */
  echoSeq(): number {
    const i = this.o + field.ECHO_SEQNO;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the echo sequence number. */
  setEchoSeq(v: number): void {
    const i = this.o + field.ECHO_SEQNO;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Packet-too-big MTU (u32). */
  mtu(): number {
    const b = this.b;
    const i = this.o + field.MTU;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the packet-too-big MTU. */
  setMtu(v: number): void {
    const b = this.b;
    const i = this.o + field.MTU;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Parameter-problem pointer (u32 octet offset into the invoking packet). */
  pointer(): number {
    const b = this.b;
    const i = this.o + field.POINTER;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the parameter-problem pointer. */
  setPointer(v: number): void {
    const b = this.b;
    const i = this.o + field.POINTER;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** NA flags byte (NDP_NA_ROUTER | NDP_NA_SOLICITED | NDP_NA_OVERRIDE). */
  naFlags(): number {
    return this.b[this.o + field.NA_FLAGS];
  }

  /** Set the NA flags byte (the 3 reserved bytes after it are zeroed). */
  setNaFlags(v: number): void {
    this.b.fill(0, this.o + 5, this.o + 8);
    this.b[this.o + field.NA_FLAGS] = v & 0xe0;
  }

  /** RA Cur Hop Limit. */
  raCurHopLimit(): number {
    return this.b[this.o + field.RA_CUR_HOP_LIMIT];
  }

  /** Set the RA Cur Hop Limit. */
  setRaCurHopLimit(v: number): void {
    this.b[this.o + field.RA_CUR_HOP_LIMIT] = v;
  }

  /** RA flags byte (NDP_RA_MANAGED | NDP_RA_OTHER). */
  raFlags(): number {
    return this.b[this.o + field.RA_FLAGS];
  }

  /** Set the RA flags byte. */
  setRaFlags(v: number): void {
    this.b[this.o + field.RA_FLAGS] = v;
  }

  /** RA Router Lifetime in seconds. */
  raRouterLifetime(): number {
    const i = this.o + field.RA_ROUTER_LIFETIME;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the RA Router Lifetime. */
  setRaRouterLifetime(v: number): void {
    const i = this.o + field.RA_ROUTER_LIFETIME;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** RA Reachable Time in milliseconds. */
  raReachableTime(): number {
    const b = this.b;
    const i = this.o + field.RA_REACHABLE_TIME;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the RA Reachable Time. */
  setRaReachableTime(v: number): void {
    const b = this.b;
    const i = this.o + field.RA_REACHABLE_TIME;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** RA Retrans Timer in milliseconds. */
  raRetransTimer(): number {
    const b = this.b;
    const i = this.o + field.RA_RETRANS_TIMER;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the RA Retrans Timer. */
  setRaRetransTimer(v: number): void {
    const b = this.b;
    const i = this.o + field.RA_RETRANS_TIMER;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Offset in `b` of the NS/NA/Redirect target address. */
  targetOff(): number {
    return this.o + field.TARGET;
  }

  /** Offset in `b` of the Redirect destination address. */
  destOff(): number {
    return this.o + field.REDIRECT_DEST;
  }

  /**
   * Offset in `b` of the MAC in the first link-layer address option of
   * `type` (ND_OPT_SOURCE_LL_ADDR / ND_OPT_TARGET_LL_ADDR); -1 if absent or
   * not an NDP message, -2 if the options are malformed.
   */
  findLlAddr(type: number): number {
    const start = this.ndpOptionsOffset();
    return start < 0 ? -1 : ndpFindLlAddr(this.b, start, this.o + this.n, type);
  }

  /** Offset in `b` of the NDP options for this type, or -1 for non-NDP types. */
  ndpOptionsOffset(): number {
    const s = ndpOptionsStart(this.b[this.o]);
    return s < 0 ? -1 : this.o + s;
  }

  /** True for error messages (types 0-127, RFC 4443 §2.1). */
  isError(): boolean {
    return this.b[this.o] < 128;
  }

  /** Offset in `b` of the data (echo payload or the quoted invoking packet). */
  dataOffset(): number {
    return this.o + ICMPV6_HEADER_LEN;
  }

  /** Recompute and store the checksum; addresses are at srcOff/dstOff in `b`. */
  fillChecksum(srcOff: number, dstOff: number): number {
    return l4CsumFill6(this.b, this.o, this.n, IPPROTO_ICMPV6, srcOff, dstOff);
  }

  /** True when the checksum is correct; addresses are at srcOff/dstOff in `b`. */
  verifyChecksum(srcOff: number, dstOff: number): boolean {
    return l4CsumOk6(this.b, this.o, this.n, IPPROTO_ICMPV6, srcOff, dstOff);
  }
}

/** Decoded ICMPv6 message: control path, tests, NDP replies and error generation (NDP kinds: ndp.ts). */
export type Icmp6Repr =
  | { kind: 'echo-request' | 'echo-reply'; ident: number; seq: number; dataLen: number }
  | { kind: 'dst-unreach' | 'time-exceeded'; code: number; dataLen: number }
  | { kind: 'pkt-too-big'; mtu: number; dataLen: number }
  | { kind: 'param-problem'; code: number; pointer: number; dataLen: number }
  | { kind: 'other'; type: number; code: number; rest: number; dataLen: number }
  | NdpRepr;

/**
 * Read a message into a new Repr; throws on a length failure (ndpCheckLen
 * for NDP types). The checksum is not verified (it needs the IP header).
 */
export function icmp6Parse(v: Icmp6View): Icmp6Repr {
  const t = v.type();
  if (ndpOptionsStart(t) >= 0) return ndpParse(v);
  if (!v.checkLen()) throw new Error(`icmp6: truncated or malformed type ${t}`);
  const dataLen = v.n - ICMPV6_HEADER_LEN;
  const code = v.code();
  switch (t) {
    case ICMPV6_ECHO_REQUEST: return { kind: 'echo-request', ident: v.echoIdent(), seq: v.echoSeq(), dataLen };
    case ICMPV6_ECHO_REPLY: return { kind: 'echo-reply', ident: v.echoIdent(), seq: v.echoSeq(), dataLen };
    case ICMPV6_DEST_UNREACH: return { kind: 'dst-unreach', code, dataLen };
    case ICMPV6_TIME_EXCEED: return { kind: 'time-exceeded', code, dataLen };
    case ICMPV6_PKT_TOOBIG: return { kind: 'pkt-too-big', mtu: v.mtu(), dataLen };
    case ICMPV6_PARAMPROB: return { kind: 'param-problem', code, pointer: v.pointer(), dataLen };
    default: return { kind: 'other', type: t, code, rest: get32(v.b, v.o + 4), dataLen };
  }
}

/** Bytes icmp6Emit writes for `r` (data bytes of echo/error messages included). */
export function icmp6BufferLen(r: Icmp6Repr): number {
  switch (r.kind) {
    case 'rs':
    case 'ra':
    case 'ns':
    case 'na':
    case 'redirect':
      return ndpBufferLen(r);
    default:
      return ICMPV6_HEADER_LEN + r.dataLen;
  }
}

/**
 * Write `r` at b[o] with checksum 0 (fill it with Icmp6View.fillChecksum or
 * l4CsumFill6 once the IPv6 header is written); echo/error data must already
 * be at b[o+8]. Returns icmp6BufferLen(r).
 */
export function icmp6Emit(r: Icmp6Repr, b: Uint8Array, o: number): number {
  const v = new Icmp6View().bind(b, o, ICMPV6_HEADER_LEN);
  set32(b, o, 0);
  set32(b, o + 4, 0);
  switch (r.kind) {
    case 'echo-request':
    case 'echo-reply':
      v.setType(r.kind === 'echo-request' ? ICMPV6_ECHO_REQUEST : ICMPV6_ECHO_REPLY);
      v.setEchoIdent(r.ident);
      v.setEchoSeq(r.seq);
      break;
    case 'dst-unreach':
    case 'time-exceeded':
      v.setType(r.kind === 'dst-unreach' ? ICMPV6_DEST_UNREACH : ICMPV6_TIME_EXCEED);
      v.setCode(r.code);
      break;
    case 'pkt-too-big':
      v.setType(ICMPV6_PKT_TOOBIG);
      v.setMtu(r.mtu);
      break;
    case 'param-problem':
      v.setType(ICMPV6_PARAMPROB);
      v.setCode(r.code);
      v.setPointer(r.pointer);
      break;
    case 'other':
      v.setType(r.type);
      v.setCode(r.code);
      set32(b, o + 4, r.rest);
      break;
    default:
      return ndpEmit(r, b, o);
  }
  return icmp6BufferLen(r);
}

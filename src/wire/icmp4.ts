/**
 * ICMP for IPv4 (RFC 792), plus the next-hop MTU of RFC 1191 §4.
 *
 *   0       1       2               4               6               8
 *   +-------+-------+---------------+-------------------------------+
 *   | type  | code  |   checksum    | rest of header (by type):     |
 *   +-------+-------+---------------+   echo: ident | seq           |
 *   | data ...                      |   dst-unreach/4: unused | MTU |
 *                                   |   param-problem: pointer      |
 *                                   |   redirect: gateway (u32)     |
 *
 * Errors quote the offending IP header plus at least 8 bytes of its payload.
 * The checksum covers the whole ICMP message; there is no pseudo-header.
 *
 * API: `Icmp4View` (bind/checkLen, type/code/checksum, echoIdent/echoSeq,
 * nextHopMtu, pointer, gateway, isError, dataOffset, fillChecksum/
 * verifyChecksum), `field`, `ICMP_*` constants (kernel spellings),
 * `Icmp4Repr` with `icmp4Parse`/`icmp4Emit`.
 */

import { get32, set32 } from './bytes.ts';
import { finish, fold, sum16 } from './checksum.ts';

/** Byte offsets of the ICMP header fields. */
export const field = { TYPE: 0, CODE: 1, CHECKSUM: 2, ECHO_IDENT: 4, ECHO_SEQNO: 6, POINTER: 4, GATEWAY: 4, MTU: 6, DATA: 8 } as const;

/** Length of the ICMP header (type, code, checksum, 4 bytes rest of header). */
export const ICMP_HEADER_LEN = 8;

/** Echo Reply. */
export const ICMP_ECHOREPLY = 0;
/** Destination Unreachable. */
export const ICMP_DEST_UNREACH = 3;
/** Redirect. */
export const ICMP_REDIRECT = 5;
/** Echo Request. */
export const ICMP_ECHO = 8;
/** Time Exceeded. */
export const ICMP_TIME_EXCEEDED = 11;
/** Parameter Problem. */
export const ICMP_PARAMETERPROB = 12;
/** Dest-unreach code: network unreachable. */
export const ICMP_NET_UNREACH = 0;
/** Dest-unreach code: host unreachable. */
export const ICMP_HOST_UNREACH = 1;
/** Dest-unreach code: protocol unreachable. */
export const ICMP_PROT_UNREACH = 2;
/** Dest-unreach code: port unreachable. */
export const ICMP_PORT_UNREACH = 3;
/** Dest-unreach code: fragmentation needed and DF set (carries the next-hop MTU). */
export const ICMP_FRAG_NEEDED = 4;
/** Time-exceeded code: TTL exceeded in transit. */
export const ICMP_EXC_TTL = 0;
/** Time-exceeded code: fragment reassembly time exceeded. */
export const ICMP_EXC_FRAGTIME = 1;

/** Zero-copy view of an ICMP message; bind `n` to the ICMP message length. */
export class Icmp4View {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the ICMP header in `b`. */
  o = 0;
  /** Length of the ICMP message (IP payload length). */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check: the 8-byte header fits. */
  checkLen(): boolean {
    return this.n >= ICMP_HEADER_LEN;
  }

  /** Message type (ICMP_*). */
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

  /** Echo identifier (echo request/reply; Cilium CT uses it as a port). */
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

  /** Next-hop MTU of a fragmentation-needed message (RFC 1191 §4). */
  nextHopMtu(): number {
    const i = this.o + field.MTU;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the next-hop MTU (the 2 bytes before it are zeroed as "unused"). */
  setNextHopMtu(v: number): void {
    this.b[this.o + 4] = 0;
    this.b[this.o + 5] = 0;
    const i = this.o + field.MTU;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Parameter-problem pointer (octet index into the quoted header). */
  pointer(): number {
    return this.b[this.o + field.POINTER];
  }

  /** Set the parameter-problem pointer (the 3 bytes after it are zeroed). */
  setPointer(v: number): void {
    this.b.fill(0, this.o + 5, this.o + 8);
    this.b[this.o + field.POINTER] = v;
  }

  /** Redirect gateway address (u32). */
  gateway(): number {
    const b = this.b;
    const i = this.o + field.GATEWAY;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the redirect gateway address. */
  setGateway(v: number): void {
    const b = this.b;
    const i = this.o + field.GATEWAY;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** True for error messages, which quote an IP header (dst-unreach, redirect, time-exceeded, param-problem). */
  isError(): boolean {
    const t = this.b[this.o];
    return t === ICMP_DEST_UNREACH || t === ICMP_REDIRECT || t === ICMP_TIME_EXCEEDED || t === ICMP_PARAMETERPROB;
  }

  /** Offset in `b` of the data (echo payload or quoted IP header). */
  dataOffset(): number {
    return this.o + ICMP_HEADER_LEN;
  }

  /** Bytes of data after the header. */
  dataLen(): number {
    return this.n - ICMP_HEADER_LEN;
  }

  /** Recompute and store the checksum over the n-byte message; returns it. */
  fillChecksum(): number {
    this.setChecksum(0);
    const c = finish(sum16(this.b, this.o, this.n));
    this.setChecksum(c);
    return c;
  }

  /** True when the checksum over the n-byte message is correct. */
  verifyChecksum(): boolean {
    return fold(sum16(this.b, this.o, this.n)) === 0xffff;
  }
}

/** Decoded ICMP message header: control path, tests, error generation. */
export type Icmp4Repr =
  | { kind: 'echo-request' | 'echo-reply'; ident: number; seq: number; dataLen: number }
  | { kind: 'dst-unreach'; code: number; mtu: number; dataLen: number }
  | { kind: 'time-exceeded'; code: number; dataLen: number }
  | { kind: 'param-problem'; code: number; pointer: number; dataLen: number }
  | { kind: 'redirect'; code: number; gateway: number; dataLen: number }
  | { kind: 'other'; type: number; code: number; rest: number; dataLen: number };

/** Read a message into a new Repr; throws on checkLen failure or a bad checksum. */
export function icmp4Parse(v: Icmp4View): Icmp4Repr {
  if (!v.checkLen()) throw new Error('icmp: truncated header');
  if (!v.verifyChecksum()) throw new Error('icmp: bad checksum');
  const dataLen = v.dataLen();
  const code = v.code();
  switch (v.type()) {
    case ICMP_ECHO: return { kind: 'echo-request', ident: v.echoIdent(), seq: v.echoSeq(), dataLen };
    case ICMP_ECHOREPLY: return { kind: 'echo-reply', ident: v.echoIdent(), seq: v.echoSeq(), dataLen };
    case ICMP_DEST_UNREACH: return { kind: 'dst-unreach', code, mtu: v.nextHopMtu(), dataLen };
    case ICMP_TIME_EXCEEDED: return { kind: 'time-exceeded', code, dataLen };
    case ICMP_PARAMETERPROB: return { kind: 'param-problem', code, pointer: v.pointer(), dataLen };
    case ICMP_REDIRECT: return { kind: 'redirect', code, gateway: v.gateway(), dataLen };
    default: return { kind: 'other', type: v.type(), code, rest: get32(v.b, v.o + 4), dataLen };
  }
}

/**
 * Write the 8-byte header for `r` at b[o] and fill the checksum over the
 * header plus the `r.dataLen` data bytes, which must already be at b[o+8].
 * Returns 8 + dataLen.
 */
export function icmp4Emit(r: Icmp4Repr, b: Uint8Array, o: number): number {
  const len = ICMP_HEADER_LEN + r.dataLen;
  const v = new Icmp4View().bind(b, o, len);
  set32(b, o + 4, 0);
  switch (r.kind) {
    case 'echo-request':
    case 'echo-reply':
      v.setType(r.kind === 'echo-request' ? ICMP_ECHO : ICMP_ECHOREPLY);
      v.setCode(0);
      v.setEchoIdent(r.ident);
      v.setEchoSeq(r.seq);
      break;
    case 'dst-unreach':
      v.setType(ICMP_DEST_UNREACH);
      v.setCode(r.code);
      v.setNextHopMtu(r.mtu);
      break;
    case 'time-exceeded':
      v.setType(ICMP_TIME_EXCEEDED);
      v.setCode(r.code);
      break;
    case 'param-problem':
      v.setType(ICMP_PARAMETERPROB);
      v.setCode(r.code);
      v.setPointer(r.pointer);
      break;
    case 'redirect':
      v.setType(ICMP_REDIRECT);
      v.setCode(r.code);
      v.setGateway(r.gateway);
      break;
    case 'other':
      v.setType(r.type);
      v.setCode(r.code);
      set32(b, o + 4, r.rest);
      break;
  }
  v.fillChecksum();
  return len;
}

/**
 * Geneve header and options (RFC 8926 §3.4, §3.5), carried in UDP 6081.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +---+-----------+-+-+-----------+-------------------------------+
 *   |Ver|  Opt Len  |O|C|   Rsvd.   |         Protocol Type         |
 *   +---+-----------+-+-+-----------+---------------+---------------+
 *   |        Virtual Network Identifier (VNI)       |   Reserved    |
 *   +-----------------------------------------------+---------------+
 *   |   Options: Opt Len * 4 bytes of TLVs, each:                   |
 *   |   Option Class (16) | Type (8, high bit = critical) | R R R | Length (5) |
 *   |   Length * 4 bytes of data                                    |
 *   +---------------------------------------------------------------+
 *
 * Version must be 0; "packets received by a tunnel endpoint with an unknown
 * version MUST be dropped" (§3.4). Cilium's DSR uses option class 0x014B,
 * type 0x81 (bpf/lib/tunnel.h).
 *
 * API: `GeneveView` (bind/checkLen, version, optLen/optionsLen, oam,
 * critical, protocol, vni, headerLen, optionsOffset, payloadOffset),
 * `GeneveOptIter`, `geneveFindOption`, `field`, `GENEVE_*` constants,
 * `GeneveRepr` with `geneveParse`/`geneveEmit`/`geneveBufferLen`.
 */

import { set16 } from './bytes.ts';
import { ETH_P_TEB } from './ethernet.ts';

/** Byte offsets of the Geneve header fields. */
export const field = { VER_OPTLEN: 0, FLAGS: 1, PROTOCOL: 2, VNI: 4, OPTIONS: 8 } as const;

/** Length of the Geneve base header. */
export const GENEVE_HEADER_LEN = 8;
/** IANA Geneve port. */
export const GENEVE_PORT = 6081;
/** O bit: control (OAM) packet. */
export const GENEVE_F_OAM = 0x80;
/** C bit: critical options present. */
export const GENEVE_F_CRITICAL = 0x40;
/** Option type bit: critical option. */
export const GENEVE_OPT_TYPE_CRITICAL = 0x80;
/** Option class used by Cilium. */
export const GENEVE_OPT_CLASS_CILIUM = 0x014b;
/** Cilium's DSR option type (critical | 1). */
export const GENEVE_OPT_TYPE_CILIUM_DSR = 0x81;

/** Zero-copy view of a Geneve header. */
export class GeneveView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the Geneve header in `b`. */
  o = 0;
  /** Bytes available from `o` (UDP payload length). */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check: n >= 8, version 0, 8 + optLen*4 <= n. Options are not walked. */
  checkLen(): boolean {
    return this.n >= GENEVE_HEADER_LEN && this.b[this.o] >>> 6 === 0 &&
      GENEVE_HEADER_LEN + ((this.b[this.o] & 0x3f) << 2) <= this.n;
  }

  /** Version (0). */
  version(): number {
    return this.b[this.o] >>> 6;
  }

  /** Set the version. */
  setVersion(v: number): void {
    this.b[this.o] = ((v & 3) << 6) | (this.b[this.o] & 0x3f);
  }

  /** Opt Len in 4-byte words. */
  optLen(): number {
    return this.b[this.o] & 0x3f;
  }

  /** Set Opt Len (4-byte words). */
  setOptLen(v: number): void {
    this.b[this.o] = (this.b[this.o] & 0xc0) | (v & 0x3f);
  }

  /** Options length in bytes. */
  optionsLen(): number {
    return (this.b[this.o] & 0x3f) << 2;
  }

  /** O bit (OAM). */
  oam(): boolean {
    return (this.b[this.o + field.FLAGS] & GENEVE_F_OAM) !== 0;
  }

  /** Set or clear the O bit. */
  setOam(v: boolean): void {
    const i = this.o + field.FLAGS;
    this.b[i] = v ? this.b[i] | GENEVE_F_OAM : this.b[i] & ~GENEVE_F_OAM;
  }

  /** C bit (critical options present). */
  critical(): boolean {
    return (this.b[this.o + field.FLAGS] & GENEVE_F_CRITICAL) !== 0;
  }

  /** Set or clear the C bit. */
  setCritical(v: boolean): void {
    const i = this.o + field.FLAGS;
    this.b[i] = v ? this.b[i] | GENEVE_F_CRITICAL : this.b[i] & ~GENEVE_F_CRITICAL;
  }

  /** Protocol Type of the payload (an ethertype; ETH_P_TEB for Ethernet). */
  protocol(): number {
    const i = this.o + field.PROTOCOL;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the Protocol Type. */
  setProtocol(v: number): void {
    const i = this.o + field.PROTOCOL;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** 24-bit VNI. */
  vni(): number {
    const i = this.o + field.VNI;
    return (this.b[i] << 16) | (this.b[i + 1] << 8) | this.b[i + 2];
  }

  /** Set the 24-bit VNI (the reserved byte after it is zeroed). */
  setVni(v: number): void {
    const i = this.o + field.VNI;
    this.b[i] = (v >>> 16) & 0xff;
    this.b[i + 1] = (v >>> 8) & 0xff;
    this.b[i + 2] = v & 0xff;
    this.b[i + 3] = 0;
  }

  /** Header length including options. */
  headerLen(): number {
    return GENEVE_HEADER_LEN + this.optionsLen();
  }

  /** Offset in `b` of the first option. */
  optionsOffset(): number {
    return this.o + GENEVE_HEADER_LEN;
  }

  /** Offset in `b` of the payload (inner frame). */
  payloadOffset(): number {
    return this.o + this.headerLen();
  }

  /** Bytes of payload. */
  payloadLen(): number {
    return this.n - this.headerLen();
  }
}

/** `GeneveOptIter.next()` result at the end of the options. */
export const GENEVE_OPT_DONE = -1;
/** `GeneveOptIter.next()` result for an option that runs past Opt Len. */
export const GENEVE_OPT_MALFORMED = -2;

/** Iterator over Geneve options; allocate once, re-bind per packet. */
export class GeneveOptIter {
  /** Packet bytes. */
  b!: Uint8Array;
  /** Offset in `b` of the current option header. */
  off = 0;
  /** Current Option Class. */
  optClass = 0;
  /** Current option Type (high bit: critical). */
  type = 0;
  /** Current option data length in bytes (Length * 4, header excluded). */
  len = 0;
  private pos = 0;
  private end = 0;

  /** Iterate the options of the checked Geneve header at b[o]. */
  bind(b: Uint8Array, o: number): this {
    this.b = b;
    this.pos = o + GENEVE_HEADER_LEN;
    this.end = this.pos + ((b[o] & 0x3f) << 2);
    return this;
  }

  /** Advance; returns the option Type, GENEVE_OPT_DONE or GENEVE_OPT_MALFORMED. */
  next(): number {
    const p = this.pos;
    if (p >= this.end) return GENEVE_OPT_DONE;
    if (p + 4 > this.end) return GENEVE_OPT_MALFORMED;
    const l = (this.b[p + 3] & 0x1f) << 2;
    if (p + 4 + l > this.end) return GENEVE_OPT_MALFORMED;
    this.off = p;
    this.optClass = (this.b[p] << 8) | this.b[p + 1];
    this.type = this.b[p + 2];
    this.len = l;
    this.pos = p + 4 + l;
    return this.type;
  }

  /** Offset in `b` of the current option's data. */
  dataOffset(): number {
    return this.off + 4;
  }
}

const optIter = new GeneveOptIter();

/** Offset in `b` of the data of the first option (class, type) of the header at b[o]; -1 absent, -2 malformed. */
export function geneveFindOption(b: Uint8Array, o: number, optClass: number, type: number): number {
  const it = optIter.bind(b, o);
  for (;;) {
    const t = it.next();
    if (t < 0) return t === GENEVE_OPT_DONE ? -1 : -2;
    if (t === type && it.optClass === optClass) return it.dataOffset();
  }
}

/** One Geneve option. */
export interface GeneveOption {
  /** Option Class. */
  optClass: number;
  /** Type (high bit: critical). */
  type: number;
  /** Data; emit pads it with zeros to a multiple of 4 bytes (at most 124). */
  data: Uint8Array;
}

/** Decoded Geneve header with its options. */
export interface GeneveRepr {
  /** 24-bit VNI. */
  vni: number;
  /** Protocol Type, default ETH_P_TEB. */
  protocol?: number;
  /** O bit, default false. */
  oam?: boolean;
  /** C bit, default: set when any option has the critical type bit. */
  critical?: boolean;
  /** Options in order. */
  options: GeneveOption[];
}

/** Read a header and its options into a new Repr; throws on checkLen failure or malformed options. */
export function geneveParse(v: GeneveView): GeneveRepr {
  if (!v.checkLen()) throw new Error('geneve: truncated header or unknown version');
  const options: GeneveOption[] = [];
  const it = new GeneveOptIter().bind(v.b, v.o);
  let t: number;
  while ((t = it.next()) >= 0) {
    options.push({ optClass: it.optClass, type: t, data: v.b.slice(it.dataOffset(), it.dataOffset() + it.len) });
  }
  if (t === GENEVE_OPT_MALFORMED) throw new Error('geneve: option runs past Opt Len');
  return { vni: v.vni(), protocol: v.protocol(), oam: v.oam(), critical: v.critical(), options };
}

/** Bytes geneveEmit writes for `r`. */
export function geneveBufferLen(r: GeneveRepr): number {
  let n = GENEVE_HEADER_LEN;
  for (const opt of r.options) n += 4 + ((opt.data.length + 3) & ~3);
  return n;
}

/** Write the header and options for `r` at b[o]; returns geneveBufferLen(r). */
export function geneveEmit(r: GeneveRepr, b: Uint8Array, o: number): number {
  const len = geneveBufferLen(r);
  if (len - GENEVE_HEADER_LEN > 0x3f * 4) throw new Error('geneve: options exceed 252 bytes');
  const v = new GeneveView().bind(b, o, len);
  b[o] = 0;
  b[o + 1] = 0;
  v.setOptLen((len - GENEVE_HEADER_LEN) >>> 2);
  v.setOam(r.oam ?? false);
  v.setCritical(r.critical ?? r.options.some((x) => (x.type & GENEVE_OPT_TYPE_CRITICAL) !== 0));
  v.setProtocol(r.protocol ?? ETH_P_TEB);
  v.setVni(r.vni);
  let p = o + GENEVE_HEADER_LEN;
  for (const opt of r.options) {
    const words = (opt.data.length + 3) >>> 2;
    if (words > 0x1f) throw new Error('geneve: option data exceeds 124 bytes');
    set16(b, p, opt.optClass);
    b[p + 2] = opt.type;
    b[p + 3] = words;
    b.fill(0, p + 4, p + 4 + words * 4);
    b.set(opt.data, p + 4);
    p += 4 + words * 4;
  }
  return len;
}

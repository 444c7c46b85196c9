/**
 * VXLAN header (RFC 7348 §5), carried in UDP.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-----------------------------------------------+
 *   |R|R|R|R|I|R|R|R|                   Reserved                    |
 *   +---------------+-----------------------------------------------+
 *   |        VXLAN Network Identifier (VNI)         |   Reserved    |
 *   +-----------------------------------------------+---------------+
 *   | inner Ethernet frame ...
 *
 * Cilium puts the source security identity in the VNI (bpf/lib/tunnel.h)
 * and listens on UDP 8472 by default; IANA assigned 4789.
 *
 * API: `VxlanView` (bind/checkLen, flags/setFlags, hasVni, vni/setVni,
 * payloadOffset), `field`, `VXLAN_HEADER_LEN`, `VXLAN_F_VNI`, ports,
 * `VxlanRepr` with `vxlanParse`/`vxlanEmit`.
 */

import { set32 } from './bytes.ts';

/** Byte offsets of the VXLAN header fields. */
export const field = { FLAGS: 0, VNI: 4 } as const;

/** Length of the VXLAN header. */
export const VXLAN_HEADER_LEN = 8;
/** The I flag: the VNI is valid and must be set (RFC 7348 §5). */
export const VXLAN_F_VNI = 0x08;
/** IANA VXLAN port. */
export const VXLAN_PORT_IANA = 4789;
/** Cilium's default VXLAN port (Linux's historical default). */
export const VXLAN_PORT_CILIUM = 8472;

/** Zero-copy view of a VXLAN header. */
export class VxlanView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the VXLAN header in `b`. */
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

  /** The one bounds check: the 8-byte header fits (check hasVni() separately). */
  checkLen(): boolean {
    return this.n >= VXLAN_HEADER_LEN;
  }

  /** Flags byte. */
  flags(): number {
    return this.b[this.o];
  }

  /** Set the flags byte. */
  setFlags(v: number): void {
    this.b[this.o] = v;
  }

  /** True when the I flag is set; receivers ignore packets without it. */
  hasVni(): boolean {
    return (this.b[this.o] & VXLAN_F_VNI) !== 0;
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

  /** Header length: 8. */
  headerLen(): number {
    return VXLAN_HEADER_LEN;
  }

  /** Offset in `b` of the inner Ethernet frame. */
  payloadOffset(): number {
    return this.o + VXLAN_HEADER_LEN;
  }

  /** Bytes of the inner frame. */
  payloadLen(): number {
    return this.n - VXLAN_HEADER_LEN;
  }
}

/** Decoded VXLAN header. */
export interface VxlanRepr {
  /** 24-bit VNI. */
  vni: number;
}

/** Read a header into a new Repr; throws when truncated or the I flag is clear. */
export function vxlanParse(v: VxlanView): VxlanRepr {
  if (!v.checkLen()) throw new Error('vxlan: truncated header');
  if (!v.hasVni()) throw new Error('vxlan: I flag clear');
  return { vni: v.vni() };
}

/** Write the header for `r` at b[o] (I flag set, reserved zero); returns 8. */
export function vxlanEmit(r: VxlanRepr, b: Uint8Array, o: number): number {
  set32(b, o, VXLAN_F_VNI << 24);
  set32(b, o + field.VNI, (r.vni & 0xffffff) * 256);
  return VXLAN_HEADER_LEN;
}

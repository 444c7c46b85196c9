/**
 * UDP header (RFC 768).
 *
 *    0                   1                   2                   3
 *   +-------------------------------+-------------------------------+
 *   |          Source Port          |       Destination Port        |
 *   +-------------------------------+-------------------------------+
 *   |            Length             |           Checksum            |
 *   +-------------------------------+-------------------------------+
 *
 * API: `UdpView` (bind/checkLen, ports, len, checksum, payloadOffset/
 * payloadLen), `field`, `UDP_HEADER_LEN`, `UdpRepr` with `udpParse`/`udpEmit`.
 * A checksum of 0 means "none" over IPv4 (RFC 768) and is invalid over IPv6
 * (RFC 8200 §8.1); see checksum.ts.
 */

import { set16 } from './bytes.ts';

/** Byte offsets of the UDP header fields. */
export const field = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

/** Length of the UDP header. */
export const UDP_HEADER_LEN = 8;

/** Zero-copy view of a UDP header. */
export class UdpView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the UDP header in `b`. */
  o = 0;
  /** Bytes available from `o` (the IP payload length). */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check: n >= 8 and 8 <= Length <= n. */
  checkLen(): boolean {
    if (this.n < UDP_HEADER_LEN) return false;
    const l = (this.b[this.o + 4] << 8) | this.b[this.o + 5]; // Length
    return l >= UDP_HEADER_LEN && l <= this.n;
  }

  /** Source port. */
  srcPort(): number {
    return (this.b[this.o] << 8) | this.b[this.o + 1];
  }

  /** Set the source port (checksum not updated). */
  setSrcPort(v: number): void {
    const i = this.o;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Destination port. */
  dstPort(): number {
    const i = this.o + field.DST_PORT;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the destination port (checksum not updated). */
  setDstPort(v: number): void {
    const i = this.o + field.DST_PORT;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Length: header plus payload. */
  len(): number {
    const i = this.o + field.LENGTH;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the Length. */
  setLen(v: number): void {
    const i = this.o + field.LENGTH;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Checksum as stored (0 = none over IPv4). */
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

  /** Offset in `b` of the checksum field (for l4CsumReplace*). */
  checksumOff(): number {
    return this.o + field.CHECKSUM;
  }

  /** Header length: 8. */
  headerLen(): number {
    return UDP_HEADER_LEN;
  }

  /** Offset in `b` of the payload. */
  payloadOffset(): number {
    return this.o + UDP_HEADER_LEN;
  }

  /** Payload length per the Length field. */
  payloadLen(): number {
    return this.len() - UDP_HEADER_LEN;
  }
}

/** Decoded UDP header: control path and tests. */
export interface UdpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Payload length (Length minus 8). */
  payloadLen: number;
}

/** Read a checked header into a new Repr; throws on checkLen failure. Checksum is not verified here. */
export function udpParse(v: UdpView): UdpRepr {
  if (!v.checkLen()) throw new Error('udp: truncated header or bad length');
  return { srcPort: v.srcPort(), dstPort: v.dstPort(), payloadLen: v.payloadLen() };
}

/** Write the header for `r` at b[o] with checksum 0; returns 8. Fill the checksum with l4CsumFill4/6. */
export function udpEmit(r: UdpRepr, b: Uint8Array, o: number): number {
  set16(b, o, r.srcPort);
  set16(b, o + field.DST_PORT, r.dstPort);
  set16(b, o + field.LENGTH, UDP_HEADER_LEN + r.payloadLen);
  set16(b, o + field.CHECKSUM, 0);
  return UDP_HEADER_LEN;
}

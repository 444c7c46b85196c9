/**
 * struct virtio_net_hdr (virtio spec 1.x §5.1.6, include/uapi/linux/virtio_net.h),
 * the 10-byte header TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) put
 * before each frame. Fields are in host order, which the kernel uses for
 * legacy headers: little-endian on x86 and arm64.
 *
 *   0       1        2          4          6            8             10
 *   +-------+--------+----------+----------+------------+-------------+
 *   | flags |gso_type| hdr_len  | gso_size | csum_start | csum_offset |
 *   +-------+--------+----------+----------+------------+-------------+
 *
 * NEEDS_CSUM: the L4 checksum at csum_start + csum_offset (both counted
 * from the start of the Ethernet frame) holds only the pseudo-header sum;
 * see checksum.ts for how rewrites must treat it. DATA_VALID: the receiver
 * may skip checksum verification. GSO: the frame is a super-frame to be cut
 * into gso_size-byte segments.
 *
 * API: `VirtioNetView` (bind/checkLen, getters/setters, needsCsum,
 * dataValid, csumFieldFits, clear), `field`, `VIRTIO_NET_HDR_LEN`,
 * `VIRTIO_NET_HDR_F_*`, `VIRTIO_NET_HDR_GSO_*`, `VirtioNetRepr` with
 * `virtioNetParse`/`virtioNetEmit`. Matches VNET_HDR_LEN in packet/layout.ts.
 */

/** Byte offsets of the virtio-net header fields. */
export const field = { FLAGS: 0, GSO_TYPE: 1, HDR_LEN: 2, GSO_SIZE: 4, CSUM_START: 6, CSUM_OFFSET: 8 } as const;

/** sizeof(struct virtio_net_hdr) without num_buffers. */
export const VIRTIO_NET_HDR_LEN = 10;
/** Flag: checksum needs completing (csum_start/csum_offset are valid). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** Flag: checksum already verified. */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
/** GSO type: none. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
/** GSO type: TCP over IPv4 (TSO). */
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
/** GSO type: UDP fragmentation offload (UFO). */
export const VIRTIO_NET_HDR_GSO_UDP = 3;
/** GSO type: TCP over IPv6. */
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** GSO type bit: TCP with ECN (CWR must be carried on the first segment only). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

function get16le(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8);
}

function set16le(b: Uint8Array, i: number, v: number): void {
  b[i] = v & 0xff;
  b[i + 1] = (v >>> 8) & 0xff;
}

/** Zero-copy view of a virtio-net header. */
export class VirtioNetView {
  /** Slab bytes. */
  b!: Uint8Array;
  /** Offset of the header in `b` (the frame starts at o + 10). */
  o = 0;
  /** Bytes available from `o`. */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check: the 10-byte header fits. */
  checkLen(): boolean {
    return this.n >= VIRTIO_NET_HDR_LEN;
  }

  /** Flags (VIRTIO_NET_HDR_F_*). */
  flags(): number {
    return this.b[this.o];
  }

  /** Set the flags. */
  setFlags(v: number): void {
    this.b[this.o] = v;
  }

  /** True when NEEDS_CSUM is set. */
  needsCsum(): boolean {
    return (this.b[this.o] & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
  }

  /** True when DATA_VALID is set. */
  dataValid(): boolean {
    return (this.b[this.o] & VIRTIO_NET_HDR_F_DATA_VALID) !== 0;
  }

  /** GSO type (VIRTIO_NET_HDR_GSO_*, possibly | ECN). */
  gsoType(): number {
    return this.b[this.o + field.GSO_TYPE];
  }

  /** Set the GSO type. */
  setGsoType(v: number): void {
    this.b[this.o + field.GSO_TYPE] = v;
  }

  /** Length of the headers to replicate per segment (a hint). */
  hdrLen(): number {
    return get16le(this.b, this.o + field.HDR_LEN);
  }

  /** Set hdr_len. */
  setHdrLen(v: number): void {
    set16le(this.b, this.o + field.HDR_LEN, v);
  }

  /** Segment payload size for GSO. */
  gsoSize(): number {
    return get16le(this.b, this.o + field.GSO_SIZE);
  }

  /** Set gso_size. */
  setGsoSize(v: number): void {
    set16le(this.b, this.o + field.GSO_SIZE, v);
  }

  /** Where checksumming starts, from the start of the frame. */
  csumStart(): number {
    return get16le(this.b, this.o + field.CSUM_START);
  }

  /** Set csum_start. */
  setCsumStart(v: number): void {
    set16le(this.b, this.o + field.CSUM_START, v);
  }

  /** Offset of the checksum field from csum_start. */
  csumOffset(): number {
    return get16le(this.b, this.o + field.CSUM_OFFSET);
  }

  /** Set csum_offset. */
  setCsumOffset(v: number): void {
    set16le(this.b, this.o + field.CSUM_OFFSET, v);
  }

  /** With NEEDS_CSUM: true when the 2-byte checksum field lies inside a frame of `frameLen` bytes. */
  csumFieldFits(frameLen: number): boolean {
    return this.csumStart() + this.csumOffset() + 2 <= frameLen;
  }

  /** Zero the header (no offloads), as devices without one are presented. */
  clear(): void {
    this.b.fill(0, this.o, this.o + VIRTIO_NET_HDR_LEN);
  }

  /** Offset in `b` of the Ethernet frame. */
  payloadOffset(): number {
    return this.o + VIRTIO_NET_HDR_LEN;
  }
}

/** Decoded virtio-net header. */
export interface VirtioNetRepr {
  /** Flags (VIRTIO_NET_HDR_F_*). */
  flags: number;
  /** GSO type. */
  gsoType: number;
  /** hdr_len. */
  hdrLen: number;
  /** gso_size. */
  gsoSize: number;
  /** csum_start. */
  csumStart: number;
  /** csum_offset. */
  csumOffset: number;
}

/** Read a header into a new Repr; throws when truncated. */
export function virtioNetParse(v: VirtioNetView): VirtioNetRepr {
  if (!v.checkLen()) throw new Error('virtio-net: truncated header');
  return {
    flags: v.flags(), gsoType: v.gsoType(), hdrLen: v.hdrLen(), gsoSize: v.gsoSize(),
    csumStart: v.csumStart(), csumOffset: v.csumOffset(),
  };
}

/** Write the header for `r` at b[o]; returns 10. */
export function virtioNetEmit(r: VirtioNetRepr, b: Uint8Array, o: number): number {
  const v = new VirtioNetView().bind(b, o, VIRTIO_NET_HDR_LEN);
  v.setFlags(r.flags);
  v.setGsoType(r.gsoType);
  v.setHdrLen(r.hdrLen);
  v.setGsoSize(r.gsoSize);
  v.setCsumStart(r.csumStart);
  v.setCsumOffset(r.csumOffset);
  return VIRTIO_NET_HDR_LEN;
}

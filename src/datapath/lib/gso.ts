/**
 * Software GSO for tunnel frames at the uplink: a TCP super-frame that a
 * pod's TAP handed over in one piece (TSO) and that encap() wrapped whole
 * is cut into wire-sized tunnel packets before it reaches the wire, as the
 * kernel's skb_udp_tunnel_segment does for a vxlan device.
 *
 * API:
 *   new TunnelGso(device, slab, scratchOff, scratchLen, protocol)   wrap the uplink device
 *   g.send(off, len, count)                                Device.send: segments as needed
 *   g.segmented, g.segments                                counters
 *
 * Why here and not in the kernel: AF_PACKET can hand the kernel a TCP GSO
 * frame (virtio-net header), but it marks it untrusted (SKB_GSO_DODGY) and
 * the veth re-segments it by its outer headers — UDP for a tunnel packet,
 * which fails. virtio-net's UDP-tunnel GSO types are not accepted by
 * AF_PACKET. So Tapestry segments: headers copied per segment, payload
 * sliced by gso_size, lengths, IDs, sequence numbers and the FIN/PSH/CWR
 * flags fixed per segment. The inner TCP checksum stays partial (the
 * pseudo-header sum, NEEDS_CSUM in each segment's virtio-net header): the
 * peer's kernel or Tapestry completes or trusts it as with any
 * CHECKSUM_PARTIAL frame crossing virtual devices; only the 20-byte IPv4
 * header checksums are computed here.
 *
 * Frames that are not GSO tunnel frames pass through untouched, in order.
 */
import type { Device } from '../../engine/device.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6 } from '../../wire/ethernet.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { get16, get32, set16, set32 } from '../../wire/bytes.ts';
import { ipv4HdrCsumFill, l4CsumFillPartial4, l4CsumFillPartial6 } from '../../wire/checksum.ts';

/** Segments queued per device send (AF_PACKET sends them with sendmmsg in chunks). */
const OUT_MAX = 4096;

/** The uplink device with software GSO in front. */
export class TunnelGso implements Device {
  readonly name: string;
  private readonly outOff = new Uint32Array(OUT_MAX);
  private readonly outLen = new Uint32Array(OUT_MAX);
  private outN = 0;
  private pos: number;
  private sent = 0;
  /** Super-frames cut, and segments made from them. */
  segmented = 0;
  segments = 0;
  /** GSO frames sent as they are because their headers were not a TCP tunnel packet. */
  passedGso = 0;

  constructor(
    private readonly dev: Device,
    private readonly buf: Uint8Array,
    private readonly scratchOff: number,
    private readonly scratchLen: number,
    private readonly protocol: 'vxlan' | 'geneve',
  ) {
    this.name = dev.name;
    this.pos = scratchOff;
  }

  send(off: Uint32Array, len: Uint32Array, count: number): number {
    const buf = this.buf;
    let k = 0;
    // Fast path: nothing to cut.
    for (; k < count; k++) if (buf[off[k]! - VNET_HDR_LEN + 1] !== 0) break;
    if (k === count) return this.dev.send(off, len, count);
    this.sent = 0;
    this.outN = 0;
    this.pos = this.scratchOff;
    for (let j = 0; j < count; j++) {
      const o = off[j]!;
      if (buf[o - VNET_HDR_LEN + 1] === 0 || !this.cut(o, len[j]!)) this.queue(o, len[j]!);
    }
    this.flush();
    // Report in frames the caller queued: all of them if every segment went out.
    return this.sent === -1 ? 0 : count;
  }

  private queue(o: number, l: number): void {
    if (this.outN === OUT_MAX) this.flush();
    this.outOff[this.outN] = o;
    this.outLen[this.outN++] = l;
  }

  private flush(): void {
    if (this.outN === 0) return;
    const n = this.dev.send(this.outOff, this.outLen, this.outN);
    if (n < this.outN) this.sent = -1;
    this.outN = 0;
    this.pos = this.scratchOff;
  }

  /** Cut the GSO tunnel frame at o into segments; false if it is not one (sent as is). */
  private cut(o: number, l: number): boolean {
    const buf = this.buf;
    const h = o - VNET_HDR_LEN;
    const gsoType = buf[h + 1]! & 0x7f;
    const mss = get16le(buf, h + 4);
    if (get16(buf, o + 12) !== ETH_P_IP || mss === 0) return this.pass();
    const oip = o + ETH_HLEN;
    const oihl = (buf[oip]! & 0xf) * 4;
    if (buf[oip + 9] !== IPPROTO_UDP) return this.pass();
    const udp = oip + oihl;
    const tun = udp + 8;
    // VXLAN (8) or Geneve (8 + options): both carry an inner Ethernet frame.
    const tunLen = this.protocol === 'vxlan' ? 8 : 8 + (buf[tun]! & 0x3f) * 4;
    const ieth = tun + tunLen;
    const et = get16(buf, ieth + 12);
    const iip = ieth + ETH_HLEN;
    let tcp: number;
    if (et === ETH_P_IP && gsoType === 1 && buf[iip + 9] === IPPROTO_TCP) tcp = iip + (buf[iip]! & 0xf) * 4;
    else if (et === ETH_P_IPV6 && gsoType === 4 && buf[iip + 6] === IPPROTO_TCP) tcp = iip + 40;
    else return this.pass();
    const hdr = tcp + ((buf[tcp + 12]! >> 4) * 4) - o;
    const payload = l - hdr;
    if (payload <= 0 || hdr > l) return this.pass();
    const stride = (VNET_HDR_LEN + hdr + mss + 63) & ~63;
    if (stride > this.scratchLen) return this.pass();
    const seq0 = get32(buf, tcp + 4);
    const flags0 = buf[tcp + 13]!;
    const oid0 = get16(buf, oip + 4);
    const iid0 = et === ETH_P_IP ? get16(buf, iip + 4) : 0;
    const nseg = Math.ceil(payload / mss);
    for (let s = 0; s < nseg; s++) {
      if (this.pos + stride > this.scratchOff + this.scratchLen) this.flush();
      const d = this.pos + VNET_HDR_LEN;
      this.pos += stride;
      const plen = Math.min(mss, payload - s * mss);
      const seg = hdr + plen;
      buf.copyWithin(d, o, o + hdr);
      buf.copyWithin(d + hdr, o + hdr + s * mss, o + hdr + s * mss + plen);
      // Offsets of the copy's headers.
      const doip = d + (oip - o), dudp = d + (udp - o), diip = d + (iip - o), dtcp = d + (tcp - o);
      set16(buf, doip + 2, seg - ETH_HLEN);
      set16(buf, doip + 4, (oid0 + s) & 0xffff);
      ipv4HdrCsumFill(buf, doip);
      set16(buf, dudp + 4, seg - (udp - o));
      set16(buf, dudp + 6, 0);
      const tcpLen = seg - (tcp - o);
      if (et === ETH_P_IP) {
        set16(buf, diip + 2, seg - (iip - o));
        set16(buf, diip + 4, (iid0 + s) & 0xffff);
        ipv4HdrCsumFill(buf, diip);
      } else {
        set16(buf, diip + 4, tcpLen);
      }
      set32(buf, dtcp + 4, (seq0 + s * mss) >>> 0);
      let f = flags0;
      if (s !== nseg - 1) f &= ~0x09; // FIN, PSH only on the last segment
      if (s !== 0) f &= ~0x80; // CWR only on the first
      buf[dtcp + 13] = f;
      if (et === ETH_P_IP) l4CsumFillPartial4(buf, dtcp, tcpLen, IPPROTO_TCP, get32(buf, diip + 12), get32(buf, diip + 16));
      else l4CsumFillPartial6(buf, dtcp, tcpLen, IPPROTO_TCP, diip + 8, diip + 24);
      // Segment's virtio-net header: checksum pending at the inner TCP header, no GSO.
      const dh = d - VNET_HDR_LEN;
      buf.fill(0, dh, d);
      buf[dh] = 1;
      set16le(buf, dh + 6, tcp - o);
      set16le(buf, dh + 8, 16);
      this.queue(d, seg);
      this.segments++;
    }
    this.segmented++;
    return true;
  }

  private pass(): false {
    this.passedGso++;
    return false;
  }
}

function get16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function set16le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

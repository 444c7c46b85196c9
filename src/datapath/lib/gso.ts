/**
 * Software GSO for tunnel frames at the uplink: a TCP super-frame that a
 * pod's TAP handed over in one piece (TSO) and that encap() wrapped whole
 * leaves as wire-sized tunnel packets.
 *
 * API:
 *   new TunnelGso(device, slab, scratchOff, scratchLen, protocol, csumFold?)
 *   g.send(off, len, count)            Device.send: cuts what needs cutting, in order
 *   g.segmented, g.segments, g.udpGso  counters
 *
 * How. AF_PACKET hands the kernel a GSO frame only as "untrusted"
 * (SKB_GSO_DODGY), and the veth then segments it by its outer headers:
 * a TCP GSO type over an outer UDP header cannot work, and virtio-net's
 * UDP-tunnel GSO types are not accepted on packet sockets. What the kernel
 * does accept is UDP GSO (VIRTIO_NET_HDR_GSO_UDP_L4): one UDP datagram
 * whose payload it cuts every gso_size bytes, copying the outer Ethernet,
 * IPv4 and UDP headers and filling in each piece's lengths and UDP
 * checksum. So Tapestry lays the tunnel packets out back to back in one
 * UDP payload, each piece a complete VXLAN/Geneve header + inner Ethernet
 * + IP + TCP header + one MSS of data:
 *
 *   | eth | IPv4 | UDP | vx|eth|ip|tcp|mss data | vx|eth|ip|tcp|mss data | … |
 *                      |<------ gso_size ------>|
 *
 * One copy out of the TAP frame, one send, and the kernel's segmentation
 * and the receiver's UDP GRO (udp-gro.ts on the other side) keep the wire
 * packets whole and the syscalls and ring slots few. Each piece's inner
 * IPv4 header and TCP checksum are complete (the outer UDP checksum is the
 * one the kernel fills), so any receiver — the Linux vxlan device included
 * — accepts the pieces as they are. Inner TCP checksums use the native
 * csumFold when the addon is loaded (several times V8's speed on these
 * sizes), else the TypeScript sum: the same bits either way.
 *
 * At most 65535 − 28 bytes fit in one UDP datagram, so a 64 KB super-frame
 * may take two. Frames that are not GSO tunnel frames pass through
 * untouched, in order.
 */
import type { Device } from '../../engine/device.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6 } from '../../wire/ethernet.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ip.ts';
import { get16, get32, set16, set32 } from '../../wire/bytes.ts';
import { finish, fold, ipv4HdrCsumFill, ipv4PseudoSum, ipv6PseudoSum, sum16 } from '../../wire/checksum.ts';

/** Frames queued per device send (AF_PACKET sends them with sendmmsg in chunks). */
const OUT_MAX = 4096;
/** virtio-net header values used here. */
const F_NEEDS_CSUM = 1;
const GSO_UDP_L4 = 5;
/** Largest UDP payload of one datagram over IPv4 without options. */
const UDP_PAYLOAD_MAX = 0xffff - 20 - 8;

/** Folded RFC 1071 sum of a byte range (the native csumFold has this shape). */
export type CsumFold = (b: Uint8Array, off: number, len: number) => number;

/** The TypeScript checksum, used without the addon. */
export const csumFoldTs: CsumFold = (b, off, len) => fold(sum16(b, off, len));

/** The uplink device with software GSO in front. */
export class TunnelGso implements Device {
  readonly name: string;
  private readonly outOff = new Uint32Array(OUT_MAX);
  private readonly outLen = new Uint32Array(OUT_MAX);
  private outN = 0;
  private pos: number;
  private failed = false;
  /** Super-frames cut, tunnel packets made from them, UDP GSO datagrams sent. */
  segmented = 0;
  segments = 0;
  udpGso = 0;
  /** GSO frames sent as they are because their headers were not a TCP tunnel packet. */
  passedGso = 0;

  constructor(
    private readonly dev: Device,
    private readonly buf: Uint8Array,
    private readonly scratchOff: number,
    private readonly scratchLen: number,
    private readonly protocol: 'vxlan' | 'geneve',
    private readonly csum: CsumFold = csumFoldTs,
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
    this.failed = false;
    this.outN = 0;
    this.pos = this.scratchOff;
    for (let j = 0; j < count; j++) {
      const o = off[j]!;
      if (buf[o - VNET_HDR_LEN + 1] === 0 || !this.cut(o, len[j]!)) this.queue(o, len[j]!);
    }
    this.flush();
    return this.failed ? 0 : count;
  }

  private queue(o: number, l: number): void {
    if (this.outN === OUT_MAX) this.flush();
    this.outOff[this.outN] = o;
    this.outLen[this.outN++] = l;
  }

  private flush(): void {
    if (this.outN === 0) return;
    const n = this.dev.send(this.outOff, this.outLen, this.outN);
    if (n < this.outN) this.failed = true;
    this.outN = 0;
    this.pos = this.scratchOff;
  }

  /** Cut the GSO tunnel frame at o into UDP GSO datagrams; false if it is not one (sent as is). */
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
    const hdr = tcp + ((buf[tcp + 12]! >> 4) * 4) - o; // all headers, outer and inner
    const payload = l - hdr;
    if (payload <= 0 || hdr > l) return this.pass();
    const outer = tun - o; // Ethernet + IPv4 + UDP
    const pieceHdr = hdr - outer; // tunnel header + inner headers
    const piece = pieceHdr + mss;
    // Pieces per datagram: as many as UDP allows and the scratch area holds
    // (a smaller scratch means more, smaller datagrams, not an uncut frame).
    const perDatagram = Math.min(Math.floor(UDP_PAYLOAD_MAX / piece), Math.floor((this.scratchLen - 63 - VNET_HDR_LEN - outer) / piece));
    if (perDatagram < 1) return this.pass();
    const seq0 = get32(buf, tcp + 4);
    const flags0 = buf[tcp + 13]!;
    const oid0 = get16(buf, oip + 4);
    const iid0 = et === ETH_P_IP ? get16(buf, iip + 4) : 0;
    const nseg = Math.ceil(payload / mss);
    for (let s0 = 0; s0 < nseg; s0 += perDatagram) {
      const cnt = Math.min(perDatagram, nseg - s0);
      const bytes = Math.min(payload - s0 * mss, cnt * mss) + cnt * pieceHdr;
      const need = (VNET_HDR_LEN + outer + bytes + 63) & ~63;
      // Room for the datagram and its queue entry, or send what is queued first (both reset together).
      if (this.pos + need > this.scratchOff + this.scratchLen || this.outN === OUT_MAX) this.flush();
      const d = this.pos + VNET_HDR_LEN;
      this.pos += need;
      buf.copyWithin(d, o, o + outer);
      let w = d + outer;
      for (let s = s0; s < s0 + cnt; s++) {
        const plen = Math.min(mss, payload - s * mss);
        buf.copyWithin(w, o + outer, o + hdr);
        buf.copyWithin(w + pieceHdr, o + hdr + s * mss, o + hdr + s * mss + plen);
        const wip = w + (iip - tun), wtcp = w + (tcp - tun);
        const tcpLen = pieceHdr - (tcp - tun) + plen;
        let pseudo: number;
        if (et === ETH_P_IP) {
          set16(buf, wip + 2, tcpLen + (tcp - iip));
          set16(buf, wip + 4, (iid0 + s) & 0xffff);
          ipv4HdrCsumFill(buf, wip);
          pseudo = ipv4PseudoSum(get32(buf, wip + 12), get32(buf, wip + 16), IPPROTO_TCP, tcpLen);
        } else {
          set16(buf, wip + 4, tcpLen);
          pseudo = ipv6PseudoSum(buf, wip + 8, wip + 24, IPPROTO_TCP, tcpLen);
        }
        set32(buf, wtcp + 4, (seq0 + s * mss) >>> 0);
        let f = flags0;
        if (s !== nseg - 1) f &= ~0x09; // FIN, PSH only on the last segment
        if (s !== 0) f &= ~0x80; // CWR only on the first
        buf[wtcp + 13] = f;
        set16(buf, wtcp + 16, 0);
        const c = finish(pseudo + this.csum(buf, wtcp, tcpLen));
        set16(buf, wtcp + 16, c);
        w += pieceHdr + plen;
        this.segments++;
      }
      // Outer headers of the datagram; the kernel cuts it every `piece` bytes and fills each UDP checksum.
      const dip = d + ETH_HLEN, dudp = d + (udp - o);
      const udpLen = 8 + bytes;
      set16(buf, dip + 2, udpLen + oihl);
      set16(buf, dip + 4, (oid0 + s0) & 0xffff);
      ipv4HdrCsumFill(buf, dip);
      set16(buf, dudp + 4, udpLen);
      set16(buf, dudp + 6, fold(ipv4PseudoSum(get32(buf, dip + 12), get32(buf, dip + 16), IPPROTO_UDP, udpLen)));
      const dh = d - VNET_HDR_LEN;
      buf.fill(0, dh, d);
      buf[dh] = F_NEEDS_CSUM;
      if (cnt > 1) {
        buf[dh + 1] = GSO_UDP_L4;
        set16le(buf, dh + 2, outer);
        set16le(buf, dh + 4, piece);
        this.udpGso++;
      }
      set16le(buf, dh + 6, udp - o);
      set16le(buf, dh + 8, 6);
      this.queue(d, outer + bytes);
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

/**
 * Receiving tunnel packets that arrive as one UDP GSO datagram (the
 * uplink's GRO merged the wire packets of one flow, or a Tapestry sender's
 * GSO datagram crossed virtual links whole): each gso_size piece is a
 * complete tunnel packet (tunnel header + inner Ethernet frame). Before
 * the programs run, the pieces of one inner TCP flow are folded into a
 * single tunnel packet whose inner frame is a TCP super-frame (what the
 * kernel's vxlan GRO would hand up); pieces that cannot join move to free
 * slots of the batch as packets of their own.
 *
 * API:
 *   const g = new TunnelUdpGro()
 *   n = g.run(b, n, tunnel)     frames 0..n-1 received on the uplink; returns the new count
 *   g.folded, g.split, g.overflow   counters (overflow: pieces dropped, no free slot)
 *
 * The folded packet: outer headers kept (lengths fixed, UDP checksum 0),
 * inner IP lengths and checksum fixed, inner TCP checksum left partial
 * (NEEDS_CSUM at the inner TCP header) and a virtio-net TCP GSO header with
 * gso_size = the pieces' MSS — so decap() and delivery treat it like any
 * TSO frame. Joining rules are TcpGro's (gro.ts): same flow and VNI,
 * contiguous sequence numbers, equal ACK, window, flags (PSH aside) and
 * options, no SYN/FIN/RST/URG, no piece longer than the first.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { BATCH_MAX, HEADROOM, SLOT_SIZE, VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6 } from '../../wire/ethernet.ts';
import { IPPROTO_TCP } from '../../wire/ip.ts';
import { get16, get32, set16 } from '../../wire/bytes.ts';
import { ipv4HdrCsumFill, l4CsumFillPartial4, l4CsumFillPartial6 } from '../../wire/checksum.ts';
import type { Tunnel } from './encap.ts';

const GSO_UDP_L4 = 5;
const TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_PSH = 0x08, TH_URG = 0x20;

/** UDP GSO tunnel datagrams, folded on receive. */
export class TunnelUdpGro {
  folded = 0;
  split = 0;
  overflow = 0;

  run(b: FrameBatch, n: number, tunnel: Tunnel): number {
    const buf = b.buf;
    let count = n;
    for (let i = 0; i < n; i++) {
      const o = b.off[i]!;
      if (buf[o - VNET_HDR_LEN + 1] !== GSO_UDP_L4) continue;
      if (b.len[i]! < ETH_HLEN + 20 + 8 || get16(buf, o + 12) !== ETH_P_IP) continue;
      const ip = o + ETH_HLEN;
      if (!tunnel.isTunnel(buf, ip, b.len[i]! - ETH_HLEN)) continue;
      count = this.fold(b, i, count, tunnel);
    }
    return count;
  }

  private fold(b: FrameBatch, i: number, count: number, tunnel: Tunnel): number {
    const buf = b.buf;
    const o = b.off[i]!;
    const h = o - VNET_HDR_LEN;
    const G = buf[h + 4]! | (buf[h + 5]! << 8);
    const ip = o + ETH_HLEN;
    const udp = ip + (buf[ip]! & 0xf) * 4;
    const pay = udp + 8;
    const end = Math.min(o + b.len[i]!, ip + get16(buf, ip + 2));
    const outer = pay - o;
    const geneve = tunnel.cfg.protocol === 'geneve';
    if (G === 0 || pay + G >= end) return this.single(b, i, count, end);
    // Piece 0 is the head.
    const t0 = tunLen(buf, pay, geneve);
    const ieth = pay + t0;
    const et = get16(buf, ieth + 12);
    const iip = ieth + ETH_HLEN;
    let tcp = -1;
    if (et === ETH_P_IP && buf[iip] === 0x45 && buf[iip + 9] === IPPROTO_TCP && (get16(buf, iip + 6) & 0x3fff) === 0) tcp = iip + 20;
    else if (et === ETH_P_IPV6 && buf[iip + 6] === IPPROTO_TCP) tcp = iip + 40;
    let k = 1;
    let headEnd = Math.min(pay + G, end);
    if (tcp >= 0 && tcp + 20 <= headEnd) {
      const thl = (buf[tcp + 12]! >> 4) * 4;
      const inner = tcp + thl - pay; // tunnel + inner headers of a piece
      const mss = headEnd - (tcp + thl);
      let next = (get32(buf, tcp + 4) + mss) >>> 0;
      let open = mss > 0 && (buf[tcp + 13]! & (TH_SYN | TH_FIN | TH_RST | TH_URG | TH_PSH)) === 0;
      for (; open && pay + k * G < end; k++) {
        const p = pay + k * G;
        const pEnd = Math.min(p + G, end);
        const ptcp = p + (tcp - pay);
        if (tunLen(buf, p, geneve) !== t0 || pEnd <= p + inner) break;
        if (get32(buf, p + 4) !== get32(buf, pay + 4)) break; // VNI
        if (!sameFlow(buf, ieth, p + t0, et)) break;
        const plen = pEnd - (p + inner);
        const f = buf[ptcp + 13]!;
        if (get32(buf, ptcp + 4) !== next || plen > mss || (f & (TH_SYN | TH_FIN | TH_RST | TH_URG)) !== 0) break;
        if (get32(buf, ptcp + 8) !== get32(buf, tcp + 8)) break;
        if (((get32(buf, ptcp + 12) ^ get32(buf, tcp + 12)) & ~(TH_PSH << 16)) !== 0) break;
        let same = true;
        for (let x = 20; x < thl; x += 4) if (get32(buf, ptcp + x) !== get32(buf, tcp + x)) same = false;
        if (!same) break;
        buf.copyWithin(headEnd, p + inner, pEnd);
        headEnd += plen;
        next = (next + plen) >>> 0;
        if (f & TH_PSH) {
          buf[tcp + 13] |= TH_PSH;
          open = false;
        }
        if (plen < mss) open = false;
        this.folded++;
      }
      // Remaining pieces become packets of their own (copied before the head's headers change).
      count = this.splitFrom(b, i, count, pay + k * G, end, G, outer);
      this.finishHead(b, i, headEnd, tcp, thl, mss, et, k > 1);
      return count;
    }
    count = this.splitFrom(b, i, count, pay + G, end, G, outer);
    return this.single(b, i, count, headEnd);
  }

  /** Frame i keeps only its first piece, as an ordinary tunnel packet (inner checksums complete). */
  private single(b: FrameBatch, i: number, count: number, end: number): number {
    const buf = b.buf;
    const o = b.off[i]!;
    setOuterLen(buf, o, end - o);
    b.len[i] = end - o;
    dataValid(buf, o);
    return count;
  }

  /** Copy pieces [from, end) of frame i, G bytes each, into free slots as tunnel packets of their own. */
  private splitFrom(b: FrameBatch, i: number, count: number, from: number, end: number, G: number, outer: number): number {
    const buf = b.buf;
    const o = b.off[i]!;
    for (let p = from; p < end; p += G) {
      const pEnd = Math.min(p + G, end);
      if (count >= BATCH_MAX) {
        this.overflow++;
        continue;
      }
      const d = count * SLOT_SIZE + HEADROOM;
      buf.copyWithin(d, o, o + outer);
      buf.copyWithin(d + outer, p, pEnd);
      setOuterLen(buf, d, outer + pEnd - p);
      dataValid(buf, d);
      b.off[count] = d;
      b.len[count] = outer + pEnd - p;
      count++;
      this.split++;
    }
    return count;
  }

  private finishHead(b: FrameBatch, i: number, headEnd: number, tcp: number, thl: number, mss: number, et: number, grew: boolean): void {
    const buf = b.buf;
    const o = b.off[i]!;
    const h = o - VNET_HDR_LEN;
    setOuterLen(buf, o, headEnd - o);
    b.len[i] = headEnd - o;
    if (!grew) {
      dataValid(buf, o);
      return;
    }
    const iip = tcp - (et === ETH_P_IP ? 20 : 40);
    if (et === ETH_P_IP) {
      set16(buf, iip + 2, headEnd - iip);
      ipv4HdrCsumFill(buf, iip);
      l4CsumFillPartial4(buf, tcp, headEnd - tcp, IPPROTO_TCP, get32(buf, iip + 12), get32(buf, iip + 16));
    } else {
      set16(buf, iip + 4, headEnd - tcp);
      l4CsumFillPartial6(buf, tcp, headEnd - tcp, IPPROTO_TCP, iip + 8, iip + 24);
    }
    buf.fill(0, h, o);
    buf[h] = 1; // NEEDS_CSUM
    buf[h + 1] = et === ETH_P_IP ? 1 : 4; // GSO TCPV4 / TCPV6
    setLe16(buf, h + 2, tcp + thl - o);
    setLe16(buf, h + 4, mss);
    setLe16(buf, h + 6, tcp - o);
    setLe16(buf, h + 8, 16);
  }
}

/** Outer IPv4 total length + checksum, UDP length, UDP checksum 0, for a tunnel packet of `len` bytes at o. */
function setOuterLen(buf: Uint8Array, o: number, len: number): void {
  const ip = o + ETH_HLEN;
  const udp = ip + (buf[ip]! & 0xf) * 4;
  set16(buf, ip + 2, len - ETH_HLEN);
  ipv4HdrCsumFill(buf, ip);
  set16(buf, udp + 4, o + len - udp);
  set16(buf, udp + 6, 0);
}

/** virtio-net header: no offload, checksums known good (the sender completed them; the datagram was CHECKSUM_PARTIAL or validated). */
function dataValid(buf: Uint8Array, o: number): void {
  const h = o - VNET_HDR_LEN;
  buf.fill(0, h, o);
  buf[h] = 2;
}

function sameFlow(buf: Uint8Array, a: number, c: number, et: number): boolean {
  if (get16(buf, c + 12) !== et) return false;
  const ia = a + ETH_HLEN, ic = c + ETH_HLEN;
  if (et === ETH_P_IP) {
    return get32(buf, ia + 12) === get32(buf, ic + 12) && get32(buf, ia + 16) === get32(buf, ic + 16) && get32(buf, ia + 20) === get32(buf, ic + 20) && buf[ic + 9] === IPPROTO_TCP && buf[ic] === 0x45;
  }
  for (let x = 8; x < 44; x += 4) if (get32(buf, ia + x) !== get32(buf, ic + x)) return false;
  return buf[ic + 6] === IPPROTO_TCP;
}

/** Length of the tunnel header at p: VXLAN 8, Geneve 8 + options. */
function tunLen(buf: Uint8Array, p: number, geneve: boolean): number {
  return geneve ? 8 + (buf[p]! & 0x3f) * 4 : 8;
}

function setLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

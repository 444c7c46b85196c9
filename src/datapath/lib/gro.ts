/**
 * Software GRO for frames arriving on the uplink: consecutive in-order TCP
 * segments of one flow in a batch become one super-frame before delivery,
 * so a pod's TAP gets one write (and its TCP stack one packet) where the
 * wire carried dozens — the receive-side twin of gso.ts, after the rules
 * of the kernel's tcp_gro_receive.
 *
 * API:
 *   const g = new TcpGro()
 *   g.begin(b)                 start a batch
 *   g.offer(b, i) -> bool      frame i (Ethernet at b.off[i], decapsulated and
 *                              translated) merged into an earlier frame: consumed
 *   g.finish(b)                write lengths, checksums and virtio-net GSO
 *                              headers of the frames that grew
 *   g.merged, g.superFrames    counters
 *
 * A segment joins the flow's open frame when: same addresses and ports;
 * its sequence number continues the frame; same ACK number, window, flags
 * (PSH aside) and TCP options (timestamps included, so only segments of one
 * sender burst join); no SYN/FIN/RST/URG; a payload no longer than the
 * first segment's (a shorter one, or PSH, closes the frame); IPv4 without
 * options or fragmentation, IPv6 without extension headers; a checksum the
 * sender left partial or the kernel validated (NEEDS_CSUM / DATA_VALID):
 * an unverified checksum is never folded into a merged frame. The result
 * is at most 64 KB of IP, within the first frame's slot.
 *
 * The merged frame carries NEEDS_CSUM with the pseudo-header sum and a
 * virtio-net GSO header (gso_size = the first segment's payload), which a
 * TAP accepts as a TSO frame.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { SLOT_SIZE, VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6 } from '../../wire/ethernet.ts';
import { IPPROTO_TCP } from '../../wire/ip.ts';
import { get16, get32, set16 } from '../../wire/bytes.ts';
import { ipv4HdrCsumFill, l4CsumFillPartial4, l4CsumFillPartial6 } from '../../wire/checksum.ts';

/** Flows tracked at once in a batch (a batch rarely interleaves more). */
const FLOWS = 8;
const TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_PSH = 0x08, TH_URG = 0x20;
const IP_MAX = 0xffff;

/** Software GRO for one batch at a time. */
export class TcpGro {
  /** Frame index holding the open super-frame of each flow slot, -1 when free. */
  private readonly head = new Int32Array(FLOWS).fill(-1);
  private readonly nextSeq = new Uint32Array(FLOWS);
  private readonly mss = new Uint32Array(FLOWS);
  private readonly segs = new Uint32Array(FLOWS);
  private readonly closed = new Uint8Array(FLOWS);
  /** Frames that grew in this batch (finish() fixes their headers). */
  private readonly grown: number[] = [];
  private readonly grownMss: number[] = [];
  private victim = 0;
  merged = 0;
  superFrames = 0;

  begin(): void {
    this.head.fill(-1);
    this.grown.length = 0;
    this.grownMss.length = 0;
  }

  offer(b: FrameBatch, i: number): boolean {
    const buf = b.buf;
    const o = b.off[i]!;
    const len = b.len[i]!;
    const h = o - VNET_HDR_LEN;
    if (buf[h + 1] !== 0 || (buf[h]! & 3) === 0 || len < ETH_HLEN + 40) return false;
    const et = get16(buf, o + 12);
    const ip = o + ETH_HLEN;
    let tcp: number, ipEnd: number;
    if (et === ETH_P_IP) {
      if (buf[ip] !== 0x45 || buf[ip + 9] !== IPPROTO_TCP || (get16(buf, ip + 6) & 0x3fff) !== 0) return false;
      tcp = ip + 20;
      ipEnd = ip + get16(buf, ip + 2);
    } else if (et === ETH_P_IPV6) {
      if (buf[ip + 6] !== IPPROTO_TCP) return false;
      tcp = ip + 40;
      ipEnd = tcp + get16(buf, ip + 4);
    } else {
      return false;
    }
    if (ipEnd > o + len || tcp + 20 > ipEnd) return false;
    const thl = (buf[tcp + 12]! >> 4) * 4;
    const pay = tcp + thl;
    const plen = ipEnd - pay;
    if (thl < 20 || plen < 0) return false;
    const flags = buf[tcp + 13]!;
    const seq = get32(buf, tcp + 4);
    // Find the flow.
    let f = -1;
    for (let k = 0; k < FLOWS; k++) {
      const t = this.head[k]!;
      if (t >= 0 && this.sameFlow(buf, b.off[t]!, o, et)) {
        f = k;
        break;
      }
    }
    const mergeable = plen > 0 && (flags & (TH_SYN | TH_FIN | TH_RST | TH_URG)) === 0;
    if (f >= 0 && mergeable && this.closed[f] === 0 && this.fits(b, f, o, tcp, thl, seq, plen)) {
      const t = this.head[f]!;
      const to = b.off[t]!;
      buf.copyWithin(to + b.len[t]!, pay, ipEnd);
      b.len[t] = b.len[t]! + plen;
      this.nextSeq[f] = (seq + plen) >>> 0;
      if (this.segs[f]++ === 1) {
        this.grown.push(t);
        this.grownMss.push(this.mss[f]!);
      }
      if (flags & TH_PSH) {
        buf[to + (tcp - o) + 13] |= TH_PSH;
        this.closed[f] = 1;
      }
      if (plen < this.mss[f]!) this.closed[f] = 1;
      this.merged++;
      return true;
    }
    if (!mergeable) {
      // Anything else of the flow ends its open frame (nothing may jump the queue).
      if (f >= 0) this.head[f] = -1;
      return false;
    }
    if (f < 0) {
      f = this.head.indexOf(-1);
      if (f < 0) f = this.victim = (this.victim + 1) % FLOWS;
    }
    // Start a new super-frame at i (trimming link-layer padding).
    b.len[i] = ipEnd - o;
    this.head[f] = i;
    this.nextSeq[f] = (seq + plen) >>> 0;
    this.mss[f] = plen;
    this.segs[f] = 1;
    this.closed[f] = flags & TH_PSH ? 1 : 0;
    return false;
  }

  finish(b: FrameBatch): void {
    const buf = b.buf;
    for (let g = 0; g < this.grown.length; g++) {
      const t = this.grown[g]!;
      const o = b.off[t]!;
      const et = get16(buf, o + 12);
      const ip = o + ETH_HLEN;
      const end = o + b.len[t]!;
      const h = o - VNET_HDR_LEN;
      let tcp: number;
      if (et === ETH_P_IP) {
        tcp = ip + 20;
        set16(buf, ip + 2, end - ip);
        ipv4HdrCsumFill(buf, ip);
        l4CsumFillPartial4(buf, tcp, end - tcp, IPPROTO_TCP, get32(buf, ip + 12), get32(buf, ip + 16));
        buf[h + 1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
      } else {
        tcp = ip + 40;
        set16(buf, ip + 4, end - tcp);
        l4CsumFillPartial6(buf, tcp, end - tcp, IPPROTO_TCP, ip + 8, ip + 24);
        buf[h + 1] = 4; // VIRTIO_NET_HDR_GSO_TCPV6
      }
      const thl = (buf[tcp + 12]! >> 4) * 4;
      const mss = this.grownMss[g]!;
      buf[h] = 1; // NEEDS_CSUM
      setLe16(buf, h + 2, tcp + thl - o);
      setLe16(buf, h + 4, mss);
      setLe16(buf, h + 6, tcp - o);
      setLe16(buf, h + 8, 16);
      this.superFrames++;
    }
  }

  private sameFlow(buf: Uint8Array, a: number, c: number, et: number): boolean {
    if (get16(buf, a + 12) !== et) return false;
    const ia = a + ETH_HLEN, ic = c + ETH_HLEN;
    if (et === ETH_P_IP) {
      if (get32(buf, ia + 12) !== get32(buf, ic + 12) || get32(buf, ia + 16) !== get32(buf, ic + 16)) return false;
      return get32(buf, ia + 20) === get32(buf, ic + 20);
    }
    for (let k = 8; k < 40; k += 4) if (get32(buf, ia + k) !== get32(buf, ic + k)) return false;
    return get32(buf, ia + 40) === get32(buf, ic + 40);
  }

  /** Can segment i (TCP at tcp) join flow f's frame? */
  private fits(b: FrameBatch, f: number, o: number, tcp: number, thl: number, seq: number, plen: number): boolean {
    const buf = b.buf;
    const t = this.head[f]!;
    const to = b.off[t]!;
    const ttcp = to + (tcp - o);
    if (seq !== this.nextSeq[f] || plen > this.mss[f]!) return false;
    if (((buf[ttcp + 12]! >> 4) * 4) !== thl) return false;
    // ACK number, then data offset / flags (PSH aside) / window, then options: all equal.
    if (get32(buf, ttcp + 8) !== get32(buf, tcp + 8)) return false;
    if (((get32(buf, ttcp + 12) ^ get32(buf, tcp + 12)) & ~(TH_PSH << 16)) !== 0) return false;
    for (let k = 20; k < thl; k += 4) if (get32(buf, ttcp + k) !== get32(buf, tcp + k)) return false;
    const ipLen = b.len[t]! - ETH_HLEN + plen;
    if (ipLen > IP_MAX) return false;
    const slotEnd = to - (to % SLOT_SIZE) + SLOT_SIZE;
    if (to + b.len[t]! + plen > slotEnd) return false;
    if (get16(buf, to + 12) === ETH_P_IP && (buf[to + ETH_HLEN + 1] !== buf[o + ETH_HLEN + 1] || buf[to + ETH_HLEN + 8] !== buf[o + ETH_HLEN + 8])) return false;
    return true;
  }
}

function setLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

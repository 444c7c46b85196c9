/**
 * ARP for IPv4 over Ethernet (RFC 826), the only flavour the datapath answers.
 *
 *   0       2       4   5   6       8             14      18            24      28
 *   +-------+-------+---+---+-------+-------------+-------+-------------+-------+
 *   | htype | ptype |hln|pln| oper  | sender MAC  | SPA   | target MAC  | TPA   |
 *   +-------+-------+---+---+-------+-------------+-------+-------------+-------+
 *
 * API: `ArpView` (bind/checkLen, oper, shaOff/setSha, spa/setSpa, thaOff/setTha,
 * tpa/setTpa), `field`, `ARP_LEN`, `ARPOP_*`, `ARPHRD_ETHER`, `ArpRepr` with
 * `arpParse`/`arpEmit`.
 */

import { macCopy } from './addr.ts';
import { ETH_P_IP } from './ethernet.ts';

/** Byte offsets of the ARP fields (RFC 826 names: ar$hrd, ar$pro, ...). */
export const field = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8, SPA: 14, THA: 18, TPA: 24 } as const;

/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
/** Hardware type Ethernet. */
export const ARPHRD_ETHER = 1;
/** ARP request opcode. */
export const ARPOP_REQUEST = 1;
/** ARP reply opcode. */
export const ARPOP_REPLY = 2;

/** Zero-copy view of an Ethernet/IPv4 ARP packet. */
export class ArpView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the ARP header in `b`. */
  o = 0;
  /** Bytes available from `o` to the end of the frame. */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one check: 28 bytes, htype 1, ptype 0x0800, hlen 6, plen 4. */
  checkLen(): boolean {
    const b = this.b;
    const o = this.o;
    // htype 0x0001, ptype 0x0800 (ETH_P_IP), hlen 6, plen 4: literals, no cross-module reads.
    return this.n >= ARP_LEN && b[o] === 0 && b[o + 1] === 1 && b[o + 2] === 0x08 && b[o + 3] === 0 &&
      b[o + 4] === 6 && b[o + 5] === 4;
  }

  /** Hardware type. */
  htype(): number {
    return (this.b[this.o] << 8) | this.b[this.o + 1];
  }

  /** Set the hardware type. */
  setHtype(v: number): void {
    const i = this.o;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Protocol type. */
  ptype(): number {
    const i = this.o + 2;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the protocol type. */
  setPtype(v: number): void {
    const i = this.o + 2;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Hardware address length. */
  hlen(): number {
    return this.b[this.o + 4];
  }

  /** Set the hardware address length. */
  setHlen(v: number): void {
    this.b[this.o + 4] = v;
  }

  /** Protocol address length. */
  plen(): number {
    return this.b[this.o + 5];
  }

  /** Set the protocol address length. */
  setPlen(v: number): void {
    this.b[this.o + 5] = v;
  }

  /** Operation (ARPOP_REQUEST, ARPOP_REPLY). */
  oper(): number {
    const i = this.o + 6;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the operation. */
  setOper(v: number): void {
    const i = this.o + 6;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Offset in `b` of the sender hardware address. */
  shaOff(): number {
    return this.o + field.SHA;
  }

  /** Copy 6 bytes from mac[off] into the sender hardware address. */
  setSha(mac: Uint8Array, off = 0): void {
    macCopy(mac, off, this.b, this.o + field.SHA);
  }

  /** Sender protocol (IPv4) address as u32. */
  spa(): number {
    const b = this.b;
    const i = this.o + field.SPA;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the sender protocol address. */
  setSpa(v: number): void {
    const b = this.b;
    const i = this.o + field.SPA;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Offset in `b` of the target hardware address. */
  thaOff(): number {
    return this.o + field.THA;
  }

  /** Copy 6 bytes from mac[off] into the target hardware address. */
  setTha(mac: Uint8Array, off = 0): void {
    macCopy(mac, off, this.b, this.o + field.THA);
  }

  /** Target protocol (IPv4) address as u32. */
  tpa(): number {
    const b = this.b;
    const i = this.o + field.TPA;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the target protocol address. */
  setTpa(v: number): void {
    const b = this.b;
    const i = this.o + field.TPA;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Header length: 28. */
  headerLen(): number {
    return ARP_LEN;
  }
}

/** Decoded ARP packet: control path and tests only. */
export interface ArpRepr {
  /** Operation. */
  op: number;
  /** Sender MAC, 6 bytes. */
  sha: Uint8Array;
  /** Sender IPv4 address (u32). */
  spa: number;
  /** Target MAC, 6 bytes. */
  tha: Uint8Array;
  /** Target IPv4 address (u32). */
  tpa: number;
}

/** Read an ARP packet into a new Repr; throws unless it is Ethernet/IPv4 ARP. */
export function arpParse(v: ArpView): ArpRepr {
  if (!v.checkLen()) throw new Error('arp: truncated or not Ethernet/IPv4');
  return {
    op: v.oper(),
    sha: v.b.slice(v.shaOff(), v.shaOff() + 6),
    spa: v.spa(),
    tha: v.b.slice(v.thaOff(), v.thaOff() + 6),
    tpa: v.tpa(),
  };
}

/** Write `r` at b[o] as Ethernet/IPv4 ARP; returns 28. */
export function arpEmit(r: ArpRepr, b: Uint8Array, o: number): number {
  const v = new ArpView().bind(b, o, ARP_LEN);
  v.setHtype(ARPHRD_ETHER);
  v.setPtype(ETH_P_IP);
  v.setHlen(6);
  v.setPlen(4);
  v.setOper(r.op);
  v.setSha(r.sha);
  v.setSpa(r.spa);
  v.setTha(r.tha);
  v.setTpa(r.tpa);
  return ARP_LEN;
}

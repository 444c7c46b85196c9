/**
 * Ethernet II frame header (IEEE 802.3 clause 3.2, DIX framing).
 *
 *   0                   6                   12      14
 *   +-------------------+-------------------+-------+---------
 *   | destination MAC   | source MAC        | type  | payload
 *   +-------------------+-------------------+-------+---------
 *
 * API: `EthernetView` (flyweight: bind/checkLen, dstOff/srcOff, setDst/setSrc,
 * ethertype/setEthertype, isBroadcast/isMulticast), `field`, `ETH_HLEN`,
 * `ETH_P_*` ethertypes, MAC helpers, `EthernetRepr` with
 * `ethernetParse`/`ethernetEmit`. VLAN tags are not parsed yet.
 */

import { macCopy } from './addr.ts';
import { set16 } from './bytes.ts';

/** Byte offsets of the Ethernet header fields. */
export const field = { DST: 0, SRC: 6, ETHERTYPE: 12 } as const;

/** Length of an Ethernet II header (kernel ETH_HLEN). */
export const ETH_HLEN = 14;
/** Length of a MAC address (kernel ETH_ALEN). */
export const ETH_ALEN = 6;
/** Shortest frame on the wire without FCS (kernel ETH_ZLEN); shorter frames carry padding. */
export const ETH_ZLEN = 60;

/** IPv4 ethertype. */
export const ETH_P_IP = 0x0800;
/** ARP ethertype. */
export const ETH_P_ARP = 0x0806;
/** Transparent Ethernet Bridging: Geneve's protocol type for an inner Ethernet frame. */
export const ETH_P_TEB = 0x6558;
/** IEEE 802.1Q VLAN tag (recognised, not parsed yet). */
export const ETH_P_8021Q = 0x8100;
/** IPv6 ethertype. */
export const ETH_P_IPV6 = 0x86dd;
/** IEEE 802.1ad service VLAN tag (recognised, not parsed yet). */
export const ETH_P_8021AD = 0x88a8;
/** IEEE local experimental ethertype; pktgen's default before raw bytes. */
export const ETH_P_LOCAL_EXP = 0x88b5;

/** Zero-copy view of an Ethernet II header; bind, checkLen once, then read or write. */
export class EthernetView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the Ethernet header in `b`. */
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

  /** The one bounds check: the 14-byte header fits. */
  checkLen(): boolean {
    return this.n >= ETH_HLEN;
  }

  /** Offset of the destination MAC in `b`. */
  dstOff(): number {
    return this.o;
  }

  /** Offset of the source MAC in `b`. */
  srcOff(): number {
    return this.o + field.SRC;
  }

  /** Copy 6 bytes from mac[off] into the destination MAC. */
  setDst(mac: Uint8Array, off = 0): void {
    macCopy(mac, off, this.b, this.o);
  }

  /** Copy 6 bytes from mac[off] into the source MAC. */
  setSrc(mac: Uint8Array, off = 0): void {
    macCopy(mac, off, this.b, this.o + field.SRC);
  }

  /** Swap source and destination MACs in place (reply generation). */
  swapMacs(): void {
    const b = this.b;
    const d = this.o;
    const s = this.o + field.SRC;
    for (let i = 0; i < 6; i++) {
      const t = b[d + i];
      b[d + i] = b[s + i];
      b[s + i] = t;
    }
  }

  /** EtherType (or 802.3 length when < 0x0600). */
  ethertype(): number {
    const i = this.o + field.ETHERTYPE;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the EtherType. */
  setEthertype(v: number): void {
    const i = this.o + field.ETHERTYPE;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** True when the destination is ff:ff:ff:ff:ff:ff. */
  isBroadcast(): boolean {
    return macIsBroadcast(this.b, this.o);
  }

  /** True when the destination has the group bit set (includes broadcast). */
  isMulticast(): boolean {
    return (this.b[this.o] & 1) !== 0;
  }

  /** Header length: always 14 until VLAN tags are parsed. */
  headerLen(): number {
    return ETH_HLEN;
  }

  /** Offset in `b` of the payload (the L3 header). */
  payloadOffset(): number {
    return this.o + ETH_HLEN;
  }

  /** Bytes after the header, up to the end of the frame (may include padding). */
  payloadLen(): number {
    return this.n - ETH_HLEN;
  }
}

/** True when the MAC at b[o] is the broadcast address. */
export function macIsBroadcast(b: Uint8Array, o: number): boolean {
  return (b[o] & b[o + 1] & b[o + 2] & b[o + 3] & b[o + 4] & b[o + 5]) === 0xff;
}

/** True when the MAC at b[o] has the individual/group bit set (IEEE 802 §8.2). */
export function macIsMulticast(b: Uint8Array, o: number): boolean {
  return (b[o] & 1) !== 0;
}

/** Copy a 6-byte MAC from src[so] to dst[d] (re-exported from addr.ts). */
export const copyMac = macCopy;

/** Decoded Ethernet header: control path and tests only. */
export interface EthernetRepr {
  /** Destination MAC, 6 bytes. */
  dst: Uint8Array;
  /** Source MAC, 6 bytes. */
  src: Uint8Array;
  /** EtherType. */
  ethertype: number;
}

/** Read an Ethernet header into a new Repr; throws if the view fails checkLen. */
export function ethernetParse(v: EthernetView): EthernetRepr {
  if (!v.checkLen()) throw new Error('ethernet: truncated header');
  return {
    dst: v.b.slice(v.o, v.o + 6),
    src: v.b.slice(v.o + 6, v.o + 12),
    ethertype: v.ethertype(),
  };
}

/** Write `r` at b[o]; returns the header length (14). */
export function ethernetEmit(r: EthernetRepr, b: Uint8Array, o: number): number {
  macCopy(r.dst, 0, b, o);
  macCopy(r.src, 0, b, o + 6);
  set16(b, o + field.ETHERTYPE, r.ethertype);
  return ETH_HLEN;
}

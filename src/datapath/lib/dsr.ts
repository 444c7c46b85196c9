/**
 * DSR service information on the wire (Cilium bpf/lib/nodeport.h dsr_set_opt4,
 * bpf/lib/common.h struct dsr_opt_v4, bpf/lib/encap.h geneve_dsr_opt4;
 * facts §4): how the node that load-balanced a flow tells the backend's
 * node which service address and port the client asked for, so the
 * backend's replies can leave with that source and skip the first node.
 *
 * API:
 *   dsrOptPush4(b, i, addr, port) -> bool   insert the IPv4 option after frame i's 20-byte IPv4 header
 *   dsrOptFind4(buf, ipOff, info) -> bool   read the option of the IPv4 header at ipOff into info
 *   genevePutDsrOpt4(buf, off, addr, port)  write the 12-byte Geneve TLV at off
 *   geneveReadOpts(buf, off, len, info) -> 0 | DROP   walk Geneve options, pick the DSR one
 *   DsrInfo                                 { addr, port } (0 = none)
 *
 * IPv4 option (8 bytes, right after the fixed header; ihl +2, tot_len +8):
 *   +0 type 0x9A (copied | option 26)   +1 len 8
 *   +2 port (2 B)                       +4 addr (4 B)
 * Cilium fills port and addr with an extra host-to-network swap of values
 * that are already in network order, so on little-endian hosts (x86, arm64:
 * every node it runs on) both fields travel byte-reversed: port 30080
 * (0x7580) is sent as 80 75, 10.99.0.11 as 0b 00 63 0a. Tapestry writes
 * and reads the same bytes, so it interoperates with Cilium nodes.
 *
 * Geneve option (12 bytes; RFC 8926 TLV):
 *   +0 class 0x014B (Cilium)   +2 type 0x81 (critical | 1)   +3 length 2 (words of data)
 *   +4 addr be32               +8 port be16                  +10 pad
 * Here the fields are in plain network order.
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { VNET_HDR_LEN } from '../../packet/layout.ts';
import { ETH_HLEN } from '../../wire/ethernet.ts';
import { ipv4HdrCsumFill } from '../../wire/checksum.ts';
import { get16, get32, set16, set32 } from '../../wire/bytes.ts';
import { DROP } from './drop-reasons.ts';

/** IPv4 option type: copied flag 0x80 | option number 26. */
export const DSR_IPV4_OPT_TYPE = 0x9a;
/** IPv4 option length. */
export const DSR_IPV4_OPT_LEN = 8;
/** Geneve option class of Cilium's DSR TLV. */
export const DSR_GENEVE_OPT_CLASS = 0x014b;
/** Geneve option type (critical bit | 1). */
export const DSR_GENEVE_OPT_TYPE = 0x81;
/** Bytes of the Geneve DSR TLV (header 4 + data 8): Cilium's MTU overhead for Geneve DSR. */
export const DSR_GENEVE_OPT_LEN = 12;
/** Geneve option type bit: the receiver must understand the option or drop the packet. */
const GENEVE_OPT_CRITICAL = 0x80;

/** Service address and port carried by a DSR packet (0 = none). */
export class DsrInfo {
  addr = 0;
  port = 0;
}

/** Read a u16 stored byte-reversed (Cilium's double swap on a little-endian host). */
const getRev16 = (buf: Uint8Array, o: number): number => buf[o]! | (buf[o + 1]! << 8);
const getRev32 = (buf: Uint8Array, o: number): number => (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;

/**
 * Insert the DSR option after frame i's fixed IPv4 header: the frame grows
 * by 8 bytes at the front (headroom), Ethernet and the 20-byte header move
 * up, ihl, tot_len and the header checksum follow; a pending L4 checksum
 * offset moves with the L4 header. False when there is no headroom or the
 * header has no room for 8 more bytes of options (ihl > 13).
 */
export function dsrOptPush4(b: FrameBatch, i: number, addr: number, port: number): boolean {
  const buf = b.buf;
  const ip = b.off[i]! + ETH_HLEN;
  const ihl = buf[ip]! & 0xf;
  if (ihl + 2 > 15) return false;
  if (!b.push(i, DSR_IPV4_OPT_LEN)) return false;
  const o = b.off[i]!;
  buf.copyWithin(o, o + DSR_IPV4_OPT_LEN, o + DSR_IPV4_OPT_LEN + ETH_HLEN + 20);
  const h = o + ETH_HLEN;
  const opt = h + 20;
  buf[opt] = DSR_IPV4_OPT_TYPE;
  buf[opt + 1] = DSR_IPV4_OPT_LEN;
  buf[opt + 2] = port & 0xff;
  buf[opt + 3] = port >>> 8;
  buf[opt + 4] = addr & 0xff;
  buf[opt + 5] = (addr >>> 8) & 0xff;
  buf[opt + 6] = (addr >>> 16) & 0xff;
  buf[opt + 7] = addr >>> 24;
  buf[h] = 0x40 | (ihl + 2);
  set16(buf, h + 2, get16(buf, h + 2) + DSR_IPV4_OPT_LEN);
  ipv4HdrCsumFill(buf, h);
  vnetShift(buf, o, DSR_IPV4_OPT_LEN);
  return true;
}

/**
 * Look for the DSR option among the options of the IPv4 header at ipOff
 * (header length already checked by the caller). Fills info and returns
 * true when found.
 */
export function dsrOptFind4(buf: Uint8Array, ipOff: number, info: DsrInfo): boolean {
  const end = ipOff + (buf[ipOff]! & 0xf) * 4;
  let p = ipOff + 20;
  while (p < end) {
    const t = buf[p]!;
    if (t === 0) break; // end of options
    if (t === 1) {
      p++; // no-op
      continue;
    }
    if (p + 1 >= end) break;
    const l = buf[p + 1]!;
    if (l < 2 || p + l > end) break;
    if (t === DSR_IPV4_OPT_TYPE && l === DSR_IPV4_OPT_LEN) {
      info.port = getRev16(buf, p + 2);
      info.addr = getRev32(buf, p + 4);
      return true;
    }
    p += l;
  }
  return false;
}

/** Write the Geneve DSR TLV for `addr`:`port` at buf[off..off+12). */
export function genevePutDsrOpt4(buf: Uint8Array, off: number, addr: number, port: number): void {
  set16(buf, off, DSR_GENEVE_OPT_CLASS);
  buf[off + 2] = DSR_GENEVE_OPT_TYPE;
  buf[off + 3] = 2;
  set32(buf, off + 4, addr);
  set16(buf, off + 8, port);
  set16(buf, off + 10, 0);
}

/**
 * Walk the Geneve options at buf[off..off+len): the DSR TLV fills info;
 * any other option flagged critical cannot be understood, so the packet
 * is dropped (RFC 8926 §3.5.1) with "Invalid Geneve option" (149), as is
 * a malformed TLV. 0 otherwise.
 */
export function geneveReadOpts(buf: Uint8Array, off: number, len: number, info: DsrInfo): number {
  const end = off + len;
  let p = off;
  while (p < end) {
    if (p + 4 > end) return DROP.INVALID_GENEVE_OPTION;
    const cls = get16(buf, p);
    const type = buf[p + 2]!;
    const words = buf[p + 3]! & 0x1f;
    if (p + 4 + words * 4 > end) return DROP.INVALID_GENEVE_OPTION;
    if (cls === DSR_GENEVE_OPT_CLASS && type === DSR_GENEVE_OPT_TYPE) {
      if (words !== 2) return DROP.INVALID_GENEVE_OPTION;
      info.addr = get32(buf, p + 4);
      info.port = get16(buf, p + 8);
    } else if ((type & GENEVE_OPT_CRITICAL) !== 0) {
      return DROP.INVALID_GENEVE_OPTION;
    }
    p += 4 + words * 4;
  }
  return 0;
}

/**
 * Headers grew (delta > 0) or shrank in front of the L4 header of the frame
 * at `o`: a pending checksum's start and a GSO frame's header length move
 * with it.
 */
export function vnetShift(buf: Uint8Array, o: number, delta: number): void {
  const h = o - VNET_HDR_LEN;
  if (buf[h]! & 1) {
    const v = (buf[h + 6]! | (buf[h + 7]! << 8)) + delta;
    buf[h + 6] = v & 0xff;
    buf[h + 7] = (v >> 8) & 0xff;
  }
  if (buf[h + 1] !== 0) {
    const v = (buf[h + 2]! | (buf[h + 3]! << 8)) + delta;
    buf[h + 2] = v & 0xff;
    buf[h + 3] = (v >> 8) & 0xff;
  }
}

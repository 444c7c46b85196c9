/**
 * Just enough of the pcap file format and of Ethernet/IPv4/IPv6 to find the
 * packets a kernel sends when it does not own a flow: TCP resets and ICMP
 * destination-unreachable messages, also inside VXLAN (the outer UDP port
 * is given), so the cross-node capture can count them itself instead of
 * scraping tcpdump's text output.
 *
 * API: readPcap, findReplies, PcapFrame, Reply
 *
 * Formats: pcap (not pcapng), either byte order, micro- or nanosecond
 * magic, link type Ethernet (1). Frames cut by the snap length are parsed
 * as far as they go; anything shorter than the header in question is
 * skipped, never thrown on.
 */

/** One captured frame: its bytes (possibly cut at the snap length). */
export interface PcapFrame {
  data: Buffer;
  /** Length on the wire, before the snap length cut it. */
  origLen: number;
}

/** A packet of interest: who sent what to whom. */
export interface Reply {
  kind: 'tcp-rst' | 'icmp-unreach' | 'icmp6-unreach' | 'udp';
  src: string;
  dst: string;
  /** Destination port (TCP, UDP), or the ICMP code. */
  port: number;
  /** For an ICMP error: the destination port of the datagram it quotes (TCP/UDP), else -1. */
  quotedPort: number;
  /** Found inside a VXLAN packet. */
  inner: boolean;
}

const LINKTYPE_ETHERNET = 1;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
const TCP_RST = 0x04;
const ICMP_DEST_UNREACH = 3;
const ICMPV6_DEST_UNREACH = 1;
/** UDP header + VXLAN header before the inner Ethernet frame. */
const VXLAN_INNER_OFF = 8 + 8;

/** The frames of a pcap file; throws on a file that is not pcap or not Ethernet. */
export function readPcap(file: Buffer): PcapFrame[] {
  if (file.length < 24) throw new Error(`pcap: ${file.length} bytes, shorter than the file header`);
  const magic = file.readUInt32LE(0);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else throw new Error(`pcap: bad magic 0x${magic.toString(16)} (pcapng is not supported)`);
  const u32 = (off: number): number => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  const linkType = u32(20) & 0xffff;
  if (linkType !== LINKTYPE_ETHERNET) throw new Error(`pcap: link type ${linkType}, expected Ethernet (1)`);
  const frames: PcapFrame[] = [];
  let off = 24;
  // A record header is 16 bytes: ts_sec, ts_frac, incl_len, orig_len; a truncated last record is dropped.
  while (off + 16 <= file.length) {
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    if (off + 16 + incl > file.length) break;
    frames.push({ data: file.subarray(off + 16, off + 16 + incl), origLen: orig });
    off += 16 + incl;
  }
  return frames;
}

const ipv4 = (b: Buffer, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

/** An IPv6 address as eight uncompressed groups (reports only; nothing compares them). */
function ipv6(b: Buffer, off: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(off + i).toString(16));
  return groups.join(':');
}

/** Destination port of the TCP/UDP datagram an ICMP error quotes at `off` (its IPv4 header), or -1. */
function quotedPort4(b: Buffer, off: number): number {
  if (off + 20 > b.length || b[off]! >> 4 !== 4) return -1;
  const ihl = (b[off]! & 0x0f) * 4;
  const proto = b[off + 9];
  if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || off + ihl + 4 > b.length) return -1;
  return b.readUInt16BE(off + ihl + 2);
}

/** The replies in the IPv4 packet at `off`; recurses once into VXLAN when `vxlanPort` matches. */
function inIpv4(b: Buffer, off: number, inner: boolean, vxlanPort: number, out: Reply[]): void {
  if (off + 20 > b.length || b[off]! >> 4 !== 4) return;
  const ihl = (b[off]! & 0x0f) * 4;
  if (ihl < 20 || (b.readUInt16BE(off + 6) & 0x1fff) !== 0) return; // not a first fragment: no L4 header
  const proto = b[off + 9];
  const src = ipv4(b, off + 12);
  const dst = ipv4(b, off + 16);
  const l4 = off + ihl;
  if (proto === IPPROTO_TCP && l4 + 14 <= b.length) {
    if (b[l4 + 13]! & TCP_RST) out.push({ kind: 'tcp-rst', src, dst, port: b.readUInt16BE(l4 + 2), quotedPort: -1, inner });
  } else if (proto === IPPROTO_ICMP && l4 + 2 <= b.length) {
    if (b[l4] === ICMP_DEST_UNREACH) out.push({ kind: 'icmp-unreach', src, dst, port: b[l4 + 1]!, quotedPort: quotedPort4(b, l4 + 8), inner });
  } else if (proto === IPPROTO_UDP && l4 + 8 <= b.length) {
    const dport = b.readUInt16BE(l4 + 2);
    if (!inner && dport === vxlanPort) inEthernet(b, l4 + VXLAN_INNER_OFF, true, vxlanPort, out);
    else out.push({ kind: 'udp', src, dst, port: dport, quotedPort: -1, inner });
  }
}

/** The replies in the IPv6 packet at `off` (no extension headers are walked). */
function inIpv6(b: Buffer, off: number, inner: boolean, out: Reply[]): void {
  if (off + 40 > b.length || b[off]! >> 4 !== 6) return;
  const next = b[off + 6];
  const src = ipv6(b, off + 8);
  const dst = ipv6(b, off + 24);
  const l4 = off + 40;
  if (next === IPPROTO_TCP && l4 + 14 <= b.length) {
    if (b[l4 + 13]! & TCP_RST) out.push({ kind: 'tcp-rst', src, dst, port: b.readUInt16BE(l4 + 2), quotedPort: -1, inner });
  } else if (next === IPPROTO_ICMPV6 && l4 + 2 <= b.length) {
    if (b[l4] === ICMPV6_DEST_UNREACH) out.push({ kind: 'icmp6-unreach', src, dst, port: b[l4 + 1]!, quotedPort: -1, inner });
  }
}

function inEthernet(b: Buffer, off: number, inner: boolean, vxlanPort: number, out: Reply[]): void {
  if (off + 14 > b.length) return;
  let type = b.readUInt16BE(off + 12);
  let l3 = off + 14;
  if (type === ETH_P_8021Q && l3 + 4 <= b.length) {
    type = b.readUInt16BE(l3 + 2);
    l3 += 4;
  }
  if (type === ETH_P_IP) inIpv4(b, l3, inner, vxlanPort, out);
  else if (type === ETH_P_IPV6) inIpv6(b, l3, inner, out);
}

/**
 * TCP resets, ICMP/ICMPv6 destination-unreachable messages and (outer or
 * inner) UDP datagrams in one Ethernet frame, looking inside VXLAN on UDP
 * destination port `vxlanPort`.
 */
export function findReplies(frame: Buffer, vxlanPort: number): Reply[] {
  const out: Reply[] = [];
  inEthernet(frame, 0, false, vxlanPort, out);
  return out;
}

/**
 * pktgen: a fluent packet builder for tests (after Cilium's bpf/tests pktgen
 * and Katran's PacketBuilder).
 *
 *   pktgen().eth({ src: '02:..:01', dst: '02:..:02' })
 *     .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64 })
 *     .tcp({ sport: 1000, dport: 80, flags: 'S' })
 *     .payload(64)
 *     .build()                       // -> Uint8Array
 *
 * Layers: eth, arp, ipv4, ipv6, ipv6Ext, tcp, udp, icmp4, icmp4Echo, icmp6,
 * icmp6Echo, ndpNs, ndpNa, ndpRs, ndpRa, vxlan, geneve, raw, payload; plus
 * trailer() (bytes after the IP packet, e.g. Ethernet padding, counted in no
 * length field) and vnet() (prepend a 10-byte virtio-net header).
 *
 * Filled automatically: ethertype, IP protocol / next header, lengths
 * (IPv4 total length, IPv6 payload length, UDP length), UDP ports for
 * VXLAN (8472) / Geneve (6081), Geneve protocol type, hop limit 255 for
 * NDP, and every checksum (innermost first, so an outer UDP checksum covers
 * the finished inner frame). Every one can be overridden to build malformed
 * frames: ipv4({ ihl: 3 }), ipv4({ totalLen: 9999 }), tcp({ checksum: 0 }).
 * Overrides are applied before checksums are computed (so a checksum stays
 * valid for the bytes as built) except `checksum`, applied last.
 *
 * vnet(): build() returns virtio-net header + frame. With NEEDS_CSUM, and
 * csumStart/csumOffset not given, they point at the first TCP/UDP header and
 * its checksum field holds the partial pseudo-header sum, as a kernel
 * sender with checksum offload writes it.
 */

import * as w from '../../src/wire/index.ts';

/** A MAC as text or 6 bytes. */
export type MacLike = string | Uint8Array;
/** An IPv4 address as text or u32. */
export type Ip4Like = string | number;
/** An IPv6 address as text or 16 bytes. */
export type Ip6Like = string | Uint8Array;

const mac = (m: MacLike): Uint8Array => (typeof m === 'string' ? w.parseMac(m) : m);
const ip4 = (a: Ip4Like): number => (typeof a === 'string' ? w.parseIpv4(a) : a >>> 0);
const ip6 = (a: Ip6Like): Uint8Array => (typeof a === 'string' ? w.parseIpv6(a) : a);
const ZERO_MAC = new Uint8Array(6);

/** Ethernet options; `type` overrides the inferred ethertype. */
export interface EthOpts { src?: MacLike; dst?: MacLike; type?: number }
/** ARP options; op 'request' (1) or 'reply' (2) or a number. */
export interface ArpOpts { op?: 'request' | 'reply' | number; sha?: MacLike; spa?: Ip4Like; tha?: MacLike; tpa?: Ip4Like }
/** IPv4 options; `options` are raw option bytes (padded with End to 4 bytes). */
export interface Ipv4Opts {
  src?: Ip4Like; dst?: Ip4Like; ttl?: number; dscp?: number; ecn?: number; id?: number; df?: boolean; mf?: boolean;
  fragOffset?: number; protocol?: number; options?: Uint8Array; ihl?: number; version?: number; totalLen?: number;
  checksum?: number;
}
/** IPv6 options. */
export interface Ipv6Opts {
  src?: Ip6Like; dst?: Ip6Like; hopLimit?: number; trafficClass?: number; flowLabel?: number; nextHeader?: number;
  payloadLen?: number; version?: number;
}
/** IPv6 extension header: type 0/43/60 (data padded to 8n-2 bytes), 44 (fragment) or 51 (AH, data = ICV). */
export interface Ipv6ExtOpts {
  type: number; nextHeader?: number; data?: Uint8Array; fragOffset?: number; more?: boolean; id?: number;
  hdrExtLen?: number;
}
/** TCP options; flags as letters ("SA") or a number; `options` raw bytes (padded with End). */
export interface TcpOpts {
  sport?: number; dport?: number; seq?: number; ack?: number; flags?: string | number; window?: number;
  urgent?: number; options?: Uint8Array; dataOffset?: number; checksum?: number;
}
/** UDP options. */
export interface UdpOpts { sport?: number; dport?: number; len?: number; checksum?: number }
/** Generic ICMP/ICMPv6 header: type, code, the 4 "rest of header" bytes as u32. */
export interface IcmpOpts { type: number; code?: number; rest?: number; checksum?: number }
/** Echo request (or reply) options. */
export interface EchoOpts { id?: number; seq?: number; reply?: boolean; checksum?: number }
/** Neighbor Solicitation options. */
export interface NdpNsOpts { target: Ip6Like; sllao?: MacLike; checksum?: number }
/** Neighbor Advertisement options (flags default: solicited + override). */
export interface NdpNaOpts {
  target: Ip6Like; tllao?: MacLike; router?: boolean; solicited?: boolean; override?: boolean; checksum?: number;
}
/** Router Solicitation options. */
export interface NdpRsOpts { sllao?: MacLike; checksum?: number }
/** Router Advertisement options. */
export interface NdpRaOpts {
  curHopLimit?: number; flags?: number; routerLifetime?: number; reachableTime?: number; retransTimer?: number;
  sllao?: MacLike; mtu?: number; checksum?: number;
}
/** VXLAN options. */
export interface VxlanOpts { vni: number; flags?: number }
/** Geneve options. */
export interface GeneveOpts { vni: number; options?: w.GeneveOption[]; protocol?: number; oam?: boolean; critical?: boolean }
/** virtio-net header options (see the file header for NEEDS_CSUM inference). */
export interface VnetOpts {
  flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number;
}

type Kind = 'eth' | 'arp' | 'ipv4' | 'ipv6' | 'ext' | 'tcp' | 'udp' | 'icmp4' | 'icmp6' | 'vxlan' | 'geneve' | 'raw';

interface Layer {
  kind: Kind;
  /** Header bytes this layer occupies. */
  len: number;
  /** Write the header; rest = bytes from this layer to the end of the packet. */
  write(b: Uint8Array, o: number, rest: number, next: Layer | undefined): void;
  /** Checksum override, applied after checksums are computed. */
  checksum?: number;
  /** An NDP message: the IPv6 layer before it defaults to hop limit 255. */
  ndp?: boolean;
  /** Protocol number this layer has as a payload of IP, if any. */
  ipProto?: number;
}

function pad(bytes: Uint8Array | undefined, mult: number, sub = 0): Uint8Array {
  const n = bytes ? bytes.length : 0;
  const want = Math.ceil((n + sub) / mult) * mult - sub;
  const out = new Uint8Array(want);
  if (bytes) out.set(bytes);
  return out;
}

function ipProtoOf(next: Layer | undefined, none: number): number {
  if (!next) return none;
  if (next.ipProto !== undefined) return next.ipProto;
  if (next.kind === 'ipv4') return w.IPPROTO_IPIP;
  if (next.kind === 'ipv6') return w.IPPROTO_IPV6;
  return w.IPPROTO_EXPERIMENT;
}

function etherTypeOf(next: Layer | undefined): number {
  switch (next?.kind) {
    case 'ipv4': return w.ETH_P_IP;
    case 'ipv6': return w.ETH_P_IPV6;
    case 'arp': return w.ETH_P_ARP;
    case 'eth': return w.ETH_P_TEB;
    default: return w.ETH_P_LOCAL_EXP;
  }
}

/** The builder; get one from pktgen(). */
export class PktGen {
  private layers: Layer[] = [];
  private tail: Uint8Array = new Uint8Array(0);
  private vnetOpts: VnetOpts | undefined;

  private push(l: Layer): this {
    this.layers.push(l);
    return this;
  }

  /** Ethernet II header. */
  eth(o: EthOpts = {}): this {
    return this.push({
      kind: 'eth', len: w.ETH_HLEN,
      write: (b, off, _rest, next) => w.ethernetEmit({
        dst: mac(o.dst ?? '02:00:00:00:00:02'), src: mac(o.src ?? '02:00:00:00:00:01'),
        ethertype: o.type ?? etherTypeOf(next),
      }, b, off),
    });
  }

  /** Ethernet/IPv4 ARP packet. */
  arp(o: ArpOpts = {}): this {
    const op = o.op === 'reply' ? w.ARPOP_REPLY : o.op === 'request' || o.op === undefined ? w.ARPOP_REQUEST : o.op;
    return this.push({
      kind: 'arp', len: w.ARP_LEN,
      write: (b, off) => w.arpEmit({
        op, sha: mac(o.sha ?? '02:00:00:00:00:01'), spa: ip4(o.spa ?? '10.0.0.1'), tha: mac(o.tha ?? ZERO_MAC),
        tpa: ip4(o.tpa ?? '10.0.0.2'),
      }, b, off),
    });
  }

  /** IPv4 header (options allowed). */
  ipv4(o: Ipv4Opts = {}): this {
    const opts = pad(o.options, 4);
    const len = w.IPV4_HEADER_LEN + opts.length;
    return this.push({
      kind: 'ipv4', len,
      write: (b, off, rest, next) => {
        w.ipv4Emit({
          src: ip4(o.src ?? '10.0.0.1'), dst: ip4(o.dst ?? '10.0.0.2'), protocol: o.protocol ?? ipProtoOf(next, w.IPPROTO_EXPERIMENT),
          ttl: o.ttl ?? 64, payloadLen: rest - len, dscp: o.dscp, ecn: o.ecn, ident: o.id, dontFrag: o.df,
          moreFrags: o.mf, fragOffset: o.fragOffset,
        }, b, off);
        b.set(opts, off + w.IPV4_HEADER_LEN);
        const v = new w.Ipv4View().bind(b, off, len);
        v.setIhl(len >>> 2);
        v.setTotalLen(rest);
        if (o.ihl !== undefined) v.setIhl(o.ihl);
        if (o.version !== undefined) v.setVersion(o.version);
        if (o.totalLen !== undefined) v.setTotalLen(o.totalLen);
        v.setChecksum(0);
        v.setChecksum(w.finish(w.sum16(b, off, len)));
        if (o.checksum !== undefined) v.setChecksum(o.checksum);
      },
    });
  }

  /** IPv6 fixed header. */
  ipv6(o: Ipv6Opts = {}): this {
    return this.push({
      kind: 'ipv6', len: w.IPV6_HEADER_LEN,
      write: (b, off, rest, next) => {
        const ndp = next?.ndp === true;
        w.ipv6Emit({
          src: ip6(o.src ?? 'fd00::1'), dst: ip6(o.dst ?? 'fd00::2'),
          nextHeader: o.nextHeader ?? ipProtoOf(next, w.IPPROTO_NONE), hopLimit: o.hopLimit ?? (ndp ? 255 : 64),
          payloadLen: o.payloadLen ?? rest - w.IPV6_HEADER_LEN, trafficClass: o.trafficClass, flowLabel: o.flowLabel,
        }, b, off);
        if (o.version !== undefined) new w.Ipv6View().bind(b, off, 40).setVersion(o.version);
      },
    });
  }

  /** IPv6 extension header (Hop-by-Hop 0, Routing 43, Fragment 44, AH 51, Destination Options 60). */
  ipv6Ext(o: Ipv6ExtOpts): this {
    let body: Uint8Array;
    if (o.type === w.IPPROTO_FRAGMENT) body = new Uint8Array(6);
    else if (o.type === w.IPPROTO_AH) body = pad(o.data ?? new Uint8Array(12), 8, 12);
    else if (o.data) body = pad(o.data, 8, 2);
    else if (o.type === w.IPPROTO_ROUTING) body = new Uint8Array(6); // type 0, Segments Left 0: ignored
    else body = Uint8Array.of(1, 4, 0, 0, 0, 0); // one PadN option (RFC 8200 §4.2)
    const ah = o.type === w.IPPROTO_AH;
    const len = ah ? 12 + body.length : 2 + body.length;
    return this.push({
      kind: 'ext', len, ipProto: o.type,
      write: (b, off, _rest, next) => {
        b.fill(0, off, off + len);
        b[off] = o.nextHeader ?? ipProtoOf(next, w.IPPROTO_NONE);
        if (o.type === w.IPPROTO_FRAGMENT) {
          w.set16(b, off + 2, ((o.fragOffset ?? 0) & 0xfff8) | (o.more ? 1 : 0));
          w.set32(b, off + 4, o.id ?? 0);
        } else if (ah) {
          b[off + 1] = (len >>> 2) - 2;
          b.set(body, off + 12);
        } else {
          b[off + 1] = (len >>> 3) - 1;
          b.set(body, off + 2);
        }
        if (o.hdrExtLen !== undefined) b[off + 1] = o.hdrExtLen;
      },
    });
  }

  private l4(kind: Kind, proto: number, len: number, checksum: number | undefined,
    write: (b: Uint8Array, off: number, rest: number, next: Layer | undefined) => void): this {
    return this.push({ kind, len, ipProto: proto, write, checksum });
  }

  /** TCP header (options allowed). */
  tcp(o: TcpOpts = {}): this {
    const opts = pad(o.options, 4);
    const len = w.TCP_HEADER_LEN + opts.length;
    const flags = typeof o.flags === 'string' ? w.tcpFlagsParse(o.flags) : o.flags ?? w.TCP_FLAG_SYN;
    return this.l4('tcp', w.IPPROTO_TCP, len, o.checksum, (b, off) => {
      w.tcpEmit({
        srcPort: o.sport ?? 49152, dstPort: o.dport ?? 80, seq: o.seq ?? 0, ack: o.ack ?? 0, flags,
        window: o.window ?? 65535, urgent: o.urgent, payloadLen: 0,
      }, b, off);
      b.set(opts, off + w.TCP_HEADER_LEN);
      const v = new w.TcpView().bind(b, off, len);
      v.setDataOffset(o.dataOffset ?? len >>> 2);
    });
  }

  /** UDP header; the destination port follows a VXLAN/Geneve layer. */
  udp(o: UdpOpts = {}): this {
    return this.l4('udp', w.IPPROTO_UDP, w.UDP_HEADER_LEN, o.checksum, (b, off, rest, next) => {
      const dflt = next?.kind === 'vxlan' ? w.VXLAN_PORT_CILIUM : next?.kind === 'geneve' ? w.GENEVE_PORT : 53;
      w.udpEmit({ srcPort: o.sport ?? 49152, dstPort: o.dport ?? dflt, payloadLen: rest - 8 }, b, off);
      if (o.len !== undefined) w.set16(b, off + 4, o.len);
    });
  }

  /** Generic ICMP header; follow with raw() for quoted data. */
  icmp4(o: IcmpOpts): this {
    return this.l4('icmp4', w.IPPROTO_ICMP, 8, o.checksum, (b, off) => {
      b[off] = o.type;
      b[off + 1] = o.code ?? 0;
      w.set32(b, off + 4, o.rest ?? 0);
    });
  }

  /** ICMP echo request (or reply). */
  icmp4Echo(o: EchoOpts = {}): this {
    const type = o.reply ? w.ICMP_ECHOREPLY : w.ICMP_ECHO;
    return this.icmp4({ type, rest: ((o.id ?? 0) * 65536 + (o.seq ?? 0)) >>> 0, checksum: o.checksum });
  }

  /** Generic ICMPv6 header; follow with raw() for quoted data. */
  icmp6(o: IcmpOpts): this {
    return this.l4('icmp6', w.IPPROTO_ICMPV6, 8, o.checksum, (b, off) => {
      w.icmp6Emit({ kind: 'other', type: o.type, code: o.code ?? 0, rest: o.rest ?? 0, dataLen: 0 }, b, off);
    });
  }

  /** ICMPv6 echo request (or reply). */
  icmp6Echo(o: EchoOpts = {}): this {
    const type = o.reply ? w.ICMPV6_ECHO_REPLY : w.ICMPV6_ECHO_REQUEST;
    return this.icmp6({ type, rest: ((o.id ?? 0) * 65536 + (o.seq ?? 0)) >>> 0, checksum: o.checksum });
  }

  private ndp(r: w.Icmp6Repr, checksum: number | undefined): this {
    // ndp: the IPv6 layer defaults to hop limit 255 (RFC 4861 §7.1).
    return this.push({
      kind: 'icmp6', len: w.icmp6BufferLen(r), ipProto: w.IPPROTO_ICMPV6, checksum, ndp: true,
      write: (b, off) => { w.icmp6Emit(r, b, off); },
    });
  }

  /** Neighbor Solicitation with an optional source link-layer address option. */
  ndpNs(o: NdpNsOpts): this {
    const r: w.Icmp6Repr = { kind: 'ns', target: ip6(o.target) };
    if (o.sllao) r.sllao = mac(o.sllao);
    return this.ndp(r, o.checksum);
  }

  /** Neighbor Advertisement with an optional target link-layer address option. */
  ndpNa(o: NdpNaOpts): this {
    const flags = (o.router ? w.NDP_NA_ROUTER : 0) | (o.solicited ?? true ? w.NDP_NA_SOLICITED : 0) |
      (o.override ?? true ? w.NDP_NA_OVERRIDE : 0);
    const r: w.Icmp6Repr = { kind: 'na', flags, target: ip6(o.target) };
    if (o.tllao) r.tllao = mac(o.tllao);
    return this.ndp(r, o.checksum);
  }

  /** Router Solicitation. */
  ndpRs(o: NdpRsOpts = {}): this {
    const r: w.Icmp6Repr = { kind: 'rs' };
    if (o.sllao) r.sllao = mac(o.sllao);
    return this.ndp(r, o.checksum);
  }

  /** Router Advertisement. */
  ndpRa(o: NdpRaOpts = {}): this {
    const r: w.Icmp6Repr = {
      kind: 'ra', curHopLimit: o.curHopLimit ?? 64, flags: o.flags ?? 0, routerLifetime: o.routerLifetime ?? 1800,
      reachableTime: o.reachableTime ?? 0, retransTimer: o.retransTimer ?? 0,
    };
    if (o.sllao) r.sllao = mac(o.sllao);
    if (o.mtu !== undefined) r.mtu = o.mtu;
    return this.ndp(r, o.checksum);
  }

  /** VXLAN header (I flag set unless `flags` says otherwise). */
  vxlan(o: VxlanOpts): this {
    return this.push({
      kind: 'vxlan', len: w.VXLAN_HEADER_LEN,
      write: (b, off) => {
        w.vxlanEmit({ vni: o.vni }, b, off);
        if (o.flags !== undefined) b[off] = o.flags;
      },
    });
  }

  /** Geneve header with options; protocol type follows the next layer. */
  geneve(o: GeneveOpts): this {
    const r: w.GeneveRepr = { vni: o.vni, options: o.options ?? [], oam: o.oam, critical: o.critical };
    return this.push({
      kind: 'geneve', len: w.geneveBufferLen(r),
      write: (b, off, _rest, next) => {
        const protocol = o.protocol ?? (next?.kind === 'eth' || !next ? w.ETH_P_TEB : etherTypeOf(next));
        w.geneveEmit({ ...r, protocol }, b, off);
      },
    });
  }

  /** Arbitrary bytes as the next layer. */
  raw(bytes: Uint8Array): this {
    return this.push({ kind: 'raw', len: bytes.length, write: (b, off) => b.set(bytes, off) });
  }

  /** Payload: bytes, a UTF-8 string, or a size (filled with i & 0xff). */
  payload(p: Uint8Array | string | number): this {
    const bytes = typeof p === 'number' ? Uint8Array.from({ length: p }, (_, i) => i & 0xff)
      : typeof p === 'string' ? new TextEncoder().encode(p) : p;
    return this.raw(bytes);
  }

  /** Bytes after the packet that no length field counts (Ethernet padding, trailers). */
  trailer(p: Uint8Array | number): this {
    this.tail = typeof p === 'number' ? new Uint8Array(p) : p;
    return this;
  }

  /** Prepend a virtio-net header; see the file header for NEEDS_CSUM handling. */
  vnet(o: VnetOpts = {}): this {
    this.vnetOpts = o;
    return this;
  }

  /** Lay out, fill lengths and checksums; returns [vnet header +] frame [+ trailer]. */
  build(): Uint8Array {
    const ls = this.layers;
    const offs: number[] = [];
    let total = 0;
    for (const l of ls) {
      offs.push(total);
      total += l.len;
    }
    const pre = this.vnetOpts ? w.VIRTIO_NET_HDR_LEN : 0;
    const out = new Uint8Array(pre + total + this.tail.length);
    const b = out.subarray(pre, pre + total);
    ls.forEach((l, i) => l.write(b, offs[i], total - offs[i], ls[i + 1]));
    out.set(this.tail, pre + total);

    // Partial checksum target for NEEDS_CSUM (first TCP/UDP unless csumStart says otherwise).
    const vo = this.vnetOpts;
    let partialAt = -1;
    let csumStart = vo?.csumStart ?? 0;
    let csumOffset = vo?.csumOffset ?? 0;
    if (vo && ((vo.flags ?? 0) & w.VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
      partialAt = vo.csumStart !== undefined ? offs.indexOf(vo.csumStart)
        : ls.findIndex((l) => l.kind === 'tcp' || l.kind === 'udp');
      if (partialAt >= 0) {
        csumStart = offs[partialAt];
        csumOffset = vo.csumOffset ?? w.l4CsumOffset(ls[partialAt].ipProto ?? -1);
      }
    }

    // Checksums, innermost first: an outer checksum covers finished inner bytes.
    for (let i = ls.length - 1; i >= 0; i--) {
      const l = ls[i];
      if (l.ipProto === undefined || l.kind === 'ext') continue;
      let ip = i - 1;
      while (ip >= 0 && ls[ip].kind === 'ext') ip--;
      const off = offs[i];
      const len = total - off;
      const at = off + w.l4CsumOffset(l.ipProto);
      const ipL = ls[ip];
      if (l.ipProto === w.IPPROTO_ICMP || !ipL || (ipL.kind !== 'ipv4' && ipL.kind !== 'ipv6')) {
        w.set16(b, at, 0);
        w.set16(b, at, w.finish(w.sum16(b, off, len)));
      } else if (ipL.kind === 'ipv4') {
        const v = new w.Ipv4View().bind(b, offs[ip], total - offs[ip]);
        if (i === partialAt) w.l4CsumFillPartial4(b, off, len, l.ipProto, v.src(), v.dst());
        else w.l4CsumFill4(b, off, len, l.ipProto, v.src(), v.dst());
      } else {
        const so = offs[ip] + w.ipv6Field.SRC_ADDR;
        const d = offs[ip] + w.ipv6Field.DST_ADDR;
        if (i === partialAt) w.l4CsumFillPartial6(b, off, len, l.ipProto, so, d);
        else w.l4CsumFill6(b, off, len, l.ipProto, so, d);
      }
      if (l.checksum !== undefined) w.set16(b, at, l.checksum);
    }

    if (vo) {
      w.virtioNetEmit({
        flags: vo.flags ?? 0, gsoType: vo.gsoType ?? w.VIRTIO_NET_HDR_GSO_NONE, hdrLen: vo.hdrLen ?? 0,
        gsoSize: vo.gsoSize ?? 0, csumStart, csumOffset,
      }, out, 0);
    }
    return out;
  }
}

/** Start building a packet. */
export function pktgen(): PktGen {
  return new PktGen();
}

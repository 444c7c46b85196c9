/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * API:
 *   sum16(b, off, len, init)      ones-complement accumulate of big-endian 16-bit words
 *   fold(sum) / finish(sum)       end-around carry to 16 bits / complement for the wire
 *   ipv4PseudoSum, ipv6PseudoSum  pseudo-header sums (RFC 9293 §3.1, RFC 8200 §8.1)
 *   csumReplace16/32/Bytes        RFC 1624 eqn. 3 incremental updates
 *   ipv4HdrCsumFill/Ok            IPv4 header checksum
 *   l4CsumFill4/6, l4CsumOk4/6    TCP/UDP/ICMP/ICMPv6 checksums from scratch
 *   l4CsumReplaceAddr/Addr6/Port  NAT-style updates, aware of virtio-net partial checksums
 *   l4CsumFillPartial4/6, csumCompletePartial   what a sender / a device does with NEEDS_CSUM
 *
 * Accumulators are plain non-negative JS numbers (exact up to 2^53), so a sum
 * is only folded when it is stored. Nothing here allocates per packet.
 */

import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './ip.ts';

/* One-entry cache of a Uint32Array over the last backing buffer seen. The
 * datapath checksums frames of one slab, so this is created once; tests that
 * hop between buffers pay one small allocation per switch. */
let u32Buf: ArrayBufferLike | null = null;
let u32View: Uint32Array = new Uint32Array(0);

/** Below this many bytes the plain byte loop wins over aligned word reads. */
const WORD_LOOP_MIN = 64;

/**
 * Ones-complement accumulate of `len` bytes at `b[off]` as big-endian 16-bit
 * words (an odd trailing byte is padded with zero, RFC 1071 §4.1), added to
 * `init`. Returns an unfolded accumulator: feed it to `fold()`/`finish()` or
 * pass it on as `init`. The region must start at an even offset relative to
 * the start of the checksummed data (true for every header we sum).
 */
export function sum16(b: Uint8Array, off: number, len: number, init = 0): number {
  if (len < WORD_LOOP_MIN) {
    let s = init;
    const end = off + (len & ~1);
    let i = off;
    for (; i < end; i += 2) s += (b[i] << 8) | b[i + 1];
    if (len & 1) s += b[i] << 8;
    return s;
  }
  /*
   * Long buffers: read aligned little-endian u32 words, which halves the
   * loop trips and the bounds checks compared with byte pairs (~2-4x faster
   * on V8 for 1500 B .. 64 KiB, see bench/wire.bench.ts). This relies on
   * RFC 1071 §2(B) byte-order independence: the sum of byte-swapped words
   * is the byte-swapped sum. Summing words aligned to *absolute* addresses
   * pairs each even-address byte as a high byte; when `off` itself is odd
   * the pairing is shifted by one, and since 256 * 256 = 1 (mod 0xffff) a
   * final byte swap of the folded sum restores the pairing relative to off.
   */
  const buf = b.buffer;
  if (buf !== u32Buf) {
    u32Buf = buf;
    u32View = new Uint32Array(buf, 0, buf.byteLength >>> 2);
  }
  const abs = b.byteOffset + off;
  const absEnd = abs + len;
  const w0 = (abs + 3) >>> 2;
  const w1 = absEnd >>> 2;
  // Head and tail bytes outside the aligned words: high byte at even absolute address.
  let edge = 0;
  for (let a = abs; a < w0 << 2; a++) edge += (a & 1) === 0 ? b[a - b.byteOffset] << 8 : b[a - b.byteOffset];
  for (let a = w1 << 2; a < absEnd; a++) edge += (a & 1) === 0 ? b[a - b.byteOffset] << 8 : b[a - b.byteOffset];
  // Two accumulators let the adds overlap; doubles stay exact below 2^53.
  const u = u32View;
  let s0 = 0;
  let s1 = 0;
  let w = w0;
  for (; w + 1 < w1; w += 2) {
    s0 += u[w];
    s1 += u[w + 1];
  }
  if (w < w1) s0 += u[w];
  const le = fold(s0 + s1); // sum of little-endian 16-bit words
  let s = fold(((le & 0xff) << 8) + (le >>> 8) + edge);
  if (abs & 1) s = ((s & 0xff) << 8) | (s >>> 8);
  return init + s;
}

/** Fold an accumulator to 16 bits with end-around carry (RFC 1071 §4.1). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffffffff) s = (s % 4294967296) + Math.floor(s / 4294967296);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The value to store in a checksum field: the complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Pseudo-header sum for TCP/UDP over IPv4 (RFC 9293 §3.1, RFC 768): addrs as u32. */
export function ipv4PseudoSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/** Pseudo-header sum for upper layers over IPv6 (RFC 8200 §8.1): 32-bit length, addrs in `b`. */
export function ipv6PseudoSum(b: Uint8Array, srcOff: number, dstOff: number, proto: number, len: number): number {
  return sum16(b, srcOff, 16, sum16(b, dstOff, 16, (len >>> 16) + (len & 0xffff) + proto));
}

/*
 * Incremental update, RFC 1624 §3:
 *
 *     HC' = ~(C + (-m) + m')    --    [Eqn. 3]
 *         = ~(~HC + ~m + m')
 *
 * HC is the stored checksum, m/m' the old/new 16-bit field. RFC 1141's
 * [Eqn. 2] (HC' = HC + m + ~m') can yield -0 (0xFFFF) where a from-scratch
 * computation gives +0 (0x0000): "the checksum field can never contain
 * ~(+0), which is -0 (0xFFFF). It can, however, contain ~(-0), which is
 * +0 (0x0000)". With eqn. 3 and end-around-carry addition the folded sum
 * ~HC + ~m + m' is 0x0000 only if every term is zero, i.e. HC = 0xFFFF,
 * which no from-scratch checksum of data with a non-zero word produces, so
 * the result always equals a full recompute (test/wire/checksum.test.ts
 * checks this on random inputs).
 */

/** RFC 1624 eqn. 3 for one 16-bit field: new checksum after `old` became `nw`. */
export function csumReplace16(check: number, old: number, nw: number): number {
  return ~fold((~check & 0xffff) + (~old & 0xffff) + (nw & 0xffff)) & 0xffff;
}

/** RFC 1624 eqn. 3 for a 32-bit field (two 16-bit words), e.g. an IPv4 address. */
export function csumReplace32(check: number, old: number, nw: number): number {
  const nOld = ~old;
  return ~fold((~check & 0xffff) + ((nOld >>> 16) & 0xffff) + (nOld & 0xffff) + (nw >>> 16) + (nw & 0xffff)) & 0xffff;
}

/** RFC 1624 eqn. 3 for an even-length byte field (e.g. a 16-byte IPv6 address). */
export function csumReplaceBytes(
  check: number, oldB: Uint8Array, oldOff: number, newB: Uint8Array, newOff: number, len: number,
): number {
  const negOld = ~fold(sum16(oldB, oldOff, len)) & 0xffff;
  return ~fold((~check & 0xffff) + negOld + sum16(newB, newOff, len)) & 0xffff;
}

/** Fill the IPv4 header checksum at b[o+10] over IHL*4 bytes (RFC 791 §3.1); returns it. */
export function ipv4HdrCsumFill(b: Uint8Array, o: number): number {
  b[o + 10] = 0;
  b[o + 11] = 0;
  const c = finish(sum16(b, o, (b[o] & 0x0f) << 2));
  b[o + 10] = c >>> 8;
  b[o + 11] = c & 0xff;
  return c;
}

/** True when the IPv4 header at `o` sums to 0xFFFF including its checksum (RFC 1624 §5). */
export function ipv4HdrCsumOk(b: Uint8Array, o: number): boolean {
  return fold(sum16(b, o, (b[o] & 0x0f) << 2)) === 0xffff;
}

/** Offset of the checksum field inside an L4 header for `proto`, or -1 if it has none. */
export function l4CsumOffset(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP: return 16;
    case IPPROTO_UDP: return 6;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: return 2;
    default: return -1;
  }
}

function store(b: Uint8Array, at: number, c: number): void {
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

/**
 * Compute and store the checksum of the L4 segment b[l4Off, l4Off+l4Len)
 * carried by IPv4 `src` -> `dst`. ICMP has no pseudo-header (RFC 792); a
 * UDP result of 0 is sent as 0xFFFF (RFC 768). Returns the stored value.
 */
export function l4CsumFill4(b: Uint8Array, l4Off: number, l4Len: number, proto: number, src: number, dst: number): number {
  const at = l4Off + l4CsumOffset(proto);
  store(b, at, 0);
  const init = proto === IPPROTO_ICMP ? 0 : ipv4PseudoSum(src, dst, proto, l4Len);
  let c = finish(sum16(b, l4Off, l4Len, init));
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  store(b, at, c);
  return c;
}

/** Verify an L4 checksum over IPv4; a UDP checksum of 0 means "none" and passes (RFC 768). */
export function l4CsumOk4(b: Uint8Array, l4Off: number, l4Len: number, proto: number, src: number, dst: number): boolean {
  if (proto === IPPROTO_UDP && b[l4Off + 6] === 0 && b[l4Off + 7] === 0) return true;
  const init = proto === IPPROTO_ICMP ? 0 : ipv4PseudoSum(src, dst, proto, l4Len);
  return fold(sum16(b, l4Off, l4Len, init)) === 0xffff;
}

/** Compute and store an L4 checksum over IPv6 (addresses at srcOff/dstOff in `b`); UDP 0 -> 0xFFFF. */
export function l4CsumFill6(b: Uint8Array, l4Off: number, l4Len: number, proto: number, srcOff: number, dstOff: number): number {
  const at = l4Off + l4CsumOffset(proto);
  store(b, at, 0);
  let c = finish(sum16(b, l4Off, l4Len, ipv6PseudoSum(b, srcOff, dstOff, proto, l4Len)));
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  store(b, at, c);
  return c;
}

/** Verify an L4 checksum over IPv6; UDP 0 fails, it is mandatory over IPv6 (RFC 8200 §8.1). */
export function l4CsumOk6(b: Uint8Array, l4Off: number, l4Len: number, proto: number, srcOff: number, dstOff: number): boolean {
  if (proto === IPPROTO_UDP && b[l4Off + 6] === 0 && b[l4Off + 7] === 0) return false;
  return fold(sum16(b, l4Off, l4Len, ipv6PseudoSum(b, srcOff, dstOff, proto, l4Len))) === 0xffff;
}

/*
 * virtio-net partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM, the kernel's
 * CHECKSUM_PARTIAL): the sender stores only the folded pseudo-header sum,
 * NOT complemented, in the L4 checksum field, and whoever transmits sums
 * b[csum_start..end) and stores the complement at csum_start+csum_offset.
 * So while a frame is partial:
 *   - an address rewrite (the address is in the pseudo-header) must add the
 *     delta to the field directly: P' = fold(P + ~old + new), no inversion;
 *   - a port rewrite (not in the pseudo-header; the payload is summed later)
 *     must leave the field alone.
 * UDP (`udp = true`): a full checksum of 0 means "none" over IPv4 and is
 * left untouched; a computed 0 is stored as 0xFFFF (RFC 768), as the
 * kernel's BPF_F_MARK_MANGLED_0 does.
 */

function replace(b: Uint8Array, at: number, delta: number, partial: boolean, udp: boolean): void {
  const cur = (b[at] << 8) | b[at + 1];
  if (partial) {
    store(b, at, fold(cur + delta));
    return;
  }
  if (udp && cur === 0) return;
  let c = ~fold((~cur & 0xffff) + delta) & 0xffff;
  if (udp && c === 0) c = 0xffff;
  store(b, at, c);
}

/** Update the L4 checksum at b[csumAt] after an IPv4 address (pseudo-header) changed. */
export function l4CsumReplaceAddr(
  b: Uint8Array, csumAt: number, oldAddr: number, newAddr: number, partial: boolean, udp = false,
): void {
  const n = ~oldAddr;
  replace(b, csumAt, ((n >>> 16) & 0xffff) + (n & 0xffff) + (newAddr >>> 16) + (newAddr & 0xffff), partial, udp);
}

/** Update the L4 checksum at b[csumAt] after a 16-byte IPv6 address (pseudo-header) changed. */
export function l4CsumReplaceAddr6(
  b: Uint8Array, csumAt: number, oldB: Uint8Array, oldOff: number, newB: Uint8Array, newOff: number,
  partial: boolean, udp = false,
): void {
  const negOld = ~fold(sum16(oldB, oldOff, 16)) & 0xffff;
  replace(b, csumAt, negOld + sum16(newB, newOff, 16), partial, udp);
}

/** Update the L4 checksum at b[csumAt] after a port (or other covered 16-bit field) changed; no-op when partial. */
export function l4CsumReplacePort(
  b: Uint8Array, csumAt: number, oldPort: number, newPort: number, partial: boolean, udp = false,
): void {
  if (partial) return;
  replace(b, csumAt, (~oldPort & 0xffff) + (newPort & 0xffff), false, udp);
}

/** Store the partial (non-complemented, folded) pseudo-header sum over IPv4, as a NEEDS_CSUM sender does. */
export function l4CsumFillPartial4(b: Uint8Array, l4Off: number, l4Len: number, proto: number, src: number, dst: number): number {
  const c = fold(ipv4PseudoSum(src, dst, proto, l4Len));
  store(b, l4Off + l4CsumOffset(proto), c);
  return c;
}

/** Store the partial pseudo-header sum over IPv6 (addresses at srcOff/dstOff in `b`). */
export function l4CsumFillPartial6(b: Uint8Array, l4Off: number, l4Len: number, proto: number, srcOff: number, dstOff: number): number {
  const c = fold(ipv6PseudoSum(b, srcOff, dstOff, proto, l4Len));
  store(b, l4Off + l4CsumOffset(proto), c);
  return c;
}

/**
 * Complete a partial checksum like a device would: sum b[start, end) (the
 * field already holds the pseudo-header sum) and store the complement at
 * start + csumOffset. 0 is stored as 0xFFFF, equivalent for TCP and
 * required for UDP. `start`/`csumOffset` are virtio-net csum_start/csum_offset
 * translated to offsets in `b`. Returns the stored value.
 */
export function csumCompletePartial(b: Uint8Array, start: number, end: number, csumOffset: number): number {
  const c = finish(sum16(b, start, end - start)) || 0xffff;
  store(b, start + csumOffset, c);
  return c;
}

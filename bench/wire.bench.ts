/**
 * Micro-benchmarks for src/wire: the per-packet parse and checksum paths,
 * each against a naive baseline measured in the same run.
 *
 *   parse     Eth+IPv4+TCP of a 1500-byte frame in a slab: bind + checkLen +
 *             read the 5-tuple, vs. DataView getters (one DataView over the
 *             slab / a new DataView per packet) and vs. the same checks
 *             hand-inlined over the bytes (the cost of the abstraction)
 *   checksum  full L4 checksum of 1500 B and 64 KiB with sum16, vs. a
 *             Buffer.readUInt16BE loop
 *   update    NAT rewrite of source address + port with RFC 1624 updates
 *             vs. a full recompute of the TCP checksum
 *
 * Run: node --import tsx bench/wire.bench.ts   (prints mitata's table, then
 * the ratios: baseline time / our time, so > 1 means we are faster). Numbers
 * are per call on this machine and noisy on shared hosts; compare ratios.
 *
 * NB (measured while building src/wire, Node 20, 2 busy vCPUs): the views
 * lose to both the hand-inlined byte parse and one DataView shared over the
 * slab. Most of the gap is the abstraction (each accessor reloads b and o
 * from one of three view objects); byte reads vs getUint32 are the smaller
 * part. Deriving a DataView from the Uint8Array in bind() (b.buffer) was far
 * slower; a faster variant would take the slab's DataView as an input.
 */

import { bench, do_not_optimize, run, summary } from 'mitata';
import { pktgen } from '../test/helpers/pktgen.ts';
import {
  csumReplace16, csumReplace32, EthernetView, finish, IPPROTO_TCP, ipv4PseudoSum, Ipv4View, l4CsumFill4, sum16,
  TcpView,
} from '../src/wire/index.ts';

const HEADROOM = 256;
const slab = new Uint8Array(1 << 20);
const frame = pktgen().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
  .tcp({ sport: 40000, dport: 80, flags: 'A' }).payload(1500 - 54).build();
slab.set(frame, HEADROOM);
const FRAME_LEN = frame.length;
const big = new Uint8Array(65536 + 64);
for (let i = 0; i < big.length; i++) big[i] = (i * 131) & 0xff;
const bigBuf = Buffer.from(big.buffer, big.byteOffset, big.byteLength);
const slabBuf = Buffer.from(slab.buffer, slab.byteOffset, slab.byteLength);
const slabDv = new DataView(slab.buffer);

const eth = new EthernetView();
const ip = new Ipv4View();
const tcp = new TcpView();

/** The datapath way: flyweight views, one checkLen per header. */
function parseViews(b: Uint8Array, off: number, len: number): number {
  eth.bind(b, off, len);
  if (!eth.checkLen() || eth.ethertype() !== 0x0800) return -1;
  ip.bind(b, eth.payloadOffset(), eth.payloadLen());
  if (!ip.checkLen() || ip.protocol() !== IPPROTO_TCP) return -1;
  tcp.bind(b, ip.payloadOffset(), ip.payloadLen());
  if (!tcp.checkLen()) return -1;
  return (ip.src() ^ ip.dst() ^ ip.protocol() ^ (tcp.srcPort() << 16) ^ tcp.dstPort()) >>> 0;
}

/** Baseline: DataView getters (bounds-checked per access), same checks. */
function parseDataView(dv: DataView, off: number, len: number): number {
  if (len < 14 || dv.getUint16(off + 12) !== 0x0800) return -1;
  const o = off + 14;
  const n = len - 14;
  const vi = dv.getUint8(o);
  const hl = (vi & 0x0f) * 4;
  const tl = dv.getUint16(o + 2);
  if (n < 20 || vi >> 4 !== 4 || hl < 20 || hl > n || tl < hl || tl > n || dv.getUint8(o + 9) !== 6) return -1;
  const t = o + hl;
  const doff = (dv.getUint8(t + 12) >> 4) * 4;
  if (tl - hl < 20 || doff < 20 || doff > tl - hl) return -1;
  return (dv.getUint32(o + 12) ^ dv.getUint32(o + 16) ^ 6 ^ (dv.getUint16(t) << 16) ^ dv.getUint16(t + 2)) >>> 0;
}

/** Reference: the same parse hand-inlined over the bytes (what the views cost as an abstraction). */
function parseInline(b: Uint8Array, off: number, len: number): number {
  if (len < 14 || ((b[off + 12] << 8) | b[off + 13]) !== 0x0800) return -1;
  const o = off + 14;
  const n = len - 14;
  const vi = b[o];
  const hl = (vi & 0x0f) << 2;
  const tl = (b[o + 2] << 8) | b[o + 3];
  if (n < 20 || vi >>> 4 !== 4 || hl < 20 || hl > n || tl < hl || tl > n || b[o + 9] !== 6) return -1;
  const t = o + hl;
  const doff = (b[t + 12] >>> 4) << 2;
  if (tl - hl < 20 || doff < 20 || doff > tl - hl) return -1;
  const src = ((b[o + 12] << 24) | (b[o + 13] << 16) | (b[o + 14] << 8) | b[o + 15]) >>> 0;
  const dst = ((b[o + 16] << 24) | (b[o + 17] << 16) | (b[o + 18] << 8) | b[o + 19]) >>> 0;
  return (src ^ dst ^ 6 ^ (((b[t] << 8) | b[t + 1]) << 16) ^ ((b[t + 2] << 8) | b[t + 3])) >>> 0;
}

/** Baseline: Buffer.readUInt16BE word loop. */
function naiveSum(buf: Buffer, off: number, len: number): number {
  let s = 0;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) s += buf.readUInt16BE(i);
  if (len & 1) s += buf[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

const L4 = HEADROOM + 34;
const L4_LEN = FRAME_LEN - 34;
const PSEUDO = ipv4PseudoSum(0x0a000001, 0x0a000002, IPPROTO_TCP, L4_LEN);
let addr = 0x0a000001;
let port = 40000;

summary(() => {
  bench('parse: views (bind+checkLen+5-tuple)', () => do_not_optimize(parseViews(slab, HEADROOM, FRAME_LEN)));
  bench('parse: DataView shared', () => do_not_optimize(parseDataView(slabDv, HEADROOM, FRAME_LEN)));
  bench('parse: hand-inlined bytes', () => do_not_optimize(parseInline(slab, HEADROOM, FRAME_LEN)));
  bench('parse: DataView per packet', () =>
    do_not_optimize(parseDataView(new DataView(slab.buffer, HEADROOM, FRAME_LEN), 0, FRAME_LEN)));
});

summary(() => {
  bench('csum 1500 B: sum16', () => do_not_optimize(finish(sum16(slab, L4, L4_LEN, PSEUDO))));
  bench('csum 1500 B: Buffer.readUInt16BE loop', () => do_not_optimize(naiveSum(slabBuf, L4, L4_LEN)));
});

summary(() => {
  bench('csum 64 KiB: sum16', () => do_not_optimize(finish(sum16(big, 0, 65536))));
  bench('csum 64 KiB: Buffer.readUInt16BE loop', () => do_not_optimize(naiveSum(bigBuf, 0, 65536)));
});

summary(() => {
  bench('NAT update: RFC 1624 (addr + port)', () => {
    ip.bind(slab, HEADROOM + 14, FRAME_LEN - 14);
    tcp.bind(slab, L4, L4_LEN);
    const na = (addr = (addr + 1) >>> 0);
    const np = (port = (port + 1) & 0xffff);
    const oa = ip.src();
    const op = tcp.srcPort();
    ip.setSrc(na);
    ip.setChecksum(csumReplace32(ip.checksum(), oa, na));
    tcp.setSrcPort(np);
    tcp.setChecksum(csumReplace16(csumReplace32(tcp.checksum(), oa, na), op, np));
  });
  bench('NAT update: full recompute (1480 B)', () => {
    ip.bind(slab, HEADROOM + 14, FRAME_LEN - 14);
    const na = (addr = (addr + 1) >>> 0);
    ip.setSrc(na);
    tcp.bind(slab, L4, L4_LEN).setSrcPort((port = (port + 1) & 0xffff));
    ip.fillChecksum();
    do_not_optimize(l4CsumFill4(slab, L4, L4_LEN, IPPROTO_TCP, na, ip.dst()));
  });
});

const { benchmarks } = await run();
const avg = new Map<string, number>();
for (const t of benchmarks) {
  const s = t.runs[0]?.stats;
  if (s) avg.set(t.alias, s.avg);
}
const ratio = (fast: string, slow: string): string => {
  const f = avg.get(fast);
  const s = avg.get(slow);
  return f && s ? `${(s / f).toFixed(2)}x` : 'n/a';
};
console.log('\nratios (baseline time / our time, same run):');
console.log(`  parse vs DataView shared         ${ratio('parse: views (bind+checkLen+5-tuple)', 'parse: DataView shared')}`);
console.log(`  parse vs DataView per packet     ${ratio('parse: views (bind+checkLen+5-tuple)', 'parse: DataView per packet')}`);
console.log(`  parse vs hand-inlined bytes      ${ratio('parse: views (bind+checkLen+5-tuple)', 'parse: hand-inlined bytes')}`);
console.log(`  csum 1500 B vs Buffer loop       ${ratio('csum 1500 B: sum16', 'csum 1500 B: Buffer.readUInt16BE loop')}`);
console.log(`  csum 64 KiB vs Buffer loop       ${ratio('csum 64 KiB: sum16', 'csum 64 KiB: Buffer.readUInt16BE loop')}`);
console.log(`  RFC 1624 update vs recompute     ${ratio('NAT update: RFC 1624 (addr + port)', 'NAT update: full recompute (1480 B)')}`);
for (const [k, v] of avg) console.log(`  ${k.padEnd(42)} ${v.toFixed(1)} ns`);

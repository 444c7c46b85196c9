/**
 * Software GSO at the uplink (lib/gso.ts): an encapsulated TCP super-frame
 * goes into TunnelGso.send() and wire-sized tunnel packets come out of the
 * device behind it, cut in the scratch area behind the batch slots.
 *
 *   slab: | slot 0 | slot 1 | ... | slot 255 | scratch (segments) |
 *                                             ^ BATCH_MAX * SLOT_SIZE
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { FrameBatch } from '../../src/packet/batch.ts';
import { BATCH_MAX, SLOT_SIZE } from '../../src/packet/layout.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { TunnelGso } from '../../src/datapath/lib/gso.ts';
import { Tunnel, type TunnelProtocol } from '../../src/datapath/lib/encap.ts';

const NODE_IP = w.parseIpv4('192.168.1.1');
const PEER_IP = w.parseIpv4('192.168.1.2');
const PEER_MAC = w.parseMac('02:aa:00:00:00:02');
const MSS = 1398;
/** Outer eth + IPv4 + UDP + VXLAN, inner eth: where the inner IP header starts. */
const INNER_IP = 64;
/** VIRTIO_NET_HDR_GSO_UDP_L4: the kernel cuts a UDP datagram's payload every gso_size bytes. */
const GSO_UDP_L4 = 5;

/** A slab with `scratch` bytes behind the slots, its batch, and TunnelGso over a capture device. */
function setup(scratch: number, protocol: TunnelProtocol = 'vxlan') {
  const slab = new ArrayBuffer(BATCH_MAX * SLOT_SIZE + scratch);
  const b = new FrameBatch(slab);
  const dev = new CaptureDevice('uplink', b.buf);
  const gso = new TunnelGso(dev, b.buf, BATCH_MAX * SLOT_SIZE, scratch, protocol);
  const tun = new Tunnel({ protocol, port: protocol === 'vxlan' ? 8472 : 6081, nodeIP: NODE_IP, mac: w.parseMac('02:aa:00:00:00:01') });
  return { b, dev, gso, tun };
}

interface Super { vnet: Uint8Array; eth: Uint8Array; payload: Uint8Array }

/** A pod's TSO super-frame: virtio-net header (NEEDS_CSUM at TCP, GSO) + frame. */
function superFrame(o: { v6?: boolean; payload?: number; mss?: number; flags?: string; sport?: number; seq?: number } = {}): Super {
  const payload = o.payload ?? 65000;
  const g = pktgen().eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:01:0a' });
  if (o.v6) g.ipv6({ src: 'fd00:1::a', dst: 'fd00:2::14' });
  else g.ipv4({ src: '10.0.1.10', dst: '10.0.2.20', df: true, id: 0xfff0 });
  const f = g.tcp({ sport: o.sport ?? 40000, dport: 5201, seq: o.seq ?? 0xffff0000, ack: 99, flags: o.flags ?? 'FPAC' }).payload(payload)
    .vnet({
      flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: o.v6 ? w.VIRTIO_NET_HDR_GSO_TCPV6 : w.VIRTIO_NET_HDR_GSO_TCPV4,
      gsoSize: o.mss ?? MSS, hdrLen: o.v6 ? 74 : 54,
    }).build();
  const eth = f.slice(10);
  return { vnet: f.slice(0, 10), eth, payload: eth.slice(eth.length - payload) };
}

/** Load frames (with their virtio-net headers) and encapsulate those flagged in `encap`. */
function loadEncap(s: ReturnType<typeof setup>, frames: { eth: Uint8Array; vnet?: Uint8Array; encap?: boolean }[]): void {
  s.b.load(frames.map((f) => f.eth), 1, 0, frames.map((f) => f.vnet));
  frames.forEach((f, i) => {
    if (f.encap !== false) assert.ok(s.tun.encap(s.b, i, PEER_IP, 0x1234, PEER_MAC, 0), 'encap');
  });
}

/** The partial sum a NEEDS_CSUM sender leaves in the L4 header at `l4` of frame `f` (IPv4 header at `ip`, or IPv6). */
function partialSum(f: Uint8Array, ip: number, l4: number, proto: number): number {
  const c = f.slice();
  const len = f.length - l4;
  return (f[ip]! >> 4) === 6
    ? w.l4CsumFillPartial6(c, l4, len, proto, ip + 8, ip + 24)
    : w.l4CsumFillPartial4(c, l4, len, proto, w.get32(f, ip + 12), w.get32(f, ip + 16));
}

/**
 * What the kernel makes of the frames TunnelGso hands to its packet socket:
 * a UDP GSO datagram (VIRTIO_NET_HDR_GSO_UDP_L4) is cut every gso_size
 * bytes of UDP payload, each piece with the outer headers, its own IPv4
 * length and ID and the UDP checksum adjusted for its length
 * (__udp_gso_segment, inet_gso_segment); then every pending checksum
 * (NEEDS_CSUM) is completed. A TCP GSO type over an outer UDP header cannot
 * be sent that way at all. Returns the frames as they appear on the wire.
 */
function toWire(frames: Uint8Array[], vnets: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  frames.forEach((f, k) => {
    const h = new w.VirtioNetView().bind(vnets[k]!, 0, 10);
    const gso = h.gsoType() & 0x7f;
    assert.ok(gso === w.VIRTIO_NET_HDR_GSO_NONE || gso === GSO_UDP_L4, `frame ${k}: GSO type ${gso} cannot leave a packet socket as a tunnel packet`);
    const pending = (h.flags() & w.VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    if (pending) {
      // The field holds the pseudo-header sum of the L4 header csum_start points at.
      const cs = h.csumStart();
      const outer = cs === 34;
      const proto = outer ? w.IPPROTO_UDP : w.IPPROTO_TCP;
      assert.ok(outer || cs === INNER_IP + 20 || cs === INNER_IP + 40, `frame ${k}: csum_start ${cs} at the outer UDP or the inner TCP header`);
      assert.equal(h.csumOffset(), w.l4CsumOffset(proto), `frame ${k}: csum_offset`);
      assert.equal(w.get16(f, cs + h.csumOffset()), partialSum(f, outer ? 14 : INNER_IP, cs, proto), `frame ${k}: partial pseudo-header sum in the checksum field`);
    }
    if (gso !== GSO_UDP_L4) {
      const c = f.slice();
      if (pending) w.csumCompletePartial(c, h.csumStart(), c.length, h.csumOffset());
      out.push(c);
      return;
    }
    assert.ok(pending && h.csumStart() === 34, `frame ${k}: UDP GSO needs its checksum pending at the UDP header`);
    const hdr = 42;
    const size = h.gsoSize();
    const id0 = w.get16(f, 18);
    const check0 = w.get16(f, 40);
    const len0 = w.get16(f, 38);
    for (let p = hdr, n = 0; p < f.length; p += size, n++) {
      const seg = new Uint8Array(hdr + Math.min(size, f.length - p));
      seg.set(f.subarray(0, hdr));
      seg.set(f.subarray(p, p + seg.length - hdr), hdr);
      w.set16(seg, 16, seg.length - 14);
      w.set16(seg, 18, (id0 + n) & 0xffff);
      w.ipv4HdrCsumFill(seg, 14);
      const udpLen = seg.length - 34;
      w.set16(seg, 38, udpLen);
      // csum16_add(csum16_sub(uh->check, uh->len), newlen)
      w.set16(seg, 40, w.fold(check0 + (~len0 & 0xffff) + udpLen));
      w.csumCompletePartial(seg, 34, seg.length, 6);
      out.push(seg);
    }
  });
  return out;
}

/** Check one wire segment (outer and inner headers, checksums); returns its TCP payload. */
function checkSegment(seg: Uint8Array, v6: boolean, what: string): Uint8Array {
  const oip = new w.Ipv4View().bind(seg, 14, seg.length - 14);
  assert.ok(oip.totalLen() <= 1500, `${what}: ${oip.totalLen()} bytes of outer IP fit a 1500 MTU`);
  assert.equal(oip.totalLen(), seg.length - 14, `${what}: outer IPv4 total length`);
  assert.ok(w.ipv4HdrCsumOk(seg, 14), `${what}: outer IPv4 checksum valid`);
  assert.equal(w.get16(seg, 38), seg.length - 34, `${what}: outer UDP length`);
  assert.ok(w.l4CsumOk4(seg, 34, seg.length - 34, w.IPPROTO_UDP, oip.src(), oip.dst()), `${what}: outer UDP checksum 0 or valid`);
  let tcp: number;
  if (v6) {
    tcp = INNER_IP + 40;
    assert.equal(w.get16(seg, INNER_IP + 4), seg.length - tcp, `${what}: inner IPv6 payload length`);
  } else {
    tcp = INNER_IP + 20;
    assert.equal(w.get16(seg, INNER_IP + 2), seg.length - INNER_IP, `${what}: inner IPv4 total length`);
    assert.ok(w.ipv4HdrCsumOk(seg, INNER_IP), `${what}: inner IPv4 checksum valid`);
  }
  const len = seg.length - tcp;
  const ok = v6 ? w.l4CsumOk6(seg, tcp, len, w.IPPROTO_TCP, INNER_IP + 8, INNER_IP + 24) : w.l4CsumOk4(seg, tcp, len, w.IPPROTO_TCP, w.get32(seg, INNER_IP + 12), w.get32(seg, INNER_IP + 16));
  assert.ok(ok, `${what}: inner TCP checksum verifies`);
  return seg.subarray(tcp + 20);
}

/** Segments of one super-frame: sequence numbers, flags, IDs, payload. */
function checkSegments(segs: Uint8Array[], sf: Super, v6: boolean, mss = MSS): void {
  const n = Math.ceil(sf.payload.length / mss);
  assert.equal(segs.length, n, `ceil(${sf.payload.length} / ${mss}) segments`);
  const tcp = INNER_IP + (v6 ? 40 : 20);
  const seq0 = w.get32(sf.eth, tcp - 50 + 4);
  const flags0 = sf.eth[tcp - 50 + 13]!;
  const oid0 = w.get16(segs[0]!, 18);
  const parts: Uint8Array[] = [];
  segs.forEach((seg, s) => {
    const what = `segment ${s}`;
    const data = checkSegment(seg, v6, what);
    assert.equal(data.length, s < n - 1 ? mss : sf.payload.length - (n - 1) * mss, `${what}: payload size`);
    parts.push(data);
    assert.equal(w.get32(seg, tcp + 4), (seq0 + s * mss) >>> 0, `${what}: sequence number`);
    assert.equal(w.get32(seg, tcp + 8), 99, `${what}: ack number`);
    const f = seg[tcp + 13]!;
    const last = s === n - 1;
    const keep = flags0 & ~(w.TCP_FLAG_FIN | w.TCP_FLAG_PSH | w.TCP_FLAG_CWR);
    assert.equal(f & keep, keep, `${what}: other flags on every segment`);
    assert.equal(f & (w.TCP_FLAG_FIN | w.TCP_FLAG_PSH), last ? flags0 & (w.TCP_FLAG_FIN | w.TCP_FLAG_PSH) : 0, `${what}: FIN/PSH only on the last`);
    assert.equal(f & w.TCP_FLAG_CWR, s === 0 ? flags0 & w.TCP_FLAG_CWR : 0, `${what}: CWR only on the first`);
    assert.equal(w.get16(seg, 18), (oid0 + s) & 0xffff, `${what}: outer IPv4 IDs consecutive`);
    if (!v6) assert.equal(w.get16(seg, INNER_IP + 4), (0xfff0 + s) & 0xffff, `${what}: inner IPv4 IDs consecutive (wrapping)`);
    // Everything before the outer IPv4 length, and from the outer UDP ports to the inner IP header, is copied.
    assert.deepEqual(seg.subarray(0, 16), segs[0]!.subarray(0, 16), `${what}: outer Ethernet copied`);
    assert.deepEqual(seg.subarray(34, 38), segs[0]!.subarray(34, 38), `${what}: outer UDP ports copied`);
    assert.deepEqual(seg.subarray(42, 50), segs[0]!.subarray(42, 50), `${what}: tunnel header copied`);
    assert.deepEqual(seg.subarray(50, INNER_IP), sf.eth.subarray(0, 14), `${what}: inner Ethernet copied`);
  });
  const total = Buffer.concat(parts);
  assert.equal(total.length, sf.payload.length);
  assert.ok(total.equals(sf.payload), 'the payload reassembles to the original bytes');
}

/** Everything the capture device got, as it reaches the wire. */
const wireOf = (s: ReturnType<typeof setup>) => toWire(s.dev.frames, s.dev.vnet);

test('a 64 KB IPv4 TCP super-frame in VXLAN leaves as gso_size segments that fit the wire', () => {
  const s = setup(4 << 20);
  const sf = superFrame();
  loadEncap(s, [sf]);
  assert.equal(s.gso.send(s.b.off, s.b.len, 1), 1, 'the caller\'s one frame is reported sent');
  checkSegments(wireOf(s), sf, false);
  assert.equal(s.gso.segmented, 1);
  assert.equal(s.gso.segments, 47);
  assert.equal(s.dev.sends, 1, 'one device call');
});

test('IPv6 inside VXLAN, and IPv4 inside Geneve, are cut the same way', () => {
  const s6 = setup(4 << 20);
  // A 1450-byte pod MTU leaves 1390 bytes of TCP payload under IPv6.
  const sf6 = superFrame({ v6: true, payload: 30000, mss: 1390 });
  loadEncap(s6, [sf6]);
  s6.gso.send(s6.b.off, s6.b.len, 1);
  checkSegments(wireOf(s6), sf6, true, 1390);

  const sg = setup(4 << 20, 'geneve');
  const sfg = superFrame({ payload: 10000 });
  loadEncap(sg, [sfg]);
  sg.gso.send(sg.b.off, sg.b.len, 1);
  const segs = wireOf(sg);
  checkSegments(segs, sfg, false);
  assert.ok(segs.every((f) => w.get16(f, 36) === 6081), 'Geneve port on every segment');
});

test('without FIN/PSH/CWR nothing is added; a payload of exactly n * gso_size makes n full segments', () => {
  const s = setup(4 << 20);
  const sf = superFrame({ payload: 3 * MSS, flags: 'A' });
  loadEncap(s, [sf]);
  s.gso.send(s.b.off, s.b.len, 1);
  const segs = wireOf(s);
  assert.equal(segs.length, 3);
  for (const seg of segs) assert.equal(seg[INNER_IP + 20 + 13], w.TCP_FLAG_ACK, 'flags stay ACK');
  assert.equal(segs[2]!.length, INNER_IP + 40 + MSS, 'last segment is full');
  checkSegments(segs, sf, false);
});

test('GSO frames of one segment, and super-frames ending in a single segment, leave valid', () => {
  for (const payload of [500, MSS, 44 * MSS + 100, 45 * MSS + 100]) {
    const s = setup(4 << 20);
    const sf = superFrame({ payload });
    loadEncap(s, [sf]);
    assert.equal(s.gso.send(s.b.off, s.b.len, 1), 1);
    checkSegments(wireOf(s), sf, false);
  }
});

test('frames that are not GSO pass through unchanged and in order around the segments', () => {
  const s = setup(4 << 20);
  const plain = (k: number) => pktgen().eth().ipv4({ src: '10.0.1.10', dst: '10.0.2.20' }).udp({ sport: 1000 + k, dport: 53 }).payload(100).build();
  const sf = superFrame({ payload: 5000 });
  const pv = new Uint8Array(10);
  pv[0] = w.VIRTIO_NET_HDR_F_DATA_VALID;
  loadEncap(s, [{ eth: plain(1), vnet: pv }, sf, { eth: plain(2), encap: false }]);
  const before = [s.b.frame(0), s.b.frame(2)];
  assert.equal(s.gso.send(s.b.off, s.b.len, 3), 3);
  const got = s.dev.frames;
  assert.deepEqual(got[0], before[0], 'first plain frame first, unchanged');
  assert.deepEqual(s.dev.vnet[0], pv, 'its virtio-net header unchanged');
  assert.deepEqual(got[got.length - 1], before[1], 'second plain frame last, unchanged');
  assert.deepEqual(s.dev.vnet[got.length - 1], new Uint8Array(10));
  const segs = toWire(got.slice(1, -1), s.dev.vnet.slice(1, -1));
  checkSegments(segs, sf, false);
});

test('a batch without GSO frames goes to the device as it is, in one call', () => {
  const s = setup(4 << 20);
  const frames = Array.from({ length: 10 }, (_, k) => pktgen().eth().ipv4().udp({ sport: k }).payload(1400).build());
  loadEncap(s, frames.map((eth) => ({ eth })));
  const offs = [...s.b.off.subarray(0, 10)];
  const before = frames.map((_, k) => s.b.frame(k));
  assert.equal(s.gso.send(s.b.off, s.b.len, 10), 10);
  assert.equal(s.dev.sends, 1);
  assert.deepEqual(s.dev.frames, before);
  assert.deepEqual([...s.b.off.subarray(0, 10)], offs, 'offsets untouched');
  assert.equal(s.gso.segmented, 0);
});

test('GSO frames that are not TCP in a tunnel are sent as they are', () => {
  const s = setup(4 << 20);
  // A TSO frame that was not encapsulated (outer is the TCP/IP itself).
  const sf = superFrame({ payload: 5000 });
  loadEncap(s, [{ eth: sf.eth, vnet: sf.vnet, encap: false }]);
  assert.equal(s.gso.send(s.b.off, s.b.len, 1), 1);
  assert.equal(s.dev.frames.length, 1);
  assert.deepEqual(s.dev.frames[0], sf.eth);
  assert.deepEqual(s.dev.vnet[0], sf.vnet);
  assert.equal(s.gso.passedGso, 1);
});

test('a scratch area too small for all segments is flushed and reused: everything is still sent, in order', () => {
  // 100 KiB holds one 64 KB datagram (or ~60 segments), not all of three
  // super-frames; 4.5 KiB holds three segments, not even one datagram.
  for (const scratch of [100 << 10, 3 * 1536]) {
    const s = setup(scratch);
    const sfs = [superFrame({ payload: 65000, sport: 1 }), superFrame({ payload: 65000, sport: 2 }), superFrame({ payload: 20000, sport: 3 })];
    loadEncap(s, sfs);
    assert.equal(s.gso.send(s.b.off, s.b.len, 3), 3);
    assert.ok(s.dev.sends >= 2, `scratch of ${scratch} bytes flushed and reused (${s.dev.sends} device calls)`);
    assert.equal(s.gso.passedGso, 0, `scratch of ${scratch} bytes: no super-frame left uncut`);
    const segs = wireOf(s);
    let at = 0;
    for (const sf of sfs) {
      const n = Math.ceil(sf.payload.length / MSS);
      checkSegments(segs.slice(at, at + n), sf, false);
      at += n;
    }
    assert.equal(at, segs.length, 'nothing else sent');
  }
});

test('more segments than one device call takes are all sent intact', () => {
  // 100 plain frames, then 9 super-frames cut at 64 bytes: 8442 segments,
  // more than TunnelGso queues per device call (4096), so the queue may be
  // flushed in the middle of a super-frame with scratch still in use.
  const s = setup(4 << 20);
  const plain = Array.from({ length: 100 }, (_, k) => ({ eth: pktgen().eth().ipv4().udp({ sport: k }).payload(64).build(), encap: false }));
  const sfs = Array.from({ length: 9 }, (_, k) => superFrame({ payload: 60000, mss: 64, sport: 100 + k }));
  loadEncap(s, [...plain, ...sfs]);
  assert.equal(s.gso.send(s.b.off, s.b.len, 109), 109);
  for (let k = 0; k < 100; k++) assert.deepEqual(s.dev.frames[k], plain[k]!.eth, `plain frame ${k} first, in order`);
  const segs = wireOf(s).slice(100);
  const per = Math.ceil(60000 / 64);
  assert.equal(segs.length, 9 * per);
  for (let k = 0; k < 9; k++) {
    const mine = segs.slice(k * per, (k + 1) * per);
    assert.ok(mine.every((g) => w.get16(g, INNER_IP + 20) === 100 + k), `frame ${k}'s segments in order`);
    checkSegments(mine, sfs[k]!, false, 64);
  }
});

test('a refused segment is reported as an unsent batch', () => {
  const s = setup(4 << 20);
  const refusing = { name: 'x', send: (_o: Uint32Array, _l: Uint32Array, n: number) => n - 1 };
  const gso = new TunnelGso(refusing, s.b.buf, BATCH_MAX * SLOT_SIZE, 4 << 20, 'vxlan');
  loadEncap(s, [superFrame({ payload: 5000 })]);
  assert.equal(gso.send(s.b.off, s.b.len, 1), 0);
});

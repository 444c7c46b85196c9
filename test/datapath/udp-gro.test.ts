/**
 * Receive side of the tunnel's UDP GSO (lib/udp-gro.ts): a datagram whose
 * gso_size pieces are complete tunnel packets — what TunnelGso sends, and
 * what the uplink's GRO hands back after the wire — is folded into one
 * tunnel packet whose inner frame is a TCP super-frame; decap() then yields
 * exactly the pod's original payload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { FrameBatch } from '../../src/packet/batch.ts';
import { BATCH_MAX, SLOT_SIZE } from '../../src/packet/layout.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { TunnelGso } from '../../src/datapath/lib/gso.ts';
import { TunnelUdpGro } from '../../src/datapath/lib/udp-gro.ts';
import { Tunnel } from '../../src/datapath/lib/encap.ts';

const A = w.parseIpv4('192.168.1.1');
const B = w.parseIpv4('192.168.1.2');
const MSS = 1398;

function tunnel(ip: number): Tunnel {
  return new Tunnel({ protocol: 'vxlan', port: 8472, nodeIP: ip, mac: w.parseMac('02:aa:00:00:00:01') });
}

/** A TSO super-frame from a pod, encapsulated on node A and cut by TunnelGso: the UDP GSO datagrams it sends. */
function sendSuper(payload: Uint8Array, flags = 'PA'): { frames: Uint8Array[]; vnets: Uint8Array[] } {
  const slab = new ArrayBuffer(BATCH_MAX * SLOT_SIZE + (4 << 20));
  const b = new FrameBatch(slab);
  const dev = new CaptureDevice('uplink', b.buf);
  const gso = new TunnelGso(dev, b.buf, BATCH_MAX * SLOT_SIZE, 4 << 20, 'vxlan');
  const f = pktgen().eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:01:0a' }).ipv4({ src: '10.0.1.10', dst: '10.0.2.20', df: true })
    .tcp({ sport: 40000, dport: 5201, seq: 1000, ack: 7, flags }).payload(payload.length)
    .vnet({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: w.VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: MSS, hdrLen: 54 }).build();
  const eth = f.slice(10);
  eth.set(payload, eth.length - payload.length);
  b.load([eth], 1, 0, [f.slice(0, 10)]);
  assert.ok(tunnel(A).encap(b, 0, B, 0x4242, w.parseMac('02:aa:00:00:00:02'), 0), 'encap');
  gso.send(b.off, b.len, 1);
  return { frames: dev.frames, vnets: dev.vnet };
}

/** Put datagrams into a receiving batch as the uplink would deliver them; run the fold. */
function receive(frames: Uint8Array[], vnets: Uint8Array[]) {
  const b = new FrameBatch(new ArrayBuffer(BATCH_MAX * SLOT_SIZE));
  b.load(frames, 1, 0, vnets);
  const g = new TunnelUdpGro();
  const n = g.run(b, frames.length, tunnel(B));
  return { b, n, g };
}

test('a 64 KB super-frame crosses as UDP GSO and folds back into one inner TSO frame with the same payload', () => {
  const payload = new Uint8Array(64000).map((_, i) => (i * 13) & 0xff);
  const sent = sendSuper(payload);
  assert.equal(sent.frames.length, 2, 'two UDP datagrams: 46 pieces, 44 fit under 64 KB');
  for (const v of sent.vnets) assert.equal(v[1], 5, 'GSO_UDP_L4');
  const { b, n, g } = receive(sent.frames, sent.vnets);
  assert.equal(n, 2, 'no piece needed a slot of its own');
  assert.ok(g.folded >= 40, `pieces folded: ${g.folded}`);
  const got: number[] = [];
  const tun = tunnel(B);
  let seq = 1000;
  for (let i = 0; i < n; i++) {
    const vnet = b.vnetHeader(i);
    assert.equal(vnet[1], w.VIRTIO_NET_HDR_GSO_TCPV4, `frame ${i}: an inner TSO frame`);
    assert.equal(vnet[4]! | (vnet[5]! << 8), MSS, `frame ${i}: gso_size is the MSS`);
    assert.equal(tun.decap(b, i), 0x4242, 'identity from the VNI');
    const f = b.frame(i);
    const ip = new w.Ipv4View().bind(f, 14, f.length - 14);
    assert.equal(ip.totalLen(), f.length - 14, 'inner IPv4 length');
    assert.ok(w.ipv4HdrCsumOk(f, 14), 'inner IPv4 checksum');
    const vn = b.vnetHeader(i);
    assert.equal(vn[0]! & 1, 1, 'inner TCP checksum pending (NEEDS_CSUM)');
    assert.equal(vn[6]! | (vn[7]! << 8), 34, 'csum_start at the inner TCP header');
    assert.equal(w.get16(f, 34 + 16), w.l4CsumFillPartial4(f.slice(), 34, f.length - 34, w.IPPROTO_TCP, ip.src(), ip.dst()), 'partial pseudo-header sum');
    assert.equal(w.get32(f, 34 + 4), seq, `frame ${i}: sequence continues`);
    seq += f.length - 54;
    got.push(...f.subarray(54));
  }
  assert.deepEqual(Uint8Array.from(got), payload, 'the payload arrives whole and in order');
});

test('a piece of another flow is not folded: it becomes a tunnel packet of its own in a free slot', () => {
  const payload = new Uint8Array(5 * MSS).fill(7);
  const sent = sendSuper(payload);
  assert.equal(sent.frames.length, 1);
  const f = sent.frames[0]!;
  // Piece 3 (of 5) belongs to another inner flow: change its inner source port.
  const piece = 8 + 14 + 20 + 20 + MSS;
  const p3 = 42 + 3 * piece;
  w.set16(f, p3 + 8 + 14 + 20, 40001);
  const { b, n, g } = receive(sent.frames, sent.vnets);
  assert.equal(n, 3, 'head (pieces 0-2) + piece 3 + piece 4 in slots of their own');
  assert.equal(g.split, 2);
  assert.equal(b.frame(0).length, 50 + 54 + 3 * MSS, 'head holds three pieces');
  const tun = tunnel(B);
  for (let i = 1; i < n; i++) {
    assert.equal(b.vnetHeader(i)[1], 0, 'split pieces are plain packets');
    assert.equal(tun.decap(b, i), 0x4242, `piece ${i} decapsulates`);
    const inner = b.frame(i);
    assert.equal(inner.length, 54 + MSS);
    const ip = new w.Ipv4View().bind(inner, 14, inner.length - 14);
    assert.ok(w.l4CsumOk4(inner, 34, inner.length - 34, w.IPPROTO_TCP, ip.src(), ip.dst()) || i === 1, 'complete inner checksum (piece 3 was edited after sending)');
  }
});

test('frames that are not UDP GSO tunnel datagrams pass untouched', () => {
  const udp = pktgen().eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }).ipv4({ src: '192.168.1.1', dst: '192.168.1.2' })
    .udp({ sport: 1, dport: 8472 }).payload(100).build();
  const b = new FrameBatch(new ArrayBuffer(BATCH_MAX * SLOT_SIZE));
  b.load([udp], 1, 0);
  const before = b.frame(0);
  assert.equal(new TunnelUdpGro().run(b, 1, tunnel(B)), 1);
  assert.deepEqual(b.frame(0), before);
});

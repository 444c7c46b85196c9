/**
 * End-to-end tests of AF_PACKET ports (TPACKET_V2 and TPACKET_V3 RX rings,
 * sendmmsg TX) on veth pairs made by the test (needs root).
 *
 *   test netns NS                              root netns (this process)
 *   +-------------------------------+          +--------------------------+
 *   | eth0 10.78.0.1/24  <==========|== veth ==|=> <prefix>va, up, no addr|
 *   |  neigh 10.78.0.2 -> PEER_MAC  |          |   openPacket()           |
 *   | eth2 10.78.2.1/24  <==========|== veth ==|=> <prefix>ga 10.78.2.2/24|
 *   |  (TCP client, TSO frames)     |          |   TCP server, openPacket |
 *   +-------------------------------+          |                          |
 *                                              | <prefix>tb ==veth==> ta  |
 *                                              |  (802.1Q frames sent on  |
 *                                              |   tb, received on ta)    |
 *                                              +--------------------------+
 *
 * The receive tests run once per ring mode. Every name carries a per-run
 * prefix; after() deletes the namespace (and with it the veth pairs).
 *
 * NB: every assert.ok() carries a message: without one, a failing assert.ok makes
 * Node re-parse this TypeScript file to quote the expression, which can spin.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { BATCH_MAX, HEADROOM, SLOT_SIZE } from '../../src/packet/layout.ts';
import {
  createSlab, nativeAvailable, readStats, slotOffset, STAT_RX_BATCHES, STAT_RX_FRAMES, STAT_RX_LAST_ERRNO,
  STAT_TX_BATCHES, STAT_TX_FRAMES,
} from '../../src/io/native.ts';
import { openPacket, type PacketOptions } from '../../src/io/af-packet.ts';
import {
  collector, ip, Netns, parseUdp, RECEIVER, RUN_PREFIX as P, seen, SENDER, setVnetHdr, sleep, udpFrame,
  udpPseudoSum, vnetHdr, type VnetHdr, waitFor,
} from './io-helpers.ts';

const PEER_MAC = '02:00:00:00:78:02';
const ns = new Netns(`${P}pkt`);
const VA = `${P}va`;
const VB = `${P}vb`;
const GA = `${P}ga`;
const TA = `${P}ta`;
const TB = `${P}tb`;
const RINGS = ['v2', 'v3'] as const;

/** node -e script; argv: host port bytes. Connects and writes `bytes` in 64 KiB writes (TSO super-frames on veth). */
const TCP_WRITER = `
const [host, port, bytes] = process.argv.slice(1);
const s = require('net').connect(+port, host, () => {
  const chunk = Buffer.alloc(65536, 0x61);
  let left = +bytes;
  const more = () => { while (left > 0) { left -= chunk.length; if (!s.write(chunk)) return s.once('drain', more); } s.end(); };
  more();
});
s.on('error', () => process.exit(1));`;

const root = process.getuid?.() === 0;
const skip = !root ? 'needs root' : !nativeAvailable() ? 'native addon not built' : false;

/** The interface's promiscuity count (a packet socket's PACKET_MR_PROMISC adds 1; the PROMISC flag only shows `ip link set promisc`). */
function promiscuity(ifname: string): number {
  return (JSON.parse(ip('-d', '-j', 'link', 'show', ifname)) as { promiscuity: number }[])[0]!.promiscuity;
}

describe('AF_PACKET ports', { skip }, () => {
  before(() => {
    ns.add();
    ip('link', 'add', VA, 'type', 'veth', 'peer', 'name', VB);
    ip('link', 'set', VA, 'addrgenmode', 'none');
    ip('link', 'set', VB, 'netns', ns.name, 'name', 'eth0');
    ip('-n', ns.name, 'addr', 'add', '10.78.0.1/24', 'dev', 'eth0');
    ip('-n', ns.name, 'link', 'set', 'eth0', 'up');
    ip('-n', ns.name, 'neigh', 'replace', '10.78.0.2', 'lladdr', PEER_MAC, 'dev', 'eth0', 'nud', 'permanent');
    ip('link', 'set', VA, 'up');
    // a pair in this namespace for hand-made 802.1Q frames (no 8021q module needed:
    // the receive path strips the tag into the skb by itself)
    ip('link', 'add', TA, 'type', 'veth', 'peer', 'name', TB);
    for (const l of [TA, TB]) {
      ip('link', 'set', l, 'addrgenmode', 'none');
      ip('link', 'set', l, 'up');
    }
    // a routed pair for real TCP (super-frames from TSO)
    ip('link', 'add', GA, 'type', 'veth', 'peer', 'name', `${P}gb`);
    ip('link', 'set', GA, 'addrgenmode', 'none');
    ip('link', 'set', `${P}gb`, 'netns', ns.name, 'name', 'eth2');
    ip('-n', ns.name, 'addr', 'add', '10.78.2.1/24', 'dev', 'eth2');
    ip('-n', ns.name, 'link', 'set', 'eth2', 'up');
    ip('addr', 'add', '10.78.2.2/24', 'dev', GA);
    ip('link', 'set', GA, 'up');
  });

  after(() => {
    ns.del();
    for (const l of [VA, GA, TA, `${P}xa`]) {
      try { ip('link', 'del', l); } catch { /* went with the namespace */ }
    }
  });

  for (const ring of RINGS) describe(`ring ${ring}`, () => {
  test('receives UDP through the ring', async (t: TestContext) => {
    const slab = createSlab();
    const port = openPacket(VA, slab, { ring });
    try {
      t.diagnostic(`PACKET_VNET_HDR with ${ring}: ${port.vnetHdr}`);
      assert.equal(port.kind, 'packet');
      assert.equal(port.name, VA);
      assert.ok(port.fd > 0 && port.ifindex > 0, `fd ${port.fd} ifindex ${port.ifindex}`);
      const got = seen();
      port.start(collector(slab, got));
      const tx = ns.node(SENDER, ['10.78.0.2', 40101, 50, 40100, ring]);
      const mine = () => got.frames.filter((f) => f.udp.dport === 40101);
      assert.ok(await waitFor(() => mine().length === 50, 5000), `received ${mine().length}/50`);
      await tx.done;
      const f = mine()[0]!;
      assert.equal(f.off, f.slot * SLOT_SIZE + HEADROOM);
      assert.equal(f.len, 14 + 20 + 8 + `${ring}-0`.length);
      assert.equal(f.udp.dstMac, PEER_MAC);
      assert.equal(f.udp.srcMac, ns.mac('eth0'));
      assert.equal(new Set(mine().map((x) => x.udp.payload)).size, 50);
      for (const x of mine()) {
        assert.equal(x.vnet.gsoType, 0);
        if (!port.vnetHdr) assert.equal(x.vnet.flags, 0);
        // veth keeps the sender's partial checksum: the header must say where it goes
        if (x.vnet.flags & 1) assert.deepEqual([x.vnet.csumStart, x.vnet.csumOffset], [34, 6]);
      }
      const st = readStats(port);
      assert.equal(st.rxFrames, got.batches.reduce((a, b) => a + b, 0));
      assert.equal(st.rxBatches, got.batches.length);
      assert.equal(st.rxDrops, 0);
      assert.equal(st.rxTruncated, 0);
    } finally {
      port.close();
      port.close();
    }
  });

  test('re-inserts a stripped VLAN tag and shifts the checksum offset', async () => {
    const slab = createSlab();
    const port = openPacket(TA, slab, { ring });
    const txSlab = createSlab();
    const tx = openPacket(TB, txSlab);
    try {
      const frames: { f: Uint8Array; vnet: VnetHdr }[] = [];
      port.start((n) => {
        for (let i = 0; i < n; i++) {
          const f = slab.bytes.slice(slab.rxOff[i]!, slab.rxOff[i]! + slab.rxLen[i]!);
          frames.push({ f, vnet: vnetHdr(slab.bytes, slab.rxOff[i]!) });
        }
      });
      const count = 5;
      const off = new Uint32Array(count);
      const len = new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        const plain = udpFrame({
          dstMac: PEER_MAC, srcMac: '02:00:00:00:78:07', src: '10.78.7.1', dst: '10.78.7.2',
          sport: 40141, dport: 40140, payload: Buffer.from(`vlan-${ring}-${i}`),
        });
        const ps = udpPseudoSum(plain);
        plain[40] = ps >> 8;
        plain[41] = ps & 0xff;
        off[i] = slotOffset(i);
        len[i] = plain.length + 4;
        const b = txSlab.bytes;
        b.set(plain.subarray(0, 12), off[i]!);
        b.set([0x81, 0x00, 0x00, 0x07], off[i]! + 12); // 802.1Q, VLAN 7
        b.set(plain.subarray(12), off[i]! + 16);
        // partial checksum: the UDP header starts 38 bytes into the tagged frame
        setVnetHdr(b, off[i]!, tx.vnetHdr ? { flags: 1, csumStart: 38, csumOffset: 6 } : {});
      }
      assert.equal(tx.send(off, len, count), count);
      assert.ok(await waitFor(() => frames.length >= count, 5000), `frames ${frames.length}/${count}`);
      const payloads = new Set<string>();
      for (const { f, vnet } of frames) {
        assert.deepEqual([f[12], f[13], ((f[14]! << 8) | f[15]!) & 0xfff], [0x81, 0x00, 7], 'tag re-inserted');
        const untagged = new Uint8Array(f.length - 4);
        untagged.set(f.subarray(0, 12));
        untagged.set(f.subarray(16), 12);
        const udp = parseUdp(untagged);
        assert.ok(udp !== null && udp.dport === 40140, 'UDP inside the tag');
        payloads.add(udp.payload);
        if (vnet.flags & 1) assert.deepEqual([vnet.csumStart, vnet.csumOffset], [38, 6]);
      }
      assert.equal(payloads.size, count);
      assert.equal(readStats(port).rxTruncated, 0);
    } finally {
      port.close();
      tx.close();
    }
  });

  test('carries TSO super-frames whole; frames longer than the ring slot are counted as truncated', async () => {
    const slab = createSlab();
    // default geometry holds 64 KiB frames; the second port's slots cannot
    const whole = openPacket(GA, slab, { ring });
    const cut = openPacket(GA, createSlab(), ring === 'v2' ? { ring, frameSize: 2048 } : { ring, blockSize: 4096 });
    let server: Server | undefined;
    try {
      let big: { len: number; vnet: VnetHdr; ipLen: number } | undefined;
      whole.start((n) => {
        for (let i = 0; i < n; i++) {
          const off = slab.rxOff[i]!;
          const len = slab.rxLen[i]!;
          if (len > 1514 && (!big || len > big.len)) {
            big = { len, vnet: vnetHdr(slab.bytes, off), ipLen: (slab.bytes[off + 16]! << 8) | slab.bytes[off + 17]! };
          }
        }
      });
      cut.start(() => {});
      let received = 0;
      const total = 4 << 20;
      server = createServer((c) => c.on('data', (d: Buffer) => { received += d.length; }));
      await new Promise<void>((resolve) => server!.listen(40150, '10.78.2.2', resolve));
      const tx = ns.node(TCP_WRITER, ['10.78.2.2', 40150, total]);
      assert.ok(await waitFor(() => received >= total, 10_000), `server got ${received}/${total}`);
      await tx.done;
      assert.ok(big !== undefined, 'no frame above 1514 bytes');
      assert.equal(big.ipLen, big.len - 14, 'IP total length matches the frame');
      assert.equal(big.vnet.gsoType, 1, 'VIRTIO_NET_HDR_GSO_TCPV4');
      assert.ok(big.vnet.gsoSize > 0 && big.vnet.gsoSize <= 1460, `gsoSize ${big.vnet.gsoSize}`);
      assert.equal(readStats(whole).rxTruncated, 0);
      assert.ok(readStats(cut).rxTruncated > 0, 'no truncation counted');
    } finally {
      whole.close();
      cut.close();
      server?.close();
    }
  });

  test('a burst of more than BATCH_MAX frames drains across passes', async () => {
    const slab = createSlab();
    const count = 1000;
    // V3: a long retire timeout keeps the whole burst in one block. V2: the
    // burst lands in the ring (1024 2 KiB slots) before polling starts.
    const opts: PacketOptions = ring === 'v3' ? { ring, retireMs: 200 } : { ring, frameSize: 2048, frameCount: 1024 };
    const port = openPacket(VA, slab, opts);
    try {
      const got = seen();
      if (ring === 'v3') port.start(collector(slab, got));
      const tx = ns.node(SENDER, ['10.78.0.2', 40104, count, 40105, 'blk']);
      await tx.done;
      if (ring === 'v2') {
        assert.ok(await waitFor(() => port.pending(), 3000), 'nothing in the ring');
        port.start(collector(slab, got));
      }
      const mine = () => got.frames.filter((f) => f.udp.dport === 40104);
      assert.ok(await waitFor(() => mine().length >= count, 3000), `received ${mine().length}/${count}`);
      await sleep(20);
      assert.equal(new Set(mine().map((f) => f.udp.payload)).size, count, 'duplicates');
      assert.equal(mine().length, count);
      assert.ok(Math.max(...got.batches) === BATCH_MAX, `batches ${got.batches.join(',')}`);
      assert.ok(got.batches.length >= Math.ceil(count / BATCH_MAX), `${got.batches.length} batches`);
      assert.equal(port.stats[STAT_RX_FRAMES], got.batches.reduce((a, b) => a + b, 0));
      assert.equal(port.stats[STAT_RX_BATCHES], got.batches.length);
    } finally {
      port.close();
    }
  });

  test('vnetHdr: false gives zeroed headers; promisc is set while open', async () => {
    const slab = createSlab();
    slab.bytes.fill(0xee);
    const port = openPacket(VA, slab, { ring, vnetHdr: false, promisc: true });
    try {
      assert.equal(port.vnetHdr, false);
      assert.equal(promiscuity(VA), 1);
      const got = seen();
      port.start(collector(slab, got));
      const tx = ns.node(SENDER, ['10.78.0.2', 40106, 3, 40107, 'plain']);
      assert.ok(await waitFor(() => got.frames.filter((f) => f.udp.dport === 40106).length === 3, 5000), 'datagrams not received');
      await tx.done;
      for (const f of got.frames) {
        assert.deepEqual(f.vnet, { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
      }
    } finally {
      port.close();
    }
    assert.equal(promiscuity(VA), 0);
  });

  test('ring drops are counted by refreshStats()', async () => {
    const slab = createSlab();
    // not polled: a burst must overflow two 4 KiB blocks (V3) or 31 slots (V2)
    const small: PacketOptions = ring === 'v3' ? { blockSize: 4096, blockCount: 2, retireMs: 1 } : { frameCount: 1 };
    const port = openPacket(VA, slab, { ring, ...small });
    try {
      const tx = ns.node(SENDER, ['10.78.0.2', 40108, 300, 40109, 'drop']);
      await tx.done;
      await sleep(20);
      const st = readStats(port);
      assert.ok(st.rxDrops > 0, `rxDrops ${st.rxDrops}`);
      const got = seen();
      port.start(collector(slab, got));
      await waitFor(() => got.frames.length > 0, 2000);
      await sleep(20);
      const mine = got.frames.filter((f) => f.udp.dport === 40108).length;
      assert.ok(mine > 0 && mine < 300, `delivered ${mine}`);
      assert.equal(mine + readStats(port).rxDrops >= 300, true);
    } finally {
      port.close();
    }
  });

  });

  test('sends 100 frames in one call; none are read back', async () => {
    const slab = createSlab();
    const port = openPacket(VA, slab);
    try {
      const got = seen();
      port.start(collector(slab, got));
      const rx = ns.node(RECEIVER, ['10.78.0.1', 40102, 100]);
      assert.ok(await waitFor(() => rx.lines.includes('ready'), 5000), 'receiver not ready');
      const dstMac = ns.mac('eth0');
      const count = 100;
      const off = new Uint32Array(count);
      const len = new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        const frame = udpFrame({
          dstMac, srcMac: PEER_MAC, src: '10.78.0.2', dst: '10.78.0.1',
          sport: 40103, dport: 40102, payload: Buffer.from(`tx-${i}`),
        });
        off[i] = slotOffset(i);
        len[i] = frame.length;
        slab.bytes.set(frame, off[i]!);
        setVnetHdr(slab.bytes, off[i]!, {});
        if (port.vnetHdr && i % 2 === 1) {
          // every other frame leaves its UDP checksum to the kernel (partial checksum)
          const ps = udpPseudoSum(frame);
          slab.bytes[off[i]! + 40] = ps >> 8;
          slab.bytes[off[i]! + 41] = ps & 0xff;
          setVnetHdr(slab.bytes, off[i]!, { flags: 1, csumStart: 34, csumOffset: 6 });
        }
      }
      assert.equal(port.send(off, len, count), count);
      assert.ok(await waitFor(() => rx.lines.length >= count + 1, 5000), `receiver got ${rx.lines.length - 1}/${count}`);
      await rx.done;
      const payloads = new Set(rx.lines.filter((l) => l.startsWith('tx-')));
      assert.equal(payloads.size, count);
      await sleep(20);
      assert.equal(got.frames.filter((f) => f.udp.sport === 40103).length, 0, 'own frames read back');
      assert.equal(port.stats[STAT_TX_FRAMES], count);
      assert.equal(port.stats[STAT_TX_BATCHES], 1);
    } finally {
      port.close();
    }
  });

  test('a frame sent to a closed port comes back as ICMP port unreachable', async () => {
    const slab = createSlab();
    const port = openPacket(VA, slab);
    try {
      const got = seen();
      port.start(collector(slab, got));
      const frame = udpFrame({
        dstMac: ns.mac('eth0'), srcMac: PEER_MAC, src: '10.78.0.2', dst: '10.78.0.1',
        sport: 40110, dport: 9, payload: Buffer.from('knock'),
      });
      const off = slotOffset(BATCH_MAX - 1);
      slab.bytes.set(frame, off);
      setVnetHdr(slab.bytes, off, {});
      assert.equal(port.send(Uint32Array.of(off), Uint32Array.of(frame.length), 1), 1);
      assert.ok(await waitFor(() => got.icmp.includes(3), 3000), 'no ICMP unreachable');
    } finally {
      port.close();
    }
  });

  test('survives a link flap; deleting the interface calls onError', async () => {
    const XA = `${P}xa`;
    ip('link', 'add', XA, 'type', 'veth', 'peer', 'name', `${P}xb`);
    try {
      ip('link', 'set', XA, 'addrgenmode', 'none');
      ip('link', 'set', `${P}xb`, 'netns', ns.name, 'name', 'eth1');
      ip('-n', ns.name, 'addr', 'add', '10.78.1.1/24', 'dev', 'eth1');
      ip('-n', ns.name, 'link', 'set', 'eth1', 'up');
      ip('-n', ns.name, 'neigh', 'replace', '10.78.1.2', 'lladdr', PEER_MAC, 'dev', 'eth1', 'nud', 'permanent');
      ip('link', 'set', XA, 'up');
      const slab = createSlab();
      const port = openPacket(XA, slab);
      try {
        const got = seen();
        let error: NodeJS.ErrnoException | undefined;
        port.start(collector(slab, got), (e) => { error = e; });
        const mine = (tag: string) => got.frames.filter((f) => f.udp.payload.startsWith(tag)).length;
        await ns.node(SENDER, ['10.78.1.2', 40120, 1, 40121, 'before']).done;
        assert.ok(await waitFor(() => mine('before') === 1, 3000), 'nothing before the flap');
        ip('link', 'set', XA, 'down');
        await sleep(50);
        ip('link', 'set', XA, 'up');
        // carrier comes back asynchronously: resend until one arrives
        const deadline = Date.now() + 5000;
        while (mine('after') === 0 && Date.now() < deadline) {
          await ns.node(SENDER, ['10.78.1.2', 40120, 1, 40121, 'after']).done;
          await waitFor(() => mine('after') > 0, 200);
        }
        assert.ok(mine('after') > 0, 'nothing after the flap');
        assert.equal(error, undefined);
        assert.equal(port.stats[STAT_RX_LAST_ERRNO], 100 /* ENETDOWN, cleared and polled on */);
        ip('link', 'del', XA);
        assert.ok(await waitFor(() => error !== undefined, 3000), 'onError not called');
        assert.equal(error!.code, 'ENODEV');
      } finally {
        port.close();
      }
    } finally {
      try { ip('link', 'del', XA); } catch { /* deleted by the test */ }
    }
  });

  test('V2 hands over a lone frame at once; V3 holds it until its block retires', async () => {
    // Neither port is polled: pending() reads the ring's status words. The V3
    // block's retire timer is 60 s, so only a full block would release it.
    const v2 = openPacket(VA, createSlab(), { ring: 'v2' });
    const v3 = openPacket(VA, createSlab(), { ring: 'v3', retireMs: 60_000 });
    try {
      assert.equal(v2.pending(), false);
      assert.equal(v3.pending(), false);
      await ns.node(SENDER, ['10.78.0.2', 40160, 1, 40161, 'lone']).done;
      assert.ok(await waitFor(() => v2.pending(), 5000), 'V2 frame not handed over');
      assert.equal(v3.pending(), false, 'V3 block handed over before it retired');
      const slab = createSlab();
      const got = seen();
      v2.close();
      const again = openPacket(VA, slab, { ring: 'v2' });
      try {
        again.start(collector(slab, got));
        await ns.node(SENDER, ['10.78.0.2', 40160, 1, 40161, 'lone']).done;
        assert.ok(await waitFor(() => got.frames.some((f) => f.udp.dport === 40160), 5000), 'not delivered');
        assert.equal(again.pending(), false, 'ring not given back');
      } finally {
        again.close();
      }
    } finally {
      v2.close();
      v3.close();
    }
  });

  test('rejects bad ring geometry', () => {
    const slab = createSlab();
    assert.throws(() => openPacket(VA, slab, { ring: 'v3', blockSize: 1000 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { ring: 'v3', blockCount: 0 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { ring: 'v3', blockSize: -1 }), TypeError);
    assert.throws(() => openPacket(VA, slab, { ring: 'v2', frameCount: 0 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { ring: 'v2', frameSize: 1000 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { ring: 'v2', frameSize: 4 << 20 }), { code: 'EINVAL' });
  });
});

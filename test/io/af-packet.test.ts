/**
 * End-to-end tests of AF_PACKET ports (TPACKET_V3 RX ring, sendmmsg TX) on a
 * veth pair made by the test (needs root).
 *
 *   test netns NS                              root netns (this process)
 *   +-------------------------------+          +--------------------------+
 *   | eth0 10.78.0.1/24  <==========|== veth ==|=> <prefix>va, up, no addr|
 *   |  neigh 10.78.0.2 -> PEER_MAC  |          |   openPacket()           |
 *   +-------------------------------+          +--------------------------+
 *
 * Every name carries a per-run prefix; after() deletes the namespace (and
 * with it the veth pair).
 *
 * NB: every assert.ok() carries a message: without one, a failing assert.ok makes
 * Node re-parse this TypeScript file to quote the expression, which can spin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { BATCH_MAX, HEADROOM, SLOT_SIZE } from '../../src/packet/layout.ts';
import {
  createSlab, nativeAvailable, readStats, slotOffset, STAT_RX_BATCHES, STAT_RX_FRAMES, STAT_RX_LAST_ERRNO,
  STAT_TX_BATCHES, STAT_TX_FRAMES,
} from '../../src/io/native.ts';
import { openPacket } from '../../src/io/af-packet.ts';
import {
  collector, ip, Netns, RECEIVER, RUN_PREFIX as P, seen, SENDER, setVnetHdr, sleep, udpFrame, udpPseudoSum,
  waitFor,
} from './io-helpers.ts';

const PEER_MAC = '02:00:00:00:78:02';
const ns = new Netns(`${P}pkt`);
const VA = `${P}va`;
const VB = `${P}vb`;

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
  });

  after(() => {
    ns.del();
    for (const l of [VA, `${P}xa`]) {
      try { ip('link', 'del', l); } catch { /* went with the namespace */ }
    }
  });

  test('receives UDP through the TPACKET_V3 ring', async (t: TestContext) => {
    const slab = createSlab();
    const port = openPacket(VA, slab);
    try {
      t.diagnostic(`PACKET_VNET_HDR with TPACKET_V3: ${port.vnetHdr}`);
      assert.equal(port.kind, 'packet');
      assert.equal(port.name, VA);
      assert.ok(port.fd > 0 && port.ifindex > 0, `fd ${port.fd} ifindex ${port.ifindex}`);
      const got = seen();
      port.start(collector(slab, got));
      const tx = ns.node(SENDER, ['10.78.0.2', 40101, 50, 40100, 'ring']);
      const mine = () => got.frames.filter((f) => f.udp.dport === 40101);
      assert.ok(await waitFor(() => mine().length === 50, 5000), `received ${mine().length}/50`);
      await tx.done;
      const f = mine()[0]!;
      assert.equal(f.off, f.slot * SLOT_SIZE + HEADROOM);
      assert.equal(f.len, 14 + 20 + 8 + 'ring-0'.length);
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

  test('a block with more than BATCH_MAX frames drains across passes', async () => {
    const slab = createSlab();
    // a long retire timeout keeps the whole burst in one block
    const port = openPacket(VA, slab, { retireMs: 200 });
    try {
      const got = seen();
      port.start(collector(slab, got));
      const count = 1000;
      const tx = ns.node(SENDER, ['10.78.0.2', 40104, count, 40105, 'blk']);
      await tx.done;
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
    const port = openPacket(VA, slab, { vnetHdr: false, promisc: true });
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
    // two 4 KiB blocks, not polled: a burst must overflow
    const port = openPacket(VA, slab, { blockSize: 4096, blockCount: 2, retireMs: 1 });
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

  test('rejects bad ring geometry', () => {
    const slab = createSlab();
    assert.throws(() => openPacket(VA, slab, { blockSize: 1000 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { blockCount: 0 }), { code: 'EINVAL' });
    assert.throws(() => openPacket(VA, slab, { blockSize: -1 }), TypeError);
  });
});

/**
 * End-to-end tests of TAP ports on real kernel devices (needs root).
 *
 *   test netns NS                         this process
 *   +---------------------------+         +--------------------------+
 *   | eth0 10.77.0.1/24  <======|== TAP ==|=> slab, openTap()        |
 *   |  neigh 10.77.0.2 -> PEER  |         |   (moved in after open)  |
 *   | eth1 10.77.1.1 (no offl.) |         |                          |
 *   | eth2 10.77.2.1 (worker)   |         | Worker: openTap()        |
 *   +---------------------------+         +--------------------------+
 *
 * Also the error paths (bad names, EBUSY, bad arguments) and the addon inside
 * a worker_threads Worker, including teardown without close() and a throwing
 * batch callback. Every name carries a per-run prefix; everything made is
 * deleted in after().
 *
 * NB: every assert.ok() carries a message: without one, a failing assert.ok makes
 * Node re-parse this TypeScript file to quote the expression, which can spin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BATCH_MAX, HEADROOM, SLOT_SIZE, VNET_HDR_LEN } from '../../src/packet/layout.ts';
import {
  createSlab, nativeAvailable, slotOffset, STAT_RX_BATCHES, STAT_RX_ERRORS, STAT_RX_FRAMES,
  STAT_RX_LAST_ERRNO, STAT_TX_BATCHES, STAT_TX_ERRORS, STAT_TX_FRAMES, type NativePort, type Slab,
} from '../../src/io/native.ts';
import { openTap } from '../../src/io/tap.ts';
import { openPacket } from '../../src/io/af-packet.ts';
import {
  collector, ip, Netns, parseUdp, RECEIVER, RUN_PREFIX as P, seen, SENDER, sleep, udpChecksum, udpFrame,
  waitFor, type Udp,
} from './io-helpers.ts';

const PEER_MAC = '02:00:00:00:77:02';
const ns = new Netns(`${P}tap`);

// ---------- worker side ----------

interface WorkerJob { name: string; mode: 'receive' | 'throw' }

function workerMain(): void {
  const job = workerData as WorkerJob;
  const slab = createSlab();
  const tap = openTap(job.name, slab);
  parentPort!.postMessage({ type: 'open', name: tap.name, ifindex: tap.ifindex });
  tap.start((n) => {
    if (job.mode === 'throw') throw new Error('boom-from-onBatch');
    const frames: Udp[] = [];
    for (let i = 0; i < n; i++) {
      const udp = parseUdp(slab.bytes.subarray(slab.rxOff[i]!, slab.rxOff[i]! + slab.rxLen[i]!));
      if (udp) frames.push(udp);
    }
    parentPort!.postMessage({ type: 'batch', n, frames, rxFrames: tap.stats[STAT_RX_FRAMES] });
  });
}

/** Starts this file as a worker (Node 20 workers do not inherit tsx's hooks, so load them first). */
function startWorker(job: WorkerJob): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const self = import.meta.url;
  return new Worker(
    `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(self)}, ${JSON.stringify(self)}))`,
    { eval: true, workerData: job },
  );
}

// ---------- tests ----------

if (!isMainThread) {
  workerMain();
} else {
  const root = process.getuid?.() === 0;
  const skip = !root ? 'needs root' : !nativeAvailable() ? 'native addon not built' : false;

  describe('TAP ports', { skip }, () => {
    before(() => ns.add());

    after(() => {
      for (const name of [`${P}t0`, `${P}t1`, `${P}t2`, `${P}t3`, `${P}t4`, `${P}w0`, `${P}w1`, `${P}b0`]) {
        try { ip('link', 'del', name); } catch { /* not there */ }
      }
      ns.del();
    });

    /** Opens a TAP, moves it into NS as `dev` with addr/24 and a static neighbour PEER. */
    function tapInNs(slab: Slab, name: string, dev: string, addr: string, peer: string, offload = true): NativePort {
      const tap = openTap(name, slab, { offload });
      try {
        ip('link', 'set', name, 'netns', ns.name, 'name', dev);
        ip('-n', ns.name, 'link', 'set', dev, 'txqueuelen', '2000');
        ip('-n', ns.name, 'addr', 'add', `${addr}/24`, 'dev', dev);
        ip('-n', ns.name, 'link', 'set', dev, 'up');
        ip('-n', ns.name, 'neigh', 'replace', peer, 'lladdr', PEER_MAC, 'dev', dev, 'nud', 'permanent');
      } catch (e) {
        tap.close();
        throw e;
      }
      return tap;
    }

    test('open, move into a netns, receive a datagram, send one back', async () => {
      const slab = createSlab();
      const tap = tapInNs(slab, `${P}t0`, 'eth0', '10.77.0.1', '10.77.0.2');
      try {
        assert.equal(tap.kind, 'tap');
        assert.equal(tap.name, `${P}t0`);
        assert.equal(tap.vnetHdr, true);
        assert.ok(tap.fd > 0 && tap.ifindex > 0, `fd ${tap.fd} ifindex ${tap.ifindex}`);
        const got = seen();
        tap.start(collector(slab, got));

        const tx = ns.node(SENDER, ['10.77.0.2', 40001, 1, 40000, 'hello-tap']);
        assert.ok(await waitFor(() => got.frames.some((f) => f.udp.dport === 40001), 5000), 'datagram not received');
        await tx.done;
        const f = got.frames.find((x) => x.udp.dport === 40001)!;
        assert.equal(f.udp.payload, 'hello-tap-0');
        assert.equal(f.udp.sport, 40000);
        assert.equal(f.udp.dstMac, PEER_MAC);
        assert.equal(f.udp.srcMac, ns.mac('eth0'));
        assert.equal(f.off, f.slot * SLOT_SIZE + HEADROOM);
        assert.equal(f.len, 14 + 20 + 8 + 'hello-tap-0'.length);
        // offload on: either complete or a partial checksum the header describes
        assert.equal(f.vnet.gsoType, 0);
        assert.ok(f.vnet.flags === 0 || f.vnet.flags === 1, `vnet flags ${f.vnet.flags}`);
        if (f.vnet.flags === 1) assert.deepEqual([f.vnet.csumStart, f.vnet.csumOffset], [34, 6]);

        // send: a hand-built frame from slot 5 to a receiver in the netns
        const rx = ns.node(RECEIVER, ['10.77.0.1', 40002, 1]);
        assert.ok(await waitFor(() => rx.lines.includes('ready'), 5000), 'receiver not ready');
        const frame = udpFrame({
          dstMac: ns.mac('eth0'), srcMac: PEER_MAC, src: '10.77.0.2', dst: '10.77.0.1',
          sport: 40003, dport: 40002, payload: Buffer.from('from-tapestry'),
        });
        const off = slotOffset(5);
        slab.bytes.fill(0, off - VNET_HDR_LEN, off);
        slab.bytes.set(frame, off);
        assert.equal(tap.send(Uint32Array.of(off), Uint32Array.of(frame.length), 1), 1);
        assert.ok(await waitFor(() => rx.lines.includes('from-tapestry'), 5000), 'payload not delivered');
        await rx.done;
        assert.ok(tap.stats[STAT_RX_FRAMES]! >= 1, 'rxFrames not counted');
        assert.equal(tap.stats[STAT_RX_BATCHES], got.batches.length);
        assert.equal(tap.stats[STAT_TX_FRAMES], 1);
        assert.equal(tap.stats[STAT_TX_BATCHES], 1);
      } finally {
        tap.close();
      }
    });

    test('a burst of 500 datagrams arrives in fewer callbacks than frames', async () => {
      const slab = createSlab();
      const tap = tapInNs(slab, `${P}b0`, 'eth3', '10.77.3.1', '10.77.3.2');
      try {
        const got = seen();
        tap.start(collector(slab, got));
        const count = 500;
        const mine = () => got.frames.filter((f) => f.udp.dport === 40010).length;
        const tx = ns.node(SENDER, ['10.77.3.2', 40010, count, 40011, 'burst']);
        await tx.done;
        await waitFor(() => mine() >= count, 3000);
        const n = mine();
        assert.ok(n >= count * 0.9, `received ${n}/${count}`);
        const payloads = new Set(got.frames.filter((f) => f.udp.dport === 40010).map((f) => f.udp.payload));
        assert.equal(payloads.size, n, 'duplicate frames');
        assert.ok(got.batches.length < n, `${got.batches.length} callbacks for ${n} frames`);
        assert.ok(Math.max(...got.batches) <= BATCH_MAX, `batches ${got.batches.join(',')}`);
        const total = got.batches.reduce((a, b) => a + b, 0);
        assert.equal(tap.stats[STAT_RX_FRAMES], total);
        assert.equal(tap.stats[STAT_RX_BATCHES], got.batches.length);
      } finally {
        tap.close();
      }
    });

    test('offload off: zeroed virtio-net header and a complete UDP checksum', async () => {
      const slab = createSlab();
      const tap = tapInNs(slab, `${P}t1`, 'eth1', '10.77.1.1', '10.77.1.2', false);
      try {
        const got = seen();
        tap.start(collector(slab, got));
        const tx = ns.node(SENDER, ['10.77.1.2', 40004, 1, 40005, 'plain']);
        assert.ok(await waitFor(() => got.frames.some((f) => f.udp.dport === 40004), 5000), 'datagram not received');
        await tx.done;
        const f = got.frames.find((x) => x.udp.dport === 40004)!;
        assert.deepEqual(f.vnet, { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
        const bytes = slab.bytes.slice(f.off, f.off + f.len);
        const sum = (bytes[40]! << 8) | bytes[41]!;
        assert.equal(sum, udpChecksum(bytes) || 0xffff);
      } finally {
        tap.close();
      }
    });

    test('close() inside the batch callback, twice; the device goes away', async () => {
      const slab = createSlab();
      const tap = tapInNs(slab, `${P}t2`, 'eth4', '10.77.4.1', '10.77.4.2');
      let calls = 0;
      tap.start(() => {
        calls++;
        tap.close();
        tap.close();
        tap.stop();
      });
      const tx = ns.node(SENDER, ['10.77.4.2', 40006, 20, 40007, 'x']);
      assert.ok(await waitFor(() => calls > 0, 5000), 'no batch');
      await tx.done;
      await sleep(50);
      assert.equal(calls, 1);
      assert.equal(tap.fd, -1);
      assert.ok(ns.linkGone('eth4'), 'TAP still exists after close()');
      assert.throws(() => tap.send(Uint32Array.of(slotOffset(0)), Uint32Array.of(60), 1), { code: 'EBADF' });
      assert.throws(() => tap.start(() => {}), { code: 'EBADF' });
      tap.stop();
      tap.close();
    });

    test('deleting the pod netns stops the port and calls onError', async () => {
      const pod = new Netns(`${P}pod`);
      pod.add();
      const slab = createSlab();
      let tap: NativePort | undefined;
      try {
        tap = openTap(`${P}t3`, slab);
        ip('link', 'set', `${P}t3`, 'netns', pod.name, 'name', 'eth0');
        ip('-n', pod.name, 'link', 'set', 'eth0', 'up');
        let error: NodeJS.ErrnoException | undefined;
        tap.start(() => {}, (e) => { error = e; });
        pod.del();
        assert.ok(await waitFor(() => error !== undefined, 3000), 'onError not called');
        assert.equal(error!.code, 'EBADF');
        assert.match(error!.message, new RegExp(`on ${P}t3: `));
        assert.equal(tap.stats[STAT_RX_ERRORS], 1);
        assert.equal(tap.stats[STAT_RX_LAST_ERRNO], 9);
      } finally {
        tap?.close();
        pod.del();
      }
    });

    test('a port dropped without close() is closed by the garbage collector', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      (() => { openTap(`${P}t4`, createSlab()); })();
      assert.doesNotThrow(() => ip('link', 'show', `${P}t4`), 'TAP not created');
      const gone = () => {
        try { ip('link', 'show', `${P}t4`); return false; } catch { return true; }
      };
      assert.ok(await waitFor(() => { gc(); return gone(); }, 3000), 'TAP still exists after GC');
    });

    test('send() checks its arguments and counts bytes', () => {
      const slab = createSlab();
      const tap = openTap(`${P}t0`, slab);
      try {
        assert.throws(() => tap.send(new Uint32Array(1), new Uint32Array(1), 2), RangeError);
        assert.throws(() => tap.send(Uint32Array.of(4), Uint32Array.of(60), 1), /frame 0/);
        assert.throws(() => tap.send(Uint32Array.of(slab.buffer.byteLength - 10), Uint32Array.of(60), 1), RangeError);
        assert.throws(() => tap.send([1] as unknown as Uint32Array, Uint32Array.of(60), 1), TypeError);
        assert.throws(() => tap.start(42 as unknown as () => void), TypeError);
        assert.equal(tap.send(new Uint32Array(0), new Uint32Array(0), 0), 0);
        // the device is down: the kernel refuses the frames, which are counted, not thrown
        const off = new Uint32Array(4).fill(slotOffset(1));
        const sent = tap.send(off, new Uint32Array(4).fill(60), 4);
        assert.equal(sent + tap.stats[STAT_TX_ERRORS]!, 4);
      } finally {
        tap.close();
      }
    });

    test('errors carry code, errno, syscall and the interface name', () => {
      const slab = createSlab();
      const long = 'x'.repeat(20);
      assert.throws(() => openTap(long, slab), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.errno, -22);
        assert.ok(e.message.includes(long), e.message);
        return true;
      });
      assert.throws(() => openTap('a/b', slab), { code: 'EINVAL' });
      const missing = `${P}nope`;
      assert.throws(() => openPacket(missing, slab), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'ENODEV');
        assert.equal(e.syscall, 'ioctl');
        assert.equal(e.message, `SIOCGIFINDEX on ${missing}: No such device (ENODEV)`);
        return true;
      });
      const tap = openTap(`${P}t0`, slab);
      try {
        assert.throws(() => openTap(`${P}t0`, slab), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, 'EBUSY');
          assert.match(e.message, new RegExp(`^TUNSETIFF on ${P}t0: .* \\(EBUSY\\)$`));
          return true;
        });
      } finally {
        tap.close();
      }
      assert.throws(() => openTap(`${P}t0`, { ...slab, buffer: new ArrayBuffer(16) }), RangeError);
      assert.throws(() => openTap(`${P}t0`, { ...slab, rxOff: new Uint16Array(256) as unknown as Uint32Array }), TypeError);
      assert.throws(() => openTap(7 as unknown as string, slab), TypeError);
    });

    test('works inside a Worker: open, receive, torn down without close()', async () => {
      const w = startWorker({ name: `${P}w0`, mode: 'receive' });
      const msgs: { type: string; n?: number; frames?: Udp[]; name?: string }[] = [];
      const errors: Error[] = [];
      w.on('message', (m) => msgs.push(m));
      w.on('error', (e) => errors.push(e));
      const exited = new Promise((r) => w.once('exit', r));
      try {
        assert.ok(await waitFor(() => msgs.some((m) => m.type === 'open') || errors.length > 0, 10_000), 'worker did not open');
        assert.deepEqual(errors, []);
        ip('link', 'set', `${P}w0`, 'netns', ns.name, 'name', 'eth2');
        ip('-n', ns.name, 'addr', 'add', '10.77.2.1/24', 'dev', 'eth2');
        ip('-n', ns.name, 'link', 'set', 'eth2', 'up');
        ip('-n', ns.name, 'neigh', 'replace', '10.77.2.2', 'lladdr', PEER_MAC, 'dev', 'eth2', 'nud', 'permanent');
        const tx = ns.node(SENDER, ['10.77.2.2', 40008, 3, 40009, 'worker']);
        const count = () => msgs.flatMap((m) => m.frames ?? []).filter((f) => f.dport === 40008).length;
        assert.ok(await waitFor(() => count() === 3, 5000), `worker saw ${count()} frames`);
        await tx.done;
      } finally {
        await w.terminate();
        await exited;
      }
      // env cleanup hook closed the fd: the TAP is gone
      assert.ok(await waitFor(() => ns.linkGone('eth2'), 2000), 'TAP still exists after the worker exited');
    });

    test('a throw in onBatch inside a Worker surfaces as the worker error', async () => {
      const w = startWorker({ name: `${P}w1`, mode: 'throw' });
      const msgs: { type: string }[] = [];
      let error: Error | undefined;
      w.on('message', (m) => msgs.push(m));
      w.on('error', (e) => { error = e; });
      const exited = new Promise((r) => w.once('exit', r));
      try {
        assert.ok(await waitFor(() => msgs.some((m) => m.type === 'open'), 10_000), 'worker did not open');
        ip('link', 'set', `${P}w1`, 'netns', ns.name, 'name', 'eth5');
        ip('-n', ns.name, 'addr', 'add', '10.77.5.1/24', 'dev', 'eth5');
        ip('-n', ns.name, 'link', 'set', 'eth5', 'up');
        ip('-n', ns.name, 'neigh', 'replace', '10.77.5.2', 'lladdr', PEER_MAC, 'dev', 'eth5', 'nud', 'permanent');
        const tx = ns.node(SENDER, ['10.77.5.2', 40012, 1, 40013, 'throw']);
        assert.ok(await waitFor(() => error !== undefined, 5000), 'no error from the worker');
        await tx.done;
        assert.equal(error!.message, 'boom-from-onBatch');
      } finally {
        await w.terminate();
        await exited;
      }
      assert.ok(await waitFor(() => ns.linkGone('eth5'), 2000), 'TAP still exists after the worker died');
    });
  });
}

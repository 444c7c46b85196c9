/**
 * Throughput of the native I/O ports (needs root and the built addon; skips otherwise).
 *
 *   node --import tsx bench/io.bench.ts [seconds]
 *
 * Cases, each run for `seconds` (default 2) with 64-byte UDP frames, one
 * send() of BATCH_MAX frames per event-loop turn, the same loop polling the
 * receiver:
 *   - packet: AF_PACKET sendmmsg on one end of a veth pair -> TPACKET_V3 ring
 *     (64 x 1 MiB blocks; the uplink's default is V2) on the other end (both
 *     ends in the root netns, run-unique names).
 *   - tap: TAP write() loop -> kernel bridge (in a private netns) -> TAP read() loop.
 * Reported: frames sent and received per second, ns per frame spent in send(),
 * frames per RX callback, ring drops, and this process's CPU (user+sys, which
 * includes the softirq work the kernel charges to our syscalls) per received frame.
 */
import { execFileSync } from 'node:child_process';
import { openPacket } from '../src/io/af-packet.ts';
import {
  createSlab, nativeAvailable, slotOffset, STAT_RX_DROPS, type NativePort, type Slab,
} from '../src/io/native.ts';
import { openTap } from '../src/io/tap.ts';
import { BATCH_MAX } from '../src/packet/layout.ts';

const seconds = Number(process.argv[2] ?? 2);
const P = `tiob${process.pid % 10000}`;
const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] });

/** Fills slots 0..BATCH_MAX-1 of `slab` with a 64-byte unicast UDP frame (valid IPv4 header); returns off/len. */
function fillFrames(slab: Slab): { off: Uint32Array; len: Uint32Array } {
  const off = new Uint32Array(BATCH_MAX);
  const len = new Uint32Array(BATCH_MAX).fill(64);
  const frame = new Uint8Array(64);
  frame.set([0x02, 0, 0, 0, 0xbe, 0x01, 0x02, 0, 0, 0, 0xbe, 0x02, 0x08, 0x00, 0x45, 0, 0, 50], 0);
  frame[22] = 64;
  frame[23] = 17;
  frame.set([10, 99, 0, 2, 10, 99, 0, 1], 26);
  frame.set([0x9c, 0x40, 0x9c, 0x41, 0, 30], 34); // ports 40000 -> 40001, UDP checksum 0 (none)
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame[24] = (~sum >> 8) & 0xff;
  frame[25] = ~sum & 0xff;
  for (let i = 0; i < BATCH_MAX; i++) {
    off[i] = slotOffset(i);
    slab.bytes.set(frame, off[i]!);
  }
  return { off, len };
}

interface Result { sentPps: number; rxPps: number; sendNs: number; perBatch: number; drops: number; cpuNsPerRx: number }

async function pump(tx: NativePort, rx: NativePort, txSlab: Slab): Promise<Result> {
  const { off, len } = fillFrames(txSlab);
  let received = 0;
  let batches = 0;
  rx.start((n) => { received += n; batches++; });
  let sent = 0;
  let sendTime = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const s = performance.now();
    sent += tx.send(off, len, BATCH_MAX);
    sendTime += performance.now() - s;
    await new Promise<void>((r) => setImmediate(r)); // let the receiver's poll run
  }
  await new Promise((r) => setTimeout(r, 50));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  rx.stop();
  return {
    sentPps: sent / wall,
    rxPps: received / wall,
    sendNs: (sendTime * 1e6) / Math.max(sent, 1),
    perBatch: received / Math.max(batches, 1),
    drops: rx.refreshStats()[STAT_RX_DROPS]!,
    cpuNsPerRx: ((cpu.user + cpu.system) * 1000) / Math.max(received, 1),
  };
}

async function benchPacket(): Promise<Result> {
  ip('link', 'add', `${P}a`, 'type', 'veth', 'peer', 'name', `${P}b`);
  try {
    for (const l of [`${P}a`, `${P}b`]) {
      ip('link', 'set', l, 'addrgenmode', 'none');
      ip('link', 'set', l, 'up');
    }
    const txSlab = createSlab();
    const rxSlab = createSlab();
    const tx = openPacket(`${P}a`, txSlab);
    const rx = openPacket(`${P}b`, rxSlab, { ring: 'v3', blockCount: 64 });
    try {
      return await pump(tx, rx, txSlab);
    } finally {
      tx.close();
      rx.close();
    }
  } finally {
    ip('link', 'del', `${P}a`);
  }
}

async function benchTap(): Promise<Result> {
  const ns = `${P}ns`;
  ip('netns', 'add', ns);
  try {
    const txSlab = createSlab();
    const rxSlab = createSlab();
    const tx = openTap(`${P}t1`, txSlab);
    const rx = openTap(`${P}t2`, rxSlab);
    try {
      ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge');
      // a kernel with br_netfilter runs bridged IPv4 through iptables: keep that cost out
      try {
        execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']);
      } catch { /* no br_netfilter */ }
      for (const [t, name] of [[`${P}t1`, 'tap1'], [`${P}t2`, 'tap2']] as const) {
        ip('link', 'set', t, 'netns', ns, 'name', name);
        ip('-n', ns, 'link', 'set', name, 'master', 'br0');
        ip('-n', ns, 'link', 'set', name, 'up');
      }
      ip('-n', ns, 'link', 'set', 'br0', 'up');
      return await pump(tx, rx, txSlab);
    } finally {
      tx.close();
      rx.close();
    }
  } finally {
    ip('netns', 'del', ns);
  }
}

function show(name: string, r: Result): void {
  const k = (x: number) => `${(x / 1000).toFixed(0)} k/s`;
  console.log(
    `${name.padEnd(8)} sent ${k(r.sentPps).padStart(10)}  received ${k(r.rxPps).padStart(10)}  ` +
      `send ${r.sendNs.toFixed(0).padStart(5)} ns/frame  ${r.perBatch.toFixed(1).padStart(6)} frames/callback  ` +
      `ring drops ${r.drops}  cpu ${r.cpuNsPerRx.toFixed(0)} ns/received frame`,
  );
}

/** Removes whatever a case left behind (also on SIGINT/SIGTERM). */
function cleanup(): void {
  for (const args of [['link', 'del', `${P}a`], ['netns', 'del', `${P}ns`]]) {
    try { ip(...args); } catch { /* not there */ }
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}

if (process.getuid?.() !== 0 || !nativeAvailable()) {
  console.log('io.bench: skipped (needs root and the native addon: run npm install as root)');
} else {
  console.log(`io.bench: 64-byte frames, ${seconds} s per case, batches of ${BATCH_MAX}`);
  show('packet', await benchPacket());
  show('tap', await benchTap());
}

/**
 * Micro-benchmark of the whole from-container pipeline: a batch of IPv4 UDP
 * frames from pod A to pod B through cil_from_container → tail_handle_ipv4 →
 * local delivery → the destination's ingress stage → the exit, with a device
 * that accepts everything (no syscalls), against a baseline measured in the
 * same run: the minimum any forwarder must do for these frames, hand-written
 * (parse Ethernet + IPv4, check the source, find the destination in a JS Map,
 * decrement TTL with an incremental checksum, rewrite both MACs).
 *
 * Run: node --import tsx bench/pipeline.bench.ts. Prints ns per frame for
 * batches of 1, 32 and 256 and the ratio pipeline / baseline. The agent runs
 * the same code from an esbuild bundle (dist/bin); numbers under tsx are for
 * comparing changes, the bundle's are printed by `npm run bench`.
 */
import { bench, do_not_optimize, run, summary } from 'mitata';
import { Datapath } from '../src/datapath/datapath.ts';
import { parseIpv4, parseMac } from '../src/wire/addr.ts';
import { csumReplace16 } from '../src/wire/checksum.ts';
import { pktgen } from '../test/helpers/pktgen.ts';

const dp = new Datapath({ routerIPv4: parseIpv4('10.0.0.1'), routerIPv6: null, mtu: 1500 });
const sink = { name: 'sink', send: (_o: Uint32Array, _l: Uint32Array, c: number) => c };
const ep = (id: number, ip: string) => ({ id, name: `ep${id}`, ipv4: parseIpv4(ip), ipv6: null, mac: parseMac(`02:00:00:00:00:0${id}`), hostMac: parseMac(`02:00:00:00:01:0${id}`), identity: 255 + id });
const portA = dp.addEndpoint(ep(1, '10.0.0.10'), sink);
dp.addEndpoint(ep(2, '10.0.0.11'), sink);
const frame = pktgen().eth({ src: '02:00:00:00:00:01', dst: '02:00:00:00:01:01' }).ipv4({ src: '10.0.0.10', dst: '10.0.0.11', ttl: 64 }).udp({ sport: 1000, dport: 2000 }).payload(1400).build();
dp.batch.load(Array(256).fill(frame), portA, 0);
const off0 = dp.batch.off.slice();
const len0 = dp.batch.len.slice();
const buf = dp.batch.buf;

/** Put the frames back as they arrived (TTL and checksum), so every round forwards. */
function restore(n: number): void {
  for (let i = 0; i < n; i++) {
    const o = off0[i]! + 14;
    buf[o + 8] = 64;
    buf[o + 10] = frame[24]!;
    buf[o + 11] = frame[25]!;
  }
  dp.batch.off.set(off0);
  dp.batch.len.set(len0);
}

/** Baseline: the minimal forwarding work, inlined over the bytes. */
const table = new Map<number, { mac: Uint8Array; hostMac: Uint8Array }>([[parseIpv4('10.0.0.11'), { mac: parseMac('02:00:00:00:00:02'), hostMac: parseMac('02:00:00:00:01:02') }]]);
const srcIp = parseIpv4('10.0.0.10');
let fwd = 0;
function baseline(n: number): void {
  for (let i = 0; i < n; i++) {
    const o = off0[i]!;
    if (((buf[o + 12]! << 8) | buf[o + 13]!) !== 0x0800) continue;
    const ip = o + 14;
    if (buf[ip]! >> 4 !== 4) continue;
    const src = ((buf[ip + 12]! << 24) | (buf[ip + 13]! << 16) | (buf[ip + 14]! << 8) | buf[ip + 15]!) >>> 0;
    if (src !== srcIp) continue;
    const dst = ((buf[ip + 16]! << 24) | (buf[ip + 17]! << 16) | (buf[ip + 18]! << 8) | buf[ip + 19]!) >>> 0;
    const d = table.get(dst);
    if (d === undefined) continue;
    const old = (buf[ip + 8]! << 8) | buf[ip + 9]!;
    buf[ip + 8] = buf[ip + 8]! - 1;
    const c = csumReplace16((buf[ip + 10]! << 8) | buf[ip + 11]!, old, old - 0x100);
    buf[ip + 10] = c >> 8;
    buf[ip + 11] = c & 0xff;
    buf.set(d.mac, o);
    buf.set(d.hostMac, o + 6);
    fwd++;
  }
}

for (const n of [1, 32, 256]) {
  summary(() => {
    bench(`pipeline, batch ${n}`, () => {
      restore(n);
      dp.receive(portA, n, 0);
    });
    bench(`baseline, batch ${n}`, () => {
      restore(n);
      baseline(n);
      do_not_optimize(fwd);
    });
  });
}

await run();
const drops = dp.metrics.snapshot().drops;
if (drops.length) throw new Error(`pipeline dropped frames: ${JSON.stringify(drops)}`);

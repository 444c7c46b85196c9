/**
 * Helpers for the end-to-end I/O tests (tap.test.ts, af-packet.test.ts).
 *
 * Frames are built and parsed by hand (Ethernet + IPv4 + UDP with real
 * checksums) so these tests do not depend on src/wire. Namespaces and helper
 * processes are tracked so `after()` can remove everything a run made.
 *
 * API:
 *   udpFrame(o), udpChecksum(f), udpPseudoSum(f), parseUdp(f), icmpType(f),
 *   vnetHdr(bytes, off), setVnetHdr(bytes, off, h)
 *   RUN_PREFIX, ip(...args), sleep(ms), waitFor(pred, ms)
 *   Netns: add(), node(script, args), run(cmd, args), mac(ifname), linkGone(ifname), del()
 *   SENDER, RECEIVER (node -e scripts), collector(slab, seen)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { VNET_HDR_LEN } from '../../src/packet/layout.ts';
import type { Slab } from '../../src/io/native.ts';

// ---------- frames ----------

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

function ipBytes(addr: string): number[] {
  return addr.split('.').map(Number);
}

function csum16(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if ((end - start) & 1) s += b[end - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Fields of a hand-built UDP frame. */
export interface UdpSpec {
  dstMac: string; srcMac: string; src: string; dst: string; sport: number; dport: number; payload: Uint8Array;
}

/** Ethernet + IPv4 (no options) + UDP with valid IPv4 and UDP checksums. */
export function udpFrame(o: UdpSpec): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + o.payload.length);
  const dv = new DataView(f.buffer);
  f.set(macBytes(o.dstMac), 0);
  f.set(macBytes(o.srcMac), 6);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  dv.setUint16(16, 20 + 8 + o.payload.length);
  dv.setUint16(18, 0x1234);
  f[22] = 64;
  f[23] = 17;
  f.set(ipBytes(o.src), 26);
  f.set(ipBytes(o.dst), 30);
  dv.setUint16(24, ~csum16(f, 14, 34) & 0xffff);
  dv.setUint16(34, o.sport);
  dv.setUint16(36, o.dport);
  dv.setUint16(38, 8 + o.payload.length);
  f.set(o.payload, 42);
  dv.setUint16(40, udpChecksum(f) || 0xffff);
  return f;
}

/** Folded one's-complement sum of the UDP pseudo-header (what a partial checksum field holds). */
export function udpPseudoSum(f: Uint8Array): number {
  const ulen = (f[38]! << 8) | f[39]!;
  let s = csum16(f, 26, 34) + 17 + ulen;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** UDP checksum of a 20-byte-IPv4-header frame, computed with the checksum field as zero. */
export function udpChecksum(f: Uint8Array): number {
  const ulen = (f[38]! << 8) | f[39]!;
  const saved = [f[40]!, f[41]!];
  f[40] = 0;
  f[41] = 0;
  const s = csum16(f, 34, 34 + ulen, udpPseudoSum(f));
  f[40] = saved[0]!;
  f[41] = saved[1]!;
  return ~s & 0xffff;
}

/** What parseUdp() extracts. */
export interface Udp { sport: number; dport: number; payload: string; srcMac: string; dstMac: string }

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** Parses an Ethernet/IPv4/UDP frame; null for anything else. */
export function parseUdp(f: Uint8Array): Udp | null {
  if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) return null;
  const u = 14 + (f[14]! & 0x0f) * 4;
  const ulen = (f[u + 4]! << 8) | f[u + 5]!;
  return {
    sport: (f[u]! << 8) | f[u + 1]!,
    dport: (f[u + 2]! << 8) | f[u + 3]!,
    payload: Buffer.from(f.subarray(u + 8, u + ulen)).toString(),
    dstMac: hex(f.subarray(0, 6)),
    srcMac: hex(f.subarray(6, 12)),
  };
}

/** ICMP type of an Ethernet/IPv4 ICMP frame, or -1. */
export function icmpType(f: Uint8Array): number {
  if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 1) return -1;
  return f[14 + (f[14]! & 0x0f) * 4]!;
}

/** struct virtio_net_hdr, little-endian fields. */
export interface VnetHdr { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number }

/** Reads the virtio-net header in the 10 bytes before `off`. */
export function vnetHdr(b: Uint8Array, off: number): VnetHdr {
  const dv = new DataView(b.buffer, b.byteOffset + off - VNET_HDR_LEN, VNET_HDR_LEN);
  return {
    flags: dv.getUint8(0), gsoType: dv.getUint8(1), hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true), csumStart: dv.getUint16(6, true), csumOffset: dv.getUint16(8, true),
  };
}

/** Writes a virtio-net header into the 10 bytes before `off`. */
export function setVnetHdr(b: Uint8Array, off: number, h: Partial<VnetHdr>): void {
  const dv = new DataView(b.buffer, b.byteOffset + off - VNET_HDR_LEN, VNET_HDR_LEN);
  dv.setUint8(0, h.flags ?? 0);
  dv.setUint8(1, h.gsoType ?? 0);
  dv.setUint16(2, h.hdrLen ?? 0, true);
  dv.setUint16(4, h.gsoSize ?? 0, true);
  dv.setUint16(6, h.csumStart ?? 0, true);
  dv.setUint16(8, h.csumOffset ?? 0, true);
}

// ---------- namespaces and processes ----------

/** Prefix unique to this run for every netns and interface name (keep names <= 15 bytes). */
export const RUN_PREFIX = `tio${process.pid % 10000}`;

/** Runs `ip ...args` and returns stdout; throws on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves after ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls pred every 5 ms until it holds (true) or timeoutMs passes (false). */
export async function waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** A child process running in a netns, with its stdout split into lines. */
export interface NsChild { done: Promise<string>; lines: string[]; child: ChildProcess }

/** A test network namespace and the helper processes started in it. */
export class Netns {
  private readonly children = new Set<ChildProcess>();

  constructor(readonly name: string) {}

  /** Creates the namespace with lo up and IPv6 off (no router solicitations or DAD noise). */
  add(): void {
    ip('netns', 'add', this.name);
    execFileSync('ip', ['netns', 'exec', this.name, 'sysctl', '-qw',
      'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    ip('-n', this.name, 'link', 'set', 'lo', 'up');
  }

  /** Runs `node -e script ...args` in the namespace; killed after timeoutMs. */
  node(script: string, args: (string | number)[], timeoutMs = 10_000): NsChild {
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', script, ...args.map(String)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.children.add(child);
    const lines: string[] = [];
    let out = '';
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const done = new Promise<string>((resolve) => {
      child.on('exit', () => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve(out);
      });
    });
    return { done, lines, child };
  }

  /** Runs a command in the namespace, detached, killed after timeoutMs. */
  run(cmd: string, args: string[], timeoutMs = 10_000): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'ignore' });
    this.children.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    return new Promise((resolve) => child.on('exit', () => {
      clearTimeout(timer);
      this.children.delete(child);
      resolve();
    }));
  }

  /** MAC address of an interface in the namespace. */
  mac(ifname: string): string {
    return (JSON.parse(ip('-n', this.name, '-j', 'link', 'show', ifname)) as { address: string }[])[0]!.address;
  }

  /** True once `ifname` no longer exists in the namespace. */
  linkGone(ifname: string): boolean {
    try {
      ip('-n', this.name, 'link', 'show', ifname);
      return false;
    } catch {
      return true;
    }
  }

  /** Kills leftover helpers and deletes the namespace (and every device in it). */
  del(): void {
    for (const c of this.children) c.kill('SIGKILL');
    try { ip('netns', 'del', this.name); } catch { /* not there */ }
  }
}

/** node -e script; argv: host port count sport tag. Sends `count` datagrams "<tag>-<i>" back to back. */
export const SENDER = `
const [host, port, count, sport, tag] = process.argv.slice(1);
const d = require('dgram').createSocket('udp4');
d.bind(+sport, () => {
  let left = +count;
  for (let i = 0; i < +count; i++) d.send(Buffer.from(tag + '-' + i), +port, host, () => { if (--left === 0) d.close(); });
});`;

/** node -e script; argv: addr port count. Prints "ready", then each payload on a line; exits after count. */
export const RECEIVER = `
const [addr, port, count] = process.argv.slice(1);
const d = require('dgram').createSocket('udp4');
let n = 0;
d.on('message', (m) => { process.stdout.write(m.toString() + '\\n'); if (++n >= +count) d.close(); });
d.bind(+port, addr, () => process.stdout.write('ready\\n'));`;

/** Frames seen by collector(): UDP ones decoded, ICMP types, and every batch size. */
export interface Seen {
  frames: { udp: Udp; vnet: VnetHdr; off: number; len: number; slot: number }[];
  icmp: number[];
  batches: number[];
}

/** An empty Seen. */
export function seen(): Seen {
  return { frames: [], icmp: [], batches: [] };
}

/** A batch handler that decodes slots 0..n-1 of `slab` into `s`. */
export function collector(slab: Slab, s: Seen): (n: number) => void {
  return (n) => {
    s.batches.push(n);
    for (let i = 0; i < n; i++) {
      const off = slab.rxOff[i]!;
      const frame = slab.bytes.subarray(off, off + slab.rxLen[i]!);
      const udp = parseUdp(frame);
      if (udp) s.frames.push({ udp, vnet: vnetHdr(slab.bytes, off), off, len: frame.length, slot: i });
      else if (icmpType(frame) >= 0) s.icmp.push(icmpType(frame));
    }
  };
}

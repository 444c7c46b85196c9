/**
 * AF_PACKET ports: a raw packet socket bound to one interface, receiving
 * through a TPACKET_V2 or TPACKET_V3 ring (frames are copied from the ring
 * into slab slots and the ring memory goes back to the kernel at once) and
 * sending with sendmmsg() straight from the slab.
 *
 * Ring modes (`ring`):
 *   'v3'  blocks of variable-size frames, handed over when full or when the
 *         retire timer (`retireMs`, >= 1 ms) fires: dense, but a lone frame
 *         waits for the timer.
 *   'v2'  one fixed slot per frame (`frameSize`, default 64 KiB + 256 for
 *         a GRO super-frame) with its own status word: the socket is
 *         readable as soon as one frame lands, no timer; `frameCount`
 *         slots, rounded up to whole 2 MiB blocks (31 default slots each).
 *         The default: on the north-south benchmark it took connection
 *         setup p50 from ~2 ms to ~0.3 ms and connections/s 5-8x, with the
 *         same throughput; a 100-150 kpps flood lost ~6 % before the
 *         datapath against ~1 % with V3 (BENCHMARKS.md, notes).
 *
 * The socket never sees frames leaving the interface (PACKET_IGNORE_OUTGOING,
 * or a pkttype filter on kernels without it), so what we send is not read
 * back. With `vnetHdr` (default) the ring and sendmmsg carry the 10-byte
 * virtio-net header (PACKET_VNET_HDR); if the kernel refuses it together with
 * the ring, the port opens without it and reports `vnetHdr: false`, and
 * received frames then get a zeroed header in the slab.
 *
 * API:
 *   openPacket(ifname, slab, opts)  -> NativePort (kind 'packet')
 *   PacketOptions, PACKET_DEFAULTS
 */
import { loadNative, type NativePort, type Slab } from './native.ts';

/** Options for openPacket(). */
export interface PacketOptions {
  /** Ring version: 'v2' (default; per-frame hand-over) or 'v3' (block ring with a retire timer). */
  ring?: 'v2' | 'v3';
  /** V2: number of frame slots (rounded up to whole 2 MiB blocks; default 496, 32 MiB). */
  frameCount?: number;
  /** V2: bytes per slot, a multiple of 16 (default 65792: a 64 KiB GRO super-frame plus headers, 31 per block); longer frames are counted as truncated. */
  frameSize?: number;
  /** V3: ring block size in bytes: a multiple of the page size, at least one 64 KiB super-frame (default 1 MiB). */
  blockSize?: number;
  /** V3: number of ring blocks (default 16). */
  blockCount?: number;
  /** V3: block retire timeout in ms: the longest a lone frame waits in a part-filled block (default 1; 0 lets the kernel pick from the link speed). */
  retireMs?: number;
  /** Ask for PACKET_VNET_HDR (default true); check port.vnetHdr for what the kernel granted. */
  vnetHdr?: boolean;
  /** Put the interface into promiscuous mode while the socket is open (default false). */
  promisc?: boolean;
}

/** Defaults used for omitted PacketOptions. */
export const PACKET_DEFAULTS: Readonly<Required<PacketOptions>> = Object.freeze({
  ring: 'v2',
  frameCount: 496,
  frameSize: 65536 + 256,
  blockSize: 1 << 20,
  blockCount: 16,
  retireMs: 1,
  vnetHdr: true,
  promisc: false,
});

/** Opens an AF_PACKET socket with an RX ring on interface `ifname` and binds it to `slab`. */
export function openPacket(ifname: string, slab: Slab, opts: PacketOptions = {}): NativePort {
  const o = { ...PACKET_DEFAULTS, ...opts };
  return loadNative().openPacket(
    ifname, slab.buffer, slab.rxOff, slab.rxLen,
    o.blockSize, o.blockCount, o.retireMs, o.vnetHdr, o.promisc,
    o.ring === 'v2' ? 2 : 3, o.frameCount, o.frameSize,
  );
}

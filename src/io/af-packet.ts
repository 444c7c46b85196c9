/**
 * AF_PACKET ports: a raw packet socket bound to one interface, receiving
 * through a TPACKET_V3 ring (frames are copied from ring blocks into slab
 * slots, a block goes back to the kernel as soon as it is consumed) and
 * sending with sendmmsg() straight from the slab.
 *
 * The socket never sees frames leaving the interface (PACKET_IGNORE_OUTGOING,
 * or a pkttype filter on kernels without it), so what we send is not read
 * back. With `vnetHdr` (default) the ring and sendmmsg carry the 10-byte
 * virtio-net header (PACKET_VNET_HDR); if the kernel refuses it together with
 * the V3 ring, the port opens without it and reports `vnetHdr: false`, and
 * received frames then get a zeroed header in the slab.
 *
 * API:
 *   openPacket(ifname, slab, opts)  -> NativePort (kind 'packet')
 *   PacketOptions, PACKET_DEFAULTS
 */
import { loadNative, type NativePort, type Slab } from './native.ts';

/** Options for openPacket(). */
export interface PacketOptions {
  /** Ring block size in bytes: a multiple of the page size, at least one 64 KiB super-frame (default 1 MiB). */
  blockSize?: number;
  /** Number of ring blocks (default 16). */
  blockCount?: number;
  /** Block retire timeout in ms: the longest a lone frame waits in a part-filled block (default 1; 0 lets the kernel pick from the link speed). */
  retireMs?: number;
  /** Ask for PACKET_VNET_HDR (default true); check port.vnetHdr for what the kernel granted. */
  vnetHdr?: boolean;
  /** Put the interface into promiscuous mode while the socket is open (default false). */
  promisc?: boolean;
}

/** Defaults used for omitted PacketOptions. */
export const PACKET_DEFAULTS: Readonly<Required<PacketOptions>> = Object.freeze({
  blockSize: 1 << 20,
  blockCount: 16,
  retireMs: 1,
  vnetHdr: true,
  promisc: false,
});

/** Opens an AF_PACKET socket with a TPACKET_V3 ring on interface `ifname` and binds it to `slab`. */
export function openPacket(ifname: string, slab: Slab, opts: PacketOptions = {}): NativePort {
  const o = { ...PACKET_DEFAULTS, ...opts };
  return loadNative().openPacket(
    ifname, slab.buffer, slab.rxOff, slab.rxLen,
    o.blockSize, o.blockCount, o.retireMs, o.vnetHdr, o.promisc,
  );
}

/**
 * Slab layout shared by the native I/O addon and the TypeScript datapath.
 *
 * The datapath owns one slab: `BATCH_MAX` fixed slots in one ArrayBuffer.
 * A device drains up to `BATCH_MAX` frames per wake-up into slots 0..n-1
 * and describes them in two typed arrays (`off`, `len`); the datapath then
 * processes the whole batch and hands frames to their egress devices, again
 * as (off, len) arrays: one native call per device per batch.
 *
 *   slot i  = [i * SLOT_SIZE, (i + 1) * SLOT_SIZE)
 *
 *   +----------------------------+------------+------------------------------+
 *   | headroom (encap grows here)| virtio-net | Ethernet frame (up to 64 KiB |
 *   | HEADROOM - VNET_HDR_LEN    | header 10 B| + 14 B, TSO super-frames)    |
 *   +----------------------------+------------+------------------------------+
 *                                             ^ off[i]  (absolute slab offset)
 *
 * Invariant: the 10-byte virtio-net header (struct virtio_net_hdr, the
 * layout TUNSETVNETHDRSZ=10 and PACKET_VNET_HDR both use) always sits in the
 * 10 bytes right before `off[i]`. Encapsulation moves `off[i]` into the
 * headroom and must move the header with it. Devices without a virtio-net
 * header get a zeroed one on receive (no GSO, no partial checksum), so the
 * datapath never has to ask where a frame came from.
 */

/** Frames per batch: VPP's VLIB_FRAME_SIZE. */
export const BATCH_MAX = 256;
/** Bytes reserved before each frame for encapsulation and the virtio-net header. */
export const HEADROOM = 256;
/** sizeof(struct virtio_net_hdr) without num_buffers. */
export const VNET_HDR_LEN = 10;
/** Largest frame a slot holds: a 64 KiB IP super-frame plus its Ethernet header. */
export const FRAME_MAX = 65536 + 14;
/** Slot stride: headroom + frame, rounded up to 4 KiB pages. */
export const SLOT_SIZE = Math.ceil((HEADROOM + FRAME_MAX) / 4096) * 4096;

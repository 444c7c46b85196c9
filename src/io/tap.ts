/**
 * TAP ports: a /dev/net/tun device opened with IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, so every frame travels with its 10-byte virtio-net header in
 * the slab (the 10 bytes before off[i]). With offload on (the default) the
 * kernel may hand us TSO super-frames and frames with a partial checksum
 * (VIRTIO_NET_HDR_F_NEEDS_CSUM), which is what makes a userspace TAP
 * forwarder fast; the datapath must honour the header.
 *
 * The device lives while the fd is open. It is created in the caller's
 * network namespace and may then be moved (`ip link set NAME netns NS name
 * eth0`); the fd keeps working.
 *
 * API:
 *   openTap(name, slab, { offload })  -> NativePort (kind 'tap')
 *   TapOptions
 */
import { loadNative, type NativePort, type Slab } from './native.ts';

/** Options for openTap(). */
export interface TapOptions {
  /** TUNSETOFFLOAD with TUN_F_CSUM|TSO4|TSO6 (default true); false asks for plain, fully checksummed frames. */
  offload?: boolean;
}

/** Creates (or attaches to) TAP device `name` (at most 15 bytes; "tap%d" templates allowed) and binds it to `slab`. */
export function openTap(name: string, slab: Slab, opts: TapOptions = {}): NativePort {
  return loadNative().openTap(name, slab.buffer, slab.rxOff, slab.rxLen, opts.offload ?? true);
}

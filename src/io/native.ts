/**
 * Loader and types for the native I/O addon (native/, built by `npm install`).
 *
 * The addon moves frames between kernel devices and one shared slab (see
 * src/packet/layout.ts): a port drains up to BATCH_MAX frames per wake-up into
 * slots 0..n-1, writes their offsets and lengths into `slab.rxOff`/`slab.rxLen`
 * and calls `onBatch(n)` once; `send(off, len, count)` transmits a batch of
 * frames that live anywhere in the same slab. One native call per batch.
 *
 * API:
 *   loadNative()        the addon (throws a one-line "run npm install" error if missing)
 *   nativeAvailable()   whether the addon loads
 *   createSlab()        a slab with its RX descriptor arrays
 *   NativePort          the port object returned by openTap()/openPacket()
 *   STAT_*              indices into NativePort.stats
 *   readStats(port)     the stats as a named record
 *
 * Errors from the kernel are `Error`s shaped like Node's system errors:
 * `code` ('EPERM', 'ENODEV', ...), `errno` (negative, as in Node),
 * `syscall`, `interface`, and a message such as
 * `TUNSETIFF on tp12: Operation not permitted (EPERM)`. Bad arguments throw
 * TypeError/RangeError naming the argument.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { BATCH_MAX, FRAME_MAX, HEADROOM, SLOT_SIZE, VNET_HDR_LEN } from '../packet/layout.ts';

/** Frames handed to JS. */
export const STAT_RX_FRAMES = 0;
/** Bytes handed to JS (virtio-net header excluded). */
export const STAT_RX_BYTES = 1;
/** JS callbacks made (passes that produced at least one frame). */
export const STAT_RX_BATCHES = 2;
/** Read errors, runt frames and poll errors. */
export const STAT_RX_ERRORS = 3;
/** Frames the kernel accepted from send(). */
export const STAT_TX_FRAMES = 4;
/** Bytes the kernel accepted from send() (header excluded). */
export const STAT_TX_BYTES = 5;
/** send() calls with count > 0. */
export const STAT_TX_BATCHES = 6;
/** Frames the kernel refused (EAGAIN, ENOBUFS, EIO, ...). */
export const STAT_TX_ERRORS = 7;
/** AF_PACKET: frames the ring dropped (PACKET_STATISTICS tp_drops; updated by refreshStats()). */
export const STAT_RX_DROPS = 8;
/** Frames cut short (snaplen < len, or longer than FRAME_MAX); they are dropped, not delivered. */
export const STAT_RX_TRUNCATED = 9;
/** Poll wake-ups and extra ring passes, including empty ones. */
export const STAT_RX_WAKEUPS = 10;
/** AF_PACKET: times the ring queue froze because no block was free (updated by refreshStats()). */
export const STAT_RX_FREEZES = 11;
/** errno (positive) of the last RX failure, 0 if none. */
export const STAT_RX_LAST_ERRNO = 12;
/** errno (positive) of the last TX failure, 0 if none. */
export const STAT_TX_LAST_ERRNO = 13;
/** Length of NativePort.stats. */
export const STATS_LEN = 14;

/** Stat names in index order (keys of readStats()). */
export const STAT_NAMES = [
  'rxFrames', 'rxBytes', 'rxBatches', 'rxErrors',
  'txFrames', 'txBytes', 'txBatches', 'txErrors',
  'rxDrops', 'rxTruncated', 'rxWakeups', 'rxFreezes',
  'rxLastErrno', 'txLastErrno',
] as const;

/** A stat name. */
export type StatName = (typeof STAT_NAMES)[number];

/** The slab all ports share, plus the RX descriptors a port fills before onBatch(n). */
export interface Slab {
  /** BATCH_MAX slots of SLOT_SIZE bytes; a plain (non-shared) ArrayBuffer. */
  readonly buffer: ArrayBuffer;
  /** Byte view over the whole slab. */
  readonly bytes: Uint8Array;
  /** rxOff[i]: absolute slab offset of received frame i (its virtio-net header is the 10 bytes before). */
  readonly rxOff: Uint32Array;
  /** rxLen[i]: length of received frame i, virtio-net header excluded. */
  readonly rxLen: Uint32Array;
}

/** Called once per drained batch; frames are in slab slots 0..n-1, described by rxOff/rxLen. */
export type BatchHandler = (n: number) => void;
/** Called once if the port fails for good (device deleted, slab detached); polling has stopped. */
export type PortErrorHandler = (err: Error) => void;

/** A TAP device or AF_PACKET socket bound to the slab it was opened with. */
export interface NativePort {
  /** 'tap' for /dev/net/tun, 'packet' for AF_PACKET with a TPACKET_V2/V3 ring. */
  readonly kind: 'tap' | 'packet';
  /** The file descriptor; -1 after close(). */
  readonly fd: number;
  /** Interface name (as the kernel named it, for TAP templates like "tap%d"). */
  readonly name: string;
  /** Interface index in the namespace where the port was opened. */
  readonly ifindex: number;
  /** Whether frames carry the 10-byte virtio-net header to and from the kernel. */
  readonly vnetHdr: boolean;
  /** Counters the addon increments; index with STAT_*. */
  readonly stats: Float64Array;
  /** Starts polling on this thread's event loop; replaces any previous handlers. Keeps the port alive until stop()/close(). */
  start(onBatch: BatchHandler, onError?: PortErrorHandler): void;
  /** Stops polling; idempotent, safe inside onBatch. */
  stop(): void;
  /**
   * Sends frames off[i]..off[i]+len[i) (i < count) of the shared slab; on a
   * vnet port the 10 bytes before off[i] go out as the virtio-net header.
   * Returns frames accepted; refused frames are counted in STAT_TX_ERRORS.
   */
  send(off: Uint32Array, len: Uint32Array, count: number): number;
  /** AF_PACKET: whether the RX ring holds a frame user space may read now (nothing is consumed); false for TAP. */
  pending(): boolean;
  /** Reads kernel-side counters (ring drops) into stats and returns stats. */
  refreshStats(): Float64Array;
  /** Stops polling and closes the fd (a TAP device disappears); idempotent, safe inside onBatch. */
  close(): void;
}

/** The raw addon exports (positional arguments; use openTap()/openPacket() instead). */
export interface NativeAddon {
  readonly layout: {
    readonly batchMax: number;
    readonly slotSize: number;
    readonly headroom: number;
    readonly vnetHdrLen: number;
    readonly frameMax: number;
  };
  readonly statsLen: number;
  openTap(name: string, slab: ArrayBuffer, rxOff: Uint32Array, rxLen: Uint32Array, offload: boolean): NativePort;
  openPacket(
    ifname: string, slab: ArrayBuffer, rxOff: Uint32Array, rxLen: Uint32Array,
    blockSize: number, blockCount: number, retireMs: number, vnetHdr: boolean, promisc: boolean,
    ringVersion: number, frameCount: number, frameSize: number,
  ): NativePort;
  /** Folded RFC 1071 sum of bytes[off .. off+len) (= fold(sum16(...)) in wire/checksum.ts). */
  csumFold(bytes: Uint8Array, off: number, len: number): number;
}

/** Absolute path of the built addon. */
export const NATIVE_PATH = fileURLToPath(
  new URL('../../native/build/Release/tapestry_native.node', import.meta.url),
);

let cached: NativeAddon | undefined;

/** Loads the addon once per thread and checks it was built for this slab layout. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(NATIVE_PATH)) {
    throw new Error(`tapestry: native addon not built (${NATIVE_PATH} missing); run \`npm install\``);
  }
  const require = createRequire(import.meta.url);
  const addon = require(NATIVE_PATH) as NativeAddon;
  const l = addon.layout;
  if (
    l.batchMax !== BATCH_MAX || l.slotSize !== SLOT_SIZE || l.headroom !== HEADROOM ||
    l.vnetHdrLen !== VNET_HDR_LEN || l.frameMax !== FRAME_MAX || addon.statsLen !== STATS_LEN
  ) {
    throw new Error('tapestry: native addon was built for another slab layout; run `npm install` to rebuild');
  }
  cached = addon;
  return addon;
}

/** True if the addon is built and loads on this machine. */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

/** Allocates a zeroed slab (BATCH_MAX * SLOT_SIZE bytes, plus `extraBytes` of scratch behind the slots) and its RX descriptor arrays. */
export function createSlab(extraBytes = 0): Slab {
  const buffer = new ArrayBuffer(BATCH_MAX * SLOT_SIZE + extraBytes);
  return {
    buffer,
    bytes: new Uint8Array(buffer),
    rxOff: new Uint32Array(BATCH_MAX),
    rxLen: new Uint32Array(BATCH_MAX),
  };
}

/** Byte offset of slot i's frame: i * SLOT_SIZE + HEADROOM. */
export function slotOffset(i: number): number {
  return i * SLOT_SIZE + HEADROOM;
}

/** Copies a port's counters into a named record. */
export function readStats(port: NativePort): Record<StatName, number> {
  const s = port.refreshStats();
  const out = {} as Record<StatName, number>;
  STAT_NAMES.forEach((name, i) => { out[name] = s[i]!; });
  return out;
}

/**
 * Device: where the engine sends frames. A native TAP or AF_PACKET port, or
 * an in-memory device for tests (frames in, frames out, no kernel).
 *
 * API:
 *   Device               { name, send(off, len, count) -> frames accepted }
 *   CaptureDevice        records copies of everything sent to it (tests)
 */
import { VNET_HDR_LEN } from '../packet/layout.ts';

/** Something frames can be sent out of: one call per batch. */
export interface Device {
  readonly name: string;
  /** Send `count` frames described by absolute slab offsets and lengths. */
  send(off: Uint32Array, len: Uint32Array, count: number): number;
}

/** A device that keeps a copy of every frame (and its virtio-net header) sent to it. */
export class CaptureDevice implements Device {
  readonly frames: Uint8Array[] = [];
  readonly vnet: Uint8Array[] = [];
  /** Number of send() calls: one per batch, never one per frame. */
  sends = 0;
  constructor(
    readonly name: string,
    private readonly slab: Uint8Array,
  ) {}
  send(off: Uint32Array, len: Uint32Array, count: number): number {
    this.sends++;
    for (let k = 0; k < count; k++) {
      this.frames.push(this.slab.slice(off[k]!, off[k]! + len[k]!));
      this.vnet.push(this.slab.slice(off[k]! - VNET_HDR_LEN, off[k]!));
    }
    return count;
  }
  /** Take and clear what was captured. */
  take(): Uint8Array[] {
    const f = this.frames.splice(0);
    this.vnet.length = 0;
    return f;
  }
}

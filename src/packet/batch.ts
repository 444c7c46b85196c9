/**
 * FrameBatch: one vector of frames moving through the pipeline together,
 * struct-of-arrays over the shared slab (VPP's frame, Snabb's link batch).
 *
 * API:
 *   new FrameBatch(slabBuffer, off?, len?)   off/len may be the native rx descriptors
 *   b.n, b.port, b.now                       batch size, ingress port id, time (ms)
 *   b.off[i], b.len[i]                       frame i = buf[off[i] .. off[i]+len[i])
 *   b.ret[i], b.next[i], b.out[i], b.dir[i]  verdict / tail call / egress port / direction
 *   b.meta[i*META_SLOTS + CB.*]              per-frame scratch (Cilium's ctx_store_meta)
 *   b.reset(n, port, now)                    start a new batch
 *   b.load(frames, port, now)                copy frames in (tests, injected traffic)
 *   b.frame(i)                               copy of frame i (tests and control path only)
 *   b.push(i, bytes) / b.pull(i, bytes)      move the frame start into/out of headroom
 *
 * Frames are never copied on the packet path: stages bind views at off[i].
 * The virtio-net header sits in the VNET_HDR_LEN bytes before off[i]
 * (packet/layout.ts); push/pull move it along with the start.
 */
import { BATCH_MAX, HEADROOM, SLOT_SIZE, VNET_HDR_LEN } from './layout.ts';

/** Per-frame metadata slots (u32 each), like skb->cb[] in Cilium. */
export const META_SLOTS = 8;

/** Names of the metadata slots, after Cilium's CB_* (bpf/lib/common.h). */
export const CB = {
  SRC_LABEL: 0,
  IFINDEX: 1,
  /** Local endpoint ID a frame is being delivered to (tail_call_policy's target). */
  DST_ENDPOINT_ID: 2,
  POLICY: 3,
  CT_STATE: 4,
  NAT: 5,
  FROM_HOST: 6,
  DELIVERY_REDIRECT: 7,
} as const;

/**
 * CB.CT_STATE: the frame's last conntrack result, for trace reasons and
 * monitor aggregation. 0 = no lookup ran; otherwise CT_STATE_SET | (the
 * result, CT_NEW..CT_RELATED, in the low byte) | CT_STATE_REPORT when
 * conntrack said to report the packet (CtState.report).
 */
export const CT_STATE_SET = 0x100;
export const CT_STATE_REPORT = 0x200;

/** Allocate a slab big enough for one batch. */
export function allocSlab(): ArrayBuffer {
  return new ArrayBuffer(BATCH_MAX * SLOT_SIZE);
}

/** One batch of frames over a slab. */
export class FrameBatch {
  /** The whole slab; frame i lives at buf[off[i] .. off[i] + len[i]). */
  readonly buf: Uint8Array;
  /** Number of frames in the batch. */
  n = 0;
  /** Engine port id every frame of this batch arrived on. */
  port = 0;
  /** Time of this batch, ms (monotonic; passed in, never read by stages). */
  now = 0;
  /** Frame start, absolute slab offset. */
  readonly off: Uint32Array;
  /** Frame length in bytes (virtio-net header excluded). */
  readonly len: Uint32Array;
  /** Verdict: XDP_* / TC_ACT_* or a negative DROP_* code. */
  readonly ret = new Int32Array(BATCH_MAX);
  /** Tail-call target (CALL.*), 0 when the frame has reached its verdict. */
  readonly next = new Uint8Array(BATCH_MAX);
  /** Tail calls taken so far (the kernel stops at 33). */
  readonly hops = new Uint8Array(BATCH_MAX);
  /** Egress port id for TC_ACT_REDIRECT / XDP_REDIRECT. */
  readonly out = new Uint16Array(BATCH_MAX);
  /** Accounting direction (DIR.*). */
  readonly dir = new Uint8Array(BATCH_MAX);
  /** Extended error for drops (Cilium's ext_err). */
  readonly ext = new Int8Array(BATCH_MAX);
  /** Per-frame metadata, META_SLOTS u32 per frame. */
  readonly meta = new Uint32Array(BATCH_MAX * META_SLOTS);

  constructor(slab: ArrayBuffer, off?: Uint32Array, len?: Uint32Array) {
    if (slab.byteLength < BATCH_MAX * SLOT_SIZE) {
      throw new RangeError(`slab: ${slab.byteLength} bytes, need ${BATCH_MAX * SLOT_SIZE}`);
    }
    this.buf = new Uint8Array(slab);
    this.off = off ?? new Uint32Array(BATCH_MAX);
    this.len = len ?? new Uint32Array(BATCH_MAX);
  }

  /**
   * Start a batch of `n` frames already described by off/len. One loop
   * instead of a fill() per array: for the small batches of a latency-bound
   * flow the builtin calls cost more than the stores.
   */
  reset(n: number, port: number, now: number): void {
    this.n = n;
    this.port = port;
    this.now = now;
    const { ret, next, hops, out, dir, ext, meta } = this;
    for (let i = 0; i < n; i++) {
      ret[i] = 0;
      next[i] = 0;
      hops[i] = 0;
      out[i] = 0;
      dir[i] = 0;
      ext[i] = 0;
      const m = i * META_SLOTS;
      for (let j = 0; j < META_SLOTS; j++) meta[m + j] = 0;
    }
  }

  /**
   * Copy frames into slots 0..k-1 with a zeroed virtio-net header (or the
   * given 10-byte headers) and start a batch. Control path and tests only.
   */
  load(frames: readonly Uint8Array[], port: number, now: number, vnet?: readonly (Uint8Array | undefined)[]): void {
    if (frames.length > BATCH_MAX) throw new RangeError(`batch: ${frames.length} frames > ${BATCH_MAX}`);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (f.length > SLOT_SIZE - HEADROOM) throw new RangeError(`batch: frame ${i} is ${f.length} bytes`);
      const o = i * SLOT_SIZE + HEADROOM;
      const h = vnet?.[i];
      if (h) this.buf.set(h.subarray(0, VNET_HDR_LEN), o - VNET_HDR_LEN);
      else this.buf.fill(0, o - VNET_HDR_LEN, o);
      this.buf.set(f, o);
      this.off[i] = o;
      this.len[i] = f.length;
    }
    this.reset(frames.length, port, now);
  }

  /** Copy of frame i (tests, pcap, control path). */
  frame(i: number): Uint8Array {
    return this.buf.slice(this.off[i]!, this.off[i]! + this.len[i]!);
  }

  /** Copy of frame i's virtio-net header. */
  vnetHeader(i: number): Uint8Array {
    return this.buf.slice(this.off[i]! - VNET_HDR_LEN, this.off[i]!);
  }

  /**
   * Grow frame i at the front by `bytes` (encapsulation), moving the
   * virtio-net header with it. Returns false if the headroom is exhausted.
   */
  push(i: number, bytes: number): boolean {
    const o = this.off[i]!;
    const slotStart = o - (o % SLOT_SIZE);
    if (o - bytes - VNET_HDR_LEN < slotStart) return false;
    this.buf.copyWithin(o - bytes - VNET_HDR_LEN, o - VNET_HDR_LEN, o);
    this.off[i] = o - bytes;
    this.len[i] = this.len[i]! + bytes;
    return true;
  }

  /** Shrink frame i at the front by `bytes` (decapsulation), moving the virtio-net header. */
  pull(i: number, bytes: number): boolean {
    if (bytes > this.len[i]!) return false;
    const o = this.off[i]!;
    this.buf.copyWithin(o + bytes - VNET_HDR_LEN, o - VNET_HDR_LEN, o);
    this.off[i] = o + bytes;
    this.len[i] = this.len[i]! - bytes;
    return true;
  }
}

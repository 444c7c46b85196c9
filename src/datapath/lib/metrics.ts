/**
 * Datapath counters: drops and forwards by reason and direction, kept in a
 * typed array the datapath bumps in place (Cilium's cilium_metrics map,
 * key {reason, dir}, value {count, bytes}).
 *
 * API:
 *   new Metrics(buffer?)            counters over a (Shared)ArrayBuffer
 *   m.drop(dir, code, bytes)        count one drop (code negative, DROP_*)
 *   m.forward(dir, bytes)           count one forwarded frame
 *   m.fault(n)                      a batch of n frames lost to a datapath exception
 *   m.snapshot()                    { drops: [...], forwards: [...] } (control path)
 *
 * Allocated on a SharedArrayBuffer by the datapath worker so the agent's
 * main thread reads the counters without asking the worker; only the
 * worker writes. Counts are float64: exact up to 2^53, no 32-bit wrap.
 */
import { DIR_NAMES } from '../../engine/verdict.ts';
import { dropReasonString } from './drop-reasons.ts';

const REASONS = 256;
const DIRS = 4;
const DROP_COUNT = 0;
const DROP_BYTES = DROP_COUNT + REASONS * DIRS;
const FWD_COUNT = DROP_BYTES + REASONS * DIRS;
const FWD_BYTES = FWD_COUNT + DIRS;
const FAULT_BATCHES = FWD_BYTES + DIRS;
const FAULT_FRAMES = FAULT_BATCHES + 1;
const SIZE = FAULT_FRAMES + 1;

/** One row of a counters snapshot. */
export interface DropRow {
  reason: number;
  reasonString: string;
  direction: string;
  count: number;
  bytes: number;
}

/** Forward counters of one direction. */
export interface ForwardRow {
  direction: string;
  count: number;
  bytes: number;
}

/** Drop and forward counters. */
export class Metrics {
  /** Bytes a Metrics needs. */
  static readonly BYTES = SIZE * 8;
  readonly c: Float64Array;

  constructor(buffer: ArrayBufferLike = new ArrayBuffer(Metrics.BYTES)) {
    this.c = new Float64Array(buffer, 0, SIZE);
  }

  /** Count a drop; `code` is a negative DROP_* value. */
  drop(dir: number, code: number, bytes: number): void {
    const k = (dir & 3) * REASONS + ((-code) & 0xff);
    this.c[DROP_COUNT + k]! += 1;
    this.c[DROP_BYTES + k]! += bytes;
  }

  /** Count a forwarded frame. */
  forward(dir: number, bytes: number): void {
    this.c[FWD_COUNT + (dir & 3)]! += 1;
    this.c[FWD_BYTES + (dir & 3)]! += bytes;
  }

  /** Count a batch lost because a program threw (a bug; never expected). */
  fault(frames: number): void {
    this.c[FAULT_BATCHES]! += 1;
    this.c[FAULT_FRAMES]! += frames;
  }

  /** Batches and frames lost to datapath exceptions. */
  faults(): { batches: number; frames: number } {
    return { batches: this.c[FAULT_BATCHES]!, frames: this.c[FAULT_FRAMES]! };
  }

  /** Drops of one reason code (either sign), all directions. */
  dropsOf(code: number): number {
    const r = (code < 0 ? -code : code) & 0xff;
    let s = 0;
    for (let d = 0; d < DIRS; d++) s += this.c[DROP_COUNT + d * REASONS + r]!;
    return s;
  }

  /** Non-zero counters, for status, metrics and the API. */
  snapshot(): { drops: DropRow[]; forwards: ForwardRow[]; faults: { batches: number; frames: number } } {
    const drops: DropRow[] = [];
    for (let d = 0; d < DIRS; d++) {
      for (let r = 0; r < REASONS; r++) {
        const count = this.c[DROP_COUNT + d * REASONS + r]!;
        if (count === 0) continue;
        drops.push({
          reason: r,
          reasonString: dropReasonString(r),
          direction: DIR_NAMES[d]!,
          count,
          bytes: this.c[DROP_BYTES + d * REASONS + r]!,
        });
      }
    }
    const forwards: ForwardRow[] = [];
    for (let d = 0; d < DIRS; d++) {
      const count = this.c[FWD_COUNT + d]!;
      if (count !== 0) forwards.push({ direction: DIR_NAMES[d]!, count, bytes: this.c[FWD_BYTES + d]! });
    }
    return { drops, forwards, faults: this.faults() };
  }
}

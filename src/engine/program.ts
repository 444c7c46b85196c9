/**
 * Program: a stage of the pipeline, run over a vector of frames.
 *
 * API:
 *   Program        { name, run(b, vec, n) }
 *   ProgramTable   what the engine needs of a program array: get(callId)
 *   tailCall(b, i, id) / verdict(b, i, ret) / redirect(b, i, port) / drop(b, i, code, ext)
 *
 * A program processes the frames vec[0..n) of a batch (VPP's node function
 * over a frame of buffer indices). For each frame it either ends with a
 * verdict in `b.ret[i]` (XDP_* / TC_ACT_* or a negative DROP_* code) or
 * asks for a tail call by writing a CALL.* id into `b.next[i]`; the engine
 * then groups the frames by tail-call target and runs each target once over
 * its group. Programs never send, never count and never allocate: the
 * engine's single exit does the accounting and the I/O.
 */
import type { FrameBatch } from '../packet/batch.ts';
import { TC } from './verdict.ts';

/** A pipeline stage. */
export interface Program {
  /** Name for traces and errors, after the Cilium section it mirrors. */
  readonly name: string;
  /** Process frames vec[0..n) of `b`. */
  run(b: FrameBatch, vec: Uint16Array, n: number): void;
}

/** Program array lookup, as the engine uses it (maps/prog-array satisfies it). */
export interface ProgramTable {
  get(id: number): Program | undefined;
}

/** End frame i with a tail call to program-array slot `id`. */
export function tailCall(b: FrameBatch, i: number, id: number): void {
  b.next[i] = id;
}

/** End frame i with a verdict. */
export function verdict(b: FrameBatch, i: number, ret: number): void {
  b.ret[i] = ret;
  b.next[i] = 0;
}

/** End frame i by redirecting it out of engine port `port` (tc redirect). */
export function redirect(b: FrameBatch, i: number, port: number): void {
  b.out[i] = port;
  b.ret[i] = TC.REDIRECT;
  b.next[i] = 0;
}

/** End frame i with a drop: `code` is a negative DROP_* value. */
export function drop(b: FrameBatch, i: number, code: number, ext = 0): void {
  b.ret[i] = code;
  b.ext[i] = ext;
  b.next[i] = 0;
}

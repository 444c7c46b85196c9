/**
 * Time for the datapath. Logic never reads a clock: the engine reads one
 * once per batch and passes `now` (milliseconds, monotonic) down, so tests
 * drive time by hand (smoltcp's `receive(timestamp)`).
 *
 * API: Clock, monotonicClock, ManualClock
 */

/** Source of monotonic milliseconds. */
export interface Clock {
  now(): number;
}

/** The process's monotonic clock (performance.now, ms with µs resolution). */
export const monotonicClock: Clock = { now: () => performance.now() };

/** A clock that only moves when told to: for tests and simulations. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  /** Move time forward by `ms`. */
  advance(ms: number): void {
    this.t += ms;
  }
  /** Jump to absolute time `ms`. */
  set(ms: number): void {
    this.t = ms;
  }
}

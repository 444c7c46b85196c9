/**
 * Big-endian loads and stores on a Uint8Array, shared by every view.
 *
 * API: get16/set16/get32/set32. No DataView: plain indexed reads inline well
 * in V8 and work at any alignment. `x << 24` is a signed 32-bit result in
 * JavaScript, so u32 reads end in `>>> 0` (the trap yamux's decoder notes).
 *
 * NB: the views do NOT call these; they spell the same expressions inline,
 * so a hot accessor never depends on a cross-module call being inlined. When
 * tsx loads these files as CommonJS (e.g. imported from a script outside
 * this "type": "module" package) every imported binding is read through an
 * export getter, and per-field calls into this module made an Eth+IPv4+TCP
 * parse probe several times slower. Use these in emit/parse (control path)
 * code and outside src/wire.
 */

/** Read a big-endian u16 at b[i]. */
export function get16(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

/** Write a big-endian u16 at b[i]. */
export function set16(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v & 0xff;
}

/** Read a big-endian u32 at b[i] as a non-negative number. */
export function get32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Write a big-endian u32 at b[i]. */
export function set32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

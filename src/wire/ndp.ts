/**
 * Neighbor Discovery (RFC 4861 §4): message types, options (§4.6), Repr.
 *
 *   0       1       2
 *   +-------+-------+-------------------------------------------
 *   | type  |length | value ... (length counts 8-octet units; 0 is invalid)
 *   +-------+-------+-------------------------------------------
 *   Source/Target Link-Layer Address (1/2): length 1, MAC at byte 2.
 *   MTU (5): length 1, reserved u16, MTU u32 at byte 4.
 *
 * NDP message fields are read through `Icmp6View` (icmp6.ts); this file
 * imports only its type, so there is no runtime import cycle.
 *
 * API: `NDISC_*` message types, `NdpOptIter`, `ndpOptionsStart(type)`,
 * `ndpFindLlAddr`, `ndpOptionsValid`, `ND_OPT_*`, `NDP_NA_*`/`NDP_RA_*` flag
 * bits, `NdpRepr` with `ndpParse`/`ndpEmit`/`ndpBufferLen`.
 */

import { ipv6Copy, macCopy } from './addr.ts';
import { get32, set16, set32 } from './bytes.ts';
import type { Icmp6View } from './icmp6.ts';

/** Router Solicitation. */
export const NDISC_ROUTER_SOLICITATION = 133;
/** Router Advertisement. */
export const NDISC_ROUTER_ADVERTISEMENT = 134;
/** Neighbor Solicitation. */
export const NDISC_NEIGHBOUR_SOLICITATION = 135;
/** Neighbor Advertisement. */
export const NDISC_NEIGHBOUR_ADVERTISEMENT = 136;
/** Redirect. */
export const NDISC_REDIRECT = 137;

/** NDP option: Source Link-Layer Address. */
export const ND_OPT_SOURCE_LL_ADDR = 1;
/** NDP option: Target Link-Layer Address. */
export const ND_OPT_TARGET_LL_ADDR = 2;
/** NDP option: Prefix Information. */
export const ND_OPT_PREFIX_INFO = 3;
/** NDP option: Redirected Header. */
export const ND_OPT_REDIRECT_HDR = 4;
/** NDP option: MTU. */
export const ND_OPT_MTU = 5;
/** NA flag: sender is a router. */
export const NDP_NA_ROUTER = 0x80;
/** NA flag: sent in response to an NS. */
export const NDP_NA_SOLICITED = 0x40;
/** NA flag: override an existing cache entry. */
export const NDP_NA_OVERRIDE = 0x20;
/** RA flag: managed address configuration. */
export const NDP_RA_MANAGED = 0x80;
/** RA flag: other configuration. */
export const NDP_RA_OTHER = 0x40;

/** Offset of the options from the ICMPv6 header for an NDP type, or -1 for other types. */
export function ndpOptionsStart(type: number): number {
  switch (type) {
    case NDISC_ROUTER_SOLICITATION: return 8;
    case NDISC_ROUTER_ADVERTISEMENT: return 16;
    case NDISC_NEIGHBOUR_SOLICITATION:
    case NDISC_NEIGHBOUR_ADVERTISEMENT: return 24;
    case NDISC_REDIRECT: return 40;
    default: return -1;
  }
}

/** `NdpOptIter.next()` result at the end of the options. */
export const NDP_OPT_DONE = -1;
/** `NdpOptIter.next()` result for a zero length or an option past the message (RFC 4861 §4.6). */
export const NDP_OPT_MALFORMED = -2;

/** Iterator over NDP options; allocate once, re-bind per packet. */
export class NdpOptIter {
  /** Packet bytes. */
  b!: Uint8Array;
  /** Offset in `b` of the current option. */
  off = 0;
  /** Current option type. */
  type = 0;
  /** Current option length in bytes. */
  len = 0;
  private pos = 0;
  private end = 0;

  /** Iterate options in b[start, end). */
  bind(b: Uint8Array, start: number, end: number): this {
    this.b = b;
    this.pos = start;
    this.end = end;
    return this;
  }

  /** Advance; returns the option type, NDP_OPT_DONE or NDP_OPT_MALFORMED. */
  next(): number {
    const p = this.pos;
    if (p >= this.end) return NDP_OPT_DONE;
    if (p + 2 > this.end) return NDP_OPT_MALFORMED;
    const l = this.b[p + 1] << 3;
    if (l === 0 || p + l > this.end) return NDP_OPT_MALFORMED;
    this.off = p;
    this.type = this.b[p];
    this.len = l;
    this.pos = p + l;
    return this.type;
  }
}

const optIter = new NdpOptIter();

/**
 * Offset in `b` of the MAC inside the first link-layer address option of
 * `type` (ND_OPT_SOURCE_LL_ADDR / ND_OPT_TARGET_LL_ADDR) among the options
 * in b[start, end); -1 if absent, -2 if malformed.
 */
export function ndpFindLlAddr(b: Uint8Array, start: number, end: number, type: number): number {
  const it = optIter.bind(b, start, end);
  for (;;) {
    const t = it.next();
    if (t === type) return it.len >= 8 ? it.off + 2 : -2;
    if (t < 0) return t === NDP_OPT_DONE ? -1 : -2;
  }
}

/** True when the options in b[start, end) are all well formed (non-zero length, inside the message). */
export function ndpOptionsValid(b: Uint8Array, start: number, end: number): boolean {
  const it = optIter.bind(b, start, end);
  let t: number;
  while ((t = it.next()) >= 0);
  return t === NDP_OPT_DONE;
}

/** Decoded NDP message (RFC 4861 §4); link-layer addresses are 6-byte MACs. */
export type NdpRepr =
  | { kind: 'rs'; sllao?: Uint8Array }
  | { kind: 'ra'; curHopLimit: number; flags: number; routerLifetime: number; reachableTime: number;
      retransTimer: number; sllao?: Uint8Array; mtu?: number }
  | { kind: 'ns'; target: Uint8Array; sllao?: Uint8Array }
  | { kind: 'na'; flags: number; target: Uint8Array; tllao?: Uint8Array }
  | { kind: 'redirect'; target: Uint8Array; dest: Uint8Array; tllao?: Uint8Array };

function llao(v: Icmp6View, type: number): Uint8Array | undefined {
  const at = v.findLlAddr(type);
  return at >= 0 ? v.b.slice(at, at + 6) : undefined;
}

/**
 * Read an NDP message into a new Repr; throws unless v.ndpCheckLen(). Options
 * other than the link-layer addresses and MTU are skipped.
 */
export function ndpParse(v: Icmp6View): NdpRepr {
  const t = v.type();
  if (!v.ndpCheckLen()) throw new Error(`icmp6: truncated or malformed type ${t}`);
  const addr = (off: number): Uint8Array => v.b.slice(off, off + 16);
  let r: NdpRepr;
  switch (t) {
    case NDISC_ROUTER_SOLICITATION:
      r = { kind: 'rs' };
      break;
    case NDISC_ROUTER_ADVERTISEMENT: {
      r = {
        kind: 'ra', curHopLimit: v.raCurHopLimit(), flags: v.raFlags(), routerLifetime: v.raRouterLifetime(),
        reachableTime: v.raReachableTime(), retransTimer: v.raRetransTimer(),
      };
      const it = optIter.bind(v.b, v.ndpOptionsOffset(), v.o + v.n);
      for (let ot; (ot = it.next()) >= 0;) if (ot === ND_OPT_MTU && it.len === 8) r.mtu = get32(v.b, it.off + 4);
      break;
    }
    case NDISC_NEIGHBOUR_SOLICITATION:
      r = { kind: 'ns', target: addr(v.targetOff()) };
      break;
    case NDISC_NEIGHBOUR_ADVERTISEMENT:
      r = { kind: 'na', flags: v.naFlags(), target: addr(v.targetOff()) };
      break;
    default:
      r = { kind: 'redirect', target: addr(v.targetOff()), dest: addr(v.destOff()) };
  }
  if (r.kind === 'na' || r.kind === 'redirect') {
    const m = llao(v, ND_OPT_TARGET_LL_ADDR);
    if (m) r.tllao = m;
  } else {
    const m = llao(v, ND_OPT_SOURCE_LL_ADDR);
    if (m) r.sllao = m;
  }
  return r;
}

/** Bytes ndpEmit writes for `r`. */
export function ndpBufferLen(r: NdpRepr): number {
  const ll = (m: Uint8Array | undefined): number => (m ? 8 : 0);
  switch (r.kind) {
    case 'rs': return 8 + ll(r.sllao);
    case 'ra': return 16 + ll(r.sllao) + (r.mtu !== undefined ? 8 : 0);
    case 'ns': return 24 + ll(r.sllao);
    case 'na': return 24 + ll(r.tllao);
    case 'redirect': return 40 + ll(r.tllao);
  }
}

function putLl(b: Uint8Array, at: number, type: number, mac: Uint8Array | undefined): number {
  if (!mac) return at;
  b[at] = type;
  b[at + 1] = 1;
  macCopy(mac, 0, b, at + 2);
  return at + 8;
}

/** Write an NDP message for `r` at b[o] with checksum 0 (code 0, reserved fields zero); returns ndpBufferLen(r). */
export function ndpEmit(r: NdpRepr, b: Uint8Array, o: number): number {
  const len = ndpBufferLen(r);
  b.fill(0, o, o + len);
  switch (r.kind) {
    case 'rs':
      b[o] = NDISC_ROUTER_SOLICITATION;
      putLl(b, o + 8, ND_OPT_SOURCE_LL_ADDR, r.sllao);
      break;
    case 'ra': {
      b[o] = NDISC_ROUTER_ADVERTISEMENT;
      b[o + 4] = r.curHopLimit;
      b[o + 5] = r.flags;
      set16(b, o + 6, r.routerLifetime);
      set32(b, o + 8, r.reachableTime);
      set32(b, o + 12, r.retransTimer);
      const at = putLl(b, o + 16, ND_OPT_SOURCE_LL_ADDR, r.sllao);
      if (r.mtu !== undefined) {
        b[at] = ND_OPT_MTU;
        b[at + 1] = 1;
        set32(b, at + 4, r.mtu);
      }
      break;
    }
    case 'ns':
      b[o] = NDISC_NEIGHBOUR_SOLICITATION;
      ipv6Copy(r.target, 0, b, o + 8);
      putLl(b, o + 24, ND_OPT_SOURCE_LL_ADDR, r.sllao);
      break;
    case 'na':
      b[o] = NDISC_NEIGHBOUR_ADVERTISEMENT;
      b[o + 4] = r.flags & 0xe0;
      ipv6Copy(r.target, 0, b, o + 8);
      putLl(b, o + 24, ND_OPT_TARGET_LL_ADDR, r.tllao);
      break;
    case 'redirect':
      b[o] = NDISC_REDIRECT;
      ipv6Copy(r.target, 0, b, o + 8);
      ipv6Copy(r.dest, 0, b, o + 24);
      putLl(b, o + 40, ND_OPT_TARGET_LL_ADDR, r.tllao);
      break;
  }
  return len;
}

/**
 * Packet capture at the datapath's hooks (tcpdump for Tapestry). Sessions
 * copy matching frames, with their verdict, into a bounded buffer the agent
 * pulls; the CLI writes them as pcapng (lib/pcapng.ts). While no session
 * runs the engine's `capture` observer is null: one null check per batch,
 * per queued frame and per drop.
 *
 * API:
 *   new CaptureHub(dp, wallClock)          wallClock(ms monotonic) -> ms since the epoch
 *   hub.start({ hooks, endpoint?, filter?, count }, now) -> session id
 *   hub.read(id, now) -> { records, done, taken, lost }   drains the session's buffer
 *   hub.stop(id)
 *   hub.expire(now)                        stops sessions nobody read for IDLE_MS
 *   parseFilter(s), matchFilter(f, buf, off, len)
 *
 * Hooks, as Cilium names its programs:
 *   from-container  frames read from a pod's TAP, before any program
 *   to-container    frames queued to a pod's TAP
 *   xdp             frames read from the uplink, with the XDP stage's verdict
 *                   (XDP_PASS, XDP_DROP — the prefilter —, XDP_TX, or a drop reason)
 *   from-netdev     frames read from the uplink, before any program
 *   to-netdev       frames queued to the uplink (not tunnel packets)
 *   from-overlay    frames right after decapsulation
 *   to-overlay      tunnel packets queued to the uplink
 *   from-host       frames read from tapestry_host
 *   to-host         frames handed to the node's stack
 *
 * A frame seen on a from-* hook is copied when the batch arrives and
 * committed when the batch is done, with "verdict: forwarded" or, when the
 * engine dropped it, "verdict: dropped (<Cilium's drop reason>)".
 */
import type { FrameBatch } from '../packet/batch.ts';
import { BATCH_MAX } from '../packet/layout.ts';
import type { CaptureObserver, Port } from '../engine/engine.ts';
import { dropReasonString } from './lib/drop-reasons.ts';
import { parseIpv4 } from '../wire/addr.ts';
import { XDP } from '../engine/verdict.ts';
import type { Datapath } from './datapath.ts';

export const HOOKS = ['from-container', 'to-container', 'xdp', 'from-netdev', 'to-netdev', 'from-overlay', 'to-overlay', 'from-host', 'to-host'] as const;
export type Hook = (typeof HOOKS)[number];

/** One captured frame. */
export interface CaptureRecord {
  hook: Hook;
  /** µs since the epoch. */
  tsUs: number;
  data: Uint8Array;
  /** "verdict: forwarded" or "verdict: dropped (<reason>)". */
  comment: string;
}

/** `host A`, `port N`, `host A and port N` (either order); empty matches everything. */
export interface CaptureFilter {
  host?: number;
  port?: number;
}

export interface CaptureOptions {
  hooks: readonly Hook[];
  /** Only frames of this endpoint: its TAP for *-container, its IPv4 as source or destination elsewhere. */
  endpoint?: number;
  filter?: string;
  /** Stop after this many frames. */
  count: number;
}

export interface CaptureRead {
  records: CaptureRecord[];
  /** The count was reached (or the session stopped): nothing more will come. */
  done: boolean;
  taken: number;
  /** Frames that matched but found the buffer full. */
  lost: number;
}

/** Most frames and bytes a session holds between two reads. */
export const BUFFER_FRAMES = 8192;
export const BUFFER_BYTES = 64 << 20;
/** A session nobody has read for this long is stopped (a CLI that died). */
export const IDLE_MS = 30_000;
export const MAX_COUNT = 1_000_000;

const FORWARDED = 'verdict: forwarded';

/** Parse `host A`, `port N`, `host A and port N`; throws on anything else. */
export function parseFilter(s: string): CaptureFilter {
  const f: CaptureFilter = {};
  const words = s.trim().split(/\s+/).filter(Boolean);
  let k = 0;
  while (k < words.length) {
    if (k > 0) {
      if (words[k] !== 'and') throw new Error(`filter: expected "and" at "${words[k]}"`);
      k++;
    }
    const what = words[k++];
    const arg = words[k++];
    if (arg === undefined) throw new Error(`filter: "${what ?? ''}" needs an argument`);
    if (what === 'host' && f.host === undefined) f.host = parseIpv4(arg);
    else if (what === 'port' && f.port === undefined) {
      const p = Number(arg);
      if (!/^\d+$/.test(arg) || p > 65535) throw new Error(`filter: bad port "${arg}"`);
      f.port = p;
    } else throw new Error(`filter: expected "host A" or "port N", got "${what} ${arg}"`);
  }
  return f;
}

/** Does the Ethernet frame at buf[off..off+len) match? (outer headers only; IPv4 for host, IPv4/IPv6 for port) */
export function matchFilter(f: CaptureFilter, buf: Uint8Array, off: number, len: number): boolean {
  if (f.host === undefined && f.port === undefined) return true;
  if (len < 14) return false;
  const et = (buf[off + 12]! << 8) | buf[off + 13]!;
  let l4 = -1;
  let proto = 0;
  if (et === 0x0800) {
    const ip = off + 14;
    if (len < 34) return false;
    if (f.host !== undefined) {
      const src = ((buf[ip + 12]! << 24) | (buf[ip + 13]! << 16) | (buf[ip + 14]! << 8) | buf[ip + 15]!) >>> 0;
      const dst = ((buf[ip + 16]! << 24) | (buf[ip + 17]! << 16) | (buf[ip + 18]! << 8) | buf[ip + 19]!) >>> 0;
      if (src !== f.host && dst !== f.host) return false;
    }
    proto = buf[ip + 9]!;
    // Only the first fragment carries ports.
    if (((buf[ip + 6]! & 0x1f) | buf[ip + 7]!) === 0) l4 = ip + (buf[ip]! & 0xf) * 4;
  } else if (et === 0x86dd) {
    if (f.host !== undefined || len < 54) return false;
    proto = buf[off + 20]!;
    l4 = off + 54;
  } else return false;
  if (f.port === undefined) return true;
  if ((proto !== 6 && proto !== 17 && proto !== 132) || l4 < 0 || l4 + 4 > off + len) return false;
  const sp = (buf[l4]! << 8) | buf[l4 + 1]!;
  const dp = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  return sp === f.port || dp === f.port;
}

/** One capture: what it wants and what it has caught. */
class Session {
  readonly hooks = new Set<Hook>();
  readonly filter: CaptureFilter;
  readonly records: CaptureRecord[] = [];
  bytes = 0;
  taken = 0;
  lost = 0;
  lastRead: number;
  constructor(
    readonly id: number,
    opts: CaptureOptions,
    /** The endpoint's IPv4 (u32) when filtering by endpoint, 0 otherwise. */
    readonly epIp: number,
    now: number,
  ) {
    for (const h of opts.hooks) this.hooks.add(h);
    this.filter = opts.filter ? parseFilter(opts.filter) : {};
    this.count = opts.count;
    this.endpoint = opts.endpoint ?? 0;
    this.lastRead = now;
  }
  readonly count: number;
  readonly endpoint: number;

  get full(): boolean {
    return this.taken >= this.count;
  }

  /** Does frame i, seen at `hook` on `port`, belong to this session? */
  wants(hook: Hook, b: FrameBatch, i: number, port: Port): boolean {
    if (this.taken >= this.count || !this.hooks.has(hook)) return false;
    const off = b.off[i]!, len = b.len[i]!;
    if (this.endpoint !== 0) {
      if (port.spec.kind === 'lxc' && hook !== 'from-overlay') {
        if (port.spec.endpointId !== this.endpoint) return false;
      } else if (!matchFilter({ host: this.epIp }, b.buf, off, len)) return false;
    }
    return matchFilter(this.filter, b.buf, off, len);
  }

  /** Queue a record; false (and counted as lost) when the buffer is full. */
  push(r: CaptureRecord): boolean {
    if (this.records.length >= BUFFER_FRAMES || this.bytes + r.data.length > BUFFER_BYTES) {
      this.lost++;
      return false;
    }
    this.records.push(r);
    this.bytes += r.data.length;
    return true;
  }
}

/** codes[] mark of a frame the XDP stage dropped without a reason (the prefilter). */
const XDP_DROPPED = -0x10000;
const XDP_NAMES: Record<number, string> = { [XDP.ABORTED]: 'XDP_ABORTED', [XDP.DROP]: 'XDP_DROP', [XDP.PASS]: 'XDP_PASS', [XDP.TX]: 'XDP_TX', [XDP.REDIRECT]: 'XDP_REDIRECT' };

/** Records of the current batch taken at a from-* hook, waiting for their verdict. */
interface Pending {
  i: number;
  r: CaptureRecord;
}

/** Every capture session of one datapath; the engine's capture observer while any runs. */
export class CaptureHub implements CaptureObserver {
  private readonly sessions = new Map<number, Session>();
  private active: Session[] = [];
  private nextId = 1;
  private readonly pending: Pending[] = [];
  /** Drop code per frame of the current batch (0: not dropped). */
  private readonly codes = new Int32Array(BATCH_MAX);
  /** pending[xdpFrom..xdpTo): this batch's xdp-hook records (their verdict comes from the XDP stage). */
  private xdpFrom = 0;
  private xdpTo = 0;

  constructor(
    private readonly dp: Datapath,
    private readonly wallClock: (now: number) => number,
  ) {}

  start(opts: CaptureOptions, now: number): number {
    if (opts.hooks.length === 0) throw new Error('capture: at least one hook');
    for (const h of opts.hooks) if (!HOOKS.includes(h)) throw new Error(`capture: unknown hook "${h}" (${HOOKS.join(', ')})`);
    if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > MAX_COUNT) throw new Error(`capture: count must be 1..${MAX_COUNT}`);
    let epIp = 0;
    if (opts.endpoint !== undefined) {
      const ep = this.dp.endpoints.get(opts.endpoint);
      if (!ep) throw Object.assign(new Error(`capture: endpoint ${opts.endpoint} not found`), { code: 'ENOENT' });
      epIp = ep.ipv4 >>> 0;
    }
    const s = new Session(this.nextId++, opts, epIp, now);
    this.sessions.set(s.id, s);
    this.active.push(s);
    this.dp.engine.capture = this;
    return s.id;
  }

  read(id: number, now: number): CaptureRead {
    const s = this.get(id);
    s.lastRead = now;
    const records = s.records.splice(0);
    s.bytes = 0;
    return { records, done: !this.active.includes(s), taken: s.taken, lost: s.lost };
  }

  stop(id: number): void {
    const s = this.get(id);
    this.sessions.delete(id);
    this.deactivate(s);
  }

  expire(now: number): void {
    for (const s of this.sessions.values()) if (now - s.lastRead > IDLE_MS) this.stop(s.id);
  }

  private get(id: number): Session {
    const s = this.sessions.get(id);
    if (!s) throw Object.assign(new Error(`capture ${id} not found`), { code: 'ENOENT' });
    return s;
  }

  private deactivate(s: Session): void {
    const k = this.active.indexOf(s);
    if (k < 0) return;
    this.active.splice(k, 1);
    if (this.active.length === 0 && this.pending.length === 0) this.dp.engine.capture = null;
  }

  private record(s: Session, hook: Hook, b: FrameBatch, i: number): CaptureRecord {
    s.taken++;
    const o = b.off[i]!;
    return { hook, tsUs: Math.round(this.wallClock(b.now) * 1000), data: b.buf.slice(o, o + b.len[i]!), comment: FORWARDED };
  }

  /** Hold frame i for its verdict. */
  private hold(hook: Hook, b: FrameBatch, i: number, port: Port): void {
    for (const s of this.active) {
      if (!s.wants(hook, b, i, port)) continue;
      // Queued now, so records stay in time order; end() writes the verdict.
      const r = this.record(s, hook, b, i);
      if (s.push(r)) this.pending.push({ i, r });
    }
  }

  rx(b: FrameBatch, port: Port): void {
    const k = port.spec.kind;
    const hook: Hook | null = k === 'lxc' ? 'from-container' : k === 'netdev' ? 'from-netdev' : k === 'host' ? 'from-host' : null;
    this.codes.fill(0, 0, b.n);
    this.xdpFrom = this.pending.length;
    if (hook === null) return;
    if (port.spec.xdp !== undefined) for (let i = 0; i < b.n; i++) this.hold('xdp', b, i, port);
    this.xdpTo = this.pending.length;
    for (let i = 0; i < b.n; i++) this.hold(hook, b, i, port);
  }

  /** The XDP verdict of frame i goes into its xdp-hook records (the from-netdev ones wait for the end of the batch). */
  xdp(_b: FrameBatch, i: number, verdict: number): void {
    for (let k = this.xdpFrom; k < this.xdpTo; k++) {
      const p = this.pending[k]!;
      if (p.i === i) p.r.comment = verdict < 0 ? `verdict: XDP_DROP (${dropReasonString(verdict)})` : `verdict: ${XDP_NAMES[verdict] ?? `XDP ${verdict}`}`;
    }
    if (verdict === XDP.DROP || verdict === XDP.ABORTED) this.codes[i] = XDP_DROPPED;
  }

  decap(b: FrameBatch, i: number): void {
    const port = this.dp.engine.ports[b.port];
    if (port !== undefined) this.hold('from-overlay', b, i, port);
  }

  drop(_b: FrameBatch, i: number, code: number): void {
    this.codes[i] = code;
  }

  tx(b: FrameBatch, i: number, to: Port): void {
    const k = to.spec.kind;
    const hook: Hook | null = k === 'lxc' ? 'to-container' : k === 'host' ? 'to-host' : k === 'netdev' ? (this.isTunnel(b, i) ? 'to-overlay' : 'to-netdev') : null;
    if (hook === null) return;
    for (const s of this.active) if (s.wants(hook, b, i, to)) s.push(this.record(s, hook, b, i));
    this.retire();
  }

  end(_b: FrameBatch): void {
    for (let k = 0; k < this.pending.length; k++) {
      if (k >= this.xdpFrom && k < this.xdpTo) continue; // verdict set by xdp()
      const p = this.pending[k]!;
      const c = this.codes[p.i]!;
      if (c === XDP_DROPPED) p.r.comment = 'verdict: dropped (XDP_DROP)';
      else if (c < 0) p.r.comment = `verdict: dropped (${dropReasonString(c)})`;
    }
    this.xdpFrom = this.xdpTo = 0;
    this.pending.length = 0;
    this.retire();
    if (this.active.length === 0) this.dp.engine.capture = null;
  }

  /** Sessions that reached their count stop watching. */
  private retire(): void {
    for (const s of this.active.slice()) if (s.full) this.deactivate(s);
  }

  /** A UDP packet to this node's tunnel port (outer IPv4 header). */
  private isTunnel(b: FrameBatch, i: number): boolean {
    const tun = this.dp.tunnel;
    if (tun === null) return false;
    const buf = b.buf, o = b.off[i]!;
    if (b.len[i]! < 42 || buf[o + 12] !== 0x08 || buf[o + 13] !== 0x00 || buf[o + 23] !== 17) return false;
    const udp = o + 14 + (buf[o + 14]! & 0xf) * 4;
    return ((buf[udp + 2]! << 8) | buf[udp + 3]!) === tun.cfg.port;
  }
}

/**
 * The underlay neighbour table: IPv4 -> MAC for the uplink, kept by
 * Tapestry itself because the node's kernel never sees the uplink's frames.
 * Cilium leaves this to the kernel (bpf_fib_lookup + redirect_neigh); a
 * userspace datapath that owns the wire must do ARP on its own.
 *
 * API:
 *   new NeighTable({ maxPending?, retryMs?, staleMs? })
 *   n.lookup(ip) -> MAC offset in n.macs, or -1        packet path
 *   n.learn(ip, mac, macOff, now)                      from ARP replies/requests
 *   n.hold(ip, frame, now) -> true if an ARP request should go out now (frame: vnet header + frame)
 *   n.takeReady() -> [{ ip, frames }]                  frames whose neighbour resolved
 *   n.dump(now)                                        for status
 *
 * Like the kernel's arp_queue, up to `maxPending` (3) frames wait per
 * unresolved neighbour (copied: the slab is reused by the next batch);
 * requests are repeated at most every `retryMs` while frames wait. Entries
 * do not expire on their own: a node's underlay neighbours are few and
 * stable, and a changed MAC is learnt from the neighbour's own ARP.
 */
import { formatIpv4, formatMac } from '../../wire/addr.ts';

interface Pending {
  /** Frames waiting, each its virtio-net header + the frame. */
  frames: Uint8Array[];
  lastRequest: number;
}

/** The table. */
export class NeighTable {
  /** MACs, 6 bytes per entry, addressed by lookup()'s result. */
  macs = new Uint8Array(6 * 64);
  private readonly index = new Map<number, number>();
  private readonly updated: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private ready: { ip: number; frames: Uint8Array[] }[] = [];
  readonly maxPending: number;
  readonly retryMs: number;
  /** Frames dropped because the queue of their neighbour was full. */
  queueDrops = 0;

  constructor(opts: { maxPending?: number; retryMs?: number } = {}) {
    this.maxPending = opts.maxPending ?? 3;
    this.retryMs = opts.retryMs ?? 1000;
  }

  lookup(ip: number): number {
    const k = this.index.get(ip);
    return k === undefined ? -1 : k * 6;
  }

  /** Learn (or refresh) ip's MAC from buf[off..off+6). */
  learn(ip: number, buf: Uint8Array, off: number, now: number): void {
    let k = this.index.get(ip);
    if (k === undefined) {
      k = this.index.size;
      if ((k + 1) * 6 > this.macs.length) {
        const grown = new Uint8Array(this.macs.length * 2);
        grown.set(this.macs);
        this.macs = grown;
      }
      this.index.set(ip, k);
    }
    for (let j = 0; j < 6; j++) this.macs[k * 6 + j] = buf[off + j]!;
    this.updated[k] = now;
    const p = this.pending.get(ip);
    if (p !== undefined) {
      this.pending.delete(ip);
      if (p.frames.length > 0) this.ready.push({ ip, frames: p.frames });
    }
  }

  /**
   * Keep a copy of `frame` until ip resolves. Returns true when an ARP
   * request should be sent now (first frame, or the retry interval passed).
   */
  hold(ip: number, frame: Uint8Array | null, now: number): boolean {
    let p = this.pending.get(ip);
    if (p === undefined) {
      p = { frames: [], lastRequest: -Infinity };
      this.pending.set(ip, p);
    }
    if (frame !== null) {
      if (p.frames.length < this.maxPending) p.frames.push(frame);
      else this.queueDrops++;
    }
    if (now - p.lastRequest < this.retryMs) return false;
    p.lastRequest = now;
    return true;
  }

  /** Has anything resolved with frames waiting? (cheap check per batch) */
  get hasReady(): boolean {
    return this.ready.length > 0;
  }

  takeReady(): { ip: number; frames: Uint8Array[] }[] {
    const r = this.ready;
    this.ready = [];
    return r;
  }

  dump(now: number): { ip: string; mac: string; ageSeconds: number }[] {
    return [...this.index.entries()]
      .map(([ip, k]) => ({ ip: formatIpv4(ip), mac: formatMac(this.macs, k * 6), ageSeconds: Math.round((now - this.updated[k]!) / 1000) }))
      .sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  }

  /** Unresolved neighbours with frames or requests outstanding. */
  get unresolved(): number {
    return this.pending.size;
  }
}

/**
 * Engine: runs batches through the programs attached to a port, follows
 * tail calls group by group, and ends every frame at one exit that counts,
 * reports drops and hands frames to their egress devices in one call per
 * device (VPP's vlib_buffer_enqueue_to_next; Snabb's breathe).
 *
 * API:
 *   new Engine(progs, metrics)
 *   e.addPort(spec) -> port id           attach a device and its hook programs
 *   e.removePort(id)
 *   e.process(b)                         run batch b (b.port = ingress port)
 *   e.stackPort                          where TC_ACT_OK frames go (-1: none yet)
 *   e.onDrop, e.onForward                optional drop / forward observers (null = free)
 *   e.onReceive                          optional observer of each batch as it arrives (null = free)
 *   e.capture                            packet capture observer (null = free)
 *
 *           +-----+  PASS   +---------+  tail calls (grouped by CALL id)
 *   rx ---> | xdp | ------> | ingress | ---> ... ---> exit: drop | tx | redirect | stack
 *           +-----+         +---------+
 *
 * A port's `ingress` program is the tc hook on the device's receive side
 * (from-container on an endpoint TAP, from-netdev on the uplink). Redirects
 * go straight out of the target device, like Cilium's redirect to a peer
 * (the local-delivery path has already run the target endpoint's policy
 * stage through a tail call).
 */
import { BATCH_MAX } from '../packet/layout.ts';
import type { FrameBatch } from '../packet/batch.ts';
import { DROP } from '../datapath/lib/drop-reasons.ts';
import { CALL_SIZE } from '../datapath/lib/call-ids.ts';
import type { Metrics } from '../datapath/lib/metrics.ts';
import type { Device } from './device.ts';
import type { Program, ProgramTable } from './program.ts';
import { DIR, TC, XDP } from './verdict.ts';

/** The kernel refuses the 34th tail call in a chain (MAX_TAIL_CALL_CNT = 33). */
export const MAX_TAIL_CALLS = 33;

/** What a port is, for accounting and status. */
export type PortKind = 'lxc' | 'netdev' | 'host' | 'overlay' | 'test';

/** Everything the engine needs to know to attach a device. */
export interface PortSpec {
  readonly name: string;
  readonly kind: PortKind;
  readonly device: Device;
  /** Optional XDP program, run before `ingress`. */
  readonly xdp?: Program;
  /** tc ingress program for frames received on the device. */
  readonly ingress?: Program;
  /** Endpoint ID behind this port (lxc ports), 0 otherwise. */
  readonly endpointId?: number;
}

/** Per-port state: the TX queue of the current batch and counters. */
export class Port {
  readonly txOff = new Uint32Array(BATCH_MAX);
  readonly txLen = new Uint32Array(BATCH_MAX);
  txN = 0;
  /** Frames and batches received and sent, frames the device refused. */
  rxFrames = 0;
  rxBatches = 0;
  txFrames = 0;
  txBatches = 0;
  txRefused = 0;
  /** XDP verdict counters, indexed by XDP_*. */
  readonly xdpVerdicts = new Float64Array(5);
  /** Direction a frame is counted in when forwarded out of this port. */
  readonly fwdDir: number;
  constructor(
    readonly id: number,
    readonly spec: PortSpec,
  ) {
    this.fwdDir = spec.kind === 'lxc' ? DIR.INGRESS : DIR.EGRESS;
  }
}

/** Observer called for every frame queued to port `to` (trace points); absent by default. */
export type ForwardObserver = (b: FrameBatch, i: number, to: Port) => void;

/** Observer called with each batch before any program runs (from-* traces); absent by default. */
export type ReceiveObserver = (b: FrameBatch, port: Port) => void;

/** Observer called for every dropped frame; absent by default (costs nothing). */
export type DropObserver = (b: FrameBatch, i: number, code: number) => void;

/**
 * Packet capture (datapath/capture.ts): sees a batch as it arrives, before
 * any program, every frame queued to a port and every drop, and hears when
 * the batch is done (verdicts known). Absent by default: one null check.
 */
export interface CaptureObserver {
  rx(b: FrameBatch, port: Port): void;
  tx(b: FrameBatch, i: number, to: Port): void;
  drop(b: FrameBatch, i: number, code: number): void;
  /** Frame i was decapsulated (from-overlay). */
  decap(b: FrameBatch, i: number): void;
  /** The XDP program's verdict for frame i (XDP_* or a drop code). */
  xdp(b: FrameBatch, i: number, verdict: number): void;
  end(b: FrameBatch): void;
}

/** The batch engine. */
export class Engine {
  /** Ports by id; id 0 is never used so that 0 can mean "none". */
  readonly ports: (Port | undefined)[] = [undefined];
  /** True while the XDP stage's drops are accounted (observers tell the hook by it). */
  inXdp = false;
  /** Port receiving TC_ACT_OK frames (the node's stack); -1 until one exists. */
  stackPort = -1;
  onDrop: DropObserver | null = null;
  /** Observer of every frame handed to a port (traces); absent by default. */
  onForward: ForwardObserver | null = null;
  /** Observer of each batch on arrival (from-* traces); absent by default. */
  onReceive: ReceiveObserver | null = null;
  capture: CaptureObserver | null = null;
  /** Frames dropped at the exit because they named a port that is gone. */
  staleRedirects = 0;

  private readonly vec = new Uint16Array(BATCH_MAX);
  private readonly buckets = new Uint16Array(CALL_SIZE * BATCH_MAX);
  private readonly bucketVec: Uint16Array[] = [];
  private readonly bucketN = new Uint16Array(CALL_SIZE);
  /** Ports with frames queued in the current batch (preallocated: no array growth per batch). */
  private readonly dirty: (Port | undefined)[] = new Array<Port | undefined>(BATCH_MAX).fill(undefined);
  private nDirty = 0;

  constructor(
    private readonly progs: ProgramTable,
    private readonly metrics: Metrics,
  ) {
    for (let c = 0; c < CALL_SIZE; c++) this.bucketVec.push(this.buckets.subarray(c * BATCH_MAX, (c + 1) * BATCH_MAX));
  }

  /** Attach a device; returns its port id. */
  addPort(spec: PortSpec): number {
    let id = this.ports.indexOf(undefined, 1);
    if (id < 0) id = this.ports.length;
    if (id > 0xffff) throw new RangeError('engine: out of port ids');
    this.ports[id] = new Port(id, spec);
    return id;
  }

  /** Detach a port. Frames still redirected to it are dropped and counted. */
  removePort(id: number): void {
    if (id <= 0 || !this.ports[id]) return;
    this.ports[id] = undefined;
    if (this.stackPort === id) this.stackPort = -1;
  }

  /** Run batch `b` (frames 0..n-1, received on port b.port) through the pipeline. */
  process(b: FrameBatch): void {
    const port = this.ports[b.port];
    if (port === undefined || b.n === 0) return;
    port.rxFrames += b.n;
    port.rxBatches++;
    const vec = this.vec;
    let n = b.n;
    for (let k = 0; k < n; k++) vec[k] = k;
    const cap = this.capture;
    if (cap !== null) cap.rx(b, port);
    const rcv = this.onReceive;
    if (rcv !== null) rcv(b, port);

    if (port.spec.xdp !== undefined) n = this.runXdp(b, port, port.spec.xdp, vec, n);
    if (port.spec.ingress !== undefined) {
      this.runChain(b, port.spec.ingress, vec, n);
    } else {
      for (let k = 0; k < n; k++) b.ret[vec[k]!] = TC.OK;
    }
    this.exit(b, vec, n);
    if (cap !== null) cap.end(b);
    this.flush();
  }

  /** Run the XDP program; returns how many frames passed on (compacted into vec). */
  private runXdp(b: FrameBatch, port: Port, prog: Program, vec: Uint16Array, n: number): number {
    this.runChain(b, prog, vec, n);
    const cap = this.capture;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = vec[k]!;
      const r = b.ret[i]!;
      if (cap !== null) cap.xdp(b, i, r);
      if (r === XDP.PASS) {
        b.ret[i] = 0;
        vec[m++] = i;
        port.xdpVerdicts[XDP.PASS]!++;
        continue;
      }
      if (r < 0) {
        port.xdpVerdicts[XDP.DROP]!++;
        this.inXdp = true;
        this.dropFrame(b, i, r);
        this.inXdp = false;
      } else if (r === XDP.TX) {
        port.xdpVerdicts[XDP.TX]!++;
        this.enqueue(b, i, b.port);
      } else if (r === XDP.REDIRECT) {
        port.xdpVerdicts[XDP.REDIRECT]!++;
        this.enqueue(b, i, b.out[i]!);
      } else if (r === XDP.DROP) {
        port.xdpVerdicts[XDP.DROP]!++;
      } else {
        port.xdpVerdicts[XDP.ABORTED]!++;
      }
    }
    return m;
  }

  /**
   * Run `prog` over vec[0..n), then keep running tail-call targets, each
   * once over the group of frames that asked for it, until every frame has
   * a verdict. A missing slot or a chain past MAX_TAIL_CALLS ends the frame
   * with DROP_MISSED_TAIL_CALL, as a failed bpf_tail_call() does.
   */
  private runChain(b: FrameBatch, prog: Program, vec: Uint16Array, n: number): void {
    prog.run(b, vec, n);
    const next = b.next;
    const bucketN = this.bucketN;
    for (;;) {
      let pending = 0;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        const c = next[i]!;
        if (c === 0) continue;
        next[i] = 0;
        if (++b.hops[i]! > MAX_TAIL_CALLS || c >= CALL_SIZE) {
          b.ret[i] = DROP.MISSED_TAIL_CALL;
          continue;
        }
        this.bucketVec[c]![bucketN[c]!++] = i;
        pending++;
      }
      if (pending === 0) return;
      for (let c = 1; c < CALL_SIZE; c++) {
        const cn = bucketN[c]!;
        if (cn === 0) continue;
        bucketN[c] = 0;
        const target = this.progs.get(c);
        const bv = this.bucketVec[c]!;
        if (target === undefined) {
          for (let k = 0; k < cn; k++) b.ret[bv[k]!] = DROP.MISSED_TAIL_CALL;
        } else {
          target.run(b, bv, cn);
        }
      }
    }
  }

  /** The single exit: every frame is dropped, sent, or handed to the stack here. */
  private exit(b: FrameBatch, vec: Uint16Array, n: number): void {
    for (let k = 0; k < n; k++) {
      const i = vec[k]!;
      const r = b.ret[i]!;
      if (r < 0) this.dropFrame(b, i, r);
      else if (r === TC.REDIRECT) this.enqueue(b, i, b.out[i]!);
      else if (r === TC.OK || r === TC.UNSPEC) {
        if (this.stackPort > 0) this.enqueue(b, i, this.stackPort);
        else this.dropFrame(b, i, DROP.HOST_NOT_READY);
      } else if (r !== TC.STOLEN) this.dropFrame(b, i, DROP.INVALID);
    }
  }

  private dropFrame(b: FrameBatch, i: number, code: number): void {
    this.metrics.drop(b.dir[i]!, code, b.len[i]!);
    if (this.onDrop !== null) this.onDrop(b, i, code);
    if (this.capture !== null) this.capture.drop(b, i, code);
  }

  private enqueue(b: FrameBatch, i: number, portId: number): void {
    const p = this.ports[portId];
    if (p === undefined) {
      this.staleRedirects++;
      this.dropFrame(b, i, DROP.UNROUTABLE);
      return;
    }
    if (this.onForward !== null) this.onForward(b, i, p);
    if (this.capture !== null) this.capture.tx(b, i, p);
    if (p.txN === 0) this.dirty[this.nDirty++] = p;
    p.txOff[p.txN] = b.off[i]!;
    p.txLen[p.txN++] = b.len[i]!;
    this.metrics.forward(p.fwdDir, b.len[i]!);
  }

  /** One send per egress device per batch. */
  private flush(): void {
    const dirty = this.dirty;
    for (let k = 0; k < this.nDirty; k++) {
      const p = dirty[k]!;
      dirty[k] = undefined;
      const sent = p.spec.device.send(p.txOff, p.txLen, p.txN);
      p.txFrames += sent;
      p.txRefused += p.txN - sent;
      p.txBatches++;
      p.txN = 0;
    }
    this.nDirty = 0;
  }
}

/**
 * The control plane's handle on the datapath worker: starts it, sends it
 * requests and awaits the answers. Counters are read from shared memory
 * without a round trip.
 *
 * API: DatapathClient.start(init) -> client; request(op…); metrics; stop()
 *      readEvents(since, max, { trace, debug }) -> { events, next, lost }   decoded here, not in the worker
 *      eventHead()                              the ring's record count (low 31 bits), read from shared memory
 */
import { Worker } from 'node:worker_threads';
import { Metrics } from '../datapath/lib/metrics.ts';
import { decodeEvents, type DatapathEvent, type RawEvents } from '../datapath/lib/events.ts';
import type { DatapathInit, EndpointRecord, PortStatsRow, Request, Response } from './worker-protocol.ts';

type Op<R extends Request> = R extends unknown ? Omit<R, 'id'> : never;

/** Set by scripts/build.mjs in the bundle; absent when running from sources through tsx. */
declare const TAPESTRY_BUNDLE: boolean | undefined;

/**
 * The worker's entry: the bundled worker next to the bundled agent, or, from
 * sources, an .mjs shim that registers tsx (Node 20 workers don't inherit
 * the parent's module hooks).
 */
function workerUrl(): URL {
  return typeof TAPESTRY_BUNDLE !== 'undefined' && TAPESTRY_BUNDLE
    ? new URL('./datapath-worker.mjs', import.meta.url)
    : new URL('./datapath-worker-entry.mjs', import.meta.url);
}

/** The main thread's side of the datapath worker. */
export class DatapathClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited = false;
  /** Called once if the worker dies while it was expected to run. */
  onExit: ((reason: string) => void) | null = null;
  private stopping = false;

  private constructor(
    private readonly worker: Worker,
    /** Drop/forward counters, written by the worker, read here. */
    readonly metrics: Metrics,
    /** The event ring's record count, written by the worker. */
    private readonly headCell: Int32Array,
  ) {
    worker.on('message', (res: Response) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.ok) p.resolve(res.result);
      else p.reject(Object.assign(new Error(res.error), res.code ? { code: res.code } : {}));
    });
    const fail = (err: Error): void => {
      if (this.exited) return;
      this.exited = true;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (!this.stopping) this.onExit?.(err.message);
    };
    worker.on('error', (e) => fail(new Error(`datapath worker failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`datapath worker exited (code ${code})`)));
  }

  /** Start the worker and initialise its datapath. */
  static async start(init: Omit<DatapathInit, 'metrics' | 'eventHead'>): Promise<DatapathClient> {
    const sab = new SharedArrayBuffer(Metrics.BYTES);
    const head = new SharedArrayBuffer(4);
    const worker = new Worker(workerUrl());
    const c = new DatapathClient(worker, new Metrics(sab), new Int32Array(head));
    await c.request({ op: 'init', init: { ...init, metrics: sab, eventHead: head } });
    return c;
  }

  /** The event ring's record count (low 31 bits): unchanged means no new event. */
  eventHead(): number {
    return this.headCell[0]!;
  }

  /** Datapath events from `since` on (trace / debug renew those leases), decoded on this thread. */
  async readEvents(since: number, max: number, opts: { trace?: boolean; debug?: boolean } = {}): Promise<{ events: DatapathEvent[]; next: number; lost: number }> {
    const raw = (await this.request({ op: 'eventsRead', since, max, ...(opts.trace ? { trace: true } : {}), ...(opts.debug ? { debug: true } : {}) })) as RawEvents;
    return { events: decodeEvents(raw), next: raw.next, lost: raw.lost };
  }

  /** Send one request and await its result. */
  request(op: Op<Request>): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error('datapath worker is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...op, id });
    });
  }

  /** Open the endpoint's TAP and install it in the datapath. */
  async endpointAdd(ep: EndpointRecord): Promise<{ port: number; ifindex: number; name: string }> {
    return (await this.request({ op: 'endpointAdd', ep })) as { port: number; ifindex: number; name: string };
  }

  /** Close the endpoint's TAP and remove it from the maps. */
  async endpointRemove(epId: number): Promise<void> {
    await this.request({ op: 'endpointRemove', epId });
  }

  /** Per-device counters. */
  async portStats(): Promise<PortStatsRow[]> {
    return (await this.request({ op: 'portStats' })) as PortStatsRow[];
  }

  /** Close every device and stop the worker. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    try {
      await this.request({ op: 'shutdown' });
    } finally {
      await this.worker.terminate();
    }
  }
}

/**
 * What `tapestry status` adds to the agent's own view, like `cilium status`:
 * drops of the last minute by reason (from periodic samples of the shared
 * counters), map fill levels, and the controllers with their last run.
 *
 * API:
 *   const h = new DropHistory(snapshot, periodMs?)   samples every 10 s; h.stop()
 *   h.lastMinute() -> [{ reason, reasonString, direction, count }]
 *   controllers(ctStatus, flowsAlive) -> [{ name, status, lastRun, detail }]
 */

interface DropRow {
  reason: number;
  reasonString: string;
  direction: string;
  count: number;
}

/** Samples of the drop counters, enough to answer "in the last minute". */
export class DropHistory {
  private readonly samples: { t: number; drops: Map<string, DropRow> }[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly snapshot: () => { drops: DropRow[] },
    private readonly periodMs = 10_000,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref();
  }

  private sample(): void {
    const m = new Map<string, DropRow>();
    for (const d of this.snapshot().drops) m.set(`${d.reason}/${d.direction}`, { ...d });
    this.samples.push({ t: Date.now(), drops: m });
    const keep = Math.ceil(60_000 / this.periodMs) + 1;
    while (this.samples.length > keep) this.samples.shift();
  }

  /** Drops counted since the oldest sample no older than a minute (or since start). */
  lastMinute(): DropRow[] {
    const now = this.snapshot().drops;
    const base = this.samples.find((s) => Date.now() - s.t <= 60_000 + this.periodMs) ?? this.samples[0];
    const out: DropRow[] = [];
    for (const d of now) {
      const before = base?.drops.get(`${d.reason}/${d.direction}`)?.count ?? 0;
      if (d.count > before) out.push({ ...d, count: d.count - before });
    }
    return out.sort((a, b) => b.count - a.count);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** One controller, as `cilium status --verbose` lists them. */
export interface ControllerRow {
  name: string;
  status: 'ok' | 'failing';
  lastRun: string;
  detail: string;
}

/** The agent's periodic jobs: the conntrack GC (in the datapath thread) and the flow store's poll. */
export function controllers(ct: { gc?: { lastRun?: { at?: number; interval?: number } | null; nextRunAt?: number; now?: number } } | null, flowsPolling: boolean): ControllerRow[] {
  const gc = ct?.gc;
  const last = gc?.lastRun;
  const ago = last?.at !== undefined && gc?.now !== undefined ? `${Math.max(0, Math.round(gc.now - last.at))}s ago` : 'never';
  const next = gc?.nextRunAt !== undefined && gc.now !== undefined ? `next in ${Math.max(0, Math.round(gc.nextRunAt - gc.now))}s` : '';
  return [
    { name: 'ct-map-gc', status: 'ok', lastRun: ago, detail: [next, last?.interval !== undefined ? `interval ${last.interval}s` : ''].filter(Boolean).join(', ') },
    { name: 'hubble-flow-store', status: flowsPolling ? 'ok' : 'failing', lastRun: flowsPolling ? 'polling' : 'stopped', detail: 'datapath events every 200 ms' },
  ];
}

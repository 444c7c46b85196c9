/**
 * Conntrack garbage collection with Cilium's adaptive interval
 * (pkg/maps/ctmap/gc/gc.go, pkg/maps/ctmap/ctmap.go GC/calculateInterval,
 * pkg/defaults: ConntrackGCStartingInterval, ConntrackGCMinInterval,
 * ConntrackGCMaxLRUInterval).
 *
 * API:
 *   new CtGc(ct, opts?)        opts: interval (fixed), start/min/maxInterval,
 *                              signalHoldoff, onDelete, now (first schedule), hrtime
 *   gc.run(now) → seconds      walk the tables, delete `lifetime < now`, return the next interval
 *   gc.nextRunAt() / due(now)  when the agent should call run() (no timers in here)
 *   gc.lastRun, gc.metrics()   per-table stats of the last run; Prometheus rows
 *   ctGcNextInterval(prev, ratio, min, max)   the interval math alone
 *
 * Interval: start 300 s. After a run, ratio = max over tables of
 * deleted / maxEntries (as Cilium), scaled by interval / elapsed when the run
 * came early (signal). ratio > 0.25 → interval × (1 − min(ratio, 0.9)), not
 * below 10 s; ratio < 0.05 → × 1.5, not above 12 h; rounded to whole
 * seconds. A configured `interval` is used as is.
 *
 * Signal: a failed create sets Conntrack.fullSignal; nextRunAt() then
 * becomes lastRunAt + signalHoldoff (default 1 s, so a table that stays full
 * cannot make every agent tick walk it — Cilium mutes signals while a run
 * is under way), and that run covers only the signalled families, as Cilium's does.
 *
 * onDelete(family, key, keyOff, slot, map) is called before each deletion,
 * with the value still readable at `slot`, so NAT state tied to the entry can go.
 */
import type { LruHashMap } from '../../maps/lru-hash.ts';
import { CT_ENTRY } from './conntrack-map.ts';
import { CT_SIGNAL_V4, CT_SIGNAL_V6, type Conntrack } from './conntrack.ts';

/** Address family label, as in Cilium's GC metrics. */
export type CtFamilyName = 'ipv4' | 'ipv6';
/** Protocol label: the TCP table or the "any" table. */
export type CtProtoName = 'TCP' | 'non-TCP';

/** Called for each expired entry before it is deleted. */
export type CtGcDeleteHook = (family: CtFamilyName, key: Uint8Array, keyOff: number, slot: number, map: LruHashMap) => void;

/** CtGc options (seconds). */
export interface CtGcOptions {
  /** Fixed interval (conntrack-gc-interval); 0 or absent = adaptive. */
  interval?: number;
  /** First adaptive interval (ConntrackGCStartingInterval, 300). */
  startInterval?: number;
  /** Floor (ConntrackGCMinInterval, 10). */
  minInterval?: number;
  /** Ceiling (ConntrackGCMaxLRUInterval / conntrack-gc-max-interval, 43200). */
  maxInterval?: number;
  /** Least time between a run and a signal-triggered one (1). */
  signalHoldoff?: number;
  /** Deletion hook (NAT cleanup). */
  onDelete?: CtGcDeleteHook;
  /** Time of creation: the first run is due at now + startInterval (0). */
  now?: number;
  /** Wall-clock milliseconds for run durations only (performance.now). */
  hrtime?: () => number;
}

/** One table in one run. */
export interface CtGcTableRun {
  family: CtFamilyName;
  protocol: CtProtoName;
  /** Map name. */
  map: string;
  /** Entries left. */
  alive: number;
  /** Entries deleted. */
  deleted: number;
  /** deleted / maxEntries. */
  ratio: number;
  /** Walk time in seconds. */
  duration: number;
  /** Always 'completed' (an in-process walk cannot be interrupted). */
  status: 'completed';
}

/** One run. */
export interface CtGcRun {
  /** `now` of the run. */
  at: number;
  /** Started early by a "map full" signal. */
  bySignal: boolean;
  /** Tables walked. */
  tables: CtGcTableRun[];
  /** The ratio the interval was computed from (after early-run scaling). */
  ratio: number;
  /** Interval chosen for the next run. */
  interval: number;
}

/** A Prometheus sample. */
export interface CtGcMetric {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Cilium's interval rule (see header), in seconds. */
export function ctGcNextInterval(prev: number, ratio: number, min = 10, max = 43200): number {
  let next = prev;
  if (ratio > 0.25) {
    next = Math.max(min, Math.round(prev * (1 - Math.min(ratio, 0.9))));
  } else if (ratio < 0.05) {
    next = Math.min(max, Math.round(prev * 1.5));
  }
  return next;
}

/** The conntrack garbage collector; the agent calls run() when due(now). */
export class CtGc {
  /** Current interval (s). */
  interval: number;
  /** `now` of the last run (or of creation). */
  lastRunAt: number;
  /** Stats of the last run, null before the first. */
  lastRun: CtGcRun | null = null;
  /** Completed runs per "family/protocol". */
  readonly runs = new Map<string, number>();
  /** Entries deleted over all runs. */
  totalDeleted = 0;
  private readonly fixed: number;
  private readonly min: number;
  private readonly max: number;
  private readonly holdoff: number;
  private readonly onDelete: CtGcDeleteHook | undefined;
  private readonly hrtime: () => number;

  constructor(private readonly ct: Conntrack, opts: CtGcOptions = {}) {
    this.fixed = opts.interval ?? 0;
    this.min = opts.minInterval ?? 10;
    this.max = opts.maxInterval ?? 43200;
    this.holdoff = opts.signalHoldoff ?? 1;
    this.onDelete = opts.onDelete;
    this.hrtime = opts.hrtime ?? (() => performance.now());
    this.interval = this.fixed > 0 ? this.fixed : (opts.startInterval ?? 300);
    this.lastRunAt = opts.now ?? 0;
  }

  /** When the next run is due: after the interval, or after the holdoff if a table signalled full. */
  nextRunAt(): number {
    const at = this.lastRunAt + this.interval;
    return this.ct.fullSignal !== 0 ? Math.min(at, this.lastRunAt + this.holdoff) : at;
  }

  /** True when run() should be called now. */
  due(now: number): boolean {
    return now >= this.nextRunAt();
  }

  /** Walk the tables, delete expired entries, record stats; returns the next interval (s). */
  run(now: number): number {
    const signal = this.ct.takeFullSignal();
    const elapsed = now - this.lastRunAt;
    const bySignal = signal !== 0 && elapsed < this.interval;
    const v4 = !bySignal || (signal & CT_SIGNAL_V4) !== 0;
    const v6 = !bySignal || (signal & CT_SIGNAL_V6) !== 0;
    const m = this.ct.maps;
    const tables: CtGcTableRun[] = [];
    if (v4) tables.push(this.walk(m.tcp4, 'ipv4', 'TCP', now), this.walk(m.any4, 'ipv4', 'non-TCP', now));
    if (v6) tables.push(this.walk(m.tcp6, 'ipv6', 'TCP', now), this.walk(m.any6, 'ipv6', 'non-TCP', now));
    let ratio = 0;
    for (const t of tables) ratio = Math.max(ratio, t.ratio);
    // A run that came early saw fewer expiries than a full interval would have.
    if (elapsed > 0 && elapsed < this.interval) ratio *= this.interval / elapsed;
    if (this.fixed <= 0) this.interval = ctGcNextInterval(this.interval, ratio, this.min, this.max);
    this.lastRunAt = now;
    this.lastRun = { at: now, bySignal, tables, ratio, interval: this.interval };
    return this.interval;
  }

  /** Delete the expired entries of one table. */
  private walk(map: LruHashMap, family: CtFamilyName, protocol: CtProtoName, now: number): CtGcTableRun {
    const t0 = this.hrtime();
    const v = map.view, hook = this.onDelete;
    let deleted = 0;
    map.iterate((key, off, slot) => {
      if (v.getUint32(slot * CT_ENTRY.SIZE + CT_ENTRY.LIFETIME, true) >= now) return;
      if (hook !== undefined) hook(family, key, off, slot, map);
      map.delete(key, off);
      deleted++;
    });
    const k = `${family}/${protocol}`;
    this.runs.set(k, (this.runs.get(k) ?? 0) + 1);
    this.totalDeleted += deleted;
    return {
      family, protocol, map: map.name, alive: map.count, deleted, ratio: deleted / map.maxEntries,
      duration: (this.hrtime() - t0) / 1000, status: 'completed',
    };
  }

  /**
   * Samples for cilium_datapath_conntrack_gc_runs_total{family,protocol,status},
   * …_gc_entries{family,protocol,status=alive|deleted} and
   * …_gc_duration_seconds{family,protocol,status} (last run's value).
   */
  metrics(): CtGcMetric[] {
    const out: CtGcMetric[] = [];
    const p = 'cilium_datapath_conntrack_gc_';
    for (const [k, n] of this.runs) {
      const [family, protocol] = k.split('/') as [string, string];
      out.push({ name: `${p}runs_total`, labels: { family, protocol, status: 'completed' }, value: n });
    }
    for (const t of this.lastRun?.tables ?? []) {
      const l = { family: t.family, protocol: t.protocol };
      out.push({ name: `${p}entries`, labels: { ...l, status: 'alive' }, value: t.alive });
      out.push({ name: `${p}entries`, labels: { ...l, status: 'deleted' }, value: t.deleted });
      out.push({ name: `${p}duration_seconds`, labels: { ...l, status: t.status }, value: t.duration });
    }
    return out;
  }
}

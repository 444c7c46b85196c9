/**
 * The datapath thread. Owns the slab, the devices and the maps; runs every
 * batch to completion on its own event loop, so the control plane (HTTP
 * API, `ip` commands, config) never stalls forwarding and vice versa.
 *
 * Each device is polled by the native addon; one wake-up drains up to
 * BATCH_MAX frames into the slab and calls back once with the count; the
 * clock is read once per batch and passed in.
 */
import { parentPort } from 'node:worker_threads';
import { Datapath } from '../datapath/datapath.ts';
import { loadNative, createSlab, readStats, type NativePort } from '../io/native.ts';
import { openTap } from '../io/tap.ts';
import { openPacket } from '../io/af-packet.ts';
import { TunnelGso } from '../datapath/lib/gso.ts';
import { parseCidr } from './cidr.ts';
import { BATCH_MAX, SLOT_SIZE } from '../packet/layout.ts';
import { formatIpv4, parseIpv4, parseIpv6, parseMac } from '../wire/addr.ts';
import { LB_MODE } from '../datapath/lib/nodeport.ts';
import { PrefilterError, parseCidr4 } from '../datapath/lib/prefilter.ts';
import { ctDump } from '../datapath/lib/conntrack-dump.ts';
import { lbDump } from '../datapath/lib/lb-dump.ts';
import { natDump } from '../datapath/lib/nat-dump.ts';
import { CaptureHub } from '../datapath/capture.ts';
import type { EndpointRecord, HostRecord, IpcacheRecord, PortStatsRow, Request, Response, UplinkRecord } from './worker-protocol.ts';

if (!parentPort) throw new Error('datapath-worker must run in a worker thread');
const port = parentPort;

loadNative();
/** Room behind the batch slots where tunnel super-frames are cut into wire-sized segments. */
const GSO_SCRATCH = 4 << 20;
const slab = createSlab(GSO_SCRATCH);
let dp: Datapath | undefined;
const taps = new Map<number, NativePort>();
/** The uplink socket and tapestry_host, once attached. */
const nodePorts: NativePort[] = [];

/** Start polling `dev`, feeding its batches to engine port `pid`. */
function startPort(dev: NativePort, pid: number, what: string): void {
  const d = dp!;
  dev.start(
    (n) => {
      try {
        d.receive(pid, n, performance.now());
      } catch (e) {
        datapathFault(e as Error, n);
      }
    },
    (err) => process.stderr.write(`tapestry datapath: ${what} stopped: ${err.message}\n`),
  );
}

function uplinkAttach(u: UplinkRecord): { port: number; ifindex: number; name: string } {
  if (!dp) throw new Error('datapath not initialised');
  const sock = openPacket(u.device, slab, { vnetHdr: true });
  try {
    const tunnelProto = dp.cfg.routingMode === 'native' ? null : (dp.cfg.tunnelProtocol ?? 'vxlan');
    const native = loadNative();
    const dev = tunnelProto === null ? sock : new TunnelGso(sock, slab.bytes, BATCH_MAX * SLOT_SIZE, GSO_SCRATCH, tunnelProto, (b, off, len) => native.csumFold(b, off, len));
    const pid = dp.attachUplink(dev, { ip: parseIpv4(u.ip), prefixLen: u.prefixLen, gateway: u.gateway ? parseIpv4(u.gateway) : 0, mac: parseMac(u.mac), mtu: u.mtu }, u.device);
    startPort(sock, pid, `uplink ${u.device}`);
    nodePorts.push(sock);
    return { port: pid, ifindex: sock.ifindex, name: sock.name };
  } catch (e) {
    sock.close();
    throw e;
  }
}

function hostAttach(h: HostRecord): { port: number; ifindex: number; name: string } {
  if (!dp) throw new Error('datapath not initialised');
  const tap = openTap(h.name, slab, { offload: true });
  try {
    const pid = dp.attachHost(tap, parseMac(h.mac), parseMac(h.kernelMac), h.name);
    startPort(tap, pid, h.name);
    nodePorts.push(tap);
    return { port: pid, ifindex: tap.ifindex, name: tap.name };
  } catch (e) {
    tap.close();
    throw e;
  }
}

function ipcacheUpsert(entries: IpcacheRecord[]): void {
  for (const e of entries) {
    const c = parseCidr(e.cidr);
    if (!c) throw new Error(`ipcache: bad prefix ${e.cidr}`);
    const tep = e.tunnelEndpoint ? parseIpv4(e.tunnelEndpoint) : 0;
    if (c.family === 4) dp!.ipcache.upsert4(Number(c.base), c.prefixLen, e.identity, tep);
    else dp!.ipcache.upsert6(parseIpv6(c.nth(0)), c.prefixLen, e.identity, tep);
  }
}

function endpointAdd(ep: EndpointRecord): { port: number; ifindex: number; name: string } {
  if (!dp) throw new Error('datapath not initialised');
  const tap = openTap(ep.tapName, slab, { offload: true });
  let portId = -1;
  try {
    portId = dp.addEndpoint(
      {
        id: ep.id,
        name: ep.name,
        ipv4: ep.ipv4 ? parseIpv4(ep.ipv4) : 0,
        ipv6: ep.ipv6 ? parseIpv6(ep.ipv6) : null,
        mac: parseMac(ep.mac),
        hostMac: parseMac(ep.hostMac),
        identity: ep.identity,
      },
      tap,
      `eth0@${ep.netns}`,
    );
    startPort(tap, portId, `${ep.tapName} (endpoint ${ep.id})`);
  } catch (e) {
    if (portId >= 0) dp.removeEndpoint(ep.id);
    tap.close();
    throw e;
  }
  taps.set(ep.id, tap);
  return { port: portId, ifindex: tap.ifindex, name: tap.name };
}

/**
 * A program threw: a datapath bug, not bad input (bad input ends in a drop
 * reason). The batch is lost and counted; the worker keeps forwarding and
 * reports the first faults on stderr.
 */
let faults = 0;
function datapathFault(e: Error, n: number): void {
  faults++;
  dp?.metrics.fault(n);
  if (faults <= 5) process.stderr.write(`tapestry datapath: batch of ${n} frames lost: ${e.stack ?? e.message}\n`);
}

function endpointRemove(id: number): void {
  const tap = taps.get(id);
  tap?.stop();
  dp?.removeEndpoint(id);
  tap?.close();
  taps.delete(id);
}

function portStats(): PortStatsRow[] {
  if (!dp) return [];
  const rows: PortStatsRow[] = [];
  for (const p of dp.engine.ports) {
    if (!p) continue;
    const dev = p.spec.device as Partial<NativePort>;
    const native = typeof dev.refreshStats === 'function' ? readStats(dev as NativePort) : {};
    rows.push({
      port: p.id,
      name: p.spec.name,
      kind: p.spec.kind,
      endpointId: p.spec.endpointId ?? 0,
      rxFrames: p.rxFrames,
      rxBatches: p.rxBatches,
      txFrames: p.txFrames,
      txBatches: p.txBatches,
      txRefused: p.txRefused,
      device: native,
    });
  }
  return rows;
}

/** Conntrack time, seconds: the same clock the batches use. */
const ctNow = (): number => Math.floor(performance.now() / 1000);

/**
 * The conntrack GC controller: checks once a second whether a run is due
 * (the adaptive interval, or a "table full" signal from the datapath).
 */
const gcTimer = setInterval(() => {
  if (dp && dp.gc.due(ctNow())) dp.gc.run(ctNow());
}, 1000);
gcTimer.unref();

/** monitor.enabled: false — trace requests are ignored too. */
let eventsOff = false;

/** When a monitor last asked for trace (debug) events; they switch off 5 s after the last read. */
let lastTraceRead = 0;
let lastDebugRead = 0;
const traceTimer = setInterval(() => {
  if (dp?.events.traceEnabled && performance.now() - lastTraceRead > 5000) dp.setTrace(false);
  if (dp?.events.debugEnabled && performance.now() - lastDebugRead > 5000) dp.events.debugEnabled = false;
  capture?.expire(performance.now());
}, 1000);
traceTimer.unref();

/** Packet capture sessions (created with the datapath); timestamps on the wall clock. */
let capture: CaptureHub | undefined;

/** The four conntrack tables. */
function ctTables(d: Datapath) {
  const m = d.ct.maps;
  return [m.tcp4, m.any4, m.tcp6, m.any6];
}

/** Conntrack counts, the last GC run and the GC's Prometheus rows (runs per table), for status and metrics. */
function ctStatus() {
  if (!dp) return null;
  const tables = ctTables(dp).map((t) => ({ name: t.name, entries: t.count, maxEntries: t.maxEntries }));
  return { tables, stats: { ...dp.ct.stats }, gc: { lastRun: dp.gc.lastRun ?? null, nextRunAt: dp.gc.nextRunAt(), now: ctNow() }, gcMetrics: dp.gc.metrics() };
}

/** A prefilter change: the new revision, or the refusal as a value (the main thread turns it into a 400). */
function prefilterChange(fn: () => number): { revision: number } | { error: string } {
  try {
    return { revision: fn() };
  } catch (e) {
    if (e instanceof PrefilterError) return { error: e.message };
    throw e;
  }
}

/** NodePort counters, the prefilter's hits and the uplink's XDP verdicts. */
function nodePortStatus(): unknown {
  if (!dp) return null;
  const up = dp.uplink !== null ? dp.engine.ports[dp.uplink.port] : undefined;
  const x = up?.xdpVerdicts;
  return {
    counts: { ...dp.nodePort.count },
    prefilter: { hits: dp.prefilter.hits, entries: dp.prefilter.map.count, revision: dp.prefilter.revision },
    xdp: x ? { aborted: x[0], drop: x[1], pass: x[2], tx: x[3], redirect: x[4] } : null,
    announced: [...dp.announced].map(formatIpv4),
  };
}

function handle(req: Request): unknown {
  switch (req.op) {
    case 'init': {
      const i = req.init;
      dp = new Datapath(
        {
          routerIPv4: parseIpv4(i.routerIPv4),
          routerIPv6: i.routerIPv6 ? parseIpv6(i.routerIPv6) : null,
          mtu: i.mtu,
          noBackendReject: i.noBackendReject,
          routingMode: i.routingMode,
          masquerade: i.masquerade,
          tunnelProtocol: i.tunnelProtocol,
          tunnelPort: i.tunnelPort,
          lbMode: LB_MODE[i.lbMode === 'dsr' ? 'DSR' : i.lbMode === 'hybrid' ? 'HYBRID' : 'SNAT'],
          dsrDispatch: i.dsrDispatch,
          xdpAcceleration: i.xdpAcceleration,
          snatExclusion: i.snatExclusion.map((s) => {
            const c = parseCidr(s)!;
            return { net: Number(c.base), len: c.prefixLen };
          }),
        },
        { slab: slab.buffer, rxOff: slab.rxOff, rxLen: slab.rxLen, metrics: i.metrics, ct: { timeouts: i.conntrack.timeouts, sizes: i.conntrack.sizes, evict: i.conntrack.evict }, gcInterval: i.conntrack.gcInterval, now: ctNow() },
      );
      // Drops and policy verdicts are rare: recorded whenever events are on; traces only while read.
      dp.events.enabled = i.events;
      dp.events.aggregate = i.aggregation !== 'none';
      // Event times: the batch clock (performance.now()) on the wall clock.
      dp.events.timeBase = performance.timeOrigin;
      dp.events.shareHead(new Int32Array(i.eventHead));
      if (!i.events) dp.engine.onDrop = null;
      eventsOff = !i.events;
      capture = new CaptureHub(dp, (now) => performance.timeOrigin + now);
      return undefined;
    }
    case 'endpointAdd':
      return endpointAdd(req.ep);
    case 'endpointRemove':
      endpointRemove(req.epId);
      return undefined;
    case 'portStats':
      return portStats();
    case 'ctList':
      return dp ? ctDump(dp.ct.maps, ctNow()) : [];
    case 'ctFlush': {
      if (!dp) return { deleted: 0 };
      let deleted = 0;
      for (const t of ctTables(dp)) {
        deleted += t.count;
        t.clear();
      }
      return { deleted };
    }
    case 'ctStatus':
      return ctStatus();
    case 'serviceUpsert': {
      const v = req.svc;
      const { sourceRanges, ...rest } = v;
      dp!.services.upsert({
        ...rest,
        vip: parseIpv4(v.vip),
        backends: v.backends.map((b) => ({ ...b, ip: parseIpv4(b.ip) })),
        ...(sourceRanges ? { sourceRanges: sourceRanges.map((c) => parseCidr4(c)) } : {}),
      });
      return undefined;
    }
    case 'prefilterList':
      return dp!.prefilter.list();
    case 'prefilterUpdate':
      return prefilterChange(() => dp!.prefilter.update(req.cidrs, req.revision));
    case 'prefilterDelete':
      return prefilterChange(() => dp!.prefilter.delete(req.cidrs, req.revision));
    case 'announceSet':
      dp!.announced.clear();
      for (const a of req.addrs) dp!.announced.add(parseIpv4(a));
      return undefined;
    case 'nodePortStatus':
      return nodePortStatus();
    case 'serviceDelete':
      return dp!.services.delete(req.revNat);
    case 'lbList':
      return dp ? lbDump(dp.lb) : [];
    case 'maglevList': {
      const m = dp?.lb.maglev[req.revNat];
      return m ? Array.from(m.table) : null;
    }
    case 'uplinkAttach':
      return uplinkAttach(req.uplink);
    case 'hostAttach':
      return hostAttach(req.host);
    case 'ipcacheUpsert':
      ipcacheUpsert(req.entries);
      return undefined;
    case 'ipcacheDelete':
      for (const cidr of req.cidrs) {
        const c = parseCidr(cidr);
        if (c?.family === 4) dp!.ipcache.delete4(Number(c.base), c.prefixLen);
        else if (c) dp!.ipcache.delete6(parseIpv6(c.nth(0)), c.prefixLen);
      }
      return undefined;
    case 'tunnelUpsert':
      for (const e of req.entries) {
        const c = parseCidr(e.cidr);
        if (c?.family !== 4) throw new Error(`tunnel map: bad IPv4 prefix ${e.cidr}`);
        dp!.tunnelMap.upsert4(Number(c.base), c.prefixLen, parseIpv4(e.endpoint));
      }
      return undefined;
    case 'ipcacheList':
      return dp ? dp.ipcache.dump() : [];
    case 'tunnelList':
      return dp ? dp.tunnelMap.dump() : [];
    case 'natList':
      return dp?.snat ? natDump(dp.snat, ctNow()) : [];
    case 'neighList':
      return dp ? dp.neigh.dump(performance.now()) : [];
    case 'policySet':
      return dp!.setPolicy(req.epId, { ingress: req.ingress, egress: req.egress, entries: req.entries });
    case 'policyMapDump': {
      const ep = dp?.endpoints.get(req.epId);
      if (!ep) throw Object.assign(new Error(`endpoint ${req.epId} not found`), { code: 'ENOENT' });
      return { name: ep.policy?.name ?? `cilium_policy_${String(req.epId).padStart(5, '0')}`, ingress: !!ep.enforceIngress, egress: !!ep.enforceEgress, rows: ep.policy?.dump() ?? [] };
    }
    case 'mapStats': {
      if (!dp) return [];
      const m = (map: { name: string; count: number; maxEntries: number }) => ({ name: map.name, entries: map.count, maxEntries: map.maxEntries });
      const rows = [dp.lxc, dp.ipcache.map, dp.tunnelMap.map, ...ctTables(dp), dp.lb.maps.services, dp.lb.maps.backends, dp.lb.maps.revNat, dp.lb.maps.affinity].map(m);
      if (dp.snat) rows.push(m(dp.snat.map));
      for (const ep of dp.endpoints.values()) if (ep.policy) rows.push(m(ep.policy.map));
      return rows;
    }
    case 'eventsRead':
      if (!dp) return { words: new Int32Array(0), times: new Float64Array(0), first: 0, next: 0, lost: 0, timeBase: 0 };
      if (req.trace && !eventsOff) {
        // Trace events cost a record per forwarded frame: on only while a reader keeps asking.
        lastTraceRead = performance.now();
        if (!dp.events.traceEnabled) dp.setTrace(true);
      }
      if (req.debug && !eventsOff) {
        // Debug messages, like traces, cost something per packet: only while a reader asks.
        lastDebugRead = performance.now();
        dp.events.debugEnabled = true;
      }
      // Copied out undecoded: formatting events is the reader's work, not the datapath thread's.
      return dp.events.readRaw(req.since, req.max);
    case 'captureStart':
      if (!capture) throw new Error('datapath not initialised');
      return { id: capture.start(req.capture, performance.now()) };
    case 'captureRead':
      if (!capture) throw new Error('datapath not initialised');
      return capture.read(req.capId, performance.now());
    case 'captureStop':
      capture?.stop(req.capId);
      return undefined;
    case 'shutdown':
      clearInterval(gcTimer);
      clearInterval(traceTimer);
      for (const id of [...taps.keys()]) endpointRemove(id);
      for (const p of nodePorts.splice(0)) {
        p.stop();
        p.close();
      }
      setImmediate(() => port.close());
      return undefined;
  }
}

port.on('message', (req: Request) => {
  let res: Response;
  try {
    res = { id: req.id, ok: true, result: handle(req) };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    res = { id: req.id, ok: false, error: err.message, ...(err.code ? { code: err.code } : {}) };
  }
  port.postMessage(res);
});

/**
 * The agent: one process per node. Loads the config, starts the datapath
 * worker, plumbs the configured endpoints, serves the API, and on SIGINT or
 * SIGTERM tears down everything it created.
 *
 * API: runAgent({ config, socket }) -> resolves when the agent has stopped
 */
import { accessSync, constants } from 'node:fs';
import { loadConfig, parseIfAddr, podMtu, routerIPv4, routerIPv6, tunnelPort, type AgentConfig } from './config.ts';
import { NodeManager } from './node-manager.ts';
import { DropHistory, controllers } from './status-extra.ts';
import { IdentityRegistry, formatLabels } from './identity.ts';
import { PolicyManager } from './policy-manager.ts';
import { PolicyError } from './policy/parse.ts';
import { formatEvent } from '../datapath/lib/events.ts';
import { DatapathClient } from './datapath-client.ts';
import { EndpointManager, type Endpoint } from './endpoint-manager.ts';
import { startApiServer } from './api-server.ts';
import { serveMetrics, type MetricsHandle } from './metrics-server.ts';
import { scrapeMetrics } from './prometheus.ts';
import { NODEPORT_MAX, NODEPORT_MIN, ServiceManager, type AppliedService } from './service-manager.ts';
import { endpointSpecSchema, parseBody, serviceSpecSchema } from './config.ts';
import { prefilterApply, prefilterRoutes } from './prefilter-routes.ts';
import { VERSION, DEFAULT_SOCKET } from './defaults.ts';
import { flowRoutes } from './flows.ts';
import { captureRoutes } from './capture-routes.ts';
import { liveViewPages, type LiveViewSources } from './live-view-api.ts';

/** Options from the command line. */
export interface AgentOptions {
  config: string;
  socket?: string;
}

/** One line on stderr and a non-zero exit: for what the user must fix. */
export class FatalError extends Error {
  override name = 'FatalError';
}

function checkPrivileges(): void {
  if (process.getuid?.() !== 0) throw new FatalError('tapestry agent: must run as root (TAP devices and network namespaces need CAP_NET_ADMIN)');
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new FatalError('tapestry agent: /dev/net/tun is missing: load the tun module (modprobe tun)');
  }
}

/** Public view of an endpoint for the API. */
function endpointView(e: Endpoint) {
  return {
    id: e.id,
    name: e.name,
    netns: e.netns,
    labels: e.labels,
    identity: e.identity,
    ipv4: e.ipv4 ?? null,
    ipv6: e.ipv6 ?? null,
    mac: e.mac,
    hostMac: e.hostMac,
    interface: { name: 'eth0', hostName: e.ifName, ifindex: e.ifindex },
    state: e.state,
    policy: { ingress: 'Disabled', egress: 'Disabled' },
  };
}

/** The endpoint view with its policy enforcement. */
function endpointWithPolicy(e: Endpoint, pm: PolicyManager) {
  const en = pm.enforcement(e.id);
  return { ...endpointView(e), policy: { ingress: en.ingress ? 'Enabled' : 'Disabled', egress: en.egress ? 'Enabled' : 'Disabled' } };
}

/** A policy for the API. */
function policyView(p: { id: string; kind: string; name: string; namespace: string; rules: readonly unknown[] }) {
  return { id: p.id, kind: p.kind, name: p.name, namespace: p.namespace, rules: p.rules };
}

/** Public view of a service. */
function serviceView(a: AppliedService) {
  return { name: a.spec.name, spec: a.spec, frontends: a.frontends };
}

/** Run until a signal asks us to stop. */
export async function runAgent(opts: AgentOptions): Promise<void> {
  const cfg: AgentConfig = loadConfig(opts.config);
  checkPrivileges();
  const socket = opts.socket ?? cfg.api.socket ?? DEFAULT_SOCKET;
  const started = Date.now();
  const r6 = routerIPv6(cfg.node);
  const dp = await DatapathClient.start({
    nodeName: cfg.node.name,
    routerIPv4: routerIPv4(cfg.node),
    ...(r6 ? { routerIPv6: r6 } : {}),
    mtu: podMtu(cfg),
    noBackendReject: cfg.loadBalancer.noBackendResponse === 'reject',
    routingMode: cfg.cluster?.routingMode ?? 'tunnel',
    tunnelProtocol: cfg.cluster?.tunnelProtocol ?? 'vxlan',
    tunnelPort: cfg.cluster ? tunnelPort(cfg.cluster) : 8472,
    masquerade: cfg.node.uplink ? (cfg.cluster?.masquerade ?? true) : false,
    events: cfg.monitor.enabled,
    lbMode: cfg.loadBalancer.mode,
    dsrDispatch: cfg.loadBalancer.dsrDispatch,
    xdpAcceleration: cfg.loadBalancer.acceleration === 'native',
    aggregation: cfg.monitor.aggregation,
    // Cilium's SNAT exclusion: the native-routing CIDR, else the pod CIDRs (every node's, here).
    snatExclusion: cfg.cluster?.nativeRoutingCIDR ? [cfg.cluster.nativeRoutingCIDR] : [cfg.node.ipv4PodCIDR, ...(cfg.cluster?.nodes ?? []).map((n) => n.ipv4PodCIDR)],
    conntrack: {
      timeouts: {
        tcp: cfg.conntrack.tcpTimeout,
        tcpSyn: cfg.conntrack.tcpSynTimeout,
        tcpClose: cfg.conntrack.tcpFinTimeout,
        any: cfg.conntrack.anyTimeout,
        svcTcp: cfg.conntrack.serviceTcpTimeout,
        svcAny: cfg.conntrack.serviceAnyTimeout,
      },
      sizes: { tcp4: cfg.conntrack.tcpMaxEntries, any4: cfg.conntrack.anyMaxEntries, tcp6: cfg.conntrack.tcpMaxEntries, any6: cfg.conntrack.anyMaxEntries },
      gcInterval: cfg.conntrack.gcInterval,
      evict: cfg.conntrack.evictWhenFull,
    },
  });
  const registry = new IdentityRegistry();
  const identities = registry.allocator;
  const eps = new EndpointManager(cfg.node, dp, podMtu(cfg), identities);
  const node = new NodeManager(cfg, dp, identities);
  const dropHistory = new DropHistory(() => dp.metrics.snapshot());
  // NodePorts listen on the router IP (tapestry_host) and, with an uplink, the node's address.
  const nodeAddrs = [routerIPv4(cfg.node), ...(cfg.node.uplink ? [parseIfAddr(cfg.node.uplink.address)!.ip] : [])];
  const svcs = new ServiceManager(dp, () => eps.list(), cfg.loadBalancer, nodeAddrs);
  svcs.remoteEndpoints = () => node.remoteEndpoints();
  if (cfg.cluster) svcs.l2 = { self: cfg.node.name, peers: () => (cfg.cluster?.nodes ?? []).map((n) => ({ name: n.name, pods: n.endpoints.map((e) => e.labels) })) };
  const policy = new PolicyManager(dp, registry, cfg.policyEnforcement, () => eps.list(), () => node.remoteEndpoints());
  eps.onChange = () => {
    void node
      .syncEndpoints(eps.list())
      .then(() => policy.resync())
      .catch((e: Error) => process.stderr.write(`tapestry agent: ipcache/policy: ${e.message}\n`));
    void svcs.resync().catch((e: Error) => process.stderr.write(`tapestry agent: services: ${e.message}\n`));
  };
  let api: { close(): Promise<void> } | undefined;
  let metrics: MetricsHandle | undefined;
  const scrape = () => scrapeMetrics(dp, eps.list(), registry.all().length);
  let stopping: Promise<void> | undefined;

  const teardown = (): Promise<void> =>
    (stopping ??= (async () => {
      await api?.close().catch(() => undefined);
      await metrics?.close().catch(() => undefined);
      const errors = await eps.removeAll();
      await dp.stop().catch(() => undefined);
      await node.stop();
      dropHistory.stop();
      for (const e of errors) process.stderr.write(`tapestry agent: teardown: ${e}\n`);
    })());

  let failure: string | undefined;
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      process.stderr.write(`tapestry agent: ${sig}, tearing down\n`);
      void teardown().then(resolve);
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    dp.onExit = (reason) => {
      failure = reason;
      process.stderr.write(`tapestry agent: ${reason}; tearing down\n`);
      void teardown().then(resolve);
    };
  });

  try {
    await node.start();
    // Policies first: an endpoint is enforced from its first packet.
    for (const [i, doc] of cfg.policies.entries()) {
      try {
        await policy.import(doc);
      } catch (e) {
        if (e instanceof PolicyError) throw new FatalError(`tapestry agent: ${opts.config}: policies[${i}].${e.message}`);
        throw e;
      }
    }
    for (const spec of cfg.endpoints) await eps.add(spec);
    await policy.resync();
    for (const spec of cfg.services) await svcs.upsert(spec);
    await prefilterApply(dp, cfg.prefilter.deny);
    const flows = flowRoutes(dp, cfg.node.name, () => eps.list(), () => node.remoteEndpoints(), registry);
    api = await startApiServer(socket, {
      'GET /v1/healthz': () => ({ status: 'ok' }),
      ...flows,
      ...captureRoutes(dp),
      ...prefilterRoutes(dp),
      'GET /v1/status': async () => {
        const ct = (await dp.request({ op: 'ctStatus' })) as Parameters<typeof controllers>[0];
        return {
        tapestry: { state: 'Ok', version: VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) },
        node: { name: cfg.node.name, ipv4PodCIDR: cfg.node.ipv4PodCIDR, ipv6PodCIDR: cfg.node.ipv6PodCIDR ?? null, routerIPv4: routerIPv4(cfg.node), routerIPv6: r6 ?? null, mtu: podMtu(cfg) },
        datapath: { mode: 'userspace', thread: 'worker', io: 'TAP (IFF_VNET_HDR, TSO) + AF_PACKET (TPACKET_V2)', batch: 256 },
        cluster: node.status(),
        endpoints: { total: eps.list().length, ready: eps.list().filter((e) => e.state === 'ready').length },
        ipam: eps.ipamUsage(),
        counters: dp.metrics.snapshot(),
        ports: await dp.portStats(),
        conntrack: ct,
        api: { socket },
        metrics: metrics?.status() ?? null,
        services: { total: svcs.list().length, frontends: svcs.list().reduce((a, x) => a + x.frontends.length, 0) },
        kubeProxyReplacement: {
          mode: cfg.loadBalancer.mode,
          dsrDispatch: cfg.loadBalancer.dsrDispatch,
          acceleration: cfg.loadBalancer.acceleration,
          algorithm: cfg.loadBalancer.algorithm,
          nodePortRange: [NODEPORT_MIN, NODEPORT_MAX],
          devices: cfg.node.uplink ? [cfg.node.uplink.device] : [],
          nodePortAddresses: nodeAddrs,
          announced: svcs.announced(),
          datapath: await dp.request({ op: 'nodePortStatus' }),
        },
        policies: policy.list().length,
        maps: await dp.request({ op: 'mapStats' }),
        dropsLastMinute: dropHistory.lastMinute(),
        controllers: controllers(ct, true),
        };
      },
      'GET /v1/endpoint': () => eps.list().map((e) => endpointWithPolicy(e, policy)),
      'GET /v1/endpoint/:id': ({ id }) => {
        const e = eps.get(id!);
        if (!e) throw Object.assign(new Error(`endpoint ${id} not found`), { status: 404 });
        return endpointWithPolicy(e, policy);
      },
      'GET /v1/policy': () => policy.list().map(policyView),
      'GET /v1/policy/:id': ({ id }) => {
        const p = policy.find(decodeURIComponent(id!));
        if (!p) throw Object.assign(new Error(`policy ${id} not found`), { status: 404 });
        return policyView(p);
      },
      'PUT /v1/policy': async ({ body }) => {
        const b = body as { text?: unknown } | null;
        try {
          const r = await policy.import(typeof b?.text === 'string' ? b.text : body, '<api>');
          return r.map(policyView);
        } catch (e) {
          if (e instanceof PolicyError) throw Object.assign(new Error(e.message), { status: 400 });
          throw e;
        }
      },
      'DELETE /v1/policy/:id': async ({ id }) => policyView(await policy.delete(decodeURIComponent(id!))),
      'POST /v1/policy/trace': ({ body }) => {
        const b = (body ?? {}) as { from?: unknown; to?: unknown; dport?: unknown; proto?: unknown };
        const labelsOf = (v: unknown, what: string): Record<string, string> | number => {
          if (typeof v === 'number') return v;
          if (typeof v === 'string') {
            const e = eps.get(v) ?? eps.list().find((x) => `${x.labels['io.kubernetes.pod.namespace'] ?? 'default'}:${x.name}` === v);
            const r = node.remoteEndpoints().find((x) => (x as { name?: string }).name === v);
            if (e) return e.labels;
            if (r) return r.labels;
            throw Object.assign(new Error(`${what}: no endpoint "${v}"`), { status: 400 });
          }
          if (v && typeof v === 'object') return v as Record<string, string>;
          throw Object.assign(new Error(`${what}: give an endpoint (ID, name or NAMESPACE:POD), labels or an identity`), { status: 400 });
        };
        const to = labelsOf(b.to, 'to');
        if (typeof to === 'number') throw Object.assign(new Error('to: must be an endpoint or labels'), { status: 400 });
        const dport = Number(b.dport ?? 0);
        if (!Number.isInteger(dport) || dport < 0 || dport > 65535) throw Object.assign(new Error('dport: must be 0-65535'), { status: 400 });
        try {
          return policy.trace({ from: labelsOf(b.from, 'from'), to, dport, proto: (b.proto as string | number | undefined) ?? 'TCP' });
        } catch (e) {
          throw Object.assign(new Error((e as Error).message), { status: 400 });
        }
      },
      'GET /v1/policy/map/:id': ({ id }) => {
        const e = eps.get(id!);
        if (!e) throw Object.assign(new Error(`endpoint ${id} not found`), { status: 404 });
        return dp.request({ op: 'policyMapDump', epId: e.id });
      },
      'GET /v1/identity': () => registry.all().map((i) => ({ identity: i.identity, kind: i.kind, labels: formatLabels(i.labels).split(',').filter(Boolean) })),
      'GET /v1/identity/:id': ({ id }) => {
        const i = registry.get(Number(id));
        if (!i) throw Object.assign(new Error(`identity ${id} not found`), { status: 404 });
        return { identity: i.identity, kind: i.kind, labels: formatLabels(i.labels).split(',').filter(Boolean) };
      },
      'GET /v1/monitor': async ({ query }) => {
        const since = Number(query?.get('since') ?? 0);
        const numeric = query?.get('numeric') === '1';
        const r = await dp.readEvents(Number.isFinite(since) ? since : 0, 1000, { trace: query?.get('trace') === '1', debug: query?.get('debug') === '1' });
        return { ...r, events: r.events.map((e) => ({ ...e, line: formatEvent(e, numeric) })) };
      },
      'PUT /v1/endpoint': async ({ body }) => endpointView(await eps.add(parseBody(endpointSpecSchema, body))),
      'DELETE /v1/endpoint/:id': async ({ id }) => endpointView(await eps.remove(id!)),
      'GET /v1/metrics/datapath': () => dp.metrics.snapshot(),
      'GET /v1/metrics/prometheus': scrape,
      'GET /v1/ports': () => dp.portStats(),
      'GET /v1/ct': () => dp.request({ op: 'ctList' }),
      'GET /v1/service': () => svcs.list().map(serviceView),
      'PUT /v1/service': async ({ body }) => serviceView(await svcs.upsert(parseBody(serviceSpecSchema, body))),
      'DELETE /v1/service/:id': async ({ id }) => serviceView(await svcs.delete(id!)),
      'GET /v1/lb': () => dp.request({ op: 'lbList' }),
      'GET /v1/lb/maglev/:id': async ({ id }) => {
        const svc = svcs.list().find((a) => a.spec.name === id) ?? svcs.list().find((a) => a.frontends.some((f) => String(f.revNat) === id));
        if (!svc) throw Object.assign(new Error(`service ${id} not found`), { status: 404 });
        return Promise.all(svc.frontends.map(async (f) => ({ revNat: f.revNat, frontend: `${f.address}:${f.port}`, table: await dp.request({ op: 'maglevList', revNat: f.revNat }) })));
      },
      'DELETE /v1/ct': () => dp.request({ op: 'ctFlush' }),
      'GET /v1/ipcache': () => dp.request({ op: 'ipcacheList' }),
      'GET /v1/tunnel': () => dp.request({ op: 'tunnelList' }),
      'GET /v1/nat': () => dp.request({ op: 'natList' }),
      'GET /v1/neigh': () => dp.request({ op: 'neighList' }),
    });
    const liveView = liveViewPages({
      flows: async (query) => (await flows['GET /v1/flows']!({ query })) as Awaited<ReturnType<LiveViewSources['flows']>>,
      drops: () => dp.metrics.snapshot().drops,
      endpoints: () => [...eps.list(), ...node.remoteEndpoints()],
      services: () => svcs.list(),
    });
    metrics = await serveMetrics(cfg.metrics.address, scrape, (line) => process.stderr.write(`tapestry agent: ${line}\n`), liveView);
  } catch (e) {
    await teardown();
    throw e;
  }
  process.stdout.write(`tapestry agent ready: node ${cfg.node.name}, ${eps.list().length} endpoints, API unix:${socket}\n`);
  await stopped;
  if (failure !== undefined) throw new FatalError(`tapestry agent: stopped because ${failure}`);
}

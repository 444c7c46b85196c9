/**
 * The agent: one process per node. Loads the config, starts the datapath
 * worker, plumbs the configured endpoints, serves the API, and on SIGINT or
 * SIGTERM tears down everything it created.
 *
 * API: runAgent({ config, socket }) -> resolves when the agent has stopped
 */
import { accessSync, constants } from 'node:fs';
import { loadConfig, podMtu, routerIPv4, routerIPv6, tunnelPort, type AgentConfig } from './config.ts';
import { NodeManager } from './node-manager.ts';
import { IdentityAllocator } from './identity.ts';
import { DatapathClient } from './datapath-client.ts';
import { EndpointManager, type Endpoint } from './endpoint-manager.ts';
import { startApiServer } from './api-server.ts';
import { ServiceManager, type AppliedService } from './service-manager.ts';
import { endpointSpecSchema, parseBody, serviceSpecSchema } from './config.ts';
import { VERSION, DEFAULT_SOCKET } from './defaults.ts';

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
  const identities = new IdentityAllocator();
  const eps = new EndpointManager(cfg.node, dp, podMtu(cfg), identities);
  const node = new NodeManager(cfg, dp, identities);
  const svcs = new ServiceManager(dp, () => eps.list(), cfg.loadBalancer, [routerIPv4(cfg.node)]);
  svcs.remoteEndpoints = () => node.remoteEndpoints();
  eps.onChange = () => {
    void node.syncEndpoints(eps.list()).catch((e: Error) => process.stderr.write(`tapestry agent: ipcache: ${e.message}\n`));
    void svcs.resync().catch((e: Error) => process.stderr.write(`tapestry agent: services: ${e.message}\n`));
  };
  let api: { close(): Promise<void> } | undefined;
  let stopping: Promise<void> | undefined;

  const teardown = (): Promise<void> =>
    (stopping ??= (async () => {
      await api?.close().catch(() => undefined);
      const errors = await eps.removeAll();
      await dp.stop().catch(() => undefined);
      await node.stop();
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
    for (const spec of cfg.endpoints) await eps.add(spec);
    for (const spec of cfg.services) await svcs.upsert(spec);
    api = await startApiServer(socket, {
      'GET /v1/healthz': () => ({ status: 'ok' }),
      'GET /v1/status': async () => ({
        tapestry: { state: 'Ok', version: VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) },
        node: { name: cfg.node.name, ipv4PodCIDR: cfg.node.ipv4PodCIDR, ipv6PodCIDR: cfg.node.ipv6PodCIDR ?? null, routerIPv4: routerIPv4(cfg.node), routerIPv6: r6 ?? null, mtu: podMtu(cfg) },
        datapath: { mode: 'userspace', thread: 'worker', io: 'TAP (IFF_VNET_HDR, TSO) + AF_PACKET (TPACKET_V3)', batch: 256 },
        cluster: node.status(),
        endpoints: { total: eps.list().length, ready: eps.list().filter((e) => e.state === 'ready').length },
        ipam: eps.ipamUsage(),
        counters: dp.metrics.snapshot(),
        ports: await dp.portStats(),
        conntrack: await dp.request({ op: 'ctStatus' }),
        api: { socket },
      }),
      'GET /v1/endpoint': () => eps.list().map(endpointView),
      'GET /v1/endpoint/:id': ({ id }) => {
        const e = eps.get(id!);
        if (!e) throw Object.assign(new Error(`endpoint ${id} not found`), { status: 404 });
        return endpointView(e);
      },
      'PUT /v1/endpoint': async ({ body }) => endpointView(await eps.add(parseBody(endpointSpecSchema, body))),
      'DELETE /v1/endpoint/:id': async ({ id }) => endpointView(await eps.remove(id!)),
      'GET /v1/metrics/datapath': () => dp.metrics.snapshot(),
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
  } catch (e) {
    await teardown();
    throw e;
  }
  process.stdout.write(`tapestry agent ready: node ${cfg.node.name}, ${eps.list().length} endpoints, API unix:${socket}\n`);
  await stopped;
  if (failure !== undefined) throw new FatalError(`tapestry agent: stopped because ${failure}`);
}

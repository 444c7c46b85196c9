/**
 * Agent configuration: the YAML file `tapestry agent --config FILE` reads.
 *
 * API:
 *   loadConfig(path) -> AgentConfig        read + validate, or throw ConfigError
 *   parseConfig(text, path) -> AgentConfig
 *   endpointSpecSchema, serviceSpecSchema  the same rules for API-created objects
 *   parseBody(schema, body)                validate an API body ("field: problem", status 400)
 *   ConfigError                            message "FILE:LINE:COL: field.path: problem"
 *
 *   node:
 *     name: node1
 *     ipv4PodCIDR: 10.200.0.0/24     # pods' IPv4 addresses come from here
 *     ipv6PodCIDR: fd00:200::/64     # optional
 *     routerIPv4: 10.200.0.1         # pods' gateway (default: first address)
 *     routerIPv6: fd00:200::1        # default: first address of ipv6PodCIDR
 *     mtu: 1500
 *     tapPrefix: tp                  # TAPs are created as tp0, tp1… before moving into pods
 *   endpoints:
 *     - name: web
 *       netns: web                   # created if missing, deleted only if we created it
 *       labels: { app: web }
 *       ipv4: 10.200.0.10            # optional: allocated from the pod CIDR
 *       ipv6: fd00:200::10           # optional
 *   services:
 *     - name: web
 *       clusterIP: 10.96.0.10
 *       ports: [{ port: 80, targetPort: 8080, protocol: TCP }]
 *       selector: { app: web }       # local endpoints with these labels are backends
 *       backends: [{ ip: 10.200.0.50, port: 8080, weight: 100 }]   # and/or explicit ones
 *       externalIPs: [192.0.2.10]    # more frontends (and loadBalancerIP)
 *       algorithm: maglev            # default: loadBalancer.algorithm
 *       loadBalancerSourceRanges: [203.0.113.0/24]   # only these clients reach the loadBalancerIP (177)
 *       forwardingMode: dsr           # from outside: override loadBalancer.mode for this service
 *   loadBalancer: { algorithm: random, maglevTableSize: 16381, noBackendResponse: reject,
 *                   mode: snat, dsrDispatch: opt, acceleration: disabled }   # mode: snat|dsr|hybrid
 *   prefilter: { deny: [198.51.100.0/24] }   # dropped in the uplink's XDP stage
 *   conntrack: { tcpTimeout: 8000, tcpSynTimeout: 60, tcpFinTimeout: 10, anyTimeout: 60,
 *                tcpMaxEntries: 524288, anyMaxEntries: 262144, gcInterval: 0 }   # Cilium's defaults
 *   metrics: { address: 127.0.0.1:9962 }   # Prometheus GET /metrics; IP:PORT, port 0 = any free; false = off
 *
 * Validation is whole-file: nothing is applied unless everything is valid.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { bigIntToIp, cidrContains, ipToBigInt, parseCidr, type Cidr } from './cidr.ts';
import { MAGLEV_PRIMES as MAGLEV_SIZES } from '../datapath/lib/maglev.ts';
import { parseListenAddress } from './metrics-server.ts';

/** A configuration problem, naming file, line and field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'not an IPv4 address' });
const ipv6 = z.string().refine((s) => isIPv6(s), { message: 'not an IPv6 address' });
const cidr4 = z.string().refine((s) => parseCidr(s)?.family === 4, { message: 'not an IPv4 CIDR (a.b.c.d/len)' });
const cidr6 = z.string().refine((s) => parseCidr(s)?.family === 6, { message: 'not an IPv6 CIDR (x::/len)' });
/** Kubernetes-style names: what `ip netns` and our interface naming accept. */
const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { message: 'must be lowercase letters, digits and "-" (a DNS label)' });
const netnsName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, { message: 'must be letters, digits, "_", "." or "-"' })
  .refine((s) => s !== '.' && s !== '..', { message: 'is not a namespace name' });
const labels = z.record(
  z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, { message: 'bad label key' }),
  z.string().max(63),
);

/** One endpoint (pod), from the config file or the API. */
export const endpointSpecSchema = z
  .object({
    name: dnsLabel,
    netns: netnsName,
    labels: labels.default({}),
    ipv4: ipv4.optional(),
    ipv6: ipv6.optional(),
  })
  .strict();

/** A Linux interface name. */
const ifName = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, { message: 'must be an interface name (1-15 letters, digits, "_", "." or "-")' });

const uplinkSchema = z
  .object({
    /** The interface in the agent's network namespace. */
    device: ifName,
    /** The node's underlay address with the subnet's prefix length (Tapestry answers ARP for it). */
    address: z.string().refine((s) => parseIfAddr(s) !== undefined, { message: 'not an IPv4 address with prefix length (a.b.c.d/len, len 1-31)' }),
    /** Next hop for destinations outside the underlay subnet. */
    gateway: ipv4.optional(),
    mtu: z.number().int().min(1280).max(9000).default(1500),
  })
  .strict();

const remoteEndpoint = z
  .object({
    name: dnsLabel,
    labels: labels.default({}),
    ipv4: ipv4.optional(),
    ipv6: ipv6.optional(),
  })
  .strict();

/** Another node of the cluster: what every node's ipcache and tunnel map learn about it. */
const remoteNodeSchema = z
  .object({
    name: dnsLabel,
    /** Its underlay address (the tunnel endpoint). */
    address: ipv4,
    ipv4PodCIDR: cidr4,
    ipv6PodCIDR: cidr6.optional(),
    /** Its pods (Cilium learns them from the Kubernetes API; here the cluster file lists them). */
    endpoints: z.array(remoteEndpoint).default([]),
  })
  .strict();

const clusterSchema = z
  .object({
    /** tunnel: pod traffic between nodes is encapsulated; native: routed by pod CIDR on the underlay. */
    routingMode: z.enum(['tunnel', 'native']).default('tunnel'),
    tunnelProtocol: z.enum(['vxlan', 'geneve']).default('vxlan'),
    /** UDP port of the tunnel; default 8472 (VXLAN) or 6081 (Geneve), Cilium's defaults. */
    tunnelPort: z.number().int().min(1).max(65535).optional(),
    /** SNAT pod traffic leaving the cluster to the node's address (Cilium's enable-ipv4-masquerade). */
    masquerade: z.boolean().default(true),
    /** Destinations never masqueraded (ipv4-native-routing-cidr); default: every node's pod CIDR. */
    nativeRoutingCIDR: cidr4.optional(),
    nodes: z.array(remoteNodeSchema).default([]),
  })
  .strict();

const nodeSchema = z
  .object({
    name: dnsLabel,
    ipv4PodCIDR: cidr4,
    ipv6PodCIDR: cidr6.optional(),
    routerIPv4: ipv4.optional(),
    routerIPv6: ipv6.optional(),
    /** Pods' MTU; default: the uplink's MTU, less the tunnel overhead in tunnel mode (1450 on 1500). */
    mtu: z.number().int().min(1280).max(9000).optional(),
    /** The node's link to the underlay, owned by Tapestry through AF_PACKET. */
    uplink: uplinkSchema.optional(),
    /** Name of the TAP the node's own stack reaches pods through (Cilium's cilium_host); default with an uplink. */
    hostDevice: ifName.optional(),
    /** Name prefix of the TAP devices while in the agent's namespace ("<prefix>%d", ≤ 15 chars in all). */
    tapPrefix: z
      .string()
      .regex(/^[a-z][a-z0-9]{0,9}$/, { message: 'must be 1-10 lowercase letters and digits, starting with a letter' })
      .default('tp'),
  })
  .strict();

const servicePort = z
  .object({
    port: z.number().int().min(1).max(65535),
    targetPort: z.number().int().min(1).max(65535).optional(),
    protocol: z.enum(['TCP', 'UDP']).default('TCP'),
    /** NodePort (types NodePort and LoadBalancer); allocated from 30000-32767 when absent. */
    nodePort: z.number().int().min(30000, { message: 'must be in 30000-32767' }).max(32767, { message: 'must be in 30000-32767' }).optional(),
  })
  .strict();

const serviceBackend = z
  .object({
    ip: ipv4,
    port: z.number().int().min(1).max(65535).optional(),
    weight: z.number().int().min(0).max(65535).default(100),
    state: z.enum(['active', 'terminating', 'maintenance']).default('active'),
  })
  .strict();

/** A service (Kubernetes Service, the subset one node needs): frontends and how to find backends. */
export const serviceSpecSchema = z
  .object({
    name: dnsLabel,
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP'),
    clusterIP: ipv4,
    ports: z.array(servicePort).min(1),
    /** Backends: the local endpoints with these labels … */
    selector: labels.optional(),
    /** … and/or explicit addresses. */
    backends: z.array(serviceBackend).optional(),
    externalIPs: z.array(ipv4).default([]),
    loadBalancerIP: ipv4.optional(),
    algorithm: z.enum(['random', 'maglev']).optional(),
    /** ClientIP: a client keeps its backend while it comes back within the timeout. */
    sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
    sessionAffinityTimeout: z.number().int().min(1).max(86400).default(10800),
    /** Local: only backends on this node (NodePort, LoadBalancer, externalIPs frontends). */
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    /** Local: only backends on this node (the ClusterIP frontend). */
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    /** Clients allowed to reach the LoadBalancer IP (others: drop 177); empty = everyone. */
    loadBalancerSourceRanges: z.array(cidr4).default([]),
    /** From outside, to a remote backend: the node's loadBalancer.mode (default) or this (Cilium's service.cilium.io/forwarding-mode). */
    forwardingMode: z.enum(['snat', 'dsr']).optional(),
  })
  .strict();

/** A validated service spec. */
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

const lbSchema = z
  .object({
    /** Default backend selection (Cilium bpf-lb-algorithm). */
    algorithm: z.enum(['random', 'maglev']).default('random'),
    /** Maglev table size (bpf-lb-maglev-table-size), one of Cilium's primes. */
    maglevTableSize: z.number().int().default(16381),
    /** No backend: ICMP port unreachable ("reject", default) or drop 158. */
    noBackendResponse: z.enum(['reject', 'drop']).default('reject'),
    /** NodePort/LoadBalancer to a remote backend (loadBalancer.mode): snat, dsr, or hybrid (DSR for TCP, SNAT for UDP). */
    mode: z.enum(['snat', 'dsr', 'hybrid']).default('snat'),
    /** How DSR carries the service to the backend's node (bpf-lb-dsr-dispatch): IPv4 option, or Geneve option (Geneve tunnels). */
    dsrDispatch: z.enum(['opt', 'geneve']).default('opt'),
    /** NodePort acceleration in the uplink's XDP stage (loadBalancer.acceleration). */
    acceleration: z.enum(['disabled', 'native']).default('disabled'),
  })
  .strict();

/** Conntrack settings (Cilium's bpf-ct-timeout-* and bpf-ct-global-*-max flags). */
const conntrackSchema = z
  .object({
    tcpTimeout: z.number().int().min(1).default(8000),
    tcpSynTimeout: z.number().int().min(1).default(60),
    tcpFinTimeout: z.number().int().min(1).default(10),
    anyTimeout: z.number().int().min(1).default(60),
    serviceTcpTimeout: z.number().int().min(1).default(8000),
    serviceAnyTimeout: z.number().int().min(1).default(60),
    tcpMaxEntries: z.number().int().min(1024).max(16 * 1024 * 1024).default(524288),
    anyMaxEntries: z.number().int().min(1024).max(16 * 1024 * 1024).default(262144),
    /** Fixed GC interval in seconds; 0 = Cilium's adaptive interval. */
    gcInterval: z.number().int().min(0).default(0),
    /**
     * A full table recycles its least recently used entry (true, what
     * Cilium's LRU maps do) or refuses new connections with "CT: Map
     * insertion failed" (155) and asks the GC for an early run (false).
     */
    evictWhenFull: z.boolean().default(true),
  })
  .strict();

/** Validated conntrack settings. */
export type ConntrackConfig = z.infer<typeof conntrackSchema>;

const configSchema = z
  .object({
    node: nodeSchema,
    endpoints: z.array(endpointSpecSchema).default([]),
    services: z.array(serviceSpecSchema).default([]),
    /** The rest of the cluster (needs node.uplink). */
    cluster: clusterSchema.optional(),
    /** Network policies: CiliumNetworkPolicy / NetworkPolicy documents, validated by the policy parser. */
    policies: z.array(z.record(z.string(), z.unknown())).default([]),
    /** Cilium's enforcement mode: default (a direction is enforced once a policy selects the endpoint for it), always, never. */
    policyEnforcement: z.enum(['default', 'always', 'never']).default('default'),
    loadBalancer: lbSchema.default({ algorithm: 'random', maglevTableSize: 16381, noBackendResponse: 'reject', mode: 'snat', dsrDispatch: 'opt', acceleration: 'disabled' }),
    /** The uplink's XDP prefilter: traffic from these source CIDRs is dropped first (also `tapestry prefilter update`). */
    prefilter: z.object({ deny: z.array(cidr4).default([]) }).strict().default({ deny: [] }),
    conntrack: conntrackSchema.default(conntrackSchema.parse({})),
    api: z.object({ socket: z.string().min(1).optional() }).strict().default({}),
    /** The Prometheus endpoint (Cilium's prometheus-serve-addr, port 9962): IP:PORT or [IPv6]:PORT, 0 = an ephemeral port; false = off. */
    metrics: z
      .object({
        address: z
          .custom<string | false>((v) => v === false || (typeof v === 'string' && parseListenAddress(v) !== undefined), { message: 'must be IP:PORT or [IPv6]:PORT (port 0-65535), or false' })
          .default('127.0.0.1:9962'),
      })
      .strict()
      .default({ address: '127.0.0.1:9962' }),
    /**
     * Datapath events (drops, policy verdicts; traces while a reader asks) for
     * monitor, flows and the live view. false takes the event code paths out
     * of the datapath (the baseline the cost of "monitor off" is measured
     * against); counters and metrics stay. `aggregation` is Cilium's
     * monitor-aggregation: medium (the default) traces a tracked
     * connection's packets only when conntrack reports them (new TCP flags,
     * or 5 s since the last report); none traces every frame.
     */
    monitor: z
      .object({ enabled: z.boolean().default(true), aggregation: z.enum(['none', 'medium']).default('medium') })
      .strict()
      .default({ enabled: true, aggregation: 'medium' }),
  })
  .strict();

/** A validated cluster section. */
export type ClusterConfig = z.infer<typeof clusterSchema>;
/** Another node, as the config lists it. */
export type RemoteNodeConfig = z.infer<typeof remoteNodeSchema>;
/** A validated uplink section. */
export type UplinkConfig = z.infer<typeof uplinkSchema>;

/** A validated endpoint spec. */
export type EndpointSpec = z.infer<typeof endpointSpecSchema>;
/** A validated node section. */
export type NodeConfig = z.infer<typeof nodeSchema>;
/** A validated agent configuration. */
export type AgentConfig = z.infer<typeof configSchema>;

/** A validation problem in one line: unknown fields named, else zod's message. */
function issueMessage(issue: z.core.$ZodIssue): string {
  return issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
}

/**
 * Validate an untrusted API body against `schema`; throws an Error with
 * `status` 400 and the message "field.path: problem". Nothing is applied
 * from an invalid body.
 */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw Object.assign(new Error(`${issue.path.join('.') || '(body)'}: ${issueMessage(issue)}`), { status: 400 });
}

/** Read and validate a config file. */
export function loadConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseConfig(text, path);
}

/** Validate config text; `path` names the file in errors. */
export function parseConfig(text: string, path = '<config>'): AgentConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const p = lc.linePos(e.pos[0]);
    throw new ConfigError(`${path}:${p.line}:${p.col}: ${e.message.split('\n')[0]}`);
  }
  const where = (fieldPath: (string | number)[]): string => locate(doc, lc, path, fieldPath);
  const res = configSchema.safeParse(doc.toJS() ?? {});
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const fp = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
    throw new ConfigError(`${where(fp)}: ${fieldName(fp) || '(top level)'}: ${issueMessage(issue)}`);
  }
  const cfg = res.data;
  checkSemantics(cfg, (fp, msg) => {
    throw new ConfigError(`${where(fp)}: ${fieldName(fp)}: ${msg}`);
  });
  return cfg;
}

type Fail = (fieldPath: (string | number)[], msg: string) => never;

/** Cross-field rules zod can't express: addresses inside the pod CIDRs, uniqueness. */
function checkSemantics(cfg: AgentConfig, fail: Fail): void {
  const n = cfg.node;
  const c4 = parseCidr(n.ipv4PodCIDR)!;
  const c6 = n.ipv6PodCIDR ? parseCidr(n.ipv6PodCIDR)! : undefined;
  if (n.routerIPv4 && !cidrContains(c4, n.routerIPv4)) fail(['node', 'routerIPv4'], `${n.routerIPv4} is not in ${n.ipv4PodCIDR}`);
  if (n.routerIPv6) {
    if (!c6) fail(['node', 'routerIPv6'], 'needs node.ipv6PodCIDR');
    if (!cidrContains(c6, n.routerIPv6)) fail(['node', 'routerIPv6'], `${n.routerIPv6} is not in ${n.ipv6PodCIDR}`);
  }
  if (cfg.cluster && !n.uplink) fail(['cluster'], 'needs node.uplink (the interface the cluster is reached through)');
  if (n.uplink?.gateway && !cidrContains(parseIfAddr(n.uplink.address)!.subnet, n.uplink.gateway)) {
    fail(['node', 'uplink', 'gateway'], `${n.uplink.gateway} is not in ${n.uplink.address}`);
  }
  const podCidrs: [string, (string | number)[]][] = [[n.ipv4PodCIDR, ['node', 'ipv4PodCIDR']]];
  cfg.cluster?.nodes.forEach((rn, i) => {
    if (rn.name === n.name) fail(['cluster', 'nodes', i, 'name'], `"${rn.name}" is this node`);
    const rc = parseCidr(rn.ipv4PodCIDR)!;
    for (const [other, where] of podCidrs) {
      const oc = parseCidr(other)!;
      if (cidrContains(oc, rc.nth(0)) || cidrContains(rc, oc.nth(0))) fail(['cluster', 'nodes', i, 'ipv4PodCIDR'], `${rn.ipv4PodCIDR} overlaps ${where.join('.')} ${other}`);
    }
    podCidrs.push([rn.ipv4PodCIDR, ['cluster', 'nodes', i, 'ipv4PodCIDR']]);
    rn.endpoints.forEach((ep, j) => {
      if (ep.ipv4 && !cidrContains(rc, ep.ipv4)) fail(['cluster', 'nodes', i, 'endpoints', j, 'ipv4'], `${ep.ipv4} is not in ${rn.ipv4PodCIDR}`);
      if (ep.ipv6 && (!rn.ipv6PodCIDR || !cidrContains(parseCidr(rn.ipv6PodCIDR)!, ep.ipv6))) fail(['cluster', 'nodes', i, 'endpoints', j, 'ipv6'], `${ep.ipv6} is not in ${rn.ipv6PodCIDR ?? 'the node\'s ipv6PodCIDR (unset)'}`);
    });
  });
  const names = new Map<string, number>();
  const nss = new Map<string, number>();
  const ips = new Map<string, number>();
  const svcNames = new Map<string, number>();
  cfg.services.forEach((svc, i) => {
    if (svcNames.has(svc.name)) fail(['services', i, 'name'], `"${svc.name}" is already used by services[${svcNames.get(svc.name)}]`);
    svcNames.set(svc.name, i);
  });
  const lbc = cfg.loadBalancer;
  if (lbc.dsrDispatch === 'geneve' && (cfg.cluster?.routingMode ?? 'tunnel') === 'tunnel' && (cfg.cluster?.tunnelProtocol ?? 'vxlan') !== 'geneve') {
    fail(['loadBalancer', 'dsrDispatch'], 'geneve needs cluster.tunnelProtocol: geneve');
  }
  if (lbc.dsrDispatch === 'geneve' && cfg.cluster?.routingMode === 'native') fail(['loadBalancer', 'dsrDispatch'], 'geneve needs cluster.routingMode: tunnel');
  if (lbc.acceleration === 'native' && !n.uplink) fail(['loadBalancer', 'acceleration'], 'native needs node.uplink (the XDP stage sits on it)');
  if (cfg.prefilter.deny.length > 0 && !n.uplink) fail(['prefilter', 'deny'], 'needs node.uplink (the XDP stage sits on it)');
  cfg.services.forEach((svc, i) => {
    if (svc.loadBalancerSourceRanges.length > 0 && !svc.loadBalancerIP) fail(['services', i, 'loadBalancerSourceRanges'], 'needs loadBalancerIP (source ranges apply to the LoadBalancer frontend)');
  });
  if (!MAGLEV_SIZES.includes(cfg.loadBalancer.maglevTableSize)) {
    fail(['loadBalancer', 'maglevTableSize'], `must be one of ${MAGLEV_SIZES.join(', ')}`);
  }
  cfg.endpoints.forEach((ep, i) => {
    if (names.has(ep.name)) fail(['endpoints', i, 'name'], `"${ep.name}" is already used by endpoints[${names.get(ep.name)}]`);
    names.set(ep.name, i);
    if (nss.has(ep.netns)) fail(['endpoints', i, 'netns'], `"${ep.netns}" is already used by endpoints[${nss.get(ep.netns)}]`);
    nss.set(ep.netns, i);
    checkEndpointAddrs(ep, n, (f, m) => fail(['endpoints', i, f], m));
    for (const f of ['ipv4', 'ipv6'] as const) {
      const ip = ep[f];
      if (!ip) continue;
      if (ips.has(ip)) fail(['endpoints', i, f], `${ip} is already used by endpoints[${ips.get(ip)}]`);
      ips.set(ip, i);
    }
  });
}

/** Check an endpoint's explicit addresses against the node; used for the API too. */
export function checkEndpointAddrs(ep: EndpointSpec, n: NodeConfig, fail: (field: string, msg: string) => never): void {
  const c4 = parseCidr(n.ipv4PodCIDR)!;
  if (ep.ipv4 !== undefined) {
    if (!cidrContains(c4, ep.ipv4)) fail('ipv4', `${ep.ipv4} is not in node.ipv4PodCIDR ${n.ipv4PodCIDR}`);
    if (ep.ipv4 === routerIPv4(n)) fail('ipv4', `${ep.ipv4} is the router IP`);
  }
  if (ep.ipv6 !== undefined) {
    if (!n.ipv6PodCIDR) fail('ipv6', 'node.ipv6PodCIDR is not set');
    if (!cidrContains(parseCidr(n.ipv6PodCIDR)!, ep.ipv6)) fail('ipv6', `${ep.ipv6} is not in node.ipv6PodCIDR ${n.ipv6PodCIDR}`);
  }
}

/** An interface address "a.b.c.d/len": the address and its subnet; undefined when malformed. */
export function parseIfAddr(s: string): { ip: string; prefixLen: number; subnet: Cidr } | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIPv4(m[1]!)) return undefined;
  const len = Number(m[2]);
  if (len < 1 || len > 31) return undefined;
  const mask = (0xffffffff << (32 - len)) >>> 0;
  const net = (Number(ipToBigInt(m[1]!)) & mask) >>> 0;
  return { ip: m[1]!, prefixLen: len, subnet: parseCidr(`${bigIntToIp(BigInt(net), 4)}/${len}`)! };
}

/** Bytes a tunnel adds in front of a pod's frame: outer IPv4 20 + UDP 8 + VXLAN/Geneve 8 + Ethernet 14 (Cilium's TunnelOverhead, pkg/mtu). */
export const TUNNEL_OVERHEAD = 50;

/** The pods' MTU: configured, else the uplink's (less the tunnel overhead in tunnel mode), else 1500. */
export function podMtu(cfg: AgentConfig): number {
  if (cfg.node.mtu !== undefined) return cfg.node.mtu;
  const up = cfg.node.uplink;
  if (!up) return 1500;
  return (cfg.cluster?.routingMode ?? 'tunnel') === 'tunnel' ? up.mtu - TUNNEL_OVERHEAD : up.mtu;
}

/** The tunnel's UDP port: configured or the protocol's default. */
export function tunnelPort(c: ClusterConfig): number {
  return c.tunnelPort ?? (c.tunnelProtocol === 'geneve' ? 6081 : 8472);
}

/** The IPv4 router (gateway) address: configured, or the first host of the pod CIDR. */
export function routerIPv4(n: NodeConfig): string {
  return n.routerIPv4 ?? parseCidr(n.ipv4PodCIDR)!.nth(1);
}

/** The IPv6 router address, if the node has IPv6. */
export function routerIPv6(n: NodeConfig): string | undefined {
  if (!n.ipv6PodCIDR) return undefined;
  return n.routerIPv6 ?? parseCidr(n.ipv6PodCIDR)!.nth(1);
}

function fieldName(fp: (string | number)[]): string {
  return fp.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** "FILE:LINE:COL" of the deepest YAML node on `fieldPath` that exists. */
function locate(doc: Document, lc: LineCounter, path: string, fieldPath: (string | number)[]): string {
  for (let len = fieldPath.length; len >= 0; len--) {
    const node = doc.getIn(fieldPath.slice(0, len), true);
    if (isNode(node) && node.range) {
      const p = lc.linePos(node.range[0]);
      return `${path}:${p.line}:${p.col}`;
    }
  }
  return path;
}

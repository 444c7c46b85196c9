/**
 * The node's own plumbing: the uplink Tapestry owns, tapestry_host, and the
 * cluster's addresses in the ipcache and tunnel map.
 *
 * API:
 *   new NodeManager(cfg, dp, identities)
 *   await nm.start()            nftables chain, uplink, tapestry_host, ipcache, tunnel map
 *   await nm.syncEndpoints(eps) this node's endpoints into the ipcache (after add/remove)
 *   await nm.stop()             removes the nftables table it made
 *   nm.status()                 routing mode, uplink, other nodes (for `status`)
 *   nm.remoteEndpoints()        other nodes' pods, for service selectors
 *
 * The uplink: an nftables `netdev` ingress chain with policy drop keeps the
 * node's kernel from ever seeing the uplink's frames (AF_PACKET taps see
 * them first), and IPv6 is disabled on it, so the kernel neither answers
 * nor sends there. GRO is switched on (UDP too), as a NIC would have it. The node address lives on tapestry_host instead, with
 * the router IP (Cilium's cilium_host holds that): the node's stack routes
 * pods, other nodes' pods and the underlay through tapestry_host, and
 * Tapestry answers its ARP and NDP and carries the frames on.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { parseIfAddr, podMtu, routerIPv4, routerIPv6, tunnelPort, type AgentConfig } from './config.ts';
import type { DatapathClient } from './datapath-client.ts';
import type { IdentityAllocator } from './identity.ts';
import type { Endpoint } from './endpoint-manager.ts';
import { ipBatch } from './iproute.ts';
import type { IpcacheRecord } from './worker-protocol.ts';
import { ID } from '../datapath/lib/identity.ts';

/** MACs on tapestry_host: Tapestry's side, and the node interface's own. */
export const HOST_MAC = '02:74:68:ff:ff:01';
export const HOST_KERNEL_MAC = '02:74:68:ff:ff:02';
/** Name of the nftables table (family netdev) holding the uplink's drop chain. */
export const NFT_TABLE = 'tapestry';

/** Run nft with a script on stdin; one-line errors. */
function nft(args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('nft', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'ENOENT' ? 'nft not found: install nftables (apt-get install nftables)' : `nft: ${e.message}`)),
    );
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`nft ${args.join(' ')}: ${err.trim().split('\n')[0]}`))));
    p.stdin.end(input ?? '');
  });
}

/** The node plumbing. */
export class NodeManager {
  private nftMade = false;
  private readonly known = new Set<string>();
  hostDevice: string | null;
  uplinkMac: string | null = null;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly dp: DatapathClient,
    private readonly identities: IdentityAllocator,
  ) {
    this.hostDevice = cfg.node.hostDevice ?? (cfg.node.uplink ? 'tapestry_host' : null);
  }

  async start(): Promise<void> {
    const { node, cluster } = this.cfg;
    const up = node.uplink;
    const entries: IpcacheRecord[] = [{ cidr: '0.0.0.0/0', identity: ID.WORLD }, { cidr: `${routerIPv4(node)}/32`, identity: ID.HOST }];
    const r6 = routerIPv6(node);
    if (r6) entries.push({ cidr: '::/0', identity: ID.WORLD }, { cidr: `${r6}/128`, identity: ID.HOST });
    if (up) {
      const a = parseIfAddr(up.address)!;
      entries.push({ cidr: `${a.ip}/32`, identity: ID.HOST });
      this.uplinkMac = await readMac(up.device);
      await nft(['-f', '-'], `table netdev ${NFT_TABLE} {\n  chain uplink {\n    type filter hook ingress device "${up.device}" priority -500; policy drop;\n  }\n}\n`);
      this.nftMade = true;
      await disableIpv6(up.device);
      await enableGro(up.device);
      await this.dp.request({ op: 'uplinkAttach', uplink: { device: up.device, ip: a.ip, prefixLen: a.prefixLen, ...(up.gateway ? { gateway: up.gateway } : {}), mac: this.uplinkMac, mtu: up.mtu } });
    }
    const tunnels: { cidr: string; endpoint: string }[] = [];
    for (const rn of cluster?.nodes ?? []) {
      // Another node's address is reached through the tunnel too (tunnel mode), or routed to it (native): never masqueraded.
      entries.push({ cidr: `${rn.address}/32`, identity: ID.REMOTE_NODE, tunnelEndpoint: rn.address });
      entries.push({ cidr: rn.ipv4PodCIDR, identity: ID.WORLD, tunnelEndpoint: rn.address });
      tunnels.push({ cidr: rn.ipv4PodCIDR, endpoint: rn.address });
      if (rn.ipv6PodCIDR) entries.push({ cidr: rn.ipv6PodCIDR, identity: ID.WORLD, tunnelEndpoint: rn.address });
      for (const ep of rn.endpoints) {
        const id = this.identities.for(ep.labels);
        if (ep.ipv4) entries.push({ cidr: `${ep.ipv4}/32`, identity: id, tunnelEndpoint: rn.address });
        if (ep.ipv6) entries.push({ cidr: `${ep.ipv6}/128`, identity: id, tunnelEndpoint: rn.address });
      }
    }
    await this.dp.request({ op: 'ipcacheUpsert', entries });
    if (tunnels.length > 0) await this.dp.request({ op: 'tunnelUpsert', entries: tunnels });
    if (this.hostDevice) await this.startHost(this.hostDevice);
  }

  /** Create tapestry_host and give the node's stack its addresses and routes. */
  private async startHost(name: string): Promise<void> {
    const { node, cluster } = this.cfg;
    await this.dp.request({ op: 'hostAttach', host: { name, mac: HOST_MAC, kernelMac: HOST_KERNEL_MAC } });
    const mtu = podMtu(this.cfg);
    const r4 = routerIPv4(node);
    const lines = [`link set ${name} address ${HOST_KERNEL_MAC} mtu ${mtu} up`, `addr add ${r4}/32 dev ${name}`, `route add ${node.ipv4PodCIDR} dev ${name} src ${r4}`];
    const up = node.uplink;
    if (up) {
      const a = parseIfAddr(up.address)!;
      lines.push(`addr add ${a.ip}/32 dev ${name}`, `route add ${a.subnet.toString()} dev ${name} src ${a.ip}`);
      if (up.gateway) lines.push(`route add default via ${up.gateway} dev ${name} onlink src ${a.ip}`);
    }
    for (const rn of cluster?.nodes ?? []) lines.push(`route add ${rn.ipv4PodCIDR} dev ${name} src ${up ? parseIfAddr(up.address)!.ip : r4} mtu ${mtu}`);
    const r6 = routerIPv6(node);
    if (r6 && node.ipv6PodCIDR) {
      lines.push(`addr add ${r6}/128 dev ${name} nodad`, `route add ${node.ipv6PodCIDR} dev ${name}`);
      for (const rn of cluster?.nodes ?? []) if (rn.ipv6PodCIDR) lines.push(`route add ${rn.ipv6PodCIDR} dev ${name} mtu ${mtu}`);
    }
    await ipBatch(lines);
  }

  /** Keep this node's endpoints in the ipcache (identity, no tunnel endpoint). */
  async syncEndpoints(eps: readonly Endpoint[]): Promise<void> {
    const want = new Map<string, number>();
    for (const e of eps) {
      if (e.ipv4) want.set(`${e.ipv4}/32`, e.identity);
      if (e.ipv6) want.set(`${e.ipv6}/128`, e.identity);
    }
    const gone = [...this.known].filter((c) => !want.has(c));
    if (gone.length > 0) await this.dp.request({ op: 'ipcacheDelete', cidrs: gone });
    await this.dp.request({ op: 'ipcacheUpsert', entries: [...want].map(([cidr, identity]) => ({ cidr, identity })) });
    this.known.clear();
    for (const c of want.keys()) this.known.add(c);
  }

  /** Other nodes' pods, for service selectors. */
  remoteEndpoints(): { labels: Record<string, string>; ipv4?: string }[] {
    return (this.cfg.cluster?.nodes ?? []).flatMap((n) => n.endpoints);
  }

  async stop(): Promise<void> {
    if (this.nftMade) {
      this.nftMade = false;
      await nft(['delete', 'table', 'netdev', NFT_TABLE]).catch(() => undefined);
    }
  }

  status() {
    const { node, cluster } = this.cfg;
    const up = node.uplink;
    return {
      routingMode: up ? (cluster?.routingMode ?? 'tunnel') : 'local',
      tunnel: up && (cluster?.routingMode ?? 'tunnel') === 'tunnel' ? { protocol: cluster?.tunnelProtocol ?? 'vxlan', port: cluster ? tunnelPort(cluster) : 8472 } : null,
      masquerade: up ? (cluster?.masquerade ?? true) : false,
      uplink: up ? { device: up.device, address: up.address, gateway: up.gateway ?? null, mac: this.uplinkMac, mtu: up.mtu } : null,
      hostDevice: this.hostDevice,
      nodes: (cluster?.nodes ?? []).map((n) => ({ name: n.name, address: n.address, ipv4PodCIDR: n.ipv4PodCIDR, ipv6PodCIDR: n.ipv6PodCIDR ?? null, endpoints: n.endpoints.length })),
    };
  }
}

async function readMac(dev: string): Promise<string> {
  try {
    return (await readFile(`/sys/class/net/${dev}/address`, 'utf8')).trim();
  } catch {
    throw new Error(`node.uplink.device: no interface "${dev}" in the agent's network namespace`);
  }
}

/**
 * GRO on the uplink, UDP included (what a NIC driver does by default; a
 * veth needs asking): the wire packets of one tunnel flow reach the
 * AF_PACKET ring as one UDP GSO datagram, which udp-gro.ts folds. Best
 * effort: without ethtool or the feature, packets arrive one by one.
 */
function enableGro(dev: string): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn('ethtool', ['-K', dev, 'gro', 'on', 'rx-udp-gro-forwarding', 'on'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', () => {
      process.stderr.write(`tapestry agent: ethtool not found (apt-get install ethtool): ${dev} receives without GRO\n`);
      resolve();
    });
    p.on('close', (code) => {
      if (code !== 0) process.stderr.write(`tapestry agent: ${dev}: GRO not enabled: ${err.trim().split('\n')[0]}\n`);
      resolve();
    });
  });
}

async function disableIpv6(dev: string): Promise<void> {
  try {
    await writeFile(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  } catch {
    // No IPv6 in this kernel: nothing to silence.
  }
}

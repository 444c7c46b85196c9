/**
 * Test fixture: two nodes in one process: each Datapath has an uplink, tapestry_host and
 * one pod, all on capture devices; the test carries frames between the
 * uplinks by hand (the underlay) and checks what comes out where.
 *
 *      pod a 10.0.1.10 (identity 1000)          pod b 10.0.2.20 (identity 2000)
 *            |  router 10.0.1.1                       |  router 10.0.2.1
 *      +-----------+                            +-----------+
 *      |  node A   |-- uplink 192.168.1.1/24    |  node B   |-- uplink 192.168.1.2/24
 *      +-----------+   02:aa:00:00:00:01        +-----------+   02:aa:00:00:00:02
 *            |                  \________ underlay ________/          |
 *      tapestry_host                  gateway 192.168.1.254     tapestry_host
 *                                     (outside: 10.99.0.100)
 *
 * The ipcache and tunnel map are filled as agent/node-manager.ts fills them
 * (world and host entries, the other node, its pod CIDR and pods with the
 * node as tunnel endpoint) plus this node's own pods (syncEndpoints).
 */
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { Datapath, type DatapathConfig } from '../../src/datapath/datapath.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { CB, META_SLOTS } from '../../src/packet/batch.ts';
import { CALL } from '../../src/datapath/lib/call-ids.ts';
import { ID } from '../../src/datapath/lib/identity.ts';
import type { TunnelProtocol } from '../../src/datapath/lib/encap.ts';

export const ip = w.parseIpv4;
export const HOST_MAC = '02:74:68:ff:ff:01';
export const HOST_KERNEL_MAC = '02:74:68:ff:ff:02';
export const GW = { ip: '192.168.1.254', mac: '02:aa:00:00:00:fe' };
export const OUTSIDE = '10.99.0.100';

export interface NodeSpec {
  name: string;
  ip: string;
  mac: string;
  podCidr: [string, number];
  pod6Cidr: [string, number];
  router: string;
  router6: string;
  pod: { id: number; ip4: string; ip6: string; mac: string; hostMac: string; identity: number };
}

export const A: NodeSpec = {
  name: 'A', ip: '192.168.1.1', mac: '02:aa:00:00:00:01', podCidr: ['10.0.1.0', 24], pod6Cidr: ['fd00:1::', 64],
  router: '10.0.1.1', router6: 'fd00:1::1',
  pod: { id: 11, ip4: '10.0.1.10', ip6: 'fd00:1::a', mac: '02:00:00:00:01:0a', hostMac: '02:00:00:00:02:0a', identity: 1000 },
};
export const B: NodeSpec = {
  name: 'B', ip: '192.168.1.2', mac: '02:aa:00:00:00:02', podCidr: ['10.0.2.0', 24], pod6Cidr: ['fd00:2::', 64],
  router: '10.0.2.1', router6: 'fd00:2::1',
  pod: { id: 21, ip4: '10.0.2.20', ip6: 'fd00:2::14', mac: '02:00:00:00:01:14', hostMac: '02:00:00:00:02:14', identity: 2000 },
};

export interface Opts { routingMode?: 'tunnel' | 'native'; masquerade?: boolean; tunnelProtocol?: TunnelProtocol; uplinkMtu?: number; gateway?: string | null; cfg?: Partial<DatapathConfig> }

/** One node: datapath, devices, ports, and what reached the pod's ingress stage with which identity. */
export function makeNode(self: NodeSpec, peer: NodeSpec, o: Opts = {}) {
  const cfg: DatapathConfig = {
    routerIPv4: ip(self.router), routerIPv6: w.parseIpv6(self.router6), mtu: 1450,
    routingMode: o.routingMode ?? 'tunnel', masquerade: o.masquerade ?? false,
    snatExclusion: [{ net: ip('10.0.0.0'), len: 16 }], tunnelProtocol: o.tunnelProtocol ?? 'vxlan',
    ...o.cfg,
  };
  const dp = new Datapath(cfg);
  const buf = dp.batch.buf;
  const up = new CaptureDevice('uplink', buf);
  const host = new CaptureDevice('tapestry_host', buf);
  const pod = new CaptureDevice('pod', buf);
  const upPort = dp.attachUplink(up, { ip: ip(self.ip), prefixLen: 24, gateway: o.gateway === null ? 0 : ip(o.gateway ?? GW.ip), mac: w.parseMac(self.mac), mtu: o.uplinkMtu ?? 1500 });
  const hostPort = dp.attachHost(host, w.parseMac(HOST_MAC), w.parseMac(HOST_KERNEL_MAC));
  const p = self.pod;
  const podPort = dp.addEndpoint({ id: p.id, name: 'pod', ipv4: ip(p.ip4), ipv6: w.parseIpv6(p.ip6), mac: w.parseMac(p.mac), hostMac: w.parseMac(p.hostMac), identity: p.identity }, pod);

  // node-manager start(): world, host, the other node and its pods.
  const c = dp.ipcache;
  c.upsert4(0, 0, ID.WORLD, 0);
  c.upsert4(ip(self.router), 32, ID.HOST, 0);
  c.upsert6(w.parseIpv6('::'), 0, ID.WORLD, 0);
  c.upsert6(w.parseIpv6(self.router6), 128, ID.HOST, 0);
  c.upsert4(ip(self.ip), 32, ID.HOST, 0);
  c.upsert4(ip(peer.ip), 32, ID.REMOTE_NODE, ip(peer.ip));
  c.upsert4(ip(peer.podCidr[0]), peer.podCidr[1], ID.WORLD, ip(peer.ip));
  dp.tunnelMap.upsert4(ip(peer.podCidr[0]), peer.podCidr[1], ip(peer.ip));
  c.upsert6(w.parseIpv6(peer.pod6Cidr[0]), peer.pod6Cidr[1], ID.WORLD, ip(peer.ip));
  c.upsert4(ip(peer.pod.ip4), 32, peer.pod.identity, ip(peer.ip));
  c.upsert6(w.parseIpv6(peer.pod.ip6), 128, peer.pod.identity, ip(peer.ip));
  // syncEndpoints(): this node's pods, no tunnel endpoint.
  c.upsert4(ip(p.ip4), 32, p.identity, 0);
  c.upsert6(w.parseIpv6(p.ip6), 128, p.identity, 0);

  // The endpoint's ingress stage, observed: which source identity each delivered frame carries.
  const delivered: number[] = [];
  for (const call of [CALL.IPV4_TO_ENDPOINT, CALL.IPV6_TO_ENDPOINT]) {
    const prog = dp.progs.get(call)!;
    dp.progs.set(call, {
      name: prog.name,
      run(b, vec, n) {
        for (let k = 0; k < n; k++) delivered.push(b.meta[vec[k]! * META_SLOTS + CB.SRC_LABEL]!);
        prog.run(b, vec, n);
      },
    });
  }

  /** Frames arrive on `port` as one batch at `now` ms (held frames go out after it, as in the worker). */
  const rx = (port: number, frames: Uint8Array[], now = 0, vnet?: (Uint8Array | undefined)[]) => {
    dp.batch.load(frames, port, now, vnet);
    dp.receive(port, frames.length, now);
  };
  return { dp, up, host, pod, upPort, hostPort, podPort, rx, delivered, spec: self, drops: (code: number) => dp.metrics.dropsOf(code) };
}
export type Node = ReturnType<typeof makeNode>;

/** Carry everything node `from` sent out of its uplink to node `to`'s uplink; returns the frames. */
export function wire(from: Node, to: Node, now = 0): Uint8Array[] {
  const f = from.up.take();
  if (f.length > 0) to.rx(to.upPort, f, now);
  return f;
}

export const podFrame = (n: NodeSpec, dst: string, o: { dport?: number; ttl?: number; df?: boolean; payload?: number; sport?: number } = {}) =>
  pktgen().eth({ src: n.pod.mac, dst: n.pod.hostMac }).ipv4({ src: n.pod.ip4, dst, ttl: o.ttl ?? 64, df: o.df, id: 77 })
    .tcp({ sport: o.sport ?? 40000, dport: o.dport ?? 80, flags: 'S', seq: 1 }).payload(o.payload ?? 32).build();

export const arpReq = (src: { ip: string; mac: string }, tpa: string) =>
  pktgen().eth({ src: src.mac, dst: 'ff:ff:ff:ff:ff:ff' }).arp({ op: 'request', sha: src.mac, spa: src.ip, tpa }).build();
export const arpReply = (src: { ip: string; mac: string }, to: { ip: string; mac: string }) =>
  pktgen().eth({ src: src.mac, dst: to.mac }).arp({ op: 'reply', sha: src.mac, spa: src.ip, tha: to.mac, tpa: to.ip }).build();

/** Assert `f` is an ARP request from node `n` for `target`. */
export function assertArpRequest(f: Uint8Array | undefined, n: NodeSpec, target: string): void {
  assert.ok(f, `node ${n.name} sent an ARP request for ${target}`);
  assert.equal(w.formatMac(f, 0), 'ff:ff:ff:ff:ff:ff', 'broadcast');
  assert.equal(w.formatMac(f, 6), n.mac, 'from the uplink MAC');
  assert.equal(w.get16(f, 12), w.ETH_P_ARP);
  const a = new w.ArpView().bind(f, 14, f.length - 14);
  assert.ok(a.checkLen(), 'a whole ARP packet');
  assert.equal(a.oper(), w.ARPOP_REQUEST);
  assert.equal(w.formatMac(f, a.shaOff()), n.mac);
  assert.equal(w.formatIpv4(a.spa()), n.ip);
  assert.equal(w.formatIpv4(a.tpa()), target);
}

/** IPv4 header of an Ethernet frame, checked. */
export function ipOf(f: Uint8Array): w.Ipv4View {
  const v = new w.Ipv4View().bind(f, 14, f.length - 14);
  assert.ok(v.checkLen(), 'IPv4 header well formed');
  assert.ok(v.verifyChecksum(), 'IPv4 header checksum valid');
  return v;
}

/** A and B in tunnel mode, with A's pod frame to pod b carried all the way to B's pod. */
export function tunnelPair(o: Opts = {}) {
  const a = makeNode(A, B, o);
  const b = makeNode(B, A, o);
  return { a, b };
}


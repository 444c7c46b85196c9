/**
 * OVS leg: Open vSwitch's userspace datapath (datapath_type=netdev), the
 * closest existing userspace forwarder over TAP, as the peer to beat.
 *
 *   ns <p>oa                    ovs-vswitchd (private run dir)                ns <p>ob
 *   eth0 = OVS internal port   bridge <p>br, userspace TSO on      eth0 = OVS internal port
 *   (a TAP) 10.77.0.10/32      table 0: ARP for 10.77.0.1 -> reply  (a TAP) 10.77.0.11/32
 *   default via 10.77.0.1      table 0: ip -> ct(table=1)           default via 10.77.0.1
 *                              table 1: +new -> ct(commit); +est
 *                              table 2: route by nw_dst: set MACs, dec_ttl, output
 *
 * Unlike the shared peer script (one L2 segment, pods ARP each other), the
 * OpenFlow pipeline here routes like Cilium: OVS answers ARP for the gateway
 * and rewrites MACs and TTL per hop, so the pods see exactly the same
 * topology as in the kernel and Tapestry legs. ovsdb-server and
 * ovs-vswitchd run from a private directory with private sockets and pid
 * files, so a system OVS (or another run) is never touched; teardown deletes
 * the bridge, stops both daemons and removes the directory.
 *
 * API: upOvs, ovsAvailable
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cleanups } from './cleanup.ts';
import { createNetns, deleteNetns, linkMac, podRoutes, reachable } from './netns.ts';
import { BenchError, killMentioning, killPidfile, run, runOk, sleep } from './proc.ts';
import { legNs, POD, type Topology } from './topology.ts';

/** Gateway MAC OVS answers ARP with (locally administered). */
const GW_MAC = '02:00:0a:4d:00:01';
/** OVS's own schema file from the Debian package. */
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** Why the OVS leg cannot run here, or null if the binaries and schema exist. */
export async function ovsAvailable(): Promise<string | null> {
  for (const bin of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl']) {
    const r = await run('sh', ['-c', `command -v ${bin} || test -x /usr/sbin/${bin}`]);
    if (r.code !== 0) return `${bin} not found (apt-get install openvswitch-switch)`;
  }
  const schema = await readFile(SCHEMA).then(() => true, () => false);
  return schema ? null : `${SCHEMA} missing`;
}

/** IPv4 dotted quad as 0x-prefixed hex, for NXM load actions. */
function ipHex(ip: string): string {
  return `0x${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}`;
}

/** The OpenFlow pipeline: gateway ARP responder, conntrack, L3 routing. */
function flows(pods: { ip: string; mac: string; ofport: number }[]): string[] {
  const gwMacHex = `0x${GW_MAC.replaceAll(':', '')}`;
  const arpReply = [
    'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]',
    `mod_dl_src:${GW_MAC}`,
    'load:0x2->NXM_OF_ARP_OP[]',
    'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]',
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]',
    `load:${gwMacHex}->NXM_NX_ARP_SHA[]`,
    `load:${ipHex(POD.gateway)}->NXM_OF_ARP_SPA[]`,
    'in_port',
  ].join(',');
  return [
    `table=0,priority=200,arp,arp_op=1,arp_tpa=${POD.gateway},actions=${arpReply}`,
    'table=0,priority=100,ip,ct_state=-trk,actions=ct(table=1)',
    'table=0,priority=0,actions=drop',
    'table=1,priority=100,ip,ct_state=+trk+new,actions=ct(commit),resubmit(,2)',
    'table=1,priority=90,ip,ct_state=+trk+est,actions=resubmit(,2)',
    'table=1,priority=0,actions=drop',
    ...pods.map(
      (p) => `table=2,priority=100,ip,nw_dst=${p.ip},actions=mod_dl_src:${GW_MAC},mod_dl_dst:${p.mac},dec_ttl,output:${p.ofport}`,
    ),
    'table=2,priority=0,actions=drop',
  ];
}

/** Builds the OVS leg under `prefix`; its teardown is registered in `cleanups`. */
export async function upOvs(prefix: string, cleanups: Cleanups): Promise<Topology> {
  const nsA = legNs(prefix, 'ovs', 'a');
  const nsB = legNs(prefix, 'ovs', 'b');
  const br = `${prefix}br`;
  const dir = await mkdtemp(join(tmpdir(), `tapestry-bench-${prefix}-ovs-`));
  const db = `unix:${join(dir, 'db.sock')}`;
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const vsctl = (args: string[]): Promise<string> => runOk('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args], { env });
  const ofctl = (args: string[]): Promise<string> => runOk('ovs-ofctl', args, { env });
  const ports = [`${prefix}p1`, `${prefix}p2`];
  const state = { daemons: false, bridge: false, netns: [] as string[], ovsNetdevWasThere: false };

  const down = cleanups.add('ovs leg (bridge, daemons, namespaces, run dir)', async () => {
    for (const ns of state.netns.reverse()) await deleteNetns(ns);
    if (state.bridge) await vsctl(['--if-exists', 'del-br', br]).catch(() => undefined);
    if (state.daemons) {
      // vswitchd before the database it reads, then anything else still running from our
      // run dir (a daemon interrupted before it wrote its pid file).
      await killPidfile(join(dir, 'ovs-vswitchd.pid'));
      await killPidfile(join(dir, 'ovsdb-server.pid'));
      await killMentioning(dir);
    }
    // OVS makes its TAPs persistent: if vswitchd died before del-br, they outlive it.
    // Ours: the bridge and ports (run prefix) and ovs-netdev if it was not there before us.
    const leftovers = [br, ...ports, ...(state.daemons && !state.ovsNetdevWasThere ? ['ovs-netdev'] : [])];
    for (const link of leftovers) {
      if ((await run('ip', ['link', 'show', link])).code === 0) await run('ip', ['link', 'del', link]);
    }
    state.bridge = false;
    state.daemons = false;
    await rm(dir, { recursive: true, force: true });
  });

  try {
    for (const ns of [nsA, nsB]) {
      state.netns.push(ns); // recorded before it exists: an abort mid-create still deletes it
      await createNetns(ns);
    }
    await runOk('ovsdb-tool', ['create', join(dir, 'conf.db'), SCHEMA], { env });
    state.ovsNetdevWasThere = (await run('ip', ['link', 'show', 'ovs-netdev'])).code === 0;
    state.daemons = true;
    await runOk('ovsdb-server', [
      join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`,
      `--pidfile=${join(dir, 'ovsdb-server.pid')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`,
      `--log-file=${join(dir, 'ovsdb-server.log')}`, '--detach',
    ], { env, detached: true });
    await vsctl(['--no-wait', 'init']);
    await vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=true']);
    await runOk('ovs-vswitchd', [
      db, `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`, `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`,
      `--log-file=${join(dir, 'ovs-vswitchd.log')}`, '--detach',
    ], { env, detached: true });
    state.bridge = true;
    await vsctl(['add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev']);
    // OpenFlow calls go to vswitchd's management socket in our run dir, not /var/run/openvswitch.
    const mgmt = `unix:${join(dir, `${br}.mgmt`)}`;

    const pods: { ip: string; mac: string; ofport: number }[] = [];
    for (const [i, ns, ip] of [[1, nsA, POD.ipA], [2, nsB, POD.ipB]] as const) {
      const port = ports[i - 1]!;
      await vsctl(['add-port', br, port, '--', 'set', 'interface', port, 'type=internal', `ofport_request=${i}`]);
      let present = false;
      for (let t = 0; t < 50 && !present; t++) {
        present = (await run('ip', ['link', 'show', port])).code === 0;
        if (!present) await sleep(100);
      }
      if (!present) throw new BenchError(`ovs leg: internal port ${port} never appeared`);
      await runOk('ip', ['link', 'set', port, 'netns', ns, 'name', 'eth0']);
      await podRoutes(ns, 'eth0', ip, POD.gateway, POD.mtu);
      pods.push({ ip, mac: await linkMac(ns, 'eth0'), ofport: i });
    }
    await ofctl(['del-flows', mgmt]);
    await runOk('ovs-ofctl', ['add-flows', mgmt, '-'], { env, input: `${flows(pods).join('\n')}\n` });
    if (!(await reachable(nsA, nsB, POD.ipB))) {
      const log = await readFile(join(dir, 'ovs-vswitchd.log'), 'utf8').catch(() => '');
      throw new BenchError(`ovs leg: ${nsA} cannot reach ${POD.ipB}; vswitchd log tail: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    }
  } catch (err) {
    await down();
    throw err;
  }
  return {
    leg: 'ovs',
    nsA,
    nsB,
    ipA: POD.ipA,
    ipB: POD.ipB,
    extras: {},
    notes: ['ovs-vswitchd datapath_type=netdev, internal (TAP) ports as pod eth0, userspace TSO, ct(commit) pipeline, OpenFlow L3 routing via 10.77.0.1'],
    down,
  };
}

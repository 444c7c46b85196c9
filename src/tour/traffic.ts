/**
 * The tour's traffic, one function per kind of path, each recording its
 * steps as it goes. Every command is bounded in count (ping -c, a fixed
 * number of curls, iperf3 -t) and in time (run()'s timeout).
 *
 * API:
 *   startServers(t)            HTTP :8080 in both web pods (answers "web@<node>"; /who: "<client> web@<node>"), iperf3 -s in db
 *   pingSameNode(t), pingCrossNode(t), curlCrossNode(t), iperfCrossNode(t)
 *   clusterIp(t)               the service's two backends, one per node, both answering
 *   masquerade(t)              pods -> outside: the outside sees the node's address; iperf3 out
 *   hostToPod(t)               node n1's own stack -> pods on n2
 *   spoof(t)                   a pod sending from an address not its own is dropped
 */
import type { PodHandle } from '../testbed/cluster.ts';
import type { CountersJson } from '../cli/format.ts';
import { iperfTcp, iperfUdp, pingRtt, record, why } from './report.ts';
import { run, serve, sleep } from './run.ts';
import { SERVICE, type Tour } from './topology.ts';

export const HTTP_PORT = 8080;
export const IPERF_PORT = 5201;

export const url = (ip: string, port?: number): string => `http://${ip.includes(':') ? `[${ip}]` : ip}${port ? `:${port}` : ''}/`;

/** Ping `dst` from `ns` (3 echoes, 0.2 s apart, 2 s to answer) and record it. */
async function ping(step: string, ns: string, path: string, dst: string): Promise<boolean> {
  const r = await run(ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', dst], 10000);
  record(step, path, r.status === 0, r.status === 0 ? pingRtt(r.stdout) : why(r));
  return r.status === 0;
}

/** One bounded curl; `body` is what the server answered. */
export async function curl(ns: string, target: string): Promise<{ ok: boolean; body: string; ms: number; err: string }> {
  const r = await run(ns, 'curl', ['-sS', '--max-time', '3', '-w', '\n%{time_total}', target], 5000);
  const lines = r.stdout.trimEnd().split('\n');
  const ms = Number(lines.pop()) * 1000;
  return { ok: r.status === 0, body: lines.join('\n').trim(), ms, err: why(r) };
}

/** Wait until `port` listens in `ns` (at most 10 s). */
async function listening(ns: string, port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const r = await run(ns, 'ss', ['-Hltn', `sport = :${port}`], 3000);
    if (r.stdout.trim() !== '') return true;
    await sleep(100);
  }
  return false;
}

/** HTTP servers in the web pods (each answers its name and node), iperf3 -s in db. */
export async function startServers(t: Tour): Promise<void> {
  // "/" answers the pod's name; "/who" also the client address the pod saw (north-south.ts).
  const js = (who: string) => `require('http').createServer((q,r)=>r.end((q.url==='/who'?q.socket.remoteAddress.replace('::ffff:','')+' ':'')+'${who}\\n')).listen(${HTTP_PORT})`;
  for (const [pod, node] of [[t.web1, 'n1'], [t.web2, 'n2']] as const) serve(pod.ns, process.execPath, ['-e', js(`${pod.name}@${node}`)]);
  serve(t.db.ns, 'iperf3', ['-s', '-p', String(IPERF_PORT)]);
  const ready = await Promise.all([listening(t.web1.ns, HTTP_PORT), listening(t.web2.ns, HTTP_PORT), listening(t.db.ns, IPERF_PORT)]);
  if (!ready.every(Boolean)) throw new Error('the HTTP servers or iperf3 -s in the pods did not start within 10 s');
}

export async function pingSameNode(t: Tour): Promise<void> {
  await ping('ping', t.client.ns, `client@n1 -> web@n1 ${t.web1.ipv4}`, t.web1.ipv4);
  await ping('ping6', t.client.ns, `client@n1 -> web@n1 ${t.web1.ipv6}`, t.web1.ipv6);
}

export async function pingCrossNode(t: Tour): Promise<void> {
  await ping('ping', t.client.ns, `client@n1 -> db@n2 ${t.db.ipv4} (VXLAN)`, t.db.ipv4);
  await ping('ping6', t.client.ns, `client@n1 -> db@n2 ${t.db.ipv6}`, t.db.ipv6);
  await ping('ping', t.db.ns, `db@n2 -> client@n1 ${t.client.ipv4}`, t.client.ipv4);
  await ping('ping6', t.db.ns, `db@n2 -> client@n1 ${t.client.ipv6}`, t.client.ipv6);
}

export async function curlCrossNode(t: Tour): Promise<void> {
  for (const ip of [t.web2.ipv4, t.web2.ipv6]) {
    const r = await curl(t.client.ns, url(ip, HTTP_PORT));
    const ok = r.ok && r.body === 'web@n2';
    record('curl', `client@n1 -> ${url(ip, HTTP_PORT)}`, ok, ok ? `"${r.body}" in ${r.ms.toFixed(1)} ms` : r.ok ? `answered "${r.body}"` : r.err);
  }
}

/** Run iperf3 -J from `ns`; a JSON "error" (or the process's) in one line when it fails. */
async function iperf(ns: string, args: string[], seconds: number): Promise<{ stdout: string; err: string }> {
  const r = await run(ns, 'iperf3', [...args, '-t', String(seconds), '-J'], (seconds + 15) * 1000);
  let err = why(r);
  try {
    err = (JSON.parse(r.stdout) as { error?: string }).error ?? err;
  } catch {
    // not JSON: keep stderr
  }
  return { stdout: r.stdout, err };
}

/** Fewer bytes than this in a TCP run means the stream stalled (the e2e tests' bar). */
const TCP_MIN_BYTES = 10_000_000;

/** One iperf3 TCP stream from `ns`, recorded with its throughput. */
export async function tcpStream(ns: string, path: string, args: string[], seconds: number): Promise<void> {
  const r = await iperf(ns, args, seconds);
  const tr = iperfTcp(r.stdout);
  const ok = tr !== null && tr.bytes >= TCP_MIN_BYTES;
  const stalled = tr && !ok ? ` (stalled: ${(tr.bytes / 1e6).toFixed(1)} MB crossed)` : '';
  record('iperf3', path, ok, tr ? `${tr.gbps.toFixed(2)} Gbit/s, ${tr.retransmits} retransmits${stalled}` : r.err);
}

export async function iperfCrossNode(t: Tour): Promise<void> {
  await tcpStream(t.client.ns, `client@n1 -> db@n2 TCP, 1 stream, 3 s`, ['-c', t.db.ipv4, '-p', String(IPERF_PORT)], 3);
  const udpPath = `client@n1 -> db@n2 UDP, 100 Mbit/s, 2 s`;
  const udp = await iperf(t.client.ns, ['-c', t.db.ipv4, '-p', String(IPERF_PORT), '-u', '-b', '100M'], 2);
  const ur = iperfUdp(udp.stdout);
  record('iperf3', udpPath, ur !== null && ur.lostPercent < 50, ur ? `${ur.mbps.toFixed(0)} Mbit/s, ${ur.lostPercent.toFixed(2)}% lost` : udp.err);
}

/** Curl the ClusterIP from `from` until both backends answered: at least 8, at most 24 requests, 3 failures end it. */
async function clusterIpFrom(from: PodHandle, node: string): Promise<void> {
  const vip = url(SERVICE.clusterIP);
  const seen = new Map<string, number>();
  let errors = 0;
  let lastErr = '';
  for (let i = 0; i < 24 && errors < 3 && (i < 8 || seen.size < 2); i++) {
    const r = await curl(from.ns, vip);
    if (r.ok) {
      seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
    } else {
      errors++;
      lastErr = r.err;
    }
  }
  const ok = errors === 0 && seen.has('web@n1') && seen.has('web@n2') && seen.size === 2;
  const tally = [...seen].sort().map(([b, n]) => `${b} ×${n}`).join(', ');
  record('service', `${from.name}@${node} -> ClusterIP ${SERVICE.clusterIP}:80`, ok, `${tally || 'no answer'}${errors ? `; ${errors} failed (${lastErr})` : ''}`);
}

export async function clusterIp(t: Tour): Promise<void> {
  await clusterIpFrom(t.client, 'n1');
  await clusterIpFrom(t.db, 'n2');
}

export async function masquerade(t: Tour): Promise<void> {
  const out = t.c.outside.ip;
  for (const [pod, node] of [[t.client, t.n1], [t.db, t.n2]] as const) {
    const r = await curl(pod.ns, url(out));
    const seenAs = r.body.split(':')[0];
    const ok = r.ok && seenAs === node.address;
    record('masq', `${pod.name}@${node.name} ${pod.ipv4} -> outside ${out}`, ok, r.ok ? `outside saw ${r.body}${ok ? ` (${node.name}'s address)` : ', not the node address'}` : r.err);
  }
  await tcpStream(t.client.ns, `client@n1 -> outside TCP, SNAT, 2 s`, ['-c', out], 2);
}

export async function hostToPod(t: Tour): Promise<void> {
  await ping('host', t.n1.ns, `node n1 stack -> db@n2 ${t.db.ipv4}`, t.db.ipv4);
  const r = await curl(t.n1.ns, url(t.web2.ipv4, HTTP_PORT));
  const ok = r.ok && r.body === 'web@n2';
  record('host', `node n1 stack -> ${url(t.web2.ipv4, HTTP_PORT)}`, ok, ok ? `"${r.body}" in ${r.ms.toFixed(1)} ms` : r.ok ? `answered "${r.body}"` : r.err);
}

/** Expected to fail: the datapath drops a source address that is not the pod's (DROP_INVALID_SIP, 132). */
export async function spoof(t: Tour): Promise<void> {
  const fake = t.client.ipv4.replace(/\.\d+$/, '.99');
  const n132 = (c: CountersJson) => c.drops.filter((d) => d.reason === 132).reduce((a, d) => a + d.count, 0);
  const before = await t.n1.agent!.api<CountersJson>('GET', '/v1/metrics/datapath');
  await run(t.client.ns, 'ip', ['addr', 'add', `${fake}/32`, 'dev', 'eth0'], 5000);
  const r = await run(t.client.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', fake, t.db.ipv4], 10000);
  await run(t.client.ns, 'ip', ['addr', 'del', `${fake}/32`, 'dev', 'eth0'], 5000);
  const after = await t.n1.agent!.api<CountersJson>('GET', '/v1/metrics/datapath');
  const n = n132(after) - n132(before);
  record('spoof', `client@n1 as ${fake} -> db@n2`, r.status !== 0 && n >= 2, `${r.status !== 0 ? 'blocked' : 'NOT blocked'}, ${n} drops "Invalid source ip" on n1`);
}

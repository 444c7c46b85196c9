/**
 * The tour's north-south steps: the outside host reaches the web and db
 * pods through a NodePort on each node, once per forwarding mode.
 *
 *   web-snat  NodePort 30080 -> app=web :8080   forwardingMode snat
 *   web-dsr   NodePort 30081 -> app=web :8080   forwardingMode dsr
 *   db-snat   NodePort 30201 -> app=db  :5201   forwardingMode snat
 *   db-dsr    NodePort 30202 -> app=db  :5201   forwardingMode dsr
 *
 * Each web pod's "/who" answers the client address it saw, which is the
 * point: through SNAT a backend on the other node sees the node's address,
 * a local backend and every DSR backend see the outside host itself.
 *
 * API: northSouth(t)   (the services are topology.ts's NORTH_SOUTH_SERVICES)
 */
import { record } from './report.ts';
import { curl, tcpStream, url } from './traffic.ts';
import type { Tour } from './topology.ts';
import type { NodeHandle } from '../testbed/cluster.ts';

/** Curl "/who" through `node`:`port` until both web pods answered (4 to 16 requests); check who saw which client. */
async function viaNodePort(t: Tour, node: NodeHandle, port: number, mode: 'SNAT' | 'DSR'): Promise<void> {
  const outside = t.c.outside.ip;
  const seen = new Map<string, number>();
  let wrong = '';
  let errors = 0;
  for (let i = 0; i < 16 && errors < 3 && (i < 4 || new Set([...seen.keys()].map((k) => k.split(' ')[1])).size < 2); i++) {
    const r = await curl(t.c.outside.ns, url(node.address, port) + 'who');
    if (!r.ok) {
      errors++;
      continue;
    }
    seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
    const [client, pod] = r.body.split(' ');
    const local = pod === `web@${node.name}`;
    const expected = mode === 'DSR' || local ? outside : node.address;
    if (client !== expected) wrong = `${pod} saw ${client}, expected ${expected}`;
  }
  const pods = new Set([...seen.keys()].map((k) => k.split(' ')[1]));
  const ok = errors === 0 && pods.size === 2 && wrong === '';
  const tally = [...seen].sort().map(([b, n]) => `${b.split(' ')[1]} saw ${b.split(' ')[0]} ×${n}`).join(', ');
  record('nodeport', `outside -> ${node.name} ${node.address}:${port} (${mode})`, ok, `${tally || 'no answer'}${errors ? `; ${errors} failed` : ''}${wrong ? `; ${wrong}` : ''}`);
}

/** curl through every node in both modes, then an iperf3 stream to db@n2 through each node's NodePort in both modes. */
export async function northSouth(t: Tour): Promise<void> {
  for (const [port, mode] of [[30080, 'SNAT'], [30081, 'DSR']] as const) {
    for (const node of [t.n1, t.n2]) await viaNodePort(t, node, port, mode);
  }
  for (const [port, mode] of [[30201, 'SNAT'], [30202, 'DSR']] as const) {
    for (const node of [t.n1, t.n2]) {
      const where = node === t.n2 ? 'local backend' : 'backend on n2';
      await tcpStream(t.c.outside.ns, `outside -> ${node.name}:${port} -> db@n2 TCP (${mode}, ${where}), 2 s`, ['-c', node.address, '-p', String(port)], 2);
    }
  }
}

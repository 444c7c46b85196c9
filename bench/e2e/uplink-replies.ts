/**
 * "The DSR reply path never crosses the ingress node", checked on the wire:
 * while traffic from the outside host runs through node 1's NodePort to a
 * backend on node 2, tcpdump on node 1's uplink (eth0 in its namespace, both
 * directions, `--immediate-mode`) keeps every TCP packet that is
 *
 *   - addressed to the client (node 1 sending replies on, as SNAT does), or
 *   - from the backend port (the backend's replies reaching node 1), or
 *   - a SYN (the client's SYNs: the capture's liveness proof),
 *
 * and the pcap is classified here. Replies must be 0 in DSR mode; in SNAT
 * mode the same capture counts the replies node 1 relays, which shows the
 * method sees them when they are there. The capture runs under `timeout`,
 * so it never outlives its bound even if the harness is killed.
 *
 * API: watchUplinkReplies, UplinkReplies
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsArgs } from './netns.ts';
import { readPcap } from './pcap.ts';
import { BenchError, sleep, startBackground, stopProcess } from './proc.ts';

/** What one capture on node 1's uplink found. */
export interface UplinkReplies {
  /** Reply packets on node 1's uplink: to the client, or from the backend port. */
  replies: number;
  /** Of those: addressed to the client. */
  toClient: number;
  /** Of those: from the backend port (on the way into node 1). */
  fromBackend: number;
  /** The client's SYNs seen (liveness: iperf3 opens a control and a data connection). */
  clientSyns: number;
  /** Frames the capture dropped (NaN if tcpdump did not say). */
  dropped: number;
  /** Client SYNs were seen and nothing was dropped, so a 0 can be trusted. */
  verified: boolean;
  /** Up to 5 counted packets, as text. */
  samples: string[];
}

const ETH_P_IP = 0x0800;
const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

const ip4 = (b: Buffer, off: number): string => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

/** Classifies the captured frames. */
function classify(file: Buffer, client: string, backendPort: number): Omit<UplinkReplies, 'dropped' | 'verified'> {
  const out = { replies: 0, toClient: 0, fromBackend: 0, clientSyns: 0, samples: [] as string[] };
  for (const { data: b } of readPcap(file)) {
    if (b.length < 14 + 20 || b.readUInt16BE(12) !== ETH_P_IP) continue;
    const l3 = 14;
    const ihl = (b[l3]! & 0x0f) * 4;
    if (b[l3 + 9] !== IPPROTO_TCP || l3 + ihl + 14 > b.length) continue;
    const src = ip4(b, l3 + 12);
    const dst = ip4(b, l3 + 16);
    const l4 = l3 + ihl;
    const sport = b.readUInt16BE(l4);
    const dport = b.readUInt16BE(l4 + 2);
    const flags = b[l4 + 13]!;
    if (src === client && flags & TCP_SYN && !(flags & TCP_ACK)) out.clientSyns++;
    const toClient = dst === client;
    const fromBackend = sport === backendPort;
    if (!toClient && !fromBackend) continue;
    out.replies++;
    if (toClient) out.toClient++;
    if (fromBackend) out.fromBackend++;
    if (out.samples.length < 5) out.samples.push(`${src}:${sport} -> ${dst}:${dport} flags 0x${flags.toString(16)}`);
  }
  return out;
}

/**
 * Runs `traffic` while capturing on `dev` in node 1's namespace `ns`, and
 * counts the reply packets of flows from `client` to a backend on
 * `backendPort`. `boundSeconds` caps the tcpdump (traffic plus a margin).
 */
export async function watchUplinkReplies<T>(
  ns: string,
  dev: string,
  client: string,
  backendPort: number,
  boundSeconds: number,
  traffic: () => Promise<T>,
): Promise<{ value?: T; error?: Error; replies: UplinkReplies }> {
  const dir = await mkdtemp(join(tmpdir(), `${ns}-uplink-`));
  const file = join(dir, `${dev}.pcap`);
  const filter = `tcp and (dst host ${client} or src port ${backendPort} or tcp[tcpflags] & tcp-syn != 0)`;
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const bg = startBackground(
    'ip',
    nsArgs(ns, 'timeout', ['-s', 'INT', String(Math.ceil(boundSeconds)), 'tcpdump', '-nn', '-U', '-Z', 'root', '--immediate-mode', '-i', dev, '-s', '96', '-w', file, filter]),
    { traffic: true, onLine: (line) => line.includes('listening on') && listening() },
  );
  try {
    const outcome = await Promise.race([ready.then(() => 'ok'), bg.exited.then((c) => `exited with ${c}`), sleep(5_000).then(() => 'no "listening on" within 5 s')]);
    if (outcome !== 'ok') throw new BenchError(`tcpdump on ${dev} in ${ns}: ${outcome}: ${bg.output().trim().slice(-300)}`);
    let value: T | undefined;
    let error: Error | undefined;
    try {
      value = await traffic();
    } catch (err) {
      error = err as Error;
    }
    await sleep(300); // the last segments and the FINs still count
    await stopProcess(bg, 5_000, 'SIGINT');
    const m = /(\d+) packets? dropped by kernel/.exec(bg.output());
    const dropped = m ? Number(m[1]) : NaN;
    const found = classify(await readFile(file), client, backendPort);
    const replies: UplinkReplies = { ...found, dropped, verified: found.clientSyns > 0 && dropped === 0 };
    return { ...(error ? { error } : { value: value as T }), replies };
  } finally {
    await stopProcess(bg, 5_000, 'SIGINT');
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Service benchmarks: connection setup through a ClusterIP with few and
 * with many services, and the hooks each leg provides for them.
 *
 *   kernel:   kube-proxy style — an nftables nat chain in the router
 *             namespace with one `ip daddr VIP tcp dport 80 dnat to B:8080`
 *             rule per service, walked linearly by every new connection
 *             (as iptables' KUBE-SERVICES chain is); loaded with `nft -f`.
 *   tapestry: services PUT through the agent's API (/v1/service) one by one.
 *
 * Service i has VIP 10.97.((i+1)>>8).((i+1)&255) (inside the 10.96.0.0/12
 * service range, apart from the iperf3 ClusterIP 10.96.0.10), port 80 -> pod B:8080; with
 * N services the target is service N-1, the last one added (for the
 * kernel: the last rule, so the whole chain is walked).
 *
 * The measurement: a tiny TCP server in pod B writes one byte on accept and
 * closes; a node client in pod A opens `count` sequential connections and
 * times connect() to first byte (µs), after a few unrecorded warm-up ones.
 * Every loop is bounded by a count and a deadline.
 *
 * API: ServiceBench, ConnSetup, vipFor, connSetup, kernelServices,
 *      tapestryServices, SVC_PORT, SVC_TARGET_PORT
 */
import { Agent } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentApi } from './agent-api.ts';
import { nsArgs, waitListening } from './netns.ts';
import { BenchError, run, runOk, startBackground, stopProcess } from './proc.ts';

/** Frontend port of the benchmark services and the port the server in B listens on. */
export const SVC_PORT = 80;
export const SVC_TARGET_PORT = 8080;

/** A leg's service hooks. */
export interface ServiceBench {
  /** ClusterIP (port 5201) whose only backend is pod B, for the iperf3 test; absent when the leg has none. */
  iperfVip?: string;
  /** Brings the leg to `n` services in total (called with increasing n), the target added last; returns its VIP. */
  load(n: number, deadlineMs: number): Promise<string>;
  /** Removes what load() created (safe to call twice; the leg's teardown covers it too). */
  unload(): Promise<void>;
}

/** One connection-setup figure. */
export interface ConnSetup {
  /** Services installed (0: straight to pod B, no service). */
  services: number;
  p50Us: number;
  p99Us: number;
  count: number;
  fails: number;
  /** Time it took to install the services, ms (NaN for 0). */
  loadMs: number;
}

/** VIP of service i (0-based). */
export function vipFor(i: number): string {
  const n = i + 1;
  if (n > 0xfffe) throw new BenchError(`service index ${i} out of the 10.97.0.0/16 range`);
  return `10.97.${n >> 8}.${n & 255}`;
}

/** Percentile of sorted samples (nearest rank). */
function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Client run inside pod A: argv host port warmup count deadlineMs; prints {samples, fails}. */
const CLIENT = `
const net=require('net');const [host,port,warm,count,dl]=process.argv.slice(1).map((x,i)=>i?Number(x):x);
const end=Date.now()+dl;const out=[];let fails=0;
function one(){return new Promise(res=>{const t0=process.hrtime.bigint();let done=false;
const s=net.connect({host,port,noDelay:true});
const fin=v=>{if(done)return;done=true;clearTimeout(tm);s.destroy();res(v)};
const tm=setTimeout(()=>fin(null),2000);
s.once('data',()=>fin(Number(process.hrtime.bigint()-t0)/1000));s.once('error',()=>fin(null));s.once('close',()=>fin(null));});}
(async()=>{for(let i=0;i<warm+count&&Date.now()<end;i++){const v=await one();if(i<warm)continue;if(v===null)fails++;else out.push(v);}
process.stdout.write(JSON.stringify({samples:out,fails}));})();`;

/** Server run inside pod B: one byte on accept, then close; exits by itself after `lifeMs`. */
function serverScript(ip: string, lifeMs: number): string {
  return (
    `const s=require('net').createServer(c=>{c.on('error',()=>{});c.end('x')}).listen(${SVC_TARGET_PORT},'${ip}');` +
    `setTimeout(()=>process.exit(0),${lifeMs}).unref()`
  );
}

/** Starts the one-byte server in pod B; returns its stop function. */
export async function startConnServer(nsB: string, ipB: string, lifeMs: number): Promise<() => Promise<void>> {
  const server = startBackground('ip', nsArgs(nsB, process.execPath, ['-e', serverScript(ipB, lifeMs)]), { traffic: true });
  if (!(await waitListening(nsB, 'tcp', SVC_TARGET_PORT))) {
    await stopProcess(server, 1_000);
    throw new BenchError(`connection server in ${nsB} did not start: ${server.output().trim()}`);
  }
  return async () => {
    await stopProcess(server, 1_000);
  };
}

/** Sequential connection setup from pod A to host:port: `count` samples after `warmup`, within `deadlineMs`. */
export async function connSetup(
  nsA: string,
  host: string,
  port: number,
  count: number,
  deadlineMs: number,
  warmup = 20,
): Promise<{ p50Us: number; p99Us: number; count: number; fails: number }> {
  const r = await run('ip', nsArgs(nsA, process.execPath, ['-e', CLIENT, host, String(port), String(warmup), String(count), String(deadlineMs)]), {
    timeoutMs: deadlineMs + 15_000,
    traffic: true,
  });
  if (r.timedOut) throw new BenchError(`connection client to ${host}:${port} timed out`);
  let doc: { samples: number[]; fails: number };
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    throw new BenchError(`connection client to ${host}:${port}: no result (exit ${r.code ?? r.signal}) ${r.stderr.trim().slice(-200)}`);
  }
  const s = doc.samples.sort((a, b) => a - b);
  if (!s.length) throw new BenchError(`no connection to ${host}:${port} succeeded (${doc.fails} failed)`);
  return { p50Us: pct(s, 50), p99Us: pct(s, 99), count: s.length, fails: doc.fails };
}

/**
 * Kernel leg: nft table `<prefix>svc` in the router namespace (prerouting
 * nat hook, jump to a linear `services` chain). Each load() rewrites the
 * table atomically with `nft -f`; the namespace's deletion removes it too.
 */
export function kernelServices(nsR: string, prefix: string, ipB: string): ServiceBench {
  const table = `${prefix}svc`;
  let loaded = false;
  return {
    async load(n, deadlineMs) {
      const dir = await mkdtemp(join(tmpdir(), `tapestry-bench-${prefix}-nft-`));
      try {
        const lines = [
          `table ip ${table}`,
          `delete table ip ${table}`,
          `table ip ${table} {`,
          `  chain services {`,
        ];
        for (let i = 0; i < n; i++) lines.push(`    ip daddr ${vipFor(i)} tcp dport ${SVC_PORT} dnat to ${ipB}:${SVC_TARGET_PORT}`);
        lines.push('  }', '  chain pre {', '    type nat hook prerouting priority dstnat; policy accept;', '    jump services', '  }', '}', '');
        const file = join(dir, 'services.nft');
        await writeFile(file, lines.join('\n'));
        loaded = true;
        await runOk('ip', nsArgs(nsR, 'nft', ['-f', file]), { timeoutMs: deadlineMs });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return vipFor(n - 1);
    },
    async unload() {
      if (!loaded) return;
      loaded = false;
      await run('ip', nsArgs(nsR, 'nft', ['delete', 'table', 'ip', table]), { timeoutMs: 10_000 });
    },
  };
}

/** Service spec of service i for the agent's API. */
function spec(i: number, ipB: string): unknown {
  return { name: `bsvc${i}`, clusterIP: vipFor(i), ports: [{ port: SVC_PORT, targetPort: SVC_TARGET_PORT }], backends: [{ ip: ipB }] };
}

/**
 * Tapestry leg: services added through PUT /v1/service on the agent's
 * socket — fillers a few at a time, the target alone after them.
 */
export function tapestryServices(socket: string, ipB: string, iperfVip: string): ServiceBench {
  let have = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  return {
    iperfVip,
    async load(n, deadlineMs) {
      const deadline = Date.now() + deadlineMs;
      const PAR = 4;
      let next = have;
      const worker = async (): Promise<void> => {
        while (next < n - 1) {
          if (Date.now() > deadline) throw new BenchError(`adding services: deadline passed at ${next}/${n}`);
          const i = next++;
          await agentApi(socket, 'PUT', '/v1/service', spec(i, ipB), agent);
        }
      };
      await Promise.all(Array.from({ length: PAR }, worker));
      if (n - 1 >= have) await agentApi(socket, 'PUT', '/v1/service', spec(n - 1, ipB), agent);
      have = n;
      return vipFor(n - 1);
    },
    async unload() {
      agent.destroy(); // the services go with the agent
    },
  };
}

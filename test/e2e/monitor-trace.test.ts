/**
 * End to end: `tapestry monitor` on a real connection. A curl between two
 * pods shows Cilium's trace lines with trace reasons (new, reply,
 * established) at from-endpoint and to-endpoint, Cilium's conntrack debug
 * lines with `--type debug`, and monitor aggregation (medium, the default)
 * keeps a download of hundreds of frames to a handful of trace lines.
 *
 *   client ──curl :80──> web (node http server, 4 MB at /big)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { bg, waitFor } from './netns-tools.ts';

interface Ep { id: number; name: string; ipv4: string; identity: number }
interface PortRow { name: string; endpointId: number; rxFrames: number; txFrames: number }

function curlOk(ns: string, url: string): boolean {
  return sh(ns, 'curl', ['-s', '-o', '/dev/null', '--max-time', '5', url], { timeoutMs: 10000 }).status === 0;
}

describe('monitor: trace reasons, debug lines and aggregation on a real curl', { timeout: 120_000 }, () => {
  const p = runPrefix('tt');
  const ns = (n: string) => `${p}${n}`;
  let agent: AgentProcess;
  const children: ChildProcess[] = [];
  let web: Ep;
  let client: Ep;

  /** Run a monitor with `args` while `during` runs; its output lines. */
  async function monitorDuring(args: string[], during: () => void): Promise<string[]> {
    const m = spawn(TAPESTRY, ['--socket', agent.socket, 'monitor', ...args, '--duration', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(m);
    let out = '';
    m.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 10000;
    while (!out.includes('Listening for events') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    during();
    const code = await new Promise((r) => m.on('exit', r));
    assert.equal(code, 0, 'monitor exits after --duration');
    return out.split('\n').filter(Boolean);
  }

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'mtrace', ipv4PodCIDR: '10.217.0.0/24', tapPrefix: p },
      endpoints: [
        { name: 'web', netns: ns('w'), labels: { app: 'web' } },
        { name: 'client', netns: ns('c'), labels: { app: 'client' } },
      ],
      metrics: { address: false },
    });
    const eps = await agent.api<Ep[]>('GET', '/v1/endpoint');
    web = eps.find((e) => e.name === 'web')!;
    client = eps.find((e) => e.name === 'client')!;
    const server = "const b=Buffer.alloc(4<<20,97);require('http').createServer((q,r)=>r.end(q.url==='/big'?b:'ok\\n')).listen(80)";
    bg(children, ns('w'), process.execPath, ['-e', server]);
    await waitFor('the web server', () => curlOk(ns('w'), 'http://127.0.0.1/'));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  test('trace lines carry the reason: new SYN, reply SYN-ACK, established ACK, at from- and to-endpoint', async () => {
    const lines = await monitorDuring(['--type', 'trace'], () => assert.ok(curlOk(ns('c'), `http://${web.ipv4}/`), 'client -> web'));
    const flow = (s: string) => lines.filter((l) => l.includes(s));
    const c = client.ipv4.replace(/\./g, '\\.'), w = web.ipv4.replace(/\./g, '\\.');
    const syn = new RegExp(`^-> endpoint ${web.id} flow 0x[0-9a-f]+ , identity ${client.identity}->${web.identity} state new ifindex \\d+ orig-ip 0\\.0\\.0\\.0: ${c}:\\d+ -> ${w}:80 tcp SYN$`);
    assert.ok(lines.some((l) => syn.test(l)), `the SYN at to-endpoint, state new:\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => new RegExp(`^<- endpoint ${client.id} flow 0x[0-9a-f]+ , identity ${client.identity}->\\S+ state new .*: ${c}:\\d+ -> ${w}:80 tcp SYN$`).test(l)), 'the SYN at from-endpoint');
    assert.ok(lines.some((l) => new RegExp(`^-> endpoint ${client.id} .* state reply .*: ${w}:80 -> ${c}:\\d+ tcp SYN, ACK$`).test(l)), 'the SYN-ACK is a reply');
    assert.ok(lines.some((l) => new RegExp(`^-> endpoint ${web.id} .* state established .*: ${c}:\\d+ -> ${w}:80 tcp ACK`).test(l)), 'the ACK is established');
    assert.ok(flow('tcp SYN').length > 0);
  });

  test('--type debug: Cilium\'s conntrack lines for the connection', async () => {
    const lines = await monitorDuring(['--type', 'debug'], () => assert.ok(curlOk(ns('c'), `http://${web.ipv4}/`)));
    const dbg = lines.filter((l) => / DEBUG: /.test(l));
    assert.ok(dbg.every((l) => /^CPU 00: MARK 0x[0-9a-f]+ FROM \d+ DEBUG: /.test(l)), dbg.join('\n'));
    const from = (id: number, msg: RegExp) => dbg.some((l) => l.includes(`FROM ${id} DEBUG: `) && msg.test(l));
    assert.ok(from(client.id, new RegExp(`Conntrack lookup 1/2: src=${client.ipv4}:\\d+ dst=${web.ipv4}:80$`)), `lookup 1/2:\n${dbg.join('\n')}`);
    assert.ok(from(client.id, /Conntrack lookup 2\/2: nexthdr=6 flags=1$/), 'lookup 2/2, egress');
    assert.ok(from(client.id, /CT verdict: New, revnat=0$/), 'verdict New');
    assert.ok(from(client.id, new RegExp(`Conntrack create: proxy-port=0 revnat=0 src-identity=${client.identity} lb=0\\.0\\.0\\.0$`)), 'create');
    assert.ok(from(web.id, /CT verdict: Reply, revnat=0$/), 'the reply at the server\'s egress');
    assert.ok(!lines.some((l) => / flow 0x.* state /.test(l)), 'only debug lines were asked for');
  });

  test('aggregation (medium): a download of hundreds of frames gives a handful of trace lines', async () => {
    const ports = async () => (await agent.api<PortRow[]>('GET', '/v1/ports')).find((r) => r.endpointId === web.id)!;
    const before = await ports();
    const lines = await monitorDuring(['--type', 'trace'], () => assert.ok(curlOk(ns('c'), `http://${web.ipv4}/big`), 'download'));
    const after = await ports();
    const frames = after.rxFrames - before.rxFrames + after.txFrames - before.txFrames;
    const traces = lines.filter((l) => / flow 0x.* state /.test(l));
    assert.ok(frames >= 100, `the download moved ${frames} frames through web's TAP`);
    assert.ok(traces.length > 0 && traces.length <= 40, `${traces.length} trace lines for ${frames} frames:\n${traces.join('\n')}`);
  });
});

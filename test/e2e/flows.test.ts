/**
 * End to end: Hubble-like flows from a real agent. A curl between two pods
 * shows as FORWARDED TCP flows naming both pods; a curl the policy denies
 * shows as DROPPED with POLICY_DENIED.
 *
 *   client (app=client) ──:80──> web (app=web)   allowed
 *   intruder (app=other) ──:80──> web            denied (133)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { bg, waitFor } from './netns-tools.ts';
import type { FlowEnvelope } from '../../src/agent/flows.ts';

const WEB_POLICY = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'web' },
  spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
};

function curlOk(ns: string, url: string): boolean {
  return sh(ns, 'curl', ['-s', '-o', '/dev/null', '--max-time', '2', url], { timeoutMs: 10000 }).status === 0;
}

describe('flows: tapestry observe', { timeout: 120_000 }, () => {
  const p = runPrefix('tf');
  const ns = (n: string) => `${p}${n}`;
  let agent: AgentProcess;
  const children: ChildProcess[] = [];
  let web = '';
  const observe = (...args: string[]): FlowEnvelope[] => {
    const r = sh(null, TAPESTRY, ['--socket', agent.socket, 'observe', ...args, '-o', 'json']);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FlowEnvelope);
  };

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'flows', ipv4PodCIDR: '10.215.0.0/24', tapPrefix: p },
      endpoints: [
        { name: 'web', netns: ns('w'), labels: { app: 'web' } },
        { name: 'client', netns: ns('c'), labels: { app: 'client' } },
        { name: 'intruder', netns: ns('i'), labels: { app: 'other' } },
      ],
      policies: [WEB_POLICY],
    });
    web = (await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint')).find((e) => e.name === 'web')!.ipv4;
    bg(children, ns('w'), process.execPath, ['-e', "require('http').createServer((q,r)=>r.end('ok\\n')).listen(80)"]);
    await waitFor('the web server', () => curlOk(ns('w'), 'http://127.0.0.1/'));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
  });

  test('an allowed curl is FORWARDED TCP flows between the pods; a denied one is DROPPED (POLICY_DENIED)', async () => {
    observe('--last', '1'); // the first observer turns forwarded-frame tracing on
    assert.ok(curlOk(ns('c'), `http://${web}/`), 'client -> web is allowed');
    assert.ok(!curlOk(ns('i'), `http://${web}/`), 'intruder -> web is denied');
    await new Promise((r) => setTimeout(r, 500));
    const flows = observe('--last', '50');
    assert.ok(flows.length > 0 && flows.length <= 50, `--last 50 bounds the output: ${flows.length}`);
    for (const e of flows) assert.ok(e.node_name === 'flows' && e.flow.node_name === 'flows' && typeof e.time === 'string', `envelope: ${JSON.stringify(e)}`);
    const fwd = flows.filter((e) => e.flow.verdict === 'FORWARDED' && e.flow.l4?.TCP && e.flow.source?.pod_name === 'client' && e.flow.destination?.pod_name === 'web');
    assert.ok(fwd.length > 0, `client -> web FORWARDED: ${flows.map((e) => JSON.stringify(e.flow)).join('\n')}`);
    const syn = fwd.find((e) => e.flow.l4!.TCP!.flags?.SYN && !e.flow.l4!.TCP!.flags?.ACK && e.flow.event_type.type === 4 && e.flow.trace_observation_point === 'TO_ENDPOINT');
    assert.ok(syn, 'the SYN is traced');
    assert.equal(syn.flow.l4!.TCP!.destination_port, 80);
    assert.equal(syn.flow.trace_observation_point, 'TO_ENDPOINT');
    assert.equal(syn.flow.destination!.namespace, 'default');
    assert.ok(syn.flow.destination!.labels!.includes('k8s:app=web'), `labels: ${syn.flow.destination!.labels}`);
    const reply = flows.find((e) => e.flow.verdict === 'FORWARDED' && e.flow.source?.pod_name === 'web' && e.flow.destination?.pod_name === 'client');
    assert.ok(reply, 'the reply direction is there too');
    assert.equal(syn.flow.trace_reason, 'NEW');
    assert.equal(syn.flow.is_reply, false, 'the SYN is not a reply');
    const synAck = flows.find((e) => e.flow.source?.pod_name === 'web' && e.flow.trace_observation_point === 'TO_ENDPOINT' && e.flow.l4?.TCP?.flags?.SYN && e.flow.l4.TCP.flags.ACK);
    assert.ok(synAck, 'the SYN-ACK is traced');
    assert.equal(synAck.flow.traffic_direction, 'EGRESS', 'a reply to the client belongs to its egress connection');
    assert.equal(synAck.flow.trace_reason, 'REPLY');
    assert.equal(synAck.flow.is_reply, true, 'the SYN-ACK is a reply');
    for (const e of flows) {
      const age = Date.now() - Date.parse(e.flow.time);
      assert.ok(age >= 0 && age < 30_000 && e.time === e.flow.time, `flow time is the event's: ${e.flow.time}`);
    }
    const dropEv = flows.find((e) => e.flow.event_type.type === 1);
    assert.ok(dropEv && !('is_reply' in dropEv.flow), 'no is_reply on drops');
    const dropped = flows.filter((e) => e.flow.verdict === 'DROPPED' && e.flow.source?.pod_name === 'intruder' && e.flow.l4?.TCP?.destination_port === 80);
    assert.ok(dropped.length > 0, 'intruder -> web:80 DROPPED');
    assert.ok(dropped.every((e) => e.flow.drop_reason === 133 && e.flow.drop_reason_desc === 'POLICY_DENIED'), `drop reasons: ${dropped.map((e) => e.flow.drop_reason_desc).join(',')}`);
    assert.ok(dropped.some((e) => e.flow.event_type.type === 1), 'the drop event itself, not only the policy verdict');
  });

  test('filters and the compact line', () => {
    const d = observe('--last', '50', '--verdict', 'DROPPED', '--from-pod', 'default/intruder', '--port', '80');
    assert.ok(d.length > 0 && d.every((e) => e.flow.verdict === 'DROPPED' && e.flow.source?.pod_name === 'intruder' && e.flow.drop_reason_desc === 'POLICY_DENIED'), 'verdict + from-pod + port');
    const tcp80 = observe('--last', '50', '--to-pod', 'web', '--port', '80', '--protocol', 'tcp');
    assert.ok(tcp80.length > 0 && tcp80.every((e) => e.flow.destination?.pod_name === 'web' && e.flow.l4?.TCP), 'to-pod + port + protocol');
    assert.equal(observe('--last', '50', '--protocol', 'udp', '--pod', 'client').length, 0, 'no UDP from the client');
    const text = sh(null, TAPESTRY, ['--socket', agent.socket, 'observe', '--last', '50', '--pod', 'default/client']).stdout;
    assert.match(text, /: default\/client:\d+ \(ID:\d+\) -> default\/web:80 \(ID:\d+\) to-endpoint FORWARDED \(TCP Flags: SYN\)/);
    const drops = sh(null, TAPESTRY, ['--socket', agent.socket, 'observe', '--last', '5', '--verdict', 'DROPPED', '--port', '80']).stdout;
    assert.match(drops, /default\/intruder:\d+ \(ID:\d+\) <> default\/web:80 \(ID:\d+\) .*DROPPED \(Policy denied\)/);
  });

  test('--follow prints new flows until --duration', async () => {
    const f = spawn(TAPESTRY, ['--socket', agent.socket, 'observe', '--follow', '--duration', '3', '--to-pod', 'web', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    f.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 800));
    curlOk(ns('c'), `http://${web}/`);
    const code = await new Promise((r) => f.on('exit', r));
    assert.equal(code, 0, 'observe --follow exits after --duration');
    const flows = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as FlowEnvelope);
    assert.ok(flows.some((e) => e.flow.source?.pod_name === 'client' && e.flow.verdict === 'FORWARDED'), `the new curl shows: ${out.slice(0, 400)}`);
  });
});

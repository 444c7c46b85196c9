/**
 * monitor.enabled: false takes the event code paths out of the datapath:
 * drops are still counted, but no event is recorded and a monitor (even one
 * asking for traces) sees nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentProcess, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';

const p = runPrefix('tm');
const ns = (n: string) => `${p}${n}`;
let agent: AgentProcess;

before(async () => {
  agent = await AgentProcess.start(p, {
    node: { name: 'moff', ipv4PodCIDR: '10.216.0.0/24', tapPrefix: p },
    endpoints: [{ name: 'a', netns: ns('a') }, { name: 'b', netns: ns('b') }],
    monitor: { enabled: false },
    metrics: { address: false },
  });
});

after(async () => {
  await agent?.stopAndSweep();
  for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
});

test('with events off, drops are counted but no event is recorded', async () => {
  const eps = await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint');
  const b = eps.find((e) => e.name === 'b')!.ipv4;
  assert.equal(sh(ns('a'), 'ping', ['-c', '2', '-i', '0.2', '-W', '1', b]).status, 0, 'pods still talk');
  sh(ns('a'), 'ip', ['addr', 'add', '10.216.0.99/32', 'dev', 'eth0']);
  sh(ns('a'), 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', '10.216.0.99', b]);
  const m = await agent.api<{ drops: { reason: number; count: number }[] }>('GET', '/v1/metrics/datapath');
  assert.ok(m.drops.some((d) => d.reason === 132 && d.count >= 2), 'the spoofed pings are counted as 132');
  const ev = await agent.api<{ events: unknown[]; next: number }>('GET', '/v1/monitor?since=0&trace=1');
  assert.equal(ev.next, 0, 'nothing was ever recorded');
  assert.deepEqual(ev.events, []);
});

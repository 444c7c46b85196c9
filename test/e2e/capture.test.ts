/**
 * End to end: `tapestry capture` against a real agent with two pods, read
 * back with tshark. Proves the hooks, the pcapng interfaces and the
 * verdict comments, including a drop reason at from-container.
 *
 *   ns <p>a (10.217.0.10) --eth0/TAP--> tapestry agent --TAP/eth0--> ns <p>b (10.217.0.11)
 *                         from-container            to-container
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, TAPESTRY, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';

interface Ep {
  id: number;
  name: string;
  ipv4: string;
}

/** tshark's name for the packet comment: frame.comment (4.x) or pkt_comment (older). */
function commentField(): string {
  const r = spawnSync('tshark', ['-G', 'fields'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return /\tframe\.comment\t/.test(r.stdout) ? 'frame.comment' : 'pkt_comment';
}

/** Rows of `tshark -T fields` for the given fields. */
function tshark(file: string, fields: string[]): string[][] {
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tshark -r ${file}: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|'));
}

describe('tapestry capture', { timeout: 180_000 }, () => {
  const p = runPrefix('tc');
  const ns = { a: `${p}a`, b: `${p}b` };
  const dir = mkdtempSync(join(tmpdir(), 'tapestry-capture-'));
  let agent: AgentProcess;
  let eps: Record<string, Ep>;
  const children: ChildProcess[] = [];

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'e2e', ipv4PodCIDR: '10.217.0.0/24', mtu: 1500, tapPrefix: p },
      endpoints: [
        { name: 'a', netns: ns.a, labels: { app: 'a' }, ipv4: '10.217.0.10' },
        { name: 'b', netns: ns.b, labels: { app: 'b' }, ipv4: '10.217.0.11' },
      ],
    });
    eps = Object.fromEntries((await agent.api<Ep[]>('GET', '/v1/endpoint')).map((e) => [e.name, e]));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Run `tapestry capture ARGS` and keep sending traffic with `ping()`
   * until it exits (the capture starts a moment after the process does).
   */
  async function capture(args: string[], ping: () => void): Promise<{ code: number | null; stderr: string }> {
    const cli = spawn(TAPESTRY, ['--socket', agent.socket, 'capture', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(cli);
    let stderr = '';
    cli.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((res) => cli.on('exit', (code) => res(code)));
    let done = false;
    void exited.then(() => (done = true));
    for (let k = 0; k < 60 && !done; k++) {
      ping();
      await new Promise((res) => setTimeout(res, 250));
    }
    return { code: await exited, stderr };
  }

  test('ping a -> b at from-container and to-container: both interfaces, echo request and reply, verdict comments', async () => {
    assert.equal(sh(ns.a, 'ping', ['-c', '1', '-W', '2', eps['b']!.ipv4]).status, 0, 'a reaches b before the capture');
    const file = join(dir, 'ping.pcapng');
    const r = await capture(['--hook', 'from-container', '--hook', 'to-container', '--count', '10', '-w', file], () => sh(ns.a, 'ping', ['-c', '2', '-i', '0.1', '-W', '1', eps['b']!.ipv4]));
    assert.equal(r.code, 0, `tapestry capture: ${r.stderr}`);
    assert.match(r.stderr, /^10 packets captured/, 'the CLI reports the count');
    const rows = tshark(file, ['frame.interface_name', commentField(), 'ip.src', 'icmp.type']);
    assert.equal(rows.length, 10, `10 frames in the file:\n${rows.join('\n')}`);
    const ifs = new Set(rows.map((x) => x[0]));
    assert.ok(ifs.has('from-container') && ifs.has('to-container'), `both hook interfaces present: ${[...ifs].join(', ')}`);
    const icmp = rows.filter((x) => x[3] !== '');
    assert.ok(icmp.some((x) => x[3] === '8' && x[2] === eps['a']!.ipv4), `an echo request from a:\n${rows.join('\n')}`);
    assert.ok(icmp.some((x) => x[3] === '0' && x[2] === eps['b']!.ipv4), `an echo reply from b:\n${rows.join('\n')}`);
    assert.ok(icmp.every((x) => x[1] === 'verdict: forwarded'), `every ICMP frame forwarded:\n${rows.join('\n')}`);
    // Anything else the pods send (IPv6 solicitations on this IPv4-only node) carries its verdict too.
    assert.ok(rows.every((x) => /^verdict: (forwarded|dropped \(.+\))$/.test(x[1]!)), `every frame has a verdict comment:\n${rows.join('\n')}`);
  });

  test('a spoofed source is captured at from-container as "dropped (Invalid source ip)"', async () => {
    const spoof = '10.217.0.99';
    sh(ns.a, 'ip', ['addr', 'add', `${spoof}/32`, 'dev', 'eth0']);
    try {
      const file = join(dir, 'spoof.pcapng');
      const r = await capture(['--hook', 'from-container', '--endpoint', String(eps['a']!.id), '--filter', `host ${spoof}`, '--count', '3', '-w', file], () =>
        sh(ns.a, 'ping', ['-c', '2', '-i', '0.1', '-W', '1', '-I', spoof, eps['b']!.ipv4]),
      );
      assert.equal(r.code, 0, `tapestry capture: ${r.stderr}`);
      const rows = tshark(file, ['frame.interface_name', commentField(), 'ip.src', 'ip.dst']);
      assert.equal(rows.length, 3, `3 frames in the file:\n${rows.join('\n')}`);
      for (const x of rows) assert.deepEqual(x, ['from-container', 'verdict: dropped (Invalid source ip)', spoof, eps['b']!.ipv4], 'each spoofed frame with its drop reason');
    } finally {
      sh(ns.a, 'ip', ['addr', 'del', `${spoof}/32`, 'dev', 'eth0']);
    }
  });

  test('bad arguments are refused in one line', () => {
    const r = sh(null, TAPESTRY, ['--socket', agent.socket, 'capture', '--hook', 'nowhere', '-w', join(dir, 'x')]);
    assert.notEqual(r.status, 0, 'unknown hook refused');
    assert.match(r.stderr, /--hook nowhere: expected one of from-container/);
    const f = sh(null, TAPESTRY, ['--socket', agent.socket, 'capture', '--hook', 'to-host', '--filter', 'net 10/8', '-w', join(dir, 'x')]);
    assert.match(f.stderr, /--filter: filter: expected "host A" or "port N"/);
  });
});

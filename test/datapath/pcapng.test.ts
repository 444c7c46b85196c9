/**
 * pcapng writer: a file written here is read back by tshark and tcpdump
 * (interface names per hook, the verdict comment, the packet bytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pktgen } from '../helpers/pktgen.ts';
import { PcapngWriter, BLOCK } from '../../src/datapath/lib/pcapng.ts';

/** tshark's name for the packet comment: frame.comment (4.x) or pkt_comment (older). */
function commentField(): string {
  const r = spawnSync('tshark', ['-G', 'fields'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return /\tframe\.comment\t/.test(r.stdout) ? 'frame.comment' : 'pkt_comment';
}

const frame = (src: string, dst: string) =>
  pktgen().eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:01:0a' }).ipv4({ src, dst }).icmp4Echo({ id: 7, seq: 1 }).payload(5).build();

test('blocks are 32-bit aligned with the length at both ends; odd-sized data and comments are padded', () => {
  const w = new PcapngWriter();
  w.addInterface('from-container');
  w.addPacket(0, 1_700_000_000_123_456, new Uint8Array(61), 'x');
  const b = w.bytes();
  const dv = new DataView(b.buffer);
  const types: number[] = [];
  for (let o = 0; o < b.length; ) {
    const len = dv.getUint32(o + 4, true);
    assert.equal(len % 4, 0, `block at ${o}: length ${len} not a multiple of 4`);
    assert.equal(dv.getUint32(o + len - 4, true), len, `block at ${o}: trailing length`);
    types.push(dv.getUint32(o, true));
    o += len;
  }
  assert.deepEqual(types, [BLOCK.SHB, BLOCK.IDB, BLOCK.EPB]);
  assert.throws(() => w.addPacket(1, 0, new Uint8Array(1)), /no interface 1/);
});

test('tshark and tcpdump read the file: interface per hook, verdict comments, addresses, timestamps', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tapestry-pcapng-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const w = new PcapngWriter();
  const from = w.addInterface('from-container');
  const to = w.addInterface('to-container');
  const ts = 1_700_000_000_000_000;
  w.addPacket(from, ts, frame('10.0.0.10', '10.0.0.11'), 'verdict: forwarded');
  w.addPacket(to, ts + 250, frame('10.0.0.10', '10.0.0.11'), 'verdict: forwarded');
  w.addPacket(from, ts + 500, frame('10.0.0.99', '10.0.0.11'), 'verdict: dropped (Invalid source ip)');
  const file = join(dir, 'x.pcapng');
  writeFileSync(file, w.bytes());

  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', commentField(), '-e', 'ip.src', '-e', 'frame.time_epoch'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tshark: ${r.stderr}`);
  const rows = r.stdout.trim().split('\n').map((l) => l.split('|'));
  assert.deepEqual(
    rows.map((x) => x.slice(0, 3)),
    [
      ['from-container', 'verdict: forwarded', '10.0.0.10'],
      ['to-container', 'verdict: forwarded', '10.0.0.10'],
      ['from-container', 'verdict: dropped (Invalid source ip)', '10.0.0.99'],
    ],
  );
  assert.ok(Math.abs(Number(rows[2]![3]) - 1_700_000_000.0005) < 1e-6, `µs timestamp read back as ${rows[2]![3]}`);

  const d = spawnSync('tcpdump', ['-n', '-r', file], { encoding: 'utf8' });
  assert.equal(d.status, 0, `tcpdump: ${d.stderr}`);
  const lines = d.stdout.trim().split('\n');
  assert.equal(lines.length, 3, `tcpdump lines:\n${d.stdout}`);
  assert.ok(lines.every((l) => /IP 10\.0\.0\.(10|99) > 10\.0\.0\.11: ICMP echo request, id 7, seq 1/.test(l)), `tcpdump decodes ICMP echo:\n${d.stdout}`);
});

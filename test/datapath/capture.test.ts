/**
 * Capture sessions on a node datapath with two endpoints: hooks, verdict
 * comments with Cilium's drop reasons, filters, the count, and the engine's
 * observer back to null when nothing captures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { A, B, makeNode } from './fixture.ts';
import { CaptureHub, matchFilter, parseFilter } from '../../src/datapath/capture.ts';
import { parseIpv4 } from '../../src/wire/addr.ts';

const ethA = { src: A.mac, dst: A.hostMac };
const udp = (src: string, dport: number) => pktgen().eth(ethA).ipv4({ src, dst: B.ip4 }).udp({ dport }).build();

function node() {
  const n = makeNode();
  const hub = new CaptureHub(n.dp, (now) => 1_700_000_000_000 + now);
  return { ...n, hub };
}

test('from-container sees frames before any program with their verdict; to-container what is queued; drops carry the reason', () => {
  const n = node();
  assert.equal(n.dp.engine.capture, null, 'off by default');
  const id = n.hub.start({ hooks: ['from-container', 'to-container'], count: 10 }, 0);
  assert.equal(n.dp.engine.capture, n.hub, 'on while a session runs');
  n.rx(n.portA, [udp(A.ip4, 53), udp('10.0.0.99', 53)], undefined, 5);
  const r = n.hub.read(id, 0);
  assert.deepEqual(
    r.records.map((x) => [x.hook, x.comment]),
    [
      ['from-container', 'verdict: forwarded'],
      ['from-container', 'verdict: dropped (Invalid source ip)'],
      ['to-container', 'verdict: forwarded'],
    ],
  );
  assert.equal(r.records[0]!.tsUs, 1_700_000_000_005_000);
  assert.deepEqual(r.records[1]!.data, udp('10.0.0.99', 53), 'the frame as received');
  assert.equal(r.done, false);
  n.hub.stop(id);
  assert.equal(n.dp.engine.capture, null, 'off again after stop');
  assert.throws(() => n.hub.read(id, 0), /capture 1 not found/);
});

test('count, endpoint and filter limit what is taken; the session ends itself at the count', () => {
  const n = node();
  const other = n.hub.start({ hooks: ['from-container'], endpoint: B.id, count: 5 }, 0);
  const id = n.hub.start({ hooks: ['from-container'], endpoint: A.id, filter: 'port 80', count: 2 }, 0);
  n.rx(n.portA, [udp(A.ip4, 53), udp(A.ip4, 80), udp(A.ip4, 80), udp(A.ip4, 80)]);
  const r = n.hub.read(id, 0);
  assert.equal(r.records.length, 2, 'count honoured');
  assert.ok(r.done, 'done at the count');
  assert.equal(n.hub.read(other, 0).records.length, 0, "B's session sees nothing from A");
  n.hub.stop(other);
  assert.equal(n.dp.engine.capture, null, 'no active session: observer null');
  assert.throws(() => n.hub.start({ hooks: ['from-container'], endpoint: 99, count: 1 }, 0), /endpoint 99 not found/);
  assert.throws(() => n.hub.start({ hooks: ['nowhere' as 'to-host'], count: 1 }, 0), /unknown hook/);
});

test('sessions nobody reads expire', () => {
  const n = node();
  const id = n.hub.start({ hooks: ['to-host'], count: 1 }, 0);
  n.hub.expire(60_000);
  assert.throws(() => n.hub.read(id, 0), /not found/);
  assert.equal(n.dp.engine.capture, null, 'expired session is off');
});

test('filters: host, port, host and port', () => {
  const f = udp(A.ip4, 80);
  assert.deepEqual(parseFilter('host 10.0.0.10 and port 80'), { host: parseIpv4('10.0.0.10'), port: 80 });
  assert.ok(matchFilter(parseFilter(''), f, 0, f.length), 'empty matches');
  assert.ok(matchFilter(parseFilter('host 10.0.0.11'), f, 0, f.length), 'destination host');
  assert.ok(matchFilter(parseFilter('port 80 and host 10.0.0.10'), f, 0, f.length), 'either order');
  assert.ok(!matchFilter(parseFilter('host 10.0.0.12'), f, 0, f.length), 'other host');
  assert.ok(!matchFilter(parseFilter('host 10.0.0.10 and port 81'), f, 0, f.length), 'other port');
  assert.throws(() => parseFilter('host'), /needs an argument/);
  assert.throws(() => parseFilter('port 80 or port 81'), /expected "and"/);
  assert.throws(() => parseFilter('net 10.0.0.0/8'), /expected "host A" or "port N"/);
});

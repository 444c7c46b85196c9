/**
 * The engine alone, with toy programs: XDP verdicts, tail calls grouped by
 * call ID, the tail-call limit, the single drop exit and batched sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, MAX_TAIL_CALLS } from '../../src/engine/engine.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { drop, redirect, tailCall, verdict, type Program } from '../../src/engine/program.ts';
import { TC, XDP } from '../../src/engine/verdict.ts';
import { FrameBatch, allocSlab } from '../../src/packet/batch.ts';
import { ProgArray } from '../../src/maps/prog-array.ts';
import { Metrics } from '../../src/datapath/lib/metrics.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';

function setup() {
  const progs = new ProgArray<Program>({ maxEntries: 32 });
  const metrics = new Metrics();
  const engine = new Engine(progs, metrics);
  const b = new FrameBatch(allocSlab());
  const dev = (name: string) => new CaptureDevice(name, b.buf);
  return { progs, metrics, engine, b, dev };
}

/** A program that applies `fn(firstByte)` to every frame. */
const byFirstByte = (name: string, fn: (b: FrameBatch, i: number, x: number) => void): Program => ({
  name,
  run(b, vec, n) {
    for (let k = 0; k < n; k++) fn(b, vec[k]!, b.buf[b.off[vec[k]!]!]!);
  },
});

test('XDP verdicts: PASS runs the tc program, TX bounces, REDIRECT, DROP and ABORTED are counted', () => {
  const s = setup();
  const rxDev = s.dev('rx');
  const other = s.dev('other');
  const otherPort = s.engine.addPort({ name: 'other', kind: 'test', device: other });
  let tcSeen = 0;
  const xdp = byFirstByte('xdp', (b, i, x) => {
    if (x === 0) verdict(b, i, XDP.PASS);
    else if (x === 1) verdict(b, i, XDP.TX);
    else if (x === 2) {
      b.out[i] = otherPort;
      verdict(b, i, XDP.REDIRECT);
    } else if (x === 3) verdict(b, i, XDP.DROP);
    else if (x === 4) drop(b, i, DROP.INVALID);
    else verdict(b, i, XDP.ABORTED);
  });
  const ingress = byFirstByte('tc', (b, i) => {
    tcSeen++;
    redirect(b, i, otherPort);
  });
  const port = s.engine.addPort({ name: 'rx', kind: 'netdev', device: rxDev, xdp, ingress });
  s.b.load([0, 1, 2, 3, 4, 5, 0].map((x) => Uint8Array.of(x, 0, 0)), port, 0);
  s.engine.process(s.b);
  assert.equal(tcSeen, 2, 'only PASS frames reach tc');
  assert.equal(rxDev.frames.length, 1, 'XDP_TX goes back out of the ingress device');
  assert.equal(other.frames.length, 3, 'REDIRECT + 2 passed-and-redirected');
  assert.equal(other.sends, 1, 'one send per device per batch');
  const p = s.engine.ports[port]!;
  assert.deepEqual([...p.xdpVerdicts], [1, 2, 2, 1, 1]);
  assert.equal(s.metrics.dropsOf(DROP.INVALID), 1);
});

test('tail calls run once per target per round, grouped, until every frame has a verdict', () => {
  const s = setup();
  const runs: string[] = [];
  const mk = (name: string, fn: (b: FrameBatch, i: number, x: number) => void): Program => ({
    name,
    run(b, vec, n) {
      runs.push(`${name}:${n}`);
      for (let k = 0; k < n; k++) fn(b, vec[k]!, b.buf[b.off[vec[k]!]!]!);
    },
  });
  s.progs.set(5, mk('five', (b, i, x) => (x === 1 ? tailCall(b, i, 6) : verdict(b, i, TC.SHOT))));
  s.progs.set(6, mk('six', (b, i) => drop(b, i, DROP.POLICY)));
  const entry = mk('entry', (b, i) => tailCall(b, i, 5));
  const port = s.engine.addPort({ name: 'p', kind: 'test', device: s.dev('p'), ingress: entry });
  s.b.load([1, 1, 2, 1].map((x) => Uint8Array.of(x)), port, 0);
  s.engine.process(s.b);
  assert.deepEqual(runs, ['entry:4', 'five:4', 'six:3']);
  assert.equal(s.metrics.dropsOf(DROP.POLICY), 3);
  // TC_ACT_SHOT without a reason is still accounted at the single exit
  assert.equal(s.metrics.dropsOf(DROP.INVALID), 1);
});

test('a chain longer than the kernel allows ends in DROP_MISSED_TAIL_CALL; so does an empty slot', () => {
  const s = setup();
  let hops = 0;
  s.progs.set(7, { name: 'loop', run: (b, vec, n) => { hops++; for (let k = 0; k < n; k++) tailCall(b, vec[k]!, 7); } });
  const port = s.engine.addPort({ name: 'p', kind: 'test', device: s.dev('p'), ingress: byFirstByte('entry', (b, i, x) => tailCall(b, i, x)) });
  s.b.load([Uint8Array.of(7), Uint8Array.of(9)], port, 0);
  s.engine.process(s.b);
  assert.equal(hops, MAX_TAIL_CALLS);
  assert.equal(s.metrics.dropsOf(DROP.MISSED_TAIL_CALL), 2);
});

test('redirects to a removed port are dropped and counted, not sent', () => {
  const s = setup();
  const gone = s.dev('gone');
  const gonePort = s.engine.addPort({ name: 'gone', kind: 'test', device: gone });
  const port = s.engine.addPort({ name: 'p', kind: 'test', device: s.dev('p'), ingress: byFirstByte('r', (b, i) => redirect(b, i, gonePort)) });
  s.engine.removePort(gonePort);
  s.b.load([Uint8Array.of(0)], port, 0);
  s.engine.process(s.b);
  assert.equal(gone.frames.length, 0);
  assert.equal(s.engine.staleRedirects, 1);
  assert.equal(s.metrics.dropsOf(DROP.UNROUTABLE), 1);
});

test('TC_ACT_OK goes to the stack port when there is one, the drop observer sees every drop', () => {
  const s = setup();
  const stack = s.dev('stack');
  s.engine.stackPort = s.engine.addPort({ name: 'stack', kind: 'host', device: stack });
  const seen: number[] = [];
  s.engine.onDrop = (_b, _i, code) => seen.push(code);
  const port = s.engine.addPort({ name: 'p', kind: 'test', device: s.dev('p'), ingress: byFirstByte('e', (b, i, x) => (x ? drop(b, i, DROP.INVALID_SIP) : verdict(b, i, TC.OK))) });
  s.b.load([Uint8Array.of(0), Uint8Array.of(1)], port, 0);
  s.engine.process(s.b);
  assert.equal(stack.frames.length, 1);
  assert.deepEqual(seen, [DROP.INVALID_SIP]);
});

test('batch push/pull move the frame start and carry the virtio-net header', () => {
  const s = setup();
  s.b.load([Uint8Array.of(1, 2, 3)], 1, 0, [Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]);
  assert.ok(s.b.push(0, 50));
  assert.equal(s.b.len[0], 53);
  assert.deepEqual([...s.b.vnetHeader(0)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual([...s.b.frame(0).subarray(50)], [1, 2, 3]);
  assert.ok(s.b.pull(0, 50));
  assert.deepEqual([...s.b.frame(0)], [1, 2, 3]);
  assert.deepEqual([...s.b.vnetHeader(0)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(s.b.push(0, 1000), false, 'headroom is bounded');
});

/**
 * The native checksum (csumFold) must give exactly what the TypeScript
 * path gives: fold(sum16(...)) over the same bytes, for every length and
 * alignment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, nativeAvailable } from '../../src/io/native.ts';
import { fold, sum16 } from '../../src/wire/checksum.ts';

test('csumFold equals fold(sum16) for random ranges', { skip: !nativeAvailable() && 'native addon not built' }, () => {
  const n = loadNative();
  const b = new Uint8Array(70000);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  for (let k = 0; k < 3000; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const off = x % 1000;
    const len = k < 100 ? k : (x >>> 7) % 66000;
    assert.equal(n.csumFold(b, off, len), fold(sum16(b, off, len)), `off ${off} len ${len}`);
  }
  b.fill(0xff);
  assert.equal(n.csumFold(b, 0, 65536), fold(sum16(b, 0, 65536)), 'all ones');
  assert.throws(() => n.csumFold(b, 69999, 10), /range/);
});

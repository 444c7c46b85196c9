/** L2 announcements: every agent elects the same announcer without talking to the others. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { announcer } from '../../src/agent/l2-announce.ts';

test('the announcer is one of the candidates, the same whatever order they come in, and spreads services over nodes', () => {
  const nodes = ['n1', 'n2', 'n3'];
  const seen = new Set<string>();
  for (let k = 0; k < 30; k++) {
    const name = `svc-${k}`;
    const a = announcer(name, nodes)!;
    assert.ok(nodes.includes(a));
    assert.equal(announcer(name, [...nodes].reverse()), a, 'order of candidates does not matter');
    assert.equal(announcer(name, [...nodes, 'n1']), a, 'duplicates do not matter');
    seen.add(a);
  }
  assert.equal(seen.size, 3, '30 services land on all three nodes');
  assert.equal(announcer('x', []), undefined, 'no candidate, no announcer');
  assert.equal(announcer('x', ['n2']), 'n2');
});

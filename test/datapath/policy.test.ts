/**
 * Per-endpoint policy: cilium_policy_<EP> (policy-map.ts) and the packet
 * check over it (policy.ts): the six-step lookup order, port ranges,
 * wildcard identity, protocol-only rules, deny-over-allow merging,
 * counters, match types and the two drop codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  POLICY_KEY, POLICY_VAL, PolicyMap, computeMapState, policyMapName, portRangePrefixes,
  type PolicyMapEntry,
} from '../../src/datapath/lib/policy-map.ts';
import {
  POLICY_MATCH as M, POLICY_MATCH_NAMES, PolicyVerdict, icmp4FragNeededBypass, policyCanAccess, policyCanEgress, policyCanIngress,
} from '../../src/datapath/lib/policy.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { prng } from '../maps/prng.ts';

const TCP = 6, UDP = 17, ICMP = 1;
const X = 1001, Y = 1002;
const EG = true, IN = false;

const mk = () => new PolicyMap(42, { maxEntries: 1024, seed: 5 });

/** [verdict, matchType] of one packet. */
function check(pm: PolicyMap, id: number, egress: boolean, proto: number, dport: number, len = 100): [number, number] {
  const r = policyCanAccess(pm, id, egress, proto, dport, len);
  return [r.verdict, r.matchType];
}

// ---- layout ----

test('map name, size bounds and key/value layout', () => {
  assert.equal(policyMapName(7), 'cilium_policy_00007', 'EP ID padded to 5 digits');
  const pm = new PolicyMap(42);
  assert.equal(pm.name, 'cilium_policy_00042', 'map name');
  assert.equal(pm.map.maxEntries, 16384, 'default size');
  assert.throws(() => new PolicyMap(1, { maxEntries: 255 }), RangeError, '255 entries rejected');
  assert.throws(() => new PolicyMap(1, { maxEntries: 65537 }), RangeError, '65537 entries rejected');
  assert.equal(new PolicyMap(1, { maxEntries: 256 }).map.maxEntries, 256, '256 allowed');
  assert.equal(new PolicyMap(1, { maxEntries: 65536 }).map.maxEntries, 65536, '65536 allowed');
  assert.equal(pm.map.keySize, POLICY_KEY.SIZE, 'key size');
  assert.equal(pm.map.valueSize, POLICY_VAL.SIZE, 'value size');

  pm.allow(0x01020304, EG, TCP, 8080);
  pm.deny(X, IN, 0);
  const seen: Record<string, string> = {};
  pm.map.iterate((k, off, slot) => {
    const key = Buffer.from(k.subarray(off, off + 12)).toString('hex');
    seen[key] = Buffer.from(pm.map.values.subarray(slot * 24, slot * 24 + 8)).toString('hex');
  });
  assert.deepEqual(seen, {
    // prefixlen 64 LE | sec_label LE | egress 1 | TCP | dport be 8080
    ['40000000' + '04030201' + '01' + '06' + '1f90']: '0000' + '00' + '00' + '40' + '000000',
    // prefixlen 40 | 1001 LE | ingress | proto/port zero; flags deny|wildcard_protocol|wildcard_dport
    ['28000000' + 'e9030000' + '00' + '00' + '0000']: '0000' + '07' + '00' + '28' + '000000',
  }, 'raw keys and value heads');
  pm.allow(Y, IN, UDP);
  const v = pm.map.values;
  let flags = -1;
  pm.map.iterate((k, off, slot) => {
    if (k[off + 9] === UDP) flags = v[slot * 24 + 2]!;
  });
  assert.equal(flags, 4, 'protocol-only entry: wildcard_dport only');
});

// ---- lookup order ----

interface Level { step: number; write: (pm: PolicyMap) => void; undo: (pm: PolicyMap) => void; match: number; verdict: number }
/** The six levels for packet X/egress/TCP/80, verdicts alternating so each level is told apart by both outputs. */
const LEVELS: Level[] = [
  { step: 1, write: (p) => p.allow(X, EG, TCP, 80), undo: (p) => p.delete(X, EG, TCP, 80), match: M.L3_L4, verdict: 0 },
  { step: 2, write: (p) => p.deny(0, EG, TCP, 80), undo: (p) => p.delete(0, EG, TCP, 80), match: M.L4_ONLY, verdict: DROP.POLICY_DENY },
  { step: 3, write: (p) => p.allow(X, EG, TCP), undo: (p) => p.delete(X, EG, TCP), match: M.L3_PROTO, verdict: 0 },
  { step: 4, write: (p) => p.deny(0, EG, TCP), undo: (p) => p.delete(0, EG, TCP), match: M.PROTO_ONLY, verdict: DROP.POLICY_DENY },
  { step: 5, write: (p) => p.allow(X, EG, 0), undo: (p) => p.delete(X, EG, 0), match: M.L3_ONLY, verdict: 0 },
  { step: 6, write: (p) => p.deny(0, EG, 0), undo: (p) => p.delete(0, EG, 0), match: M.ALL, verdict: DROP.POLICY_DENY },
];

test('lookup order: each level alone gives its match type', () => {
  for (const l of LEVELS) {
    const pm = mk();
    l.write(pm);
    assert.deepEqual(check(pm, X, EG, TCP, 80), [l.verdict, l.match], `level ${l.step} alone`);
  }
});

test('lookup order: with all six present, removing the winner each time walks 1..6, then 133', () => {
  const orders = [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2]];
  for (const order of orders) {
    const pm = mk();
    for (const i of order) LEVELS[i]!.write(pm);
    for (const l of LEVELS) {
      assert.deepEqual(check(pm, X, EG, TCP, 80), [l.verdict, l.match], `level ${l.step} wins (insert order ${order})`);
      l.undo(pm);
    }
    assert.deepEqual(check(pm, X, EG, TCP, 80), [DROP.POLICY, M.NONE], 'nothing left: 133');
  }
});

test('lookup order: of any two levels present, the lower-numbered one wins', () => {
  for (let i = 0; i < LEVELS.length; i++) {
    for (let j = i + 1; j < LEVELS.length; j++) {
      for (const [a, b] of [[i, j], [j, i]] as const) {
        const pm = mk();
        LEVELS[a]!.write(pm);
        LEVELS[b]!.write(pm);
        const w = LEVELS[i]!;
        assert.deepEqual(check(pm, X, EG, TCP, 80), [w.verdict, w.match], `levels ${i + 1} and ${j + 1}: ${w.step} wins`);
      }
    }
  }
});

test('lookup order: another peer sees only the ANY levels; the other direction sees none', () => {
  const pm = mk();
  for (const l of LEVELS) l.write(pm);
  assert.deepEqual(check(pm, Y, EG, TCP, 80), [DROP.POLICY_DENY, M.L4_ONLY], 'Y: level 2');
  assert.deepEqual(check(pm, Y, EG, TCP, 81), [DROP.POLICY_DENY, M.PROTO_ONLY], 'Y other port: level 4');
  assert.deepEqual(check(pm, Y, EG, UDP, 80), [DROP.POLICY_DENY, M.ALL], 'Y other protocol: level 6');
  assert.deepEqual(check(pm, X, EG, UDP, 53), [0, M.L3_ONLY], 'X other protocol: level 5');
  assert.deepEqual(check(pm, X, IN, TCP, 80), [DROP.POLICY, M.NONE], 'ingress: no entry');
  assert.equal(policyCanIngress(pm, X, TCP, 80, 1).verdict, DROP.POLICY, 'policyCanIngress = ingress');
  assert.equal(policyCanEgress(pm, X, TCP, 80, 1).matchType, M.L3_L4, 'policyCanEgress = egress');
});

test('identity is matched on all 32 bits (byte order and local-scope identities)', () => {
  const pm = mk();
  pm.allow(16777217, IN, TCP, 80); // (1 << 24) | 1: a CIDR identity
  assert.deepEqual(check(pm, 16777217, IN, TCP, 80), [0, M.L3_L4], 'CIDR identity matched');
  assert.deepEqual(check(pm, 1, IN, TCP, 80), [DROP.POLICY, M.NONE], 'identity 1 differs in the top byte');
  assert.deepEqual(check(pm, 257, IN, TCP, 80), [DROP.POLICY, M.NONE], 'identity 257 differs');
  pm.allow(0xffffffff, IN, TCP, 80);
  assert.deepEqual(check(pm, 0xffffffff, IN, TCP, 80), [0, M.L3_L4], 'u32 max identity');
});

// ---- port ranges ----

/** Reference: fewest aligned blocks in a binary trie over 16-bit ports (recursive split). */
function minimalBlocks(lo: number, hi: number, start = 0, size = 0x10000): number {
  const end = start + size - 1;
  if (end < lo || start > hi) return 0;
  if (start >= lo && end <= hi) return 1;
  return minimalBlocks(lo, hi, start, size / 2) + minimalBlocks(lo, hi, start + size / 2, size / 2);
}

test('portRangePrefixes: examples, exact disjoint cover, minimal count', () => {
  assert.deepEqual(portRangePrefixes(80, 80), [{ port: 80, bits: 16 }], 'one port');
  assert.deepEqual(portRangePrefixes(0, 65535), [{ port: 0, bits: 0 }], 'every port');
  assert.deepEqual(portRangePrefixes(1024, 2047), [{ port: 1024, bits: 6 }], 'aligned block');
  assert.deepEqual(portRangePrefixes(5, 13), [{ port: 5, bits: 16 }, { port: 6, bits: 15 }, { port: 8, bits: 14 }, { port: 12, bits: 15 }], '5-13');
  assert.equal(portRangePrefixes(1, 65535).length, 16, '1-65535 takes 16 blocks');
  assert.equal(portRangePrefixes(1, 65534).length, 30, '1-65534 is the worst case');
  const rnd = prng(3);
  for (let n = 0; n < 300; n++) {
    let lo = rnd() & 0xffff, hi = rnd() & 0xffff;
    if (n % 3 === 0) hi = Math.min(0xffff, lo + (rnd() & 63));
    if (lo > hi) [lo, hi] = [hi, lo];
    const blocks = portRangePrefixes(lo, hi);
    assert.equal(blocks.length, minimalBlocks(lo, hi), `minimal for ${lo}-${hi}`);
    let next = lo;
    for (const b of blocks) {
      const size = 2 ** (16 - b.bits);
      assert.equal(b.port, next, `blocks contiguous from ${lo} (${lo}-${hi})`);
      assert.equal(b.port % size, 0, `block ${b.port}/${b.bits} aligned`);
      next = b.port + size;
    }
    assert.equal(next, hi + 1, `blocks end at ${hi}`);
  }
});

test('port range [1000, 1999]: boundaries and interior, one entry per block', () => {
  const pm = mk();
  const n = pm.allow(X, IN, TCP, 1000, 1999);
  assert.equal(n, portRangePrefixes(1000, 1999).length, 'entries written = blocks');
  assert.equal(pm.count, n, 'map holds the blocks');
  assert.deepEqual(check(pm, X, IN, TCP, 999), [DROP.POLICY, M.NONE], '999 outside');
  assert.deepEqual(check(pm, X, IN, TCP, 1000), [0, M.L3_L4], '1000 first');
  assert.deepEqual(check(pm, X, IN, TCP, 1999), [0, M.L3_L4], '1999 last');
  assert.deepEqual(check(pm, X, IN, TCP, 2000), [DROP.POLICY, M.NONE], '2000 outside');
  for (let p = 990; p <= 2010; p++) {
    assert.equal(check(pm, X, IN, TCP, p)[0], p >= 1000 && p <= 1999 ? 0 : DROP.POLICY, `port ${p}`);
  }
  assert.deepEqual(check(pm, X, IN, UDP, 1500), [DROP.POLICY, M.NONE], 'other protocol');
  assert.equal(pm.delete(X, IN, TCP, 1000, 1999), n, 'delete removes every block');
  assert.equal(pm.count, 0, 'empty after delete');
});

test('port ranges: odd bounds, port 0 starts, full range, endPort 0 = single port, bad ranges', () => {
  const pm = mk();
  pm.allow(X, IN, UDP, 5, 13);
  for (let p = 0; p <= 20; p++) assert.equal(check(pm, X, IN, UDP, p)[0], p >= 5 && p <= 13 ? 0 : DROP.POLICY, `5-13 port ${p}`);
  pm.allow(Y, IN, UDP, 1, 65535);
  assert.equal(check(pm, Y, IN, UDP, 1)[0], 0, '1-65535: 1');
  assert.equal(check(pm, Y, IN, UDP, 65535)[0], 0, '1-65535: 65535');
  assert.equal(check(pm, Y, IN, UDP, 0)[0], DROP.POLICY, '1-65535: not 0');
  pm.allow(Y, IN, TCP, 0, 1023);
  assert.equal(check(pm, Y, IN, TCP, 1023)[0], 0, '0-1023: 1023');
  assert.equal(check(pm, Y, IN, TCP, 1024)[0], DROP.POLICY, '0-1023: not 1024');
  assert.equal(pm.allow(X, EG, TCP, 0, 65535), 1, '0-65535 is one any-port entry');
  assert.deepEqual(check(pm, X, EG, TCP, 4242), [0, M.L3_PROTO], '0-65535 matches as protocol-only');
  assert.equal(pm.allow(X, EG, UDP, 53, 0), 1, 'endPort 0: one port');
  assert.equal(check(pm, X, EG, UDP, 54)[0], DROP.POLICY, 'endPort 0 is not a range');
  assert.throws(() => pm.allow(X, IN, TCP, 80, 79), RangeError, 'end before start');
  assert.throws(() => pm.allow(X, IN, 0, 80), RangeError, 'port without protocol');
  assert.throws(() => pm.allow(X, IN, TCP, 65536), RangeError, 'port past 65535');
  assert.throws(() => pm.allow(-1, IN, TCP, 80), RangeError, 'negative identity');
});

test('port ranges against exact ports across identities: the longer prefix wins', () => {
  const pm = mk();
  pm.allow(X, IN, TCP, 64, 127); // one /58 block
  pm.deny(0, IN, TCP, 80); // /64
  assert.deepEqual(check(pm, X, IN, TCP, 80), [DROP.POLICY_DENY, M.L4_ONLY], 'ANY:80 (64 bits) beats X:64-127 (58)');
  assert.deepEqual(check(pm, X, IN, TCP, 81), [0, M.L3_L4], 'X range elsewhere');
  const pm2 = mk();
  pm2.deny(X, IN, TCP, 64, 127); // /58
  pm2.allow(0, IN, TCP, 0, 1023); // /54
  assert.deepEqual(check(pm2, X, IN, TCP, 80), [DROP.POLICY_DENY, M.L3_L4], 'X:64-127 (58) beats ANY:0-1023 (54)');
  assert.deepEqual(check(pm2, Y, IN, TCP, 80), [0, M.L4_ONLY], 'Y gets the ANY range');
  const pm3 = mk();
  pm3.allow(X, IN, TCP, 64, 127); // /58
  pm3.deny(0, IN, TCP, 64, 127); // /58, same length: the peer's entry wins
  assert.deepEqual(check(pm3, X, IN, TCP, 100), [0, M.L3_L4], 'equal length: identity entry');
});

// ---- wildcard identity, protocol-only, ICMP ----

test('wildcard identity 0 applies to every peer, including identity 0 itself', () => {
  const pm = mk();
  pm.allow(0, IN, TCP, 443);
  for (const id of [1, 2, 256, 65535, 16777217, 0]) {
    assert.deepEqual(check(pm, id, IN, TCP, 443), [0, M.L4_ONLY], `peer ${id}`);
  }
  pm.allow(0, IN, UDP);
  assert.deepEqual(check(pm, 0, IN, UDP, 9), [0, M.PROTO_ONLY], 'peer 0, ANY+proto');
  assert.deepEqual(check(pm, 7, IN, ICMP, 8), [DROP.POLICY, M.NONE], 'nothing for ICMP');
  pm.allow(0, IN, 0);
  assert.deepEqual(check(pm, 7, IN, ICMP, 8), [0, M.ALL], 'allow-all');
});

test('protocol-only rules: any port of that protocol, nothing else', () => {
  const pm = mk();
  pm.allow(X, EG, UDP);
  for (const p of [0, 1, 53, 65535]) assert.deepEqual(check(pm, X, EG, UDP, p), [0, M.L3_PROTO], `UDP ${p}`);
  assert.deepEqual(check(pm, X, EG, TCP, 53), [DROP.POLICY, M.NONE], 'TCP not allowed');
  assert.deepEqual(check(pm, Y, EG, UDP, 53), [DROP.POLICY, M.NONE], 'other peer not allowed');
});

test('ICMP: the type goes in dport; frag-needed bypass helper', () => {
  const pm = mk();
  pm.allow(X, IN, ICMP, 8); // echo request
  assert.deepEqual(check(pm, X, IN, ICMP, 8), [0, M.L3_L4], 'type 8 allowed');
  assert.deepEqual(check(pm, X, IN, ICMP, 13), [DROP.POLICY, M.NONE], 'type 13 not');
  assert.equal(icmp4FragNeededBypass(ICMP, 3, 4), true, 'frag-needed bypasses by default');
  assert.equal(icmp4FragNeededBypass(ICMP, 3, 4, false), false, 'option off: checked');
  assert.equal(icmp4FragNeededBypass(ICMP, 3, 3), false, 'port unreachable: checked');
  assert.equal(icmp4FragNeededBypass(ICMP, 8, 4), false, 'echo: checked');
  assert.equal(icmp4FragNeededBypass(58, 3, 4), false, 'ICMPv6 type 3 is not frag-needed');
  assert.equal(icmp4FragNeededBypass(TCP, 3, 4), false, 'not ICMP');
});

// ---- verdicts, match types, counters ----

test('133 on a miss, 181 on a deny, 0 on an allow; result object reused', () => {
  const pm = mk();
  const out = new PolicyVerdict();
  assert.equal(policyCanAccess(pm, X, IN, TCP, 80, 60, out), out, 'returns the object passed in');
  assert.equal(out.verdict, -133, 'empty map: DROP_POLICY');
  assert.equal(out.slot, -1, 'no slot on a miss');
  pm.deny(X, IN, TCP, 80);
  policyCanAccess(pm, X, IN, TCP, 80, 60, out);
  assert.equal(out.verdict, -181, 'deny: DROP_POLICY_DENY');
  assert.equal(out.matchType, M.L3_L4, 'deny reports its match type');
  pm.allow(X, IN, TCP, 80);
  policyCanAccess(pm, X, IN, TCP, 80, 60, out);
  assert.deepEqual([out.verdict, out.matchType, out.proxyPort, out.authType], [0, M.L3_L4, 0, 0], 'raw allow overwrote the deny');
  assert.ok(out.slot >= 0, 'slot of the matched entry');
  assert.deepEqual(POLICY_MATCH_NAMES, ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all', 'L3-Proto', 'Proto-Only'], 'match names');
});

test('counters: only the deciding entry counts, allowed or denied; dump shows them', () => {
  const pm = mk();
  pm.allow(X, IN, TCP, 80);
  pm.allow(X, IN, TCP);
  pm.deny(0, IN, UDP);
  for (let i = 0; i < 3; i++) check(pm, X, IN, TCP, 80, 100);
  check(pm, X, IN, TCP, 22, 40);
  check(pm, Y, IN, UDP, 53, 70);
  check(pm, Y, IN, UDP, 53, 30);
  check(pm, Y, IN, TCP, 80, 1000); // miss: counted nowhere
  const rows = pm.dump();
  assert.deepEqual(rows.map((r) => [r.identity, r.proto, r.portRange, r.deny, r.packets, r.bytes]), [
    [0, UDP, 'ANY', true, 2, 100],
    [X, TCP, 'ANY', false, 1, 40],
    [X, TCP, '80', false, 3, 300],
  ], 'per-entry counters');
  assert.ok(rows.every((r) => r.direction === 'ingress'), 'direction column');
});

test('counters are u64: the low word carries into the high word', () => {
  const pm = mk();
  pm.allow(X, IN, TCP, 80);
  const out = policyCanAccess(pm, X, IN, TCP, 80, 1);
  const v = pm.map.view, o = out.slot * POLICY_VAL.SIZE;
  v.setUint32(o + POLICY_VAL.PACKETS, 0xffffffff, true);
  v.setUint32(o + POLICY_VAL.BYTES, 0xffffff00, true);
  policyCanAccess(pm, X, IN, TCP, 80, 0x200);
  const [row] = pm.dump();
  assert.equal(row!.packets, 2 ** 32, 'packets carried');
  assert.equal(row!.bytes, 0xffffff00 + 0x200, 'bytes carried');
});

test('dump: rows sorted, ranges shown per block, egress after ingress', () => {
  const pm = mk();
  pm.allow(Y, EG, TCP, 1024, 2047);
  pm.allow(X, IN, 0);
  pm.deny(X, IN, UDP, 5, 7);
  assert.deepEqual(pm.dump().map((r) => `${r.direction} ${r.identity} ${r.proto} ${r.portRange} ${r.deny ? 'deny' : 'allow'} /${r.prefixLen}`), [
    'ingress 1001 0 ANY allow /40',
    'ingress 1001 17 5 deny /64',
    'ingress 1001 17 6-7 deny /63',
    'egress 1002 6 1024-2047 allow /54',
  ], 'rows');
  pm.clear();
  assert.equal(pm.count, 0, 'clear empties the map');
  assert.deepEqual(pm.dump(), [], 'nothing to dump');
});

// ---- deny beats allow ----

const e = (identity: number, proto: number, port = 0, endPort = 0, deny = false, egress = IN): PolicyMapEntry =>
  ({ identity, egress, proto, port, endPort, deny });

test('deny beats allow: broad deny over a narrow allow (same identity)', () => {
  const entries = [e(X, 0, 0, 0, true), e(X, TCP, 80)];
  const raw = mk();
  raw.deny(X, IN, 0);
  raw.allow(X, IN, TCP, 80);
  assert.equal(check(raw, X, IN, TCP, 80)[0], 0, 'written raw, the narrower allow would win');
  const pm = mk();
  pm.applyMapState(entries);
  assert.deepEqual(check(pm, X, IN, TCP, 80), [DROP.POLICY_DENY, M.L3_L4], 'X:80 denied after the merge');
  assert.equal(check(pm, X, IN, UDP, 1)[0], DROP.POLICY_DENY, 'rest of X denied');
  assert.equal(check(pm, Y, IN, TCP, 80)[0], DROP.POLICY, 'Y unaffected (no rule)');
});

test('deny beats allow: ANY-identity deny over a peer allow, and peer deny over an ANY allow', () => {
  const pm = mk();
  pm.applyMapState([e(0, TCP, 0, 0, true), e(X, TCP, 80), e(X, UDP, 53)]);
  assert.equal(check(pm, X, IN, TCP, 80)[0], DROP.POLICY_DENY, 'deny ANY/TCP covers X:TCP/80');
  assert.equal(check(pm, X, IN, UDP, 53)[0], 0, 'X:UDP/53 untouched');

  const pm2 = mk();
  pm2.applyMapState([e(X, 0, 0, 0, true), e(0, TCP, 80)]);
  assert.deepEqual(check(pm2, X, IN, TCP, 80), [DROP.POLICY_DENY, M.L3_L4], 'X all-deny vs ANY:80 allow: X:80 denied');
  assert.deepEqual(check(pm2, Y, IN, TCP, 80), [0, M.L4_ONLY], 'Y:80 still allowed');
  assert.equal(check(pm2, X, IN, TCP, 81)[0], DROP.POLICY_DENY, 'X:81 denied');
  assert.deepEqual(computeMapState([e(X, 0, 0, 0, true), e(0, TCP, 80)]).map((k) => [k.identity, k.proto, k.port, k.prefixLen, k.deny]), [
    [0, TCP, 80, 64, false], [X, 0, 0, 40, true], [X, TCP, 80, 64, true],
  ], 'the overlap X:TCP/80 is added as a deny');
});

test('deny beats allow: narrow deny inside a broad allow', () => {
  const pm = mk();
  pm.applyMapState([e(X, 0), e(X, TCP, 80, 0, true)]);
  assert.deepEqual(check(pm, X, IN, TCP, 80), [DROP.POLICY_DENY, M.L3_L4], 'X:80 denied');
  assert.deepEqual(check(pm, X, IN, TCP, 81), [0, M.L3_ONLY], 'X:81 allowed');
  assert.equal(check(pm, X, IN, UDP, 80)[0], 0, 'X UDP allowed');
  const pm2 = mk();
  pm2.applyMapState([e(X, 0), e(0, TCP, 22, 0, true)]);
  assert.equal(check(pm2, X, IN, TCP, 22)[0], DROP.POLICY_DENY, 'ANY:22 deny inside X allow-all');
  assert.equal(check(pm2, X, IN, TCP, 23)[0], 0, 'X:23 allowed');
});

test('deny beats allow: overlapping ranges, and a deny on the same key', () => {
  const pm = mk();
  pm.applyMapState([e(X, TCP, 1000, 1999, true), e(X, TCP, 1500, 2500)]);
  for (const [p, want] of [[1499, DROP.POLICY_DENY], [1500, DROP.POLICY_DENY], [1999, DROP.POLICY_DENY], [2000, 0], [2500, 0], [2501, DROP.POLICY], [999, DROP.POLICY], [1000, DROP.POLICY_DENY]] as const) {
    assert.equal(check(pm, X, IN, TCP, p)[0], want, `port ${p}`);
  }
  const pm2 = mk();
  pm2.applyMapState([e(X, TCP, 80), e(X, TCP, 80, 0, true), e(X, TCP, 80)]);
  assert.equal(pm2.count, 1, 'one key');
  assert.equal(check(pm2, X, IN, TCP, 80)[0], DROP.POLICY_DENY, 'deny wins on the same key');
});

test('deny beats allow: randomised policies agree with "any covering deny denies, else any allow allows"', () => {
  const rnd = prng(17);
  const ids = [0, X, Y], protos = [0, TCP, UDP];
  const covers = (r: PolicyMapEntry, id: number, eg: boolean, proto: number, port: number): boolean => {
    if (r.egress !== eg || (r.identity !== 0 && r.identity !== id)) return false;
    if (r.proto === 0) return true;
    if (r.proto !== proto) return false;
    const lo = r.port ?? 0, hi = r.endPort ? r.endPort : lo === 0 ? 65535 : lo;
    return port >= lo && port <= hi;
  };
  for (let round = 0; round < 150; round++) {
    const rules: PolicyMapEntry[] = [];
    const n = 1 + (rnd() % 8);
    for (let i = 0; i < n; i++) {
      const proto = protos[rnd() % 3]!;
      let port = 0, endPort = 0;
      if (proto !== 0 && rnd() % 4 !== 0) {
        port = 1 + (rnd() % 40);
        if (rnd() % 2 === 0) endPort = port + (rnd() % 20);
      }
      rules.push({ identity: ids[rnd() % 3]!, egress: rnd() % 4 === 0, proto, port, endPort, deny: rnd() % 3 === 0 });
    }
    const pm = mk();
    pm.applyMapState(rules);
    for (const id of [X, Y, 3000]) {
      for (const eg of [IN, EG]) {
        for (const proto of [TCP, UDP, ICMP]) {
          for (let port = 0; port <= 64; port++) {
            const want = rules.some((r) => r.deny && covers(r, id, eg, proto, port)) ? DROP.POLICY_DENY
              : rules.some((r) => covers(r, id, eg, proto, port)) ? 0 : DROP.POLICY;
            const got = check(pm, id, eg, proto, port)[0];
            if (got !== want) {
              assert.equal(got, want, `round ${round} ${JSON.stringify(rules)}: peer ${id} ${eg ? 'egress' : 'ingress'} ${proto}/${port}`);
            }
          }
        }
      }
    }
  }
});

// ---- applyMapState bookkeeping ----

test('applyMapState: replaces the previous state, keeps counters of unchanged entries', () => {
  const pm = mk();
  let r = pm.applyMapState([e(X, TCP, 80), e(Y, UDP, 53)]);
  assert.deepEqual(r, { added: 2, changed: 0, removed: 0, entries: 2 }, 'first apply');
  check(pm, X, IN, TCP, 80, 500);
  r = pm.applyMapState([e(X, TCP, 80), e(Y, UDP, 53, 0, true), e(X, TCP, 443)]);
  assert.deepEqual(r, { added: 1, changed: 1, removed: 0, entries: 3 }, 'second apply');
  assert.deepEqual(pm.dump().find((row) => row.portRange === '80')?.bytes, 500, 'unchanged entry kept its counters');
  r = pm.applyMapState([e(X, TCP, 443)]);
  assert.deepEqual(r, { added: 0, changed: 0, removed: 2, entries: 1 }, 'third apply');
  assert.equal(check(pm, X, IN, TCP, 80)[0], DROP.POLICY, 'stale allow gone');
  assert.equal(check(pm, Y, IN, UDP, 53)[0], DROP.POLICY, 'stale deny gone');
});

test('applyMapState: writes denies before allows', () => {
  const pm = mk();
  const order: string[] = [];
  const update = pm.map.update.bind(pm.map);
  pm.map.update = (key, off, value, valueOff, flags) => {
    order.push(value![POLICY_VAL.FLAGS]! & 1 ? 'deny' : 'allow');
    return update(key, off, value, valueOff, flags);
  };
  pm.applyMapState([e(X, TCP, 80), e(0, UDP, 0, 0, true), e(Y, TCP, 22), e(X, 0, 0, 0, true)]);
  assert.deepEqual(order, ['deny', 'deny', 'deny', 'allow'], 'denies first (X:80 became a deny)');
});

test('applyMapState: too many entries throws and leaves the map as it was; a full map makes room first', () => {
  const pm = new PolicyMap(1, { maxEntries: 256 });
  pm.applyMapState([e(X, TCP, 80)]);
  const many = Array.from({ length: 257 }, (_, i) => e(X, UDP, i + 1));
  assert.throws(() => pm.applyMapState(many), RangeError, '257 entries do not fit');
  assert.deepEqual(pm.dump().map((r) => r.portRange), ['80'], 'map untouched');
  const fits = Array.from({ length: 256 }, (_, i) => e(X, UDP, i + 1));
  const r = pm.applyMapState(fits);
  assert.deepEqual(r, { added: 256, changed: 0, removed: 1, entries: 256 }, 'stale entry removed before filling');
  assert.throws(() => pm.allow(X, IN, UDP, 999), Error, 'raw write into a full map throws');
});

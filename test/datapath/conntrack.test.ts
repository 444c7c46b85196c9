/**
 * Conntrack state machine (src/datapath/lib/conntrack.ts, conntrack-map.ts):
 * every transition and lifetime with an injected clock, packets built with
 * pktgen and run through ctTuple4Fill/ctTuple6Fill → ctLookup → ctCreate as
 * a program would.
 *
 *   pod C 10.0.0.1 (f00d::1)  ── egress ──▶  server S 10.0.0.2 (f00d::2)
 *                             ◀── ingress ──
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import {
  CT4, CT6, CT_ENTRY as E, CT_F, TUPLE_F_IN, TUPLE_F_OUT, TUPLE_F_RELATED, TUPLE_F_SERVICE,
  ctTuple4Fill, ctTuple4Layout, ctTuple4Reverse, ctTuple6Fill, ctTuple6Layout, getCtMap4,
} from '../../src/datapath/lib/conntrack-map.ts';
import {
  CT_EGRESS, CT_ESTABLISHED, CT_INGRESS, CT_NEW, CT_RELATED, CT_REPLY, CT_SERVICE, CT_SIGNAL_V4,
  Conntrack, CtState, ctCreate4, ctCreate6, ctDelete4, ctLookup4, ctLookup6,
} from '../../src/datapath/lib/conntrack.ts';
import { parseIpv4 } from '../../src/wire/addr.ts';
import type { LruHashMap } from '../../src/maps/lru-hash.ts';

const C = '10.0.0.1', S = '10.0.0.2', C6 = 'f00d::1', S6 = 'f00d::2';
const small = () => new Conntrack({ sizes: { tcp4: 64, any4: 64, tcp6: 64, any6: 64 }, seed: 1 });

const tcp4 = (src: string, sport: number, dst: string, dport: number, flags: string) =>
  pktgen().eth().ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
const udp4 = (src: string, sport: number, dst: string, dport: number) =>
  pktgen().eth().ipv4({ src, dst }).udp({ sport, dport }).payload(10).build();

/** Run one packet through fill → lookup (→ create on NEW when `create`). Returns result and the tuple. */
function pass(ct: Conntrack, b: Uint8Array, dir: number, now: number, st = new CtState(), create = true, v6 = false) {
  const t = new Uint8Array(v6 ? CT6.SIZE : CT4.SIZE);
  const l4 = v6 ? 54 : 34;
  const f = v6 ? ctTuple6Fill(t, b, 14, b[20]!, l4, b.length - l4) : ctTuple4Fill(t, b, 14, l4, b.length - l4);
  if (f < 0) return { r: f, t, st };
  let r = v6 ? ctLookup6(ct, t, dir, f, b.length, now, st) : ctLookup4(ct, t, dir, f, b.length, now, st);
  if (r === CT_NEW && create) {
    const c = v6 ? ctCreate6(ct, t, dir, f, b.length, now, st) : ctCreate4(ct, t, dir, f, b.length, now, st);
    if (c < 0) r = c;
  }
  return { r, t, st };
}

/** The entry stored under `key`, decoded (peek: no LRU touch). */
function entry(map: LruHashMap, key: Uint8Array) {
  const s = map.peek(key, 0);
  assert.ok(s >= 0, `entry present in ${map.name}`);
  const v = map.view, o = s * E.SIZE;
  return {
    lifetime: v.getUint32(o + E.LIFETIME, true), flags: v.getUint16(o + E.FLAGS, true),
    packets: v.getFloat64(o + E.PACKETS, true), bytes: v.getFloat64(o + E.BYTES, true),
    rx: v.getUint8(o + E.RX_FLAGS_SEEN), tx: v.getUint8(o + E.TX_FLAGS_SEEN),
    lastTx: v.getUint32(o + E.LAST_TX_REPORT, true), backend: v.getUint32(o + E.BACKEND_ID, true),
  };
}

test('tuple fill uses packet layout: L4 sport lands in dport; reverse swaps addresses, ports and the IN flag', () => {
  const t = new Uint8Array(CT4.SIZE);
  assert.equal(ctTuple4Fill(t, tcp4(C, 40000, S, 80, 'S'), 14, 34, 20), 0x02);
  assert.deepEqual(ctTuple4Layout.read(t), { daddr: parseIpv4(S), saddr: parseIpv4(C), dport: 40000, sport: 80, nexthdr: 6, flags: 0 });
  ctTuple4Reverse(t);
  assert.deepEqual(ctTuple4Layout.read(t), { daddr: parseIpv4(C), saddr: parseIpv4(S), dport: 80, sport: 40000, nexthdr: 6, flags: TUPLE_F_IN });
  assert.equal(CT6.SIZE, 38);
});

test('TCP: NEW → create (SYN timeout) → REPLY → ESTABLISHED (8000 s after the first non-SYN)', () => {
  const ct = small();
  const a = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 100);
  assert.equal(a.r, CT_NEW);
  // Left in stored orientation: {daddr=C, saddr=S, dport=s, sport=c, OUT}.
  assert.deepEqual(ctTuple4Layout.read(a.t), { daddr: parseIpv4(C), saddr: parseIpv4(S), dport: 80, sport: 40000, nexthdr: 6, flags: TUPLE_F_OUT });
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 160);
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 110).r, CT_ESTABLISHED, 'SYN retransmit');
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 170, 'still the SYN timeout');
  const b = pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 111);
  assert.equal(b.r, CT_REPLY);
  assert.deepEqual(b.t, a.t, 'reply tuple ends equal to the stored key');
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 171, 'SYN-ACK is still SYN phase');
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 112).r, CT_ESTABLISHED);
  const e = entry(ct.maps.tcp4, a.t);
  assert.equal(e.lifetime, 8112);
  assert.equal(e.flags & CT_F.SEEN_NON_SYN, CT_F.SEEN_NON_SYN);
  assert.equal(e.packets, 4);
  assert.equal(e.bytes, 4 * 54);
  assert.equal(e.tx, 0x12);
  assert.equal(e.rx, 0x12);
  assert.equal(pass(ct, tcp4(S, 80, C, 40000, 'A'), CT_INGRESS, 200).r, CT_REPLY);
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 8200);
  assert.equal(ct.stats.created, 1);
  assert.equal(ct.stats.relatedCreated, 1);
});

test('TCP FIN: one side keeps it open, both sides → close timeout, no refresh after, expiry → NEW', () => {
  const ct = small();
  const { t } = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 0);
  pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 1);
  pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 2);
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'FA'), CT_EGRESS, 100).r, CT_ESTABLISHED);
  let e = entry(ct.maps.tcp4, t);
  assert.equal(e.flags & (CT_F.TX_CLOSING | CT_F.RX_CLOSING), CT_F.TX_CLOSING);
  assert.equal(e.lifetime, 8100, 'one side closing: still refreshed');
  assert.equal(pass(ct, tcp4(S, 80, C, 40000, 'A'), CT_INGRESS, 101).r, CT_REPLY);
  assert.equal(entry(ct.maps.tcp4, t).lifetime, 8101);
  assert.equal(pass(ct, tcp4(S, 80, C, 40000, 'FA'), CT_INGRESS, 102).r, CT_REPLY);
  e = entry(ct.maps.tcp4, t);
  assert.equal(e.flags & (CT_F.TX_CLOSING | CT_F.RX_CLOSING), CT_F.TX_CLOSING | CT_F.RX_CLOSING);
  assert.equal(e.lifetime, 112, 'close timeout 10 s');
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 105).r, CT_ESTABLISHED);
  assert.equal(entry(ct.maps.tcp4, t).lifetime, 112, 'no refresh once both sides close');
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 112, new CtState(), false).r, CT_ESTABLISHED, 'alive at lifetime');
  assert.equal(pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 113, new CtState(), false).r, CT_NEW, 'expired');
});

test('TCP RST: before SYNs both ways it closes both sides; after the handshake only its own side', () => {
  const ct = small();
  const { t } = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 0);
  assert.equal(pass(ct, tcp4(S, 80, C, 40000, 'RA'), CT_INGRESS, 5).r, CT_REPLY);
  let e = entry(ct.maps.tcp4, t);
  assert.equal(e.flags & (CT_F.TX_CLOSING | CT_F.RX_CLOSING), CT_F.TX_CLOSING | CT_F.RX_CLOSING);
  assert.equal(e.lifetime, 15);

  const u = pass(ct, tcp4(C, 40001, S, 80, 'S'), CT_EGRESS, 0).t;
  pass(ct, tcp4(S, 80, C, 40001, 'SA'), CT_INGRESS, 1);
  pass(ct, tcp4(C, 40001, S, 80, 'A'), CT_EGRESS, 2);
  assert.equal(pass(ct, tcp4(C, 40001, S, 80, 'R'), CT_EGRESS, 3).r, CT_ESTABLISHED);
  e = entry(ct.maps.tcp4, u);
  assert.equal(e.flags & (CT_F.TX_CLOSING | CT_F.RX_CLOSING), CT_F.TX_CLOSING);
  assert.equal(e.lifetime, 8003);
  assert.equal(pass(ct, tcp4(S, 80, C, 40001, 'R'), CT_INGRESS, 4).r, CT_REPLY);
  assert.equal(entry(ct.maps.tcp4, u).lifetime, 14);
});

test('TCP SYN on a closing entry returns NEW; the caller re-creates it fresh', () => {
  const ct = small();
  const st = new CtState();
  const { t } = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 0);
  pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 1);
  pass(ct, tcp4(C, 40000, S, 80, 'A'), CT_EGRESS, 2);
  pass(ct, tcp4(C, 40000, S, 80, 'FA'), CT_EGRESS, 3);
  pass(ct, tcp4(S, 80, C, 40000, 'FA'), CT_INGRESS, 4);
  const again = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 6, st, false);
  assert.equal(again.r, CT_NEW);
  assert.deepEqual(again.t, t, 'tuple left ready for ctCreate4');
  assert.equal(ct.stats.reopened, 1);
  let e = entry(ct.maps.tcp4, t);
  assert.equal(e.flags & (CT_F.TX_CLOSING | CT_F.RX_CLOSING | CT_F.SEEN_NON_SYN), 0, 'closing and seen_non_syn reset');
  assert.equal(e.lifetime, 66, 'refreshed with the SYN timeout');
  assert.equal(ctCreate4(ct, again.t, CT_EGRESS, 0x02, 54, 6, st), 0);
  e = entry(ct.maps.tcp4, t);
  assert.equal(e.packets, 1, 're-created');
  assert.equal(e.tx, 0x02);
  assert.equal(ct.maps.tcp4.count, 1);
});

test('UDP: 60 s lifetime refreshed by either direction; expiry gives NEW; counters', () => {
  const ct = new Conntrack({ sizes: { tcp4: 64, any4: 64, tcp6: 64, any6: 64 }, timeouts: { any: 30 } });
  const a = pass(ct, udp4(C, 5353, S, 53), CT_EGRESS, 10);
  assert.equal(a.r, CT_NEW);
  assert.equal(getCtMap4(ct.maps, 17), ct.maps.any4);
  assert.equal(entry(ct.maps.any4, a.t).lifetime, 40);
  assert.equal(pass(ct, udp4(S, 53, C, 5353), CT_INGRESS, 20).r, CT_REPLY);
  assert.equal(entry(ct.maps.any4, a.t).lifetime, 50);
  assert.equal(pass(ct, udp4(C, 5353, S, 53), CT_EGRESS, 50).r, CT_ESTABLISHED);
  const e = entry(ct.maps.any4, a.t);
  assert.equal(e.packets, 3);
  assert.equal(e.bytes, 3 * 52);
  assert.equal(e.tx, 0, 'no TCP flags for UDP');
  assert.equal(pass(ct, udp4(S, 53, C, 5353), CT_INGRESS, 81, new CtState(), false).r, CT_NEW);
  assert.equal(ctDelete4(ct, a.t), 0);
  assert.equal(ctDelete4(ct, a.t), -2);
  assert.equal(ct.stats.deleted, 1);
});

test('ICMP echo: id in dport for requests, sport for replies; a different id is a different flow', () => {
  const ct = small();
  const req = pktgen().eth().ipv4({ src: C, dst: S }).icmp4Echo({ id: 0x1234, seq: 1 }).build();
  const a = pass(ct, req, CT_EGRESS, 0);
  assert.equal(a.r, CT_NEW);
  assert.deepEqual(ctTuple4Layout.read(a.t), { daddr: parseIpv4(C), saddr: parseIpv4(S), dport: 0, sport: 0x1234, nexthdr: 1, flags: TUPLE_F_OUT });
  assert.equal(entry(ct.maps.any4, a.t).lifetime, 60, 'ICMP uses the non-TCP lifetime');
  const rep = pktgen().eth().ipv4({ src: S, dst: C }).icmp4Echo({ id: 0x1234, seq: 1, reply: true }).build();
  assert.equal(pass(ct, rep, CT_INGRESS, 1).r, CT_REPLY);
  const other = pktgen().eth().ipv4({ src: S, dst: C }).icmp4Echo({ id: 0x9999, reply: true }).build();
  assert.equal(pass(ct, other, CT_INGRESS, 1, new CtState(), false).r, CT_NEW);
});

test('ICMP errors resolve to RELATED through the companion entry, by outer addresses only', () => {
  const ct = small();
  const { t } = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 0);
  const rel = new Uint8Array(CT4.SIZE);
  rel.set(t.subarray(0, 8));
  rel[CT4.NEXTHDR] = 1;
  rel[CT4.FLAGS] = TUPLE_F_OUT | TUPLE_F_RELATED;
  assert.equal(entry(ct.maps.any4, rel).flags & CT_F.SEEN_NON_SYN, CT_F.SEEN_NON_SYN, 'companion {C,S,ICMP,0,0,OUT|RELATED}');
  const unreach = pktgen().eth().ipv4({ src: S, dst: C }).icmp4({ type: 3, code: 3 }).payload(28).build();
  const r = pass(ct, unreach, CT_INGRESS, 1, new CtState(), false);
  assert.equal(r.r, CT_RELATED);
  assert.equal(r.t[CT4.FLAGS], TUPLE_F_OUT | TUPLE_F_RELATED);
  const ttl = pktgen().eth().ipv4({ src: S, dst: C }).icmp4({ type: 11 }).build();
  assert.equal(pass(ct, ttl, CT_INGRESS, 1, new CtState(), false).r, CT_RELATED);
  const stranger = pktgen().eth().ipv4({ src: '10.9.9.9', dst: C }).icmp4({ type: 3, code: 1 }).build();
  assert.equal(pass(ct, stranger, CT_INGRESS, 1, new CtState(), false).r, CT_NEW);
  // An ingress-initiated flow: the pod's own ICMP error back to the client is RELATED on egress.
  pass(ct, tcp4('10.0.0.7', 33000, C, 8080, 'S'), CT_INGRESS, 2);
  const back = pktgen().eth().ipv4({ src: C, dst: '10.0.0.7' }).icmp4({ type: 3, code: 3 }).build();
  assert.equal(pass(ct, back, CT_EGRESS, 3, new CtState(), false).r, CT_RELATED);
});

test('IPv6: TCP flow, ICMPv6 echo and ICMPv6 error (packet too big) related', () => {
  const ct = small();
  const syn = pktgen().eth().ipv6({ src: C6, dst: S6 }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build();
  const a = pass(ct, syn, CT_EGRESS, 0, new CtState(), true, true);
  assert.equal(a.r, CT_NEW);
  const k = ctTuple6Layout.read(a.t);
  assert.equal(k.dport, 80);
  assert.equal(k.sport, 40000);
  assert.equal(k.flags, TUPLE_F_OUT);
  assert.equal(ct.maps.tcp6.count, 1);
  assert.equal(ct.maps.any6.count, 1, 'ICMPv6 companion');
  const sa = pktgen().eth().ipv6({ src: S6, dst: C6 }).tcp({ sport: 80, dport: 40000, flags: 'SA' }).build();
  assert.equal(pass(ct, sa, CT_INGRESS, 1, new CtState(), true, true).r, CT_REPLY);
  const ack = pktgen().eth().ipv6({ src: C6, dst: S6 }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build();
  assert.equal(pass(ct, ack, CT_EGRESS, 2, new CtState(), true, true).r, CT_ESTABLISHED);
  assert.equal(entry(ct.maps.tcp6, a.t).lifetime, 8002);
  const ptb = pktgen().eth().ipv6({ src: S6, dst: C6 }).icmp6({ type: 2, rest: 1280 }).payload(48).build();
  assert.equal(pass(ct, ptb, CT_INGRESS, 3, new CtState(), false, true).r, CT_RELATED);
  const echo = pktgen().eth().ipv6({ src: C6, dst: S6 }).icmp6Echo({ id: 7 }).build();
  assert.equal(pass(ct, echo, CT_EGRESS, 4, new CtState(), true, true).r, CT_NEW);
  const reply = pktgen().eth().ipv6({ src: S6, dst: C6 }).icmp6Echo({ id: 7, reply: true }).build();
  assert.equal(pass(ct, reply, CT_INGRESS, 5, new CtState(), true, true).r, CT_REPLY);
});

test('service entries: packet layout + SERVICE flag, backend kept, both sides close, SYN reopens, rebalance after 60 s', () => {
  const ct = small();
  const st = new CtState();
  const VIP = '172.16.0.10';
  const syn = tcp4(C, 40000, VIP, 80, 'S');
  const a = pass(ct, syn, CT_SERVICE, 0, st, false);
  assert.equal(a.r, CT_NEW);
  st.reset();
  st.backendId = 7;
  st.revNat = 3;
  assert.equal(ctCreate4(ct, a.t, CT_SERVICE, 0x02, syn.length, 0, st), 0);
  assert.deepEqual(ctTuple4Layout.read(a.t), { daddr: parseIpv4(VIP), saddr: parseIpv4(C), dport: 40000, sport: 80, nexthdr: 6, flags: TUPLE_F_SERVICE });
  assert.equal(ct.maps.any4.count, 0, 'no companion for service entries');
  const st2 = new CtState();
  assert.equal(pass(ct, tcp4(C, 40000, VIP, 80, 'A'), CT_SERVICE, 1, st2, false).r, CT_ESTABLISHED);
  assert.equal(st2.backendId, 7);
  assert.equal(st2.revNat, 3);
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 8001, 'service-tcp lifetime');
  assert.equal(pass(ct, tcp4(C, 40000, VIP, 80, 'FA'), CT_SERVICE, 100, st2, false).r, CT_ESTABLISHED);
  assert.equal(entry(ct.maps.tcp4, a.t).flags & 3, 3, 'a service close sets both closing bits');
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 110);
  // SYN on the closing service entry: reopened, CT_NEW, the LB re-selects and re-creates.
  assert.equal(pass(ct, tcp4(C, 40000, VIP, 80, 'S'), CT_SERVICE, 105, st2, false).r, CT_NEW);
  assert.equal(entry(ct.maps.tcp4, a.t).flags & 3, 0, 'closing bits reset');
  assert.equal(entry(ct.maps.tcp4, a.t).lifetime, 165, 'refreshed with the SYN timeout');
  st.backendId = 8;
  assert.equal(ctCreate4(ct, a.t, CT_SERVICE, 0x02, syn.length, 105, st), 0);
  assert.equal(entry(ct.maps.tcp4, a.t).backend, 8);
  // Past the rebalance time (with a close timeout long enough to keep the entry alive), the entry is left untouched.
  const ct2 = new Conntrack({ sizes: { tcp4: 8, any4: 8, tcp6: 8, any6: 8 }, timeouts: { tcpClose: 120 } });
  const b = pass(ct2, syn, CT_SERVICE, 0, st, true);
  pass(ct2, tcp4(C, 40000, VIP, 80, 'R'), CT_SERVICE, 10, st2, false);
  const before = entry(ct2.maps.tcp4, b.t);
  assert.equal(before.lastTx, 10);
  assert.equal(pass(ct2, tcp4(C, 40000, VIP, 80, 'S'), CT_SERVICE, 70, st2, false).r, CT_NEW, 'last_tx_report + 60 <= now');
  assert.deepEqual(entry(ct2.maps.tcp4, b.t), before, 'not accounted, not reset');
  assert.equal(ct2.stats.reopened, 0);
  const u = pass(ct, udp4(C, 5000, VIP, 53), CT_SERVICE, 0, new CtState(), true);
  assert.equal(u.r, CT_NEW);
  assert.equal(entry(ct.maps.any4, u.t).lifetime, 60, 'service-any');
});

test('a full table without eviction drops with CT_CREATE_FAILED (155) and signals the GC', () => {
  const ct = new Conntrack({ sizes: { tcp4: 2, any4: 2, tcp6: 2, any6: 2 }, evict: false });
  assert.equal(pass(ct, tcp4(C, 1, S, 80, 'S'), CT_EGRESS, 0).r, CT_NEW);
  assert.equal(pass(ct, tcp4(C, 2, S, 80, 'S'), CT_EGRESS, 0).r, CT_NEW);
  assert.equal(ct.maps.any4.count, 1, 'one companion per host pair');
  assert.equal(pass(ct, tcp4(C, 3, S, 80, 'S'), CT_EGRESS, 0).r, DROP.CT_CREATE_FAILED);
  assert.equal(-DROP.CT_CREATE_FAILED, 155);
  assert.equal(ct.stats.createFailed, 1);
  assert.equal(ct.fullSignal, CT_SIGNAL_V4);
  assert.equal(pass(ct, tcp4(C, 1, S, 80, 'A'), CT_EGRESS, 1).r, CT_ESTABLISHED, 'existing flows unaffected');
  assert.equal(ct.takeFullSignal(), CT_SIGNAL_V4);
  assert.equal(ct.fullSignal, 0);
  // The companion insert can fail too: the main entry stays.
  const any1 = new Conntrack({ sizes: { tcp4: 2, any4: 1, tcp6: 2, any6: 2 }, evict: false });
  const r = pass(any1, udp4(C, 5353, S, 53), CT_EGRESS, 0);
  assert.equal(r.r, DROP.CT_CREATE_FAILED);
  assert.equal(any1.maps.any4.count, 1);
  // Default (Cilium's LRU): evicts instead.
  const lru = new Conntrack({ sizes: { tcp4: 2, any4: 2, tcp6: 2, any6: 2 } });
  for (let p = 1; p <= 3; p++) assert.equal(pass(lru, tcp4(C, p, S, 80, 'S'), CT_EGRESS, 0).r, CT_NEW);
  assert.equal(lru.maps.tcp4.stats.evictions, 1);
});

test('unknown protocol (137) and truncated L4 headers (135)', () => {
  const ct = small();
  const gre = pktgen().eth().ipv4({ src: C, dst: S, protocol: 47 }).payload(8).build();
  assert.equal(pass(ct, gre, CT_EGRESS, 0).r, DROP.CT_UNKNOWN_PROTO);
  const t = new Uint8Array(CT4.SIZE);
  t[CT4.NEXTHDR] = 47;
  assert.equal(ctLookup4(ct, t, CT_EGRESS, 0, 60, 0, new CtState()), DROP.CT_UNKNOWN_PROTO);
  const short = pktgen().eth().ipv4({ src: C, dst: S, protocol: 6 }).payload(12).build();
  assert.equal(pass(ct, short, CT_EGRESS, 0).r, DROP.CT_INVALID_HDR);
  const icmp6in4 = pktgen().eth().ipv4({ src: C, dst: S, protocol: 58 }).payload(8).build();
  assert.equal(pass(ct, icmp6in4, CT_EGRESS, 0).r, DROP.CT_UNKNOWN_PROTO, 'ICMPv6 is not an IPv4 protocol');
});

test('state carries the entry fields and the monitor-aggregation report bit', () => {
  const ct = small();
  const st = new CtState();
  st.srcSecId = 4242;
  st.ifindex = 9;
  st.flags = CT_F.PROXY_REDIRECT | CT_F.RX_CLOSING;
  const { t } = pass(ct, tcp4(C, 40000, S, 80, 'S'), CT_EGRESS, 0, st);
  assert.equal(entry(ct.maps.tcp4, t).flags, CT_F.PROXY_REDIRECT, 'only creation flags are taken from state');
  const st2 = new CtState();
  assert.equal(pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 1, st2).r, CT_REPLY);
  assert.equal(st2.srcSecId, 4242);
  assert.equal(st2.ifindex, 9);
  assert.equal(st2.flags & CT_F.PROXY_REDIRECT, CT_F.PROXY_REDIRECT);
  assert.equal(st2.map, ct.maps.tcp4);
  assert.ok(st2.slot >= 0, 'slot of the hit');
  assert.equal(st2.report, true, 'new rx flags');
  pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 2, st2);
  assert.equal(st2.report, false, 'same flags within 5 s');
  pass(ct, tcp4(S, 80, C, 40000, 'SA'), CT_INGRESS, 8, st2);
  assert.equal(st2.report, true, 'report interval passed');
});

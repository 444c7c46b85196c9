/**
 * IPv4 SNAT (src/datapath/lib/nat.ts, nat-map.ts, nat-dump.ts), packet in /
 * packet out:
 *
 *   pod 10.0.1.5 ──┐                          ┌── peer 1.1.1.1
 *   pod 10.0.1.6 ──┴─ egress: src → NAT 192.168.1.10:port ──► ingress: dst → pod
 *
 * Checksums are verified from scratch (ipv4HdrCsumOk, l4CsumOk4), never
 * with the incremental code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import * as w from '../../src/wire/index.ts';
import { FrameBatch, allocSlab } from '../../src/packet/batch.ts';
import { DROP } from '../../src/datapath/lib/drop-reasons.ts';
import { Snat4, natCtDeleteHook } from '../../src/datapath/lib/nat.ts';
import { NAT_MAP_SIZE_V4, NAT_VAL, natEntry4Layout, natKey4, natVal4 } from '../../src/datapath/lib/nat-map.ts';
import { formatNatEntry, natDump, natList } from '../../src/datapath/lib/nat-dump.ts';
import { CT4, TUPLE_F_IN, TUPLE_F_OUT, TUPLE_F_RELATED, ctTuple4Fill } from '../../src/datapath/lib/conntrack-map.ts';
import { CT_EGRESS, CT_NEW, Conntrack, CtState, ctCreate4, ctLookup4 } from '../../src/datapath/lib/conntrack.ts';
import { CtGc } from '../../src/datapath/lib/conntrack-gc.ts';

const POD = '10.0.1.5', POD2 = '10.0.1.6', PEER = '1.1.1.1', NAT = '192.168.1.10', ROUTER = '203.0.113.1';
const NAT_N = w.parseIpv4(NAT);
const TCP = w.IPPROTO_TCP, UDP = w.IPPROTO_UDP, ICMP = w.IPPROTO_ICMP;

const batch = new FrameBatch(allocSlab());

/** Run `f` on `frame` loaded as frame 0 (with an optional virtio-net header); returns its result and the frame after. */
function run(frame: Uint8Array, f: (ip4: w.Ipv4View) => number, vnet?: Uint8Array): { r: number; out: Uint8Array } {
  batch.load([frame], 0, 0, vnet ? [vnet] : undefined);
  const ip4 = new w.Ipv4View().bind(batch.buf, batch.off[0]! + 14, batch.len[0]! - 14);
  assert.ok(ip4.checkLen(), 'test frame has a valid IPv4 header');
  const r = f(ip4);
  return { r, out: batch.frame(0) };
}
const egress = (s: Snat4, frame: Uint8Array, now = 0, needsCt = false, vnet?: Uint8Array) =>
  run(frame, (ip4) => s.egress(batch, 0, ip4, NAT_N, now, needsCt), vnet);
const ingress = (s: Snat4, frame: Uint8Array, now = 0, vnet?: Uint8Array) =>
  run(frame, (ip4) => s.ingress(batch, 0, ip4, NAT_N, now), vnet);

/** Deterministic u32 source (LCG). */
function lcg(seed = 1): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
}

const tcp = (src: string, dst: string, sport: number, dport: number, flags = 'S') =>
  pktgen().eth().ipv4({ src, dst }).tcp({ sport, dport, flags }).payload(13).build();
const udp = (src: string, dst: string, sport: number, dport: number, o: { checksum?: number } = {}) =>
  pktgen().eth().ipv4({ src, dst }).udp({ sport, dport, checksum: o.checksum }).payload(21).build();
const echo = (src: string, dst: string, id: number, reply = false) =>
  pktgen().eth().ipv4({ src, dst }).icmp4Echo({ id, seq: 3, reply }).payload(16).build();

const ipOf = (f: Uint8Array) => new w.Ipv4View().bind(f, 14, f.length - 14);
const src = (f: Uint8Array) => w.formatIpv4(ipOf(f).src());
const dst = (f: Uint8Array) => w.formatIpv4(ipOf(f).dst());
const sportOf = (f: Uint8Array) => w.get16(f, 34);
const dportOf = (f: Uint8Array) => w.get16(f, 36);
const echoId = (f: Uint8Array) => w.get16(f, 34 + 4);

/** IPv4 header and L4 checksum both valid, recomputed from scratch. */
function checksOk(f: Uint8Array, what: string): void {
  const ip = ipOf(f);
  assert.ok(ip.verifyChecksum(), `${what}: IPv4 header checksum`);
  assert.ok(w.l4CsumOk4(f, 34, ip.payloadLen(), ip.protocol(), ip.src(), ip.dst()), `${what}: L4 checksum`);
}

/** Split a pktgen build with .vnet() into [virtio-net header, frame]. */
function splitVnet(b: Uint8Array): [Uint8Array, Uint8Array] {
  return [b.slice(0, w.VIRTIO_NET_HDR_LEN), b.slice(w.VIRTIO_NET_HDR_LEN)];
}

test('egress TCP: source becomes the NAT address, a free in-range port is kept, checksums valid', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  const { r, out } = egress(s, tcp(POD, PEER, 40000, 443));
  assert.equal(r, 0);
  assert.equal(src(out), NAT);
  assert.equal(dst(out), PEER);
  assert.equal(sportOf(out), 40000, 'in-range free source port kept');
  assert.equal(dportOf(out), 443);
  checksOk(out, 'egress TCP');
  assert.equal(s.created, 1);
  assert.equal(s.retries, 0);
  assert.equal(s.port, 40000);
});

test('the OUT/IN pair is in the map and consistent; later packets reuse it', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  egress(s, tcp(POD, PEER, 1234, 443), 10, true);
  const rows = natDump(s, 10);
  assert.equal(rows.length, 2);
  const out = rows.find((e) => e.type === 'OUT')!, inn = rows.find((e) => e.type === 'IN')!;
  assert.ok(out && inn, 'one OUT and one IN entry');
  assert.deepEqual([out.src, out.sport, out.dst, out.dport, out.proto], [POD, 1234, PEER, 443, 'TCP']);
  assert.equal(out.xlateAddr, NAT);
  assert.deepEqual([inn.src, inn.sport, inn.dst, inn.dport], [PEER, 443, NAT, out.xlatePort], 'IN = reply to the NAT port');
  assert.deepEqual([inn.xlateAddr, inn.xlatePort], [POD, 1234], 'IN translates back to the pod');
  assert.ok(out.needsCt && inn.needsCt, 'needs_ct stored in both halves');
  assert.equal(out.created, 10);
  // Raw value layout: addr/port big-endian at NAT_VAL offsets, created u64 LE.
  const k = new Uint8Array(CT4.SIZE);
  natKey4(k, w.parseIpv4(POD), w.parseIpv4(PEER), 1234, 443, TCP, TUPLE_F_OUT);
  const slot = s.map.peek(k, 0);
  assert.ok(slot >= 0, 'OUT key as natKey4 builds it');
  const v = natEntry4Layout.read(s.map.values, slot * NAT_VAL.SIZE);
  assert.deepEqual([v.created, v.needs_ct, v.addr, v.port], [10n, 1n, NAT_N, out.xlatePort]);
  assert.equal(NAT_VAL.SIZE, natEntry4Layout.size);
  // Next packet: same port, nothing created, random not consulted.
  const before = s.port;
  const { out: f2 } = egress(s, tcp(POD, PEER, 1234, 443, 'A'), 11);
  assert.equal(sportOf(f2), before);
  assert.equal(s.created, 1);
  assert.equal(s.map.count, 2);
});

test('a source port outside [min,max] gets min + ((v·(max−min+1)) >>> 16) of a 16-bit random v', () => {
  const s = new Snat4({ maxEntries: 64, random: () => 0x12345678 });
  const { out } = egress(s, udp(POD, PEER, 1234, 53));
  // v = 0x5678 = 22136; 32768 + (22136 · 32768 >>> 16) = 32768 + 11068
  assert.equal(sportOf(out), 43836);
  assert.equal(s.clamp(0x5678), 43836);
  checksOk(out, 'egress UDP with new port');
});

test('collision: a second pod with the same source port gets another port in range (retry 0 redraws random)', () => {
  const s = new Snat4({ maxEntries: 64, random: () => 0xffff });
  assert.equal(sportOf(egress(s, tcp(POD, PEER, 40000, 443)).out), 40000);
  const { r, out } = egress(s, tcp(POD2, PEER, 40000, 443));
  assert.equal(r, 0);
  assert.equal(sportOf(out), s.clamp(0xffff), 'the random redraw');
  assert.equal(sportOf(out), 65535);
  assert.equal(s.retries, 1);
  assert.equal(s.gcSignal, 0, 'one retry is no port pressure');
  checksOk(out, 'egress after collision');
  // Replies to each port reach their own pod.
  assert.equal(dst(ingress(s, tcp(PEER, NAT, 443, 40000, 'SA')).out), POD);
  assert.equal(dst(ingress(s, tcp(PEER, NAT, 443, 65535, 'SA')).out), POD2);
  // The same port towards another peer is no collision.
  assert.equal(sportOf(egress(s, tcp(POD2, '8.8.8.8', 40000, 443)).out), 40000);
});

test('later retries walk clamp(prev + 1), not a new random draw', () => {
  // Range 40000..40003: clamp(v) = 40000 + (v >>> 14). Random always 0 → 40000.
  const s = new Snat4({ maxEntries: 64, minPort: 40000, maxPort: 40003, random: () => 0 });
  assert.equal(sportOf(egress(s, tcp(POD, PEER, 40000, 443)).out), 40000);
  // 40000 taken; retry 0: clamp(random 0) = 40000 taken; retry 1: clamp(40001) = 40002.
  const { r, out } = egress(s, tcp(POD2, PEER, 40000, 443));
  assert.equal(r, 0);
  assert.equal(sportOf(out), 40002);
  assert.equal(s.retries, 2);
});

test('exhaustion with a one-port range: DROP_NAT_NO_MAPPING, frame untouched, counters and GC signal', () => {
  const s = new Snat4({ maxEntries: 64, minPort: 40000, maxPort: 40000, random: lcg(3) });
  egress(s, udp(POD, PEER, 5000, 53));
  const f = udp(POD2, PEER, 5000, 53);
  const { r, out } = egress(s, f);
  assert.equal(r, DROP.NAT_NO_MAPPING);
  assert.equal(r, -167);
  assert.deepEqual(out, f, 'frame untouched');
  assert.equal(s.exhausted, 1);
  assert.equal(s.retries, 128, 'every retry counted');
  assert.equal(s.map.count, 2, 'no half mapping left behind');
  assert.equal(s.takeGcSignal(), 1, 'more than 64 retries signals the GC');
  assert.equal(s.gcSignal, 0);
  const few = new Snat4({ maxEntries: 64, minPort: 40000, maxPort: 40000, retries: 4, random: lcg(3) });
  egress(few, udp(POD, PEER, 5000, 53));
  assert.equal(egress(few, udp(POD2, PEER, 5000, 53)).r, DROP.NAT_NO_MAPPING);
  assert.equal(few.retries, 4, 'the retries option bounds the walk');
  assert.equal(few.gcSignal, 0);
});

test('allocated ports always lie in [min,max] and never collide', () => {
  const s = new Snat4({ maxEntries: 4096, minPort: 50000, maxPort: 50999, random: lcg(7) });
  const ports = new Set<number>();
  let failed = 0;
  for (let k = 0; k < 400; k++) {
    // Half out of range (random), half in range but colliding with earlier picks.
    const sport = k % 2 === 0 ? 1000 + k : 50000 + (k % 50);
    const pod = `10.0.${2 + (k >> 8)}.${k & 0xff}`;
    const { r, out } = egress(s, udp(pod, PEER, sport, 53));
    if (r === DROP.NAT_NO_MAPPING) {
      // clamp(prev + 1) rescales into the range, so the walk after the one
      // random redraw revisits few ports: a busy range can run dry early.
      failed++;
      continue;
    }
    assert.equal(r, 0);
    const p = sportOf(out);
    assert.ok(p >= 50000 && p <= 50999, `port ${p} in range`);
    assert.ok(!ports.has(p), `port ${p} unique towards one peer`);
    ports.add(p);
  }
  assert.ok(ports.size > 300, `most flows mapped (${ports.size})`);
  assert.equal(s.exhausted, failed);
  assert.equal(s.map.count, 2 * ports.size);
  assert.equal(s.created, ports.size);
});

test('ingress: a reply is translated back to the pod address and port, checksums valid', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  const natPort = sportOf(egress(s, tcp(POD, PEER, 1234, 443)).out);
  assert.notEqual(natPort, 1234);
  const { r, out } = ingress(s, tcp(PEER, NAT, 443, natPort, 'SA'), 5);
  assert.equal(r, 1);
  assert.equal(src(out), PEER);
  assert.equal(dst(out), POD);
  assert.equal(sportOf(out), 443);
  assert.equal(dportOf(out), 1234);
  checksOk(out, 'ingress TCP');
  assert.equal(s.port, 1234);
});

test('ingress: no entry, another address, or a destination port outside [min,max] → 0 and untouched', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  egress(s, tcp(POD, PEER, 40000, 443));
  for (const f of [
    tcp(PEER, NAT, 443, 40001, 'SA'), // no mapping for this port
    tcp('9.9.9.9', NAT, 443, 40000, 'SA'), // other peer
    tcp(PEER, '192.168.1.11', 443, 40000, 'SA'), // not for the NAT address
    echo(PEER, NAT, 40000), // echo request arriving: not a reply
    pktgen().eth().ipv4({ src: PEER, dst: NAT, protocol: 47 }).payload(20).build(), // GRE
  ]) {
    const { r, out } = ingress(s, f);
    assert.equal(r, 0);
    assert.deepEqual(out, f, 'untouched');
  }
  // An IN entry for port 80 exists, but 80 < minPort: reverse NAT is skipped.
  const k = new Uint8Array(CT4.SIZE), v = new Uint8Array(NAT_VAL.SIZE);
  natKey4(k, w.parseIpv4(PEER), NAT_N, 443, 80, TCP, TUPLE_F_IN);
  natVal4(v, 0, 0, false, w.parseIpv4(POD), 80);
  assert.ok(s.map.update(k, 0, v, 0) >= 0, 'manual IN entry inserted');
  const f = tcp(PEER, NAT, 443, 80, 'SA');
  const { r, out } = ingress(s, f);
  assert.equal(r, 0, 'dport outside the range is never reverse-translated');
  assert.deepEqual(out, f);
});

test('partial checksums (NEEDS_CSUM): the address change adjusts the pseudo-header sum, the port change does not', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg(11) });
  for (const proto of [TCP, UDP]) {
    const g = pktgen().vnet({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM }).eth().ipv4({ src: POD, dst: PEER });
    const built = (proto === TCP ? g.tcp({ sport: 1234, dport: 443 }) : g.udp({ sport: 1234, dport: 53 })).payload(33).build();
    const [vnet, frame] = splitVnet(built);
    const { r, out } = egress(s, frame, 0, false, vnet);
    assert.equal(r, 0);
    assert.notEqual(sportOf(out), 1234, 'port rewritten');
    const ip = ipOf(out), l4Len = ip.payloadLen(), at = 34 + w.l4CsumOffset(proto);
    assert.ok(ip.verifyChecksum(), 'IPv4 header checksum');
    const want = w.fold(w.ipv4PseudoSum(ip.src(), ip.dst(), proto, l4Len));
    assert.equal(w.get16(out, at), want, 'field holds the partial sum over the new addresses');
    // A device completing it yields a valid checksum.
    const done = out.slice();
    w.csumCompletePartial(done, 34, 34 + l4Len, w.l4CsumOffset(proto));
    assert.ok(w.l4CsumOk4(done, 34, l4Len, proto, ip.src(), ip.dst()), 'completed checksum valid');
    // And back in: the reply, partial too, reaches the pod with a partial sum over the pod address.
    const rb = pktgen().vnet({ flags: w.VIRTIO_NET_HDR_F_NEEDS_CSUM }).eth().ipv4({ src: PEER, dst: NAT });
    const reply = (proto === TCP ? rb.tcp({ sport: 443, dport: sportOf(out), flags: 'SA' }) : rb.udp({ sport: 53, dport: sportOf(out) })).build();
    const [rv, rf] = splitVnet(reply);
    const back = ingress(s, rf, 0, rv);
    assert.equal(back.r, 1);
    const bip = ipOf(back.out);
    assert.equal(w.get16(back.out, at), w.fold(w.ipv4PseudoSum(bip.src(), bip.dst(), proto, bip.payloadLen())));
    assert.equal(dportOf(back.out), 1234);
  }
});

test('UDP checksum 0 ("none") stays 0 through address and port rewrites', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  const { r, out } = egress(s, udp(POD, PEER, 1234, 53, { checksum: 0 }));
  assert.equal(r, 0);
  assert.notEqual(sportOf(out), 1234);
  assert.equal(w.get16(out, 40), 0);
  assert.ok(ipOf(out).verifyChecksum(), 'IPv4 header checksum');
  const back = ingress(s, udp(PEER, NAT, 53, sportOf(out), { checksum: 0 }));
  assert.equal(back.r, 1);
  assert.equal(w.get16(back.out, 40), 0);
});

test('ICMP echo: the request id is translated as a source port, the reply id back, ICMP checksum fixed', () => {
  const s = new Snat4({ maxEntries: 64, random: () => 0x00abcdef });
  const { r, out } = egress(s, echo(POD, PEER, 7), 0, true);
  assert.equal(r, 0);
  assert.equal(src(out), NAT);
  const id = echoId(out);
  assert.equal(id, s.clamp(0xcdef), 'id 7 is outside the range: random id');
  checksOk(out, 'echo request');
  assert.deepEqual(natList(s, 0).sort(), [
    `ICMP IN ${PEER}:0 -> ${NAT}:${id} XLATE_DST ${POD}:7 Created=0sec ago NeedsCT=1`,
    `ICMP OUT ${POD}:7 -> ${PEER}:0 XLATE_SRC ${NAT}:${id} Created=0sec ago NeedsCT=1`,
  ]);
  const back = ingress(s, echo(PEER, NAT, id, true));
  assert.equal(back.r, 1);
  assert.equal(dst(back.out), POD);
  assert.equal(echoId(back.out), 7);
  checksOk(back.out, 'echo reply');
  assert.ok(s.needsCt, 'needs_ct of the mapping reported');
  // An in-range id is kept.
  assert.equal(echoId(egress(s, echo(POD, PEER, 40000)).out), 40000);
});

test('egress: echo reply not NATed; other ICMP, other protocols, fragments and truncation rejected', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  const reply = echo(POD, PEER, 7, true);
  const er = egress(s, reply);
  assert.equal(er.r, 0);
  assert.deepEqual(er.out, reply, 'echo reply leaves untouched');
  const unreach = (code: number) =>
    pktgen().eth().ipv4({ src: POD, dst: PEER }).icmp4({ type: 3, code }).raw(new Uint8Array(28)).build();
  assert.equal(egress(s, unreach(w.ICMP_PORT_UNREACH)).r, DROP.UNKNOWN_ICMP4_CODE);
  assert.equal(DROP.UNKNOWN_ICMP4_CODE, -143);
  const tex = pktgen().eth().ipv4({ src: POD, dst: PEER }).icmp4({ type: w.ICMP_TIME_EXCEEDED }).raw(new Uint8Array(28)).build();
  assert.equal(egress(s, tex).r, DROP.NAT_UNSUPP_PROTO);
  const gre = pktgen().eth().ipv4({ src: POD, dst: PEER, protocol: 47 }).payload(20).build();
  assert.equal(egress(s, gre).r, -168);
  const short = pktgen().eth().ipv4({ src: POD, dst: PEER, protocol: TCP }).raw(new Uint8Array(12)).build();
  assert.equal(egress(s, short).r, DROP.INVALID);
  assert.equal(DROP.INVALID, -134);
  const shortUdp = pktgen().eth().ipv4({ src: POD, dst: PEER, protocol: UDP }).raw(new Uint8Array(6)).build();
  assert.equal(egress(s, shortUdp).r, DROP.INVALID);
  const shortIcmp = pktgen().eth().ipv4({ src: POD, dst: PEER, protocol: ICMP }).raw(new Uint8Array(4)).build();
  assert.equal(egress(s, shortIcmp).r, DROP.INVALID);
  const frag = pktgen().eth().ipv4({ src: POD, dst: PEER, mf: true }).udp({ sport: 1234, dport: 53 }).payload(40).build();
  assert.equal(egress(s, frag).r, DROP.FRAG_NOSUPPORT);
  assert.equal(s.map.count, 0, 'nothing created');
  // An arriving first fragment of a mapped flow is passed on untranslated.
  const natPort = sportOf(egress(s, udp(POD, PEER, 1234, 53)).out);
  const inFrag = pktgen().eth().ipv4({ src: PEER, dst: NAT, mf: true }).udp({ sport: 53, dport: natPort }).payload(40).build();
  const fr = ingress(s, inFrag);
  assert.equal(fr.r, 0, 'an arriving fragment is passed on');
  assert.deepEqual(fr.out, inFrag);
  assert.equal(ingress(s, pktgen().eth().ipv4({ src: PEER, dst: NAT, protocol: TCP }).raw(new Uint8Array(12)).build()).r, DROP.INVALID);
});

test('frag-needed arriving is reverse-translated through the quoted header (RFC 5508)', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg(5) });
  const orig = udp(POD, PEER, 1234, 53);
  const sent = egress(s, orig).out;
  const natPort = sportOf(sent);
  // A router on the path quotes the datagram as it left the node: IP header + 8 bytes.
  const quoted = sent.slice(14, 14 + 28);
  const icmp = pktgen().eth().ipv4({ src: ROUTER, dst: NAT }).icmp4({ type: 3, code: 4, rest: 1400 }).raw(quoted).build();
  const { r, out } = ingress(s, icmp);
  assert.equal(r, 1);
  assert.equal(src(out), ROUTER);
  assert.equal(dst(out), POD);
  checksOk(out, 'outer header and ICMP checksum');
  const q = 34 + 8;
  assert.ok(w.ipv4HdrCsumOk(out, q), 'quoted IPv4 header checksum');
  assert.deepEqual(out.slice(q, q + 20), orig.slice(14, 34), 'quoted header is the pod\'s original one');
  assert.equal(w.get16(out, q + 20), 1234, 'quoted source port back to the pod port');
  assert.equal(w.get16(out, q + 22), 53);
  assert.equal(w.get16(out, q + 26), w.get16(quoted, 26), 'quoted UDP checksum left as is');
  assert.equal(w.get32(out, 34 + 4), 1400, 'MTU kept');
  assert.equal(s.port, 1234);
  // No mapping for the quoted port → not ours.
  const other = quoted.slice();
  w.set16(other, 20, natPort === 65535 ? 65534 : natPort + 1);
  const miss = pktgen().eth().ipv4({ src: ROUTER, dst: NAT }).icmp4({ type: 3, code: 4 }).raw(other).build();
  assert.equal(ingress(s, miss).r, 0);
  // Truncated quote → invalid.
  const cut = pktgen().eth().ipv4({ src: ROUTER, dst: NAT }).icmp4({ type: 3, code: 4 }).raw(quoted.slice(0, 24)).build();
  assert.equal(ingress(s, cut).r, DROP.INVALID);
});

test('frag-needed arriving for an ICMP echo mapping translates the quoted echo id', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg(9) });
  const sent = egress(s, echo(POD, PEER, 7)).out;
  const icmp = pktgen().eth().ipv4({ src: ROUTER, dst: NAT }).icmp4({ type: 3, code: 4, rest: 576 }).raw(sent.slice(14, 42)).build();
  const { r, out } = ingress(s, icmp);
  assert.equal(r, 1);
  assert.equal(dst(out), POD);
  checksOk(out, 'outer');
  assert.ok(w.ipv4HdrCsumOk(out, 42), 'quoted IPv4 header checksum');
  assert.equal(w.formatIpv4(w.get32(out, 42 + 12)), POD);
  assert.equal(w.get16(out, 42 + 20 + 4), 7, 'quoted echo id back to the pod id');
});

test('frag-needed leaving (a pod quoting a reply it got) is translated: outer source, quoted destination and port', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg(13) });
  const natPort = sportOf(egress(s, tcp(POD, PEER, 1234, 443)).out);
  const arrived = tcp(PEER, NAT, 443, natPort, 'A');
  const delivered = ingress(s, arrived).out;
  // The pod quotes what it received (PEER:443 → POD:1234).
  const icmp = pktgen().eth().ipv4({ src: POD, dst: PEER }).icmp4({ type: 3, code: 4, rest: 1280 }).raw(delivered.slice(14, 42)).build();
  const { r, out } = egress(s, icmp);
  assert.equal(r, 0);
  assert.equal(src(out), NAT);
  assert.equal(dst(out), PEER);
  checksOk(out, 'outer header and ICMP checksum');
  assert.ok(w.ipv4HdrCsumOk(out, 42), 'quoted IPv4 header checksum');
  assert.deepEqual(out.slice(42, 62), arrived.slice(14, 34), 'quoted header is the packet as the peer sent it');
  assert.equal(w.get16(out, 62), 443);
  assert.equal(w.get16(out, 64), natPort, 'quoted destination port is the NAT port');
  // Without a mapping the error leaves untouched.
  const stray = pktgen().eth().ipv4({ src: POD, dst: PEER }).icmp4({ type: 3, code: 4 }).raw(tcp(PEER, POD, 443, 999).slice(14, 42)).build();
  const st = egress(s, stray);
  assert.equal(st.r, 0);
  assert.deepEqual(st.out, stray);
  // Nor does one whose sender is not the quoted destination.
  const foreign = pktgen().eth().ipv4({ src: POD2, dst: PEER }).icmp4({ type: 3, code: 4 }).raw(delivered.slice(14, 42)).build();
  const fo = egress(s, foreign);
  assert.equal(fo.r, 0);
  assert.deepEqual(fo.out, foreign);
});

test('an OUT hit puts back an evicted IN entry; a failed OUT insert removes the new IN entry', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  egress(s, tcp(POD, PEER, 40000, 443));
  const k = new Uint8Array(CT4.SIZE);
  natKey4(k, w.parseIpv4(PEER), NAT_N, 443, 40000, TCP, TUPLE_F_IN);
  assert.equal(s.map.delete(k, 0), 0);
  assert.equal(ingress(s, tcp(PEER, NAT, 443, 40000, 'SA')).r, 0, 'IN half gone');
  egress(s, tcp(POD, PEER, 40000, 443, 'A'));
  assert.equal(s.restored, 1);
  assert.equal(s.created, 1);
  assert.equal(dst(ingress(s, tcp(PEER, NAT, 443, 40000, 'SA')).out), POD, 'IN half back');

  const f = new Snat4({ maxEntries: 64, random: lcg() });
  const update = f.map.update.bind(f.map);
  f.map.update = (key, off, value, valueOff, flags) => (key[off + CT4.FLAGS] === TUPLE_F_OUT ? -12 : update(key, off, value, valueOff, flags));
  assert.equal(egress(f, tcp(POD, PEER, 40000, 443)).r, DROP.NAT_NO_MAPPING);
  assert.equal(f.map.count, 0, 'IN entry deleted again');
  assert.equal(f.created, 0);
});

test('deleteMapping removes the pair by its OUT tuple; an IN half now owned by another pod stays', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  egress(s, udp(POD, PEER, 40000, 53));
  egress(s, echo(POD, PEER, 40001));
  assert.equal(s.map.count, 4);
  assert.ok(s.deleteMapping(w.parseIpv4(POD), w.parseIpv4(PEER), 40000, 53, UDP), 'UDP pair found');
  assert.ok(s.deleteMapping(w.parseIpv4(POD), w.parseIpv4(PEER), 40001, 0, ICMP), 'echo pair found');
  assert.equal(s.map.count, 0);
  assert.equal(s.deleted, 2);
  assert.equal(s.deleteMapping(w.parseIpv4(POD), w.parseIpv4(PEER), 40000, 53, UDP), false);
  // The IN key now translates to POD2 (its half was evicted and the port reused): keep it.
  egress(s, udp(POD, PEER, 40000, 53));
  const k = new Uint8Array(CT4.SIZE), v = new Uint8Array(NAT_VAL.SIZE);
  natKey4(k, w.parseIpv4(PEER), NAT_N, 53, 40000, UDP, TUPLE_F_IN);
  natVal4(v, 0, 0, false, w.parseIpv4(POD2), 40000);
  assert.ok(s.map.update(k, 0, v, 0) >= 0, 'IN overwritten');
  assert.ok(s.deleteMapping(w.parseIpv4(POD), w.parseIpv4(PEER), 40000, 53, UDP), 'OUT found');
  assert.equal(s.map.count, 1);
  assert.ok(s.map.peek(k, 0) >= 0, 'the other pod\'s IN entry survives');
});

test('the conntrack GC hook removes the NAT pair of an expiring pod flow, and only that', () => {
  const ct = new Conntrack({ sizes: { tcp4: 64, any4: 64, tcp6: 8, any6: 8 }, seed: 1 });
  const s = new Snat4({ maxEntries: 64, random: lcg(21) });
  const st = new CtState();
  // Pod flows as from-container sees them: conntrack on the pod tuple, then SNAT on the way out.
  const flow = (f: Uint8Array, now: number) => {
    const t = new Uint8Array(CT4.SIZE);
    const fl = ctTuple4Fill(t, f, 14, 34, f.length - 34);
    assert.ok(fl >= 0, 'tuple filled');
    assert.equal(ctLookup4(ct, t, CT_EGRESS, fl, f.length, now, st), CT_NEW);
    assert.equal(ctCreate4(ct, t, CT_EGRESS, fl, f.length, now, st), 0);
    assert.equal(egress(s, f, now).r, 0);
  };
  flow(udp(POD, PEER, 1234, 53), 0); // lifetime 60
  flow(echo(POD, PEER, 7), 0); // lifetime 60
  flow(tcp(POD, PEER, 40000, 443), 100); // SYN lifetime 160
  assert.equal(s.map.count, 6);
  const gc = new CtGc(ct, { onDelete: natCtDeleteHook(s), hrtime: () => 0 });
  assert.equal(natCtDeleteHook(s), s.onCtDelete);
  gc.run(61);
  assert.equal(s.deleted, 2, 'UDP and ICMP pairs deleted; RELATED companions ignored');
  const left = natDump(s, 61);
  assert.equal(left.length, 2);
  assert.ok(left.every((e) => e.proto === 'TCP'), 'only the live TCP pair remains');
  gc.run(161);
  assert.equal(s.map.count, 0);
  assert.equal(s.deleted, 3);
  // The stored CT key of POD:1234 → PEER:53 is {daddr=POD, saddr=PEER, dport=53, sport=1234}.
  egress(s, udp(POD, PEER, 1234, 53));
  const k = new Uint8Array(CT4.SIZE);
  k.set([10, 0, 1, 5], CT4.DADDR);
  k.set([1, 1, 1, 1], CT4.SADDR);
  w.set16(k, CT4.DPORT, 53);
  w.set16(k, CT4.SPORT, 1234);
  k[CT4.NEXTHDR] = UDP;
  for (const [family, flags] of [['ipv4', TUPLE_F_IN], ['ipv4', TUPLE_F_RELATED], ['ipv6', TUPLE_F_OUT]] as const) {
    k[CT4.FLAGS] = flags;
    s.onCtDelete(family, k, 0, 0, ct.maps.any4);
    assert.equal(s.map.count, 2, `${family} flags ${flags}: not a pod flow's entry, ignored`);
  }
  k[CT4.FLAGS] = TUPLE_F_OUT;
  s.onCtDelete('ipv4', k, 0, 0, ct.maps.any4);
  assert.equal(s.map.count, 0, 'the same key as an IPv4 OUT entry removes the pair');
});

test('dump rows and `cilium bpf nat list` lines', () => {
  const s = new Snat4({ maxEntries: 64, random: lcg() });
  egress(s, tcp(POD, PEER, 40000, 443), 100, false);
  egress(s, udp(POD2, PEER, 40000, 53), 120, true);
  const rows = natDump(s, 130);
  assert.deepEqual(JSON.parse(JSON.stringify(rows)), rows, 'rows are plain JSON');
  assert.deepEqual(rows.map(formatNatEntry).sort(), [
    `TCP IN ${PEER}:443 -> ${NAT}:40000 XLATE_DST ${POD}:40000 Created=30sec ago NeedsCT=0`,
    `TCP OUT ${POD}:40000 -> ${PEER}:443 XLATE_SRC ${NAT}:40000 Created=30sec ago NeedsCT=0`,
    `UDP IN ${PEER}:53 -> ${NAT}:40000 XLATE_DST ${POD2}:40000 Created=10sec ago NeedsCT=1`,
    `UDP OUT ${POD2}:40000 -> ${PEER}:53 XLATE_SRC ${NAT}:40000 Created=10sec ago NeedsCT=1`,
  ]);
  assert.deepEqual(natList(s.map, 130), rows.map(formatNatEntry), 'the map alone dumps the same');
  const out = rows.find((e) => e.type === 'OUT' && e.proto === 'UDP')!;
  assert.deepEqual(out, {
    family: 'ipv4', map: 'cilium_snat_v4_external', nexthdr: UDP, proto: 'UDP', type: 'OUT',
    src: POD2, sport: 40000, dst: PEER, dport: 53, xlateAddr: NAT, xlatePort: 40000, created: 120, age: 10, needsCt: true,
  });
});

test('map defaults: Cilium\'s size and name; a bad port range is refused', () => {
  assert.equal(NAT_MAP_SIZE_V4, 524288);
  assert.equal(NAT_VAL.SIZE, 40);
  const s = new Snat4({ maxEntries: 16 });
  assert.equal(s.map.name, 'cilium_snat_v4_external');
  assert.deepEqual([s.minPort, s.maxPort, s.maxRetries], [32768, 65535, 128]);
  assert.throws(() => new Snat4({ maxEntries: 16, minPort: 0 }), RangeError);
  assert.throws(() => new Snat4({ maxEntries: 16, minPort: 50000, maxPort: 40000 }), RangeError);
});

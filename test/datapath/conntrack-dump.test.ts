/**
 * `cilium bpf ct list global` lines and dump objects (src/datapath/lib/conntrack-dump.ts)
 * for OUT, IN, SVC and related entries, IPv4 and IPv6.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pktgen } from '../helpers/pktgen.ts';
import { CT4, CT6, CT_F, ctTuple4Fill, ctTuple6Fill } from '../../src/datapath/lib/conntrack-map.ts';
import {
  CT_EGRESS, CT_INGRESS, CT_NEW, CT_SERVICE, Conntrack, CtState, ctCreate4, ctCreate6, ctLookup4, ctLookup6,
} from '../../src/datapath/lib/conntrack.ts';
import { ctDump, ctFlagNames, ctListGlobal, formatCtEntry } from '../../src/datapath/lib/conntrack-dump.ts';

const mk = () => new Conntrack({ sizes: { tcp4: 16, any4: 16, tcp6: 16, any6: 16 }, seed: 9 });

function send(ct: Conntrack, b: Uint8Array, dir: number, now: number, st = new CtState()): number {
  const v6 = b[12] === 0x86;
  const t = new Uint8Array(v6 ? CT6.SIZE : CT4.SIZE);
  const l4 = v6 ? 54 : 34;
  const f = v6 ? ctTuple6Fill(t, b, 14, b[20]!, l4, b.length - l4) : ctTuple4Fill(t, b, 14, l4, b.length - l4);
  assert.ok(f >= 0, 'packet parses');
  const r = v6 ? ctLookup6(ct, t, dir, f, b.length, now, st) : ctLookup4(ct, t, dir, f, b.length, now, st);
  if (r === CT_NEW) assert.equal(v6 ? ctCreate6(ct, t, dir, f, b.length, now, st) : ctCreate4(ct, t, dir, f, b.length, now, st), 0);
  return r;
}

const TAIL0 = 'RevNAT=0 SourceSecurityID=12345 IfIndex=0 BackendID=0';

test('OUT TCP entry and its related companion, after a SYN', () => {
  const ct = mk();
  const st = new CtState();
  st.srcSecId = 12345;
  send(ct, pktgen().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build(), CT_EGRESS, 100, st);
  assert.deepEqual(ctListGlobal(ct.maps, 100), [
    'TCP OUT 10.0.0.1:40000 -> 10.0.0.2:80 expires=160 (remaining: 60 sec(s)) Packets=1 Bytes=54 ' +
      'RxFlagsSeen=0x00 LastRxReport=0 TxFlagsSeen=0x02 LastTxReport=100 Flags=0x0000 [ ] ' + TAIL0,
    'ICMP OUT 10.0.0.1:0 -> 10.0.0.2:0 related expires=160 (remaining: 60 sec(s)) Packets=1 Bytes=54 ' +
      'RxFlagsSeen=0x00 LastRxReport=0 TxFlagsSeen=0x02 LastTxReport=100 Flags=0x0010 [ SeenNonSyn ] ' + TAIL0,
  ]);
});

test('OUT TCP entry after the handshake: flags seen both ways, SeenNonSyn, counters', () => {
  const ct = mk();
  const st = new CtState();
  st.srcSecId = 12345;
  const c = { src: '10.0.0.1', dst: '10.0.0.2' }, s = { src: '10.0.0.2', dst: '10.0.0.1' };
  send(ct, pktgen().eth().ipv4(c).tcp({ sport: 40000, dport: 80, flags: 'S' }).build(), CT_EGRESS, 100, st);
  send(ct, pktgen().eth().ipv4(s).tcp({ sport: 80, dport: 40000, flags: 'SA' }).build(), CT_INGRESS, 101);
  send(ct, pktgen().eth().ipv4(c).tcp({ sport: 40000, dport: 80, flags: 'A' }).build(), CT_EGRESS, 102);
  const [tcp] = ctDump(ct.maps, 102);
  assert.equal(formatCtEntry(tcp!),
    'TCP OUT 10.0.0.1:40000 -> 10.0.0.2:80 expires=8102 (remaining: 8000 sec(s)) Packets=3 Bytes=162 ' +
    'RxFlagsSeen=0x12 LastRxReport=101 TxFlagsSeen=0x12 LastTxReport=102 Flags=0x0010 [ SeenNonSyn ] ' + TAIL0);
  assert.equal(tcp!.type, 'OUT');
  assert.equal(tcp!.src, '10.0.0.1');
  assert.equal(tcp!.dport, 80);
});

test('IN entry (flow towards the endpoint), closing flags, expired remaining', () => {
  const ct = mk();
  const st = new CtState();
  st.srcSecId = 7;
  st.ifindex = 4;
  st.flags = CT_F.PROXY_REDIRECT;
  const fin = (flags: string) => pktgen().eth().ipv4({ src: '10.0.0.9', dst: '10.0.0.1' }).tcp({ sport: 5555, dport: 8080, flags }).build();
  send(ct, fin('S'), CT_INGRESS, 10, st);
  send(ct, fin('R'), CT_INGRESS, 11);
  const lines = ctListGlobal(ct.maps, 30);
  assert.equal(lines[0],
    'TCP IN 10.0.0.9:5555 -> 10.0.0.1:8080 expires=21 (remaining: -9 sec(s)) Packets=2 Bytes=108 ' +
    'RxFlagsSeen=0x06 LastRxReport=11 TxFlagsSeen=0x00 LastTxReport=0 Flags=0x0053 [ RxClosing TxClosing SeenNonSyn ProxyRedirect ] ' +
    'RevNAT=0 SourceSecurityID=7 IfIndex=4 BackendID=0');
  assert.match(lines[1]!, /^ICMP IN 10\.0\.0\.9:0 -> 10\.0\.0\.1:0 related expires=70 /);
});

test('SVC entry: client -> VIP with backend and rev-NAT; no companion', () => {
  const ct = mk();
  const st = new CtState();
  st.backendId = 7;
  st.revNat = 3;
  send(ct, pktgen().eth().ipv4({ src: '10.0.0.1', dst: '172.16.0.10' }).udp({ sport: 40001, dport: 53 }).build(), CT_SERVICE, 0, st);
  assert.deepEqual(ctListGlobal(ct.maps, 0), [
    'UDP SVC 10.0.0.1:40001 -> 172.16.0.10:53 expires=60 (remaining: 60 sec(s)) Packets=1 Bytes=42 ' +
    'RxFlagsSeen=0x00 LastRxReport=0 TxFlagsSeen=0x00 LastTxReport=0 Flags=0x0000 [ ] ' +
    'RevNAT=3 SourceSecurityID=0 IfIndex=0 BackendID=7',
  ]);
});

test('IPv6 addresses are bracketed; ICMPv6 echo entry and its companion', () => {
  const ct = mk();
  send(ct, pktgen().eth().ipv6({ src: 'f00d::1', dst: 'f00d::2' }).icmp6Echo({ id: 0x42 }).build(), CT_EGRESS, 0);
  const d = ctDump(ct.maps, 0);
  assert.equal(d.length, 2);
  assert.match(formatCtEntry(d[0]!), /^ICMPv6 OUT \[f00d::1\]:66 -> \[f00d::2\]:0 expires=60 \(remaining: 60 sec\(s\)\) Packets=1 Bytes=62 /);
  assert.match(formatCtEntry(d[1]!), /^ICMPv6 OUT \[f00d::1\]:0 -> \[f00d::2\]:0 related expires=60 /);
  assert.equal(d[0]!.family, 'ipv6');
  assert.equal(d[0]!.map, 'cilium_ct_any6_global');
});

test('flag names by bit; bit 9 unnamed; unknown high bits', () => {
  assert.deepEqual(ctFlagNames(0x7ff), [
    'RxClosing', 'TxClosing', 'Nat64', 'LBLoopback', 'SeenNonSyn', 'NodePort', 'ProxyRedirect', 'DSRInternal',
    'FromL7LB', 'FromTunnel',
  ]);
  const ct = mk();
  send(ct, pktgen().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).build(), CT_EGRESS, 0);
  const [e] = ctDump(ct.maps, 0);
  e!.flags = 0x1000 | CT_F.FROM_TUNNEL;
  e!.flagNames = ctFlagNames(e!.flags);
  assert.match(formatCtEntry(e!), / Flags=0x1400 \[ FromTunnel Unknown=0x1000 \] /);
});

/**
 * Test helpers for wire tests: hex literals and a seeded PRNG.
 *
 * API: hex(s) -> Uint8Array (whitespace and '|' ignored), toHex(b),
 * prng(seed) -> () => u32 (mulberry32; deterministic property tests).
 */

/** Bytes from a hex string; spaces, newlines and '|' separators are ignored. */
export function hex(s: string): Uint8Array {
  const t = s.replace(/[\s|]/g, '');
  if (t.length % 2 !== 0 || /[^0-9a-fA-F]/.test(t)) throw new Error(`bad hex literal: ${s}`);
  const b = new Uint8Array(t.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return b;
}

/** Lower-case hex of b, no separators. */
export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Seeded 32-bit PRNG (mulberry32): returns a function yielding u32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Real frames captured with tcpdump on a veth pair (TX checksum offload off), checksums verified by tshark. */
export const CAP = {
  /** ARP request: who has 10.99.0.1? tell 10.99.0.2. */
  arpRequest: '02000000000a 02000000000b 0806 | 0001 0800 06 04 0001 02000000000b 0a630002 000000000000 0a630001',
  /** ARP reply: 10.99.0.1 is at 02:00:00:00:00:0a. */
  arpReply: '02000000000b 02000000000a 0806 | 0001 0800 06 04 0002 02000000000a 0a630001 02000000000b 0a630002',
  /** TCP SYN 10.99.0.1:42444 -> 10.99.0.2:80 with MSS, SACK-perm, timestamps, window scale. */
  tcpSyn4:
    '02000000000b 02000000000a 0800 | 4500 003c 1ac0 4000 4006 0b34 0a630001 0a630002 |' +
    ' a5cc 0050 adf2ff92 00000000 a002 faf0 6995 0000 | 020405b4 0402080a d2a5a866 00000000 0103030a',
  /** TCP RST+ACK 10.99.0.2:80 -> 10.99.0.1:42444, no options. */
  tcpRst4:
    '02000000000a 02000000000b 0800 | 4500 0028 0000 4000 4006 2608 0a630002 0a630001 |' +
    ' 0050 a5cc 00000000 adf2ff93 5014 0000 4765 0000',
  /** UDP 10.99.0.1:40000 -> 10.99.0.2:53, payload "hello". */
  udp4:
    '02000000000b 02000000000a 0800 | 4500 0021 ff8c 4000 4011 2677 0a630001 0a630002 |' +
    ' 9c40 0035 000d 0ac4 | 68656c6c6f',
  /** ICMP echo request id 0x469f seq 1, payload "abcdefgh" (kernel ping socket). */
  icmpEchoReq:
    '02000000000b 02000000000a 0800 | 4500 0024 9cab 4000 4001 8965 0a630001 0a630002 |' +
    ' 0800 1fca 469f 0001 | 6162636465666768',
  /** ICMP echo reply to icmpEchoReq (kernel). */
  icmpEchoRep:
    '02000000000a 02000000000b 0800 | 4500 0024 7ad2 0000 4001 eb3e 0a630002 0a630001 |' +
    ' 0000 27ca 469f 0001 | 6162636465666768',
  /** ICMP port unreachable quoting the udp4 datagram (kernel). */
  icmpPortUnreach:
    '02000000000a 02000000000b 0800 | 45c0 003d 7ac0 0000 4001 ea77 0a630002 0a630001 |' +
    ' 0303 11e4 00000000 | 4500 0021 ff8c 4000 4011 2677 0a630001 0a630002 9c40 0035 000d 0ac4 68656c6c6f',
  /** TCP SYN over IPv6 fd00:99::1:52418 -> fd00:99::2:80, flow label 0x3dab6. */
  tcpSyn6:
    '02000000000b 02000000000a 86dd | 6003dab6 0028 06 40 fd000099000000000000000000000001 fd000099000000000000000000000002 |' +
    ' ccc2 0050 6b9e7929 00000000 a002 fd20 55f1 0000 | 020405a0 0402080a 56fef0ef 00000000 0103030a',
  /** ICMPv6 echo request id 0x46a0 seq 1, payload "abcdefgh". */
  icmp6EchoReq:
    '02000000000b 02000000000a 86dd | 60062560 0010 3a 40 fd000099000000000000000000000001 fd000099000000000000000000000002 |' +
    ' 8000 ac47 46a0 0001 | 6162636465666768',
  /** Neighbor Solicitation for fd00:99::2 with source link-layer address 02:00:00:00:00:0a. */
  ndpNs:
    '3333ff000002 02000000000a 86dd | 60000000 0020 3a ff fd000099000000000000000000000001 ff0200000000000000000001ff000002 |' +
    ' 8700 7c5c 00000000 fd000099000000000000000000000002 | 0101 02000000000a',
  /** Neighbor Advertisement (solicited, override) for fd00:99::2 with target link-layer address. */
  ndpNa:
    '02000000000a 02000000000b 86dd | 60000000 0020 3a ff fd000099000000000000000000000002 fd000099000000000000000000000001 |' +
    ' 8800 1ac6 60000000 fd000099000000000000000000000002 | 0201 02000000000b',
  /** Neighbor Advertisement (solicited) without options, to a link-local address. */
  ndpNaNoOpt:
    '02000000000b 02000000000a 86dd | 60000000 0018 3a ff fd000099000000000000000000000001 fe80000000000000000000fffe00000b |' +
    ' 8800 3eeb 40000000 fd000099000000000000000000000001',
  /** Router Solicitation with source link-layer address. */
  ndpRs:
    '333300000002 02000000000b 86dd | 60000000 0010 3a ff fe80000000000000000000fffe00000b ff020000000000000000000000000002 |' +
    ' 8500 7b18 00000000 | 0101 02000000000b',
  /** MLDv2 report behind a Hop-by-Hop header carrying Router Alert (RFC 2711). */
  mld2Hbh:
    '333300000016 02000000000a 86dd | 60000000 0038 00 01 fe80000000000000000000fffe00000a ff020000000000000000000000000016 |' +
    ' 3a00 0502 0000 0100 | 8f00 6fda 0000 0002 04000000 ff0200000000000000000001ff00000a 04000000 ff0200000000000000000001ff000001',
  /** VXLAN (UDP 8472, VNI 42) carrying a broadcast ARP request. */
  vxlanArp:
    '02000000000b 02000000000a 0800 | 4500 004e ff9b 0000 4011 663b 0a630001 0a630002 | 81a9 2118 003a e508 |' +
    ' 08000000 00002a00 | ffffffffffff 02000000010a 0806 0001 0800 06 04 0001 02000000010a 0a620001 000000000000 0a620002',
  /** TCP SYN captured on the sender with TX offload on: the checksum field holds the partial pseudo-header sum. */
  tcpSyn4Partial:
    '02000000000b 02000000000a 0800 | 4500 003c b6b0 4000 4006 6f43 0a630001 0a630002 |' +
    ' af68 0050 7b8edfcd 00000000 a002 faf0 14f7 0000 | 020405b4 0402080a 3acb93a0 00000000 0103030a',
} as const;

/**
 * CIDR arithmetic for the control path (config, IPAM): parse "a.b.c.d/len"
 * and "x::/len", test membership, name the n-th address. BigInt-based, so
 * IPv4 and IPv6 share one code path; never used per packet.
 *
 * API: parseCidr(s) -> Cidr | undefined, cidrContains(c, ip), ipToBigInt, bigIntToIp
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed prefix. */
export interface Cidr {
  family: 4 | 6;
  prefixLen: number;
  /** Network address as an integer. */
  base: bigint;
  /** Number of addresses in the prefix. */
  size: bigint;
  /** The n-th address of the prefix as text (0 = network address). */
  nth(n: number | bigint): string;
  toString(): string;
}

/** Parse a CIDR; undefined when malformed. Host bits must be zero. */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const ip = m[1]!;
  const family = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : 0;
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefixLen = Number(m[2]);
  if (prefixLen > bits) return undefined;
  const base = ipToBigInt(ip);
  const size = 1n << BigInt(bits - prefixLen);
  if (base % size !== 0n) return undefined;
  return {
    family,
    prefixLen,
    base,
    size,
    nth: (n) => bigIntToIp(base + BigInt(n), family),
    toString: () => `${bigIntToIp(base, family)}/${prefixLen}`,
  };
}

/** Is `ip` (text) inside `c`? */
export function cidrContains(c: Cidr, ip: string): boolean {
  const fam = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : 0;
  if (fam !== c.family) return false;
  const v = ipToBigInt(ip);
  return v >= c.base && v < c.base + c.size;
}

/** Address text to integer (IPv4 or IPv6, incl. "::" and embedded IPv4). */
export function ipToBigInt(ip: string): bigint {
  if (isIPv4(ip)) return ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Integer to canonical address text (RFC 5952 for IPv6). */
export function bigIntToIp(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => Number((v >> s) & 0xffn)).join('.');
  const g: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) g.push(Number((v >> s) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

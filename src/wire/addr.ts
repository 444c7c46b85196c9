/**
 * Address text <-> binary conversions for the control path and tests.
 *
 * API:
 *   parseIpv4(s): u32          formatIpv4(a): string      (dotted quad, RFC 791)
 *   parseIpv6(s): Uint8Array   parseIpv6Into(s, b, o)     formatIpv6(b, o): string (RFC 4291 §2.2 in, RFC 5952 out)
 *   parseMac(s): Uint8Array    parseMacInto(s, b, o)      formatMac(b, o): string
 *   ipv6Equal, ipv6Copy, macEqual, macCopy                 byte helpers, no allocation
 *
 * Parsers throw an Error naming the bad text; they are not for per-packet use.
 */

/** Parse a dotted-quad IPv4 address into a u32 (first octet in the top byte). */
export function parseIpv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new Error(`invalid IPv4 address "${s}": expected 4 dotted octets`);
  let a = 0;
  for (const p of parts) {
    // Leading zeros are rejected: "010" is octal to inet_aton but decimal to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) {
      throw new Error(`invalid IPv4 address "${s}": bad octet "${p}"`);
    }
    a = a * 256 + Number(p);
  }
  return a >>> 0;
}

/** Format a u32 IPv4 address as a dotted quad. */
export function formatIpv4(a: number): string {
  return `${(a >>> 24) & 0xff}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/** Parse an IPv6 address (RFC 4291 §2.2 forms 1-3: "::" and a trailing dotted quad) into 16 new bytes. */
export function parseIpv6(s: string): Uint8Array {
  const b = new Uint8Array(16);
  parseIpv6Into(s, b, 0);
  return b;
}

/** Parse an IPv6 address into b[o, o+16). */
export function parseIpv6Into(s: string, b: Uint8Array, o: number): void {
  const bad = (why: string): Error => new Error(`invalid IPv6 address "${s}": ${why}`);
  const halves = s.split('::');
  if (halves.length > 2) throw bad('more than one "::"');
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const words: number[] = [];
  // An embedded IPv4 address may only be the very last group.
  let v4: number | null = null;
  const last = halves.length === 2 ? (tail.length > 0 ? tail[tail.length - 1] : '') : head[head.length - 1];
  if (last !== undefined && last.includes('.')) {
    try {
      v4 = parseIpv4(last);
    } catch {
      throw bad(`bad embedded IPv4 "${last}"`);
    }
    (tail.length > 0 ? tail : head).pop();
  }
  const toWord = (g: string): number => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad(`bad group "${g}"`);
    return parseInt(g, 16);
  };
  const headW = head.map(toWord);
  const tailW = tail.map(toWord);
  if (v4 !== null) tailW.push(v4 >>> 16, v4 & 0xffff);
  const n = headW.length + tailW.length;
  if (halves.length === 2) {
    if (n > 7) throw bad('"::" must stand for at least one group');
    words.push(...headW, ...new Array<number>(8 - n).fill(0), ...tailW);
  } else {
    if (n !== 8) throw bad(`expected 8 groups, got ${n}`);
    words.push(...headW, ...tailW);
  }
  for (let i = 0; i < 8; i++) {
    b[o + 2 * i] = words[i] >>> 8;
    b[o + 2 * i + 1] = words[i] & 0xff;
  }
}

/**
 * Format 16 bytes at b[o] in RFC 5952 canonical form: lower case, no leading
 * zeros, the longest run (first if tied) of two or more zero groups as "::"
 * (§4.2), and ::ffff:a.b.c.d for IPv4-mapped addresses (§5).
 */
export function formatIpv6(b: Uint8Array, o = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[o + 2 * i] << 8) | b[o + 2 * i + 1]);
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
  }
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(w);
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`;
}

/** Parse "aa:bb:cc:dd:ee:ff" (or '-' separated) into 6 new bytes. */
export function parseMac(s: string): Uint8Array {
  const b = new Uint8Array(6);
  parseMacInto(s, b, 0);
  return b;
}

/** Parse a MAC address into b[o, o+6). */
export function parseMacInto(s: string, b: Uint8Array, o: number): void {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address "${s}": expected 6 two-digit hex octets`);
  }
  for (let i = 0; i < 6; i++) b[o + i] = parseInt(parts[i], 16);
}

/** Format 6 bytes at b[o] as lower-case "aa:bb:cc:dd:ee:ff". */
export function formatMac(b: Uint8Array, o = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (b[o + i] < 16 ? '0' : '') + b[o + i].toString(16);
  return s;
}

/** True when the 16-byte addresses at a[ao] and b[bo] are equal. */
export function ipv6Equal(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 16; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** Copy a 16-byte address from src[so] to dst[d]. */
export function ipv6Copy(src: Uint8Array, so: number, dst: Uint8Array, d: number): void {
  for (let i = 0; i < 16; i++) dst[d + i] = src[so + i];
}

/** True when the 6-byte MACs at a[ao] and b[bo] are equal. */
export function macEqual(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  return a[ao] === b[bo] && a[ao + 1] === b[bo + 1] && a[ao + 2] === b[bo + 2] &&
    a[ao + 3] === b[bo + 3] && a[ao + 4] === b[bo + 4] && a[ao + 5] === b[bo + 5];
}

/** Copy a 6-byte MAC from src[so] to dst[d]. */
export function macCopy(src: Uint8Array, so: number, dst: Uint8Array, d: number): void {
  dst[d] = src[so];
  dst[d + 1] = src[so + 1];
  dst[d + 2] = src[so + 2];
  dst[d + 3] = src[so + 3];
  dst[d + 4] = src[so + 4];
  dst[d + 5] = src[so + 5];
}

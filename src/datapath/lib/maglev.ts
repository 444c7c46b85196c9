/**
 * Maglev lookup-table generation (Cilium flavour) and the packet-path table.
 *
 * API: MAGLEV_PRIMES, DEFAULT_TABLE_SIZE, DEFAULT_HASH_SEED, DEFAULT_WEIGHT,
 * checkTableSize, parseMaglevSeed, backendName, maglevOffsetSkip,
 * generateRing, MaglevTable (build / swap / lookup), selectRandom.
 *
 * Mirrors: Cilium pkg/maglev/maglev.go (Init, getOffsetAndSkip,
 * GetLookupTable) per facts §3 "Maglev table"; the lookup side mirrors
 * lb4_select_backend_id_maglev (bpf/lib/lb.h): `lut[flowHash % M]`, with the
 * flow hash from jhash.ts (maglevFlowHash4/6). Random selection mirrors
 * lb4_select_backend_id_random: slot = prandom % count + 1.
 *
 * Algorithm (Maglev, NSDI 2016, with Cilium's weights):
 *   1. Each backend is known by a name string (backendName()). Names are
 *      sorted (byte-wise, like Go's sort.Strings) so every node builds the
 *      same table whatever order the backends arrive in.
 *   2. h1, h2 = MurmurHash3_x64_128(name, murmurSeed); offset = h1 mod M,
 *      skip = h2 mod (M-1) + 1. Backend b's preference list is
 *      perm_b[j] = (offset + j*skip) mod M — a full permutation because M is
 *      prime and 1 <= skip < M.
 *   3. For n = 0..M-1 the backend n mod N takes a turn (weights may pass the
 *      turn on, see generateRing) and claims its next preferred free slot.
 *
 * Deviations, all deliberate:
 *   - Preference lists are never materialized (Cilium allocates N*M u64s:
 *     65 M entries for 1000 backends at M = 65521). Each backend keeps only
 *     its current position and skip; advancing is `pos += skip; if (pos >= M)
 *     pos -= M`, which yields exactly perm_b[j] for successive j.
 *   - Weight-0 backends are dropped here (Cilium's caller drops maintenance
 *     backends before GetLookupTable; fed one, Cilium would still give it one
 *     slot on its first turn).
 *   - The table holds backend IDs as u32 (the BPF inner map is u32[M]). With
 *     no usable backend every entry is 0 ("no backend"; IDs start at 1).
 */

import { murmur3x64_128Into, u64Mod } from './murmur3-128.ts';

/** Table sizes Cilium accepts (all prime), facts §3. */
export const MAGLEV_PRIMES: readonly number[] = Object.freeze([
  251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
]);
/** Cilium's default table size M. */
export const DEFAULT_TABLE_SIZE = 16381;
/** Cilium's default `--bpf-lb-maglev-hash-seed` (base64 of 12 bytes). */
export const DEFAULT_HASH_SEED = 'JLfvgnHc2kaSUFaI';
/** Weight of a backend that does not say (Cilium's default). */
export const DEFAULT_WEIGHT = 100;

/** A backend as the table builder sees it. */
export interface MaglevBackend {
  /** Backend ID written into the table (u32; 0 is reserved for "none"). */
  id: number;
  /** Stable name hashed for offset/skip and used for ordering; see backendName(). */
  name: string;
  /** 0..65535; default DEFAULT_WEIGHT; 0 = maintenance, excluded. */
  weight?: number;
}

/** The three seeds derived from the 12-byte Maglev hash seed. */
export interface MaglevSeeds {
  /** Bytes 0..3 big-endian: MurmurHash3 seed for offset/skip. */
  murmurSeed: number;
  /** Bytes 4..7 big-endian: HASH_INIT4_SEED for the IPv4 flow hash. */
  hashInit4Seed: number;
  /** Bytes 8..11 big-endian: HASH_INIT6_SEED for the IPv6 flow hash. */
  hashInit6Seed: number;
}

/** Throws unless `m` is one of MAGLEV_PRIMES; returns it. */
export function checkTableSize(m: number): number {
  if (!MAGLEV_PRIMES.includes(m)) {
    throw new RangeError(
      `maglev: table size (bpf-lb-maglev-table-size) must be one of ${MAGLEV_PRIMES.join(', ')}; got ${m}`,
    );
  }
  return m;
}

/** Decode the base64 seed (Go StdEncoding: padded, strict) into the three u32 seeds. */
export function parseMaglevSeed(seed: string = DEFAULT_HASH_SEED): MaglevSeeds {
  const field = 'maglev: hash seed (bpf-lb-maglev-hash-seed)';
  if (seed.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(seed)) {
    throw new RangeError(`${field} is not valid base64: ${JSON.stringify(seed)}`);
  }
  const d = Buffer.from(seed, 'base64');
  if (d.length !== 12) {
    throw new RangeError(`${field} must decode to 12 bytes; got ${d.length}`);
  }
  return { murmurSeed: d.readUInt32BE(0), hashInit4Seed: d.readUInt32BE(4), hashInit6Seed: d.readUInt32BE(8) };
}

/**
 * Cilium's `Backend.String()` name: `[IP:port,State:state]`, e.g.
 * `[10.0.0.1:80,State:active]` (facts §3).
 * @remarks IPv6 addresses are bracketed (`[[f00d::1]:80,State:active]`) as
 * Go's host:port convention does — unconfirmed for Cilium. Newer Cilium
 * versions append the L4 protocol to the address part; callers that need
 * that format can pass any name string to generateRing directly.
 */
export function backendName(ip: string, port: number, state = 'active'): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `[${host}:${port},State:${state}]`;
}

// Reusable scratch (generateRing is synchronous, so sharing is safe).
const enc = new TextEncoder();
const digest = new Uint32Array(4);
let nameBuf = new Uint8Array(4096);
let taken = new Uint8Array(0);

/** Encode `s` as UTF-8 into nameBuf at `at` (growing it); returns the byte length. */
function encodeName(s: string, at: number): number {
  if (nameBuf.length - at < s.length * 3) {
    const grown = new Uint8Array(Math.max(nameBuf.length * 2, at + s.length * 3));
    grown.set(nameBuf.subarray(0, at));
    nameBuf = grown;
  }
  return enc.encodeInto(s, nameBuf.subarray(at)).written;
}

/** [offset, skip] of one backend name for table size m (allocates; for tests and tools). */
export function maglevOffsetSkip(name: string, m: number, murmurSeed: number): [number, number] {
  const bytes = enc.encode(name);
  murmur3x64_128Into(bytes, 0, bytes.length, murmurSeed, digest);
  return [u64Mod(digest[1]!, digest[0]!, m), u64Mod(digest[3]!, digest[2]!, m - 1) + 1];
}

/**
 * Build Cilium's Maglev table of size `m` for `backends` into `into` (or a new
 * Uint32Array(m)) and return it: out[slot] = backend ID.
 * @remarks Allocates only per-backend state (a few typed arrays of length N).
 * Throws on a bad table size, a duplicate name, or a bad id/weight. Order of
 * `backends` does not matter.
 */
export function generateRing(
  backends: readonly MaglevBackend[],
  m: number = DEFAULT_TABLE_SIZE,
  murmurSeed: number = parseMaglevSeed().murmurSeed,
  into?: Uint32Array,
): Uint32Array {
  checkTableSize(m);
  const out = into ?? new Uint32Array(m);
  if (out.length !== m) throw new RangeError(`maglev: out.length must equal table size ${m}; got ${out.length}`);

  // Step 0: validate, drop weight-0 (maintenance) backends, encode names once.
  const total = backends.length;
  const order = new Int32Array(total); // indexes into `backends` of usable ones
  const nameOff = new Int32Array(total);
  const nameLen = new Int32Array(total);
  let n = 0;
  let at = 0;
  for (let k = 0; k < total; k++) {
    const b = backends[k]!;
    const w = b.weight ?? DEFAULT_WEIGHT;
    if (!Number.isInteger(w) || w < 0 || w > 0xffff) {
      throw new RangeError(`maglev: backends[${k}].weight must be an integer in 0..65535; got ${w}`);
    }
    if (!Number.isInteger(b.id) || b.id < 0 || b.id > 0xffffffff) {
      throw new RangeError(`maglev: backends[${k}].id must be a u32; got ${b.id}`);
    }
    if (w === 0) continue;
    const len = encodeName(b.name, at);
    nameOff[k] = at;
    nameLen[k] = len;
    at += len;
    order[n++] = k;
  }
  if (n === 0) return out.fill(0);

  // Step 1: sort by name, byte-wise (Go sort.Strings order); reject duplicates.
  const names = nameBuf;
  const sorted = order.subarray(0, n).sort((x, y) => {
    const ox = nameOff[x]!, lx = nameLen[x]!, oy = nameOff[y]!, ly = nameLen[y]!;
    const l = lx < ly ? lx : ly;
    for (let i = 0; i < l; i++) {
      const d = names[ox + i]! - names[oy + i]!;
      if (d !== 0) return d;
    }
    if (lx === ly) throw new RangeError(`maglev: duplicate backend name ${JSON.stringify(backends[x]!.name)}`);
    return lx - ly;
  });

  // Step 2: offset/skip per backend; pos[i] walks perm_i without storing it.
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  const id = new Uint32Array(n);
  const weight = new Float64Array(n);
  let sumW = 0;
  for (let i = 0; i < n; i++) {
    const k = sorted[i]!;
    murmur3x64_128Into(names, nameOff[k]!, nameLen[k]!, murmurSeed, digest);
    pos[i] = u64Mod(digest[1]!, digest[0]!, m); // offset = h1 % M
    skip[i] = u64Mod(digest[3]!, digest[2]!, m - 1) + 1; // skip = h2 % (M-1) + 1
    id[i] = backends[k]!.id;
    weight[i] = backends[k]!.weight ?? DEFAULT_WEIGHT;
    sumW += weight[i]!;
  }

  // Step 3: weights take part only if Σw / N > 1 (integer division), e.g. not
  // when every weight is 1. counter_i starts at w_i / N. Cilium keeps it as a
  // float64 and compares its uint64 truncation; since it only ever grows by
  // the integer Σw, floor(w_i / N) + k·Σw is the same number (the fraction is
  // ≥ 1/N, far above float rounding at these magnitudes ≤ M·65535).
  const useWeights = Math.floor(sumW / n) > 1;
  const counter = new Float64Array(n);
  if (useWeights) for (let i = 0; i < n; i++) counter[i] = Math.floor(weight[i]! / n);

  if (taken.length < m) taken = new Uint8Array(131071);
  taken.fill(0, 0, m);
  for (let t = 0; t < m; t++) {
    // Turn t goes to backend t mod N ...
    let i = t % n;
    if (useWeights) {
      // ... which passes it on while it is ahead of its share:
      // skip i while (t+1)·w_i < counter_i. Terminates: if every backend were
      // ahead, summing over i gives (t+1)Σw < Σw/N + tΣw, i.e. Σw < Σw/N.
      while ((t + 1) * weight[i]! < counter[i]!) i = i + 1 === n ? 0 : i + 1;
      counter[i] = counter[i]! + sumW; // the chosen backend pays Σw
    }
    // The chosen backend claims its next preferred slot that is still free.
    let c = pos[i]!;
    const s = skip[i]!;
    while (taken[c] !== 0) {
      c += s;
      if (c >= m) c -= m;
    }
    taken[c] = 1;
    out[c] = id[i]!;
    c += s;
    if (c >= m) c -= m;
    pos[i] = c; // next preference for this backend
  }
  return out;
}

/**
 * A service's Maglev table, double-buffered: build() fills the back buffer
 * off the packet path, swap() publishes it by one reference assignment.
 * @remarks The packet path must read `current` once per lookup (lookup()
 * does) and not keep it across a build(): after swap() the old front buffer
 * becomes the back buffer and the next build() overwrites it. Single-threaded
 * JS cannot observe a half-built table; for sharing with other workers, give
 * each generation a fresh buffer instead.
 */
export class MaglevTable {
  /** Table size M (one of MAGLEV_PRIMES). */
  readonly m: number;
  /** The published table; read once per lookup. */
  current: Uint32Array;
  private back: Uint32Array;

  /** Both buffers start all-zero (every lookup yields 0 = no backend). */
  constructor(m: number = DEFAULT_TABLE_SIZE) {
    this.m = checkTableSize(m);
    this.current = new Uint32Array(m);
    this.back = new Uint32Array(m);
  }

  /** Fill the back buffer for `backends` (not visible until swap()); returns it. */
  build(backends: readonly MaglevBackend[], murmurSeed: number): Uint32Array {
    return generateRing(backends, this.m, murmurSeed, this.back);
  }

  /** Publish the back buffer; the previous table becomes the new back buffer. */
  swap(): void {
    const t = this.current;
    this.current = this.back;
    this.back = t;
  }

  /** Backend ID for a flow hash (u32): `current[hash % M]`. */
  lookup(hash: number): number {
    const t = this.current;
    return t[(hash >>> 0) % this.m]!;
  }
}

/**
 * Cilium's "random" algorithm: service slot = rand % count + 1 (slot 0 is the
 * frontend). Returns 0 when count is 0 (no backend). `rand` is a u32.
 */
export function selectRandom(count: number, rand: number): number {
  return count === 0 ? 0 : ((rand >>> 0) % count) + 1;
}

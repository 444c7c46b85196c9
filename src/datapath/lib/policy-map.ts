/**
 * cilium_policy_<EP ID>: one endpoint's policy as an LPM map of
 * (peer identity, direction, protocol, port prefix) -> allow/deny, with
 * per-entry packet and byte counters (bpf/lib/policy.h, bpf/lib/common.h
 * struct policy_key / policy_entry, pkg/maps/policymap/policymap.go; facts §7).
 * The packet-path check over it is policy.ts.
 *
 * API:
 *   new PolicyMap(epId, { maxEntries?, shared?, seed? })  16384 entries (256..65536)
 *   pm.allow(identity, egress, proto, port?, endPort?)   raw writes, one entry per
 *   pm.deny(identity, egress, proto, port?, endPort?)      port prefix -> entries written
 *   pm.delete(identity, egress, proto, port?, endPort?)  -> entries removed
 *   pm.applyMapState(entries)                            the whole policy, deny-merged
 *   pm.clear(), pm.count, pm.dump() -> PolicyRow[]       `bpf policy get`
 *   computeMapState(entries) -> PolicyMapKey[]           the merge alone (pure)
 *   portRangePrefixes(port, endPort) -> PortPrefix[]     minimal prefix cover of a range
 *   policyMapName(epId), POLICY_KEY, POLICY_VAL, POLICY_F_*, POLICY_*_PREFIX
 *
 *   key (12 B)                                      value (24 B)
 *   +0  prefixlen u32 (LE)                           +0  proxy_port be16
 *   +4  sec_label u32 (LE: host order, as Cilium)    +2  flags u8: bit 0 deny,
 *   +8  egress u8 (0 ingress, 1 egress; Cilium:            bit 1 wildcard_protocol,
 *       a 1-bit field and 7 pad bits)                      bit 2 wildcard_dport
 *   +9  protocol u8 (IPPROTO_*; 0 = any)             +3  auth_type u8
 *   +10 dport be16 (0 = any)                         +4  prefix length u8 (Cilium: pad)
 *                                                     +5  pad u8, +6 pad u16
 *                                                     +8  packets u64 (LE)
 *                                                     +16 bytes u64 (LE)
 *
 * Prefix lengths: identity and direction are always matched (40 static
 * bits); 48 adds the protocol; 48 + n matches the top n bits of the port,
 * so 64 is one port and 49..63 are aligned port blocks. A port range is
 * written as the fewest aligned blocks that cover it exactly
 * (portRangePrefixes). Protocol 0 means any protocol and carries no port;
 * port 0 means any port of that protocol. Identity 0 is the wildcard peer:
 * its entries are found by the packet path's second lookup (policy.ts).
 *
 * The value's first pad byte carries the entry's prefix length (Tapestry):
 * the packet path compares the two lookups' matches by it without reading
 * the key back out of the map.
 *
 * Deny beats allow (applyMapState / computeMapState). The packet path picks
 * the single most specific entry, so a deny only wins where it is the most
 * specific match. The merge makes the written map agree with the rule
 * "a packet any deny covers is denied": for every allow A and deny D whose
 * key sets overlap, the overlap A ∩ D (the non-wildcard identity of the two,
 * the longer protocol/port prefix) is written as a deny. When D covers A,
 * the overlap is A itself, so A is replaced by a deny; when A covers D, the
 * overlap is D, already there; otherwise (deny X any port vs allow ANY
 * port 80) a new deny X:80 appears. Each overlap is at least as specific
 * as A in both identity and prefix, and more specific in one unless it is
 * A, so it outranks A for every packet both cover; and it lies inside D, so
 * it never denies a packet no deny names. Cilium's agent does the
 * equivalent merge in pkg/policy/mapstate.go.
 */
import { LpmTrieMap } from '../../maps/lpm-trie.ts';

/** Default entries per endpoint map (Cilium's policy map size). */
export const POLICY_MAP_SIZE = 16384;
/** Smallest and largest configurable size. */
export const POLICY_MAP_SIZE_MIN = 256;
export const POLICY_MAP_SIZE_MAX = 65536;

/** Key field offsets. */
export const POLICY_KEY = { PREFIXLEN: 0, SEC_LABEL: 4, EGRESS: 8, PROTOCOL: 9, DPORT: 10, SIZE: 12 } as const;
/** Value field offsets. PREFIX_LEN is Tapestry's use of Cilium's first pad byte. */
export const POLICY_VAL = { PROXY_PORT: 0, FLAGS: 2, AUTH_TYPE: 3, PREFIX_LEN: 4, PACKETS: 8, BYTES: 16, SIZE: 24 } as const;

/** Value flag: the entry denies. */
export const POLICY_F_DENY = 1;
/** Value flag: the entry matches any protocol (prefix 40). */
export const POLICY_F_WILDCARD_PROTOCOL = 2;
/** Value flag: the entry matches any port (prefix 40 or 48). */
export const POLICY_F_WILDCARD_DPORT = 4;

/** Identity and direction bits, matched by every entry. */
export const POLICY_STATIC_PREFIX = 40;
/** ... plus the protocol. */
export const POLICY_PROTO_PREFIX = 48;
/** ... plus the whole port: the packet path's lookup length. */
export const POLICY_FULL_PREFIX = 64;
/** The wildcard peer identity. */
export const POLICY_ANY_IDENTITY = 0;

/** `cilium_policy_<5-digit endpoint ID>`. */
export function policyMapName(epId: number): string {
  return `cilium_policy_${String(epId).padStart(5, '0')}`;
}

/** One aligned port block: the `bits` top bits of `port` are matched (0 = any port). */
export interface PortPrefix {
  port: number;
  bits: number;
}

/**
 * The fewest aligned blocks covering exactly [port, endPort]: from the low
 * end, each block is the largest power of two that starts aligned there and
 * does not pass endPort (at most 30 blocks; [1, 65535] takes 16).
 */
export function portRangePrefixes(port: number, endPort: number): PortPrefix[] {
  const out: PortPrefix[] = [];
  let p = port;
  while (p <= endPort) {
    let size = p === 0 ? 0x10000 : p & -p;
    while (p + size - 1 > endPort) size >>>= 1;
    out.push({ port: p, bits: 16 - (31 - Math.clz32(size)) });
    p += size;
  }
  return out;
}

/** A rule as the agent wants it: one peer, direction, protocol and port range. */
export interface PolicyMapEntry {
  /** Peer security identity (0 = any peer). */
  identity: number;
  egress: boolean;
  /** IPPROTO_* (0 = any protocol; then port must be 0). */
  proto: number;
  /** First port, or the ICMP type for ICMP rules (0 = any port). */
  port?: number;
  /** Last port of a range (absent or 0 = just `port`). */
  endPort?: number;
  deny: boolean;
}

/** One map key: a single prefix, as written. `port` is masked to the prefix. */
export interface PolicyMapKey {
  identity: number;
  egress: boolean;
  proto: number;
  port: number;
  /** 40 (any protocol), 48 (any port), 49..64 (port prefix). */
  prefixLen: number;
  deny: boolean;
}

/** One row of `bpf policy get`. */
export interface PolicyRow {
  identity: number;
  direction: 'ingress' | 'egress';
  /** IPPROTO_* (0 = any). */
  proto: number;
  /** "ANY", "80", or "1024-2047" (one aligned block per row). */
  portRange: string;
  deny: boolean;
  packets: number;
  bytes: number;
  prefixLen: number;
  proxyPort: number;
  authType: number;
}

/** What applyMapState changed. */
export interface MapStateResult {
  added: number;
  changed: number;
  removed: number;
  entries: number;
}

/** Constructor options. */
export interface PolicyMapOptions {
  /** Capacity, POLICY_MAP_SIZE_MIN..POLICY_MAP_SIZE_MAX (default POLICY_MAP_SIZE). */
  maxEntries?: number;
  /** Storage on SharedArrayBuffer (for a reader thread's attach). */
  shared?: boolean;
  /** Hash seed (tests). */
  seed?: number;
}

/** (proto, port, endPort) -> the prefixes to write; throws on nonsense (control path). */
function keyPrefixes(proto: number, port = 0, endPort = 0): PortPrefix[] {
  const u = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;
  if (!u(proto, 255) || !u(port, 0xffff) || !u(endPort, 0xffff)) {
    throw new RangeError(`policy: bad protocol/port ${proto}/${port}-${endPort}`);
  }
  if (proto === 0) {
    if (port !== 0 || endPort !== 0) throw new RangeError('policy: a port needs a protocol (protocol 0 = any, no port)');
    // Negative "port bits": the prefix stops before the protocol byte (40).
    return [{ port: 0, bits: POLICY_STATIC_PREFIX - POLICY_PROTO_PREFIX }];
  }
  if (endPort === 0) return port === 0 ? [{ port: 0, bits: 0 }] : [{ port, bits: 16 }];
  if (endPort < port) throw new RangeError(`policy: port range ${port}-${endPort} ends before it starts`);
  return portRangePrefixes(port, endPort);
}

function checkIdentity(identity: number): void {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffffff) {
    throw new RangeError(`policy: identity ${identity} is not a u32`);
  }
}

/** The map keys of one entry. */
function expand(e: PolicyMapEntry): PolicyMapKey[] {
  checkIdentity(e.identity);
  return keyPrefixes(e.proto, e.port, e.endPort).map(({ port, bits }) => ({
    identity: e.identity,
    egress: e.egress,
    proto: e.proto,
    port,
    prefixLen: POLICY_PROTO_PREFIX + bits,
    deny: e.deny,
  }));
}

/** A string naming a key (not its verdict). */
function keyId(k: PolicyMapKey): string {
  return `${k.egress ? 1 : 0}/${k.identity}/${k.proto}/${k.port}/${k.prefixLen}`;
}

/**
 * True when the protocol/port parts of a and b nest (the shorter prefix
 * covers the longer): with compatible identities, their key sets overlap.
 */
function protoPortNest(a: PolicyMapKey, b: PolicyMapKey): boolean {
  const s = a.prefixLen <= b.prefixLen ? a : b, l = s === a ? b : a;
  if (s.prefixLen === POLICY_STATIC_PREFIX) return true;
  if (s.proto !== l.proto) return false;
  const bits = s.prefixLen - POLICY_PROTO_PREFIX;
  return bits === 0 || (s.port >>> (16 - bits)) === (l.port >>> (16 - bits));
}

/**
 * Merge desired entries into the keys to write, denies overriding the
 * allows they overlap (the rule is in the file header). Pure; the result
 * is sorted (direction, identity, protocol, port, prefix length).
 */
export function computeMapState(entries: readonly PolicyMapEntry[]): PolicyMapKey[] {
  const keys = new Map<string, PolicyMapKey>();
  for (const e of entries) {
    for (const k of expand(e)) {
      const id = keyId(k), had = keys.get(id);
      if (had === undefined) keys.set(id, k);
      else had.deny ||= k.deny;
    }
  }
  const allows: PolicyMapKey[] = [];
  // Denies by direction and identity, and by direction alone (for ANY allows).
  const deniesBy = new Map<string, PolicyMapKey[]>();
  const deniesDir: [PolicyMapKey[], PolicyMapKey[]] = [[], []];
  for (const k of keys.values()) {
    if (!k.deny) {
      allows.push(k);
      continue;
    }
    const g = `${k.egress ? 1 : 0}/${k.identity}`;
    const list = deniesBy.get(g);
    if (list === undefined) deniesBy.set(g, [k]);
    else list.push(k);
    deniesDir[k.egress ? 1 : 0].push(k);
  }
  const none: PolicyMapKey[] = [];
  for (const a of allows) {
    const dir = a.egress ? 1 : 0;
    const candidates = a.identity === POLICY_ANY_IDENTITY
      ? deniesDir[dir]
      : [...(deniesBy.get(`${dir}/${a.identity}`) ?? none), ...(deniesBy.get(`${dir}/0`) ?? none)];
    for (const d of candidates) {
      if (!protoPortNest(a, d)) continue;
      const l = a.prefixLen >= d.prefixLen ? a : d;
      const overlap: PolicyMapKey = {
        identity: a.identity !== POLICY_ANY_IDENTITY ? a.identity : d.identity,
        egress: a.egress,
        proto: l.proto,
        port: l.port,
        prefixLen: l.prefixLen,
        deny: true,
      };
      const id = keyId(overlap), had = keys.get(id);
      if (had === undefined) keys.set(id, overlap);
      else had.deny = true;
    }
  }
  return [...keys.values()].sort((x, y) =>
    Number(x.egress) - Number(y.egress) || x.identity - y.identity || x.proto - y.proto ||
    x.port - y.port || x.prefixLen - y.prefixLen);
}

/** An endpoint's policy map and its control-path writers. */
export class PolicyMap {
  /** The LPM map. */
  readonly map: LpmTrieMap;
  /** Endpoint ID the map belongs to. */
  readonly endpointId: number;
  /**
   * Packet-path key scratch for policy.ts (prefixlen preset to the full 64
   * bits; the lookup fills the rest). Not for control-path use.
   */
  readonly lookupKey = new Uint8Array(POLICY_KEY.SIZE);
  private readonly k = new Uint8Array(POLICY_KEY.SIZE);
  private readonly kv = new DataView(this.k.buffer);
  private readonly v = new Uint8Array(POLICY_VAL.SIZE);

  constructor(endpointId: number, opts: PolicyMapOptions = {}) {
    const maxEntries = opts.maxEntries ?? POLICY_MAP_SIZE;
    if (!Number.isInteger(endpointId) || endpointId < 0 || endpointId > 0xffff) {
      throw new RangeError(`policy map: endpoint ID ${endpointId} is not a u16`);
    }
    if (!Number.isInteger(maxEntries) || maxEntries < POLICY_MAP_SIZE_MIN || maxEntries > POLICY_MAP_SIZE_MAX) {
      throw new RangeError(`policy map: ${maxEntries} entries, want ${POLICY_MAP_SIZE_MIN}..${POLICY_MAP_SIZE_MAX}`);
    }
    this.endpointId = endpointId;
    this.map = new LpmTrieMap({
      name: policyMapName(endpointId), keySize: POLICY_KEY.SIZE, valueSize: POLICY_VAL.SIZE, maxEntries,
      shared: opts.shared === true, ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    });
    this.lookupKey[POLICY_KEY.PREFIXLEN] = POLICY_FULL_PREFIX;
  }

  /** Map name, `cilium_policy_<5-digit EP ID>`. */
  get name(): string {
    return this.map.name;
  }

  /** Entries present. */
  get count(): number {
    return this.map.count;
  }

  /**
   * Allow `identity` (0 = any) in one direction for `proto` (0 = any) and
   * port range [port, endPort] (port 0 = any port). Writes the entries as
   * given, overwriting a deny on the same key; merging with denies is
   * applyMapState's job. Returns the number of entries written.
   */
  allow(identity: number, egress: boolean, proto: number, port = 0, endPort = 0): number {
    return this.writeAll({ identity, egress, proto, port, endPort, deny: false });
  }

  /** Deny, as allow() (same arguments). Returns the number of entries written. */
  deny(identity: number, egress: boolean, proto: number, port = 0, endPort = 0): number {
    return this.writeAll({ identity, egress, proto, port, endPort, deny: true });
  }

  /** Remove the entries allow()/deny() with the same arguments wrote; returns how many were there. */
  delete(identity: number, egress: boolean, proto: number, port = 0, endPort = 0): number {
    let n = 0;
    for (const k of expand({ identity, egress, proto, port, endPort, deny: false })) {
      if (this.map.delete(this.fillKey(k), 0) === 0) n++;
    }
    return n;
  }

  /** Remove every entry. */
  clear(): void {
    this.map.clear();
  }

  /**
   * Make the map hold exactly the deny-merged state of `entries`
   * (computeMapState). Entries whose key and verdict are unchanged keep
   * their counters. Order: denies, then allows, then stale deletions, so a
   * reader never sees an allow before the deny that overrides it, nor a
   * gap while a peer moves between entries; if the map lacks room for
   * that, stale entries go first. Throws, leaving the map as it was, when
   * the state needs more than maxEntries.
   */
  applyMapState(entries: readonly PolicyMapEntry[]): MapStateResult {
    const want = computeMapState(entries);
    if (want.length > this.map.maxEntries) {
      throw new RangeError(`${this.name}: policy needs ${want.length} entries, map holds ${this.map.maxEntries}`);
    }
    const wantIds = new Set(want.map(keyId));
    const stale: PolicyMapKey[] = [];
    this.map.iterate((key, off, slot) => {
      const k = this.decodeKey(key, off, slot);
      if (!wantIds.has(keyId(k))) stale.push(k);
    });
    const kept = this.count - stale.length;
    const res: MapStateResult = { added: 0, changed: 0, removed: 0, entries: 0 };
    const removeStale = () => {
      for (const k of stale) if (this.map.delete(this.fillKey(k), 0) === 0) res.removed++;
      stale.length = 0;
    };
    if (this.count + (want.length - kept) > this.map.maxEntries) removeStale();
    for (const deny of [true, false]) {
      for (const k of want) {
        if (k.deny !== deny) continue;
        const r = this.write(k);
        if (r === 1) res.added++;
        else if (r === 2) res.changed++;
      }
    }
    removeStale();
    res.entries = this.count;
    return res;
  }

  /** Every entry, for the CLI: ingress first, then by identity, protocol and port. */
  dump(): PolicyRow[] {
    const rows: PolicyRow[] = [];
    const view = this.map.view, vals = this.map.values;
    this.map.iterate((key, off, slot) => {
      const k = this.decodeKey(key, off, slot);
      const o = slot * POLICY_VAL.SIZE;
      const bits = k.prefixLen - POLICY_PROTO_PREFIX;
      const last = bits <= 0 ? 0 : k.port + (1 << (16 - bits)) - 1;
      rows.push({
        identity: k.identity,
        direction: k.egress ? 'egress' : 'ingress',
        proto: k.proto,
        portRange: bits <= 0 ? 'ANY' : bits === 16 ? String(k.port) : `${k.port}-${last}`,
        deny: k.deny,
        packets: u64(view, o + POLICY_VAL.PACKETS),
        bytes: u64(view, o + POLICY_VAL.BYTES),
        prefixLen: k.prefixLen,
        proxyPort: (vals[o + POLICY_VAL.PROXY_PORT]! << 8) | vals[o + POLICY_VAL.PROXY_PORT + 1]!,
        authType: vals[o + POLICY_VAL.AUTH_TYPE]!,
      });
    });
    const portOf = (r: PolicyRow) => (r.portRange === 'ANY' ? -1 : parseInt(r.portRange, 10));
    return rows.sort((a, b) =>
      Number(a.direction === 'egress') - Number(b.direction === 'egress') || a.identity - b.identity ||
      a.proto - b.proto || portOf(a) - portOf(b) || a.prefixLen - b.prefixLen);
  }

  private writeAll(e: PolicyMapEntry): number {
    const keys = expand(e);
    for (const k of keys) this.write(k);
    return keys.length;
  }

  /**
   * Write one key: 0 unchanged, 1 added, 2 verdict changed (counters reset,
   * as a fresh entry). Throws when the map is full.
   */
  private write(k: PolicyMapKey): number {
    const key = this.fillKey(k);
    const flags = (k.deny ? POLICY_F_DENY : 0) |
      (k.prefixLen === POLICY_STATIC_PREFIX ? POLICY_F_WILDCARD_PROTOCOL | POLICY_F_WILDCARD_DPORT : 0) |
      (k.prefixLen === POLICY_PROTO_PREFIX ? POLICY_F_WILDCARD_DPORT : 0);
    const old = this.map.lookupExact(key, 0);
    if (old >= 0 && this.map.values[old * POLICY_VAL.SIZE + POLICY_VAL.FLAGS] === flags) return 0;
    const v = this.v;
    v.fill(0);
    v[POLICY_VAL.FLAGS] = flags;
    v[POLICY_VAL.PREFIX_LEN] = k.prefixLen;
    const r = this.map.update(key, 0, v, 0);
    if (r < 0) throw new Error(`${this.name}: update failed (${r})`);
    return old >= 0 ? 2 : 1;
  }

  /** The control-path scratch key for k. */
  private fillKey(k: PolicyMapKey): Uint8Array {
    const key = this.k, kv = this.kv;
    kv.setUint32(POLICY_KEY.PREFIXLEN, k.prefixLen, true);
    kv.setUint32(POLICY_KEY.SEC_LABEL, k.identity, true);
    key[POLICY_KEY.EGRESS] = k.egress ? 1 : 0;
    key[POLICY_KEY.PROTOCOL] = k.proto;
    kv.setUint16(POLICY_KEY.DPORT, k.port, false);
    return key;
  }

  private decodeKey(key: Uint8Array, off: number, slot: number): PolicyMapKey {
    const kv = new DataView(key.buffer, key.byteOffset + off, POLICY_KEY.SIZE);
    return {
      identity: kv.getUint32(POLICY_KEY.SEC_LABEL, true),
      egress: key[off + POLICY_KEY.EGRESS] === 1,
      proto: key[off + POLICY_KEY.PROTOCOL]!,
      port: kv.getUint16(POLICY_KEY.DPORT, false),
      prefixLen: kv.getUint32(POLICY_KEY.PREFIXLEN, true),
      deny: (this.map.values[slot * POLICY_VAL.SIZE + POLICY_VAL.FLAGS]! & POLICY_F_DENY) !== 0,
    };
  }
}

/** A u64 LE counter as a number (exact to 2^53). */
function u64(view: DataView, o: number): number {
  return view.getUint32(o + 4, true) * 0x100000000 + view.getUint32(o, true);
}

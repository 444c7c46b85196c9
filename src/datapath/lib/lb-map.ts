/**
 * Load-balancer maps (Cilium bpf/lib/lb.h, pkg/maps/lbmap; facts §3):
 * services by frontend, backends by ID, reverse NAT by rev_nat_index.
 *
 * API:
 *   createLbMaps(sizes?) -> { services, backends, revNat, affinity, sourceRange }
 *   SVC_KEY / SVC_VAL / BE_VAL / RNAT_VAL     byte offsets
 *   svcKey4(key, vip, dportBe, slot, proto, scope)   fill a scratch key (packet path)
 *   backendKey(key, id) / revNatKey(key, index)      fill the backend / rev-NAT scratch keys
 *   srcRangeKey4(key, revNat, addr, len)              fill a cilium_lb4_source_range key
 *   SVC_F_* / SVC_F2_* / BE_STATE_*            flag and state values
 *
 *   cilium_lb4_services_v2 (hash)
 *   key (12 B)                              value (12 B)
 *   +0  address be32 (frontend IP)          +0  u32: backend_id (slot > 0) |
 *   +4  dport be16                               affinity timeout s (slot 0)
 *   +6  backend_slot u16 (0 = frontend)     +4  count u16 (backends in slots 1..count)
 *   +8  proto u8 (0: any, as Cilium fills)  +6  rev_nat_index u16
 *   +9  scope u8 (0 external, 1 internal)   +8  flags u8 (SVC_F_*)
 *   +10 pad u16                             +9  flags2 u8 (SVC_F2_*)
 *                                           +10 qcount u16 (quarantined backends)
 *
 *   cilium_lb4_backends_v3 (hash)            cilium_lb4_reverse_nat (hash)
 *   key u32 backend ID                       key u16 rev_nat_index
 *   value (12 B): +0 address be32,           value (8 B): +0 address be32,
 *     +4 port be16, +6 proto u8,               +4 port be16, +6 pad u16
 *     +7 flags u8 (state), +8 cluster_id u16,
 *     +10 zone u8, +11 pad
 *
 * Multi-byte fields the packet path compares with packet bytes are stored in
 * network order; the rest little-endian (host order, as the BPF maps hold
 * them on x86).
 */
import { HashMap } from '../../maps/hash.ts';
import { LruHashMap } from '../../maps/lru-hash.ts';
import { LpmTrieMap } from '../../maps/lpm-trie.ts';

/** Default sizes (Cilium: 65536 for services, backends and rev-NAT). */
export const LB_MAP_SIZE = 65536;

/** Service key offsets. */
export const SVC_KEY = { ADDRESS: 0, DPORT: 4, SLOT: 6, PROTO: 8, SCOPE: 9, SIZE: 12 } as const;
/** Service value offsets. */
export const SVC_VAL = { BACKEND_ID: 0, AFFINITY_TIMEOUT: 0, COUNT: 4, REV_NAT: 6, FLAGS: 8, FLAGS2: 9, QCOUNT: 10, SIZE: 12 } as const;
/** Backend value offsets. */
export const BE_VAL = { ADDRESS: 0, PORT: 4, PROTO: 6, FLAGS: 7, CLUSTER_ID: 8, ZONE: 10, SIZE: 12 } as const;
/** Reverse-NAT value offsets. */
export const RNAT_VAL = { ADDRESS: 0, PORT: 4, SIZE: 8 } as const;

/** Service flags (value.flags). */
export const SVC_F = {
  EXTERNAL_IP: 0x1,
  NODEPORT: 0x2,
  EXT_LOCAL_SCOPE: 0x4,
  HOSTPORT: 0x8,
  AFFINITY: 0x10,
  LOADBALANCER: 0x20,
  ROUTABLE: 0x40,
  SOURCE_RANGE: 0x80,
} as const;
/** Service flags2 (value.flags2). */
export const SVC_F2 = {
  LOCALREDIRECT: 0x1,
  NAT_46X64: 0x2,
  L7LOADBALANCER: 0x4,
  LOOPBACK: 0x8,
  INT_LOCAL_SCOPE: 0x10,
  TWO_SCOPES: 0x20,
  QUARANTINED: 0x40,
} as const;
/** Backend states (backend value.flags). */
export const BE_STATE = { ACTIVE: 0, TERMINATING: 1, QUARANTINED: 2, MAINTENANCE: 3 } as const;
/** Lookup scopes. */
export const LB_SCOPE = { EXT: 0, INT: 1 } as const;

/**
 * cilium_lb4_affinity (LRU): key (8 B) +0 client address be32, +4
 * rev_nat_index u16, +6 pad; value (8 B) +0 last_used u32 (s), +4
 * backend_id u32. Deviation: Cilium's key also carries a netns-cookie
 * variant for socket-LB; Tapestry has no socket LB.
 */
export const AFF_KEY = { CLIENT: 0, REV_NAT: 4, SIZE: 8 } as const;
/** Affinity value offsets. */
export const AFF_VAL = { LAST_USED: 0, BACKEND_ID: 4, SIZE: 8 } as const;
/** CILIUM_LB_AFFINITY_MAP_MAX_ENTRIES. */
export const LB_AFFINITY_MAP_SIZE = 65536;

/**
 * cilium_lb4_source_range (LPM trie): the client prefixes allowed to reach
 * a LoadBalancer service with loadBalancerSourceRanges (SVC_F.SOURCE_RANGE).
 * Key (12 B): +0 prefixlen u32 (LE; 32 static bits + address bits),
 * +4 rev_nat_id u16 (LE), +6 pad u16, +8 address be32. Value: 1 byte.
 */
export const SRC_RANGE_KEY = { PREFIXLEN: 0, REV_NAT: 4, ADDR: 8, SIZE: 12 } as const;
/** Static key bits ahead of the address (rev_nat_id + pad). */
export const SRC_RANGE_STATIC_PREFIX = 32;
/** LB4_SRC_RANGE_MAP_SIZE. */
export const LB_SRC_RANGE_MAP_SIZE = 16384;

/** The LB maps. */
export interface LbMaps {
  services: HashMap;
  backends: HashMap;
  revNat: HashMap;
  affinity: LruHashMap;
  sourceRange: LpmTrieMap;
}

/** Create the IPv4 LB maps. */
export function createLbMaps(sizes: { services?: number; backends?: number; revNat?: number } = {}): LbMaps {
  return {
    services: new HashMap({ name: 'cilium_lb4_services_v2', keySize: SVC_KEY.SIZE, valueSize: SVC_VAL.SIZE, maxEntries: sizes.services ?? LB_MAP_SIZE }),
    backends: new HashMap({ name: 'cilium_lb4_backends_v3', keySize: 4, valueSize: BE_VAL.SIZE, maxEntries: sizes.backends ?? LB_MAP_SIZE }),
    revNat: new HashMap({ name: 'cilium_lb4_reverse_nat', keySize: 2, valueSize: RNAT_VAL.SIZE, maxEntries: sizes.revNat ?? LB_MAP_SIZE }),
    affinity: new LruHashMap({ name: 'cilium_lb4_affinity', keySize: AFF_KEY.SIZE, valueSize: AFF_VAL.SIZE, maxEntries: LB_AFFINITY_MAP_SIZE }),
    sourceRange: new LpmTrieMap({ name: 'cilium_lb4_source_range', keySize: SRC_RANGE_KEY.SIZE, valueSize: 1, maxEntries: LB_SRC_RANGE_MAP_SIZE }),
  };
}

/**
 * Fill a 12-byte scratch service key. `vip` is the address as a u32 number,
 * `dport` the port as a number (both written in network order).
 */
export function svcKey4(key: Uint8Array, vip: number, dport: number, slot: number, proto: number, scope: number): void {
  key[0] = vip >>> 24;
  key[1] = (vip >>> 16) & 0xff;
  key[2] = (vip >>> 8) & 0xff;
  key[3] = vip & 0xff;
  key[4] = dport >>> 8;
  key[5] = dport & 0xff;
  key[6] = slot & 0xff;
  key[7] = slot >>> 8;
  key[8] = proto;
  key[9] = scope;
  key[10] = 0;
  key[11] = 0;
}

/** Fill a 12-byte source-range key for client `addr` (u32) of service `revNat`, prefix `len` address bits. */
export function srcRangeKey4(key: Uint8Array, revNat: number, addr: number, len: number): void {
  const p = SRC_RANGE_STATIC_PREFIX + len;
  key[0] = p;
  key[1] = key[2] = key[3] = 0;
  key[4] = revNat & 0xff;
  key[5] = revNat >>> 8;
  key[6] = key[7] = 0;
  const a = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
  key[8] = a >>> 24;
  key[9] = (a >>> 16) & 0xff;
  key[10] = (a >>> 8) & 0xff;
  key[11] = a & 0xff;
}

/** Fill a 4-byte backend-map key (u32 ID, host order). */
export function backendKey(key: Uint8Array, id: number): void {
  key[0] = id & 0xff;
  key[1] = (id >>> 8) & 0xff;
  key[2] = (id >>> 16) & 0xff;
  key[3] = id >>> 24;
}

/** Fill a 2-byte reverse-NAT key (u16 rev_nat_index, host order). */
export function revNatKey(key: Uint8Array, index: number): void {
  key[0] = index & 0xff;
  key[1] = index >>> 8;
}

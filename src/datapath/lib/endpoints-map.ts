/**
 * cilium_lxc: local endpoints by IP address (bpf/lib/maps.h ENDPOINTS_MAP,
 * key struct endpoint_key, value struct endpoint_info).
 *
 * API:
 *   createEndpointsMap(maxEntries?)        the hash map
 *   EP_KEY / EP_VAL                         byte offsets of the fields
 *   epKey4(key, ip) / epKey6(key, b, off)   fill a scratch key (packet path)
 *   endpointKeyLayout, endpointInfoLayout   the same layouts for dumps
 *
 *   key (20 B)                           value (32 B)
 *   +0  ip[16]  (IPv4 in the first 4 B)  +0  ifindex u32  (Tapestry: engine port id)
 *   +16 family u8 (1 IPv4, 2 IPv6)       +4  unused u16
 *   +17 key u8 (0)                       +6  lxc_id u16   (endpoint ID)
 *   +18 pad u16                          +8  flags u32    (ENDPOINT_F_*)
 *                                        +12 mac[6]       (pod's eth0)
 *                                        +20 node_mac[6]  (host-side MAC the pod talks to)
 *                                        +28 sec_id u32   (security identity)
 *
 * Deviation: Cilium's value stores MACs as u64 (mac_t) with natural
 * alignment; Tapestry packs them as 6 bytes at fixed offsets because nothing
 * else shares the struct, and reads them with one copyWithin.
 */
import { HashMap } from '../../maps/hash.ts';

/** ENDPOINTS_MAP_SIZE in Cilium. */
export const ENDPOINTS_MAP_SIZE = 65535;
/** endpoint_key.family values. */
export const ENDPOINT_KEY_IPV4 = 1;
export const ENDPOINT_KEY_IPV6 = 2;
/** endpoint_info.flags: the entry is the host itself (ENDPOINT_F_HOST). */
export const ENDPOINT_F_HOST = 1;

/** Key field offsets. */
export const EP_KEY = { IP: 0, FAMILY: 16, KEY: 17, SIZE: 20 } as const;
/** Value field offsets. */
export const EP_VAL = { IFINDEX: 0, LXC_ID: 6, FLAGS: 8, MAC: 12, NODE_MAC: 20, SEC_ID: 28, SIZE: 32 } as const;

/** The endpoints map. */
export function createEndpointsMap(maxEntries = ENDPOINTS_MAP_SIZE): HashMap {
  return new HashMap({ name: 'cilium_lxc', keySize: EP_KEY.SIZE, valueSize: EP_VAL.SIZE, maxEntries });
}

/** Fill a 20-byte scratch key for IPv4 address `ip` (u32). Bytes 4..15 must stay zero. */
export function epKey4(key: Uint8Array, ip: number): void {
  key[0] = ip >>> 24;
  key[1] = (ip >>> 16) & 0xff;
  key[2] = (ip >>> 8) & 0xff;
  key[3] = ip & 0xff;
  key[EP_KEY.FAMILY] = ENDPOINT_KEY_IPV4;
}

/** Fill a 20-byte scratch key for the IPv6 address at b[off..off+16). */
export function epKey6(key: Uint8Array, b: Uint8Array, off: number): void {
  for (let k = 0; k < 16; k++) key[k] = b[off + k]!;
  key[EP_KEY.FAMILY] = ENDPOINT_KEY_IPV6;
}

/**
 * Drop reasons: Cilium's negative DROP_* codes and the strings its monitor,
 * Hubble and the `cilium_drop_count_total{reason}` metric print for them.
 *
 * API:
 *   DROP.<NAME>          negative code, as returned by a stage (IS_ERR(ret))
 *   dropReasonString(c)  the user-visible string for a code (either sign)
 *
 * Codes and strings follow bpf/lib/common.h + pkg/monitor/api/drop.go
 * (facts file section 8). Keep in sync with monitor decoding: the reason byte
 * carried in events and counters is -DROP_*, so codes must stay within 0..255.
 * 2..11 are not DROP_* codes in Cilium (they are socket-LB and fragment
 * errors) but share the table; Tapestry names them for completeness.
 */

/** Negative drop codes, by Cilium name without the DROP_ prefix. */
export const DROP = {
  INVALID_PACKET_2: -2,
  INTERFACE: -3,
  INTERFACE_DECRYPTED: -4,
  LB_NO_BACKEND_SLOT: -5,
  LB_NO_BACKEND: -6,
  LB_REVERSE_UPDATE_FAILED: -7,
  LB_REVERSE_STALE: -8,
  FRAGMENTED: -9,
  FRAG_UPDATE_FAILED: -10,
  MISSED_CUSTOM_CALL: -11,
  INVALID_SMAC: -130,
  INVALID_DMAC: -131,
  INVALID_SIP: -132,
  POLICY: -133,
  INVALID: -134,
  CT_INVALID_HDR: -135,
  FRAG_NEEDED: -136,
  CT_UNKNOWN_PROTO: -137,
  CT_CANT_CREATE: -138,
  UNKNOWN_L3: -139,
  MISSED_TAIL_CALL: -140,
  WRITE_ERROR: -141,
  UNKNOWN_L4: -142,
  UNKNOWN_ICMP4_CODE: -143,
  UNKNOWN_ICMP4_TYPE: -144,
  UNKNOWN_ICMP6_CODE: -145,
  UNKNOWN_ICMP6_TYPE: -146,
  NO_TUNNEL_KEY: -147,
  NO_TUNNEL_OPT: -148,
  INVALID_GENEVE_OPTION: -149,
  UNKNOWN_TARGET: -150,
  UNROUTABLE: -151,
  NO_LXC: -152,
  CSUM_L3: -153,
  CSUM_L4: -154,
  CT_CREATE_FAILED: -155,
  INVALID_EXTHDR: -156,
  FRAG_NOSUPPORT: -157,
  NO_SERVICE: -158,
  UNSUPP_SERVICE_PROTO: -159,
  NO_TUNNEL_ENDPOINT: -160,
  NAT_46X64_DISABLED: -161,
  EDT_HORIZON: -162,
  UNKNOWN_CT: -163,
  HOST_UNREACHABLE: -164,
  NO_CONFIG: -165,
  UNSUPPORTED_L2: -166,
  NAT_NO_MAPPING: -167,
  NAT_UNSUPP_PROTO: -168,
  NO_FIB: -169,
  ENCAP_PROHIBITED: -170,
  INVALID_IDENTITY: -171,
  UNKNOWN_SENDER: -172,
  NAT_NOT_NEEDED: -173,
  IS_CLUSTER_IP: -174,
  FRAG_NOT_FOUND: -175,
  FORBIDDEN_ICMP6: -176,
  NOT_IN_SRC_RANGE: -177,
  PROXY_LOOKUP_FAILED: -178,
  PROXY_SET_FAILED: -179,
  PROXY_UNKNOWN_PROTO: -180,
  POLICY_DENY: -181,
  VLAN_FILTERED: -182,
  INVALID_VNI: -183,
  INVALID_TC_BUFFER: -184,
  NO_SID: -185,
  MISSING_SRV6_STATE: -186,
  NAT46: -187,
  NAT64: -188,
  POLICY_AUTH_REQUIRED: -189,
  CT_NO_MAP_FOUND: -190,
  SNAT_NO_MAP_FOUND: -191,
  INVALID_CLUSTER_ID: -192,
  DSR_ENCAP_UNSUPP_PROTO: -193,
  NO_EGRESS_GATEWAY: -194,
  UNENCRYPTED_TRAFFIC: -195,
  TTL_EXCEEDED: -196,
  NO_NODE_ID: -197,
  RATE_LIMITED: -198,
  IGMP_HANDLED: -199,
  IGMP_SUBSCRIBED: -200,
  MULTICAST_HANDLED: -201,
  HOST_NOT_READY: -202,
  EP_NOT_READY: -203,
  NO_EGRESS_IP: -204,
} as const;

/** A drop code (negative). */
export type DropCode = (typeof DROP)[keyof typeof DROP];

const STRINGS: (string | undefined)[] = [];
STRINGS[2] = 'Invalid packet';
STRINGS[3] = 'Interface';
STRINGS[4] = 'Interface Decrypted';
STRINGS[5] = 'LB, sock cgroup: No backend slot entry found';
STRINGS[6] = 'LB, sock cgroup: No backend entry found';
STRINGS[7] = 'LB, sock cgroup: Reverse entry update failed';
STRINGS[8] = 'LB, sock cgroup: Reverse entry stale';
STRINGS[9] = 'Fragmented packet';
STRINGS[10] = 'Fragmented packet entry update failed';
STRINGS[11] = 'Missed tail call to custom program';
STRINGS[130] = 'Invalid source mac';
STRINGS[131] = 'Invalid destination mac';
STRINGS[132] = 'Invalid source ip';
STRINGS[133] = 'Policy denied';
STRINGS[134] = 'Invalid packet';
STRINGS[135] = 'CT: Truncated or invalid header';
STRINGS[136] = 'Fragmentation needed';
STRINGS[137] = 'CT: Unknown L4 protocol';
STRINGS[138] = "CT: Can't create entry from packet";
STRINGS[139] = 'Unsupported L3 protocol';
STRINGS[140] = 'Missed tail call';
STRINGS[141] = 'Error writing to packet';
STRINGS[142] = 'Unknown L4 protocol';
STRINGS[143] = 'Unknown ICMPv4 code';
STRINGS[144] = 'Unknown ICMPv4 type';
STRINGS[145] = 'Unknown ICMPv6 code';
STRINGS[146] = 'Unknown ICMPv6 type';
STRINGS[147] = 'Error retrieving tunnel key';
STRINGS[148] = 'Error retrieving tunnel options';
STRINGS[149] = 'Invalid Geneve option';
STRINGS[150] = 'Unknown L3 target address';
STRINGS[151] = 'Stale or unroutable IP';
STRINGS[152] = 'No matching local container found';
STRINGS[153] = 'Error while correcting L3 checksum';
STRINGS[154] = 'Error while correcting L4 checksum';
STRINGS[155] = 'CT: Map insertion failed';
STRINGS[156] = 'Invalid IPv6 extension header';
STRINGS[157] = 'IP fragmentation not supported';
STRINGS[158] = 'Service backend not found';
STRINGS[160] = 'No tunnel/encapsulation endpoint (datapath BUG!)';
STRINGS[161] = 'NAT 46/64 not enabled';
STRINGS[162] = 'Reached EDT rate-limiting drop horizon';
STRINGS[163] = 'Unknown connection tracking state';
STRINGS[164] = 'Local host is unreachable';
STRINGS[165] = 'No configuration available to perform policy decision';
STRINGS[166] = 'Unsupported L2 protocol';
STRINGS[167] = 'No mapping for NAT masquerade';
STRINGS[168] = 'Unsupported protocol for NAT masquerade';
STRINGS[169] = 'FIB lookup failed';
STRINGS[170] = 'Encapsulation traffic is prohibited';
STRINGS[171] = 'Invalid identity';
STRINGS[172] = 'Unknown sender';
STRINGS[173] = 'NAT not needed';
STRINGS[174] = 'Is a ClusterIP';
STRINGS[175] = 'First logical datagram fragment not found';
STRINGS[176] = 'Forbidden ICMPv6 message';
STRINGS[177] = 'Denied by LB src range check';
STRINGS[178] = 'Socket lookup failed';
STRINGS[179] = 'Socket assign failed';
STRINGS[180] = 'Proxy redirection not supported for protocol';
STRINGS[181] = 'Policy denied by denylist';
STRINGS[182] = 'VLAN traffic disallowed by VLAN filter';
STRINGS[183] = 'Incorrect VNI from VTEP';
STRINGS[184] = 'Failed to update or lookup TC buffer';
STRINGS[185] = 'No SID was found for the IP address';
STRINGS[186] = 'SRv6 state was removed during tail call';
STRINGS[187] = 'L3 translation from IPv4 to IPv6 failed (NAT46)';
STRINGS[188] = 'L3 translation from IPv6 to IPv4 failed (NAT64)';
STRINGS[189] = 'Authentication required';
STRINGS[190] = 'No conntrack map found';
STRINGS[191] = 'No nat map found';
STRINGS[192] = 'Invalid ClusterID';
STRINGS[193] = 'Unsupported packet protocol for DSR encapsulation';
STRINGS[194] = 'No egress gateway found';
STRINGS[195] = 'Traffic is unencrypted';
STRINGS[196] = 'TTL exceeded';
STRINGS[197] = 'No node ID found';
STRINGS[198] = 'Rate limited';
STRINGS[199] = 'IGMP handled';
STRINGS[200] = 'IGMP subscribed';
STRINGS[201] = 'Multicast handled';
STRINGS[202] = 'Host datapath not ready';
STRINGS[203] = 'Endpoint policy program not available';
STRINGS[204] = 'No Egress IP configured.';

/**
 * Cilium's string for a drop code (accepts -134 or 134). Unknown codes print
 * as "<code>, <ext>" like pkg/monitor/api/drop.go; a non-zero extended error
 * is appended as ", <ext>".
 */
export function dropReasonString(code: number, extError = 0): string {
  const c = code < 0 ? -code : code;
  const s = STRINGS[c];
  if (s === undefined) return `${c}, ${extError}`;
  return extError !== 0 ? `${s}, ${extError}` : s;
}

/** True when a stage's return value is a drop (Cilium's IS_ERR). */
export function isErr(ret: number): boolean {
  return ret < 0;
}

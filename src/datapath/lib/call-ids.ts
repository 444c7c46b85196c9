/**
 * Tail-call IDs: the slots of the program array, numbered as Cilium numbers
 * them (bpf/lib/common.h CILIUM_CALL_*), aliases included, so a trace of
 * "tail call 7" means the same thing in both projects.
 *
 * API: CALL.<NAME>, CALL_SIZE, callName(id)
 */

/** Program-array slots by Cilium name without the CILIUM_CALL_ prefix. */
export const CALL = {
  DROP_NOTIFY: 1,
  ERROR_NOTIFY: 2,
  SEND_ICMP6_ECHO_REPLY: 3,
  HANDLE_ICMP6_NS: 4,
  SEND_ICMP6_TIME_EXCEEDED: 5,
  ARP: 6,
  IPV4_FROM_LXC: 7,
  IPV4_FROM_NETDEV: 7,
  IPV4_FROM_OVERLAY: 7,
  IPV46_RFC6052: 8,
  IPV64_RFC6052: 9,
  IPV6_FROM_LXC: 10,
  IPV6_FROM_NETDEV: 10,
  IPV6_FROM_OVERLAY: 10,
  IPV4_TO_LXC_POLICY_ONLY: 11,
  IPV6_TO_LXC_POLICY_ONLY: 12,
  IPV4_TO_ENDPOINT: 13,
  IPV6_TO_ENDPOINT: 14,
  IPV4_NODEPORT_NAT_EGRESS: 15,
  IPV6_NODEPORT_NAT_EGRESS: 16,
  IPV4_NODEPORT_REVNAT: 17,
  IPV6_NODEPORT_REVNAT: 18,
  IPV4_NODEPORT_NAT_FWD: 19,
  IPV4_NODEPORT_DSR: 20,
  IPV6_NODEPORT_DSR: 21,
  IPV4_FROM_HOST: 22,
  IPV6_FROM_HOST: 23,
  IPV6_NODEPORT_NAT_FWD: 24,
} as const;

/** Number of program-array slots (CILIUM_CALL_SIZE in recent Cilium is larger; 32 covers ours). */
export const CALL_SIZE = 32;

const NAMES: string[] = [];
for (const [name, id] of Object.entries(CALL)) NAMES[id] ??= name;

/** First Cilium name of a call ID, for traces and errors. */
export function callName(id: number): string {
  return NAMES[id] ?? `CALL_${id}`;
}

/**
 * Program verdicts: what an XDP or tc program returns for a frame.
 *
 * API:
 *   XDP.*   XDP_ABORTED .. XDP_REDIRECT (include/uapi/linux/bpf.h values)
 *   TC.*    TC_ACT_UNSPEC / OK / SHOT / REDIRECT (Cilium's CTX_ACT_*)
 *
 * A stage stores the verdict in `FrameBatch.ret[i]`; a negative value is a
 * DROP_* code (see datapath/lib/drop-reasons.ts) and always wins: the engine's
 * single drop exit turns it into TC_ACT_SHOT / XDP_DROP and accounts for it.
 */

/** XDP program return codes. */
export const XDP = {
  ABORTED: 0,
  DROP: 1,
  PASS: 2,
  TX: 3,
  REDIRECT: 4,
} as const;

/** tc (cls_bpf direct-action) return codes, as Cilium's CTX_ACT_* use them. */
export const TC = {
  UNSPEC: -1,
  OK: 0,
  SHOT: 2,
  /** Consumed by the program (kept for later, or answered in another form); not a drop. */
  STOLEN: 4,
  REDIRECT: 7,
} as const;

/** Kind of hook a program is attached to; decides how its verdicts are read. */
export type HookKind = 'xdp' | 'tc';

/** Traffic direction used by drop/forward accounting (Cilium metricsmap dir). */
export const DIR = {
  UNKNOWN: 0,
  INGRESS: 1,
  EGRESS: 2,
  SERVICE: 3,
} as const;

/** Names of the DIR values as Cilium's metrics label them. */
export const DIR_NAMES = ['UNKNOWN', 'INGRESS', 'EGRESS', 'SERVICE'] as const;

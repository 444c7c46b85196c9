/**
 * Reading "packets dropped at the earliest point" on a node's uplink, for
 * the prefilter benchmark:
 *
 *   tapestry  the XDP verdict counters of the uplink port (XDP_DROP), from
 *             the agent's GET /v1/ports (one row per device); the engine
 *             keeps them per port, indexed by XDP_* (ABORTED 0, DROP 1,
 *             PASS 2, TX 3, REDIRECT 4), and a row may carry them as that
 *             array or as an object keyed by verdict name
 *   kernel    the packet counter of the nftables netdev ingress rule that
 *             drops the deny-listed CIDR on the kernel node's eth0
 *             (nft has no XDP hook; netdev ingress is the kernel's earliest
 *             filtering point short of an XDP program)
 *
 * API: xdpDrops, kernelPrefilterRuleset, kernelPrefilterDrops, KERNEL_PREFILTER_TABLE
 */
import { agentApi } from './agent-api.ts';
import { nsArgs } from './netns.ts';
import { BenchError, runOk } from './proc.ts';

/** Index of XDP_DROP in a verdict array (include/uapi/linux/bpf.h). */
const XDP_DROP = 1;

/** The drop count in one counter field, whatever shape it has; null if it holds none. */
function dropsIn(v: unknown): number | null {
  if (Array.isArray(v) && v.length >= 2 && typeof v[XDP_DROP] === 'number') return v[XDP_DROP] as number;
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (/^(xdp_)?drop(ped)?$/i.test(k) && typeof x === 'number') return x;
    }
  }
  return null;
}

/**
 * Frames the uplink `device`'s XDP stage dropped so far, from the agent at
 * `socket`; throws a BenchError naming what it found when the row has no
 * XDP verdict counters.
 */
export async function xdpDrops(socket: string, device = 'eth0'): Promise<number> {
  const rows = await agentApi<Record<string, unknown>[]>(socket, 'GET', '/v1/ports');
  const row = rows.find((r) => r['name'] === device);
  if (!row) throw new BenchError(`GET /v1/ports: no row for ${device} (${rows.map((r) => String(r['name'])).join(', ')})`);
  for (const [k, v] of Object.entries(row)) {
    if (!/xdp/i.test(k)) continue;
    const n = dropsIn(v);
    if (n !== null) return n;
  }
  throw new BenchError(`GET /v1/ports: the ${device} row has no XDP verdict counters (fields: ${Object.keys(row).join(', ')})`);
}

/** The kernel node's stand-in for the prefilter. */
export const KERNEL_PREFILTER_TABLE = 'np_prefilter';

/** A netdev ingress chain on `dev` dropping (and counting) every source in `deny`. */
export function kernelPrefilterRuleset(dev: string, deny: readonly string[]): string {
  return `table netdev ${KERNEL_PREFILTER_TABLE} {
  chain ingress {
    type filter hook ingress device "${dev}" priority -500; policy accept;
    ip saddr { ${deny.join(', ')} } counter drop
  }
}
`;
}

/** Packets the kernel prefilter chain in `ns` dropped so far. */
export async function kernelPrefilterDrops(ns: string): Promise<number> {
  const out = await runOk('ip', nsArgs(ns, 'nft', ['-j', 'list', 'table', 'netdev', KERNEL_PREFILTER_TABLE]), { timeoutMs: 10_000 });
  const doc = JSON.parse(out) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  for (const item of doc.nftables) {
    for (const e of item.rule?.expr ?? []) if (e.counter) return e.counter.packets;
  }
  throw new BenchError(`nft table ${KERNEL_PREFILTER_TABLE} in ${ns}: no counter`);
}

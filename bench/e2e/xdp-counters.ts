/**
 * Reading "packets dropped at the earliest point" on a node's uplink, for
 * the prefilter benchmark:
 *
 *   tapestry  the XDP verdict counters of the uplink port (XDP_DROP), from
 *             the agent's GET /v1/nodeport (`xdp.drop`; the prefilter's own
 *             count, `prefilter.hits`, is the same frames: nothing else
 *             drops at XDP without acceleration)
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

/** The part of GET /v1/nodeport the benchmark reads (src/agent/datapath-worker.ts nodePortStatus). */
interface NodePortStatus {
  xdp?: { drop?: number } | null;
}

/**
 * Frames node's uplink XDP stage dropped so far (XDP_DROP verdicts), from
 * the agent at `socket` (GET /v1/nodeport); throws a BenchError when the
 * answer has no XDP counters.
 */
export async function xdpDrops(socket: string): Promise<number> {
  const doc = await agentApi<NodePortStatus | null>(socket, 'GET', '/v1/nodeport');
  const n = doc?.xdp?.drop;
  if (typeof n !== 'number') throw new BenchError(`GET /v1/nodeport: no xdp.drop counter (${JSON.stringify(doc).slice(0, 200)})`);
  return n;
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

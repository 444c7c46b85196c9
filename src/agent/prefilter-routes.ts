/**
 * Agent API for the XDP prefilter (datapath/lib/prefilter.ts) and the
 * north-south load-balancer state; the datapath worker holds the map.
 *
 *   GET    /v1/prefilter            { revision, cidrs }
 *   PATCH  /v1/prefilter            { cidrs, revision? } -> { revision }   add
 *   DELETE /v1/prefilter            { cidrs, revision? } -> { revision }   remove
 *   GET    /v1/nodeport             NodePort counters, XDP verdicts, announced LoadBalancer IPs
 *
 * A refused change (bad CIDR, stale revision, unknown prefix) is a 400
 * naming the field; nothing is applied.
 *
 * API: prefilterRoutes(dp) -> Routes, prefilterApply(dp, cidrs)
 */
import type { Routes } from './api-server.ts';
import type { DatapathClient } from './datapath-client.ts';

type Change = { revision: number } | { error: string };

/** Validate a { cidrs, revision? } body; throws a 400 naming the field. */
function changeBody(body: unknown): { cidrs: string[]; revision?: number } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (!Array.isArray(b.cidrs) || b.cidrs.length === 0 || !b.cidrs.every((c) => typeof c === 'string')) {
    throw Object.assign(new Error('cidrs: give one or more IPv4 CIDRs (a.b.c.d/len)'), { status: 400 });
  }
  if (b.revision !== undefined && (typeof b.revision !== 'number' || !Number.isInteger(b.revision))) {
    throw Object.assign(new Error('revision: must be an integer'), { status: 400 });
  }
  return { cidrs: b.cidrs as string[], ...(b.revision !== undefined ? { revision: b.revision as number } : {}) };
}

function result(r: Change): { revision: number } {
  if ('error' in r) throw Object.assign(new Error(r.error), { status: 400 });
  return r;
}

/** Add `cidrs` to the prefilter (agent start, from the config). */
export async function prefilterApply(dp: DatapathClient, cidrs: string[]): Promise<void> {
  if (cidrs.length > 0) result((await dp.request({ op: 'prefilterUpdate', cidrs })) as Change);
}

/** The prefilter and NodePort routes. */
export function prefilterRoutes(dp: DatapathClient): Routes {
  return {
    'GET /v1/prefilter': () => dp.request({ op: 'prefilterList' }),
    'PATCH /v1/prefilter': async ({ body }) => result((await dp.request({ op: 'prefilterUpdate', ...changeBody(body) })) as Change),
    'DELETE /v1/prefilter': async ({ body }) => result((await dp.request({ op: 'prefilterDelete', ...changeBody(body) })) as Change),
    'GET /v1/nodeport': () => dp.request({ op: 'nodePortStatus' }),
  };
}

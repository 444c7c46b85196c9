/**
 * Dump of the service map for `tapestry bpf lb list` (Cilium's
 * cilium-dbg bpf lb list: one row per frontend slot, slot 0 carrying the
 * service flags, backend slots their backend's address).
 *
 * API: lbDump(lb) -> LbRow[], formatLbList(rows) -> string, svcFlagNames(flags, flags2)
 */
import { formatIpv4 } from '../../wire/addr.ts';
import { BE_VAL, SVC_F, SVC_F2, SVC_KEY, SVC_VAL, backendKey } from './lb-map.ts';
import { get16, get32 } from '../../wire/bytes.ts';
import type { Lb4 } from './lb.ts';

/** One row of the service map. */
export interface LbRow {
  frontend: string;
  scope: number;
  slot: number;
  revNat: number;
  /** Slot 0: count and flags; backend slots: the backend. */
  count?: number;
  flags?: string[];
  backendId?: number;
  backend?: string;
}

/** Service-type and flag names in Cilium's order. */
export function svcFlagNames(flags: number, flags2: number): string[] {
  const type =
    flags & SVC_F.EXTERNAL_IP ? 'ExternalIPs' : flags & SVC_F.NODEPORT ? 'NodePort' : flags & SVC_F.LOADBALANCER ? 'LoadBalancer' : flags & SVC_F.HOSTPORT ? 'HostPort' : flags2 & SVC_F2.LOCALREDIRECT ? 'LocalRedirect' : 'ClusterIP';
  const out = [type];
  if (flags & SVC_F.EXT_LOCAL_SCOPE) out.push('Local');
  if (flags2 & SVC_F2.INT_LOCAL_SCOPE) out.push('InternalLocal');
  if (flags2 & SVC_F2.TWO_SCOPES) out.push('two-scopes');
  if (flags & SVC_F.AFFINITY) out.push('sessionAffinity');
  if (!(flags & SVC_F.ROUTABLE)) out.push('non-routable');
  if (flags & SVC_F.SOURCE_RANGE) out.push('check source-range');
  return out;
}

/** Every row of cilium_lb4_services_v2, backends resolved, sorted by frontend then slot. */
export function lbDump(lb: Lb4): LbRow[] {
  const rows: LbRow[] = [];
  const m = lb.maps;
  const be = new Uint8Array(4);
  m.services.iterate((k, ko, slot) => {
    const vip = get32(k, ko + SVC_KEY.ADDRESS);
    const port = get16(k, ko + SVC_KEY.DPORT);
    const s = k[ko + SVC_KEY.SLOT]! | (k[ko + SVC_KEY.SLOT + 1]! << 8);
    const vo = slot * SVC_VAL.SIZE;
    const view = m.services.view;
    const row: LbRow = { frontend: `${formatIpv4(vip)}:${port}`, scope: k[ko + SVC_KEY.SCOPE]!, slot: s, revNat: view.getUint16(vo + SVC_VAL.REV_NAT, true) };
    if (s === 0) {
      row.count = view.getUint16(vo + SVC_VAL.COUNT, true);
      row.flags = svcFlagNames(m.services.values[vo + SVC_VAL.FLAGS]!, m.services.values[vo + SVC_VAL.FLAGS2]!);
    } else {
      const id = view.getUint32(vo + SVC_VAL.BACKEND_ID, true);
      row.backendId = id;
      backendKey(be, id);
      const b = m.backends.lookup(be, 0);
      if (b >= 0) {
        const v = m.backends.values;
        const o = b * BE_VAL.SIZE;
        row.backend = `${formatIpv4(get32(v, o + BE_VAL.ADDRESS))}:${get16(v, o + BE_VAL.PORT)}`;
      }
    }
    rows.push(row);
  });
  return rows.sort((a, b) => (a.frontend === b.frontend ? a.slot - b.slot : a.frontend.localeCompare(b.frontend)));
}

/** Cilium's layout: `SERVICE ADDRESS   BACKEND ADDRESS (REVNAT_ID) (SLOT)`. */
export function formatLbList(rows: readonly LbRow[]): string {
  const lines: [string, string][] = [['SERVICE ADDRESS', 'BACKEND ADDRESS (REVNAT_ID) (SLOT)']];
  for (const r of rows) {
    const key = `${r.frontend}${r.scope === 1 ? '/i' : ''} (${r.slot})`;
    lines.push([key, r.slot === 0 ? `0.0.0.0:0 (${r.revNat}) (0) [${(r.flags ?? []).join(', ')}] ` : `${r.backend ?? '?'} (${r.revNat}) (${r.slot})`]);
  }
  const w = Math.max(...lines.map((l) => l[0].length)) + 3;
  return lines.map(([a, b]) => `${a.padEnd(w)}${b}`).join('\n');
}

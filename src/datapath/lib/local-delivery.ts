/**
 * Local delivery: a frame for an endpoint on this node gets the endpoint's
 * MACs and a decremented TTL, then tail-calls into the endpoint's ingress
 * stage (Cilium ipv4_local_delivery / ipv6_local_delivery, bpf/lib/l3.h).
 *
 * API: localDelivery(b, i, lxc, slot, eth, ip4 | ip6, v6, srcIdentity)
 *   slot: the endpoint's cilium_lxc value slot (lxc.lookup result)
 */
import type { FrameBatch } from '../../packet/batch.ts';
import { CB, META_SLOTS } from '../../packet/batch.ts';
import { drop, tailCall } from '../../engine/program.ts';
import type { HashMap } from '../../maps/hash.ts';
import type { EthernetView } from '../../wire/ethernet.ts';
import type { Ipv4View } from '../../wire/ipv4.ts';
import type { Ipv6View } from '../../wire/ipv6.ts';
import { CALL } from './call-ids.ts';
import { EP_VAL } from './endpoints-map.ts';
import { ipv4L3, ipv6L3 } from './l3.ts';

/** Deliver frame i (views bound) to the endpoint at lxc value `slot`. */
export function localDelivery(
  b: FrameBatch, i: number, lxc: HashMap, slot: number, eth: EthernetView, ip4: Ipv4View, ip6: Ipv6View, v6: boolean, srcIdentity: number,
): void {
  const vals = lxc.values;
  const vo = slot * EP_VAL.SIZE;
  const ret = v6
    ? ipv6L3(eth, ip6, vals, vo + EP_VAL.NODE_MAC, vals, vo + EP_VAL.MAC)
    : ipv4L3(eth, ip4, vals, vo + EP_VAL.NODE_MAC, vals, vo + EP_VAL.MAC);
  if (ret < 0) {
    drop(b, i, ret);
    return;
  }
  const m = i * META_SLOTS;
  b.meta[m + CB.SRC_LABEL] = srcIdentity;
  b.meta[m + CB.DST_ENDPOINT_ID] = lxc.view.getUint16(vo + EP_VAL.LXC_ID, true);
  b.meta[m + CB.IFINDEX] = lxc.view.getUint32(vo + EP_VAL.IFINDEX, true);
  tailCall(b, i, v6 ? CALL.IPV6_TO_ENDPOINT : CALL.IPV4_TO_ENDPOINT);
}

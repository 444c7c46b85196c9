/**
 * ARP responder for endpoints (Cilium bpf/lib/arp.h, used by bpf_lxc):
 * every Ethernet/IPv4 ARP request from a pod is answered with the host-side
 * MAC, whatever address it asks for — except the pod's own address — so all
 * of the pod's traffic is sent to the datapath. The reply is built in place
 * and bounced out of the port the request came in on.
 *
 * API:
 *   arpValidate(arp) -> boolean            an Ethernet/IPv4 request we may answer
 *   arpPrepareResponse(eth, arp, mac)      rewrite the request into the reply
 */
import { ArpView, ARPOP_REPLY, ARPOP_REQUEST, ARPHRD_ETHER } from '../../wire/arp.ts';
import { ETH_P_IP, type EthernetView } from '../../wire/ethernet.ts';

/** True for an ARP request for IPv4 over Ethernet (after checkLen). */
export function arpValidate(arp: ArpView): boolean {
  return arpIsEthIpv4(arp) && arp.oper() === ARPOP_REQUEST;
}

/** True for any ARP packet about IPv4 over Ethernet (request or reply). */
export function arpIsEthIpv4(arp: ArpView): boolean {
  return arp.htype() === ARPHRD_ETHER && arp.ptype() === ETH_P_IP && arp.hlen() === 6 && arp.plen() === 4;
}

/**
 * Turn the request in place into a reply from `mac` (6 bytes at mac[0]):
 *   eth.dst = requester, eth.src = mac,
 *   op = reply, sha = mac, spa = asked address, tha = requester MAC, tpa = requester IP.
 */
export function arpPrepareResponse(eth: EthernetView, arp: ArpView, mac: Uint8Array): void {
  const b = arp.b;
  const asked = arp.tpa();
  const requesterIp = arp.spa();
  // tha <- sha (requester MAC), before sha is overwritten
  b.copyWithin(arp.thaOff(), arp.shaOff(), arp.shaOff() + 6);
  arp.setSha(mac, 0);
  arp.setSpa(asked);
  arp.setTpa(requesterIp);
  arp.setOper(ARPOP_REPLY);
  eth.setDst(b, arp.thaOff());
  eth.setSrc(mac, 0);
}

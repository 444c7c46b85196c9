/**
 * bpf_xdp: the stage in front of from-netdev on the uplink (Cilium
 * bpf/bpf_xdp.c cil_xdp_entry). Runs on every frame the uplink receives,
 * before GRO and the tc-equivalent programs:
 *
 *   prefilter       source inside a deny-listed CIDR -> XDP_DROP (counted,
 *                   like Cilium's prefilter: no drop notification)
 *   acceleration    (loadBalancer.acceleration: native) NodePort traffic for
 *                   a remote backend is load-balanced here — DNAT, SNAT or
 *                   DSR, encapsulation — and sent back out of the uplink
 *                   (XDP_TX); so are SNAT-mode replies arriving unencapsulated
 *                   (native routing). A local backend or anything else:
 *                   XDP_PASS, from-netdev takes it.
 *
 * The NodePort code sets tc-style verdicts; xdpVerdict() reads them the
 * XDP way (a redirect to the uplink itself is XDP_TX). Every XDP verdict is
 * counted per port by the engine (Port.xdpVerdicts).
 */
import type { FrameBatch } from '../../packet/batch.ts';
import type { Program } from '../../engine/program.ts';
import { verdict } from '../../engine/program.ts';
import { TC, XDP } from '../../engine/verdict.ts';
import { ETH_HLEN, ETH_P_IP, EthernetView } from '../../wire/ethernet.ts';
import { Ipv4View } from '../../wire/ipv4.ts';
import { NP_PASS } from '../lib/nodeport.ts';
import type { Datapath } from '../datapath.ts';

/** Build cil_xdp_entry over `dp`. */
export function installXdpProgram(dp: Datapath): Program {
  const eth = new EthernetView();
  const ip4 = new Ipv4View();
  const pf = dp.prefilter;

  /** Turn the tc verdict the NodePort code left on frame i into an XDP one. */
  function xdpVerdict(b: FrameBatch, i: number): void {
    const r = b.ret[i]!;
    if (r < 0) return; // a drop: the engine accounts for it with its reason
    if (r === TC.REDIRECT) b.ret[i] = b.out[i] === b.port ? XDP.TX : XDP.REDIRECT;
    else if (r === TC.OK) b.ret[i] = XDP.PASS;
    else b.ret[i] = XDP.DROP; // consumed (held for ARP with a copy)
  }

  return {
    name: 'cil_xdp_entry',
    run(b, vec, n) {
      const buf = b.buf;
      const accel = dp.cfg.xdpAcceleration === true;
      const up = dp.uplink;
      for (let k = 0; k < n; k++) {
        const i = vec[k]!;
        b.ret[i] = XDP.PASS;
        const o = b.off[i]!;
        const len = b.len[i]!;
        if (len < ETH_HLEN + 20 || buf[o + 12] !== ETH_P_IP >> 8 || buf[o + 13] !== (ETH_P_IP & 0xff)) continue;
        ip4.bind(buf, o + ETH_HLEN, len - ETH_HLEN);
        if (!ip4.checkLen()) continue; // from-netdev drops it with its reason
        if (pf.denied4(ip4.src())) {
          pf.hits++;
          verdict(b, i, XDP.DROP);
          continue;
        }
        if (!accel || up === null) continue;
        eth.bind(buf, o, len);
        if (dp.nodePort.lb4(b, i, eth, ip4, b.now, true) !== NP_PASS) {
          xdpVerdict(b, i);
          continue;
        }
        // A SNAT-mode reply on the wire (native routing): reverse SNAT, then the frontend back.
        if (ip4.dst() === up.ip && dp.tunnel === null && dp.snat !== null) {
          const r = dp.snat.ingress(b, i, ip4, up.ip, Math.floor(b.now / 1000));
          if (r > 0) {
            if (dp.nodePort.rev4(b, i, eth, ip4, b.now)) xdpVerdict(b, i);
            else b.ret[i] = XDP.PASS; // translated back to a pod: from-netdev delivers it
          } else if (r < 0) {
            b.ret[i] = r;
          }
        }
      }
    },
  };
}

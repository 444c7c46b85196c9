/**
 * A node datapath with two endpoints on in-memory devices, for
 * packet-in/packet-out tests of the programs:
 *
 *   A 10.0.0.10 fd00::10  (port a)        B 10.0.0.11 fd00::11  (port b)
 *         \____________ router 10.0.0.1 / fd00::1 ____________/
 */
import { Datapath } from '../../src/datapath/datapath.ts';
import { CaptureDevice } from '../../src/engine/device.ts';
import { parseIpv4, parseIpv6, parseMac } from '../../src/wire/addr.ts';
import type { CtOptions } from '../../src/datapath/lib/conntrack.ts';

export const A = { id: 1, ip4: '10.0.0.10', ip6: 'fd00::10', mac: '02:00:00:00:00:0a', hostMac: '02:00:00:00:01:0a', identity: 256 };
export const B = { id: 2, ip4: '10.0.0.11', ip6: 'fd00::11', mac: '02:00:00:00:00:0b', hostMac: '02:00:00:00:01:0b', identity: 257 };
export const ROUTER4 = '10.0.0.1';
export const ROUTER6 = 'fd00::1';

/** Build the datapath; returns it with the two capture devices and port ids. */
export function makeNode(ct?: CtOptions) {
  const dp = new Datapath({ routerIPv4: parseIpv4(ROUTER4), routerIPv6: parseIpv6(ROUTER6), mtu: 1500 }, ct ? { ct } : {});
  const devA = new CaptureDevice('a', dp.batch.buf);
  const devB = new CaptureDevice('b', dp.batch.buf);
  const add = (e: typeof A, dev: CaptureDevice) =>
    dp.addEndpoint({ id: e.id, name: `ep${e.id}`, ipv4: parseIpv4(e.ip4), ipv6: parseIpv6(e.ip6), mac: parseMac(e.mac), hostMac: parseMac(e.hostMac), identity: e.identity }, dev);
  const portA = add(A, devA);
  const portB = add(B, devB);
  /** Push frames in on `port` as one batch at time `nowMs`. */
  const rx = (port: number, frames: Uint8Array[], vnet?: (Uint8Array | undefined)[], nowMs = 0) => {
    dp.batch.load(frames, port, nowMs, vnet);
    dp.events.now = nowMs;
    dp.engine.process(dp.batch);
  };
  const drops = (code: number) => dp.metrics.dropsOf(code);
  return { dp, devA, devB, portA, portB, rx, drops };
}

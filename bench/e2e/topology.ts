/**
 * The shape every leg builds, and what a built leg hands to the measurements.
 *
 *      ns A (pod)                 forwarder                 ns B (pod)
 *   eth0 10.77.0.10/32  <-->  kernel router ns  |  <-->  eth0 10.77.0.11/32
 *   default via 10.77.0.1     OVS netdev bridge |        default via 10.77.0.1
 *                             Tapestry agent    |
 *
 * Same addresses, MTU and routes in all legs (Cilium's pod routing: /32
 * address, the router IP as an on-link gateway), so only the forwarder
 * differs. Legs run one after another, each in its own namespaces.
 *
 * API: Topology, LegName, LEG_NAMES, POD, legNs
 */
import type { ServiceBench } from './services.ts';

/** The three forwarders compared. */
export type LegName = 'kernel' | 'ovs' | 'tapestry';

/** Leg order in runs and tables; the kernel comes first as the baseline. */
export const LEG_NAMES: readonly LegName[] = ['kernel', 'ovs', 'tapestry'];

/** Addressing shared by all legs. */
export const POD = {
  cidr: '10.77.0.0/24',
  gateway: '10.77.0.1',
  ipA: '10.77.0.10',
  ipB: '10.77.0.11',
  /** Third endpoint, started only so the agent's idle RSS is for 3 endpoints. */
  ipC: '10.77.0.12',
  mtu: 1500,
  /** ClusterIP (port 5201) whose only backend is pod B, for the iperf3-through-a-service test. */
  clusterIP: '10.96.0.10',
} as const;

/** A leg that is up: two pods that can reach each other, and how to take it down. */
export interface Topology {
  leg: LegName;
  nsA: string;
  nsB: string;
  ipA: string;
  ipB: string;
  /** Figures measured while setting up (e.g. the agent's idle RSS in MB). */
  extras: Record<string, number>;
  /** Notes for the report (e.g. what the forwarder was configured with). */
  notes: string[];
  /** Service hooks (ClusterIP iperf3, connection setup with N services); absent when the leg has none. */
  services?: ServiceBench;
  /** The agent's API socket (tapestry only). */
  apiSocket?: string;
  /** Removes everything the leg created; safe to call twice. */
  down(): Promise<void>;
}

/** Namespace name for pod `which` of a leg: `<prefix><k|o|t><which>`. */
export function legNs(prefix: string, leg: LegName, which: string): string {
  return `${prefix}${leg[0]}${which}`;
}

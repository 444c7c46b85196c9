/**
 * Network policy comparison: the single-node Tapestry leg
 * (topology-tapestry.ts) three times over, one agent each, differing only
 * in the policies of the agent's config.
 *
 *   leg              policies (CiliumNetworkPolicy)                        enforced
 *   no-policy        none                                                  nothing
 *   ingress          server: ingress fromEndpoints app=bench-client, 5201/TCP   b ingress
 *   ingress-egress   the same, and client: egress toEndpoints                b ingress,
 *                    app=bench-server, 5201/TCP                             a egress
 *
 * The pods carry the same labels in every leg (a app=bench-client, b
 * app=bench-server, c app=bench-idle), so the identities are alike and only
 * the policies differ. The measured flow is allowed: one iperf3 TCP stream
 * a→b:5201 for `duration` s (the first second omitted). Every leg is up
 * before the first round and each round runs every leg in turn, like the
 * other legs (`sequential`: one leg at a time).
 *
 * Enforcement is checked once per leg, before the rounds, so a figure is
 * never taken on a leg whose policy does not bite. Listeners in pod B on
 * 5201 and 8080, then one connection attempt each:
 *
 *   a → b:8080   port not allowed   dropped at b's ingress (ingress) or at
 *                                   a's egress (ingress-egress)
 *   c → b:5201   peer not allowed   dropped at b's ingress
 *
 * with the agent's drop counters (reason 133, "Policy denied", by
 * direction) read around each attempt; on no-policy both must connect (so
 * the probes themselves work). After the rounds the packet counts of the
 * allow entries in b's (and a's) policy map show that the measured streams
 * went through the policy lookup.
 *
 * Teardown: each agent registers its own cleanup (upTapestry), so a normal
 * finish, an error and SIGINT end the same way.
 *
 * API: runPolicyLegs, POLICY_LEGS, POLICY_LEG_NAMES, PolicyLegName,
 *      PolicyLegResult, PolicyProbe, PolicyOptions, IPERF_PORT
 */
import type { Cleanups } from './cleanup.ts';
import { agentApi } from './agent-api.ts';
import { iperfTcp } from './iperf.ts';
import { nsArgs, tcpProbe, waitListening, type ProbeOutcome } from './netns.ts';
import { runRounds } from './rounds.ts';
import { attempt, BenchError, isAborted, startBackground, stopProcess } from './proc.ts';
import { POD, type Topology } from './topology.ts';
import { upTapestry, type TapestryOptions } from './topology-tapestry.ts';

/** The policy legs, in run and table order; no-policy is the baseline. */
export type PolicyLegName = 'no-policy' | 'ingress' | 'ingress-egress';

/** The port iperf3 listens on in pod B, the one port the policies allow. */
export const IPERF_PORT = 5201;
/** A port the policies do not allow (the probe's listener in pod B). */
const OTHER_PORT = 8080;

const LABELS = { a: { app: 'bench-client' }, b: { app: 'bench-server' }, c: { app: 'bench-idle' } };
const TCP_IPERF = [{ ports: [{ port: String(IPERF_PORT), protocol: 'TCP' }] }];

/** Server pod B admits the client on the iperf3 port only. */
const SERVER_INGRESS = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'bench-server-ingress' },
  spec: {
    endpointSelector: { matchLabels: LABELS.b },
    ingress: [{ fromEndpoints: [{ matchLabels: LABELS.a }], toPorts: TCP_IPERF }],
  },
};

/** Client pod A may reach the server on the iperf3 port only. */
const CLIENT_EGRESS = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'bench-client-egress' },
  spec: {
    endpointSelector: { matchLabels: LABELS.a },
    egress: [{ toEndpoints: [{ matchLabels: LABELS.b }], toPorts: TCP_IPERF }],
  },
};

/** How each leg is configured; `tag` goes into its namespace prefix (`<prefix>p<tag>a|b|c`). */
export const POLICY_LEGS: Record<PolicyLegName, { tag: string; policies: object[]; ingress: boolean; egress: boolean; what: string }> = {
  'no-policy': { tag: 'n', policies: [], ingress: false, egress: false, what: 'no policy' },
  ingress: { tag: 'i', policies: [SERVER_INGRESS], ingress: true, egress: false, what: 'CNP on b: ingress from app=bench-client to 5201/TCP' },
  'ingress-egress': {
    tag: 'e',
    policies: [SERVER_INGRESS, CLIENT_EGRESS],
    ingress: true,
    egress: true,
    what: 'the same, plus CNP on a: egress to app=bench-server on 5201/TCP',
  },
};
export const POLICY_LEG_NAMES = Object.keys(POLICY_LEGS) as PolicyLegName[];

/** One enforcement probe: a connection attempt and the policy drops it caused. */
export interface PolicyProbe {
  /** e.g. "a→b:8080 (port not allowed)". */
  what: string;
  /** What the leg's policies should do to it. */
  expect: 'connect' | 'deny-ingress' | 'deny-egress';
  outcome: ProbeOutcome;
  /** "Policy denied" drops counted during the attempt, by direction. */
  deniedIngress: number;
  deniedEgress: number;
  /** The outcome and the counters agree with `expect`. */
  ok: boolean;
}

/** Raw samples of one policy leg, one entry per round (NaN where the test failed). */
export interface PolicyLegResult {
  leg: PolicyLegName;
  /** False when the leg could not come up or no round succeeded. */
  ok: boolean;
  errors: string[];
  notes: string[];
  tcp1: number[];
  retransmits: number[];
  probes: PolicyProbe[];
  /** Every probe as expected, and the agent reports the intended enforcement; null when not checked. */
  verified: boolean | null;
  /** Packets counted on the allow entries the measured streams use, after the rounds (NaN: not read). */
  allowPackets: { ingress: number; egress: number };
  rssIdleMB: number;
}

/** What runPolicyLegs needs. */
export interface PolicyOptions {
  /** Run prefix (choosePrefix()). */
  prefix: string;
  runs: number;
  /** Seconds per iperf3 test. */
  duration: number;
  /** How to start the agent (bin/tapestry or --agent-cmd). */
  agent: Omit<TapestryOptions, 'nsPrefix' | 'extras'>;
  log: (msg: string) => void;
}

/** A leg that is up. */
interface LegUp {
  leg: PolicyLegName;
  topo: Topology;
  socket: string;
  nsC: string;
}

/** "Policy denied" (133) drops so far, by direction, from the agent's counters. */
async function policyDrops(socket: string): Promise<{ ingress: number; egress: number }> {
  const m = await agentApi<{ drops: { reason: number; direction: string; count: number }[] }>(socket, 'GET', '/v1/metrics/datapath');
  const sum = (dir: string): number => m.drops.filter((d) => d.reason === 133 && d.direction === dir).reduce((a, d) => a + d.count, 0);
  return { ingress: sum('INGRESS'), egress: sum('EGRESS') };
}

/** Listeners in pod B on the iperf3 port and on OTHER_PORT that accept and close, for `lifeMs` at most. */
async function startListeners(nsB: string, lifeMs: number): Promise<() => Promise<void>> {
  const script =
    `const n=require('net');for(const p of [${IPERF_PORT},${OTHER_PORT}])n.createServer(c=>{c.on('error',()=>{});c.end()}).listen(p,'${POD.ipB}');` +
    `setTimeout(()=>process.exit(0),${lifeMs}).unref()`;
  const server = startBackground('ip', nsArgs(nsB, process.execPath, ['-e', script]), { traffic: true });
  const ok = (await waitListening(nsB, 'tcp', IPERF_PORT)) && (await waitListening(nsB, 'tcp', OTHER_PORT));
  if (!ok) {
    await stopProcess(server, 1_000);
    throw new BenchError(`probe listeners in ${nsB} did not start: ${server.output().trim()}`);
  }
  return async () => {
    await stopProcess(server, 1_000);
  };
}

/** Limit of one probe's connection attempt (the SYN and one retransmission). */
const PROBE_TIMEOUT_MS = 2_500;

/** The two probes on a leg; true when all went as the leg's policies say and the agent reports the intended enforcement. */
async function checkEnforcement(up: LegUp, result: PolicyLegResult, log: (m: string) => void): Promise<boolean> {
  const shape = POLICY_LEGS[up.leg];
  const eps = await agentApi<{ name: string; policy?: { ingress: string; egress: string } }[]>(up.socket, 'GET', '/v1/endpoint');
  const state = (n: string): string => {
    const p = eps.find((e) => e.name === n)?.policy;
    return p ? `ingress ${p.ingress}, egress ${p.egress}` : 'unknown';
  };
  const want = (ing: boolean, eg: boolean): string => `ingress ${ing ? 'Enabled' : 'Disabled'}, egress ${eg ? 'Enabled' : 'Disabled'}`;
  let ok = true;
  for (const [n, ing, eg] of [['a', false, shape.egress], ['b', shape.ingress, false]] as const) {
    if (state(n) !== want(ing, eg)) {
      ok = false;
      result.errors.push(`endpoint ${n} enforcement is "${state(n)}", expected "${want(ing, eg)}"`);
    }
  }
  const plan: { from: string; fromName: string; port: number; why: string; expect: PolicyProbe['expect'] }[] = [
    { from: up.topo.nsA, fromName: 'a', port: OTHER_PORT, why: 'port not allowed', expect: !shape.ingress ? 'connect' : shape.egress ? 'deny-egress' : 'deny-ingress' },
    { from: up.nsC, fromName: 'c', port: IPERF_PORT, why: 'peer not allowed', expect: shape.ingress ? 'deny-ingress' : 'connect' },
  ];
  const stop = await startListeners(up.topo.nsB, plan.length * (PROBE_TIMEOUT_MS + 10_000));
  try {
    for (const p of plan) {
      const before = await policyDrops(up.socket);
      const outcome = await tcpProbe(p.from, POD.ipB, p.port, PROBE_TIMEOUT_MS);
      const after = await policyDrops(up.socket);
      const dIn = after.ingress - before.ingress;
      const dEg = after.egress - before.egress;
      const good =
        p.expect === 'connect'
          ? outcome === 'connected' && dIn === 0 && dEg === 0
          : outcome === 'timeout' && (p.expect === 'deny-ingress' ? dIn > 0 && dEg === 0 : dEg > 0);
      const probe: PolicyProbe = { what: `${p.fromName}→b:${p.port} (${p.why})`, expect: p.expect, outcome, deniedIngress: dIn, deniedEgress: dEg, ok: good };
      result.probes.push(probe);
      ok &&= good;
      log(`   ${up.leg.padEnd(14)} probe ${probe.what}: ${outcome}, Policy denied +${dIn} ingress / +${dEg} egress — ${good ? 'as expected' : `NOT as expected (${p.expect})`}`);
    }
  } finally {
    await stop();
  }
  return ok;
}

/** Packets on the allow entries of the measured flow: b's ingress from a's identity, a's egress to b's. */
async function allowPackets(up: LegUp): Promise<{ ingress: number; egress: number }> {
  const eps = await agentApi<{ name: string; identity: number }[]>(up.socket, 'GET', '/v1/endpoint');
  const id = (n: string): number => eps.find((e) => e.name === n)?.identity ?? -1;
  type Dump = { rows: { identity: number; direction: string; deny: boolean; packets: number }[] };
  const hits = async (ep: string, dir: string, peer: number): Promise<number> => {
    const d = await agentApi<Dump>(up.socket, 'GET', `/v1/policy/map/${ep}`);
    return d.rows.filter((r) => r.direction === dir && r.identity === peer && !r.deny).reduce((a, r) => a + r.packets, 0);
  };
  const shape = POLICY_LEGS[up.leg];
  return {
    ingress: shape.ingress ? await hits('b', 'ingress', id('a')) : NaN,
    egress: shape.egress ? await hits('a', 'egress', id('b')) : NaN,
  };
}

/** Brings one leg up and checks its enforcement; null when it could not come up (the result says why). */
async function setUp(leg: PolicyLegName, cleanups: Cleanups, opts: PolicyOptions, result: PolicyLegResult): Promise<LegUp | null> {
  const shape = POLICY_LEGS[leg];
  const nsPrefix = `${opts.prefix}p${shape.tag}`;
  opts.log(`\n== policy ${leg}: setting up (${shape.what})`);
  const t0 = Date.now();
  const topo = await attempt('setup', result, opts.log, () =>
    upTapestry(opts.prefix, cleanups, {
      ...opts.agent,
      nsPrefix,
      extras: { labels: LABELS, policies: shape.policies, probePort: IPERF_PORT },
    }),
  );
  if (!topo) {
    opts.log(`== policy ${leg}: FAILED to come up; leg skipped`);
    return null;
  }
  result.notes = topo.notes;
  result.rssIdleMB = topo.extras.rssIdleMB ?? NaN;
  opts.log(`   up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${topo.nsA} -> ${topo.nsB}), idle RSS ${result.rssIdleMB.toFixed(1)} MB`);
  const up: LegUp = { leg, topo, socket: topo.apiSocket!, nsC: `${nsPrefix}c` };
  const verified = await attempt('enforcement check', result, opts.log, () => checkEnforcement(up, result, opts.log));
  result.verified = verified;
  return up;
}

/** One round on one leg: one TCP stream a→b. */
async function measureRound(up: LegUp, result: PolicyLegResult, r: number, opts: PolicyOptions): Promise<void> {
  const one = await attempt(`run ${r} iperf3 1 stream`, result, opts.log, () => iperfTcp(up.topo.nsA, up.topo.nsB, up.topo.ipB, opts.duration, 1));
  result.tcp1.push(one ? one.gbps : NaN);
  result.retransmits.push(one ? one.retransmits : NaN);
  opts.log(`   ${up.leg.padEnd(14)} run ${r}/${opts.runs}: tcp1 ${one ? one.gbps.toFixed(2) : '-'} Gbit/s`);
}

/** Reads the allow-entry counters, then takes the leg down (recording, not throwing, failures). */
async function tearDown(up: LegUp, result: PolicyLegResult, log: (m: string) => void): Promise<void> {
  if (!isAborted() && (POLICY_LEGS[up.leg].ingress || POLICY_LEGS[up.leg].egress)) {
    const hits = await attempt('reading the policy maps', result, log, () => allowPackets(up));
    if (hits) {
      result.allowPackets = hits;
      const parts = [
        ...(Number.isFinite(hits.ingress) ? [`b ingress from a ${hits.ingress}`] : []),
        ...(Number.isFinite(hits.egress) ? [`a egress to b ${hits.egress}`] : []),
      ];
      log(`   ${up.leg.padEnd(14)} packets on the allow entries: ${parts.join(', ')}`);
    }
  }
  await attempt('teardown', result, log, () => up.topo.down());
  log(`== policy ${up.leg}: torn down`);
}

/**
 * Runs the policy legs; never throws.
 * - `interleaved`: every leg up (and checked), then each round runs every
 *   leg in turn, then all go down.
 * - `sequential`: each leg up, its rounds, down.
 */
export async function runPolicyLegs(
  legs: readonly PolicyLegName[],
  cleanups: Cleanups,
  opts: PolicyOptions,
  order: 'interleaved' | 'sequential',
): Promise<PolicyLegResult[]> {
  const results = legs.map(
    (leg): PolicyLegResult => ({
      leg, ok: false, errors: [], notes: [], tcp1: [], retransmits: [], probes: [], verified: null, allowPackets: { ingress: NaN, egress: NaN }, rssIdleMB: NaN,
    }),
  );
  await runRounds(results, order, opts, {
    setUp: (result) => setUp(result.leg, cleanups, opts, result),
    round: (up, result, r) => measureRound(up, result, r, opts),
    tearDown: (up, result) => tearDown(up, result, opts.log),
  });
  for (const r of results) r.ok = r.tcp1.some(Number.isFinite);
  return results;
}

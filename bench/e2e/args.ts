/**
 * Command-line options of `npm run bench -- [options]` (bench/run.ts).
 *
 * API: parseBenchArgs, BenchArgs, USAGE
 */
import { parseArgs } from 'node:util';
import { CLUSTER_LEG_NAMES, type ClusterLegName } from './cluster-legs.ts';
import { NODEPORT_LEG_NAMES, type NodePortLegName } from './nodeport-legs.ts';
import { OBSERVABILITY_LEG_NAMES, type ObservabilityLegName } from './observability-legs.ts';
import { POLICY_LEG_NAMES, type PolicyLegName } from './policy-legs.ts';
import { BenchError } from './proc.ts';
import { LEG_NAMES, type LegName } from './topology.ts';

/**
 * The parts of a run: micro-benchmarks, single-node legs, the network
 * policy comparison and the observability cost (single-node too: `e2e`
 * includes them), cross-node legs, north-south (NodePort from outside) legs.
 */
export type BenchPart = 'micro' | 'e2e' | 'policy' | 'observability' | 'cluster' | 'nodeport';
const PARTS: readonly BenchPart[] = ['micro', 'e2e', 'policy', 'observability', 'cluster', 'nodeport'];

/** Parsed and validated options. */
export interface BenchArgs {
  /** Which parts run (--only, --no-policy, --no-observability, --no-cluster, --no-nodeport). */
  parts: Record<BenchPart, boolean>;
  /** Micro-benchmarks to run, by name (`policy` for bench/policy.bench.ts); null: all of them. */
  micro: string[] | null;
  runs: number;
  duration: number;
  streams: number;
  legs: LegName[];
  order: 'interleaved' | 'sequential';
  /** Service counts for the connection-setup test (empty: skipped). */
  services: number[];
  /** Sequential connections per connection-setup figure. */
  connCount: number;
  /** Policy legs to run. */
  policyLegs: PolicyLegName[];
  /** Observability legs to run. */
  observabilityLegs: ObservabilityLegName[];
  /** Cross-node legs to run. */
  clusterLegs: ClusterLegName[];
  /** Seconds of traffic per captured flow in the kernel-reply check; 0 skips it. */
  captureDuration: number;
  /** North-south legs to run. */
  nodeportLegs: NodePortLegName[];
  /** Seconds of the captured stream in the north-south reply-path check; 0 skips it. */
  replyDuration: number;
  agentCmd: string | undefined;
  agentTimeout: number;
  write: boolean;
  verbose: boolean;
  help: boolean;
}

/** Help text. */
export const USAGE = `usage: npm run bench -- [options]     (or: sh scripts/bench.sh [options]; needs root)

  --only LIST           run only these parts, comma-separated: micro (micro-benchmarks),
                        e2e (single-node legs, and the policy comparison and observability
                        cost unless --no-policy / --no-observability), policy (the network
                        policy comparison alone), observability (the observability cost
                        alone), cluster (cross-node legs), nodeport (north-south: outside
                        → NodePort → backend on another node); default all
  --no-policy           skip the network policy comparison
  --no-observability    skip the observability cost comparison
  --no-cluster          skip the cross-node legs
  --no-nodeport         skip the north-south legs
  --micro LIST          run only these micro-benchmarks, comma-separated names (policy for
                        bench/policy.bench.ts); BENCHMARKS.md keeps the others' previous output
  --runs N              runs per leg; figures are medians (default 3)
  --duration S          seconds per iperf3 / sockperf test (default 5)
  --streams N           streams for the parallel TCP test, 0 to skip it (default 4)
  --legs LIST           comma-separated subset of kernel,ovs,tapestry (default all)
  --sequential          one leg at a time (up, runs, down) instead of the default:
                        all legs up, each round runs every leg in turn (fairer when
                        load on the shared cores drifts)
  --services LIST       service counts for the connection-setup test, comma-separated,
                        increasing (default 10,10000); the target is the last service
  --no-services         skip the connection-setup test (the ClusterIP iperf3 stays)
  --conn-count N        sequential connections per connection-setup figure, and per
                        north-south connection-rate figure (default 500)
  --policy-legs LIST    comma-separated subset of no-policy,ingress,ingress-egress (default all):
                        the Tapestry leg with no policy, with an ingress CiliumNetworkPolicy on
                        the server pod allowing the client, and with an egress one on the client
                        too; one TCP stream each round, ratio against no-policy
  --observability-legs LIST
                        comma-separated subset of events-off,off,monitor,capture (default all):
                        the Tapestry leg with monitor.enabled false in the agent config (event
                        code paths out), with nobody reading events, with tapestry monitor
                        --type trace --type drop reading, with tapestry capture at
                        from/to-container; one TCP stream each round, ratios against off and
                        against events-off
  --cluster-legs LIST   comma-separated subset of kernel-vxlan,tapestry-vxlan,kernel-native,
                        tapestry-native (default all): two-node clusters, pod→pod across
                        nodes (and pod→world through masquerade on tapestry-vxlan)
  --capture-duration S  seconds of iperf3 per captured flow while counting the RSTs and
                        ICMP unreachables node kernels send (default 60; 0 skips it)
  --nodeport-legs LIST  comma-separated subset of kernel-nft,tapestry-snat,tapestry-dsr,
                        tapestry-prefilter (default all): outside host → node 1's NodePort →
                        backend pod on node 2, the kernel with nftables DNAT + masquerade,
                        Tapestry in SNAT and DSR modes, and SNAT with a prefilter deny list
                        (a UDP flood from a denied source during a stream); one TCP stream and
                        --conn-count sequential connections per round, ratios against kernel-nft
  --reply-duration S    seconds of the stream captured on the ingress node's uplink to count
                        the DSR reply packets crossing it (default 30; 0 skips it)
  --agent-cmd CMD       start the agent with "CMD agent --config FILE" (run by sh)
                        instead of bin/tapestry, e.g. --agent-cmd "node --import tsx src/cli/main.ts"
                        (single-node and policy legs: cluster nodes always run bin/tapestry)
  --agent-timeout S     seconds to wait for "tapestry agent ready" (default 60)
  --no-write            do not rewrite BENCHMARKS.md
  --verbose             echo the agent's output
  -h, --help            this text`;

/** Parses a positive number option, throwing a BenchError naming it. */
function num(name: string, raw: string | undefined, dflt: number, min: number, integer: boolean): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new BenchError(`--${name} ${raw}: expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
  }
  return v;
}

/** Parses argv (without node and script) into BenchArgs; throws BenchError on bad input. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        only: { type: 'string' },
        'no-cluster': { type: 'boolean' },
        'no-policy': { type: 'boolean' },
        'no-observability': { type: 'boolean' },
        'no-nodeport': { type: 'boolean' },
        'nodeport-legs': { type: 'string' },
        'reply-duration': { type: 'string' },
        'observability-legs': { type: 'string' },
        'policy-legs': { type: 'string' },
        micro: { type: 'string' },
        'cluster-legs': { type: 'string' },
        'capture-duration': { type: 'string' },
        runs: { type: 'string' },
        duration: { type: 'string' },
        streams: { type: 'string' },
        legs: { type: 'string' },
        'agent-cmd': { type: 'string' },
        services: { type: 'string' },
        'no-services': { type: 'boolean' },
        'conn-count': { type: 'string' },
        'agent-timeout': { type: 'string' },
        'no-write': { type: 'boolean' },
        sequential: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new BenchError(`${(err as Error).message}\n\n${USAGE}`);
  }
  const only = (values.only ?? PARTS.join(',')).split(',').map((x) => x.trim()).filter(Boolean);
  for (const p of only) {
    if (!(PARTS as readonly string[]).includes(p)) throw new BenchError(`--only ${values.only}: expected a comma-separated list of ${PARTS.join(', ')}`);
  }
  const parts = {
    micro: only.includes('micro'),
    e2e: only.includes('e2e'),
    policy: (only.includes('policy') || only.includes('e2e')) && !values['no-policy'],
    observability: (only.includes('observability') || only.includes('e2e')) && !values['no-observability'],
    cluster: only.includes('cluster') && !values['no-cluster'],
    nodeport: only.includes('nodeport') && !values['no-nodeport'],
  };
  if (!Object.values(parts).some(Boolean)) {
    throw new BenchError(`--only ${values.only} with --no-policy/--no-observability/--no-cluster/--no-nodeport: nothing to run`);
  }
  const observabilityLegs = (values['observability-legs'] ?? OBSERVABILITY_LEG_NAMES.join(',')).split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of observabilityLegs) {
    if (!(OBSERVABILITY_LEG_NAMES as readonly string[]).includes(l)) throw new BenchError(`--observability-legs: unknown leg ${l} (${OBSERVABILITY_LEG_NAMES.join(', ')})`);
  }
  const policyLegs = (values['policy-legs'] ?? POLICY_LEG_NAMES.join(',')).split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of policyLegs) {
    if (!(POLICY_LEG_NAMES as readonly string[]).includes(l)) throw new BenchError(`--policy-legs: unknown leg ${l} (${POLICY_LEG_NAMES.join(', ')})`);
  }
  const micro = values.micro === undefined ? null : values.micro.split(',').map((m) => m.trim().replace(/^bench\//, '').replace(/\.bench\.ts$/, '')).filter(Boolean);
  if (micro?.length === 0) throw new BenchError('--micro: expected a comma-separated list of micro-benchmark names');
  const clusterLegs = (values['cluster-legs'] ?? CLUSTER_LEG_NAMES.join(',')).split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of clusterLegs) {
    if (!(CLUSTER_LEG_NAMES as readonly string[]).includes(l)) throw new BenchError(`--cluster-legs: unknown leg ${l} (${CLUSTER_LEG_NAMES.join(', ')})`);
  }
  const nodeportLegs = (values['nodeport-legs'] ?? NODEPORT_LEG_NAMES.join(',')).split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of nodeportLegs) {
    if (!(NODEPORT_LEG_NAMES as readonly string[]).includes(l)) throw new BenchError(`--nodeport-legs: unknown leg ${l} (${NODEPORT_LEG_NAMES.join(', ')})`);
  }
  const legs = (values.legs ?? LEG_NAMES.join(',')).split(',').map((l) => l.trim()).filter(Boolean);
  for (const l of legs) {
    if (!(LEG_NAMES as readonly string[]).includes(l)) throw new BenchError(`--legs: unknown leg ${l} (kernel, ovs, tapestry)`);
  }
  const services = values['no-services'] ? [] : (values.services ?? '10,10000').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  for (let i = 0; i < services.length; i++) {
    const n = services[i]!;
    if (!Number.isInteger(n) || n < 1 || n > 65_000 || (i > 0 && n <= services[i - 1]!)) {
      throw new BenchError(`--services ${values.services}: expected increasing integers in 1..65000`);
    }
  }
  return {
    parts,
    micro,
    services,
    policyLegs: POLICY_LEG_NAMES.filter((l) => policyLegs.includes(l)),
    observabilityLegs: OBSERVABILITY_LEG_NAMES.filter((l) => observabilityLegs.includes(l)),
    clusterLegs: CLUSTER_LEG_NAMES.filter((l) => clusterLegs.includes(l)),
    captureDuration: num('capture-duration', values['capture-duration'], 60, 0, true),
    nodeportLegs: NODEPORT_LEG_NAMES.filter((l) => nodeportLegs.includes(l)),
    replyDuration: num('reply-duration', values['reply-duration'], 30, 0, true),
    connCount: num('conn-count', values['conn-count'], 500, 1, true),
    runs: num('runs', values.runs, 3, 1, true),
    duration: num('duration', values.duration, 5, 1, true),
    streams: num('streams', values.streams, 4, 0, true),
    legs: LEG_NAMES.filter((l) => legs.includes(l)),
    order: values.sequential ? 'sequential' : 'interleaved',
    agentCmd: values['agent-cmd'],
    agentTimeout: num('agent-timeout', values['agent-timeout'], 60, 1, false),
    write: !values['no-write'],
    verbose: values.verbose ?? false,
    help: values.help ?? false,
  };
}

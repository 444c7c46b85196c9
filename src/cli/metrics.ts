/**
 * CLI: `tapestry metrics list [-p REGEX] [-o json]`, the agent's Prometheus
 * metrics as a table (metric, labels, value), as `cilium metrics list`
 * shows them. The text comes through the API socket
 * (`GET /v1/metrics/prometheus`), so the command works whether or not the
 * HTTP endpoint is enabled or reachable.
 *
 * API: registerMetricsCommands(program, ctx), formatMetricSamples(samples)
 */
import type { Command, Option } from 'commander';
import { api, ApiError } from './client.ts';
import { formatTable } from './table.ts';
import { parseExposition, type Sample } from '../agent/prometheus.ts';

interface Ctx {
  sock: () => string | undefined;
  print: (json: boolean, value: unknown, text: () => string) => void;
  output: () => Option;
}

/** `k="v" k2="v2"`, keys sorted; empty without labels. */
function labelsText(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(' ');
}

/** A sample value: integers as they are, fractions to six places. */
function valueText(v: number): string {
  return Number.isInteger(v) ? String(v) : Number.isFinite(v) ? v.toFixed(6) : String(v);
}

/** The table `metrics list` prints. */
export function formatMetricSamples(samples: readonly Sample[]): string {
  return formatTable([['Metric', 'Labels', 'Value'], ...samples.map((s) => [s.name, labelsText(s.labels), valueText(s.value)])]);
}

export function registerMetricsCommands(program: Command, ctx: Ctx): void {
  const { sock, print, output } = ctx;
  program
    .command('metrics')
    .description("the agent's Prometheus metrics")
    .command('list')
    .description('every metric with its labels and value')
    .option('-p, --match-pattern <regex>', 'only metrics whose name matches')
    .addOption(output())
    .action(async (o: { matchPattern?: string; output?: string }) => {
      let re: RegExp | undefined;
      try {
        re = o.matchPattern !== undefined ? new RegExp(o.matchPattern) : undefined;
      } catch (e) {
        throw new ApiError(`--match-pattern: ${(e as Error).message}`);
      }
      const text = await api<string>('GET', '/v1/metrics/prometheus', undefined, sock());
      const samples = parseExposition(text).filter((s) => !re || re.test(s.name));
      print(o.output === 'json', samples, () => formatMetricSamples(samples));
    });
}

#!/bin/sh
# npm run bench: make sure the tools are here, then run the micro-benchmarks and
# the end-to-end comparison (kernel vs. OVS userspace vs. Tapestry) and rewrite
# BENCHMARKS.md. Needs root for the end-to-end part (network namespaces).
# Options are passed through: npm run bench -- --only e2e --runs 5 (see --help).
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-deps.sh bench
exec node --import tsx bench/run.ts "$@"

#!/bin/sh
# npm test: make sure what the tests need is here, then run every test file
# with node's built-in runner. End-to-end tests need root (network namespaces).
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-deps.sh test
files=$(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec $files

#!/bin/sh
# npm start: the tour — bring up one node with three pods, run real traffic
# through Tapestry, print what happened, tear down. Needs root.
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-deps.sh start
exec node --import tsx src/tour/tour.ts

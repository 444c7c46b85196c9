#!/bin/sh
# npm start: the tour — bring up two Tapestry nodes (VXLAN tunnel) with two
# pods each and an outside host, run real traffic through them, print what
# happened, tear down. Needs root; installs what it lacks (as root, with
# apt-get) or names it (scripts/ensure-deps.sh).
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-deps.sh start
exec node --import tsx src/tour/tour.ts

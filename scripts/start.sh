#!/bin/sh
# npm start: the tour — bring up two Tapestry nodes (VXLAN tunnel) with two
# pods each and an outside host, run real traffic through them, print what
# happened, tear down. Needs root. Installs what it lacks (as root, with
# apt-get) or names it; tcpdump and tshark are for the tests, not the tour.
set -e
cd "$(dirname "$0")/.."

if [ ! -d node_modules/tsx ] || [ ! -f native/build/Release/tapestry_native.node ]; then
  echo "tapestry: installing node modules and building the native addon (npm install)" >&2
  npm install --no-audit --no-fund >&2
fi

# command:package — ip/ss build the namespaces, sysctl sets them up, nft and
# ethtool are run by the agents (uplink drop chain, GRO), the rest is traffic.
need="ip:iproute2 ss:iproute2 sysctl:procps nft:nftables ethtool:ethtool ping:iputils-ping curl:curl iperf3:iperf3"
missing=""
for pair in $need; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tapestry: installing Debian packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "tapestry: missing Debian packages:$missing — run as root: apt-get install$missing" >&2
    exit 1
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "tapestry: run as root (network namespaces and TAP devices need CAP_NET_ADMIN)" >&2
  exit 1
fi
exec node --import tsx src/tour/tour.ts

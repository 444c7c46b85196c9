#!/bin/sh
# Installs or names what Tapestry needs. Usage: ensure-deps.sh start|test|bench
# - node modules and the native addon (npm install builds it)
# - Debian tools used to build topologies and drive traffic
set -e
cd "$(dirname "$0")/.."
purpose=${1:-start}

if [ ! -d node_modules/tsx ] || [ ! -f native/build/Release/tapestry_native.node ]; then
  echo "tapestry: installing node modules and building the native addon (npm install)" >&2
  npm install --no-audit --no-fund >&2
fi

# start: what the tour and the agents run (nft: the uplink drop chain; ethtool: GRO on the uplink)
need="ip:iproute2 sysctl:procps ping:iputils-ping iperf3:iperf3 curl:curl nft:nftables ethtool:ethtool"
case "$purpose" in
  test) need="$need tcpdump:tcpdump tshark:tshark chromium:chromium" ;;
  bench) need="$need tcpdump:tcpdump tshark:tshark sockperf:sockperf ovs-vsctl:openvswitch-switch" ;;
esac
missing=""
for pair in $need; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done
if [ "$purpose" = test ] && ! /usr/bin/python3 -c 'import scapy' >/dev/null 2>&1; then missing="$missing python3-scapy"; fi
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

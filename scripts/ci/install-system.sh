#!/usr/bin/env bash
# Installs the system packages the deployment tests drive for real, skipping any already present:
#   docker.io    Docker engine (dockerd 20.10); the tests start it themselves, nothing else does
#   debootstrap  builds the local base image (no image registry is reachable)
#   prometheus   real Prometheus + promtool for the scrape test and config/rule checks
#   nftables     `nft`, to remove the tables dockerd leaves behind on teardown
#   iproute2     `ip`, to remove the docker0 link on teardown
#   nginx        `nginx -t` checks the load balancer config of docker-compose.scale.yml
#   wrk          HTTP load generator for the load and benchmark tests
#   chromium     the browser the page tests drive through Playwright (tests/app/ui/; Playwright's own
#                browser download is not reachable, so it launches this one)
# Usage: scripts/ci/install-system.sh            (all of the above)
#        scripts/ci/install-system.sh prometheus (only the named packages)
# Needs root and Debian's package mirror; idempotent and quiet when everything is installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(docker.io debootstrap prometheus nftables iproute2 nginx wrk chromium)

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-system: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-system: installing ${missing[*]}"
# A stale or empty package list makes apt-get install fail to find packages; refresh once.
apt-get update -qq
# policy-rc.d 101 stops maintainer scripts from starting services (prometheus, containerd):
# the tests start their own instances on loopback with private state directories.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

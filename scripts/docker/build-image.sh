#!/usr/bin/env bash
# Build the service image offline: local base image (debootstrap), wheelhouse, then `docker build`.
#
#   scripts/docker/build-image.sh [TAG]       prints TAG (default sentiment-service:latest)
#
# Env: BASE_IMAGE (skip debootstrap and use this image), WHEELHOUSE (a folder inside the repo;
#      default: build ./wheelhouse), plus what build-base-image.sh / build-wheelhouse.sh read.
# Needs a running Docker engine (DOCKER_HOST; scripts/docker/dockerd.sh starts one).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
tag=${1:-sentiment-service:latest}
base=${BASE_IMAGE:-$(bash scripts/docker/build-base-image.sh)}
wheelhouse=${WHEELHOUSE:-$(bash scripts/docker/build-wheelhouse.sh "$repo/wheelhouse")}
wheelhouse=$(realpath --relative-to="$repo" "$wheelhouse")
# --network none: proves the build needs nothing but the context (and sends no traffic anywhere).
args=(--network none --build-arg "BASE_IMAGE=$base" --build-arg "WHEELHOUSE=$wheelhouse")
log=$(mktemp "${TMPDIR:-/tmp}/build-image.XXXXXX.log")
trap 'rm -f "$log"' EXIT
# The deps stage gets its own tag so the dangling-image prune below cannot delete the cached
# dependency layers; the second build reuses every deps step from that cache.
for target in deps runtime; do
	name=$tag
	[ "$target" = deps ] && name=${tag%%:*}-deps:${tag#*:}
	if ! docker build --force-rm --target "$target" "${args[@]}" -t "$name" . >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		exit 1
	fi
done
# Each rebuild leaves the previous runtime image (~2 GB) untagged.
docker image prune -f >/dev/null
echo "$tag"

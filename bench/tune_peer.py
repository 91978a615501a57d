"""Tune the LitServe peer fairly: sweep max_batch_size x batch_timeout at the targets' load points.

`python -m bench.tune_peer [--models-dir ...] [--dtype bf16]`: for each request size, every setting
serves the same requests at the concurrency its target is defined at (1 text @ 64, 32 texts @ 16);
the best sentences/s wins. The winners are what bench/run.py's PEER_CONFIG holds
(docs/performance.md records the sweep). The last printed line is the JSON path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bench.cpugroup import open_group
from bench.run import ROOT, Context, Plan, _pick_model, _prepare_workload, drive, peer_server

# (max_batch_size, batch_timeout_s) settings per request size; 32-text requests are slow on the
# peer (one padded forward per batch of requests), so their grid is smaller.
GRID = {
    1: [(b, t) for b in (4, 8, 16, 32, 64) for t in (0.001, 0.005, 0.02)],
    32: [(1, 0.005), (2, 0.001), (2, 0.005), (2, 0.02), (4, 0.005)],
}
POINTS = {1: (64, 192), 32: (16, 32)}  # size -> (concurrency, requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="sentiment")
    parser.add_argument("--stand-in", choices=["minilm", "bert-base", "tiny"], default=None)
    parser.add_argument("--tokenizer-dir", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--pool-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nice", type=int, default=0, help="as bench.run --nice")
    parser.add_argument("--cpu-shares", type=int, default=0, help="as bench.run --cpu-shares")
    parser.add_argument("--sizes", default="1,32", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results" / "tune-peer")
    args = parser.parse_args(argv)
    args.texts, args.peer_config = None, {}
    out = args.out_dir
    for sub in ("logs", "raw"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    plan = Plan(args.pool_size, {s: {POINTS[s][0]: POINTS[s][1]} for s in args.sizes}, warmup=4)
    group, _ = open_group(args.cpu_shares)
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    ctx = Context(args, plan, out, _pick_model(args, out), env, preexec=group.joiner() if group else None)
    _prepare_workload(ctx)
    sweep: dict[str, list[dict[str, object]]] = {}
    for size in args.sizes:
        conc, requests = POINTS[size]
        for batch, timeout in GRID[size]:
            args.peer_config = {size: (batch, timeout)}
            server = peer_server(ctx, args.dtype, size).start()
            try:
                result = drive(ctx, server, size, conc, requests)
            finally:
                server.stop()
            row = {"max_batch_size": batch, "batch_timeout": timeout, **result}
            sweep.setdefault(str(size), []).append(row)
            print(
                f"{size:>3} texts c={conc} batch {batch:>3} timeout {timeout:<6} "
                f"{result['sentences_per_s']:8.1f} sent/s ({result['sentences_per_cpu_s']} per CPU-s) "
                f"p99 {result['p99_ms']:.0f} ms load {result['loadavg'][0]}",
                file=sys.stderr,
            )
    if group is not None:
        group.close()
    best = {size: max(rows, key=lambda r: r["sentences_per_s"]) for size, rows in sweep.items()}
    path = out / "tune-peer.json"
    path.write_text(json.dumps({"best": best, "sweep": sweep}, indent=1), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ceiling: the model's forward pass alone, no HTTP, run as its own process.

It loads the model through the service's own loader and precision code (`app.model.loader`,
`app.model.precision` via `load_model`) and pads with the service's own collate, so it runs the
exact numerics and dtype the service runs. Over the workload's texts it times only the forward
passes, at several batch sizes, with the texts sorted by length over the whole pool (the most
favourable grouping there is: the service can only sort within its queue window, so this is a true
upper bound); the best batch size is the ceiling. A random-order pass at that batch size shows what
sorting buys. Single-text latency is the forward pass of each of the first `--single` texts alone
(the texts the concurrency-1 run sends), for the lone-client latency target.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.workload import read_texts


def _load(args: argparse.Namespace) -> Any:
    from app.core.config import Settings
    from app.model.loader import load_model
    from app.model.runtime import TextClassifier

    fields: dict[str, Any] = {
        "models_dir": args.models_dir,
        "name": args.name,
        "version": args.version,
        "device": args.device,
        "torch_threads": args.threads,
    }
    if args.dtype:
        fields["dtype"] = args.dtype
    loaded = load_model(Settings(**fields))
    return TextClassifier(loaded)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed_pass(clf: Any, ids: list[list[int]], order: list[int], batch_size: int, device: str) -> dict[str, float]:
    """Forward-only seconds over all texts in `order`, cut into batches of `batch_size`."""
    from app.core.config import padded_length

    batches = [[ids[k] for k in order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
    collated = [clf.collate(b) for b in batches]
    _sync(device)
    seconds = cpu = 0.0
    for batch in collated:
        started, cpu_started = time.perf_counter(), time.process_time()
        clf.predict(batch)
        _sync(device)
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    real = sum(len(ids[k]) for k in order)
    padded = sum(padded_length(max(len(x) for x in b)) * len(b) for b in batches)
    return {
        "seconds": seconds,
        "sentences_per_s": len(order) / seconds,
        "sentences_per_cpu_s": len(order) / cpu if cpu > 0 else 0.0,
        "padding_ratio": padded / real,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    texts = read_texts(args.texts)
    clf = _load(args)
    device = clf.loaded.device
    ids = [list(x) for x in clf.tokenize(texts).ids]
    lengths = [len(x) for x in ids]
    by_length = sorted(range(len(ids)), key=lengths.__getitem__)

    # One untimed pass per batch size creates the kernels' per-shape state before anything counts.
    for size in args.batch_sizes:
        timed_pass(clf, ids, by_length[: size * 4], size, device)
    by_size: dict[str, dict[str, float]] = {}
    for size in args.batch_sizes:
        runs = [timed_pass(clf, ids, by_length, size, device) for _ in range(args.repeats)]
        best = max(runs, key=lambda r: r["sentences_per_s"])  # an upper bound: the best of the repeats
        by_size[str(size)] = {k: round(v, 4) for k, v in best.items()}
    best_size = max(by_size, key=lambda s: by_size[s]["sentences_per_s"])
    shuffled = list(range(len(ids)))
    random.Random(0).shuffle(shuffled)
    unsorted = timed_pass(clf, ids, shuffled, int(best_size), device)

    single = []
    for k in range(min(args.single, len(ids))):
        batch = clf.collate([ids[k]])
        _sync(device)
        started = time.perf_counter()
        clf.predict(batch)
        _sync(device)
        single.append((time.perf_counter() - started) * 1000)
    lat = np.array(single or [np.nan])
    return {
        "device": device,
        "dtype": clf.loaded.dtype,
        "threads": args.threads,
        "texts": len(ids),
        "token_lengths": {
            "mean": round(float(np.mean(lengths)), 1),
            "p50": int(np.percentile(lengths, 50)),
            "p95": int(np.percentile(lengths, 95)),
            "max": max(lengths),
            "at_limit": sum(1 for n in lengths if n >= clf.loaded.max_length),
        },
        "best_batch_size": int(best_size),
        "sentences_per_s": by_size[best_size]["sentences_per_s"],
        "sentences_per_cpu_s": by_size[best_size]["sentences_per_cpu_s"],
        "by_batch_size": by_size,
        "unsorted_at_best_batch_size": {k: round(v, 4) for k, v in unsorted.items()},
        "single_text_ms": {
            "count": len(single),
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p95": round(float(np.percentile(lat, 95)), 2),
            "p99": round(float(np.percentile(lat, 99)), 2),
            "mean": round(float(np.mean(lat)), 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="forward-pass ceiling (no HTTP)")
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", default="latest")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--single", type=int, default=32, help="texts timed alone (batch of one)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(measure(args), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

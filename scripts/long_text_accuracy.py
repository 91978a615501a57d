"""Accuracy on long texts: truncation vs chunk mode (and other ways to combine windows), measured.

Long inputs are built from held-out (test split) Rotten Tomatoes snippets: same-label snippets
joined until a text reaches a target length in tokens, labels balanced. Optionally (`--plot-first`)
each text opens with plot synopses (the corpus' unlabelled `plot` rows, never trained on) for about
one window, as reviews that start by retelling the story do: the case truncation cannot see; and
(`--minority`) texts where a share of the snippets carry the other label, as mixed reviews do.

The model is loaded and run exactly as the service runs it (inference/loader.py, TextClassifier:
precision, packing, the serving tokenizer, the windowing tokenizer), so the chunk numbers are what
`truncation: "chunk"` answers. Every window's probabilities are kept, so the other combinations
(plain mean, most confident window, mean of logits, first window only) cost no extra compute.

    PYTHONPATH=. .venv/bin/python scripts/long_text_accuracy.py --models-dir models --max-length 128 \
        --lengths 150,300,600,1000 --docs 100 --plot-first --minority 0.3 --out results.json

Results and the commands that produced them: docs/long-texts.md.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import io
import json
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.classifier import TextClassifier
from inference.loader import load_model
from inference.options import LoadOptions
from inference.scores import softmax
from inference.tokens import Tokenized, encode, encode_windows, windowing_tokenizer
from inference.windows import combine_windows, window_overlap
from store.model_store import ModelStore
from training.config import preset
from training.data import builtin_data_path, load_data

BATCH_TOKENS = 8192


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def plot_snippets() -> list[str]:
    """The corpus' `plot` rows (synopses; the trainer drops them, so the model never saw them)."""
    with bz2.open(builtin_data_path(), "rt", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(io.StringIO(fh.read())) if row["category"] == "plot"]


def build_documents(
    pools: dict[int, list[str]],
    count: int,
    target: int,
    tokens: dict[str, int],
    rng: random.Random,
    preface: list[str] | None = None,
    preface_tokens: int = 0,
    minority: float = 0.0,
) -> list[tuple[str, int]]:
    """`count` texts of about `target` tokens or more, each of one label's snippets, labels alternating.

    `tokens` holds every snippet's token count (joining with a space adds none: WordPiece never
    merges across whitespace).
    """
    docs = []
    labels = sorted(pools)
    for k in range(count):
        label = labels[k % len(labels)]
        parts: list[str] = []
        size = 2  # [CLS] and [SEP]
        while preface and size < preface_tokens:
            parts.append(rng.choice(preface))
            size += tokens[parts[-1]]
        others = [x for x in labels if x != label]
        for snippet in rng.sample(pools[label], len(pools[label])):
            if minority and rng.random() < minority:  # an opinion of another label, here and there
                snippet = rng.choice(pools[rng.choice(others)])
            parts.append(snippet)
            size += tokens[snippet]
            if size >= target:
                break
        docs.append((" ".join(parts), label))
    return docs


def run_inputs(classifier: TextClassifier, ids: Sequence[Sequence[int]]) -> np.ndarray:
    """Logits of every input, in length-sorted batches under the service's default token budget."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.empty((len(ids), len(classifier.loaded.source.labels)), dtype=np.float32)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and len(ids[order[end]]) * (end + 1 - start) <= BATCH_TOKENS and end - start < 64:
            end += 1
        chunk = order[start:end]
        out[chunk] = classifier.predict(classifier.collate([ids[i] for i in chunk]))
        start = end
    return out


def combinations(probs: np.ndarray, logits: np.ndarray, tok: Tokenized, temperature: float) -> dict[str, np.ndarray]:
    """Each text's probabilities under every way of combining its windows."""
    windows = tok.windows or [1] * len(probs)
    starts = np.concatenate(([0], np.cumsum(windows)[:-1]))
    groups = [slice(s, s + n) for s, n in zip(starts, windows, strict=True)]
    most_confident = np.stack([probs[g][probs[g].max(axis=1).argmax()] for g in groups])
    return {
        "length-weighted mean (served)": combine_windows(probs, tok.lengths, windows),
        "plain mean": combine_windows(probs, [1] * len(probs), windows),
        "most confident window": most_confident,
        "mean of logits": softmax(combine_windows(logits, tok.lengths, windows), temperature),
        "first window only": probs[starts],
    }


def measure(
    classifier: TextClassifier, docs: list[tuple[str, int]], overlaps: list[float], temperature: float
) -> dict[str, Any]:
    texts = [t for t, _ in docs]
    gold = np.array([y for _, y in docs])
    loaded = classifier.loaded
    result: dict[str, Any] = {"docs": len(docs)}
    started = time.perf_counter()
    plain = encode(loaded.tokenizer, texts)
    probs = softmax(run_inputs(classifier, plain.ids), temperature)
    truncate_right = probs.argmax(axis=1) == gold
    result["truncate"] = {
        "accuracy": float(truncate_right.mean()),
        "inputs": len(plain.ids),
        "tokens": int(sum(plain.lengths)),
        "seconds": round(time.perf_counter() - started, 2),
    }
    room = loaded.max_length - loaded.tokenizer.num_special_tokens_to_add(False)
    for share in overlaps:
        overlap = window_overlap(room) if share < 0 else int(room * share)
        started = time.perf_counter()
        tok = encode_windows(windowing_tokenizer(loaded.tokenizer, loaded.max_length, overlap), texts)
        logits = run_inputs(classifier, tok.ids)
        combos = combinations(softmax(logits, temperature), logits, tok, temperature)
        right = {name: p.argmax(axis=1) == gold for name, p in combos.items()}
        result[f"chunk overlap {overlap}"] = {
            "overlap_tokens": overlap,
            "accuracy": {name: float(r.mean()) for name, r in right.items()},
            # Paired with truncation on the same texts: (fixed, broken) = right only here, right only there.
            "fixed_broken_vs_truncate": {
                name: [int((r & ~truncate_right).sum()), int((~r & truncate_right).sum())] for name, r in right.items()
            },
            "inputs": len(tok.ids),
            "mean_windows": float(np.mean(tok.windows)),
            "tokens": int(sum(tok.lengths)),
            "seconds": round(time.perf_counter() - started, 2),
        }
    return result


def render(report: dict[str, Any]) -> str:
    """Markdown tables of a report: accuracy per workload and length, truncate vs each combination."""
    names = ["length-weighted mean (served)", "plain mean", "most confident window", "mean of logits"]
    head = "| workload | tokens (mean) | windows | truncate | " + " | ".join(names) + " |"
    rows = [head, "|" + " --- |" * (4 + len(names))]
    for run in report["runs"]:
        chunks = [chunk for key, chunk in run.items() if key.startswith("chunk overlap")]
        for chunk in chunks:
            overlap = f", overlap {chunk['overlap_tokens']}" if len(chunks) > 1 else ""
            cells = [
                f"{chunk['accuracy'][n]:.2f} (+{chunk['fixed_broken_vs_truncate'][n][0]}/"
                f"-{chunk['fixed_broken_vs_truncate'][n][1]})"
                if "fixed_broken_vs_truncate" in chunk
                else f"{chunk['accuracy'][n]:.2f}"
                for n in names
            ]
            rows.append(
                f"| {run['workload']}{overlap} | {run['mean_tokens']:.0f} | {chunk['mean_windows']:.1f} | "
                f"{run['truncate']['accuracy']:.2f} | " + " | ".join(cells) + " |"
            )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="sentiment")
    parser.add_argument("--model-version", default="latest")
    parser.add_argument("--max-length", type=int, default=None, help="serving token limit (default: the model's)")
    parser.add_argument("--lengths", default="600,1000,2000", help="target text lengths in tokens")
    parser.add_argument("--docs", type=int, default=200, help="texts per length and workload")
    parser.add_argument("--overlaps", default="default", help="window overlaps as shares of a window, or 'default'")
    parser.add_argument("--plot-first", action="store_true", help="also texts that open with ~1 window of plot")
    parser.add_argument(
        "--minority", type=float, default=0.0, help="also texts with this share of other-label snippets in them"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here too")
    parser.add_argument("--render", type=Path, default=None, help="print a results file as markdown and exit")
    args = parser.parse_args(argv)
    if args.render is not None:
        print(render(json.loads(args.render.read_text())))
        return 0

    options = LoadOptions(device="cpu", max_length=args.max_length, torch_threads=args.threads)
    loaded = load_model(ModelStore(args.models_dir), args.name, args.model_version, options)
    classifier = TextClassifier(loaded)
    source = loaded.source
    data = load_data(preset("default"))
    test = data.splits["test"]
    if data.labels != source.labels:
        raise SystemExit(f"the data's labels {data.labels} are not the model's {source.labels}")
    pools: dict[int, list[str]] = {}
    for text, label in zip(test.texts, test.label_ids, strict=True):
        pools.setdefault(label, []).append(text)
    counter = windowing_tokenizer(loaded.tokenizer, 1 << 20)  # no practical limit: counts a whole text

    def token_count(text: str) -> int:
        return len(counter.encode(text).ids)

    plots = plot_snippets() if args.plot_first else []
    every = list(dict.fromkeys([*test.texts, *plots]))
    tokens = {t: len(e.ids) - 2 for t, e in zip(every, counter.encode_batch_fast(every), strict=True)}

    overlaps = [-1.0] if args.overlaps == "default" else [float(x) for x in args.overlaps.split(",")]
    short = softmax(run_inputs(classifier, encode(loaded.tokenizer, test.texts).ids), source.temperature)
    report: dict[str, Any] = {
        "cpu": cpu_name(),
        "model": {
            "name": source.name,
            "version": source.version,
            "dtype": loaded.dtype,
            "max_length": loaded.max_length,
        },
        "layout": "packed" if loaded.packed else "padded",
        "test_snippets": len(test.texts),
        "snippet_accuracy": float((short.argmax(axis=1) == np.array(test.label_ids)).mean()),
        "runs": [],
    }
    workloads: dict[str, tuple[list[str] | None, float]] = {"same-label snippets": (None, 0.0)}
    if args.plot_first:
        workloads["plot first, then same-label snippets"] = (plots, 0.0)
    if args.minority:
        workloads[f"snippets, {args.minority:.0%} of another label"] = (None, args.minority)
    for workload, (preface, minority) in workloads.items():
        for target in (int(x) for x in args.lengths.split(",")):
            rng = random.Random(f"{args.seed}-{workload}-{target}")
            docs = build_documents(pools, args.docs, target, tokens, rng, preface, loaded.max_length, minority)
            lengths = [token_count(t) for t, _ in docs]
            run = {"workload": workload, "target_tokens": target, "mean_tokens": float(np.mean(lengths))}
            run.update(measure(classifier, docs, overlaps, source.temperature))
            report["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

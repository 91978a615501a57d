"""A reference row, not a contender: the same model's forward pass in OpenVINO, on length-sorted batches.

It says how far torch itself (what the service and its ceiling run) is from the best CPU engine at hand.
The model is converted from the published version directory (fp32 weights) with `openvino.convert_model`
and compiled with the inference precision hint (bf16 where the CPU has it); batches are the workload's
texts sorted by length and cut by padded-token budgets, as the ceiling's padded strategies are.

    python -m bench.openvino_ref --models-dir M --name sentiment --texts T --threads 2 --out ref.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.ceiling import budget_batches
from bench.workload import read_texts


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import openvino as ov
    import torch

    from inference.loader import locate, read_pretrained
    from inference.padding import pad_batch
    from inference.tokens import encode, position_limit, resolve_max_length, serving_tokenizer
    from store.model_store import ModelStore

    source = locate(ModelStore(args.models_dir), args.name, args.version)
    model, hf_tokenizer = read_pretrained(source.path)
    positions = position_limit(model.config)
    tokenizer = serving_tokenizer(hf_tokenizer, resolve_max_length(None, hf_tokenizer.model_max_length, positions))
    ids = encode(tokenizer, read_texts(args.texts)).ids
    lengths = [len(x) for x in ids]
    example = {
        "input_ids": torch.ones((2, 8), dtype=torch.long),
        "attention_mask": torch.ones((2, 8), dtype=torch.long),
    }
    converted = ov.convert_model(model, example_input=example)
    config = {"INFERENCE_PRECISION_HINT": args.precision, "INFERENCE_NUM_THREADS": args.threads}
    compiled = ov.Core().compile_model(converted, "CPU", config)
    by_length = sorted(range(len(ids)), key=lengths.__getitem__)
    pad_id = int(hf_tokenizer.pad_token_id or 0)
    results: dict[str, float] = {}
    for budget in args.token_budgets:
        batches = [
            pad_batch([ids[k] for k in b], pad_id, positions) for b in budget_batches(by_length, lengths, budget)
        ]
        for input_ids, mask in batches[:: max(1, len(batches) // 4)]:  # untimed: per-shape compilation
            compiled({"input_ids": input_ids, "attention_mask": mask})
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            for input_ids, mask in batches:
                compiled({"input_ids": input_ids, "attention_mask": mask})
            best = min(best, time.perf_counter() - started)
        results[f"tokens <= {budget}"] = round(len(ids) / best, 2)
    name = max(results, key=results.__getitem__)
    # The conversion traces the model: check that its answers are the model's (labels against torch fp32).
    agree, total = 0, 0
    for b in budget_batches(by_length, lengths, min(args.token_budgets))[::7]:
        input_ids, mask = pad_batch([ids[k] for k in b], pad_id, positions)
        theirs = np.asarray(compiled({"input_ids": input_ids, "attention_mask": mask})[0])
        with torch.inference_mode():
            ours = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        agree += int((theirs.argmax(1) == ours.argmax(1)).sum())
        total += len(b)
    return {
        "engine": f"OpenVINO {ov.__version__}",
        "precision": args.precision,
        "threads": args.threads,
        "texts": len(ids),
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "best_batching": f"{name}, length-sorted, padded",
        "sentences_per_s": results[name],
        "by_batching": results,
        "label_agreement_with_torch_fp32": round(agree / total, 4) if total else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", default="latest")
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--precision", default="bf16", help="OpenVINO INFERENCE_PRECISION_HINT (bf16, f32)")
    parser.add_argument("--token-budgets", type=lambda s: [int(x) for x in s.split(",")], default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(measure(args), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
